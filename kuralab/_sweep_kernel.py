r"""The per-point engine of `kl.sweep` and of studies (`kuralab._study.plan`).

One grid point is one call of `make(**point) -> (model, y0)` followed by
`run_point`: a transient `[t0, t_w]`, then the averaging window `[t_w, t1]`, reduced
on the device. Everything that decides a number lives here, once:

- **transient handling**: two `kl.simulate` segments, the transient saving nothing
  (or, with `record = "run"`, the same saves as the window so that time series cover
  the whole run), the window starting from the transient's final state;
- **energy**: `kl.energy(model, y, t)` at every save of the window (no closed forms);
- **noise keys**: `point_key(base, seed)` for a point, then `segment_key(key, 0 | 1)`
  for its transient and window (adiabatic steps fold in the step index first).

`kl.sweep` builds a `Config` from its arguments; a study builds one from its spec, with
`make` a hashable model builder. Both call `batch` (a `jax.vmap` over points, jitted
once per `Config`), so a study point and the same `kl.sweep` point give the same
numbers (tests/test_study.py::test_study_point_equals_kl_sweep).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from . import _names as nm
from ._integrate import RESULTS, SaveAt, simulate
from ._integrate.simulate import initial_history, simulate_carrying
from ._misc import TWO_PI, wrap_phase
from ._models.base import AbstractModel, AbstractPhaseModel
from ._observables import _locked_fraction, _phasor, _rotation_rate, order_parameter

__all__ = ["OBSERVABLES", "Config", "batch", "point_key", "ramp_up_down", "run_point"]

#: Reductions the engine can compute: name -> (units, long_name).
OBSERVABLES: dict[str, tuple[str, str]] = {
    nm.R: ("1", "order parameter, mean over the window"),
    nm.R_STD: ("1", "standard deviation of the order parameter over the window"),
    nm.OMEGA_EFF: (
        "rad/time",
        "oscillator-mean effective frequency: mean over i of (theta_i(t1) - "
        "theta_i(t_w)) / window (not the mean field's rotation rate Omega_Z)",
    ),
    nm.OMEGA_STD: ("rad/time", "standard deviation of the effective frequencies"),
    nm.OMEGA_Z: (
        "rad/time",
        "mean-field rotation rate Omega_Z: unwrapped arg Z advanced over the window / "
        "window",
    ),
    nm.PSI_T: ("rad", "mean-field phase psi(t) = arg Z(t), in (-pi, pi]"),
    nm.TURNS: ("1", "winding number at every save: unwrapped phase = theta + 2 pi turns"),
    nm.LOCKED: ("1", "fraction of oscillators locked to the mean field's frequency"),
    nm.ENERGY: ("1", "model energy kl.energy, mean over the window"),
    nm.R_T: ("1", "order parameter at every save"),
    nm.ENERGY_T: ("1", "model energy kl.energy at every save"),
    nm.FINAL: ("1", "state at t1 (phases in rad, wrapped to [-pi, pi))"),
    nm.TRAJECTORY: ("1", "states at every save"),
    nm.LYAPUNOV: ("1/time", "largest Lyapunov exponent over the window"),
    nm.LYAPUNOV_STDERR: (
        "1/time",
        "standard error of the largest Lyapunov exponent (block means)",
    ),
}
#: The study events' record (`[[events]]`): time each event fired, NaN if never.
EVENT_TIME = "event_time"
OBSERVABLES[EVENT_TIME] = ("1", "time the event fired (NaN: it never did)")
#: Reductions that need phases (winding numbers, the mean field's phase).
PHASE_ONLY = (nm.OMEGA_EFF, nm.OMEGA_STD, nm.OMEGA_Z, nm.LOCKED, nm.PSI_T, nm.TURNS)
#: Reductions with a `time` dimension (the saves of the recorded span).
SERIES = (nm.R_T, nm.ENERGY_T, nm.TRAJECTORY, nm.PSI_T, nm.TURNS)


@dataclass(frozen=True)
class Config:
    """Everything static about a batch of points (hashable: the jit cache key).

    `names` are the axes, in the order their columns are passed; `make(**point)` gets
    them as keyword arguments. `record` is the span of the time series (`R_t`,
    `energy_t`, `trajectory`): `"window"` (`kl.sweep`) or `"run"` (studies: from t0).
    """

    make: Callable
    names: tuple[str, ...]
    t0: float
    t_w: float  # start of the window
    t1: float
    dt: float
    solver: Any
    save_every: int
    brownian: str
    observe: tuple[str, ...]
    lock_tol: float | None
    throw: bool = False
    record: str = "window"
    events: tuple = ()  # study [[events]] (EventSpec-like records): see _events_of


def call_make(cfg: Config, params: dict) -> tuple[AbstractModel, Array]:
    out = cfg.make(**params)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            f"`make(**point)` must return a tuple (model, y0); got {type(out).__name__}"
        )
    model, y0 = out
    if not isinstance(model, AbstractModel):
        raise TypeError(
            "`make(**point)` must return (model, y0) with a kuralab model first; got "
            f"{type(model).__name__}"
        )
    return model, jnp.asarray(y0)


def _order_parameter(model, y) -> Array:
    if isinstance(model, AbstractPhaseModel):
        return jnp.abs(order_parameter(y))
    axes = tuple(range(y.ndim - 1))
    return jnp.linalg.norm(jnp.mean(y, axis=axes))


def point_key(base_key, seed):
    """The noise key of the point with seed `seed` (0 without a seed axis)."""
    return jax.random.fold_in(base_key, seed)


def segment_key(key, segment: int):
    """The Brownian key of a point's transient (0) or window (1)."""
    return jax.random.fold_in(jax.random.fold_in(key, 0), segment)


