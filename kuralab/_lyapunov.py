r"""Lyapunov spectra of any kuralab model: tangent dynamics by `jax.jvp`, Benettin QR.

**Method.** The state advances by one step of the named diffrax solver (the same step,
terms and Brownian path as `kl.simulate`), $y_{n+1} = \Phi(y_n)$. The $k$ tangent
vectors $\delta y$ advance by the derivative of that step, $\delta y_{n+1} =
P(y_{n+1})\, D\Phi(y_n)\, \delta y_n$, computed by `jax.linearize` of the step (so by
`jvp` of `model.drift` through the solver's stages: the solver applied to the variational
equation $\delta\dot y = J(t)\,\delta y$, no hand-written Jacobian). $P(y)$ is the
derivative of `model.project` at a point of the manifold: the identity for phases on the
torus (tangent space $\mathbb{R}^N$) and for $(h, v)$ sheets, the tangent-plane projector
$I - x x^\top$ for unit vectors. Every `renormalise_every` steps the tangent vectors are
re-orthonormalised, $[\delta y_1 \dots \delta y_k] = Q R$ (Benettin et al. 1980), and
$\lambda_i = \frac{1}{T}\sum \log |R_{ii}|$ over the averaging window $T$.

- The exponents come in the order of the QR columns, which is descending once the
  estimates have converged (they are not sorted).
- **Running estimates** $\lambda_i(t)$ (cumulative sums over the elapsed window time) at
  up to `records` times, to judge convergence; **standard errors** from `blocks`
  consecutive block means of the window: $\mathrm{sd}(\lambda^{(b)})/\sqrt{B}$.
- **Transient**: `[t0, t0 + transient]` is integrated (tangent vectors renormalised, so
  they align with the leading directions) but not counted.
- **Noise** (additive, $dy = f\,dt + g\,dW$): the exponents of the random dynamical system
  along the noise path of `key`; the tangent vectors see the same path (it drops out of
  the linearisation when $g$ does not depend on $y$). The state is the one `kl.simulate`
  returns for the same `key`, `t1`, `dt` and solver.
- **Delays**: the phase space of a delay equation is the infinite-dimensional history
  segment; it is approximated by the delay solver's own state, the current state plus
  its history buffer (values and slopes at the grid points covering the largest delay,
  interpolated by cubic Hermite polynomials). The tangent vectors live on that
  discretised state (`jax.linearize` of the step with respect to the state and the
  buffer, so the history's tangent is carried), the QR runs on the flattened vector
  (Euclidean norm). The exponents are those of this finite-dimensional map and converge
  to the leading exponents of the delay equation as `dt` -> 0; only the leading few are
  meaningful, so `k` defaults to 1 for delayed models. A stable equilibrium's exponents
  are the real parts of the characteristic roots (tested against Lambert-W roots).
- **Units**: exponents in 1 / (model time unit).

`lyapunov_exponents` returns arrays and works under `jax.jit`, `jax.vmap` (over models,
initial states and keys) and differentiation, forward (`jax.jvp`, `jax.jacfwd`) and
reverse (`jax.grad`: d lambda / d parameter); `reverse_mode=False` runs the stages of
a diffrax Runge--Kutta solver (e.g. `"heun"`, `"tsit5"`) in a plain while loop, forward
mode only, about 1.4x faster. `"rk4"` (the default) has no stage loop (`kl.RK4` is one
written-out step), so it is fast and differentiable both ways whatever `reverse_mode`.
`lyapunov_spectrum` wraps it in an `xarray.Dataset`.

??? cite "References"

    ```bibtex
    @article{benettin1980,
      author={Benettin, Giancarlo and Galgani, Luigi and Giorgilli, Antonio and
              Strelcyn, Jean-Marie},
      title={Lyapunov characteristic exponents for smooth dynamical systems and for
             Hamiltonian systems; a method for computing all of them},
      journal={Meccanica}, volume={15}, pages={9--30}, year={1980}}
    ```
"""

from __future__ import annotations

import math
from typing import NamedTuple

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array

