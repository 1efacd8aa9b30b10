"""A study's plan: the sweep grid, its chunks, the per-chunk job and the combined
Dataset.

- `grid(spec)`: the flattened grid, C order over (n, axes..., seed), as one column per
  model parameter of the spec's kind (`spec.PARAMETERS`, by name) plus `seed`.
- `chunks(grid, size)`: slices of at most `size` points, never mixing network sizes.
- `run_chunk(spec, grid, where)`: the per-chunk job, one `jax.vmap`-ed batch of
  `kl.sweep`'s kernel (`kuralab._sweep_kernel.batch`) with `make` = `PointModel`, the
  spec's model builder. A study point and the same `kl.sweep` point are the same
  computation: same transient handling, energy (`kl.energy`) and noise keys.
- `combine(spec, grid, parts)`: the per-chunk arrays shaped into the study Dataset.

Studies record their time series over the whole run (`record = "run"`), and their
window starts at a save time: the first one at or after `t1 - observe.window`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import _names as nm
from .._coupling import MeanField
from .._delays import Delays
from .._edge_delays import EdgeDelays
from .._integrate import RESULTS, SimulationError
from .._models.kuramoto import Kuramoto
from .._models.sphere import BlockOmega, SphereKuramoto, random_sphere
from .._noise import Noise
from .._sampling import random_phases, sample_frequencies
from .._sweep_kernel import EVENT_TIME, OBSERVABLES, Config, batch
from . import network as net
from .spec import (
    FULL_CIRCLE,
    KIND_PARAMETERS,
    PARAMETERS,
    SpecError,
    SphereSpec,
    StudySpec,
)

__all__ = ["Grid", "PointModel", "chunks", "combine", "grid", "run_chunk"]

#: Seed of the base key of the noise: a point's Brownian key is
#: `kuralab._sweep_kernel.point_key(jax.random.key(NOISE_KEY), seed)`, then one per
#: segment, independent of the seed's frequency and phase keys (`split(key(seed))`).
#: `kl.sweep(..., key=jax.random.key(NOISE_KEY))` reproduces it.
NOISE_KEY = 0x6E6F6973  # "nois"

#: Long names of the variables a study Dataset may hold (study wording; the units are
#: the sweep engine's, `_sweep_kernel.OBSERVABLES`, or `_names.UNITS`: one unit per
#: quantity in both kinds of file).
_LONG_NAMES = {
    nm.LYAPUNOV: "largest Lyapunov exponent over the window",
    nm.LYAPUNOV_STDERR: "standard error of the largest Lyapunov exponent",
    nm.R: "order parameter R, time-averaged over the window",
    nm.R_STD: "std of R(t) over the averaging window",
    nm.R_T: "order parameter R(t) = |Z(t)|",
    nm.OMEGA_EFF: "oscillator-mean effective frequency over the window, mean_i "
    "(theta_i(t1) - theta_i(t_w)) / window (not the mean-field rotation rate: see Omega_Z)",
    nm.OMEGA_STD: "std across oscillators of the effective frequencies over the window",
    nm.OMEGA_Z: "mean-field rotation rate Omega_Z over the window: the advance of the "
    "unwrapped arg Z / window (the Ott-Antonsen / self-consistency frequency)",
    nm.PSI_T: "mean-field phase psi(t) = arg Z(t), in (-pi, pi]",
    nm.TURNS: "winding number: unwrapped phase = theta + 2 pi turns",
    nm.LOCKED: "fraction of oscillators whose effective frequency is within 2 pi / window "
    "of the mean field's rotation rate",
    nm.ENERGY: "model energy kl.energy, time-averaged over the window",
    nm.ENERGY_T: "model energy kl.energy(model, state) at each saved time",
    nm.THETA: "oscillator phase, wrapped to [-pi, pi)",
    nm.STATE: "oscillator state, a unit vector in R^dim",
    nm.OMEGA: "natural frequency omega",
    EVENT_TIME: "time the [[events]] entry fired (NaN: it never did)",
}
#: Variables a study Dataset may hold: name -> (units, long_name).
VARIABLES = {
    name: ((OBSERVABLES.get(name) or nm.UNITS[name])[0], long_name)
    for name, long_name in _LONG_NAMES.items()
}
#: Coordinates that are not sweepable parameters (those come from `PARAMETERS`).
COORDS = {
    nm.SEED: ("1", "PRNG seed (frequencies, initial phases and noise)"),
    nm.N: ("1", "number of oscillators"),
    nm.DIRECTION: ("1", "adiabatic ramp direction: up the listed values, then down"),
    nm.TIME: ("1", "time (dimensionless model time; rates are per unit of it)"),
}


# ---------------------------------------------------------------------------------
# The model of one point
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointModel:
    """The spec's model builder, `make(**point) -> (model, y0)` for `kl.sweep`'s
    kernel: keyword arguments are the parameters of the kind (`KIND_PARAMETERS`, by
    name) and `seed`. Frozen and hashable: it is part of the jit cache key."""

    kind: str
    n: int
    distribution: str
    loc: float
    scale: float | None
    sampling: str | None
    spread: float = FULL_CIRCLE
    noisy: bool = False
    delayed: bool = False
    max_delay: float = 0.0
    dim: int = 1  # vector dimension (sphere models)
    planes: tuple[float, ...] = ()  # rotating planes (sphere models)
    stimulus: bool = False  # c_i = h e_0 (sphere models)
    network: net.NetworkSpec | None = None  # dense / sparse / lattice coupling
    edge_delays: tuple[float, str] | None = None  # per-edge delays: (radius, distance)

    def draw(self, seed):
        """Natural frequencies and initial state for one seed (deterministic in
        `seed`): phases (phase models) or unit vectors uniform on the sphere. The
        frequencies of a seed do not depend on the model kind."""
        key_omega, key_state = jax.random.split(jax.random.key(seed))
        if self.distribution == "identical":
            omega = jnp.full((self.n,), self.loc, dtype=jnp.result_type(float))
        else:
            omega = sample_frequencies(
                key_omega,
                self.n,
                self.distribution,
                loc=self.loc,
                scale=self.scale,
                sampling=self.sampling,
            )
        if self.kind == "sphere":
            return omega, random_sphere(key_state, self.n, dim=self.dim)
        theta0 = random_phases(key_state, self.n)  # uniform on [-pi, pi)
        if self.spread != FULL_CIRCLE:
            theta0 = theta0 * (self.spread / FULL_CIRCLE)  # uniform on [-s/2, s/2)
        return omega, theta0

    def __call__(self, *, seed, **p):
        """The model and initial state of one point; `p` holds the parameters by
        name (`p["K"]`, ...)."""
        omega, y0 = self.draw(seed)
        coupling = (
            MeanField(p["K"])
            if self.network is None
            else net.coupling(self.network, self.n, p["K"], omega.dtype)
        )
        if self.kind == "sphere":
            # Oscillator i turns at omega_i in each rotating plane (x_2k, x_2k+1).
            rates = omega[:, None] * jnp.asarray(self.planes, dtype=omega.dtype)
            stimulus = None
            if self.stimulus:
                stimulus = p["h"] * jnp.zeros(self.dim, omega.dtype).at[0].set(1.0)
            model = SphereKuramoto(BlockOmega(rates, dim=self.dim), coupling, stimulus)
            return model, y0
        if self.edge_delays is not None:
            delays = self._edge_delays(coupling, p["speed"], omega.dtype)
        elif self.delayed:
            delays = Delays(p["tau"], max_delay=self.max_delay)
        else:
            delays = None
        model = Kuramoto(
            omega,
            coupling,
            lag=p["lag"],
            noise=Noise(p["D"]) if self.noisy else None,
            delays=delays,
        )
        return model, y0

    def _edge_delays(self, coupling, speed, dtype) -> EdgeDelays:
        """`tau_ij = d_ij / speed`, oscillator i at angle 2 pi i / n on the circle."""
        radius, distance = self.edge_delays
        angle = 2 * math.pi * jnp.arange(self.n, dtype=dtype) / self.n
        if distance == "arc":  # along the ring: a periodic line of length 2 pi R
            pos, box = radius * angle, 2 * math.pi * radius
        else:
            pos, box = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], 1), None
        return EdgeDelays.from_positions(
            pos, speed, coupling, box=box, max_delay=self.max_delay
        )


def point_model(spec: StudySpec, n: int | None = None) -> PointModel:
    """The model builder of `spec` (`n`: the network size, needed when `sweep.n`
    sweeps it)."""
    m, f = spec.model, spec.model.frequencies
    sphere = isinstance(m, SphereSpec)
    return PointModel(
        kind=m.kind,
        n=m.n if n is None else int(n),
        distribution=f.distribution,
        loc=f.loc,
        scale=f.scale,
        sampling=f.sampling,
        spread=FULL_CIRCLE if sphere else m.initial_phases.spread,
        noisy=m.noisy,
        delayed=m.delayed,
        # The static history bound for a traced tau: the largest delay of the study.
        max_delay=spec.max_delay(n),
        edge_delays=(
            (m.delays.radius, m.delays.distance) if m.delayed and m.edge_delayed
            else None
        ),
        dim=m.dim if sphere else 1,
        planes=m.planes if sphere else (),
        stimulus=sphere and m.stimulus is not None,
        network=m.coupling.network,
    )


def window_start(spec: StudySpec) -> int:
    """Index of the first save time inside the window (`observe.window`)."""
    s = spec.solve
    cutoff = s.t1 - spec.observe.window - 1e-9 * max(1.0, abs(s.t1))
    return int((s.save_times() < cutoff).sum())


def observed(spec: StudySpec) -> tuple[str, ...]:
    """The kernel's reductions a spec's `[observe]` asks for."""
    o = spec.observe
    phase = spec.model.kind == "kuramoto"
    names = []
    if o.order_parameter:
        names += [nm.R, nm.R_STD, nm.R_T] + ([nm.PSI_T] if phase else [])
    if o.energy:
        names += [nm.ENERGY, nm.ENERGY_T]
    if o.frequency:
        names += [nm.OMEGA_EFF, nm.OMEGA_STD]
    if o.frequency or o.omega_z:
        names += [nm.OMEGA_Z]
    if o.locked:
        names += [nm.LOCKED]
    if o.trajectories:
        names += [nm.TRAJECTORY] + ([nm.TURNS] if phase else [])
    if o.lyapunov:
        names += [nm.LYAPUNOV, nm.LYAPUNOV_STDERR]
    if spec.events:
        names += [EVENT_TIME]
    return tuple(names)


def kernel_config(spec: StudySpec, n: int | None = None) -> Config:
    """The kernel configuration of `spec`'s points (of network size `n`). The window
    starts at a save time, and the step is the run's fixed step `(t1 - t0) / steps`,
    so the transient and the window share the save grid of `solve.save_times()`."""
    s, m = spec.solve, spec.model
    times = s.save_times()
    return Config(
        make=point_model(spec, n),
        names=(*KIND_PARAMETERS[m.kind], nm.SEED),
        t0=s.t0,
        t_w=float(times[window_start(spec)]),
        t1=s.t1,
        dt=(s.t1 - s.t0) / s.num_steps,
        solver=s.solver,
        save_every=s.save_every,
        brownian=m.noise.brownian if m.noisy else "increments",
        observe=observed(spec),
        lock_tol=None,
        throw=False,
        record="run",
        events=spec.events,
    )


# ---------------------------------------------------------------------------------
# Grid and chunks
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """The flattened sweep grid: one entry per run, C order over (n, axes..., seed).
    `columns` maps each parameter of the model kind and `seed` to one value per
    point. In adiabatic mode the ramped axis is not part of the grid: each entry ramps
    through `curve` (its column holds the first value)."""

    columns: dict[str, np.ndarray]  # float64 parameters, int64 seed
    n: np.ndarray  # int64: network size of each point
    shape: tuple[int, ...]  # grid shape (without the ramped axis)
    dims: tuple[str, ...]  # dimension names of `shape`
    along: str | None = None  # the ramped parameter (adiabatic mode)
    curve: tuple[float, ...] = ()  # its values

    @property
    def size(self) -> int:
        return len(self.columns[nm.SEED])


def grid(spec: StudySpec) -> Grid:
    sweep = spec.sweep
    named = [(name, np.asarray(v, dtype=np.float64)) for name, v in sweep.axes]
    if sweep.adiabatic:
        named = [(name, v) for name, v in named if name != sweep.along]
    if sweep.sizes:
        named.insert(0, (nm.N, np.asarray(sweep.sizes, dtype=np.int64)))
    named.append((nm.SEED, np.asarray(sweep.seeds, dtype=np.int64)))
    mesh = np.meshgrid(*[v for _, v in named], indexing="ij")
    flat = {name: m.ravel() for (name, _), m in zip(named, mesh, strict=True)}
    size = flat[nm.SEED].size

    def column(name):
        if name in flat:
            return flat[name]
        first = sweep.values(name)[0] if name == sweep.along else spec.fixed(name)
        return np.full(size, first, dtype=np.float64)

    columns = {name: column(name) for name in KIND_PARAMETERS[spec.model.kind]}
    columns[nm.SEED] = flat[nm.SEED]
    return Grid(
        columns=columns,
        n=flat[nm.N] if nm.N in flat else np.full(size, spec.model.n, dtype=np.int64),
        shape=tuple(len(v) for _, v in named),
        dims=tuple(name for name, _ in named),
        along=sweep.along,
        curve=sweep.values(sweep.along) if sweep.adiabatic else (),
    )


def check_representable(spec: StudySpec, g: Grid) -> None:
    """Every number must fit the run's float dtype (float32 unless x64 is enabled)."""
    dtype = np.dtype(jnp.result_type(float))
    limit = float(np.finfo(dtype).max)
    f, s = spec.model.frequencies, spec.solve
    values = {
        "model.frequencies.scale": f.scale or 0.0,
        "model.frequencies.loc": f.loc,
        "solve.t0": s.t0,
        "solve.t1": s.t1,
    }
    for name in KIND_PARAMETERS[spec.model.kind]:
        column = np.asarray(g.curve) if name == g.along else g.columns[name]
        key = (
            f"sweep.{name}" if name in spec.sweep.names else PARAMETERS[name].key(name)
        )
        values[key] = float(column[np.argmax(np.abs(column))])
    for key, value in values.items():
        if abs(value) > limit:
            raise SpecError(
                f"{key} = {value!r}: expected a number within +-{limit:.4g} (the "
                f"{dtype} range of this run)"
            )


