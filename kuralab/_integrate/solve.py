"""The compiled solve behind `simulate`: one `eqx.filter_jit` compilation per (model
structure, shapes, times, step count, save policy, solver); the key and every model
parameter are traced.

With a burn-in the integration is two diffrax solves inside the same compiled function:
`[t0, t0 + burn_in]` saving nothing but its end state, solver state and controller state,
which pass through `jax.lax.stop_gradient` (truncated backpropagation: gradients flow
only through the window), then the window `[t0 + burn_in, t1]` continuing from them
(the delay history lives in the solver state, so it carries over; the Brownian path is
the same object over `[t0, t1]`).
"""

from __future__ import annotations

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp

from .._brownian import increment_path
from .._delays import (
    DelaySolver,
    carried_history,
    init_history,
    restarted_history,
    tabulated_history,
)
from .manifold import (
    NoiseTerm,
    Retract,
    StatePath,
    diffusion_vf,
    drift_vf,
    final_fn,
    ito_drift_vf,
    make_save_fn,
)
from .trajectory import RESULTS

__all__ = ["solve"]


def _terms(model, y0, aux, t0, t1, key, sde):
    if sde is None:
        return dfx.ODETerm(drift_vf)
    kind, levy, tol, ito = sde
    terms = dfx.ODETerm(ito_drift_vf if ito else drift_vf)
    shape = jax.ShapeDtypeStruct(model.noise_shape, y0.dtype)
    levy_kw = {} if levy is None else dict(levy_area=levy)
    if kind == "tree":
        bm = dfx.VirtualBrownianTree(t0, t1, tol=tol, shape=shape, key=key, **levy_kw)
    else:
        bm = increment_path(shape, key, levy)
    aux_shape = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), aux
    )
    return dfx.MultiTerm(terms, NoiseTerm(diffusion_vf, StatePath(bm, aux_shape)))


def _warm_up(model, y0, t0, dt0, steps: int, active):
    """KuraNet's pre-history: Euler steps without delays or noise ending at `t0`.

    `steps` (static) slots are scanned; only the last `active` (traced, <= `steps`:
    `max(tau) + 1` of the reference, which is not static when the delays are traced)
    move the state, the earlier ones keep `y0`. Slots older than `active` steps are
    never read, since every delay is shorter, so this equals a run of `active` steps.
    Returns the state at `t0` and `(values, slopes, slope at t0)` of the run."""
    start = steps - active

    def body(y, k):
        t = t0 - (steps - k) * dt0
        d = model.drift(t, y, None)
        moved = model.project(y + dt0 * d)
        return jnp.where(k >= start, moved, y), (y, d)

    y_t0, (values, slopes) = jax.lax.scan(
        body, model.project(y0), jnp.arange(steps)
    )
    return y_t0, (values, slopes, model.drift(t0, y_t0, None))


def start_history(model, y0, t0, dt0, delay, history=None):
    """The delay buffer a run from `(t0, y0)` starts with, and its start state (the
    KuraNet warm-up moves it): from the model's `Delays.history`, or `history`, a buffer
    carried from the end of an earlier run (`_delays.carried_history`; then `y0` is
    that run's final state and no warm-up runs)."""
    method, n_slots, kind = delay
    tau = model.sender_delays.per_read(y0.shape[0], dt0).astype(y0.dtype)
    if history is not None:  # checked by simulate_carrying
        return y0, restarted_history(history, tau, dt0, t0, model.delay_sources())
    if kind == "kuranet":
        # the reference's T_neg = max(tau) + 1 steps (tau in steps; traced or not)
        active = jnp.round(jnp.max(tau, initial=0.0) / dt0).astype(int) + 1
        y0, (values, slopes, left) = _warm_up(model, y0, t0, dt0, n_slots - 1, active)
        return y0, tabulated_history(values, slopes, tau, dt0, t0, left)
    y_proj = model.project(y0)
    hist0 = init_history(
        y_proj, model.drift(t0, y_proj, None), tau, dt0, t0, n_slots, kind,
        model.delay_sources(),
    )
    return y0, hist0


