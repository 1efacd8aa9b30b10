"""`simulate`: integrate any kuralab model over diffrax.

Design (DESIGN.md §1, §4):

- One entry point, `simulate(model, y0, t1=, dt=, ...)`, over `diffrax.diffeqsolve`.
  Fixed-step solvers are chosen by name (`"euler"`, `"heun"`, `"midpoint"`,
  `"ralston"`, `"rk4"`, ...) or given as any diffrax solver; adaptive stepping takes a
  diffrax step-size controller.
- The state is kept on its manifold by a thin wrapper solver (`_Retract`) that calls the
  inner solver and then retracts the end-of-step state: phases are wrapped to [-pi, pi)
  and their winding numbers accumulated in a separate `turns` leaf (so the unwrapped phase
  `theta + 2 pi turns` is exact, and float32 phases never lose precision by growing);
  sphere states are renormalised. Dense output inside a step is left unwrapped and
  re-wrapped when saved.
- The model is passed as diffrax `args`, so one compiled solve serves every parameter
  value of the same structure; `simulate` itself is `eqx.filter_jit`-compiled once per
  (model structure, shapes, solver, save policy).
- Failures (max steps, non-finite state) are reported in `Trajectory.result`; with
  `throw=True` (default) they raise `SimulationError` naming the time the state first
  became non-finite, when known.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._misc import TWO_PI, _wrap_and_turns, check_finite, is_concrete, nearest
from ._models.base import AbstractModel


class RESULTS(dfx.RESULTS):  # pyright: ignore
    """Outcome of `simulate`: diffrax's results plus kuralab's own."""

    nonfinite_state = (
        "The state became non-finite (NaN or inf). Reduce `dt`, check the model "
        "parameters, or use an adaptive solver with a step-size controller."
    )


class SimulationError(RuntimeError):
    """Raised by `simulate(..., throw=True)` when the integration fails."""


# ---------------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------------

_rk4_tableau = dfx.ButcherTableau(
    c=np.array([0.5, 0.5, 1.0]),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    b_error=np.zeros(4),
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
)


class RK4(dfx.AbstractERK):
    """The classical fourth-order Runge--Kutta method (fixed step; no error estimate).

    diffrax ships no classical RK4; this is its Butcher tableau with 3rd-order Hermite
    dense output.
    """

    tableau = _rk4_tableau
    interpolation_cls = dfx.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        del terms
        return 4


SOLVERS: dict[str, Callable[[], dfx.AbstractSolver]] = {
    "euler": dfx.Euler,
    "heun": dfx.Heun,
    "midpoint": dfx.Midpoint,
    "ralston": dfx.Ralston,
    "rk4": RK4,
    "bosh3": dfx.Bosh3,
    "tsit5": dfx.Tsit5,
    "dopri5": dfx.Dopri5,
    "dopri8": dfx.Dopri8,
}
#: Named solvers without an embedded error estimate (fixed step only).
_NO_ERROR_ESTIMATE = (dfx.Euler, RK4)


def _resolve_solver(solver) -> dfx.AbstractSolver:
    if isinstance(solver, str):
        if solver not in SOLVERS:
            raise ValueError(
                f"unknown solver {solver!r}; expected one of {sorted(SOLVERS)} or a "
                "diffrax solver instance" + nearest(solver, SOLVERS)
            )
        return SOLVERS[solver]()
    if isinstance(solver, dfx.AbstractSolver):
        return solver
    raise TypeError(
        f"`solver` must be a name ({sorted(SOLVERS)}) or a diffrax solver; got "
        f"{type(solver).__name__}"
    )


def _solver_name(solver: dfx.AbstractSolver) -> str:
    for name, cls in SOLVERS.items():
        if type(solver) is cls:
            return name
    return type(solver).__name__


# ---------------------------------------------------------------------------------
# Manifold handling: internal state Y = (theta, turns) on the torus, x on the sphere.
# ---------------------------------------------------------------------------------


def _pack(model: AbstractModel, y0):
    if model.manifold == "torus":
        theta, turns = _wrap_and_turns(y0)
        return (theta, turns)
    return model.project(y0)


def _retract(model: AbstractModel, Y):
    if model.manifold == "torus":
        theta, turns = Y
        wrapped, k = _wrap_and_turns(theta)
        return (wrapped, turns + jax.lax.stop_gradient(k))
    return model.project(Y)


def _state(model: AbstractModel, Y):
    return Y[0] if model.manifold == "torus" else Y


def _vector_field(t, Y, model: AbstractModel):
    if model.manifold == "torus":
        theta, turns = Y
        return (model.drift(t, theta, None), jnp.zeros_like(turns))
    return model.drift(t, Y, None)


class _Retract(dfx.AbstractWrappedSolver):
    """Wrap any diffrax solver: after each step, retract the state onto the manifold.

    The model arrives as diffrax `args`. Dense output stays unwrapped (continuous
    inside the step); saved values are retracted again by `_save_fn`.
    """

    solver: dfx.AbstractSolver

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump
        )
        return _retract(args, y1), y_error, dense_info, solver_state, result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


# ---------------------------------------------------------------------------------
# Save policy
# ---------------------------------------------------------------------------------


class SaveAt(eqx.Module):
    """What `simulate` saves. Give at most one of `ts`, `every`, `final`.

    **Arguments:**

    - `ts`: save at these times (strictly increasing, within `[t0, t1]`); values between
      steps come from the solver's dense output.
    - `every`: save at `t0` and every `every`-th step (fixed-step solvers), plus `t1`
      if the number of steps is not a multiple of `every`.
    - `final`: save only the final state.
    - `fn`: optional `fn(t, y) -> PyTree` saved instead of the state (e.g. the order
      parameter), to save memory. `y` is the model state (phases wrapped). Define `fn`
      once at module level: a new function object means a new compilation.

    With no argument (the default of `simulate`), every step is saved.
    """

    ts: Array | None = None
    every: int | None = eqx.field(default=None, static=True)
    final: bool = eqx.field(default=False, static=True)
    fn: Callable | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        given = (self.ts is not None) + (self.every is not None) + bool(self.final)
        if given > 1:
            raise ValueError("SaveAt takes at most one of `ts`, `every`, `final`")
        if self.every is not None and (
            not isinstance(self.every, int | np.integer) or self.every < 1
        ):
            raise ValueError(f"SaveAt `every` must be a positive int; got {self.every!r}")
        if self.fn is not None and not callable(self.fn):
            raise TypeError("SaveAt `fn` must be callable as fn(t, y)")


def _make_save_fn(model_fn: Callable | None):
    def save(t, Y, model):
        Y = _retract(model, Y)
        if model_fn is not None:
            return model_fn(t, _state(model, Y))
        return Y

    return save


def _final_fn(t, Y, model):
    return Y


# ---------------------------------------------------------------------------------
# Trajectory
# ---------------------------------------------------------------------------------


class Trajectory(eqx.Module):
    """The result of `simulate`.

    **Attributes:**

    - `ts`: save times, shape `(time,)`.
    - `ys`: saved states `(time, *state_shape)` (phases wrapped to [-pi, pi)), or the
      saved `SaveAt.fn` outputs.
    - `turns`: winding numbers `(time, osc)` for phase models when states are saved
      (unwrapped phase = `ys + 2 pi turns`), else `None`.
    - `final`: the state at `t1` (always saved), `final_turns` its winding numbers.
    - `result`: a `kl.RESULTS` value; `result == kl.RESULTS.successful` on success.
    - `stats`: diffrax statistics (`num_steps`, `num_accepted_steps`, ...).
    - `model`: the model that was integrated.
    - `solver`, `dt`, `t0`, `t1`: how it was integrated (static metadata).

    Under `jax.vmap` every array gains leading batch axes.
    """

    ts: Array
    ys: Any
    turns: Array | None
    final: Array
    final_turns: Array | None
    result: RESULTS
    stats: dict
    model: AbstractModel
    solver: str = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    t0: float = eqx.field(static=True)
    t1: float = eqx.field(static=True)

    @property
    def succeeded(self):
        """Boolean array: did the integration succeed?"""
        return self.result == RESULTS.successful

    def unwrapped(self) -> Array:
        """Unwrapped phases `ys + 2 pi turns` (phase models with saved states)."""
        if self.turns is None:
            raise ValueError(
                "unwrapped phases need saved phase states (not a SaveAt.fn output, not "
                "a vector model)"
            )
        return self.ys + TWO_PI * self.turns

    def to_dataset(self, batch_dims: tuple[str, ...] | None = None):
        """This trajectory as an `xarray.Dataset` (dims `time`, `osc`[, `dim`]).

        **Arguments:**

        - `batch_dims`: names for leading batch axes (from `vmap`), e.g. `("seed",)`;
          defaults to `batch0`, `batch1`, ...
        """
        from .io import trajectory_to_dataset

        return trajectory_to_dataset(self, batch_dims)


# ---------------------------------------------------------------------------------
# simulate
# ---------------------------------------------------------------------------------


def _concrete_float(name: str, value) -> float:
    if not is_concrete(value):
        raise TypeError(
            f"`{name}` must be a concrete number (it sets the number of steps); got a "
            "traced value. Mark it static under jax.jit or vmap over model parameters "
            "instead."
        )
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a real number; got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"`{name}` must be finite; got {out}")
    return out


def _num_steps(t0: float, t1: float, dt: float) -> int:
    ratio = (t1 - t0) / dt
    n = round(ratio)
    if abs(ratio - n) > 1e-6 * max(1.0, ratio):
        n = math.ceil(ratio)
    return max(int(n), 1)


def simulate(
    model: AbstractModel,
    y0: ArrayLike,
    *,
    t1: float,
    dt: float,
    t0: float = 0.0,
    solver: str | dfx.AbstractSolver = "rk4",
    saveat: SaveAt | None = None,
    key=None,
    stepsize_controller: dfx.AbstractStepSizeController | None = None,
    max_steps: int | None = None,
    adjoint: dfx.AbstractAdjoint | None = None,
    progress: bool = False,
    throw: bool = True,
) -> Trajectory:
    r"""Integrate `model` from `y0` at `t0` to `t1`.

    **Main arguments:**

    - `model`: any kuralab model (`kl.Kuramoto`, ...).
    - `y0`: initial state, shape `model.state_shape` (phases in radians, any range).
    - `t1`: end time; `t0`: start time (default 0). Concrete numbers.
    - `dt`: the step for fixed-step solvers: the grid has `n = ceil((t1 - t0)/dt)` steps
      of size `(t1 - t0)/n`. With a step-size controller it is the initial step and the
      spacing of the default save grid.
    - `solver`: `"euler"`, `"heun"`, `"midpoint"`, `"ralston"`, `"rk4"` (default),
      `"bosh3"`, `"tsit5"`, `"dopri5"`, `"dopri8"`, or any diffrax solver.
    - `saveat`: a `kl.SaveAt`; default saves every step (adaptive: every `dt`).

    **Other arguments:**

    - `key`: PRNG key for stochastic models (ignored by deterministic ones).
    - `stepsize_controller`: e.g. `diffrax.PIDController(rtol=1e-6, atol=1e-8)` for
      adaptive stepping (phases are wrapped, so use atol-dominated tolerances).
    - `max_steps`: step budget for adaptive runs (default `max(4096, 16 n)`).
    - `adjoint`: a diffrax adjoint for gradients (default
      `diffrax.RecursiveCheckpointAdjoint()`).
    - `progress`: show a progress meter (tqdm); for long single runs only.
    - `throw`: raise `kl.SimulationError` on failure (default); with `False` the failure
      is reported in `Trajectory.result` and the run still returns.

    **Returns:** a `kl.Trajectory`.

    Works under `jax.jit`, `jax.vmap` (over model parameters and initial states) and
    `jax.grad` (differentiate through the integration).
    """
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"`model` must be a kuralab model (e.g. kl.Kuramoto); got {type(model).__name__}"
        )
    t0 = _concrete_float("t0", t0)
    t1 = _concrete_float("t1", t1)
    dt = _concrete_float("dt", dt)
    if not dt > 0:
        raise ValueError(f"`dt` must be > 0; got {dt}")
    if not t1 > t0:
        raise ValueError(f"`t1` must be > `t0`; got t0={t0}, t1={t1}")
    y0 = jnp.asarray(y0)
    if not jnp.issubdtype(y0.dtype, jnp.floating):
        y0 = y0.astype(jnp.result_type(float))
    if tuple(y0.shape) != tuple(model.state_shape):
        raise ValueError(
            f"`y0` must have the model's state shape {tuple(model.state_shape)}; got "
            f"shape {tuple(y0.shape)}"
        )
    check_finite("y0", y0)
    if model.sender_delays is not None or model.diffusion(t0, y0) is not None:
        raise NotImplementedError(
            "models with delays or noise need the delay/SDE integrators, which this "
            "version of kuralab does not have yet"
        )
    base = _resolve_solver(solver)
    if saveat is None:
        saveat = SaveAt(every=1)
    elif not isinstance(saveat, SaveAt):
        raise TypeError(f"`saveat` must be a kl.SaveAt; got {type(saveat).__name__}")

    n = _num_steps(t0, t1, dt)
    adaptive = stepsize_controller is not None and not isinstance(
        stepsize_controller, dfx.ConstantStepSize
    )
    if adaptive:
        if isinstance(base, _NO_ERROR_ESTIMATE):
            raise ValueError(
                f"solver {_solver_name(base)!r} has no error estimate, so it cannot be "
                "used with an adaptive step-size controller; use 'tsit5', 'dopri5' or "
                "'bosh3', or wrap it in diffrax.HalfSolver"
            )
        if saveat.every is not None:
            # No step grid to count on: save on the dt grid instead.
            grid = t0 + (t1 - t0) * np.arange(0, n + 1, saveat.every) / n
            if grid[-1] != t1:
                grid = np.append(grid, t1)
            saveat = SaveAt(ts=jnp.asarray(grid), fn=saveat.fn)
        controller = stepsize_controller
        steps_budget = max_steps if max_steps is not None else max(4096, 16 * n)
        dt0 = dt
    else:
        controller = dfx.ConstantStepSize()
        steps_budget = n
        dt0 = (t1 - t0) / n
        if max_steps is not None and max_steps < n:
            raise ValueError(f"`max_steps`={max_steps} is less than the {n} fixed steps")
    if saveat.ts is not None:
        ts = jnp.asarray(saveat.ts)
        if ts.ndim != 1 or ts.shape[0] < 1:
            raise ValueError(f"SaveAt `ts` must be a non-empty 1-D array; got {ts.shape}")
        if is_concrete(ts):
            tsn = np.asarray(ts)
            if np.any(np.diff(tsn) <= 0):
                raise ValueError("SaveAt `ts` must be strictly increasing")
            if tsn[0] < t0 - 1e-9 * abs(t0) or tsn[-1] > t1 + 1e-9 * abs(t1):
                raise ValueError(
                    f"SaveAt `ts` must lie within [t0, t1] = [{t0}, {t1}]; got "
                    f"[{tsn[0]}, {tsn[-1]}]"
                )
    if adjoint is None:
        adjoint = dfx.RecursiveCheckpointAdjoint()
    meter = dfx.TqdmProgressMeter() if progress else dfx.NoProgressMeter()

    out = _solve(
        model,
        y0,
        saveat,
        jnp.asarray(t0, dtype=y0.dtype),
        jnp.asarray(t1, dtype=y0.dtype),
        jnp.asarray(dt0, dtype=y0.dtype),
        n=n,
        solver=base,
        controller=controller,
        max_steps=steps_budget,
        adjoint=adjoint,
        meter=meter,
    )
    traj = Trajectory(
        **out, model=model, solver=_solver_name(base), dt=dt0, t0=t0, t1=t1
    )
    if throw:
        traj = _raise_on_failure(traj)
    return traj


def _raise_on_failure(traj: Trajectory) -> Trajectory:
    if not is_concrete(traj.result._value):
        return traj.result.error_if(traj, ~traj.succeeded)
    ok = np.asarray(traj.succeeded)
    if np.all(ok):
        return traj
    result = traj.result
    bad_value = np.asarray(result._value)[~ok].flat[0]
    message = RESULTS._index_to_message[int(bad_value)]
    where = ""
    if traj.turns is not None or traj.ys is not None:
        leaves = jax.tree_util.tree_leaves(traj.ys)
        if leaves:
            arr = np.asarray(leaves[0])
            ts = np.asarray(traj.ts)
            if arr.ndim >= 1 and ts.ndim == 1 and arr.shape[0] == ts.shape[0]:
                finite = np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
                if not finite.all():
                    first = int(np.argmin(finite))
                    where = f" First non-finite saved state at t = {ts[first]:g}."
    raise SimulationError(message + where)


@eqx.filter_jit
def _solve(
    model, y0, saveat, t0, t1, dt0, *, n, solver, controller, max_steps, adjoint, meter
) -> dict:
    """The compiled solve: one compilation per (structure, shapes, n, save policy);
    `t0`, `t1`, `dt0` and every model parameter are traced."""
    Y0 = _pack(model, y0)
    save_fn = _make_save_fn(saveat.fn)
    if saveat.ts is not None:
        user = dfx.SubSaveAt(ts=saveat.ts, fn=save_fn)
    elif saveat.final:
        user = dfx.SubSaveAt(t1=True, fn=save_fn)
    else:
        k = saveat.every or 1
        user = dfx.SubSaveAt(t0=True, steps=k, t1=bool(n % k), fn=save_fn)
    final = dfx.SubSaveAt(t1=True, fn=_final_fn)
    sol = dfx.diffeqsolve(
        dfx.ODETerm(_vector_field),
        _Retract(solver),
        t0,
        t1,
        dt0,
        Y0,
        args=model,
        saveat=dfx.SaveAt(subs=[user, final]),
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=adjoint,
        throw=False,
        progress_meter=meter,
    )
    ts, _ = sol.ts
    ys, Yf = sol.ys
    Yf = jax.tree_util.tree_map(lambda a: a[0], Yf)
    finite = jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(Yf)])
    )
    result = RESULTS.promote(sol.result)
    result = RESULTS.where(
        (result == RESULTS.successful) & ~finite, RESULTS.nonfinite_state, result
    )
    if model.manifold == "torus":
        final_state, final_turns = Yf
        if saveat.fn is None:
            ys, turns = ys
        else:
            turns = None
    else:
        final_state, final_turns, turns = Yf, None, None
    return dict(
        ts=ts,
        ys=ys,
        turns=turns,
        final=final_state,
        final_turns=final_turns,
        result=result,
        stats=dict(sol.stats),
    )