def _group_size(g: Grid, chunk_size: int, start: int) -> int:
    """Points per compiled batch for the network-size group starting at `start`."""
    return min(chunk_size, int((g.n == g.n[start]).sum()))


def chunks(g: Grid, chunk_size: int) -> list[slice]:
    """Chunks of at most `chunk_size` points; a chunk never mixes network sizes (the
    sizes are the outermost grid axis, so each size is a contiguous range)."""
    out = []
    start = 0
    while start < g.size:
        stop = start + int((g.n == g.n[start]).sum())
        size = min(chunk_size, stop - start)
        out += [slice(i, min(i + size, stop)) for i in range(start, stop, size)]
        start = stop
    return out


def run_chunk(spec: StudySpec, g: Grid, where: slice) -> dict:
    """Run the points `g[where]` as one vmapped batch of `kl.sweep`'s kernel; returns
    numpy arrays with a leading point axis (then `direction` and the ramped axis in
    adiabatic mode). The batch is padded to the chunk size (repeating its last point)
    so that every chunk of a network size reuses one compilation."""
    size = _group_size(g, spec.output.chunk_size, where.start)
    count = where.stop - where.start
    pad = np.concatenate(
        [np.arange(where.start, where.stop), np.full(size - count, where.stop - 1)]
    )
    dtype = jnp.result_type(float)
    cfg = kernel_config(spec, n=int(g.n[where.start]))
    columns = {
        name: jnp.asarray(v[pad], dtype=jnp.int32 if name == nm.SEED else dtype)
        for name, v in g.columns.items()
    }
    curve = None if g.along is None else jnp.asarray(g.curve, dtype=dtype)
    key = jax.random.key(NOISE_KEY)
    out = batch(cfg, key, columns, along=g.along, curve=curve)
    return {name: np.asarray(value)[:count] for name, value in out.items()}


