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
  (model structure, shapes, solver, save policy, t0/t1/dt). The times are static so the
  compiled solve has no host callback and is stored in JAX's persistent compilation
  cache (a warm new process skips the XLA compile). Eager calls also go through the
  export cache (`_export_cache.py`): a new process loads the lowered solve instead of
  tracing and lowering diffrax again.
- Noise: `brownian="tree"` is diffrax's `VirtualBrownianTree`; `"increments"` draws
  float32 increments by Box--Muller from threefry bits (`_brownian.py`).
- Failures (max steps, non-finite state) are reported in `Trajectory.result`; with
  `throw=True` (default) they raise `SimulationError` naming the time the state first
  became non-finite, when known.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, ArrayLike

from ._akorn_step import AKOrNStep
from ._brownian import increment_path
from ._delays import (
    DELAY_SOLVERS,
    SDDE_SOLVERS,
    DelaySolver,
    init_history,
    tabulated_history,
)
from ._export_cache import cached_call
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
    "akorn": AKOrNStep,  # AKOrN's discrete step x <- Pi[x + gamma f(x)] (dt = gamma)
}
#: Named solvers without an embedded error estimate (fixed step only).
_NO_ERROR_ESTIMATE = (dfx.Euler, RK4, AKOrNStep)

#: Solvers for models with noise (additive, so Ito and Stratonovich agree).
SDE_SOLVERS: dict[str, Callable[[], dfx.AbstractSolver]] = {
    "euler": dfx.Euler,  # Euler--Maruyama, strong order 1 for additive noise
    "heun": dfx.Heun,  # stochastic Heun
    "euler_heun": dfx.EulerHeun,
    "sra1": dfx.SRA1,  # strong order 1.5 for additive noise
    "shark": dfx.ShARK,  # strong order 1.5 for additive noise
}
_NEEDS_LEVY_AREA = (dfx.SRA1, dfx.ShARK)
BROWNIAN = ("tree", "increments")


def _resolve_solver(solver, stochastic: bool = False) -> dfx.AbstractSolver:
    if isinstance(solver, str):
        table = SDE_SOLVERS if stochastic else SOLVERS
        if solver not in table:
            if stochastic and solver in SOLVERS:
                raise ValueError(
                    f"solver {solver!r} is not an SDE solver; the model has noise, so "
                    f"use one of {sorted(SDE_SOLVERS)}"
                )
            raise ValueError(
                f"unknown solver {solver!r}; expected one of {sorted(table)} or a "
                "diffrax solver instance" + nearest(solver, table)
            )
        return table[solver]()
    if isinstance(solver, dfx.AbstractSolver):
        return solver
    raise TypeError(
        f"`solver` must be a name ({sorted(SOLVERS)}) or a diffrax solver; got "
        f"{type(solver).__name__}"
    )


def _solver_name(solver: dfx.AbstractSolver) -> str:
    if isinstance(solver, DelaySolver):
        return solver.method
    for name, cls in (SOLVERS | SDE_SOLVERS).items():
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


def _vector_field(t, Y, args):
    # args is the model, or (model, history) inside the delay solver.
    model, history = args if isinstance(args, tuple) else (args, None)
    if model.manifold == "torus":
        theta, turns = Y
        delayed = None if history is None else history.delayed(t, theta)
        return (model.drift(t, theta, delayed), jnp.zeros_like(turns))
    return model.drift(t, Y, None)


def _diffusion_vf(t, Y, model: AbstractModel):
    """Diagonal additive noise on the phases; the winding numbers get a zero block."""
    theta, turns = Y
    g = model.diffusion(t, theta)
    return lx.DiagonalLinearOperator((g, jnp.zeros_like(turns)))