def save_times(cfg: Config) -> np.ndarray:
    """The save times of a run over `[t0, t1]` (every `save_every` steps, and t1)."""
    from ._integrate import _num_steps

    n, k = _num_steps(cfg.t0, cfg.t1, cfg.dt), cfg.save_every
    steps = list(range(0, n + 1, k)) + ([n] if n % k else [])
    return cfg.t0 + (cfg.t1 - cfg.t0) * np.asarray(steps, dtype=np.float64) / n


def delayed_window_start(cfg: Config) -> int:
    """Models with delays: the index of the first save time at or after `t_w` (their
    window starts on the save grid; see `run_point`)."""
    times = save_times(cfg)
    return int((times < cfg.t_w - 1e-9 * max(1.0, abs(cfg.t1))).sum())


def run_point(cfg: Config, model, y0, key) -> tuple[dict, Array]:
    """One simulation from `y0`: transient, then the window; returns the reductions
    (and `result`, the `kl.RESULTS` code) and the final state (wrapped).

    A model without delays runs two segments (the window restarts from the
    transient's final state: exact for a Markovian state). A model with delays runs
    one simulation over `[t0, t1]` saving its states, so that the delay history
    carries into the window; its window starts at the first save time at or after
    `t_w` (`delayed_window_start`), and the reductions come from the saved states
    (effective frequencies from their exact winding numbers)."""
    save = _saver(cfg, model)
    want = set(cfg.observe)
    if cfg.events:
        return _run_point_delayed(cfg, model, y0, key, save)
    if model.sender_delays is not None:
        if {nm.LYAPUNOV, nm.LYAPUNOV_STDERR} & want:
            raise ValueError(
                "observe: 'lyapunov' is not available for models with delays"
            )
        return _run_point_delayed(cfg, model, y0, key, save)
    return _run_point_segments(cfg, model, y0, key, save)


def _saver(cfg: Config, model):
    """The save function `save(t, y) -> dict` of the reductions `cfg.observe` needs."""
    phase = isinstance(model, AbstractPhaseModel)
    want = set(cfg.observe)

    def save(t, y):
        out = {nm.R: _order_parameter(model, y)}
        if phase and ({nm.LOCKED, nm.OMEGA_Z, nm.PSI_T} & want):
            out[nm.Z] = jnp.mean(_phasor(y))
        if {nm.ENERGY, nm.ENERGY_T} & want:
            from ._energy import energy

            out[nm.ENERGY] = energy(model, y, t)
        if nm.TRAJECTORY in want:
            out[nm.STATE] = y
        return out

    return save