# ---------------------------------------------------------------------------------
# The combined Dataset
# ---------------------------------------------------------------------------------


def _check_results(results: xr.DataArray) -> None:
    ok = results == RESULTS.successful._value
    if bool(ok.all()):
        return
    flat = ok.values.reshape(-1)
    index = np.unravel_index(int(np.argmin(flat)), ok.shape)
    point = results[index]
    where = ", ".join(f"{d} = {point[d].values}" for d in results.dims)
    message = RESULTS._index_to_message[int(point)]
    raise SimulationError(
        f"{int((~flat).sum())} of {flat.size} simulations failed (first at {where}): "
        f"{message}"
    )


def _shaped(g: Grid, value: np.ndarray) -> np.ndarray:
    """(points[, direction, ramp], *rest) -> ([direction, ramp,] *g.shape, *rest)."""
    if g.along is None:
        return value.reshape(g.shape + value.shape[1:])
    value = np.moveaxis(np.moveaxis(value, 1, 0), 2, 1)
    return value.reshape(value.shape[:2] + g.shape + value.shape[3:])


@functools.cache
def _omegas_jit():
    return jax.jit(
        lambda pm, seeds: jax.vmap(lambda s: pm.draw(s)[0])(seeds), static_argnums=0
    )


#: Extra dimensions of the kernel's outputs (after the grid's).
_EXTRA = {
    nm.R_T: (nm.TIME,),
    nm.ENERGY_T: (nm.TIME,),
    nm.PSI_T: (nm.TIME,),
    nm.TURNS: (nm.TIME, nm.OSC),
    EVENT_TIME: ("event",),
}


