"""Studies: declarative TOML specs, validated into a frozen `StudySpec`, run in chunks.

A study is data (DESIGN.md §5). `load_spec(path)` / `parse_spec(text)` turn a TOML file
into a frozen, validated `StudySpec` (see `kuralab/_spec.py`; model kinds `"kuramoto"`,
phase oscillators, and `"sphere"`, AKOrN vector oscillators); `run_study(spec)` builds
the sweep grid, runs it in `jax.vmap`-ed chunks (one compilation for all of them), and
writes one netCDF file with `kuralab.io.save`. Every key a spec may hold is documented
in `studies/README.md`.

```toml
[study]
name = "quickstart"

[model]
kind = "kuramoto"
n = 2000
[model.frequencies]
distribution = "lorentzian"
scale = 0.5
[model.coupling]
kind = "mean_field"          # K is swept below

[sweep]
K = { start = 0.5, stop = 4.0, num = 8 }
seeds = 4

[solve]
t1 = 150.0
dt = 0.05
```

Validation rejects unknown keys (suggesting the nearest valid one), wrong types (a bool
is not a number), missing sections or keys, and impossible values, by raising
`SpecError` with a one-line message that names the key path, the value and the expected
form: `solve.dt = -0.1: expected a number > 0`.

Execution is structured grid -> chunks -> per-chunk results -> combined Dataset; the
chunk store (persistence, `--resume`), the progress display and the backends
(in-process, Dask) live in `kuralab._runner`. Parsing and validation live in
`kuralab._spec` (re-exported here).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from . import _runner
from ._coupling import MeanField
from ._delays import Delays
from ._integrate import RESULTS, SaveAt, SimulationError, simulate
from ._models.kuramoto import Kuramoto
from ._models.sphere import BlockOmega, SphereKuramoto, random_sphere
from ._noise import Noise
from ._observables import (
    _locked_fraction,
    _phasor,
    _rotation_rate,
    effective_frequencies,
    order_parameter,
)
from ._runner import (
    ChunkError as ChunkError,
    ChunkStoreError as ChunkStoreError,
    ClusterError as ClusterError,
)
from ._sampling import random_phases, sample_frequencies
from ._spec import (
    FULL_CIRCLE,
    SWEEPABLE as SWEEPABLE,
    DelaySpec as DelaySpec,
    FrequencySpec as FrequencySpec,
    InitialPhasesSpec as InitialPhasesSpec,
    KuramotoSpec as KuramotoSpec,
    MeanFieldSpec as MeanFieldSpec,
    NoiseSpec as NoiseSpec,
    ObserveSpec as ObserveSpec,
    OutputSpec as OutputSpec,
    SolveSpec as SolveSpec,
    SpecError as SpecError,
    SphereSpec as SphereSpec,
    StimulusSpec as StimulusSpec,
    StudyInfo as StudyInfo,
    StudySpec as StudySpec,
    SweepSpec as SweepSpec,
    _read_spec,
    load_spec as load_spec,
    parse_spec as parse_spec,
)
from ._sweep import ramp_up_down

__all__ = [
    "SpecError",
    "ChunkStoreError",
    "ClusterError",
    "ChunkError",
    "StudySpec",
    "StudyInfo",
    "KuramotoSpec",
    "SphereSpec",
    "StimulusSpec",
    "FrequencySpec",
    "MeanFieldSpec",
    "NoiseSpec",
    "DelaySpec",
    "InitialPhasesSpec",
    "SweepSpec",
    "SolveSpec",
    "ObserveSpec",
    "OutputSpec",
    "load_spec",
    "parse_spec",
    "run_study",
    "run_chunk",
    "compile_cache_dir",
    "enable_compile_cache",
]

#: Variables a study Dataset may hold: name -> (units, long_name).
VARIABLES = {
    "R": ("1", "order parameter R, time-averaged"),
    "R_std": ("1", "std of R(t) over the averaging window"),
    "R_t": ("1", "order parameter R(t) = |Z(t)|"),
    "Omega": (
        "rad",
        "effective frequency (rad per unit time), mean over oscillators, over the window",
    ),
    "Omega_std": (
        "rad",
        "std across oscillators of the effective frequencies over the window",
    ),
    "locked": (
        "1",
        "fraction of oscillators whose effective frequency is within 2 pi / window of "
        "the mean field's rotation rate",
    ),
    "E": ("1", "model energy kl.energy, time-averaged over the window"),
    "E_t": ("1", "model energy kl.energy(model, state) at each saved time"),
    "theta": ("rad", "oscillator phase, wrapped to [-pi, pi)"),
    "x": ("1", "oscillator state, a unit vector in R^dim"),
    "omega": ("rad", "natural frequency (rad per unit time)"),
}
COORDS = {
    "K": ("rad", "coupling strength K (rad per unit time)"),
    "lag": ("rad", "Sakaguchi phase lag alpha"),
    "D": ("rad2", "noise diffusion coefficient D (rad^2 per unit time)"),
    "tau": ("1", "transmission delay tau (time units)"),
    "h": ("1", "stimulus strength h, c_i = h e_0 (per unit time)"),
    "seed": ("1", "PRNG seed (frequencies, initial phases and noise)"),
    "n": ("1", "number of oscillators"),
    "direction": ("1", "adiabatic ramp direction: up the listed values, then down"),
    "time": ("1", "time (dimensionless model time)"),
}


def compile_cache_dir() -> Path:
    """Where `run_study` keeps JAX's persistent compilation cache: `$KURALAB_CACHE_DIR`,
    else `$XDG_CACHE_HOME/kuralab/jax` (default `~/.cache/kuralab/jax`)."""
    env = os.environ.get("KURALAB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "kuralab" / "jax"


def enable_compile_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache (minimum compile time 0, so every
    compilation is cached). Keeps a directory the user already configured.

    **Returns:** the cache directory in use, or `None` if it could not be created.
    """
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = Path(path) if path is not None else compile_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