def run_point_carrying(cfg: Config, model, y0, history, key):
    """`run_point` of a model with delays that starts from the delay buffer `history`
    (`_integrate.simulate.initial_history`, or the previous ramp value's) and returns
    `(reductions, (final state, final buffer))`: the adiabatic ramps carry the whole
    delay state, not only the end state, so each value continues the previous one's
    branch."""
    if {nm.LYAPUNOV, nm.LYAPUNOV_STDERR} & set(cfg.observe):
        raise ValueError("observe: 'lyapunov' is not available for models with delays")
    return _run_point_delayed(cfg, model, y0, key, _saver(cfg, model), history)


def _run_point_segments(cfg: Config, model, y0, key, save) -> tuple[dict, Array]:
    noisy = model.diffusion(cfg.t0, y0) is not None
    phase = isinstance(model, AbstractPhaseModel)
    common = dict(dt=cfg.dt, solver=cfg.solver, brownian=cfg.brownian, throw=cfg.throw)
    # Winding numbers exist only for saved states (not through a SaveAt.fn): with
    # `turns` the states are saved and the reductions computed from them afterwards.
    states = nm.TURNS in cfg.observe and phase
    every = SaveAt(every=cfg.save_every, fn=None if states else save)

    def saved(traj, offset):
        if not states:
            return traj.ys
        out = jax.vmap(save)(traj.ts, traj.ys)
        out[nm.TURNS] = traj.turns + offset
        return out

    results = []
    pre = pre_ys = None
    if cfg.t_w > cfg.t0:
        pre = simulate(
            model,
            y0,
            t0=cfg.t0,
            t1=cfg.t_w,
            saveat=every if cfg.record == "run" else SaveAt(final=True),
            key=segment_key(key, 0) if noisy else None,
            **common,
        )
        start = pre.final
        results.append(pre.result)
        pre_ys = saved(pre, 0) if cfg.record == "run" else None
        offset = pre.final_turns if phase else None
    else:
        start = wrap_phase(y0) if phase else model.project(y0)
        offset = 0
    win = simulate(
        model,
        start,
        t0=cfg.t_w,
        t1=cfg.t1,
        saveat=every,
        key=segment_key(key, 1) if noisy else None,
        **common,
    )
    results.append(win.result)
    win_ys = saved(win, offset)

    def series(name):
        # The window's saves; with record = "run" the transient's before them (its
        # last save is the window's first state: dropped).
        if cfg.record == "run" and pre is not None:
            return jnp.concatenate([pre_ys[name][:-1], win_ys[name]])
        return win_ys[name]

    unwrapped = win.final + TWO_PI * win.final_turns if phase else None
    out = _reduce(cfg, phase, win_ys, series, start, unwrapped, cfg.t1 - cfg.t_w)
    if nm.FINAL in cfg.observe:
        out[nm.FINAL] = win.final
    out[nm.RESULT] = _first_failure(results)._value
    if {nm.LYAPUNOV, nm.LYAPUNOV_STDERR} & set(cfg.observe):
        out.update(_largest_exponent(cfg, model, start, segment_key(key, 1) if noisy
                                     else None))
    return out, win.final


def _largest_exponent(cfg: Config, model, start, key) -> dict:
    """The largest Lyapunov exponent over the window `[t_w, t1]` from the window's
    start state, along the window's noise path (`kl.lyapunov_exponents`, k = 1, the
    tangent vector renormalised every step, 10 block means or one per step)."""
    from ._integrate.options import num_steps
    from ._lyapunov import lyapunov_exponents

    n = num_steps(cfg.t_w, cfg.t1, cfg.dt)
    lyap = lyapunov_exponents(
        model, start, t0=cfg.t_w, t1=cfg.t1, dt=cfg.dt, k=1, key=key,
        solver=cfg.solver, brownian=cfg.brownian, blocks=max(2, min(10, n)), records=1,
    )
    out = {}
    if nm.LYAPUNOV in cfg.observe:
        out[nm.LYAPUNOV] = lyap["exponents"][0]
    if nm.LYAPUNOV_STDERR in cfg.observe:
        out[nm.LYAPUNOV_STDERR] = lyap["stderr"][0]
    return out


def _threshold_fn(level: float):
    def cond(t, y):
        return jnp.abs(order_parameter(y)) - level
    return cond


