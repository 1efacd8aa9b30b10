"""Study specs as data: the frozen `StudySpec` and its sections, and `PARAMETERS`.

Public through `kuralab.study` (`StudySpec`, `parse_spec`, `load_spec`, `SpecError`);
every key is documented in `studies/README.md`. Each TOML section maps to one frozen
dataclass here; `kuralab._study.parse` validates TOML text into them (every error one
line naming the key path, the value and the expected form), and `StudySpec.to_toml`
writes the canonical text back.

**Sweepable parameters are one table.** `PARAMETERS` maps a parameter name to a
`Parameter`: the `[model]` sub-table holding its fixed value, the model kinds that have
it, its units and long name, and whether it must be >= 0. Everything that handles a
sweep axis (validation, the grid, the chunk columns, the coordinate attributes, the
fixed-value lookup, the ramped axis of an adiabatic study) looks parameters up by name
in this table; the model builder (`kuralab._study.plan.PointModel`) reads them by name.
A new sweepable parameter, say a forcing strength `F` of the phase model, is one entry

```python
PARAMETERS["F"] = Parameter("forcing", ("kuramoto",), "rad/time", "forcing strength F")
```

plus the line of `PointModel` that uses `p["F"]` (and the parsing of its
`[model.forcing]` table); no list elsewhere has to stay in step.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


class SpecError(ValueError):
    """A study spec is invalid. The message is one line naming the key path, the value
    and the expected form, e.g. `solve.dt = -0.1: expected a number > 0`."""


# ---------------------------------------------------------------------------------
# The sweepable parameters
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """How one sweepable model parameter enters a study.

    - `section`: the `[model]` sub-table holding its fixed value,
      `model.<section>.<name>`; a model without that table does not have the
      parameter (it is `absent` there, e.g. no noise: `D = 0`).
    - `kinds`: the model kinds that have it (the `[sweep]` axes each kind admits).
    - `units`, `long_name`: the attributes of its coordinate in the result.
    - `nonnegative`: what its values are, if they must be >= 0 (for the message).
    """

    section: str
    kinds: tuple[str, ...]
    units: str
    long_name: str
    nonnegative: str | None = None
    absent: float = 0.0
    units_by_kind: tuple[tuple[str, str], ...] = ()  # (kind, units) overrides

    def key(self, name: str) -> str:
        return f"model.{self.section}.{name}"

    def units_for(self, kind: str) -> str:
        """The units of the parameter in a model of `kind` (CF-style strings)."""
        return dict(self.units_by_kind).get(kind, self.units)


#: The sweepable parameters, by name (the one table; see the module docstring).
PARAMETERS: dict[str, Parameter] = {
    # dtheta/dt = omega + K sin(...): K is a rate, rad per unit of model time; on
    # the sphere dx/dt = Proj(K mean x) with unit vectors x: per unit time.
    "K": Parameter(
        "coupling",
        ("kuramoto", "sphere"),
        "rad/time",
        "coupling strength K",
        units_by_kind=(("sphere", "1/time"),),
    ),
    "lag": Parameter("coupling", ("kuramoto",), "rad", "Sakaguchi phase lag alpha"),
    "D": Parameter(
        "noise",
        ("kuramoto",),
        "rad2/time",
        "noise diffusion coefficient D",
        nonnegative="noise diffusion coefficients",
    ),
    "tau": Parameter(
        "delays",
        ("kuramoto",),
        "1",
        "transmission delay tau (in units of the model time)",
        nonnegative="delays in time units",
    ),
    "speed": Parameter(
        "delays",
        ("kuramoto",),
        "1",
        "conduction speed v of per-edge delays tau_ij = distance_ij / v (length per "
        "unit of model time)",
        absent=1.0,
    ),
    "h": Parameter(
        "stimulus", ("sphere",), "1/time", "stimulus strength h, c_i = h e_0"
    ),
}

#: Model parameters a `[sweep]` axis may name, and where their fixed value lives.
SWEEPABLE = {name: p.key(name) for name, p in PARAMETERS.items()}

#: The model kinds.
MODEL_KINDS = ("kuramoto", "sphere")

#: The parameters each model kind has (the `[sweep]` axes it admits), in table order.
KIND_PARAMETERS = {
    kind: tuple(name for name, p in PARAMETERS.items() if kind in p.kinds)
    for kind in MODEL_KINDS
}

#: Full circle: the default spread of the initial phases.
FULL_CIRCLE = 2 * math.pi


@dataclass(frozen=True)
class StudyInfo:
    """`[study]`: `name` (used for the default output path) and a free `description`."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class FrequencySpec:
    """`[model.frequencies]`: the natural-frequency distribution
    (`kl.sample_frequencies`), or `distribution = "identical"`: every oscillator has
    `omega = loc` (then `scale` and `sampling` are absent, `None`)."""

    distribution: str
    scale: float | None = None
    loc: float = 0.0
    sampling: str | None = "random"

    @property
    def identical(self) -> bool:
        return self.distribution == "identical"