@dataclass(frozen=True)
class _RunConfig:
    """Everything static about one simulation (hashable: the jit cache key)."""

    n: int
    distribution: str
    loc: float
    scale: float | None
    sampling: str | None
    spread: float
    noisy: bool
    brownian: str
    delayed: bool
    max_delay: float
    t0: float
    t1: float
    dt: float
    solver: str
    save_every: int
    window_start: int  # index of the first saved sample inside the window
    window: float  # from that sample to the last one (for effective_frequencies)
    num_saved: int
    order_parameter: bool
    frequency: bool
    locked: bool
    trajectories: bool
    # The energy and the sphere-model fields; the defaults describe a phase model.
    energy: bool = False
    kind: str = "kuramoto"
    dim: int = 1  # vector dimension (sphere models)
    planes: tuple[float, ...] = ()  # rotating planes (sphere models, `SphereSpec`)
    stimulus: bool = False  # c_i = h e_0 (sphere models)

    @property
    def sphere(self) -> bool:
        return self.kind == "sphere"

    @property
    def save_states(self) -> bool:
        """Save the states (not only R): frequencies need the phases (winding
        numbers)."""
        return self.frequency or self.locked or self.trajectories


def _config(spec: StudySpec, n: int | None = None) -> _RunConfig:
    """The static run configuration (`n`: the network size of this chunk, needed when
    `sweep.n` sweeps it)."""
    m, f, s, o = spec.model, spec.model.frequencies, spec.solve, spec.observe
    times = s.save_times()
    cutoff = s.t1 - o.window - 1e-9 * max(1.0, abs(s.t1))
    window_start = int((times < cutoff).sum())
    sphere = isinstance(m, SphereSpec)
    return _RunConfig(
        n=m.n if n is None else int(n),
        distribution=f.distribution,
        loc=f.loc,
        scale=f.scale,
        sampling=f.sampling,
        spread=FULL_CIRCLE if sphere else m.initial_phases.spread,
        noisy=m.noisy,
        brownian=m.noise.brownian if m.noisy else "increments",
        delayed=m.delayed,
        # The static history bound for a traced tau: the largest delay of the study.
        max_delay=max(spec.axis_values("tau")) if m.delayed else 0.0,
        t0=s.t0,
        t1=s.t1,
        dt=s.dt,
        solver=s.solver,
        save_every=s.save_every,
        window_start=window_start,
        window=float(times[-1] - times[min(window_start, len(times) - 1)]),
        num_saved=len(times),
        order_parameter=o.order_parameter,
        frequency=o.frequency,
        locked=o.locked,
        trajectories=o.trajectories,
        energy=o.energy,
        kind=m.kind,
        dim=m.dim if sphere else 1,
        planes=m.planes if sphere else (),
        stimulus=sphere and m.stimulus is not None,
    )