from ._custom_types import Key, RealLike
from ._integrate import options as opt
from ._integrate.solve import _solver, _terms
from ._integrate.solvers import resolve_solver, solver_name
from ._misc import is_concrete
from ._models.base import AbstractModel

__all__ = ["LyapunovPlan", "lyapunov_exponents", "lyapunov_spectrum", "tangent_dim"]

EXPONENT = "exponent"
BLOCK = "block"


class LyapunovPlan(NamedTuple):
    """The static plan of one spectrum computation (hashable: the jit cache key)."""

    t0: float
    t1: float
    dt: float
    n_transient: int  # steps
    n_window: int  # steps
    every: int  # steps per renormalisation
    k: int
    blocks: int
    records: int
    sde: tuple | None
    delay: tuple | None = None  # opt.delay_config's (method, slots, history kind)

    @property
    def n_full(self) -> int:
        """Renormalisations over `every` steps in the window."""
        return self.n_window // self.every

    @property
    def t_window(self) -> float:
        return self.t0 + self.n_transient * self.dt

    def record_times(self) -> np.ndarray:
        """Times of the running estimates (end of the last interval in each slot)."""
        i = np.arange(self.n_full)
        slot = (i * self.records) // max(self.n_full, 1)
        last = np.array([i[slot == m].max() for m in range(self.records)])
        return self.t_window + (last + 1) * self.every * self.dt

    def block_durations(self) -> np.ndarray:
        i = np.arange(self.n_full)
        slot = (i * self.blocks) // max(self.n_full, 1)
        return np.bincount(slot, minlength=self.blocks) * self.every * self.dt


def _flat_project(model, shape):
    return lambda v: model.project(v.reshape(shape)).reshape(-1)


@eqx.filter_jit
def _projector(model, y):
    shape = y.shape
    y = model.project(y)
    return jax.jacfwd(_flat_project(model, shape))(y.reshape(-1))


def _concrete(x):
    # a traced leaf (the model under vmap/jit) becomes a concrete array of its shape:
    # `project` maps a state onto the manifold and does not depend on parameters.
    if isinstance(x, jax.core.Tracer):
        return np.ones(x.shape, x.dtype)
    return x


def tangent_dim(model: AbstractModel) -> int:
    """The dimension of the state manifold's tangent space: the rank of the derivative
    of `model.project` at a point of the manifold (N for N phases, N (d - 1) for N unit
    vectors in R^d, the state size on a vector space)."""
    shape = tuple(model.state_shape)
    size = math.prod(shape)
    ref = 0.3 + (np.arange(size, dtype=np.float32) % 7 / 7.0).reshape(shape)
    model = jax.tree_util.tree_map(_concrete, model)
    with jax.ensure_compile_time_eval():
        P = _projector(model, jnp.asarray(ref))
    if not is_concrete(P):
        raise TypeError(
            "cannot find the tangent dimension of this model's state space at trace "
            "time (its `project` depends on traced values); pass `k` explicitly"
        )
    s = np.linalg.svd(np.asarray(P, np.float64), compute_uv=False)
    return int(np.sum(s > 0.5))


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= {low}; got {value!r}")
    if value < low:
        raise ValueError(f"`{name}` must be an integer >= {low}; got {value}")
    return int(value)


