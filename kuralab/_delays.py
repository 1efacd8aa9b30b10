"""Transmission delays: `kl.Delays`, the history buffer, and the delay-aware solver.

Released diffrax has no delay-differential-equation support, so kuralab carries the past
in the solver state (DESIGN.md §1):

- `_History` is a ring buffer of past phases *and their time derivatives* on the step
  grid `t_m = t0 + m dt`. A delayed phase `theta_j(t - tau_j)` is read by cubic Hermite
  interpolation between the two neighbouring grid points, which is O(dt^4) accurate, so
  RK4 keeps its fourth order for delays that are not multiples of `dt`.
- `DelaySolver` is a diffrax solver (fixed step: Euler, Heun or RK4 tableaus, plus
  Euler--Maruyama / stochastic Heun when the model is also noisy). Each step evaluates the
  first stage, pushes `(theta_k, dtheta_k)` into the buffer, then takes the remaining
  stages, which may read the history up to `t_k`. Delays `0 < tau < dt` would need the
  unknown future of the current step and are rejected; `tau = 0` (no delay for that
  sender) is allowed and uses the stage's own value.

Phases are stored wrapped; the interpolation unwraps the neighbouring pair, which is exact
while a phase moves by less than pi per step (any sensible `dt`).

Per-edge delays (`kl.EdgeDelays`, `kuralab/_edge_delays.py`) use the same buffer with one
read per edge: `_History.sources` names each read's oscillator (the edge's sender), and
the reads gather the buffer at flat indices `slot * osc + sender`, so the buffer stays
`(slots, osc)` and the per-edge state O(edges).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._misc import check_finite, is_concrete, nearest

CONVENTIONS = ("physical", "kuranet")


class Delays(eqx.Module):
    r"""Per-sender transmission delays: oscillator i receives $\theta_j(t - \tau_j)$.

    **Arguments:**

    - `tau`: delays, a scalar (the same for every sender) or shape `(osc,)`. In time units
      (`convention="physical"`, default), or in integer solver steps
      (`convention="kuranet"`).
    - `history`: the phases before `t0`: `"constant"` (default: equal to `y0`) or a
      function `history(t) -> (osc,)` for `t <= t0` (it should equal `y0` at `t0`).
    - `convention`: `"physical"` (delays in time units, any solver step `dt <= min
      positive tau`, interpolated history) or `"kuranet"` (the KuraNet reference code:
      integer delays in Euler steps clipped to `[0, clip]`; before `t0` the network runs
      `max(tau) + 1` Euler steps *without* delays from `y0`, and that warm-up fills the
      history; needs `solver="euler"`).
    - `clip`: the KuraNet clip on step delays (default 40, "for memory" in the reference).
    - `max_delay`: an upper bound on `tau` in time units; required only when `tau` is
      traced (e.g. `vmap` over delays), since it sets the static buffer length.
    """

    tau: Array
    history: str | Callable = eqx.field(static=True)
    convention: str = eqx.field(static=True)
    clip: int = eqx.field(static=True)
    max_delay: float | None = eqx.field(static=True)

    def __init__(
        self,
        tau: ArrayLike,
        history: str | Callable = "constant",
        *,
        convention: str = "physical",
        clip: int = 40,
        max_delay: float | None = None,
    ):
        if convention not in CONVENTIONS:
            raise ValueError(
                f"`convention` must be one of {CONVENTIONS}; got {convention!r}"
                + nearest(str(convention), CONVENTIONS)
            )
        tau = jnp.asarray(tau)
        if convention == "physical" and not jnp.issubdtype(tau.dtype, jnp.floating):
            tau = tau.astype(jnp.result_type(float))
        if tau.ndim > 1:
            raise ValueError(
                f"`tau` must be a scalar or have shape (osc,); got shape {tau.shape}"
            )
        check_finite("tau", tau)
        if is_concrete(tau):
            t = np.asarray(tau)
            if np.any(t < 0):
                raise ValueError(f"`tau` must be >= 0; got min {t.min()}")
            if convention == "kuranet" and not np.all(t == np.round(t)):
                raise ValueError(
                    "with convention='kuranet', `tau` counts Euler steps and must be "
                    "whole numbers"
                )
        if not (history == "constant" or callable(history)):
            raise ValueError(
                f"`history` must be 'constant' or a function of t; got {history!r}"
            )
        if not isinstance(clip, int) or clip < 0:
            raise ValueError(f"`clip` must be a non-negative int; got {clip!r}")
        if max_delay is not None and not (
            isinstance(max_delay, int | float) and max_delay >= 0
        ):
            raise ValueError(f"`max_delay` must be a number >= 0; got {max_delay!r}")
        self.tau = tau
        self.history = history
        self.convention = convention
        self.clip = clip
        self.max_delay = max_delay

    def per_sender(self, n: int, dt: float | None = None) -> Array:
        """Delays in time units, shape `(n,)` (KuraNet steps are converted with `dt`)."""
        tau = jnp.broadcast_to(self.tau, (n,))
        if self.convention == "kuranet":
            if dt is None:
                raise ValueError("KuraNet step delays need the solver step `dt`")
            return jnp.clip(tau, 0, self.clip).astype(jnp.result_type(float)) * dt
        return tau

    def per_read(self, n: int, dt: float | None = None) -> Array:
        """The delays of the history reads: one per sender, `per_sender(n, dt)`."""
        return self.per_sender(n, dt)

    def bound(self, dt: float) -> float:
        """A static upper bound on the delays in time units."""
        if self.convention == "kuranet":
            if is_concrete(self.tau):
                return float(np.clip(np.max(np.asarray(self.tau)), 0, self.clip)) * dt
            return self.clip * dt
        if is_concrete(self.tau):
            return float(np.max(np.asarray(self.tau))) if self.tau.size else 0.0
        if self.max_delay is None:
            raise ValueError(
                "`tau` is traced (vmap/jit over delays): give Delays(..., max_delay=...) "
                "so the history buffer has a static length"
            )
        return float(self.max_delay)


def _hermite(y0, d0, y1, d1, s, h):
    """Cubic Hermite interpolant on [0, 1] at s, for a step of length h."""
    s2 = s * s
    s3 = s2 * s
    h00 = 2 * s3 - 3 * s2 + 1
    h10 = s3 - 2 * s2 + s
    h01 = -2 * s3 + 3 * s2
    h11 = s3 - s2
    return h00 * y0 + h10 * h * d0 + h01 * y1 + h11 * h * d1


class _History(eqx.Module):
    """Ring buffer of `(theta, dtheta/dt)` at grid points `t0 + m dt`.

    `newest` is the grid index `m` of the newest entry; slot of index m is `m mod L`.
    """

    values: Array  # (L, osc, ...)
    derivs: Array  # (L, osc, ...)
    newest: Array  # int32 scalar
    t_grid0: Array  # the time of grid index 0
    dt: Array
    tau_steps: Array  # (reads,) delays in units of dt
    zero_delay: Array  # (reads,) bool: tau == 0 (read the current value)
    left_deriv0: Array  # (reads,) the history's slope at t0 (the solution may kink there)
    # (reads,) int32: the oscillator each read takes its past from (one per edge for
    # per-edge delays); None: one read per oscillator, reads = osc (per-sender delays).
    sources: Array | None = None

    @property
    def length(self) -> int:
        return self.values.shape[0]

    def push(self, theta, dtheta) -> _History:
        m = self.newest + 1
        slot = jnp.mod(m, self.length)
        return eqx.tree_at(
            lambda h: (h.values, h.derivs, h.newest),
            self,
            (self.values.at[slot].set(theta), self.derivs.at[slot].set(dtheta), m),
        )

    def delayed(self, t, y_now, difference=None):
        """Delayed states `y_{src_r}(t - tau_r)` of every read r: shape of `y_now`
        (`(osc, ...)`, per-sender delays) or `(reads, ...)` (per-edge `sources`).

        `difference(y1, y0)` is the model's displacement (wrapped for phases), so the
        interpolant is continuous across a phase's wrap point; default `y1 - y0`.
        Time is measured from the newest grid point to keep float32 indices exact.
        """
        n = self.tau_steps.shape[0]
        t_newest = self.t_grid0 + self.newest.astype(self.dt.dtype) * self.dt
        u = (t - t_newest) / self.dt - self.tau_steps  # grid units relative to newest
        fl = jnp.floor(u)
        frac = u - fl
        m0 = self.newest + fl.astype(jnp.int32)
        L = self.length
        idx = jnp.arange(n) if self.sources is None else self.sources
        s0 = jnp.mod(m0, L)
        s1 = jnp.mod(m0 + 1, L)
        if self.sources is None or y_now.ndim > 1:
            y0, y1 = self.values[s0, idx], self.values[s1, idx]
            d0, d1 = self.derivs[s0, idx], self.derivs[s1, idx]
        else:  # per-edge reads of scalar states: gathers at flat indices
            n_osc = y_now.shape[0]
            f0, f1 = s0 * n_osc + idx, s1 * n_osc + idx
            vals, ders = self.values.reshape(-1), self.derivs.reshape(-1)
            y0, y1, d0, d1 = vals[f0], vals[f1], ders[f0], ders[f1]
        # On [t0 - dt, t0] the node at t0 belongs to the history: use its left slope.
        at_t0 = m0 == -1
        per_osc = (n,) + (1,) * (y_now.ndim - 1)  # broadcast (reads,) over trailing axes
        now = y_now if self.sources is None else y_now[idx]
        d1 = jnp.where(at_t0.reshape(per_osc), self.left_deriv0, d1)
        y1 = y0 + (y1 - y0 if difference is None else difference(y1, y0))
        past = _hermite(y0, d0, y1, d1, frac.reshape(per_osc), self.dt)
        return jnp.where(self.zero_delay.reshape(per_osc), now, past)


def init_history(
    theta0, drift0, tau: Array, dt, t0, n_slots: int, history, sources=None
) -> _History:
    """A history buffer holding the pre-history for grid indices `-(L-1) .. -1`.

    `history` is `"constant"` (equal to `theta0`, slope 0) or a function of time;
    `tau` has one delay per read, read from oscillators `sources` (default: read r is
    oscillator r)."""
    shape = theta0.shape  # (osc, ...)
    dtype = theta0.dtype
    dt = jnp.asarray(dt, dtype)
    t0 = jnp.asarray(t0, dtype)
    if history == "constant":
        values = jnp.broadcast_to(theta0, (n_slots, *shape))
        derivs = jnp.zeros((n_slots, *shape), dtype)
        left = jnp.zeros(shape, dtype)
    else:
        ms = -jnp.arange(1, n_slots, dtype=dtype)  # -1, -2, ..., -(L-1)
        ts = t0 + ms * dt

        def value_and_deriv(t):
            return jax.jvp(lambda s: jnp.asarray(history(s), dtype), (t,), (jnp.ones_like(t),))

        vals, ders = jax.vmap(value_and_deriv)(ts)
        if vals.shape != (n_slots - 1, *shape):
            raise ValueError(
                f"Delays `history(t)` must return the state's shape {shape}; got "
                f"{vals.shape[1:]}"
            )
        # slot of index m is m mod L; fill slot 0 (index 0 / L) with theta0 as well
        slots = jnp.mod(jnp.arange(-1, -n_slots, -1), n_slots)
        values = jnp.zeros((n_slots, *shape), dtype).at[slots].set(vals).at[0].set(theta0)
        derivs = jnp.zeros((n_slots, *shape), dtype).at[slots].set(ders).at[0].set(drift0)
        left = value_and_deriv(t0)[1]
    values = jnp.asarray(values)
    if sources is not None:  # one slope per read
        sources = jnp.asarray(sources, jnp.int32)
        left = left[sources]
    return _History(
        values=values,
        derivs=derivs,
        newest=jnp.asarray(-1, jnp.int32),
        t_grid0=t0,
        dt=dt,
        tau_steps=tau / dt,
        zero_delay=tau == 0,
        left_deriv0=left,
        sources=sources,
    )


def tabulated_history(past_values, past_derivs, tau, dt, t0, left_deriv0) -> _History:
    """A buffer pre-filled with states at grid indices `-P .. -1` (oldest first)."""
    p, shape = past_values.shape[0], past_values.shape[1:]
    n_slots = p + 1
    slots = jnp.mod(jnp.arange(-p, 0), n_slots)
    dtype = past_values.dtype
    values = jnp.zeros((n_slots, *shape), dtype).at[slots].set(past_values)
    derivs = jnp.zeros((n_slots, *shape), dtype).at[slots].set(past_derivs)
    dt = jnp.asarray(dt, dtype)
    return _History(
        values=values,
        derivs=derivs,
        newest=jnp.asarray(-1, jnp.int32),
        t_grid0=jnp.asarray(t0, dtype),
        dt=dt,
        tau_steps=tau / dt,
        zero_delay=tau == 0,
        left_deriv0=left_deriv0,
    )


def carried_history(final: _History, left_deriv: Array) -> _History:
    """The buffer at the end of a run, renumbered to start the next segment.

    `final` is the solver state after `n` steps (newest grid index `n - 1`); the result
    has newest index `-1` (the ring rolled by `n`, so slot `m mod L` again holds grid
    index `m`) and time origin the run's end `t_n`, and `left_deriv` (shape of
    `final.left_deriv0`, one slope per read) is the history's slope at `t_n`: the
    derivative the run would have pushed at `t_n` next. A segment started from it
    (`restarted_history`) continues the run exactly as long as the first segment was
    at least the longest delay (an older kink's left slope is not kept)."""
    n = final.newest + 1
    idx = jnp.mod(jnp.arange(final.length) + n, final.length)
    return eqx.tree_at(
        lambda h: (h.values, h.derivs, h.newest, h.t_grid0, h.left_deriv0),
        final,
        (
            final.values[idx],
            final.derivs[idx],
            jnp.asarray(-1, jnp.int32),
            final.t_grid0 + n.astype(final.dt.dtype) * final.dt,
            jnp.asarray(left_deriv, final.left_deriv0.dtype),
        ),
    )


def restarted_history(
    carried: _History, tau: Array, dt: float, t0: float, sources: Array | None = None
) -> _History:
    """A carried buffer (`carried_history`) as the pre-history of a run from `t0` with
    step `dt` and delays `tau` (one per read, those of the new run's model: the buffer
    keeps only the past states). The step must be the carried run's step (checked
    by `kuralab._integrate.simulate.simulate_carrying`)."""
    if carried.newest.shape != ():
        raise ValueError("`history` must be one carried buffer (newest index a scalar)")
    dtype = carried.values.dtype
    dt = jnp.asarray(dt, dtype)
    if sources is not None:
        sources = jnp.asarray(sources, jnp.int32)
    return eqx.tree_at(
        lambda h: (h.t_grid0, h.dt, h.tau_steps, h.zero_delay, h.sources),
        carried,
        (jnp.asarray(t0, dtype), dt, tau / dt, tau == 0, sources),
        is_leaf=lambda x: x is None,
    )


# Explicit tableaus (a lower-triangular, b, c) of the fixed-step methods.
_TABLEAUS = {
    "euler": ((), (1.0,), (0.0,)),
    "heun": (((1.0,),), (0.5, 0.5), (0.0, 1.0)),
    "rk4": (
        ((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
        (1 / 6, 1 / 3, 1 / 3, 1 / 6),
        (0.0, 0.5, 0.5, 1.0),
    ),
}
_ORDERS = {"euler": 1, "heun": 2, "rk4": 4}
DELAY_SOLVERS = tuple(_TABLEAUS)
SDDE_SOLVERS = ("euler", "heun")


def _axpy(y, a, x):
    return jax.tree_util.tree_map(lambda yi, xi: yi + a * xi, y, x)


class DelaySolver(dfx.AbstractItoSolver):
    """Fixed-step explicit RK (Euler, Heun, RK4) for delayed phase models.

    The solver state is the history buffer; diffrax `args` is `(model, None)` and the
    drift is evaluated with `(model, history)`. With a noise
    term (`MultiTerm(ODETerm, ControlTerm)`), Euler is Euler--Maruyama and Heun the
    stochastic Heun method (additive noise, so both are consistent in Ito and
    Stratonovich senses).
    """

    method: str = eqx.field(static=True)
    history0: _History

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = dfx.LocalLinearInterpolation

    def order(self, terms):
        return _ORDERS[self.method]

    def strong_order(self, terms):
        return 1.0  # additive noise

    def init(self, terms, t0, t1, y0, args):
        return self.history0

    def _split(self, terms):
        if isinstance(terms, dfx.MultiTerm):
            drift, diffusion = terms.terms
            return drift, diffusion
        return terms, None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        drift_term, noise_term = self._split(terms)
        history = solver_state
        h = t1 - t0
        a, b, c = _TABLEAUS[self.method]

        model = args[0]

        def f(t, y, hist):
            return drift_term.vf(t, y, (model, hist))

        k1 = f(t0, y0, history)
        history = history.push(y0[0], k1[0])
        ks = [k1]
        for i, row in enumerate(a):
            yi = y0
            for aij, kj in zip(row, ks, strict=False):
                if aij != 0.0:
                    yi = _axpy(yi, h * aij, kj)
            ks.append(f(t0 + c[i + 1] * h, yi, history))
        if noise_term is None:
            y1 = y0
            for bi, ki in zip(b, ks, strict=True):
                y1 = _axpy(y1, h * bi, ki)
        else:
            dw = noise_term.contr(t0, t1)
            noise = noise_term.vf_prod(t0, y0, args, dw)
            if self.method == "euler":
                y1 = jax.tree_util.tree_map(lambda y, k, g: y + h * k + g, y0, k1, noise)
            else:  # stochastic Heun with additive noise
                y_pred = jax.tree_util.tree_map(lambda y, k, g: y + h * k + g, y0, k1, noise)
                k2 = f(t1, y_pred, history)
                y1 = jax.tree_util.tree_map(
                    lambda y, ka, kb, g: y + 0.5 * h * (ka + kb) + g, y0, k1, k2, noise
                )
        dense_info = dict(y0=y0, y1=y1)
        return y1, None, dense_info, history, dfx.RESULTS.successful

    def func(self, terms, t0, y0, args):
        drift_term, _ = self._split(terms)
        return drift_term.vf(t0, y0, (args[0], None))
