"""Integration: `simulate` over diffrax for any model of the contract.

`solvers.py` (names, RK4), `scan_adjoint.py` (the default fixed-step adjoint), `manifold.py` (the retracting wrapper and vector fields on
the internal state), `options.py` (argument checks and static choices), `solve.py` (the
compiled solve), `trajectory.py` (`SaveAt`, `Trajectory`, `RESULTS`), `simulate.py`.
"""

from .options import num_steps as _num_steps
from .scan_adjoint import ScanAdjoint
from .simulate import simulate
from .solvers import (
    BROWNIAN,
    DELAY_SOLVERS,
    RK4,
    SDDE_SOLVERS,
    SDE_SOLVERS,
    SOLVERS,
)
from .trajectory import RESULTS, SaveAt, SimulationError, Trajectory

__all__ = [
    "BROWNIAN",
    "DELAY_SOLVERS",
    "RESULTS",
    "RK4",
    "SDDE_SOLVERS",
    "SDE_SOLVERS",
    "SOLVERS",
    "SaveAt",
    "ScanAdjoint",
    "SimulationError",
    "Trajectory",
    "_num_steps",
    "simulate",
]