@dataclass(frozen=True)
class MeanFieldSpec:
    """`[model.coupling]`: `kind = "mean_field"` is `kl.MeanField(K)`; `"dense"`,
    `"sparse"` and `"lattice"` (phase models) are `K` times the structure in
    `network` (a `kuralab._study.network.NetworkSpec`). `lag` is the Sakaguchi lag
    (radians). A value is `None` exactly when `[sweep]` sweeps it."""

    K: float | None
    lag: float | None = 0.0
    kind: str = "mean_field"
    network: Any = None  # NetworkSpec for the structured kinds


@dataclass(frozen=True)
class NoiseSpec:
    """`[model.noise]`: additive noise `kl.Noise(D)`, `sqrt(2 D) dW_i`, with the
    Brownian path `brownian` ("increments": fast, for fixed-step sweeps; "tree").
    `D` is `None` exactly when `[sweep]` sweeps it."""

    D: float | None
    brownian: str = "increments"


@dataclass(frozen=True)
class DelaySpec:
    """`[model.delays]`: one transmission delay `tau` (time units) for every sender,
    `kl.Delays(tau)` with a constant history (the initial phases). `None` exactly when
    `[sweep]` sweeps it."""

    tau: float | None

    @property
    def speed(self) -> float:
        return PARAMETERS["speed"].absent  # uniform delays have no conduction speed


#: The geometries and distances of `[model.delays]` with `kind = "edges"`.
EDGE_DISTANCES = ("arc", "chord")


@dataclass(frozen=True)
class EdgeDelaySpec:
    """`[model.delays]` with `kind = "edges"`: per-edge delays
    tau_ij = d_ij / v (`kl.EdgeDelays.from_positions`) for oscillators equally
    spaced on a circle of `radius` (oscillator i at angle 2 pi i / n), `distance`
    `"arc"` (along the ring) or `"chord"` (straight line); constant history. `speed`
    v is `None` exactly when `[sweep]` sweeps it."""

    speed: float | None
    radius: float = 1.0
    distance: str = "arc"
    kind: str = "edges"

    @property
    def tau(self) -> float:
        return 0.0  # no single delay: the edges' delays follow from the speed

    def distance_bounds(self, n: int, hops: int | None = None) -> tuple[float, float]:
        """Smallest and largest distance between two of `n` oscillators on the circle
        at most `hops` positions apart (default: any two): a lower and an upper bound
        on every edge's."""
        if n < 2:
            return (math.inf, 0.0)
        far = n // 2 if hops is None else max(1, min(int(hops), n // 2))
        r = self.radius
        if self.distance == "arc":
            return (2 * math.pi * r / n, 2 * math.pi * r * far / n)
        return (2 * r * math.sin(math.pi / n), 2 * r * math.sin(math.pi * far / n))


@dataclass(frozen=True)
class InitialPhasesSpec:
    """`[model.initial_phases]`: initial phases i.i.d. uniform on
    `[-spread/2, spread/2)`; the default `spread = 2 pi` is the whole circle."""

    spread: float = FULL_CIRCLE


@dataclass(frozen=True)
class KuramotoSpec:
    """`[model]` with `kind = "kuramoto"`: `n` oscillators,
    `kl.Kuramoto(omega, coupling, lag, delays, noise)` with frequencies and initial
    phases drawn per seed."""

    n: int | None  # None when `sweep.n` sweeps the network size
    frequencies: FrequencySpec
    coupling: MeanFieldSpec
    noise: NoiseSpec | None = None
    delays: DelaySpec | EdgeDelaySpec | None = None
    initial_phases: InitialPhasesSpec = InitialPhasesSpec()
    kind: str = "kuramoto"

    @property
    def noisy(self) -> bool:
        return self.noise is not None

    @property
    def delayed(self) -> bool:
        return self.delays is not None

    @property
    def edge_delayed(self) -> bool:
        return isinstance(self.delays, EdgeDelaySpec)