def _save_R(t, theta):
    """`SaveAt.fn`: the order parameter magnitude |Z|(t)."""
    return jnp.abs(order_parameter(theta))


def _save_mean(t, x):
    """`SaveAt.fn` of sphere models: the mean vector m(t) = mean_i x_i (R = |m|; with
    a mean-field coupling the energy is a function of m as well)."""
    return jnp.mean(x, axis=0)


#: `jax.random.fold_in` data for the noise stream of a seed: the Brownian path's key
#: is independent of the frequency and phase keys (`split(key(seed))`).
NOISE_STREAM = 0x6E6F6973  # "nois"


def _draw(cfg: _RunConfig, seed):
    """Natural frequencies and initial state for one seed (deterministic in `seed`):
    phases (phase models) or unit vectors uniform on the sphere (sphere models). The
    frequencies of a seed do not depend on the model kind."""
    key_omega, key_state = jax.random.split(jax.random.key(seed))
    if cfg.distribution == "identical":
        omega = jnp.full((cfg.n,), cfg.loc, dtype=jnp.result_type(float))
    else:
        omega = sample_frequencies(
            key_omega,
            cfg.n,
            cfg.distribution,
            loc=cfg.loc,
            scale=cfg.scale,
            sampling=cfg.sampling,
        )
    if cfg.sphere:
        return omega, random_sphere(key_state, cfg.n, dim=cfg.dim)
    theta0 = random_phases(key_state, cfg.n)  # uniform on [-pi, pi)
    if cfg.spread != FULL_CIRCLE:
        theta0 = theta0 * (cfg.spread / FULL_CIRCLE)  # uniform on [-s/2, s/2)
    return omega, theta0


def _noise_key(seed):
    """The Brownian path's key for one seed."""
    return jax.random.fold_in(jax.random.key(seed), NOISE_STREAM)


def _model(cfg: _RunConfig, omega, K, lag, D, tau, h):
    """The model of one sweep point."""
    if cfg.sphere:
        # Oscillator i turns at omega_i in each rotating plane (x_2k, x_2k+1).
        rates = omega[:, None] * jnp.asarray(cfg.planes, dtype=omega.dtype)
        stimulus = None
        if cfg.stimulus:
            stimulus = h * jnp.zeros(cfg.dim, omega.dtype).at[0].set(1.0)
        return SphereKuramoto(BlockOmega(rates, dim=cfg.dim), MeanField(K), stimulus)
    return Kuramoto(
        omega,
        MeanField(K),
        lag=lag,
        noise=Noise(D) if cfg.noisy else None,
        delays=Delays(tau, max_delay=cfg.max_delay) if cfg.delayed else None,
    )


