"""kuralab: coupled-oscillator (Kuramoto family) dynamics on JAX.

Models are Equinox modules (PyTrees) integrated by `kl.simulate` over diffrax; results
become `xarray.Dataset`s saved to netCDF with provenance.

The public names below are loaded on first use (PEP 562), so `import kuralab` and the
`kuralab` command line do not pay for importing JAX until a model is touched (DESIGN.md
§4: the CLI imports JAX lazily). The `ds.kura` xarray accessor is registered at import.
"""

import importlib
import importlib.metadata
from typing import TYPE_CHECKING

from ._xla_flags import apply_default_xla_flags as _apply_default_xla_flags

# XLA:CPU's 512-bit vectors on AVX-512 CPUs, before JAX creates its CPU client, only
# with KURALAB_XLA_FLAGS=1 (kuralab/_xla_flags.py: off by default, it miscompiles
# jnp.arctan; a user's XLA_FLAGS wins).
_XLA_FLAGS_NOT_SET = _apply_default_xla_flags()

from . import _accessor  # noqa: E402, F401  (registers the `ds.kura` accessor)

__version__ = importlib.metadata.version("kuralab")

# public name -> private module that defines it (the curated API)
_EXPORTS = {
    "_akorn_step": ("AKOrNStep", "reference_gamma"),
    "_basins": (
        "INCOHERENT",
        "SYNCHRONISED",
        "UNSETTLED",
        "basin_fractions",
        "classify_phase_state",
        "classify_synchrony",
        "classify_twisted",
    ),
    "_bifurcation": ("BRANCH_POINT", "FOLD", "HOPF", "equilibria"),
    "_continuation": (
        "LockedState",
        "continuation",
        "locked_state",
    ),
    "_coupling": (
        "AbstractCoupling",
        "AbstractOperator",
        "AbstractVectorCoupling",
        "AttentionCoupling",
        "BlockCoupling",
        "ChannelConvCoupling",
        "DenseCoupling",
        "LatticeBlockCoupling",
        "LatticeCoupling",
        "MeanField",
        "SparseCoupling",
    ),
    "_critical": ("CriticalCouplingEstimate", "estimate_critical_coupling"),
    "_delays": ("Delays",),
    "_edge_delays": ("EdgeDelays",),
    "_energy": (
        "akorn_logged_energy",
        "check_lyapunov",
        "energy",
        "lyapunov_hypotheses",
        "phase_potential",
    ),
    "_events": (
        "At",
        "EventLog",
        "Kick",
        "RemoveEdges",
        "ScaleCoupling",
        "SetParameter",
        "Stop",
        "When",
        "simulate_events",
    ),
    "_integrate": (
        "RESULTS",
        "RK4",
        "SDE_SOLVERS",
        "SOLVERS",
        "SaveAt",
        "ScanAdjoint",
        "SimulationError",
        "Trajectory",
        "simulate",
    ),
    "_lyapunov": ("lyapunov_exponents", "lyapunov_spectrum"),
    "_misc": ("nonnegative_tag", "symmetric_tag", "wrap_phase"),
    "_models.base": (
        "AbstractModel",
        "AbstractPhaseModel",
        "AbstractSphereModel",
        "LyapunovHypotheses",
    ),
    "_models.kuramoto": ("Forcing", "Kuramoto"),
    "_models.lattice_oscillators": ("AbstractSecondOrderModel", "LatticeOscillators"),
    "_models.sphere": (
        "AbstractOmega",
        "BlockOmega",
        "SkewOmega",
        "SphereKuramoto",
        "random_sphere",
    ),
    "_noise": ("Noise",),
    "_observables": (
        "circular_variance",
        "cluster_order",
        "effective_frequencies",
        "local_order",
        "order_parameter",
        "splay",
    ),
    "_sampling": ("random_phases", "sample_frequencies"),
    "_schedules": (
        "AbstractSchedule",
        "Constant",
        "Cosine",
        "Geometric",
        "Linear",
        "Table",
    ),
    "_sweep": ("sweep",),
    "_symplectic_step": ("SymplecticEuler",),
    "learn.kuranet": ("PairwiseMLPCoupling",),  # learned coupling (kl.learn), DESIGN §3
}
_SUBMODULES = ("io", "learn", "plot", "spectral", "testing", "theory", "waves")
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'kuralab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__():
    return sorted({*globals(), *_WHERE, *_SUBMODULES})


