"""Keeping the state on its manifold inside diffrax, for any model.

The solver's state is the model's internal pair `Y = (y, aux)` (`AbstractModel.pack`):
`y` the state, `aux` the retraction's bookkeeping (winding numbers of wrapped phases,
`None` for most models), which has zero drift and zero noise. diffrax `args` is always
the pair `(model, history)`: `history` is the delay buffer inside `DelaySolver` and
`None` everywhere else. Nothing here asks what kind of model it has.

- `drift_vf` / `diffusion_vf`: the ODE and noise vector fields on `Y`; `ito_drift_vf`
  adds the Ito correction of Stratonovich noise; `NoiseTerm` applies correlated noise.
- `StatePath`: one Brownian path on `y`, presented as `(dW, 0)` to match `Y`.
- `Retract`: wraps any diffrax solver and calls `model.retract` after every step. Dense
  output inside a step is left unretracted (continuous); saved values are retracted by
  `save_fn`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import diffrax as dfx
import jax
import jax.numpy as jnp
import lineax as lx

__all__ = [
    "NoiseTerm",
    "Retract",
    "StatePath",
    "diffusion_vf",
    "drift_vf",
    "final_fn",
    "ito_drift_vf",
    "make_save_fn",
]


def _zeros(tree):
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def drift_vf(t, Y, args):
    """`(model.drift(t, y, y_delayed), 0)` on the internal state."""
    model, history = args
    y, aux = Y
    delayed = None if history is None else history.delayed(t, y, model.difference)
    return (model.drift(t, y, delayed), _zeros(aux))


def ito_drift_vf(t, Y, args):
    """`drift_vf` plus the model's Ito correction of Stratonovich noise (for solvers
    that converge to the Ito solution)."""
    model, _ = args
    f, zero = drift_vf(t, Y, args)
    return (f + model.ito_correction(t, Y[0]), zero)


def diffusion_vf(t, Y, args):
    """The noise on the state, the bookkeeping gets none: diagonal `g(t, y)` as a
    `lineax.DiagonalLinearOperator`, or the model's `noise_field` (correlated noise,
    a `kuralab._noise_mixing.NoiseField`, applied by `NoiseTerm`)."""
    model, _ = args
    y, aux = Y
    field = model.noise_field(t, y)
    if field is None:
        return lx.DiagonalLinearOperator((model.diffusion(t, y), _zeros(aux)))
    return (field, _zeros(aux))


class NoiseTerm(dfx.ControlTerm):
    """`ControlTerm` whose vector field may be a `(NoiseField, zeros)` pair: the state's
    increment is `field.apply(dB)` for a Brownian motion `dB` of the model's
    `noise_shape` (which may differ from the state's)."""

    def prod(self, vf, control):
        if isinstance(vf, lx.AbstractLinearOperator):
            return vf.mv(control)
        field, zero = vf
        return (field.apply(control[0]), zero)


class StatePath(dfx.AbstractBrownianPath):
    """One Brownian path on the state, presented as the pair `(dW, 0)` that matches the
    internal state `(y, aux)`. Every SDE solver sees the same path for a key."""

    path: dfx.AbstractBrownianPath
    aux: object  # a PyTree of jax.ShapeDtypeStruct (or None), the bookkeeping's shape

    @property
    def t0(self):
        return self.path.t0

    @property
    def t1(self):
        return self.path.t1

    @property
    def levy_area(self):
        return self.path.levy_area

    def _pair(self, v, like=None):
        zeros = jax.tree_util.tree_map(
            lambda s: jnp.zeros(s.shape, s.dtype) if like is None else like, self.aux
        )
        return (v, zeros)

    def evaluate(self, t0, t1=None, left=True, use_levy=False):
        out = self.path.evaluate(t0, t1, left, use_levy)
        if isinstance(out, dfx.AbstractBrownianIncrement):
            fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
            return type(out)(
                **{
                    k: self._pair(v, v) if k == "dt" else self._pair(v)
                    for k, v in fields.items()
                }
            )
        return self._pair(out)


class Retract(dfx.AbstractWrappedSolver):
    """Wrap any diffrax solver: after each step, retract the state onto the manifold
    (`model.retract`, the model arriving as `args[0]`)."""

    solver: dfx.AbstractSolver

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    @property
    def scan_kind(self):
        # diffrax inspects this on Runge--Kutta solvers (isinstance is forwarded).
        return getattr(self.solver, "scan_kind", None)

    @property
    def root_finder(self):
        # diffrax reads (and, with an adaptive controller, sets through `eqx.tree_at`)
        # the tolerances of implicit solvers' root finders (isinstance is forwarded).
        return self.solver.root_finder  # pyright: ignore

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump
        )
        return args[0].retract(y1), y_error, dense_info, solver_state, result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


def make_save_fn(user_fn: Callable | None):
    """diffrax save function: the retracted internal state, or `user_fn(t, y)`."""

    def save(t, Y, args):
        Y = args[0].retract(Y)
        if user_fn is not None:
            return user_fn(t, Y[0])
        return Y

    return save


def final_fn(t, Y, args):
    return Y
