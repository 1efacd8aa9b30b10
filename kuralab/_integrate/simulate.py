"""`simulate`: integrate any kuralab model over diffrax (DESIGN.md §1, §4).

- One entry point over `diffrax.diffeqsolve`. Fixed-step solvers by name or any diffrax
  solver; adaptive stepping takes a diffrax step-size controller.
- The model says everything through its contract (`kuralab/_models/base.py`): state
  layout and retraction, drift, diffusion, delays. `Retract` keeps the state on its
  manifold after every step (`manifold.py`); nothing here branches on the model's kind.
- The model travels as diffrax `args`, so one compiled solve (`solve.py`) serves every
  parameter value of the same structure. Times are static floats, so the compiled solve
  has no host callback and lands in JAX's persistent compilation cache; eager calls also
  go through the export cache (`_export_cache.py`): a new process loads the lowered
  solve instead of tracing and lowering diffrax again.
- Noise: `brownian="tree"` is diffrax's `VirtualBrownianTree`; `"increments"` draws
  float32 increments by Box--Muller from threefry bits (`_brownian.py`).
- Failures (max steps, non-finite state) are reported in `Trajectory.result`; with
  `throw=True` (default) they raise `SimulationError` naming the time the state first
  became non-finite, when known.
"""

from __future__ import annotations

import diffrax as dfx
import equinox as eqx
import jax
import numpy as np

from .._custom_types import Key, RealLike
from .._delays import _History
from .._export_cache import cached_call
from .._misc import is_concrete
from .._models.base import AbstractModel
from . import options as opt
from .forward_only import forward_only
from .solve import solve, start_history
from .solvers import resolve_solver, solver_name
from .trajectory import SaveAt, Trajectory, raise_on_failure

__all__ = ["initial_history", "simulate", "simulate_carrying"]


