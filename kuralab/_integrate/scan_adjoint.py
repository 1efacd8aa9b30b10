"""`ScanAdjoint`: reverse mode through one `lax.scan` over the steps of a fixed-step solve.

diffrax's `RecursiveCheckpointAdjoint` runs the step loop as a checkpointed while loop
(binomial checkpointing: fewer stored states, every step recomputed up to log(n) times)
and `DirectAdjoint` as nested bounded scans of base 16 with a checkpoint at every level.
With a fixed step the number of steps is known before the solve (`max_steps` = n), so
the loop can be one `lax.scan` of length n (each step's result kept or discarded by
diffrax's continuation test, see `_scan_loop`): JAX's ordinary reverse mode then stores each step's
residuals once and replays nothing. Memory is O(n * state) (the residuals of n steps,
e.g. 500 steps of n = 200 float64 phases with four RK stages: ~4 MB); time is one
forward pass plus one backward pass. It is exact (the same discrete gradient as the
other discretise-then-optimise adjoints) and supports forward mode too.

`simulate` uses it by default for fixed-step solves (no step-size controller); an
explicit `adjoint=` is kept.
"""

from __future__ import annotations

import functools as ft

import diffrax as dfx
import equinox.internal as eqxi
import jax
from equinox.internal._loop.common import common_rewrite  # equinox 0.13

__all__ = ["ScanAdjoint"]


def _scan_loop(cond_fun, body_fun, init_val, *, max_steps, buffers=None, **_):
    """`max_steps` unconditional steps in one `lax.scan`, each selecting its result by
    the continuation test carried from the step before (equinox's loop rewrite with
    `makes_false_steps=True`: plain leaves by `select`, buffers by predicated writes).

    Not a `lax.cond` per step: JAX's partial evaluation of a `cond` turns every value
    its branch reads into a per-step residual, so a loop-invariant coupling matrix was
    stacked `max_steps` times (f64[500, 200, 200] in the issue-18 benchmark); the scan
    hoists loop invariants out of a plain body. A fixed-step solve takes exactly
    `max_steps` steps, so no step is discarded."""
    _, body, init, _ = common_rewrite(
        cond_fun, body_fun, init_val, max_steps, buffers, makes_false_steps=True
    )
    out, _ = jax.lax.scan(lambda v, _: (body(v), None), init, None, length=max_steps)
    return out[3]


_inner_loop = jax.named_call(eqxi.while_loop, name="inner-loop")
_outer_loop = jax.named_call(_scan_loop, name="outer-loop")


class ScanAdjoint(dfx.AbstractAdjoint):
    """Backpropagate through a fixed-step solve by one `lax.scan` over its steps.

    Needs a finite `max_steps` (the step count of a fixed-step solve); the save-time
    loop inside a step (`SaveAt(ts=...)`) stays checkpointed as in diffrax's
    `RecursiveCheckpointAdjoint`.
    """

    def loop(
        self, *, max_steps, terms, throw, passed_solver_state, passed_controller_state,
        **kwargs,
    ):
        del throw, passed_solver_state, passed_controller_state
        if max_steps is None:
            raise ValueError(
                "`adjoint=ScanAdjoint()` needs a finite `max_steps` (a fixed-step solve)"
            )
        return self._loop(
            **kwargs,
            terms=terms,
            max_steps=max_steps,
            inner_while_loop=ft.partial(_inner_loop, kind="checkpointed"),
            outer_while_loop=_outer_loop,
        )