def _solver(model, base, y0, t0, dt0, delay, history=None):
    if delay is None:
        return Retract(base), y0
    y0, hist0 = start_history(model, y0, t0, dt0, delay, history)
    return Retract(DelaySolver(delay[0], hist0)), y0


def _final_history(model, t1, Yf, hist):
    """The buffer after the run, renumbered to start the next segment at `t1`, with
    the history's slope at `t1` (the drift the next step would have pushed)."""
    left = drift_vf(t1, Yf, (model, hist))[0]
    if hist.sources is not None:
        left = left[hist.sources]
    return carried_history(hist, left)


def _user_saveat(saveat, n_window: int, save_fn, from_start: bool):
    if saveat.ts is not None:
        return dfx.SubSaveAt(ts=saveat.ts, fn=save_fn)
    if saveat.final:
        return dfx.SubSaveAt(t1=True, fn=save_fn)
    k = saveat.every or 1
    return dfx.SubSaveAt(t0=from_start, steps=k, t1=bool(n_window % k), fn=save_fn)


@eqx.filter_jit
def solve(
    model, y0, saveat, t0, t1, dt0, key, *, steps, solver, adjoint, meter, sde, delay,
    history=None, keep_history: bool = False,
) -> dict:
    """Integrate; return the fields of a `Trajectory` (less its static metadata).

    Delayed models only: `history` (a carried buffer, `_delays.carried_history`)
    replaces the model's pre-history; `keep_history=True` adds the field `history`, the
    final buffer carried to start a next segment."""
    solver, y0 = _solver(model, solver, y0, t0, dt0, delay, history)
    Y0 = model.pack(y0)
    terms = _terms(model, y0, Y0[1], t0, t1, key, sde)
    args = (model, None)
    common = dict(
        args=args,
        stepsize_controller=steps.controller,
        adjoint=adjoint,
        throw=False,
        progress_meter=meter,
    )
    resume = {}
    t_start, results = t0, []
    if steps.n_burn:
        t_start = t0 + steps.n_burn * dt0
        warm = dfx.diffeqsolve(
            terms, solver, t0, t_start, dt0, Y0, max_steps=steps.n_burn,
            saveat=dfx.SaveAt(t1=True, solver_state=True, controller_state=True,
                              made_jump=True),
            **common,
        )
        Y0, solver_state, controller_state = jax.lax.stop_gradient(
            (jax.tree_util.tree_map(lambda a: a[0], warm.ys), warm.solver_state,
             warm.controller_state)
        )
        resume = dict(solver_state=solver_state, controller_state=controller_state,
                      made_jump=warm.made_jump)
        results.append(warm.result)
    user = _user_saveat(
        saveat, steps.n - steps.n_burn, make_save_fn(saveat.fn), not steps.n_burn
    )
    sol = dfx.diffeqsolve(
        terms, solver, t_start, t1, dt0, Y0,
        saveat=dfx.SaveAt(subs=[user, dfx.SubSaveAt(t1=True, fn=final_fn)],
                          solver_state=keep_history),
        max_steps=steps.max_steps - steps.n_burn,
        **common, **resume,
    )
    results.append(sol.result)
    ts, _ = sol.ts
    ys, Yf = sol.ys
    Yf_all = jax.tree_util.tree_map(lambda a: a[0], Yf)
    final_state, final_aux = Yf_all
    finite = jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(Yf)])
    )
    result = RESULTS.successful
    for r in results:  # the first failure wins
        result = RESULTS.where(result == RESULTS.successful, RESULTS.promote(r), result)
    result = RESULTS.where(
        (result == RESULTS.successful) & ~finite, RESULTS.nonfinite_state, result
    )
    ys, turns = (ys, None) if saveat.fn is not None else ys
    extra = {}
    if keep_history:
        extra["history"] = _final_history(model, t1, Yf_all, sol.solver_state)
    return dict(**extra,
        ts=ts,
        ys=ys,
        turns=turns,
        final=final_state,
        final_turns=final_aux,
        result=result,
        stats=dict(sol.stats),
    )
