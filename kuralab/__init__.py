"""kuralab: coupled-oscillator (Kuramoto family) dynamics on JAX.

Models are Equinox modules (PyTrees) integrated by `kl.simulate` over diffrax; results
become `xarray.Dataset`s saved to netCDF with provenance.
"""

import importlib.metadata

from . import io as io, testing as testing, theory as theory
from ._coupling import (
    AbstractCoupling as AbstractCoupling,
    DenseCoupling as DenseCoupling,
    LatticeCoupling as LatticeCoupling,
    MeanField as MeanField,
    SparseCoupling as SparseCoupling,
)
from ._delays import Delays as Delays
from ._integrate import (
    RESULTS as RESULTS,
    RK4 as RK4,
    SDE_SOLVERS as SDE_SOLVERS,
    SOLVERS as SOLVERS,
    SaveAt as SaveAt,
    SimulationError as SimulationError,
    Trajectory as Trajectory,
    simulate as simulate,
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
)
from ._models.kuramoto import Forcing as Forcing, Kuramoto as Kuramoto
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

__version__ = importlib.metadata.version("kuralab")
