r"""Parameter sweeps: `kl.sweep` runs a model over named parameter axes and returns one
labelled `xarray.Dataset` of on-device reductions.

```python
def make(K, seed):
    key_w, key_t = jax.random.split(jax.random.key(seed))
    omega = kl.sample_frequencies(key_w, 500, "lorentzian", scale=0.5)
    return kl.Kuramoto(omega, kl.MeanField(K)), kl.random_phases(key_t, 500)

ds = kl.sweep(make, {"K": np.linspace(0, 3, 31), "seed": range(4)}, t1=100.0, dt=0.05)
ds.R.mean("seed").plot()
```

Two modes:

- `"independent"`: every grid point starts from its own `y0` (from `make`). Points are
  `jax.vmap`-ed in chunks whose size fits a memory budget; all chunks share one
  compilation (the last one is padded), so a sweep compiles once per shape, never once per
  parameter value.
- `"adiabatic"`: one axis (`along`) is a parameter curve; each value starts from the end
  state of the previous one (a quasi-static ramp), first up the curve and then back down,
  so hysteresis shows as a difference between the `direction = "up"` and `"down"` rows.
  For models with delays the end state includes the delay history: the next value
  starts from the previous run's history buffer (renumbered to start at `t0` again),
  not from a constant history, so a delay-coupled branch (Yeung & Strogatz 1999) is
  followed (tests/test_sweep.py::test_adiabatic_ramp_exposes_delayed_hysteresis).
  The other axes are independent and `vmap`-ed.

Each point runs a transient `[t0, t1 - window]` and then the averaging window
`[t1 - window, t1]`; the reductions are computed on the device from the window alone.
(Models with delays run `[t0, t1]` in one simulation, so that the delay history
carries into the window, which then starts at the first save time at or after
`t1 - window`.)

- `R`, `R_std`: mean and standard deviation of the order parameter over the window's saves
  ($|\langle e^{i\theta}\rangle|$ for phases, $\|\langle x\rangle\|$ for sphere states);
- `Omega`, `Omega_std`: mean and spread over oscillators of the effective frequencies
  $\Omega_i = [\theta_i(t_1) - \theta_i(t_1 - w)] / w$ from exact winding numbers
  (phase models);
- `locked`: the fraction of oscillators whose $\Omega_i$ is within `lock_tol` (default
  $2\pi / w$: less than one phase slip over the window) of the mean field's frequency
  $\Omega_Z$ (the rotation rate of $\arg Z$ over the window); `Omega_Z` itself;
- `energy`: the model's energy (`kl.energy`) averaged over the window (models with one);
- `R_t`, `energy_t`: the order parameter and the energy at every save of the window
  (dimension `time`);
- `final`: the state at `t1` (dimensions `osc`[, `dim`]); `trajectory`: the states at
  every save of the window — full states only on request, they cost memory.

The per-point computation is `kuralab._sweep_kernel` (shared with studies, which run
their points through the same kernel). Randomness: a `seed` axis is passed to `make` as an integer (traced `int32`) for drawing
frequencies and initial states; noisy models get a Brownian path keyed by
`fold_in(key, seed)` (`key` defaults to `jax.random.key(0)`), so without a seed axis all
points share one noise realisation (common random numbers across parameter values).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array

from . import _names as nm
from ._integrate import RESULTS, SimulationError
from ._misc import nearest
from ._models.base import AbstractModel, AbstractPhaseModel
from ._sweep_kernel import (
    OBSERVABLES,
    PHASE_ONLY,
    SERIES,
    Config,
    batch,
    call_make,
    delayed_window_start,
    save_times,
)

__all__ = ["OBSERVABLES", "sweep"]

_DEFAULT_OBSERVE = (nm.R, nm.R_STD, nm.OMEGA_EFF, nm.OMEGA_STD, nm.LOCKED)
_MODES = ("independent", "adiabatic")
_RESERVED = (nm.DIRECTION, nm.TIME, nm.OSC, nm.DIM)


# ---------------------------------------------------------------------------------
# Axes and grid
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    name: str
    values: np.ndarray  # (len, *item_shape)
    coord: np.ndarray  # 1-D coordinate values (the values, or an index)


def _parse_axes(axes: Mapping[str, Any]) -> list[_Axis]:
    if not isinstance(axes, Mapping) or not axes:
        raise ValueError(
            "`axes` must be a non-empty dict {name: values}, e.g. "
            f"{{'K': np.linspace(0, 3, 31), 'seed': range(4)}}; got {axes!r}"
        )
    out = []
    for name, raw in axes.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"axis name {name!r}: expected a Python identifier (it is passed to "
                "`make` as a keyword argument)"
            )
        if name in _RESERVED:
            raise ValueError(
                f"axis name {name!r} is reserved for a dimension of the result; "
                "choose another name"
            )
        try:
            values = np.asarray(list(raw) if not hasattr(raw, "shape") else raw)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"axes[{name!r}]: expected a sequence or array of numbers; got {raw!r}"
            ) from e
        if values.ndim == 0 or values.shape[0] == 0:
            raise ValueError(
                f"axes[{name!r}] = {raw!r}: expected a non-empty sequence of values"
            )
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise ValueError(
                f"axes[{name!r}]: expected numbers; got dtype {values.dtype}"
            )
        if not np.all(np.isfinite(values)):
            bad = values.reshape(values.shape[0], -1)
            i = int(np.argmin(np.all(np.isfinite(bad), axis=1)))
            raise ValueError(
                f"axes[{name!r}][{i}] = {values[i]!r}: expected finite values"
            )
        if name == nm.SEED:
            if values.ndim != 1 or not np.all(values == np.round(values)):
                raise ValueError(
                    f"axes['seed'] = {raw!r}: expected a 1-D sequence of integers"
                )
            if len(set(values.tolist())) != len(values):
                raise ValueError(f"axes['seed'] = {raw!r}: seeds must be distinct")
            values = values.astype(np.int64)
        coord = values if values.ndim == 1 else np.arange(values.shape[0])
        out.append(_Axis(name, values, coord))
    return out


@dataclass(frozen=True)
class _Layout:
    """How the axes combine: `groups` are tuples of axis names sharing one dimension
    (product over groups, zip within a group)."""

    groups: tuple[tuple[str, ...], ...]
    shape: tuple[int, ...]

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(g[0] for g in self.groups)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _layout(axes: list[_Axis], zip_: Sequence[str] | None) -> _Layout:
    names = [a.name for a in axes]
    length = {a.name: a.values.shape[0] for a in axes}
    zipped: tuple[str, ...] = ()
    if zip_ is not None:
        zipped = (zip_,) if isinstance(zip_, str) else tuple(zip_)
        for z in zipped:
            if z not in length:
                raise ValueError(
                    f"zip: unknown axis {z!r}; the axes are {names}" + nearest(z, names)
                )
        if len(zipped) < 2:
            raise ValueError(f"zip = {zip_!r}: expected at least two axis names")
        lengths = {z: length[z] for z in zipped}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"zip: the zipped axes must have equal lengths; got {lengths}"
            )
    groups = []
    for name in names:
        if name in zipped:
            if name == zipped[0]:
                groups.append(zipped)
        else:
            groups.append((name,))
    return _Layout(tuple(groups), tuple(length[g[0]] for g in groups))


def _flat_indices(layout: _Layout, axes: list[_Axis]) -> dict[str, np.ndarray]:
    """For every axis, the index into its values of each flat grid point (C order)."""
    grids = np.meshgrid(*[np.arange(n) for n in layout.shape], indexing="ij")
    out = {}
    for group, g in zip(layout.groups, grids, strict=True):
        for name in group:
            out[name] = g.ravel()
    return {a.name: out[a.name] for a in axes}


# ---------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------


def _check_times(t0, t1, dt, window):
    for name, v in (("t0", t0), ("t1", t1), ("dt", dt)):
        if isinstance(v, bool) or not isinstance(v, int | float | np.number):
            raise ValueError(f"`{name}` must be a number; got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"`{name}` must be finite; got {v!r}")
    if not t1 > t0:
        raise ValueError(f"`t1` must be > t0 = {t0}; got {t1}")
    if not dt > 0:
        raise ValueError(f"`dt` must be > 0; got {dt}")
    if window is None:
        window = 0.5 * (t1 - t0)
    if not (math.isfinite(window) and 0 < window <= t1 - t0):
        raise ValueError(
            f"`window` must be a duration in (0, t1 - t0 = {t1 - t0:g}]; got {window!r}"
        )
    if window < dt:
        raise ValueError(f"`window` = {window} must be at least one step dt = {dt}")
    return float(t0), float(t1), float(dt), float(window)


def _check_observe(observe) -> tuple[str, ...]:
    if isinstance(observe, str):
        observe = (observe,)
    observe = tuple(observe)
    if not observe:
        raise ValueError(f"`observe` must name at least one of {list(OBSERVABLES)}")
    for name in observe:
        if name not in OBSERVABLES:
            raise ValueError(
                f"observe: unknown observable {name!r}; expected some of "
                f"{list(OBSERVABLES)}" + nearest(name, OBSERVABLES)
            )
    return tuple(dict.fromkeys(observe))


def _point_bytes(cfg: Config, state_shape, itemsize: int, delayed: bool) -> int:
    """Rough device memory for one point: solver stages plus what it saves (a model
    with delays saves its states over the whole run, see `_sweep_kernel.run_point`)."""
    state = int(np.prod(state_shape)) * itemsize
    start = cfg.t0 if delayed else cfg.t_w
    steps = math.ceil((cfg.t1 - start) / cfg.dt)
    saves = steps // cfg.save_every + 2
    saved = 16 * saves
    if delayed or nm.TRAJECTORY in cfg.observe:
        saved += saves * state
    return 16 * state + saved


def _solver_attr(solver, model, y0) -> str:
    """The name of the solver that ran (`None`: kl.simulate's default for the model)."""
    if solver is None:  # model and y0 may be abstract (jax.eval_shape)
        noise = jax.eval_shape(lambda m, y: m.diffusion(0.0, y), model, y0)
        return "euler" if noise is not None else "rk4"
    return solver if isinstance(solver, str) else type(solver).__name__


def sweep(
    make: Callable[..., tuple[AbstractModel, Array]],
    axes: Mapping[str, Iterable],
    *,
    t1: float,
    dt: float,
    t0: float = 0.0,
    window: float | None = None,
    solver: str | Any = None,
    save_every: int = 1,
    observe: Sequence[str] | str = _DEFAULT_OBSERVE,
    mode: str = "independent",
    along: str | None = None,
    zip: Sequence[str] | None = None,  # noqa: A002
    key=None,
    brownian: str = "increments",
    lock_tol: float | None = None,
    chunk_size: int | None = None,
    max_memory: float = 2.0**30,
    throw: bool = True,
    progress: bool = False,
) -> xr.Dataset:
    r"""Run a model over a grid of named parameters; one labelled Dataset of reductions.

    **Main arguments:**

    - `make`: `make(**point) -> (model, y0)`, called with one keyword argument per axis
      (traced scalars; a `seed` axis arrives as an `int32`, e.g. for
      `jax.random.key(seed)`; an axis whose values are arrays of shape `(len, ...)`
      passes one row). Define it once (module level or a named function): a new function
      object means a new compilation.
    - `axes`: `{name: values}`; each a non-empty 1-D sequence of finite numbers (or an
      array whose leading axis is the sweep axis, e.g. a stack of initial states).
      Combined as a Cartesian product in the given order.
    - `t1`, `dt`, `t0`: integration span and step (as `kl.simulate`).
    - `window`: duration of the final averaging window (default: the second half).
    - `observe`: reductions to store (see the module docstring): any of `"R"`,
      `"R_std"`, `"Omega"`, `"Omega_std"`, `"Omega_Z"`, `"locked"`, `"energy"`, `"R_t"`,
      `"energy_t"`, `"final"`, `"trajectory"`, `"lyapunov"` (the largest Lyapunov exponent
      over the window, `kl.lyapunov_exponents` with k = 1, along the window's noise
      path) and `"lyapunov_stderr"` (its block-mean standard error). Default: R, R_std, Omega, Omega_std, locked (the
      frequency ones only for phase models).
    - `mode`: `"independent"` (default) or `"adiabatic"`.

    **Other arguments:**

    - `along`: the adiabatic axis (default: the first axis); its values are visited in
      the given order ("up"), then in reverse ("down").
    - `zip`: names of axes to pair element-wise instead of crossing (equal lengths);
      they share one dimension named after the first of them.
    - `solver`, `save_every`, `brownian`: as in `kl.simulate` (default solver: `"rk4"`,
      `"euler"` for models with noise; saves are every
      `save_every` steps within the window; noisy models default to
      `brownian="increments"`, the fast Brownian path).
    - `key`: base PRNG key of the noise (default `jax.random.key(0)`).
    - `lock_tol`: frequency tolerance for `locked` (default `2 pi / window`).
    - `chunk_size`: points per compiled batch (default: as many as fit `max_memory`
      bytes, at most 4096).
    - `throw`: raise `kl.SimulationError` naming the first failed point (default);
      with `False` the Dataset has an integer variable `result` instead.
    - `progress`: a tqdm progress bar over chunks (stderr).

    **Returns:** an `xarray.Dataset` with one dimension per axis (zipped axes share
    one), plus `direction` (`"up"`, `"down"`) first in adiabatic mode, `time` for
    `R_t`/`trajectory` and `osc`[, `dim`] for states. Attributes record the mode, times,
    solver and window.
    """
    t0, t1, dt, window = _check_times(t0, t1, dt, window)
    if mode not in _MODES:
        raise ValueError(f"`mode` must be one of {_MODES}; got {mode!r}")
    if not callable(make):
        raise TypeError(f"`make` must be callable as make(**point); got {make!r}")
    if (
        isinstance(save_every, bool)
        or not isinstance(save_every, int)
        or save_every < 1
    ):
        raise ValueError(f"`save_every` must be a positive int; got {save_every!r}")
    if brownian not in ("tree", "increments"):
        raise ValueError(f"`brownian` must be 'tree' or 'increments'; got {brownian!r}")
    if lock_tol is not None and not (math.isfinite(lock_tol) and lock_tol > 0):
        raise ValueError(f"`lock_tol` must be a number > 0; got {lock_tol!r}")
    observe = _check_observe(observe)
    parsed = _parse_axes(axes)
    names = tuple(a.name for a in parsed)
    if mode == "adiabatic":
        along = names[0] if along is None else along
        if along not in names:
            raise ValueError(
                f"`along` = {along!r}: expected one of the axes {list(names)}"
                + nearest(along, names)
            )
        if along == nm.SEED:
            raise ValueError(
                "`along` cannot be 'seed': seeds are not a parameter curve"
            )
        if zip is not None and along in ((zip,) if isinstance(zip, str) else zip):
            raise ValueError(f"`along` = {along!r} cannot also be zipped")
    elif along is not None:
        raise ValueError("`along` is only used with mode='adiabatic'")
    if chunk_size is not None and (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
    ):
        raise ValueError(f"`chunk_size` must be a positive int; got {chunk_size!r}")
    key = jax.random.key(0) if key is None else key

    # Independent axes form the vmapped grid; in adiabatic mode `along` is scanned.
    grid_axes = [a for a in parsed if not (mode == "adiabatic" and a.name == along)]
    dtype = jnp.result_type(float)
    cfg = Config(
        make=make,
        names=names,
        t0=t0,
        t_w=t1 - window,
        t1=t1,
        dt=dt,
        solver=solver,
        save_every=save_every,
        brownian=brownian,
        observe=observe,
        lock_tol=lock_tol,
        throw=False,
    )
    # Validate `make` and learn the state once, abstractly (no compile).
    first = {a.name: _as_jnp(a.values[0], a.name, dtype) for a in parsed}
    model, y0 = jax.eval_shape(lambda: call_make(cfg, first))
    phase = isinstance(model, AbstractPhaseModel)
    bad = [o for o in observe if o in PHASE_ONLY and not phase]
    if bad:
        raise ValueError(
            f"observe: {bad} need a phase model; {type(model).__name__} has "
            "vector states"
        )
    if nm.ENERGY in observe or nm.ENERGY_T in observe:
        from ._energy import energy

        try:
            jax.eval_shape(lambda: energy(*call_make(cfg, first)))
        except (TypeError, ValueError) as e:
            raise ValueError(f"observe: 'energy' is not available here: {e}") from e
    observe = tuple(o for o in observe if o in OBSERVABLES)

    layout = _layout(grid_axes, zip) if grid_axes else _Layout((), ())
    size = layout.size if grid_axes else 1
    delayed = model.sender_delays is not None
    per_point = _point_bytes(cfg, y0.shape, np.dtype(dtype).itemsize, delayed)
    if mode == "adiabatic":
        per_point *= 2
    if chunk_size is None:
        chunk_size = int(max(1, min(4096, max_memory // max(per_point, 1))))
    chunk_size = min(chunk_size, size)

    index = _flat_indices(layout, grid_axes) if grid_axes else {}
    curve = None
    if mode == "adiabatic":
        along_axis = next(a for a in parsed if a.name == along)
        curve = jnp.asarray(along_axis.values, dtype=_dtype_for(along_axis, dtype))

    parts = []
    starts = range(0, size, chunk_size)
    bar = _progress_bar(len(starts), progress)
    for start in starts:
        stop = min(start + chunk_size, size)
        rows = np.concatenate(
            [np.arange(start, stop), np.full(chunk_size - (stop - start), stop - 1)]
        )
        cols = {}
        for a in parsed:
            if mode == "adiabatic" and a.name == along:
                # Placeholder column; the scan substitutes the curve values.
                cols[a.name] = jnp.zeros((chunk_size,), _dtype_for(a, dtype))
            else:
                values = a.values[index[a.name][rows]] if grid_axes else a.values[:1]
                cols[a.name] = _as_jnp(values, a.name, dtype)
        out = batch(
            cfg, key, cols, along=along if mode == "adiabatic" else None, curve=curve
        )
        parts.append(
            jax.tree_util.tree_map(lambda x, n=stop - start: np.asarray(x)[:n], out)
        )
        bar(1)
    bar(None)
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return _to_dataset(
        merged, parsed, grid_axes, layout, cfg, mode, along, throw, model, y0
    )


def _dtype_for(axis: _Axis, dtype):
    return jnp.int32 if axis.name == nm.SEED else dtype


def _as_jnp(values, name: str, dtype):
    if name == nm.SEED:
        return jnp.asarray(values, dtype=jnp.int32)
    return jnp.asarray(values, dtype=dtype)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return lambda n: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="chunk", file=sys.stderr, desc="sweep")

    def update(n):
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return update


def _to_dataset(merged, parsed, grid_axes, layout, cfg, mode, along, throw, model, y0):
    shape = layout.shape if grid_axes else ()
    dims = list(layout.dims) if grid_axes else []
    lead: list[str] = []
    lead_shape: tuple[int, ...] = ()
    if mode == "adiabatic":
        along_axis = next(a for a in parsed if a.name == along)
        # (points, direction, along, ...) -> (direction, along, *grid, ...)
        for k, v in merged.items():
            merged[k] = np.moveaxis(np.moveaxis(v, 1, 0), 2, 1)
        lead = [nm.DIRECTION, along]
        lead_shape = (2, along_axis.values.shape[0])
    result = merged.pop(nm.RESULT).reshape(lead_shape + shape)
    if throw and not (result == RESULTS.successful._value).all():
        flat = result.reshape(-1)
        i = int(np.argmax(flat != RESULTS.successful._value))
        where = np.unravel_index(i, lead_shape + shape)
        labels = []
        coords_by_dim = _coords(parsed, layout, grid_axes, mode, along)
        for d, j in zip(lead + dims, where, strict=True):
            c = coords_by_dim[d][1]
            labels.append(f"{d} = {c[j]}")
        message = RESULTS._index_to_message[int(flat[i])]
        raise SimulationError(
            f"{int((flat != RESULTS.successful._value).sum())} of {flat.size} sweep "
            f"points failed (first at {', '.join(labels)}): {message}"
        )
    data = {}
    state_dims = (
        [nm.OSC, nm.DIM][: y0.ndim]
        if y0.ndim <= 2
        else [f"axis{i}" for i in range(y0.ndim)]
    )
    for name, value in merged.items():
        base = lead + dims
        value = value.reshape(lead_shape + shape + value.shape[len(lead_shape) + 1 :])
        extra = value.ndim - len(base)
        if name in (nm.R_T, nm.ENERGY_T, nm.PSI_T):
            extra_dims = [nm.TIME]
        elif name == nm.TURNS:
            extra_dims = [nm.TIME, nm.OSC]
        elif name == nm.FINAL:
            extra_dims = state_dims
        elif name == nm.TRAJECTORY:
            extra_dims = [nm.TIME, *state_dims]
        else:
            extra_dims = []
        if len(extra_dims) != extra:
            raise AssertionError(f"kuralab bug: {name} has shape {value.shape}")
        units, long_name = OBSERVABLES[name]
        data[name] = xr.Variable(
            base + extra_dims, value, {"units": units, "long_name": long_name}
        )
    if not throw:
        data[nm.RESULT] = xr.Variable(
            lead + dims, result, {"long_name": "kl.RESULTS code (0 = success)"}
        )
    coords = {}
    for dim, (d, c, extra_coords) in _coords(
        parsed, layout, grid_axes, mode, along
    ).items():
        coords[dim] = (d, c)
        for name, values in extra_coords.items():
            coords[name] = (d, values)
    if set(SERIES) & set(merged):
        if model.sender_delays is not None:  # one run; the window on its save grid
            times = save_times(cfg)[delayed_window_start(cfg) :]
        else:
            n_steps = math.ceil((cfg.t1 - cfg.t_w) / cfg.dt - 1e-9)
            k = cfg.save_every
            steps = np.arange(0, n_steps + 1, k)
            if n_steps % k:
                steps = np.append(steps, n_steps)
            times = cfg.t_w + steps * ((cfg.t1 - cfg.t_w) / n_steps)
        coords[nm.TIME] = (nm.TIME, times)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(
        mode=mode,
        t0=cfg.t0,
        t1=cfg.t1,
        dt=cfg.dt,
        window=cfg.t1 - cfg.t_w,
        save_every=cfg.save_every,
        solver=_solver_attr(cfg.solver, model, y0),
        model=type(model).__name__,
        n=int(y0.shape[0]),
        swept=" ".join(a.name for a in parsed),
    )
    if mode == "adiabatic":
        ds.attrs["along"] = along
    return ds


def _coords(parsed, layout, grid_axes, mode, along):
    """dim -> (dim, coordinate values, {other coordinate name: values})."""
    by_name = {a.name: a for a in parsed}
    out = {}
    if mode == "adiabatic":
        out[nm.DIRECTION] = (nm.DIRECTION, np.array(["up", "down"]), {})
        a = by_name[along]
        out[along] = (along, a.coord, {})
    if grid_axes:
        for group in layout.groups:
            a = by_name[group[0]]
            out[group[0]] = (
                group[0],
                a.coord,
                {n: by_name[n].coord for n in group[1:]},
            )
    return out