@dataclass(frozen=True)
class StimulusSpec:
    """`[model.stimulus]` (sphere models): the AKOrN stimulus `c_i = h e_0`, the same
    field along the first axis for every oscillator. `h` is `None` exactly when
    `[sweep]` sweeps it."""

    h: float | None


@dataclass(frozen=True)
class SphereSpec:
    """`[model]` with `kind = "sphere"`: `n` vector oscillators on `S^(dim - 1)`,
    `kl.SphereKuramoto(kl.BlockOmega(rates), kl.MeanField(K), stimulus)`. Oscillator
    i rotates at its natural frequency `omega_i` (drawn per seed as for the phase
    model) in the plane `(x_0, x_1)` (`rotation = "first_plane"`) or in every plane
    `(x_2k, x_2k+1)` (`"all_planes"`); `dim = 2` is the phase model with
    `theta = atan2(x_1, x_0)`. Initial states are uniform on the sphere per seed. The
    coupling has no lag (`coupling.lag` is always 0)."""

    n: int | None  # None when `sweep.n` sweeps the network size
    dim: int
    frequencies: FrequencySpec
    coupling: MeanFieldSpec
    stimulus: StimulusSpec | None = None
    rotation: str = "all_planes"
    kind: str = "sphere"

    @property
    def noisy(self) -> bool:
        return False

    @property
    def delayed(self) -> bool:
        return False

    @property
    def planes(self) -> tuple[float, ...]:
        """Which rotation planes `(x_2k, x_2k+1)` turn at `omega_i` (1) or not (0)."""
        k = self.dim // 2
        return (
            (1.0,) * k if self.rotation == "all_planes" else (1.0,) + (0.0,) * (k - 1)
        )