def _events_of(cfg: Config) -> list:
    """kl.At / kl.When from the study's `[[events]]` records (duck-typed
    `kuralab._study.spec.EventSpec`: this module sits below `_study`)."""
    from ._events import At, Kick, ScaleCoupling, Stop, When

    out = []
    for e in cfg.events:
        action = {"coupling": lambda: ScaleCoupling(e.scale),
                  "kick": lambda: Kick(e.delta), "stop": Stop,
                  "record": list}[e.action]()
        if e.at is not None:
            out.append(At(e.at, action, name=e.name))
        else:
            op, level = e.threshold()
            out.append(When(_threshold_fn(level), action, after=e.after,
                            direction="up" if op == ">" else "down", name=e.name))
    return out


def _run_point_delayed(cfg: Config, model, y0, key, save, history=None):
    """One simulation over [t0, t1] saving on the grid, the window's reductions from
    the saves: models with delays (the history carries into the window), and runs with
    study events (`kl.simulate_events`; `event_time` joins the outputs). With a delay
    buffer `history` (no events) the run starts from it and the final state comes
    with the final buffer: `(out, (final, history))`."""
    noisy = model.diffusion(cfg.t0, y0) is not None
    phase = isinstance(model, AbstractPhaseModel)
    common = dict(
        t0=cfg.t0, t1=cfg.t1, dt=cfg.dt, solver=cfg.solver,
        saveat=SaveAt(every=cfg.save_every), key=segment_key(key, 1) if noisy else None,
        throw=cfg.throw,
    )
    if cfg.events:
        from ._events import simulate_events

        traj = simulate_events(model, y0, events=_events_of(cfg), **common)
    elif history is not None:
        traj, history = simulate_carrying(
            model, y0, history, brownian=cfg.brownian, **common
        )
    else:
        traj = simulate(model, y0, brownian=cfg.brownian, **common)
    w = delayed_window_start(cfg)
    saved = jax.vmap(save)(traj.ts, traj.ys)
    if phase and nm.TURNS in cfg.observe:
        saved[nm.TURNS] = traj.turns
    in_window = {k: v[w:] for k, v in saved.items()}

    def series(name):
        return saved[name] if cfg.record == "run" else in_window[name]

    start = unwrapped = None
    if phase:
        start = traj.ys[w] + TWO_PI * traj.turns[w]
        unwrapped = traj.final + TWO_PI * traj.final_turns
    window = float(save_times(cfg)[-1] - save_times(cfg)[w])
    out = _reduce(cfg, phase, in_window, series, start, unwrapped, window)
    if nm.FINAL in cfg.observe:
        out[nm.FINAL] = traj.final
    if cfg.events:
        out[EVENT_TIME] = traj.events.times
    out[nm.RESULT] = traj.result._value
    return out, (traj.final if history is None else (traj.final, history))


def _first_failure(results):
    result = results[0]
    for r in results[1:]:
        result = RESULTS.where(result == RESULTS.successful, r, result)
    return result


def _reduce(cfg, phase, win, series, start, unwrapped, window) -> dict:
    """The reductions from the window's saves `win` (a dict of series), the time
    series (`series(name)`), and for phases the unwrapped states at the window's
    start and end."""
    want = set(cfg.observe)
    R_w = win[nm.R]
    out: dict[str, Array] = {}
    if nm.R in want:
        out[nm.R] = jnp.mean(R_w)
    if nm.R_STD in want:
        out[nm.R_STD] = jnp.std(R_w)
    if nm.R_T in want:
        out[nm.R_T] = series(nm.R)
    if nm.ENERGY in want:
        out[nm.ENERGY] = jnp.mean(win[nm.ENERGY])
    if nm.ENERGY_T in want:
        out[nm.ENERGY_T] = series(nm.ENERGY)
    if nm.TRAJECTORY in want:
        out[nm.TRAJECTORY] = series(nm.STATE)
    if phase and nm.TURNS in want:
        out[nm.TURNS] = series(nm.TURNS)
    if phase and nm.PSI_T in want:
        out[nm.PSI_T] = jnp.angle(series(nm.Z))
    if phase:
        Omega = (unwrapped - start) / window
        if nm.OMEGA_EFF in want:
            out[nm.OMEGA_EFF] = jnp.mean(Omega)
        if nm.OMEGA_STD in want:
            out[nm.OMEGA_STD] = jnp.std(Omega)
        if {nm.LOCKED, nm.OMEGA_Z} & want:
            Omega_Z = _rotation_rate(win[nm.Z], window)
            if nm.OMEGA_Z in want:
                out[nm.OMEGA_Z] = Omega_Z
            if nm.LOCKED in want:
                tol = TWO_PI / window if cfg.lock_tol is None else cfg.lock_tol
                out[nm.LOCKED] = _locked_fraction(Omega, Omega_Z, tol)
    return out


