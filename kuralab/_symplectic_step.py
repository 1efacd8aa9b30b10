r"""Symplectic (semi-implicit) Euler for second-order models, as a diffrax solver.

For $\dot h = v$, $\dot v = a(t, h, v)$ (a `kl.AbstractSecondOrderModel`, state
`y = (h, v)` stacked along the leading axis) one step from $t_n$ to $t_{n+1} = t_n +
\Delta$ is

$$v_{n+1} = v_n + \Delta\, a(t_n, h_n, v_n), \qquad h_{n+1} = h_n + \Delta\, v_{n+1},$$

velocity first, then position with the *new* velocity. This is exactly the coRNN
reference update (Rusch & Mishra; `Det_CoRNN_Caps` with `n_internal_steps=1`, one step
per frame, `research/reference_impls.md` §4.1): `kl.simulate(sheet, y0, t1=T * dt,
dt=dt, solver="symplectic_euler")` with a drive of one frame per step (`drive_dt=dt`)
gives the reference's $T$ updates, the saved states being those after each update.

First order; symplectic for separable Hamiltonians $H = \tfrac12|v|^2 + U(h)$ (the
linear undamped sheet), so it keeps a modified energy exactly and the true energy
within $O(\Delta)$ for all times, where forward Euler's grows without bound. Fixed step
only (no error estimate); linear dense output between steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax as dfx
import jax.numpy as jnp

from ._models.base import AbstractModel
from ._models.lattice_oscillators import AbstractSecondOrderModel

__all__ = ["SymplecticEuler"]


class SymplecticEuler(dfx.AbstractSolver):
    r"""Symplectic Euler $v \leftarrow v + \Delta a(t, h, v)$, $h \leftarrow h + \Delta v$
    for second-order models (`kl.AbstractSecondOrderModel`, e.g.
    `kl.LatticeOscillators`); any other model is rejected.

    **Arguments:** None.
    """

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., dfx.LocalLinearInterpolation]] = (
        dfx.LocalLinearInterpolation
    )

    def order(self, terms):
        return 1

    def init(self, terms, t0, t1, y0, args):
        model = args[0] if isinstance(args, tuple) else args
        if not isinstance(model, AbstractSecondOrderModel):
            name = type(model).__name__ if isinstance(model, AbstractModel) else "model"
            raise ValueError(
                "solver 'symplectic_euler' needs a second-order model "
                f"(kl.AbstractSecondOrderModel, e.g. kl.LatticeOscillators); got {name}. "
                "Use solver='euler' or 'rk4'"
            )
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump, terms
        model = args[0]
        y, aux = y0
        dt = jnp.asarray(t1 - t0, y.dtype)
        v = y[1] + dt * model.acceleration(t0, y[0], y[1])
        y1 = (jnp.stack([y[0] + dt * v, v]), aux)
        dense_info = dict(y0=y0, y1=y1)
        return y1, None, dense_info, None, dfx.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
