r"""The AKOrN discrete Kuramoto step as a diffrax solver.

AKOrN (eqs. 4-5, `klayer.py`) updates $T$ times per layer

$$x \leftarrow \Pi\big[x + \gamma\,(\Omega x + \operatorname{Proj}_x(c + Jx))\big],
\qquad \Pi(v)_i = v_i / |v_i| ,$$

i.e. forward Euler with step $\gamma$ followed by normalisation. `AKOrNStep` is that step
for `kl.simulate`: `simulate(model, x0, t1=T * gamma, dt=gamma, solver=kl.AKOrNStep())`
reproduces the reference's $T$ updates (the reference logs the energy at the pre-update
states, i.e. at the saved times `0, gamma, ..., (T-1) gamma`, after a dummy 0).

Reference gotcha: with `use_omega=False` the reference replaces $\Omega x$ by $x$ (the
layer becomes `nn.Identity()`), and since
$x + \gamma(x + P y) = (1 + \gamma)\,(x + \tfrac{\gamma}{1+\gamma} P y)$ the update is the
Ω-free step with $\gamma' = \gamma / (1 + \gamma)$ (0.5 for the default $\gamma = 1$). To
reproduce such runs use `omega=None` and `dt=reference_gamma(gamma, use_omega=False)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax as dfx
import jax
import jax.numpy as jnp

from ._models.base import AbstractModel, AbstractSphereModel


def _normalise(v):
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


class AKOrNStep(dfx.AbstractSolver):
    r"""AKOrN's discrete Kuramoto update $x \leftarrow \Pi[x + \gamma f(t, x)]$ (forward
    Euler and renormalisation of every vector), with $\gamma$ = the step `dt`.

    First order; fixed step only (no error estimate); linear dense output between steps.
    For sphere models (`kl.SphereKuramoto`); a phase model is rejected.

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
        if isinstance(model, AbstractModel) and not isinstance(
            model, AbstractSphereModel
        ):
            raise ValueError(
                "AKOrNStep is the AKOrN update for sphere models (kl.SphereKuramoto); "
                f"got a {type(model).__name__} on the {model.manifold!r} manifold. Use "
                "solver='euler'"
            )
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        control = terms.contr(t0, t1)
        inc = terms.vf_prod(t0, y0, args, control)
        y1 = jax.tree_util.tree_map(lambda a, b: _normalise(a + b), y0, inc)
        dense_info = dict(y0=y0, y1=y1)
        return y1, None, dense_info, None, dfx.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


def reference_gamma(gamma: float, *, use_omega: bool = True) -> float:
    r"""The step that reproduces the AKOrN reference code's update with step `gamma`.

    With `use_omega=True` this is `gamma`. With `use_omega=False` the reference silently
    uses $\Omega x \to x$, which normalises to the Ω-free step $\gamma/(1+\gamma)$; run
    the model with `omega=None` and this step.
    """
    gamma = float(gamma)
    if not gamma > 0:
        raise ValueError(f"`gamma` must be > 0; got {gamma}")
    return gamma if use_omega else gamma / (1.0 + gamma)