def combine(spec: StudySpec, g: Grid, parts: list[dict]) -> xr.Dataset:
    """Concatenate per-chunk results and shape them into the study Dataset."""
    merged = {k: _shaped(g, np.concatenate([p[k] for p in parts])) for k in parts[0]}
    dims = list(g.dims)
    coords = {name: np.asarray(values) for name, values in spec.sweep.axes}
    coords[nm.SEED] = np.asarray(spec.sweep.seeds, dtype=np.int64)
    if spec.sweep.sizes:
        coords[nm.N] = np.asarray(spec.sweep.sizes, dtype=np.int64)
    if g.along is not None:
        dims = [nm.DIRECTION, g.along, *dims]
        coords[nm.DIRECTION] = np.array(["up", "down"])
    _check_results(
        xr.DataArray(
            merged.pop(nm.RESULT), dims=dims, coords={d: coords[d] for d in dims}
        )
    )
    sphere = isinstance(spec.model, SphereSpec)
    data = {}
    for name in observed(spec):
        value = merged[name]
        if name == nm.TRAJECTORY:
            state = [nm.TIME, nm.OSC, nm.DIM] if sphere else [nm.TIME, nm.OSC]
            data[nm.STATE if sphere else nm.THETA] = ([*dims, *state], value)
        else:
            data[name] = ([*dims, *_EXTRA.get(name, ())], value)
    if spec.events:
        coords["event"] = np.asarray([e.name for e in spec.events])
    if any(nm.TIME in d for d, _ in data.values()):
        coords[nm.TIME] = spec.solve.save_times()
    if spec.observe.trajectories:
        seeds = jnp.asarray(spec.sweep.seeds, dtype=jnp.int32)
        omega = np.asarray(_omegas_jit()(point_model(spec), seeds))
        data[nm.OMEGA] = ([nm.SEED, nm.OSC], omega)
    ds = xr.Dataset(data, coords=coords)
    for name in ds.variables:
        if name in VARIABLES:
            units, long_name = VARIABLES[name]
        elif name in PARAMETERS:
            p = PARAMETERS[name]
            units, long_name = p.units_for(spec.model.kind), p.long_name
        elif name in COORDS:
            units, long_name = COORDS[name]
        else:
            continue
        ds[name].attrs.update(units=units, long_name=long_name)
    ds.attrs.update(attrs(spec))
    return ds