def _independent_point(cfg: Config, key, *values) -> dict:
    params = dict(zip(cfg.names, values, strict=True))
    model, y0 = call_make(cfg, params)
    seed = params.get(nm.SEED, 0)
    out, _ = run_point(cfg, model, y0, point_key(key, seed))
    return out


def _adiabatic_point(cfg: Config, along: str, curve, key, *values) -> dict:
    """One independent point; scans `curve` (the values of axis `along`) up, then
    down, each value starting from the previous one's end state (for models with
    delays, its end state and delay buffer). The point's column of `along` is a
    placeholder."""
    params = dict(zip(cfg.names, values, strict=True))
    seed = params.get(nm.SEED, 0)
    key = point_key(key, seed)
    model0, y0 = call_make(cfg, {**params, along: curve[0]})
    if model0.sender_delays is not None and not cfg.events:
        # The delay buffer is part of the state: carry it with the end state.
        y0 = initial_history(
            model0, y0, t0=cfg.t0, t1=cfg.t1, dt=cfg.dt, solver=cfg.solver
        )

        def step(carry, value, index):
            model, _ = call_make(cfg, {**params, along: value})
            y, hist = carry
            return run_point_carrying(
                cfg, model, y, hist, jax.random.fold_in(key, index)
            )[::-1]

    else:

        def step(y, value, index):
            model, _ = call_make(cfg, {**params, along: value})
            out, y_end = run_point(cfg, model, y, jax.random.fold_in(key, index))
            return y_end, out

    return ramp_up_down(step, y0, curve)


def ramp_up_down(step: Callable, y0, curve: Array):
    """Scan `step(y, value, index) -> (y_end, out)` along `curve` and back: each value
    starts from the previous end state; `index` counts the steps (0 .. 2 len - 1, for
    per-step keys). Outputs gain leading axes (direction: up, down; value), the down
    pass reordered to match `curve`."""
    num = curve.shape[0]
    indices = jnp.arange(num)

    def body(y, xs):
        return step(y, *xs)

    y_up, up = jax.lax.scan(body, y0, (curve, indices))
    _, down = jax.lax.scan(body, y_up, (curve[::-1], num + indices))
    down = jax.tree_util.tree_map(lambda a: a[::-1], down)
    return jax.tree_util.tree_map(lambda u, d: jnp.stack([u, d]), up, down)


def _independent_batch(cfg: Config, key, *cols):
    return jax.vmap(lambda *v: _independent_point(cfg, key, *v))(*cols)


def _adiabatic_batch(cfg: Config, along: str, curve, key, *cols):
    return jax.vmap(lambda *v: _adiabatic_point(cfg, along, curve, key, *v))(*cols)


@functools.cache
def _jitted(kind: str):
    if kind == "independent":
        return jax.jit(_independent_batch, static_argnums=0)
    return jax.jit(_adiabatic_batch, static_argnums=(0, 1))


def batch(cfg: Config, key, columns: dict, *, along: str | None = None, curve=None):
    """Run a batch of points: `columns` maps every name of `cfg.names` to a 1-D array
    (one entry per point; the same length for all). With `along`, each point ramps
    that axis through `curve` up and down (`ramp_up_down`; its column is ignored).

    **Returns:** a dict of arrays with a leading point axis (then direction and
    `along` in adiabatic mode), including `result` (`kl.RESULTS` codes).
    """
    cols = [columns[name] for name in cfg.names]
    if along is None:
        return _jitted("independent")(cfg, key, *cols)
    return _jitted("adiabatic")(cfg, along, curve, key, *cols)