class _PhaseBrownianPath(dfx.AbstractBrownianPath):
    """One Brownian path on the phases, presented as the pair `(dW, 0)` that matches the
    internal state `(theta, turns)`. Every SDE solver sees the same path for a key."""

    path: dfx.AbstractBrownianPath

    @property
    def t0(self):
        return self.path.t0

    @property
    def t1(self):
        return self.path.t1

    @property
    def levy_area(self):
        return self.path.levy_area

    def evaluate(self, t0, t1=None, left=True, use_levy=False):
        out = self.path.evaluate(t0, t1, left, use_levy)
        if isinstance(out, dfx.AbstractBrownianIncrement):
            fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
            return type(out)(
                **{
                    k: (v, v) if k == "dt" else (v, jnp.zeros_like(v))
                    for k, v in fields.items()
                }
            )
        return (out, jnp.zeros_like(out))


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

    @property
    def scan_kind(self):
        # diffrax inspects this on Runge--Kutta solvers (isinstance is forwarded).
        return getattr(self.solver, "scan_kind", None)

    @property
    def root_finder(self):
        # diffrax reads (and, with an adaptive controller, sets through `eqx.tree_at`)
        # the tolerances of implicit solvers' root finders (isinstance is forwarded).
        return self.solver.root_finder  # pyright: ignore

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
    brownian: str = "tree",
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
      `"bosh3"`, `"tsit5"`, `"dopri5"`, `"dopri8"`, `"akorn"` (AKOrN's discrete
      projected step for sphere models, `dt` = the paper's gamma), or any diffrax
      solver. Models with
      noise take `"euler"` (Euler--Maruyama), `"heun"`, `"euler_heun"`, `"sra1"` or
      `"shark"` (default for them: `"euler"` when `"rk4"` is left as the default). Models
      with delays take `"euler"`, `"heun"` or `"rk4"` (`"euler"`/`"heun"` with noise).
    - `saveat`: a `kl.SaveAt`; default saves every step (adaptive: every `dt`).
    - `key`: PRNG key for models with noise (required there, ignored otherwise).

    **Other arguments:**

    - `brownian`: the Brownian path for noisy models. `"tree"` (default; a
      `diffrax.VirtualBrownianTree` on a dyadic resolution of `[t0, t1]`): the same
      `key` gives the same path whatever the save grid and whatever `dt`, so a run can be
      repeated at a finer step for convergence checks, and reverse-mode gradients work.
      Solvers that need Levy areas (`"sra1"`, `"shark"`) sample a tree with space-time
      Levy areas, which is a different realisation for the same key than the one
      `"euler"`, `"heun"` and `"euler_heun"` share.
      `"increments"`: independent N(0, dt) increments per step, about 10x faster; the
      same key gives the same path only on the same step grid; gradients only in
      forward mode. float32 increments come from threefry bits by Box--Muller
      (`kuralab._brownian`, ~3x faster than `diffrax.UnsafeBrownianPath`, which other
      dtypes use).
    - `stepsize_controller`: e.g. `diffrax.PIDController(rtol=1e-6, atol=1e-8)` for
      adaptive stepping (phases are wrapped, so use atol-dominated tolerances).
    - `max_steps`: step budget for adaptive runs (default `max(4096, 16 n)`).
    - `adjoint`: a diffrax adjoint for gradients (default
      `diffrax.RecursiveCheckpointAdjoint()`; `diffrax.ForwardMode()` with
      `brownian="increments"`).
    - `progress`: show a progress meter (tqdm); for long single runs only.
    - `throw`: raise `kl.SimulationError` on failure (default); with `False` the failure
      is reported in `Trajectory.result` and the run still returns.

    **Returns:** a `kl.Trajectory`.

    Works under `jax.jit`, `jax.vmap` (over model parameters, initial states and keys)
    and `jax.grad` (differentiate through the integration).
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
    noisy = model.diffusion(t0, y0) is not None
    delays = model.sender_delays
    if (noisy or delays is not None) and model.manifold != "torus":
        raise ValueError("noise and delays are supported for phase models only")
    if noisy:
        if key is None:
            raise ValueError("`key` is required: the model has noise (kl.Noise)")
        if brownian not in BROWNIAN:
            raise ValueError(
                f"`brownian` must be one of {BROWNIAN}; got {brownian!r}"
                + nearest(str(brownian), BROWNIAN)
            )
        if getattr(model, "noise", None) is not None:
            model.noise.check_nonnegative(t0, t1)
        if solver == "rk4":  # the ODE default; the SDE default is Euler--Maruyama
            solver = "euler"
    base = _resolve_solver(solver, stochastic=noisy)
    if saveat is None:
        saveat = SaveAt(every=1)
    elif not isinstance(saveat, SaveAt):
        raise TypeError(f"`saveat` must be a kl.SaveAt; got {type(saveat).__name__}")

    n = _num_steps(t0, t1, dt)
    adaptive = stepsize_controller is not None and not isinstance(
        stepsize_controller, dfx.ConstantStepSize
    )
    if adaptive:
        if delays is not None:
            raise ValueError(
                "models with delays need a fixed step (solver 'euler', 'heun' or 'rk4' "
                "and no stepsize_controller): diffrax has no adaptive delay support"
            )
        if noisy and brownian == "increments":
            raise ValueError(
                "brownian='increments' cannot be used with adaptive steps; use 'tree'"
            )
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

    sde = None
    if noisy:
        levy = dfx.SpaceTimeLevyArea if isinstance(base, _NEEDS_LEVY_AREA) else None
        # A dyadic resolution of [t0, t1] finer than the step: the path depends only on
        # (key, t0, t1), and runs with 2^k steps sample it at shared dyadic nodes.
        tol = (t1 - t0) / 2 ** math.ceil(math.log2(2 * n))
        sde = (brownian, levy, tol)
        if brownian == "increments":
            if adjoint is None:
                adjoint = dfx.ForwardMode()
            elif not isinstance(adjoint, dfx.ForwardMode):
                raise ValueError(
                    "brownian='increments' supports only forward-mode gradients "
                    "(adjoint=diffrax.ForwardMode()); use brownian='tree' for reverse mode"
                )
    delay_cfg, past = None, None
    if delays is not None:
        y0, delay_cfg, past = _prepare_delays(model, y0, solver, noisy, t0, dt0)
        base = dfx.Euler()  # placeholder for naming; the delay solver replaces it
    if adjoint is None:
        adjoint = dfx.RecursiveCheckpointAdjoint()
    if isinstance(adjoint, dfx.ForwardMode) and getattr(base, "scan_kind", 0) is None:
        # What diffrax's ForwardMode does to RK solvers, done before wrapping them.
        base = eqx.tree_at(lambda s: s.scan_kind, base, "lax", is_leaf=lambda x: x is None)
    meter = dfx.TqdmProgressMeter() if progress else dfx.NoProgressMeter()
    if key is not None and not noisy:
        key = None  # deterministic: the key plays no part (and must not recompile)

    # Eager calls go through the on-disk export cache when it is enabled (a new
    # process then skips tracing and lowering); traced calls and configurations
    # without a stable key run `_solve` directly (kuralab/_export_cache.py).
    out = cached_call(
        _solve,
        (
            model,
            y0,
            saveat,
            # Static floats, not traced arrays: the step count is static anyway, and
            # traced times make diffrax add an `error_if` host callback, which keeps
            # the compiled solve out of JAX's persistent compilation cache.
            t0,
            t1,
            dt0,
            key,
            past,
        ),
        dict(
            n=n,
            solver=base,
            controller=controller,
            max_steps=steps_budget,
            adjoint=adjoint,
            meter=meter,
            sde=sde,
            delay=delay_cfg,
        ),
    )
    name = delay_cfg[0] if delay_cfg is not None else _solver_name(base)
    traj = Trajectory(**out, model=model, solver=name, dt=dt0, t0=t0, t1=t1)
    if throw:
        traj = _raise_on_failure(traj)
    return traj


def _prepare_delays(model, y0, solver, noisy: bool, t0: float, dt0: float):
    """Validate a delayed model's settings; return (y0, static config, pre-history)."""
    delays = model.sender_delays
    allowed = SDDE_SOLVERS if noisy else DELAY_SOLVERS
    if not isinstance(solver, str) or solver not in allowed:
        raise ValueError(
            f"models with delays{' and noise' if noisy else ''} need solver in "
            f"{allowed} (fixed step); got {solver!r}"
        )
    n_osc = y0.shape[0]
    tau = delays.per_sender(n_osc, dt0)
    if is_concrete(tau):
        positive = np.asarray(tau)[np.asarray(tau) > 0]
        if positive.size and positive.min() < dt0 * (1 - 1e-6):
            raise ValueError(
                f"a delay tau = {positive.min():g} is shorter than the step dt = "
                f"{dt0:g}; explicit solvers would need the unknown present. Use dt <= "
                "the smallest positive delay (zero delays are fine)"
            )
    if delays.convention == "kuranet":
        if solver != "euler":
            raise ValueError(
                "Delays(convention='kuranet') reproduces the reference Euler scheme; "
                "use solver='euler'"
            )
        warm_steps = round(delays.bound(dt0) / dt0) + 1
        # KuraNet: the network runs max(tau)+1 Euler steps without delays (and without
        # noise) before t0, and that run is the history.
        plain = eqx.tree_at(
            lambda m: (m.delays, m.noise), model, (None, None), is_leaf=lambda x: x is None
        )
        warm = simulate(
            plain, y0, t0=t0 - warm_steps * dt0, t1=t0, dt=dt0, solver="euler"
        )
        past_values = warm.ys[:-1]
        past_derivs = jax.vmap(lambda t, th: plain.drift(t, th, None))(
            warm.ts[:-1], past_values
        )
        left = plain.drift(t0, warm.final, None)  # the warm-up's slope arriving at t0
        past = (past_values, past_derivs, left)
        return warm.final, ("euler", warm_steps + 1, "tabulated"), past
    n_slots = math.ceil(delays.bound(dt0) / dt0 - 1e-9) + 2
    return y0, (solver, n_slots, delays.history), None


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
    model,
    y0,
    saveat,
    t0,
    t1,
    dt0,
    key,
    past,
    *,
    n,
    solver,
    controller,
    max_steps,
    adjoint,
    meter,
    sde,
    delay,
) -> dict:
    """The compiled solve: one compilation per (structure, shapes, times, step count,
    save policy); the key and every model parameter are traced."""
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
    terms = dfx.ODETerm(_vector_field)
    if sde is not None:
        kind, levy, tol = sde
        shape = jax.ShapeDtypeStruct(y0.shape, y0.dtype)
        levy_kw = {} if levy is None else dict(levy_area=levy)
        if kind == "tree":
            bm = dfx.VirtualBrownianTree(t0, t1, tol=tol, shape=shape, key=key, **levy_kw)
        else:
            bm = increment_path(shape, key, levy)
        terms = dfx.MultiTerm(terms, dfx.ControlTerm(_diffusion_vf, _PhaseBrownianPath(bm)))
    if delay is not None:
        method, n_slots, history = delay
        tau = model.sender_delays.per_sender(y0.shape[0], dt0).astype(y0.dtype)
        if past is None:
            drift0 = model.drift(t0, Y0[0], None)
            hist0 = init_history(Y0[0], drift0, tau, dt0, t0, n_slots, history)
        else:
            hist0 = tabulated_history(past[0], past[1], tau, dt0, t0, past[2])
        solver = DelaySolver(method, hist0)
    sol = dfx.diffeqsolve(
        terms,
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