def plan(
    model, y0, *, t1, dt, t0, k, transient, renormalise_every, key, solver, blocks,
    records, brownian, reverse_mode=True,
):
    """Validate the arguments (one-line errors); return `(plan, y0, base solver)`."""
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"`model` must be a kuralab model (e.g. kl.Kuramoto); got {type(model).__name__}"
        )
    t0, t1, dt, transient = opt.check_times(t0, t1, dt, transient)
    y0 = opt.check_state(model, y0)
    every = _check_int("renormalise_every", renormalise_every, 1)
    blocks = _check_int("blocks", blocks, 2)
    records = _check_int("records", records, 1)
    delayed = model.sender_delays is not None
    dim = tangent_dim(model)
    if k is None:
        k = 1 if delayed else dim
    k = _check_int("k", k, 1)
    if k > dim and not delayed:
        raise ValueError(
            f"`k` must be at most the dimension of the state's tangent space, {dim} (state "
            f"shape {tuple(model.state_shape)}); got k={k}"
        )
    noisy = model.diffusion(t0, model.project(y0)) is not None
    model.validate(t0, t1)
    if solver is None:  # kl.sweep's and the studies' default: rk4, or Euler--Maruyama
        solver = opt.default_solver(None, noisy)
    solver, _ = opt.check_noise(noisy, key, brownian, solver, None)
    base = resolve_solver(solver, stochastic=noisy)
    if getattr(base, "scan_kind", 0) is None:
        # Runge--Kutta stages: diffrax's default checkpointed loop has a custom VJP that
        # forward mode (jax.linearize of the step) cannot differentiate. "bounded" is
        # differentiable both ways, so jax.grad of the exponents works; "lax" (a plain
        # while loop) is forward-only and about 1.4x faster.
        kind = "bounded" if reverse_mode else "lax"
        base = eqx.tree_at(lambda s: s.scan_kind, base, kind, is_leaf=lambda x: x is None)
    n = opt.num_steps(t0, t1, dt)
    dt0 = (t1 - t0) / n
    n_tr = round(transient / dt0)
    if abs(transient / dt0 - n_tr) > 1e-6 * max(1.0, n_tr):
        raise ValueError(
            f"`transient` must be a whole number of steps dt = {dt0:g}; got {transient:g}"
        )
    n_w = n - n_tr
    if n_tr % every or n_w % every:
        raise ValueError(
            f"`transient` ({n_tr} steps) and the window t1 - t0 - transient ({n_w} "
            f"steps) must be whole numbers of renormalisation intervals "
            f"(renormalise_every={every} steps)"
        )
    n_full = n_w // every
    if n_full < blocks:
        raise ValueError(
            f"the window after the transient has {n_full} renormalisation intervals of "
            f"{every} steps, fewer than `blocks`={blocks}; lengthen t1 - transient or "
            "lower `blocks` / `renormalise_every`"
        )
    delay = opt.delay_config(model, y0, solver, noisy, dt0) if delayed else None
    sde = opt.sde_config(noisy, brownian, base, t0, t1, n, model=model,
                         y0=model.project(y0), delayed=delayed)
    if delayed and k > dim * (2 * delay[1] + 1):
        raise ValueError(
            f"`k` must be at most the dimension of the discretised state (the state and "
            f"its history buffer), {dim * (2 * delay[1] + 1)}; got k={k}"
        )
    p = LyapunovPlan(t0, t1, dt0, n_tr, n_w, every, k, blocks, min(records, n_full), sde,
                     delay)
    return p, y0, base


def _flatten(V, k: int):
    """A tangent pytree with leading axis k -> (k, M)."""
    return jnp.concatenate(
        [v.reshape(k, -1) for v in jax.tree_util.tree_leaves(V)], axis=1
    )


def _unflatten(M, like):
    leaves, treedef = jax.tree_util.tree_flatten(like)
    out, i = [], 0
    for leaf in leaves:
        size = leaf[0].size
        out.append(M[:, i : i + size].reshape(leaf.shape))
        i += size
    return jax.tree_util.tree_unflatten(treedef, out)


def _initial_basis(model, y, hist, k: int):
    """`k` orthonormal tangent vectors at `(y, history)`: fixed random vectors, the
    state part projected on the tangent space (jvp of `model.project`), then QR."""
    shape = y.shape
    like = (jnp.zeros((k, *shape), y.dtype),
            None if hist is None else jnp.zeros((k, *hist[0].shape), y.dtype),
            None if hist is None else jnp.zeros((k, *hist[1].shape), y.dtype))
    size = _flatten(like, k).shape[1]
    # drawn in float32 whatever the dtype, so float32 and float64 runs start from the
    # same vectors (the finite-time estimates then agree)
    g = jax.random.normal(jax.random.key(0), (k, size), jnp.float32).astype(y.dtype)
    V = _unflatten(g, like)
    Vy = jax.vmap(lambda v: jax.jvp(model.project, (y,), (v,))[1])(V[0])
    q, _ = jnp.linalg.qr(_flatten((Vy, V[1], V[2]), k).T)
    return _unflatten(q.T, like)