def _simulate_point(
    cfg: _RunConfig, K, lag, D, tau, h, seed, state0=None, noise_key=None
) -> tuple[dict, jax.Array]:
    """One sweep point, reduced on device; also returns the final state. `state0` and
    `noise_key` override the seed's initial state and Brownian key (adiabatic
    steps)."""
    omega, drawn = _draw(cfg, seed)
    state0 = drawn if state0 is None else state0
    noise_key = _noise_key(seed) if noise_key is None else noise_key
    model = _model(cfg, omega, K, lag, D, tau, h)
    if cfg.save_states:
        saveat = SaveAt(every=cfg.save_every)
    else:
        saveat = SaveAt(every=cfg.save_every, fn=_save_mean if cfg.sphere else _save_R)
    traj = simulate(
        model,
        state0,
        t0=cfg.t0,
        t1=cfg.t1,
        dt=cfg.dt,
        solver=cfg.solver,
        saveat=saveat,
        key=noise_key if cfg.noisy else None,
        brownian=cfg.brownian,
        throw=False,
    )
    states = traj.ys if cfg.save_states else None
    if cfg.sphere:
        mean = jnp.mean(states, axis=-2) if cfg.save_states else traj.ys  # (time, dim)
        R_t = jnp.linalg.norm(mean, axis=-1)
    elif cfg.save_states:
        R_t = jnp.abs(order_parameter(states))
    else:
        R_t = traj.ys
    if R_t.shape != (cfg.num_saved,):
        raise AssertionError(
            f"kuralab bug: expected {cfg.num_saved} saved samples, got {R_t.shape}"
        )
    out = {"result": traj.result._value}
    if cfg.order_parameter:
        window = R_t[cfg.window_start :]
        out["R"] = jnp.mean(window)
        out["R_std"] = jnp.std(window)
        out["R_t"] = R_t
    if cfg.energy:
        # kl.energy of a mean-field model, from the saved mean state:
        # -1/2 sum_ij (K/N) <x_i, x_j> - sum_i <c, x_i> = -N (K |m|^2 / 2 + h m_0)
        # (phases: m = Z, no field). Tested against kl.energy of the states.
        if cfg.sphere:
            E_t = -0.5 * cfg.n * K * jnp.sum(mean**2, axis=-1)
            if cfg.stimulus:
                E_t = E_t - cfg.n * h * mean[:, 0]
        else:
            E_t = -0.5 * cfg.n * K * R_t**2
        out["E"] = jnp.mean(E_t[cfg.window_start :])
        out["E_t"] = E_t
    if cfg.frequency or cfg.locked:
        Omega = effective_frequencies(traj, window=cfg.window)  # (osc,)
    if cfg.frequency:
        out["Omega"] = jnp.mean(Omega)
        out["Omega_std"] = jnp.std(Omega)
    if cfg.locked:
        # The mean field's rotation rate over the window, from its wrapped increments.
        Z = jnp.mean(_phasor(states[cfg.window_start :]), axis=-1)
        Omega_Z = _rotation_rate(Z, cfg.window)
        out["locked"] = _locked_fraction(Omega, Omega_Z, 2 * jnp.pi / cfg.window)
    if cfg.trajectories:
        out["x" if cfg.sphere else "theta"] = states
    return out, traj.final


def _chunk_impl(cfg: _RunConfig, K, lag, D, tau, h, seed) -> dict:
    return jax.vmap(lambda *p: _simulate_point(cfg, *p)[0])(K, lag, D, tau, h, seed)


def _adiabatic_point(cfg: _RunConfig, along: int, curve, K, lag, D, tau, h, seed):
    """Ramp parameter number `along` of (K, lag, D, tau, h) through `curve` and back:
    each value starts from the previous final state (phases or unit vectors). Outputs
    gain leading axes (direction, value)."""
    params = [K, lag, D, tau, h]

    def step(state, value, index):
        p = list(params)
        p[along] = value
        key = jax.random.fold_in(_noise_key(seed), index)
        out, final = _simulate_point(cfg, *p, seed, state0=state, noise_key=key)
        return final, out

    return ramp_up_down(step, _draw(cfg, seed)[1], curve)


def _adiabatic_impl(
    cfg: _RunConfig, along: int, curve, K, lag, D, tau, h, seed
) -> dict:
    return jax.vmap(lambda *p: _adiabatic_point(cfg, along, curve, *p))(
        K, lag, D, tau, h, seed
    )


def _omegas(cfg: _RunConfig, seeds) -> jax.Array:
    """The natural frequencies of each seed, `(seed, osc)`."""
    return jax.vmap(lambda s: _draw(cfg, s)[0])(seeds)


@functools.cache
def _jitted(name: str):
    """`jax.jit` of a module-level function, built once per process (compiled once per
    config and chunk size; the persistent cache keeps it across processes)."""
    if name == "adiabatic":
        return jax.jit(_adiabatic_impl, static_argnums=(0, 1))
    return jax.jit({"chunk": _chunk_impl, "omegas": _omegas}[name], static_argnums=0)


@dataclass(frozen=True)
class _Grid:
    """The flattened sweep grid: one entry per run, C order over
    (n, axes..., seed). In adiabatic mode the ramped axis is not part of the grid:
    each entry ramps through `curve` (its column holds the first value)."""

    K: np.ndarray  # float64, one entry per point
    lag: np.ndarray  # float64
    D: np.ndarray  # float64 (0 without noise)
    tau: np.ndarray  # float64 (0 without delays)
    h: np.ndarray  # float64 (0 without a stimulus)
    seed: np.ndarray  # int64
    n: np.ndarray  # int64: network size of each point
    shape: tuple[int, ...]  # grid shape (without the ramped axis)
    dims: tuple[str, ...]  # dimension names of `shape`
    along: str | None = None  # the ramped parameter (adiabatic mode)
    curve: tuple[float, ...] = ()  # its values

    @property
    def size(self) -> int:
        return len(self.seed)