if TYPE_CHECKING:  # the same names, for static type checkers and IDEs
    from . import (
        io as io,
        learn as learn,
        plot as plot,
        spectral as spectral,
        testing as testing,
        theory as theory,
        waves as waves,
    )
    from ._akorn_step import AKOrNStep as AKOrNStep, reference_gamma as reference_gamma
    from ._basins import (
        INCOHERENT as INCOHERENT,
        SYNCHRONISED as SYNCHRONISED,
        UNSETTLED as UNSETTLED,
        basin_fractions as basin_fractions,
        classify_phase_state as classify_phase_state,
        classify_synchrony as classify_synchrony,
        classify_twisted as classify_twisted,
    )
    from ._bifurcation import (
        BRANCH_POINT as BRANCH_POINT,
        FOLD as FOLD,
        HOPF as HOPF,
        equilibria as equilibria,
    )
    from ._continuation import (
        LockedState as LockedState,
        continuation as continuation,
        locked_state as locked_state,
    )
    from ._coupling import (
        AbstractCoupling as AbstractCoupling,
        AbstractOperator as AbstractOperator,
        AbstractVectorCoupling as AbstractVectorCoupling,
        AttentionCoupling as AttentionCoupling,
        BlockCoupling as BlockCoupling,
        ChannelConvCoupling as ChannelConvCoupling,
        DenseCoupling as DenseCoupling,
        LatticeBlockCoupling as LatticeBlockCoupling,
        LatticeCoupling as LatticeCoupling,
        MeanField as MeanField,
        SparseCoupling as SparseCoupling,
    )
    from ._critical import (
        CriticalCouplingEstimate as CriticalCouplingEstimate,
        estimate_critical_coupling as estimate_critical_coupling,
    )
    from ._delays import Delays as Delays
    from ._edge_delays import EdgeDelays as EdgeDelays
    from ._energy import (
        akorn_logged_energy as akorn_logged_energy,
        check_lyapunov as check_lyapunov,
        energy as energy,
        lyapunov_hypotheses as lyapunov_hypotheses,
        phase_potential as phase_potential,
    )
    from ._events import (
        At as At,
        EventLog as EventLog,
        Kick as Kick,
        RemoveEdges as RemoveEdges,
        ScaleCoupling as ScaleCoupling,
        SetParameter as SetParameter,
        Stop as Stop,
        When as When,
        simulate_events as simulate_events,
    )
    from ._integrate import (
        RESULTS as RESULTS,
        RK4 as RK4,
        SDE_SOLVERS as SDE_SOLVERS,
        SOLVERS as SOLVERS,
        SaveAt as SaveAt,
        ScanAdjoint as ScanAdjoint,
        SimulationError as SimulationError,
        Trajectory as Trajectory,
        simulate as simulate,
    )
    from ._lyapunov import (
        lyapunov_exponents as lyapunov_exponents,
        lyapunov_spectrum as lyapunov_spectrum,
    )
    from ._misc import (
        nonnegative_tag as nonnegative_tag,
        symmetric_tag as symmetric_tag,
        wrap_phase as wrap_phase,
    )
    from ._models.base import (
        AbstractModel as AbstractModel,
        AbstractPhaseModel as AbstractPhaseModel,
        AbstractSphereModel as AbstractSphereModel,
        LyapunovHypotheses as LyapunovHypotheses,
    )
    from ._models.kuramoto import Forcing as Forcing, Kuramoto as Kuramoto
    from ._models.lattice_oscillators import (
        AbstractSecondOrderModel as AbstractSecondOrderModel,
        LatticeOscillators as LatticeOscillators,
    )
    from ._models.sphere import (
        AbstractOmega as AbstractOmega,
        BlockOmega as BlockOmega,
        SkewOmega as SkewOmega,
        SphereKuramoto as SphereKuramoto,
        random_sphere as random_sphere,
    )
    from ._noise import Noise as Noise
    from ._observables import (
        circular_variance as circular_variance,
        cluster_order as cluster_order,
        effective_frequencies as effective_frequencies,
        local_order as local_order,
        order_parameter as order_parameter,
        splay as splay,
    )
    from ._sampling import (
        random_phases as random_phases,
        sample_frequencies as sample_frequencies,
    )
    from ._schedules import (
        AbstractSchedule as AbstractSchedule,
        Constant as Constant,
        Cosine as Cosine,
        Geometric as Geometric,
        Linear as Linear,
        Table as Table,
    )
    from ._sweep import sweep as sweep
    from ._symplectic_step import SymplecticEuler as SymplecticEuler
    from .learn.kuranet import PairwiseMLPCoupling as PairwiseMLPCoupling