def attrs(spec: StudySpec) -> dict:
    """Dataset attributes describing the study (netCDF-safe scalars only)."""
    m, f, c, s = spec.model, spec.model.frequencies, spec.model.coupling, spec.solve
    sphere = isinstance(m, SphereSpec)
    out = {
        "study": spec.study.name,
        "description": spec.study.description,
        "model": m.kind,
        "n": m.n,
        "distribution": f.distribution,
        "loc": f.loc,
        "scale": f.scale,
        "sampling": f.sampling,
        "initial_spread": None if sphere else m.initial_phases.spread,
        "coupling": c.kind,
        **(
            {
                f"coupling_{k}": (list(v) if k == "shape" else v)
                for k, v in c.network.toml_items()
                if v is not None and k != "kernel"
            }
            if c.network is not None
            else {}
        ),
        "noise": "additive" if m.noisy else "none",
        "delays": (
            ("edges" if m.edge_delayed else "uniform") if m.delayed else "none"
        ),
        "swept": " ".join(((nm.N,) if spec.sweep.sizes else ()) + spec.sweep.names),
        "mode": spec.sweep.mode,
        "t0": s.t0,
        "t1": s.t1,
        "dt": s.dt,
        "solver": s.solver,
        "save_every": s.save_every,
        "window": spec.observe.window,
    }
    if m.noisy:
        out["brownian"] = m.noise.brownian
    if m.delayed and m.edge_delayed:
        out["delays_radius"] = m.delays.radius
        out["delays_distance"] = m.delays.distance
    if sphere:
        out["dim"] = m.dim
        out["rotation"] = m.rotation
        out["stimulus"] = "none" if m.stimulus is None else "h e_0"
        out["initial_state"] = "uniform on the sphere"
    if spec.sweep.adiabatic:
        out["along"] = spec.sweep.along
    for name in PARAMETERS:
        if spec.has(name) and name not in spec.sweep.names:
            out[name] = spec.fixed(name)
    return {k: v for k, v in out.items() if v is not None}
