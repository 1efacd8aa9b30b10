"""`simulate_events`: integrate a model through a schedule of events.

The run is a sequence of segments, one diffrax solve each. A segment ends at the
earliest pending `At` time (or `t1`), or earlier when a pending `When` condition
crosses zero: diffrax's `Event` with an `optimistix.Bisection` root finder locates the
crossing on the solver's dense output. The fired events' actions then change the model
and/or the state, and the next segment restarts from there. Each event fires at most
once, so `len(events) + 1` segments always suffice: the loop is one `lax.scan` with a
fixed trip count (segments after the end have zero length), and the whole run is a
single compiled function that works under `jax.jit` and `jax.vmap`.

Why segments instead of one diffrax solve: diffrax events can only *terminate* a solve;
they cannot change the state or the vector field. A kick, a cut edge or a new coupling
strength therefore needs a restart. The same restart also covers `At` events (a solve
that ends exactly at the event time), so both kinds share one mechanism.

Why a function of its own and not `kl.simulate(..., events=...)`: `simulate` is one
diffrax solve with static times, a burn-in, delay buffers and an on-disk export cache
keyed on that signature; the event loop has traced segment times, changing models and
its own record. Keeping the two apart leaves `simulate`'s compiled path untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array

from .._custom_types import Key, RealLike
from .._misc import is_concrete
from .._models.base import AbstractModel
from .._integrate import options as opt
from .._integrate.manifold import Retract, final_fn, make_save_fn
from .._integrate.solve import _terms
from .._integrate.solvers import resolve_solver, solver_name
from .._integrate.trajectory import RESULTS, SaveAt, Trajectory, raise_on_failure
from .spec import At, EventLog, When, check_events

__all__ = ["simulate_events"]


def simulate_events(
    model: AbstractModel,
    y0: RealLike,
    *,
    t1: float,
    dt: float,
    events: Sequence[At | When],
    t0: float = 0.0,
    solver: str | dfx.AbstractSolver | None = None,
    saveat: SaveAt | None = None,
    key: Key | None = None,
    stepsize_controller: dfx.AbstractStepSizeController | None = None,
    max_steps: int | None = None,
    root_tol: float | None = None,
    throw: bool = True,
) -> Trajectory:
    r"""Integrate `model` from `y0` at `t0` to `t1` through a schedule of `events`.

    **Main arguments:**

    - `model`, `y0`, `t0`, `t1`, `dt`, `solver`, `key`, `stepsize_controller`,
      `max_steps`, `throw`: as for `kl.simulate` (fixed step by default: a segment
      `[a, b]` takes steps of `dt`, the last one shortened to end at `b`).
    - `events`: a list of `kl.At(t, action)` and `kl.When(cond, action,
      direction=...)`. Actions: `kl.ScaleCoupling(factor)` (relative to the starting
      strength: 0 = off, 1 = on again), `kl.RemoveEdges(receivers, senders)`,
      `kl.Kick(delta)`, `kl.SetParameter(where, value)`, `kl.Stop()`.
    - `saveat`: a `kl.SaveAt`: `every=k` (default 1; the grid `t0 + k j dt` of the
      event-free run, which segments do not shift), `ts=...`, `final=True`, with an
      optional `fn`. At an event time on the grid the state *before* the action is
      saved.

    **Other arguments:**

    - `root_tol`: absolute tolerance of the crossing time of `When` events (default
      1e-10 in float64, 1e-5 in float32, whose time resolution near t = 10 is ~1e-6).
      The located time is the root of the solver's interpolant (third-order Hermite for
      RK4, the solver's own dense output otherwise), so its error is the larger of
      `root_tol` and the interpolation error, O(dt^4) for RK4.

    **Returns:** a `kl.Trajectory` with `events`, a `kl.EventLog`: the time each event
    fired (NaN if never), whether it fired, and `t_end`, the time the run ended.
    `traj.to_dataset()` stores them as variables `event_time`, `event_fired` on an
    `event` coordinate (the labels) and `t_end`. Called eagerly, the saved times are cut
    at `t_end`; under `jax.jit`/`vmap` the shape is static, and saves after a `kl.Stop`
    are NaN.

    **Where diffrax events do not reach** (and what is done instead): diffrax's
    `Event` only terminates a solve, so every state or model change restarts the solve
    (the segment loop above). Models with delays are refused: their history lives in the
    fixed-step `DelaySolver`'s state, which a restart would reset to the pre-history.
    Noisy models take `brownian="tree"` only (one `VirtualBrownianTree` on `[t0, t1]` for
    the key, read by every segment, so a run with events follows the same Brownian
    path as `kl.simulate` with the same key); `When` crossings of SDE paths are located
    on the Euler step's linear interpolant. Gradients flow through the segments, except
    through the located event times themselves (treat them as constants).
    """
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"`model` must be a kuralab model (e.g. kl.Kuramoto); got {type(model).__name__}"
        )
    if model.sender_delays is not None:
        raise ValueError(
            "simulate_events does not support models with delays: the delay history "
            "lives in the fixed-step delay solver's state, which restarting a segment "
            "after an event would reset; use kl.simulate with schedules instead"
        )
    t0, t1, dt, _ = opt.check_times(t0, t1, dt, 0.0)
    y0 = opt.check_state(model, y0)
    noisy = model.diffusion(t0, model.project(y0)) is not None
    model.validate(t0, t1)
    solver = opt.default_solver(solver, noisy)
    solver, _ = opt.check_noise(noisy, key, "tree", solver, None)
    base = resolve_solver(solver, stochastic=noisy)
    steps = opt.plan_steps(
        t0, t1, dt, 0.0, base, saveat, stepsize_controller, max_steps,
        delayed=False, noisy=noisy, brownian="tree",
    )
    events, labels = check_events(events, model, model.project(y0), t0, t1)
    grid = _grid(steps, t0, t1)
    opt.check_save_size(steps, y0, turns=jax.eval_shape(model.pack, y0)[1])
    if root_tol is None:
        root_tol = 1e-10 if y0.dtype == jnp.float64 else 1e-5
    fixed = isinstance(steps.controller, dfx.ConstantStepSize)
    config = dict(
        solver=Retract(base),
        controller=steps.controller,
        max_steps=steps.max_steps + 2 if fixed else steps.max_steps,
        sde=opt.sde_config(noisy, "tree", base, t0, t1, steps.n),
        t0=t0,
        t1=t1,
        dt0=steps.dt0,
        save_fn=steps.saveat.fn,
        root_tol=float(root_tol),
    )
    out = _run(model, y0, grid, events, key if noisy else None, **config)
    log = EventLog(
        names=labels,
        kinds=tuple("at" if isinstance(e, At) else "when" for e in events),
        times=out.pop("times"),
        fired=out.pop("fired"),
        t_end=out.pop("t_end"),
    )
    saved = out.pop("saved")
    if is_concrete(saved) and np.ndim(saved) == 1:
        keep = np.asarray(saved)
        out = dict(out)
        for name in ("ts", "ys", "turns"):
            out[name] = jax.tree_util.tree_map(lambda a: a[keep], out[name])
    traj = Trajectory(
        **out, model=model, solver=solver_name(base), dt=steps.dt0, t0=t0, t1=t1,
        events=log,
    )
    return raise_on_failure(traj) if throw else traj


def _grid(steps, t0: float, t1: float):
    saveat = steps.saveat
    if saveat.ts is not None:
        return jnp.asarray(saveat.ts)
    if saveat.final:
        return jnp.asarray([t1])
    n, k = steps.n, saveat.every or 1
    j = np.arange(0, n + 1, k)
    if j[-1] != n:
        j = np.append(j, n)
    return jnp.asarray(t0 + (t1 - t0) * j / n)


def _floats_to_arrays(tree):
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x) if isinstance(x, float) else x, tree
    )


def _select(pred, new, old):
    """`new` where the traced boolean `pred` holds, else `old`, leaf by leaf."""
    def pick(a, b):
        if eqx.is_array(a) or eqx.is_array(b):
            return jnp.where(pred, a, b)
        return b
    return jax.tree_util.tree_map(pick, new, old)


def _summed(fn):
    def g(y, args):
        out, aux = fn(y, args)
        return sum(jax.tree_util.tree_leaves(out)), aux
    return g


class _BracketState(eqx.Module):
    lower: Array
    upper: Array
    flip: Array  # f(lower) > f(upper): f decreases across the bracket


class _Bisection(optx.AbstractRootFinder):
    """Bisection on `[lower, upper]` for diffrax's event root find, stopping when the
    bracket is shorter than `atol + rtol |t|` (or stops shrinking in floating point).

    Not `optimistix.Bisection`, for three reasons: diffrax hands the root finder one
    value per event condition (all but the triggered one zeroed), and Bisection takes
    only scalar functions (here: their sum); Bisection raises when `f(lower)` and
    `f(upper)` are both non-negative, which diffrax produces for batch members with no
    event (`f = t_next - t`, zero at `upper`) and for a condition exactly 0 at the
    previous step; and Bisection also demands `|f| < atol`, which a rough interpolant
    (unresolved fast oscillators) may never meet. Newton's method is no alternative
    there either: it does not converge on such interpolants."""

    rtol: float
    atol: float
    norm: Callable = eqx.field(static=True, default=jnp.abs)

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        fn = _summed(fn)
        lower = jnp.asarray(options["lower"], y.dtype)
        upper = jnp.asarray(options["upper"], y.dtype)
        f_lo, _ = fn(lower, args)
        f_up, _ = fn(upper, args)
        return _BracketState(lower, upper, f_lo > f_up)

    def step(self, fn, y, args, options, state, tags):
        f, aux = _summed(fn)(y, args)
        below = state.flip ^ (f < 0)  # the root lies above y
        lower = jnp.where(below, y, state.lower)
        upper = jnp.where(below, state.upper, y)
        return lower + 0.5 * (upper - lower), _BracketState(lower, upper, state.flip), aux

    def terminate(self, fn, y, args, options, state, tags):
        width = state.upper - state.lower
        mid = state.lower + 0.5 * width
        stuck = (mid == state.lower) | (mid == state.upper)
        return (width <= self.atol + self.rtol * jnp.abs(y)) | stuck, optx.RESULTS.successful

    def postprocess(self, fn, y, aux, args, options, state, tags, result):
        return y, aux, {}


def _when_fn(event, i, active):
    hold = -1.0 if event.direction is False else 1.0  # the side it cannot fire from

    def fn(t, y, args, **kwargs):  # diffrax passes t=, y=, args= by keyword
        y = args[0].retract(y)[0]
        c = jnp.asarray(event.cond(t, y))
        armed = active[i] if event.after is None else active[i] & (t >= event.after)
        return jnp.where(armed, c, jnp.full_like(c, hold))
    return fn


@eqx.filter_jit
def _run(model, y0, grid, events, key, *, solver, controller, max_steps, sde, t0, t1,
         dt0, save_fn, root_tol) -> dict:
    model = _floats_to_arrays(model)
    model0 = model
    dtype = y0.dtype
    n_ev = len(events)
    is_at = np.array([isinstance(e, At) for e in events], bool)
    whens = [i for i, e in enumerate(events) if isinstance(e, When)]
    at_t = jnp.stack(
        [e.t.astype(dtype) if isinstance(e, At) else jnp.asarray(jnp.inf, dtype)
         for e in events]
    ) if n_ev else jnp.zeros((0,), dtype)
    stops = np.array([any(a.stops for a in e.actions) for e in events], bool)
    grid = grid.astype(dtype)
    Y0 = model.pack(y0)
    terms = _terms(model, y0, Y0[1], t0, t1, key, sde)
    save = make_save_fn(save_fn)
    # Bisection, not Newton: the sign change at the step ends brackets a root, and
    # bisection keeps it bracketed even where the interpolant of R is not smooth
    # within a step (see _Bisection).
    root_finder = _Bisection(rtol=0.0, atol=root_tol)

    def segment(carry, k):
        model, Y, t, fired, times, stopped, acc, saved, result, nsteps = carry
        pending_at = jnp.asarray(is_at) & ~fired
        t_next = jnp.min(jnp.where(pending_at, at_t, t1), initial=t1).astype(dtype)
        t_end = jnp.where(stopped, t, jnp.maximum(t_next, t))
        active = jnp.asarray(~is_at) & ~fired & ~stopped
        event = None
        if whens:
            event = dfx.Event(
                tuple(_when_fn(events[i], i, active) for i in whens),
                root_finder,
                tuple(events[i].direction for i in whens),
            )
        sol = dfx.diffeqsolve(
            terms, solver, t, t_end, dt0, Y, args=(model, None),
            saveat=dfx.SaveAt(subs=[
                dfx.SubSaveAt(ts=jnp.clip(grid, t, t_end), fn=save),
                dfx.SubSaveAt(t1=True, fn=final_fn),
            ]),
            stepsize_controller=controller, max_steps=max_steps, event=event,
            throw=False,
        )
        ts_seg, t_fin = sol.ts
        ys_seg, Y_fin = sol.ys
        t_stop = t_fin[0].astype(dtype)
        Y_new = jax.tree_util.tree_map(lambda a: a[0], Y_fin)
        when_hit = jnp.zeros((n_ev,), bool)
        if whens:
            mask = jnp.stack([jnp.asarray(m) for m in sol.event_mask])
            when_hit = when_hit.at[jnp.asarray(whens)].set(mask) & active
        any_when = jnp.any(when_hit)
        t_now = jnp.where(any_when, t_stop, t_end)
        at_hit = pending_at & (at_t <= t_end) & ~any_when & ~stopped
        hit = when_hit | at_hit
        lower = jnp.where(k == 0, grid >= t, grid > t)
        valid = lower & (grid <= t_now) & ~stopped
        acc = jax.tree_util.tree_map(
            lambda new, old: jnp.where(
                valid.reshape(valid.shape + (1,) * (new.ndim - 1)), new, old
            ),
            ys_seg, acc,
        )
        saved = saved | valid
        ok = (sol.result == dfx.RESULTS.successful) | (
            sol.result == dfx.RESULTS.event_occurred
        )
        result = RESULTS.where(
            (result == RESULTS.successful) & ~ok, RESULTS.promote(sol.result), result
        )
        # Actions, in event order, each applied where its event fired.
        y, aux = Y_new
        for i, e in enumerate(events):
            for a in e.actions:
                m_new, y_new = a.apply(model, y, model0)
                model = _select(hit[i], m_new, model)
                y = jnp.where(hit[i], y_new, y)
        Y_new = model.retract((y, aux))
        stopped = stopped | jnp.any(hit & jnp.asarray(stops))
        times = jnp.where(hit, t_now, times)
        fired = fired | hit
        nsteps = nsteps + sol.stats["num_steps"]
        return (model, Y_new, t_now, fired, times, stopped, acc, saved, result,
                nsteps), None

    one = jax.eval_shape(save, grid[0], Y0, (model, None))
    acc0 = jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct(grid.shape + s.shape, s.dtype), one
    )
    acc0 = jax.tree_util.tree_map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), acc0)
    carry = (
        model, Y0, jnp.asarray(t0, dtype), jnp.zeros((n_ev,), bool),
        jnp.full((n_ev,), jnp.nan, dtype), jnp.asarray(False), acc0,
        jnp.zeros(grid.shape, bool), RESULTS.successful, jnp.asarray(0),
    )
    carry, _ = jax.lax.scan(segment, carry, jnp.arange(n_ev + 1))
    model_f, Y_f, t_f, fired, times, _, ys, saved, result, nsteps = carry
    finite = jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(Y_f)])
    )
    result = RESULTS.where(
        (result == RESULTS.successful) & ~finite, RESULTS.nonfinite_state, result
    )
    ys, turns = (ys, None) if save_fn is not None else ys
    return dict(
        ts=grid, ys=ys, turns=turns, final=Y_f[0], final_turns=Y_f[1], result=result,
        stats=dict(num_steps=nsteps), times=times, fired=fired, t_end=t_f,
        saved=saved,
    )