def _grid(spec: StudySpec) -> _Grid:
    sweep = spec.sweep
    named = [(name, np.asarray(v, dtype=np.float64)) for name, v in sweep.axes]
    if sweep.adiabatic:
        named = [(name, v) for name, v in named if name != sweep.along]
    if sweep.sizes:
        named.insert(0, ("n", np.asarray(sweep.sizes, dtype=np.int64)))
    named.append(("seed", np.asarray(sweep.seeds, dtype=np.int64)))
    mesh = np.meshgrid(*[v for _, v in named], indexing="ij")
    flat = {name: m.ravel() for (name, _), m in zip(named, mesh, strict=True)}
    size = flat["seed"].size

    def column(name):
        if name in flat:
            return flat[name]
        if name == sweep.along:
            return np.full(size, sweep.values(name)[0], dtype=np.float64)
        return np.full(size, spec.fixed(name), dtype=np.float64)

    return _Grid(
        **{name: column(name) for name in SWEEPABLE},
        seed=flat["seed"],
        n=flat["n"] if "n" in flat else np.full(size, spec.model.n, dtype=np.int64),
        shape=tuple(len(v) for _, v in named),
        dims=tuple(name for name, _ in named),
        along=sweep.along,
        curve=sweep.values(sweep.along) if sweep.adiabatic else (),
    )


def _check_representable(spec: StudySpec, grid: _Grid) -> None:
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
    for name in SWEEPABLE:
        column = getattr(grid, name)
        if name == grid.along:
            column = np.asarray(grid.curve)
        key = f"sweep.{name}" if name in spec.sweep.names else SWEEPABLE[name]
        values[key] = float(column[np.argmax(np.abs(column))])
    for key, value in values.items():
        if abs(value) > limit:
            raise SpecError(
                f"{key} = {value!r}: expected a number within +-{limit:.4g} (the "
                f"{dtype} range of this run)"
            )


def _group_size(grid: _Grid, chunk_size: int, start: int) -> int:
    """Points per compiled batch for the network-size group starting at `start`."""
    group = int((grid.n == grid.n[start]).sum())
    return min(chunk_size, group)


def _chunks(grid: _Grid, chunk_size: int) -> list[slice]:
    """Chunks of at most `chunk_size` points; a chunk never mixes network sizes (the
    sizes are the outermost grid axis, so each size is a contiguous range)."""
    out = []
    start = 0
    while start < grid.size:
        stop = start + int((grid.n == grid.n[start]).sum())
        size = min(chunk_size, stop - start)
        out += [slice(i, min(i + size, stop)) for i in range(start, stop, size)]
        start = stop
    return out


def run_chunk(spec: StudySpec, grid: _Grid, where: slice) -> dict:
    """Run the points `grid[where]` as one vmapped batch; returns numpy arrays with a
    leading point axis (then `direction` and the ramped axis in adiabatic mode). The
    batch is padded to the chunk size (repeating its last point) so that every chunk of
    a network size reuses one compilation."""
    size = _group_size(grid, spec.output.chunk_size, where.start)
    count = where.stop - where.start
    pad = np.concatenate(
        [np.arange(where.start, where.stop), np.full(size - count, where.stop - 1)]
    )
    dtype = jnp.result_type(float)
    cfg = _config(spec, n=int(grid.n[where.start]))
    columns = (
        jnp.asarray(grid.K[pad], dtype=dtype),
        jnp.asarray(grid.lag[pad], dtype=dtype),
        jnp.asarray(grid.D[pad], dtype=dtype),
        jnp.asarray(grid.tau[pad], dtype=dtype),
        jnp.asarray(grid.h[pad], dtype=dtype),
        jnp.asarray(grid.seed[pad], dtype=jnp.int32),
    )
    if grid.along is None:
        out = _jitted("chunk")(cfg, *columns)
    else:
        along = tuple(SWEEPABLE).index(grid.along)
        curve = jnp.asarray(grid.curve, dtype=dtype)
        out = _jitted("adiabatic")(cfg, along, curve, *columns)
    return {name: np.asarray(value)[:count] for name, value in out.items()}


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


