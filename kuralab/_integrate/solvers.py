"""Solvers by name: classical RK4, the diffrax ODE and SDE tables, and resolution.

- `RK4`: diffrax ships no classical fourth-order Runge--Kutta; this is it, its four
  stages written out in one step (no stage loop), with third-order Hermite dense output.
- `SOLVERS` (ODEs), `SDE_SOLVERS` (additive noise, where Ito and Stratonovich agree),
  `DELAY_SOLVERS` / `SDDE_SOLVERS` (the fixed-step delay solver's methods).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax as dfx
import jax

from .._akorn_step import AKOrNStep
from .._delays import DELAY_SOLVERS, SDDE_SOLVERS, DelaySolver
from .._misc import nearest
from .._symplectic_step import SymplecticEuler
from .manifold import drift_vf

__all__ = [
    "BROWNIAN",
    "DELAY_SOLVERS",
    "RK4",
    "SDDE_SOLVERS",
    "SDE_SOLVERS",
    "SOLVERS",
    "needs_levy_area",
    "has_error_estimate",
    "resolve_solver",
    "solver_name",
]

def _axpy(y, *terms):
    """`y + sum(c * k for c, k in terms)` leaf by leaf (pytree states)."""

    def leaf(a, *ks):
        out = a
        for (c, _), k in zip(terms, ks, strict=True):
            out = out + c * k
        return out

    return jax.tree_util.tree_map(leaf, y, *(k for _, k in terms))


class RK4(dfx.AbstractSolver):
    r"""The classical fourth-order Runge--Kutta method (fixed step; no error estimate).

    With $h$ = the step and $k_i$ the increments $h f(\cdot)$:
    $k_1 = h f(t_0, y_0)$, $k_2 = h f(t_0 + h/2, y_0 + k_1/2)$,
    $k_3 = h f(t_0 + h/2, y_0 + k_2/2)$, $k_4 = h f(t_0 + h, y_0 + k_3)$,
    $y_1 = y_0 + (k_1 + 2 k_2 + 2 k_3 + k_4)/6$; third-order Hermite dense output from
    $k_1$ and $k_4$ (as diffrax's `from_k` on this tableau).

    diffrax ships no classical RK4. The four stages are written out in one step
    function rather than run through diffrax's generic Runge--Kutta stage loop (a
    checkpointed while loop over the Butcher tableau): the step is one straight-line
    computation that XLA fuses across stages, and reverse mode through it stores the
    stage residuals instead of re-running a checkpointed stage loop (issue 18: 1.9x ->
    see benchmarks/README.md "Gradients").

    **Arguments:** None.
    """

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar[
        Callable[..., dfx.ThirdOrderHermitePolynomialInterpolation]
    ] = dfx.ThirdOrderHermitePolynomialInterpolation

    def order(self, terms):
        del terms
        return 4

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        fused = _fused_step(terms, t0, t1, y0, args)
        if fused is not None:
            y1, k1, k4 = fused
            dense_info = dict(y0=y0, y1=y1, k0=k1, k1=k4)
            return y1, None, dense_info, None, dfx.RESULTS.successful
        tm = t0 + 0.5 * (t1 - t0)
        h = terms.contr(t0, t1)
        k1 = terms.vf_prod(t0, y0, args, h)
        k2 = terms.vf_prod(tm, _axpy(y0, (0.5, k1)), args, h)
        k3 = terms.vf_prod(tm, _axpy(y0, (0.5, k2)), args, h)
        k4 = terms.vf_prod(t1, _axpy(y0, (1.0, k3)), args, h)
        sixth, third = 1.0 / 6.0, 1.0 / 3.0
        y1 = _axpy(y0, (sixth, k1), (third, k2), (third, k3), (sixth, k4))
        dense_info = dict(y0=y0, y1=y1, k0=k1, k1=k4)
        return y1, None, dense_info, None, dfx.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


def _fused_step(terms, t0, t1, y0, args):
    """`(y1, k1, k4)` from the model's own whole-step kernel (`_rk4_step`, e.g. the
    mean-field Kuramoto model's native step) when `terms` is kuralab's undelayed
    drift, else None. diffrax hands solvers its terms wrapped (`WrapTerm`: times
    multiplied by the integration direction); the stage times passed on are those the
    drift would see."""
    term, direction = terms, 1
    if type(term).__name__ == "WrapTerm":  # diffrax._term.WrapTerm (not exported)
        term, direction = term.term, term.direction
    if not (
        isinstance(term, dfx.ODETerm)
        and term.vector_field is drift_vf
        and isinstance(args, tuple)
        and len(args) == 2
        and args[1] is None
    ):
        return None
    step = getattr(args[0], "_rk4_step", None)
    if step is None:
        return None
    tm = t0 + 0.5 * (t1 - t0)
    times = (t0 * direction, tm * direction, t1 * direction)
    return step(times, terms.contr(t0, t1), y0)


SOLVERS: dict[str, Callable[[], dfx.AbstractSolver]] = {
    "euler": dfx.Euler,
    "heun": dfx.Heun,
    "midpoint": dfx.Midpoint,
    "ralston": dfx.Ralston,
    "rk4": RK4,
    "bosh3": dfx.Bosh3,
    "tsit5": dfx.Tsit5,
    "dopri5": dfx.Dopri5,
    "dopri8": dfx.Dopri8,
    "akorn": AKOrNStep,  # AKOrN's discrete step x <- Pi[x + gamma f(x)] (dt = gamma)
    "symplectic_euler": SymplecticEuler,  # v <- v + dt a(h, v); h <- h + dt v (coRNN)
}
#: Named solvers without an embedded error estimate (fixed step only).
_NO_ERROR_ESTIMATE = (dfx.Euler, RK4, AKOrNStep, SymplecticEuler)

#: Solvers for models with noise (additive, so Ito and Stratonovich agree).
SDE_SOLVERS: dict[str, Callable[[], dfx.AbstractSolver]] = {
    "euler": dfx.Euler,  # Euler--Maruyama, strong order 1 for additive noise
    "heun": dfx.Heun,  # stochastic Heun
    "euler_heun": dfx.EulerHeun,
    "sra1": dfx.SRA1,  # strong order 1.5 for additive noise
    "shark": dfx.ShARK,  # strong order 1.5 for additive noise
}
_NEEDS_LEVY_AREA = (dfx.SRA1, dfx.ShARK)
#: Brownian paths of `simulate(..., brownian=)`.
BROWNIAN = ("tree", "increments")


def resolve_solver(solver, stochastic: bool = False) -> dfx.AbstractSolver:
    """A diffrax solver from a name (of `SOLVERS`, or `SDE_SOLVERS` when `stochastic`)
    or a solver instance; a one-line error naming the choices otherwise."""
    if isinstance(solver, str):
        table = SDE_SOLVERS if stochastic else SOLVERS
        if solver not in table:
            if stochastic and solver in SOLVERS:
                raise ValueError(
                    f"solver {solver!r} is not an SDE solver; the model has noise, so "
                    f"use one of {sorted(SDE_SOLVERS)}"
                )
            raise ValueError(
                f"unknown solver {solver!r}; expected one of {sorted(table)} or a "
                "diffrax solver instance" + nearest(solver, table)
            )
        return table[solver]()
    if isinstance(solver, dfx.AbstractSolver):
        return solver
    raise TypeError(
        f"`solver` must be a name ({sorted(SOLVERS)}) or a diffrax solver; got "
        f"{type(solver).__name__}"
    )


def solver_name(solver: dfx.AbstractSolver) -> str:
    """The table name of a solver instance (its class name for other solvers)."""
    if isinstance(solver, DelaySolver):
        return solver.method
    for name, cls in (SOLVERS | SDE_SOLVERS).items():
        if type(solver) is cls:
            return name
    return type(solver).__name__


def has_error_estimate(solver: dfx.AbstractSolver) -> bool:
    return not isinstance(solver, _NO_ERROR_ESTIMATE)


def needs_levy_area(solver: dfx.AbstractSolver) -> bool:
    return isinstance(solver, _NEEDS_LEVY_AREA)


#: What each SDE solver converges to for multiplicative noise (diffrax's documentation:
#: Euler is Euler--Maruyama, Ito; Heun and EulerHeun converge to Stratonovich; SRA1 and
#: ShARK are for additive noise only).
_ITO = (dfx.Euler, dfx.ItoMilstein)
_STRATONOVICH = (dfx.Heun, dfx.EulerHeun, dfx.StratonovichMilstein, dfx.Midpoint)


def noise_calculus(solver: dfx.AbstractSolver, delayed: bool = False) -> str | None:
    """`"ito"`, `"stratonovich"`, `"additive"` (additive-noise-only solvers) or `None`
    (unknown) for a solver; delayed runs (`DelaySolver`: Euler--Maruyama, or Heun with
    the noise at the step's start) are Ito."""
    if delayed or isinstance(solver, _ITO):
        return "ito"
    if isinstance(solver, _STRATONOVICH):
        return "stratonovich"
    if isinstance(solver, _NEEDS_LEVY_AREA):
        return "additive"
    return None
