"""Solvers by name: classical RK4, the diffrax ODE and SDE tables, and resolution.

- `RK4`: diffrax ships no classical fourth-order Runge--Kutta; this is its Butcher
  tableau with third-order Hermite dense output.
- `SOLVERS` (ODEs), `SDE_SOLVERS` (additive noise, where Ito and Stratonovich agree),
  `DELAY_SOLVERS` / `SDDE_SOLVERS` (the fixed-step delay solver's methods).
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax as dfx
import numpy as np

from .._akorn_step import AKOrNStep
from .._delays import DELAY_SOLVERS, SDDE_SOLVERS, DelaySolver
from .._misc import nearest
from .._symplectic_step import SymplecticEuler

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

_rk4_tableau = dfx.ButcherTableau(
    c=np.array([0.5, 0.5, 1.0]),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    b_error=np.zeros(4),
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
)


class RK4(dfx.AbstractERK):
    """The classical fourth-order Runge--Kutta method (fixed step; no error estimate).

    diffrax ships no classical RK4; this is its Butcher tableau with 3rd-order Hermite
    dense output.
    """

    tableau = _rk4_tableau
    interpolation_cls = dfx.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        del terms
        return 4


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