def simulate(
    model: AbstractModel,
    y0: RealLike,
    *,
    t1: float,
    dt: float,
    t0: float = 0.0,
    solver: str | dfx.AbstractSolver | None = None,
    saveat: SaveAt | None = None,
    key: Key | None = None,
    burn_in: float = 0.0,
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
      projected step for sphere models, `dt` = the paper's gamma),
      `"symplectic_euler"` (second-order models such as `kl.LatticeOscillators`: the
      coRNN update v <- v + dt a, h <- h + dt v), or any diffrax
      solver. Default (`None`): `"rk4"`, and for models with noise `"euler"`
      (Euler--Maruyama). Models with noise take `"euler"`, `"heun"`, `"euler_heun"`,
      `"sra1"` or `"shark"`; an ODE solver name such as `"rk4"` is refused for them.
      Models with delays take `"euler"`, `"heun"` or `"rk4"` (`"euler"`/`"heun"` with
      noise). `Trajectory.solver` names the solver that ran.
    - `saveat`: a `kl.SaveAt`; default saves every step (adaptive: every `dt`). The
      saved output is estimated before anything is allocated; more than
      `$KURALAB_MAX_SAVE` bytes (default 16GB; e.g. `KURALAB_MAX_SAVE=64GB`) is refused
      with a message naming `saveat`.
    - `burn_in`: integrate `[t0, t0 + burn_in]` first (a whole number of steps) without
      saving and without gradients (truncated backpropagation: the state, and a delayed
      model's history, at `t0 + burn_in` are constants to `jax.grad`); saving then
      starts after it, e.g. `SaveAt(every=1)` saves at `t0 + burn_in + dt, ..., t1` (no
      duplicate of the burn-in's end). Default 0.
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
    - `adjoint`: how gradients are taken. Default: `kl.ScanAdjoint()` for fixed-step
      solves (reverse mode through one `lax.scan` over the n steps, storing each step's
      residuals: O(n * state) memory, no recomputation) while that memory (estimated as
      16 states per step, per vmap element) is at most `$KURALAB_SCAN_ADJOINT_MAX`
      (default 2GB); `diffrax.RecursiveCheckpointAdjoint()` (bounded memory) beyond
      that and with a step-size controller; and `diffrax.ForwardMode()` with
      `brownian="increments"` (which supports forward mode only). Also accepted:
      `RecursiveCheckpointAdjoint(checkpoints=...)` (bounded memory for long runs) and
      `diffrax.DirectAdjoint()`. Other adjoints
      (`BacksolveAdjoint`, ...) are rejected with a message.
    - `progress`: show a progress meter (tqdm); for long single runs only.
    - `throw`: raise `kl.SimulationError` on failure (default); with `False` the failure
      is reported in `Trajectory.result` and the run still returns.

    **Returns:** a `kl.Trajectory`.

    Works under `jax.jit`, `jax.vmap` (over model parameters, initial states and keys)
    and `jax.grad` (differentiate through the integration).
    """
    traj, _ = _simulate(
        model, y0, t1=t1, dt=dt, t0=t0, solver=solver, saveat=saveat, key=key,
        burn_in=burn_in, brownian=brownian, stepsize_controller=stepsize_controller,
        max_steps=max_steps, adjoint=adjoint, progress=progress, throw=throw,
    )
    return traj


def simulate_carrying(
    model: AbstractModel, y0: RealLike, history: _History, **kwargs
) -> tuple[Trajectory, _History]:
    """`simulate` of a delayed model that carries its delay history across segments:
    starts from `history` (a buffer from `initial_history` or from an earlier
    `simulate_carrying`, whose final state `y0` must be) instead of the model's
    `Delays.history`, and returns `(trajectory, history at t1)`. Segments of the same
    model and step chain into one continuous run (tests/test_delays.py); the model may
    change between segments (`kl.sweep`'s adiabatic ramps), the buffer keeps the past
    states and slopes. `kwargs` are `simulate`'s; the next segment may start at any
    `t0` (the buffer is renumbered from it)."""
    if model.sender_delays is None:
        raise ValueError("`model` must have delays to carry a delay history")
    return _simulate(model, y0, history=history, keep_history=True, **kwargs)


def initial_history(
    model: AbstractModel, y0: RealLike, **kwargs
) -> tuple[RealLike, _History]:
    """`(y0, history)`: the start state and delay buffer that `simulate(model, y0,
    **kwargs)` would start from (the model's `Delays.history`; the KuraNet warm-up
    moves `y0`), to chain with `simulate_carrying`."""
    if model.sender_delays is None:
        raise ValueError("`model` must have delays to carry a delay history")
    return _simulate(model, y0, start_only=True, **kwargs)


def _simulate(
    model, y0, *, t1, dt, t0=0.0, solver=None, saveat=None, key=None, burn_in=0.0,
    brownian="tree", stepsize_controller=None, max_steps=None, adjoint=None,
    progress=False, throw=True, history=None, keep_history=False, start_only=False,
):
    """`simulate`'s body; returns `(trajectory, final history or None)`, or with
    `start_only` the `(y0, history)` the delayed solve would start from."""
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"`model` must be a kuralab model (e.g. kl.Kuramoto); got {type(model).__name__}"
        )
    t0, t1, dt, burn_in = opt.check_times(t0, t1, dt, burn_in)
    y0 = opt.check_state(model, y0)
    noisy = model.diffusion(t0, model.project(y0)) is not None
    model.validate(t0, t1)
    solver = opt.default_solver(solver, noisy)
    solver, adjoint = opt.check_noise(noisy, key, brownian, solver, adjoint)
    base = resolve_solver(solver, stochastic=noisy)
    steps = opt.plan_steps(
        t0, t1, dt, burn_in, base, saveat, stepsize_controller, max_steps,
        delayed=model.sender_delays is not None, noisy=noisy, brownian=brownian,
    )
    opt.check_save_size(steps, y0, turns=jax.eval_shape(model.pack, y0)[1])
    adjoint = opt.check_adjoint(
        adjoint, opt.is_fixed_step(stepsize_controller),
        steps.n * y0.size * y0.dtype.itemsize * opt.RESIDUALS_PER_STEP,
    )
    delay = opt.delay_config(model, y0, solver, noisy, steps.dt0)
    if start_only:
        return start_history(model, y0, t0, steps.dt0, delay)
    if history is not None:
        _check_history(history, steps.dt0, delay[1], y0.shape)
    if isinstance(adjoint, dfx.ForwardMode) and getattr(base, "scan_kind", 0) is None:
        # What diffrax's ForwardMode does to RK solvers, done before wrapping them.
        base = eqx.tree_at(lambda s: s.scan_kind, base, "lax", is_leaf=lambda x: x is None)
    # Eager calls go through the on-disk export cache when it is enabled (a new process
    # then skips tracing and lowering); traced calls and configurations without a
    # stable key run `solve` directly (kuralab/_export_cache.py). The times are static
    # floats: traced times would make diffrax add an `error_if` host callback, which
    # keeps the compiled solve out of JAX's persistent compilation cache.
    run = cached_call if history is None and not keep_history else _direct
    out = run(
        solve,
        (model, y0, steps.saveat, t0, t1, steps.dt0, key if noisy else None),
        dict(
            steps=steps,
            solver=base,
            adjoint=adjoint,
            meter=dfx.TqdmProgressMeter() if progress else dfx.NoProgressMeter(),
            sde=opt.sde_config(noisy, brownian, base, t0, t1, steps.n, model=model,
                               y0=model.project(y0), delayed=delay is not None),
            delay=delay,
            **({} if history is None else dict(history=history)),
            **(dict(keep_history=True) if keep_history else {}),
        ),
    )
    final_history = out.pop("history", None)
    if noisy and brownian == "increments":
        out = forward_only(out)  # jax.grad then names the problem (forward_only.py)
    name = delay[0] if delay is not None else solver_name(base)
    traj = Trajectory(
        **out, model=model, solver=name, dt=steps.dt0, t0=t0, t1=t1, burn_in=burn_in
    )
    return (raise_on_failure(traj) if throw else traj), final_history


def _check_history(history: _History, dt0: float, n_slots: int, shape) -> None:
    if not isinstance(history, _History) or history.values.shape != (n_slots, *shape):
        got = getattr(getattr(history, "values", None), "shape", type(history).__name__)
        raise ValueError(
            f"`history` must be a buffer of shape {(n_slots, *shape)} (the carried "
            f"run's model and step); got {got}"
        )
    if is_concrete(history.dt) and not np.isclose(float(history.dt), dt0, rtol=1e-6):
        raise ValueError(
            f"`history` was carried with step dt = {float(history.dt):g}; this run's "
            f"step is {dt0:g}: segments must share the step grid"
        )


def _direct(fn, args, kwargs):
    return fn(*args, **kwargs)