def _shaped(grid: _Grid, value: np.ndarray) -> np.ndarray:
    """(points[, direction, ramp], *rest) -> ([direction, ramp,] *grid.shape, *rest)."""
    if grid.along is None:
        return value.reshape(grid.shape + value.shape[1:])
    value = np.moveaxis(np.moveaxis(value, 1, 0), 2, 1)
    return value.reshape(value.shape[:2] + grid.shape + value.shape[3:])


def _combine(spec: StudySpec, grid: _Grid, parts: list[dict]):
    """Concatenate per-chunk results and shape them into the study Dataset."""
    merged = {k: _shaped(grid, np.concatenate([p[k] for p in parts])) for k in parts[0]}
    dims = list(grid.dims)
    coords = {name: np.asarray(values) for name, values in spec.sweep.axes}
    coords["seed"] = np.asarray(spec.sweep.seeds, dtype=np.int64)
    if spec.sweep.sizes:
        coords["n"] = np.asarray(spec.sweep.sizes, dtype=np.int64)
    if grid.along is not None:
        dims = ["direction", grid.along, *dims]
        coords["direction"] = np.array(["up", "down"])
    _check_results(
        xr.DataArray(
            merged.pop("result"), dims=dims, coords={d: coords[d] for d in dims}
        )
    )
    data = {}
    if spec.observe.order_parameter:
        coords["time"] = spec.solve.save_times()
        data["R"] = (dims, merged["R"])
        data["R_std"] = (dims, merged["R_std"])
        data["R_t"] = ([*dims, "time"], merged["R_t"])
    if spec.observe.energy:
        coords["time"] = spec.solve.save_times()
        data["E"] = (dims, merged["E"])
        data["E_t"] = ([*dims, "time"], merged["E_t"])
    if spec.observe.frequency:
        data["Omega"] = (dims, merged["Omega"])
        data["Omega_std"] = (dims, merged["Omega_std"])
    if spec.observe.locked:
        data["locked"] = (dims, merged["locked"])
    if spec.observe.trajectories:
        coords["time"] = spec.solve.save_times()
        if isinstance(spec.model, SphereSpec):
            data["x"] = ([*dims, "time", "osc", "dim"], merged["x"])
        else:
            data["theta"] = ([*dims, "time", "osc"], merged["theta"])
        seeds = np.asarray(spec.sweep.seeds, dtype=np.int32)
        omega = np.asarray(_jitted("omegas")(_config(spec), seeds))
        data["omega"] = (["seed", "osc"], omega)
    ds = xr.Dataset(data, coords=coords)
    for name in ds.variables:
        table = VARIABLES if name in VARIABLES else COORDS
        if name in table:
            units, long_name = table[name]
            ds[name].attrs.update(units=units, long_name=long_name)
    ds.attrs.update(_attrs(spec))
    return ds


def _attrs(spec: StudySpec) -> dict:
    """Dataset attributes describing the study (netCDF-safe scalars only)."""
    m, f, c, s = spec.model, spec.model.frequencies, spec.model.coupling, spec.solve
    sphere = isinstance(m, SphereSpec)
    attrs = {
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
        "noise": "additive" if m.noisy else "none",
        "delays": "uniform" if m.delayed else "none",
        "swept": " ".join((("n",) if spec.sweep.sizes else ()) + spec.sweep.names),
        "mode": spec.sweep.mode,
        "t0": s.t0,
        "t1": s.t1,
        "dt": s.dt,
        "solver": s.solver,
        "save_every": s.save_every,
        "window": spec.observe.window,
    }
    if m.noisy:
        attrs["brownian"] = m.noise.brownian
    if sphere:
        attrs["dim"] = m.dim
        attrs["rotation"] = m.rotation
        attrs["stimulus"] = "none" if m.stimulus is None else "h e_0"
        attrs["initial_state"] = "uniform on the sphere"
    if spec.sweep.adiabatic:
        attrs["along"] = spec.sweep.along
    if sphere:
        present = {"K"} | ({"h"} if m.stimulus is not None else set())
    else:
        present = (
            {"K", "lag"}
            | ({"D"} if m.noisy else set())
            | ({"tau"} if m.delayed else set())
        )
    for name in SWEEPABLE:
        if name in present and name not in spec.sweep.names:
            attrs[name] = spec.fixed(name)
    return {k: v for k, v in attrs.items() if v is not None}