@dataclass(frozen=True)
class SweepSpec:
    """`[sweep]`: named parameter axes (product grid, in file order), the seeds, and
    optionally network sizes `n` (always the outermost dimension: each size is its own
    compilation).

    `mode = "adiabatic"` turns the `along` axis into a quasi-static parameter curve:
    each value starts from the final state of the previous one, up the listed values
    and then back down (dimension `direction`), to expose hysteresis."""

    axes: tuple[tuple[str, tuple[float, ...]], ...] = ()
    seeds: tuple[int, ...] = (0,)
    sizes: tuple[int, ...] = ()
    mode: str = "independent"
    along: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    @property
    def adiabatic(self) -> bool:
        return self.mode == "adiabatic"

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape: the sizes (if swept), one entry per axis, then the seeds."""
        sizes = (len(self.sizes),) if self.sizes else ()
        return sizes + tuple(len(v) for _, v in self.axes) + (len(self.seeds),)

    @property
    def num_points(self) -> int:
        """Number of simulations (an adiabatic ramp runs each value up and down)."""
        return math.prod(self.shape) * (2 if self.adiabatic else 1)

    def values(self, name: str) -> tuple[float, ...]:
        return dict(self.axes)[name]


@dataclass(frozen=True)
class SolveSpec:
    """`[solve]`: time span, fixed step, solver name, R(t) save stride (steps)."""

    t1: float
    dt: float
    t0: float = 0.0
    solver: str = "rk4"
    save_every: int = 1

    @property
    def num_steps(self) -> int:
        """Number of fixed steps, as `kl.simulate` counts them."""
        return _num_steps(self.t0, self.t1, self.dt)

    def save_times(self):
        """The times at which R(t) is saved (float64 numpy array)."""
        import numpy as np

        n, k = self.num_steps, self.save_every
        idx = np.arange(0, n + 1, k, dtype=np.int64)
        if n % k:
            idx = np.append(idx, n)
        return self.t0 + (self.t1 - self.t0) * idx.astype(np.float64) / n


@dataclass(frozen=True)
class ObserveSpec:
    """`[observe]`: what to store. `window` is the duration at the end of the run over
    which R (and the energy) is time-averaged and effective frequencies are measured
    (`frequency`); `locked` stores the fraction of oscillators whose effective
    frequency is within 2 pi / window of the mean field's rotation rate; `energy` the
    model energy `kl.energy` over time."""

    window: float
    order_parameter: bool = True
    frequency: bool = False
    locked: bool = False
    trajectories: bool = False
    energy: bool = False
    lyapunov: bool = False  # the largest Lyapunov exponent over the window
    omega_z: bool = False  # the mean field's rotation rate Omega_Z (TOML key Omega_Z)


@dataclass(frozen=True)
class OutputSpec:
    """`[output]`: the netCDF path and the number of sweep points per vmapped chunk."""

    path: str
    chunk_size: int = 64


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec. Build it with `load_spec` or `parse_spec`.

    **Attributes:** `study`, `model`, `sweep`, `solve`, `observe`, `output`: one frozen
    dataclass per TOML section. `spec.num_points` is the number of simulations.
    """

    study: StudyInfo
    model: KuramotoSpec | SphereSpec
    sweep: SweepSpec
    solve: SolveSpec
    observe: ObserveSpec
    output: OutputSpec
    events: tuple[EventSpec, ...] = ()  # [[events]] (issue 20); () when there are none

    @property
    def num_points(self) -> int:
        return self.sweep.num_points

    def has(self, name: str) -> bool:
        """Whether the model has parameter `name` (its kind does, and its section is
        present and holds it: a model without `[model.noise]` has no `D`, uniform
        delays have no `speed`, per-edge delays no `tau`)."""
        p = PARAMETERS[name]
        owner = getattr(self.model, p.section, None)
        return (
            self.model.kind in p.kinds
            and owner is not None
            and name in {f.name for f in dataclasses.fields(owner)}
        )

    def fixed(self, name: str) -> float:
        """The value of a sweepable parameter that is not swept (`Parameter.absent`, 0,
        for a parameter the model does not have: the noise `D`, delay `tau` or stimulus
        `h` of a model without noise, delays or stimulus)."""
        p = PARAMETERS[name]
        owner = getattr(self.model, p.section, None)
        return p.absent if owner is None else getattr(owner, name)

    def axis_values(self, name: str) -> tuple[float, ...]:
        """All values a sweepable parameter takes: its sweep axis, or its fixed value."""
        if name in self.sweep.names:
            return self.sweep.values(name)
        return (self.fixed(name),)

    def max_delay(self, n: int | None = None) -> float:
        """The largest delay of the study's points (of network size `n`; default the
        largest size): the static history bound. 0 without delays."""
        m = self.model
        if not getattr(m, "delayed", False):
            return 0.0
        if not m.edge_delayed:
            return max(self.axis_values("tau"))
        sizes = (n,) if n is not None else (self.sweep.sizes or (m.n,))
        net = m.coupling.network
        # a generated ring couples only oscillators within k positions
        ring = net is not None and net.graph == "ring" and net.file is None
        hops = net.k if ring else None
        longest = max(m.delays.distance_bounds(int(k), hops)[1] for k in sizes)
        return longest / min(self.axis_values("speed"))

    def edge_count(self, n: int) -> int:
        """Edges of the coupling on `n` oscillators (mean field: every pair)."""
        net = self.model.coupling.network
        return n * n if net is None or net.kind == "dense" else net.edge_count(n)

    def to_toml(self) -> str:
        """The spec as canonical TOML text; `parse_spec(spec.to_toml()) == spec`."""
        from .spec_toml import to_toml

        return to_toml(self)


# ---------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------


EVENT_ACTIONS: dict[str, str | None] = {
    "coupling": "scale", "kick": "delta", "stop": None, "record": None,
}


@dataclass(frozen=True)
class EventSpec:
    """One `[[events]]` table: `at` a time, or `when` a threshold crossing of the order
    parameter (`"R > 0.8"` fires as R rises through 0.8, `"R < 0.3"` as it falls
    through 0.3); `action` `"coupling"` (strength = `scale` x the model's K),
    `"kick"` (every phase += `delta` rad), `"stop"` or `"record"` (only the time is
    recorded); `name` labels the `event`
    coordinate of the result (default `event<i>`); `after` arms a `when` event only
    from that time on (`kl.When(after=...)`)."""

    name: str
    action: str
    at: float | None = None
    when: str | None = None
    after: float | None = None
    scale: float | None = None
    delta: float | None = None

    def threshold(self) -> tuple[str, float]:
        """`(">" or "<", level)` of a `when` event."""
        op, level = self.when.split()[1:]
        return op, float(level)


def _num_steps(t0: float, t1: float, dt: float) -> int:
    """The number of fixed steps, as `kl.simulate` counts them (imported lazily: the
    spec is data, and `kuralab validate` does not need jax)."""
    from .._integrate import _num_steps as count

    return count(t0, t1, dt)