def _time_grid(p: LyapunovPlan, dtype):
    """The step times of diffrax's `ConstantStepSize` (so the Brownian path is sampled
    at the same times as in `kl.simulate`): `t0 + (t1 - t0) m / n`, the first step
    `t0 + dt`, the last `t1`."""
    n = p.n_transient + p.n_window
    t0 = jnp.asarray(p.t0, dtype)
    t1 = jnp.asarray(p.t1, dtype)
    m = jnp.arange(n + 1)
    grid = t0 + (t1 - t0) * (m.astype(dtype) / jnp.asarray(n, dtype))
    grid = grid.at[1].set(t0 + jnp.asarray(p.dt, dtype))
    return grid.at[0].set(t0).at[-1].set(t1)


def _spectrum(model, y0, key, p: LyapunovPlan, base) -> dict[str, Array]:
    if p.delay is not None:
        # the delay solver; its state (the history buffer) is part of the dynamics
        wrapped, y0 = _solver(model, base, y0, p.t0, p.dt, p.delay)
        base = wrapped.solver
    Y0 = model.pack(y0)
    terms = _terms(model, Y0[0], Y0[1], p.t0, p.t1, key, p.sde)
    args = (model, None)
    state0 = base.init(terms, p.t0, p.t0 + p.dt, Y0, args)
    dtype = Y0[0].dtype
    delayed = p.delay is not None

    def step(carry, times):
        (Y, S), Q = carry
        y, aux = Y
        ta, tb = times

        def advance(z):
            # made_jump=True: FSAL solvers recompute their first stage from `y`, so
            # the linearisation covers every stage. With delays, the history buffer's
            # values and slopes are variables too (their tangent is the history's).
            y, vd = z
            S_in = S if vd is None else eqx.tree_at(lambda h: (h.values, h.derivs), S, vd)
            Y1, _, _, S1, _ = base.step(terms, ta, tb, (y, aux), args, S_in, True)
            vd1 = None if vd is None else (S1.values, S1.derivs)
            return (Y1[0], vd1), S1

        vd = (S.values, S.derivs) if delayed else None
        (y1, vd1), lin, S1 = jax.linearize(advance, (y, vd), has_aux=True)
        if not delayed:
            S1 = S  # the solver state is not carried between steps (made_jump=True)
        Y1 = model.retract((y1, aux))  # aux has zero drift and zero noise
        Qy, Qv, Qd = Q
        Vy, Vvd = jax.vmap(lin)((Qy, None if Qv is None else (Qv, Qd)))
        Vy = jax.vmap(lambda v: jax.jvp(model.project, (Y1[0],), (v,))[1])(Vy)
        V = (Vy, None, None) if Vvd is None else (Vy, *Vvd)
        return ((Y1, S1), V), None

    def renorm(V):
        q, r = jnp.linalg.qr(_flatten(V, p.k).T)
        return _unflatten(q.T, V), jnp.log(jnp.abs(jnp.diagonal(r)))

    n_tr = p.n_transient // p.every  # intervals of the transient
    n_int = n_tr + p.n_full
    grid = _time_grid(p, dtype)
    t_a = grid[:-1].reshape(n_int, p.every)
    t_b = grid[1:].reshape(n_int, p.every)

    def interval(c, xs):
        # one renormalisation interval; the transient's (i < n_tr) are not counted
        carry, cum, running, bsum = c
        i, ta, tb = xs
        (YS, V), _ = jax.lax.scan(step, carry, (ta, tb))
        Q, logs = renorm(V)
        j = jnp.maximum(i - n_tr, 0)
        w = (i >= n_tr).astype(dtype)
        cum = cum + w * logs
        running = jnp.where(
            w > 0, running.at[(j * p.records) // p.n_full].set(cum), running
        )
        bsum = bsum.at[(j * p.blocks) // p.n_full].add(w * logs)
        return ((YS, Q), cum, running, bsum), None

    hist0 = (state0.values, state0.derivs) if delayed else None
    init = (
        ((Y0, state0), _initial_basis(model, Y0[0], hist0, p.k)),
        jnp.zeros((p.k,), dtype),
        jnp.zeros((p.records, p.k), dtype),
        jnp.zeros((p.blocks, p.k), dtype),
    )
    (carry, cum, running, bsum), _ = jax.lax.scan(
        interval, init, (jnp.arange(n_int), t_a, t_b)
    )
    elapsed = jnp.asarray(p.record_times() - p.t_window, dtype)
    block_means = bsum / jnp.asarray(p.block_durations(), dtype)[:, None]
    stderr = jnp.std(block_means, axis=0, ddof=1) / math.sqrt(p.blocks)
    ((yf, auxf), _), _ = carry
    exponents = cum / (p.n_window * p.dt)
    # descending by the final estimate (Benettin's QR order is descending only once the
    # tangent vectors have converged); the same permutation for every per-exponent array
    order = jnp.argsort(-jax.lax.stop_gradient(exponents))
    return dict(
        exponents=exponents[order],
        stderr=stderr[order],
        running=(running / elapsed[:, None])[:, order],
        block_means=block_means[:, order],
        final=yf,
        final_turns=auxf,
    )


_spectrum_jit = eqx.filter_jit(_spectrum)


def lyapunov_exponents(
    model: AbstractModel,
    y0: RealLike,
    *,
    t1: float,
    dt: float,
    t0: float = 0.0,
    k: int | None = None,
    transient: float = 0.0,
    renormalise_every: int = 1,
    key: Key | None = None,
    solver: str | dfx.AbstractSolver = "rk4",
    blocks: int = 10,
    records: int = 200,
    brownian: str = "tree",
    reverse_mode: bool = True,
) -> dict[str, Array]:
    """The arrays behind `kl.lyapunov_spectrum` (same arguments): a dict with
    `exponents` `(k,)` (in descending order), `stderr` `(k,)`, `running` `(records, k)` (running estimates at
    `LyapunovPlan.record_times()`), `block_means` `(blocks, k)`, `final` (the state at
    `t1`) and `final_turns` (its winding numbers, or None).

    Pure JAX: works under `jax.jit`, `jax.vmap` over models, initial states and keys,
    and differentiation (`jax.jacfwd`, and `jax.grad` unless `reverse_mode=False`). The times, `k`
    and the solver are static.
    """
    p, y0, base = plan(
        model, y0, t1=t1, dt=dt, t0=t0, k=k, transient=transient,
        renormalise_every=renormalise_every, key=key, solver=solver, blocks=blocks,
        records=records, brownian=brownian, reverse_mode=reverse_mode,
    )
    return _spectrum_jit(model, y0, key if p.sde is not None else None, p, base)


def lyapunov_spectrum(
    model: AbstractModel,
    y0: RealLike,
    *,
    t1: float,
    dt: float,
    t0: float = 0.0,
    k: int | None = None,
    transient: float = 0.0,
    renormalise_every: int = 1,
    key: Key | None = None,
    solver: str | dfx.AbstractSolver = "rk4",
    blocks: int = 10,
    records: int = 200,
    brownian: str = "tree",
    reverse_mode: bool = True,
) -> xr.Dataset:
    r"""The `k` leading Lyapunov exponents of `model` along the orbit from `y0`.

    Tangent dynamics by `jax.jvp` of `model.drift` through the solver's step, QR
    re-orthonormalisation every `renormalise_every` steps on the tangent space of the
    state manifold (see the module docstring of `kuralab._lyapunov`).

    **Arguments:**

    - `model`, `y0`: any kuralab model and its initial state (`model.state_shape`);
      delayed models use their delay solver (`"euler"`, `"heun"`, `"rk4"`) and history.
    - `t1`, `dt`, `t0`: the run `[t0, t1]` in fixed steps (as `kl.simulate`).
    - `k`: how many exponents (default all: the tangent-space dimension, e.g. N for N
      phases, N (d - 1) for N unit vectors in R^d; 1, the leading one, for models with
      delays).
    - `transient`: time at the start that is integrated but not averaged (a whole
      number of steps).
    - `renormalise_every`: steps between QR re-orthonormalisations (>= 1).
    - `key`: PRNG key of the noise path (models with noise; required there).
    - `solver`: a fixed-step solver name (`"rk4"` default; `"euler"` for noisy models
      when left at `"rk4"`) or a diffrax solver.
    - `blocks`: number of block means for the standard error (>= 2, default 10).
    - `records`: number of running-estimate times (default 200).
    - `brownian`: `"tree"` (default) or `"increments"`, as in `kl.simulate`.
    - `reverse_mode`: `True` (default) keeps the exponents differentiable by `jax.grad`
      as well as forward mode (a diffrax Runge--Kutta solver's stages in a bounded
      loop); `False` is forward-mode only and about 1.4x faster for such solvers. No
      effect for `"rk4"` (no stage loop: both modes, at the fast speed).

    **Returns:** an `xarray.Dataset` with `lambda` (`exponent`, descending: exponent 0 is
    the largest), `lambda_stderr`
    (`exponent`), `lambda_running` (`time`, `exponent`), `lambda_block` (`block`,
    `exponent`), `lambda_sum` (the sum of the exponents) and the final state `final`;
    attributes record the plan (window, steps, renormalisation interval, solver).
    Exponents in 1 / (model time unit).
    """
    p, y0, base = plan(
        model, y0, t1=t1, dt=dt, t0=t0, k=k, transient=transient,
        renormalise_every=renormalise_every, key=key, solver=solver, blocks=blocks,
        records=records, brownian=brownian, reverse_mode=reverse_mode,
    )
    out = _spectrum_jit(model, y0, key if p.sde is not None else None, p, base)
    return to_dataset(model, out, p, solver_name(base))


def to_dataset(model, out: dict, p: LyapunovPlan, solver: str) -> xr.Dataset:
    """An `xarray.Dataset` from `lyapunov_exponents`' arrays (optionally with leading
    batch axes, which become dims `sample_0`, ...)."""
    lam = np.asarray(out["exponents"])
    batch = tuple(f"sample_{i}" for i in range(lam.ndim - 1))
    unit = "1/time"
    state_dims = tuple(model.state_dims)
    ds = xr.Dataset(
        {
            "lambda": ((*batch, EXPONENT), lam,
                       dict(units=unit, long_name="Lyapunov exponent")),
            "lambda_stderr": ((*batch, EXPONENT), np.asarray(out["stderr"]),
                              dict(units=unit, long_name="standard error of the "
                                   "exponent from block means")),
            "lambda_running": ((*batch, "time", EXPONENT), np.asarray(out["running"]),
                               dict(units=unit, long_name="running estimate of the "
                                    "exponent over the elapsed window")),
            "lambda_block": ((*batch, BLOCK, EXPONENT), np.asarray(out["block_means"]),
                             dict(units=unit, long_name="exponent over one block of "
                                  "the window")),
            "lambda_sum": (batch, lam.sum(-1),
                           dict(units=unit, long_name="sum of the exponents")),
            "final": ((*batch, *state_dims), np.asarray(out["final"]),
                      dict(units=model.state_units, long_name="state at t1")),
        },
        coords={
            EXPONENT: np.arange(p.k),
            "time": ("time", p.record_times(), dict(units="1", long_name="time")),
        },
        attrs=dict(
            method="Benettin QR, tangent dynamics by jax.jvp of the drift",
            t0=p.t0, t1=p.t1, dt=p.dt, transient=p.n_transient * p.dt,
            window=p.n_window * p.dt, renormalise_every=p.every, solver=solver,
            blocks=p.blocks, noise="none" if p.sde is None else f"{p.sde[0]} path",
            manifold=model.manifold,
        ),
    )
    return ds