def run_study(
    spec: StudySpec | str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    workers: int | None = None,
    scheduler=None,
    spec_text: str | None = None,
    progress: bool = True,
    compile_cache: bool = True,
) -> Path:
    """Run a study, chunk by chunk, and write its netCDF file atomically.

    The sweep grid (product of the `[sweep]` axes, times the seeds) is split into
    chunks of `output.chunk_size` points; each chunk is one `jax.vmap`-ed, jitted call
    (the last chunk is padded, so all chunks share one compilation), reduced on device
    to `R`, `R_std` and `R_t` (and `Omega`, `Omega_std` with `observe.frequency`). The
    same spec and seeds give identical data, whichever backend ran it and however
    often it was interrupted and resumed: a seed fixes the frequencies, the initial
    phases and, for noisy models, the Brownian path.

    Each finished chunk is persisted (one file per chunk, written atomically) in the
    directory `<out>.chunks/` before the next one starts, so a killed run loses at most
    the chunks in flight; when all are finished the result is combined, written
    atomically to `out`, and the directory is removed. See `kuralab._runner` for the
    layout.

    **Arguments:**

    - `spec`: a `StudySpec`, or the path of a spec file.
    - `out`: output path (default `spec.output.path`, relative to the working
      directory); parent directories are created.
    - `resume`: keep the finished chunks of an earlier, interrupted run of the same
      spec and output and run only the others (nothing to resume: run normally).
      Without it, a chunk directory holding finished chunks raises `ChunkStoreError`.
    - `workers`: run the chunks on a local Dask cluster of this many worker processes
      (one thread each), started and closed by this call.
    - `scheduler`: run the chunks on an existing Dask cluster: the scheduler address
      (`"tcp://host:8786"`) or a `dask.distributed.Client`. Not with `workers`.

    **Other arguments:**

    - `spec_text`: the spec's TOML text for provenance (default: the file's text, or
      `spec.to_toml()`).
    - `progress`: show progress on stderr: a tqdm bar (chunks, rate, ETA) on a
      terminal, one line per finished chunk otherwise.
    - `compile_cache`: enable JAX's persistent compilation cache (`compile_cache_dir()`)
      for this process and the Dask workers.

    **Returns:** the path written. The output is untouched if anything fails.

    **Raises:** `SpecError` (invalid spec), `SimulationError` (a simulation failed; no
    chunks are kept), `ChunkStoreError` (the chunk directory belongs to another run, or
    holds finished chunks and `resume` is off), `ClusterError` (no Dask cluster could
    be started or reached), `ChunkError` (a chunk failed on a Dask worker; finished
    chunks are kept for `resume`).

    **Dataset:** dimensions are the swept parameters (named after them, e.g. `K`), then
    `seed`, `time` (and `osc` with trajectories). Variables: `R` and `R_std` (over the
    final `observe.window`), `R_t` (|Z| every `solve.save_every` steps), with
    `observe.frequency` the mean effective frequency `Omega` over the window and its
    spread across oscillators `Omega_std` (from the phases saved every
    `solve.save_every` steps and their exact winding numbers), with `observe.energy`
    the energy `kl.energy` averaged over the window, `E`, and over time, `E_t`, and
    with `observe.trajectories` also `theta` (sphere models: `x`, with a `dim`
    dimension) and `omega`.
    """
    _runner.check_backend(workers, scheduler)
    if not isinstance(spec, StudySpec):
        spec, text = _read_spec(spec)
        spec_text = spec_text if spec_text is not None else text
    if spec_text is None:
        spec_text = spec.to_toml()
    path = Path(out if out is not None else spec.output.path)
    if compile_cache:
        enable_compile_cache()

    grid = _grid(spec)
    _check_representable(spec, grid)
    return _runner.run(
        spec,
        grid,
        path,
        spec_text=spec_text,
        resume=resume,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        compile_cache=compile_cache,
    )
