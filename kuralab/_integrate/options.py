"""Checks and static choices that `simulate` makes before anything is traced.

Each helper validates one group of arguments with a one-line error naming the argument,
the value and the expected form, and returns the static configuration `_solve` compiles
against. None of them asks what kind of model it has: they use the model contract
(`state_shape`, `diffusion`, `sender_delays`, `validate`).
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._delays import DELAY_SOLVERS, SDDE_SOLVERS
from .._misc import check_finite, is_concrete, nearest
from .scan_adjoint import ScanAdjoint
from .solvers import (
    BROWNIAN,
    has_error_estimate,
    needs_levy_area,
    noise_calculus,
    solver_name,
)
from .trajectory import SaveAt

#: Adjoints that work with kuralab's save policy (SaveAt subs) and retraction.
ADJOINTS = (
    dfx.RecursiveCheckpointAdjoint, dfx.DirectAdjoint, dfx.ForwardMode, ScanAdjoint
)


class Steps(NamedTuple):
    """The static step plan: `n` steps in all, `n_burn` of them burn-in."""

    n: int
    n_burn: int
    dt0: float
    controller: dfx.AbstractStepSizeController
    max_steps: int
    saveat: SaveAt


def concrete_float(name: str, value) -> float:
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


def num_steps(t0: float, t1: float, dt: float) -> int:
    ratio = (t1 - t0) / dt
    n = round(ratio)
    if abs(ratio - n) > 1e-6 * max(1.0, ratio):
        n = math.ceil(ratio)
    return max(int(n), 1)


def check_times(t0, t1, dt, burn_in) -> tuple[float, float, float, float]:
    t0, t1, dt = (concrete_float(k, v) for k, v in (("t0", t0), ("t1", t1), ("dt", dt)))
    burn_in = concrete_float("burn_in", burn_in)
    if not dt > 0:
        raise ValueError(f"`dt` must be > 0; got {dt}")
    if not t1 > t0:
        raise ValueError(f"`t1` must be > `t0`; got t0={t0}, t1={t1}")
    if not 0 <= burn_in < t1 - t0:
        raise ValueError(
            f"`burn_in` must be in [0, t1 - t0) = [0, {t1 - t0:g}); got {burn_in:g}"
        )
    return t0, t1, dt, burn_in


def check_state(model, y, name: str = "y0", *, finite: bool = True):
    """`y` as a floating array of the model's state shape (one-line error naming
    `name` otherwise); with `finite`, also finite where concrete."""
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(jnp.result_type(float))
    if tuple(y.shape) != tuple(model.state_shape):
        raise ValueError(
            f"`{name}` must have the model's state shape {tuple(model.state_shape)}; "
            f"got shape {tuple(y.shape)} (batch with jax.vmap)"
        )
    if finite:
        check_finite(name, y)
    return y


#: Environment variable: the most bytes `simulate` may save (states, winding numbers).
MAX_SAVE_ENV = "KURALAB_MAX_SAVE"
DEFAULT_MAX_SAVE = 16 * 10**9


def default_solver(solver, noisy: bool):
    """`solver=None` is `"rk4"` (ODEs) or `"euler"` (Euler--Maruyama, noise); an ODE
    solver name for a noisy model is refused (it would not be the method named)."""
    from .solvers import SDE_SOLVERS, SOLVERS

    if solver is None:
        return "euler" if noisy else "rk4"
    if noisy and isinstance(solver, str) and solver in SOLVERS and solver not in SDE_SOLVERS:
        raise ValueError(
            f"solver={solver!r} is an ODE solver, but the model has noise: use one of "
            f"{sorted(SDE_SOLVERS)} (default: 'euler', Euler--Maruyama, when `solver` "
            "is not given)"
        )
    return solver


def max_save_bytes() -> int:
    raw = os.environ.get(MAX_SAVE_ENV)
    if not raw:
        return DEFAULT_MAX_SAVE
    from .._sizes import parse_size

    return parse_size(raw, MAX_SAVE_ENV)


def check_save_size(steps: Steps, y0, turns=None) -> None:
    """Refuse a run whose saved states would exceed `max_save_bytes()`: shapes only,
    before anything is traced or allocated (under `vmap` the estimate is per element)."""
    saveat = steps.saveat
    if saveat.fn is not None or saveat.final:
        return  # an observable (or one state): not the state at every save
    n_run = steps.n - steps.n_burn
    if saveat.ts is not None:
        saves = int(np.shape(saveat.ts)[0])
    else:
        every = saveat.every or 1
        saves = n_run // every + 1 + (1 if n_run % every else 0)
    per_save = int(np.prod(np.shape(y0))) * np.dtype(y0.dtype).itemsize
    if turns is not None:
        per_save += sum(
            int(np.prod(t.shape)) * np.dtype(t.dtype).itemsize
            for t in jax.tree_util.tree_leaves(turns)
        )
    total = saves * per_save
    limit = max_save_bytes()
    if total > limit:
        from .._sizes import show_size

        raise ValueError(
            f"`saveat`: saving {saves} states of shape {tuple(np.shape(y0))} needs "
            f"{show_size(total)}, more than the limit of {show_size(limit)}; save less "
            "(saveat=kl.SaveAt(every=k), SaveAt(ts=...), SaveAt(final=True) or "
            f"SaveAt(fn=...)) or raise the limit with {MAX_SAVE_ENV}=..."
        )


def check_noise(noisy: bool, key, brownian: str, solver, adjoint):
    """The SDE default solver and the increments path's adjoint."""
    if not noisy:
        return solver, adjoint
    if key is None:
        raise ValueError("`key` is required: the model has noise (its diffusion)")
    if brownian not in BROWNIAN:
        raise ValueError(
            f"`brownian` must be one of {BROWNIAN}; got {brownian!r}"
            + nearest(str(brownian), BROWNIAN)
        )
    if solver == "rk4":  # the ODE default; the SDE default is Euler--Maruyama
        solver = "euler"
    if brownian == "increments":
        if adjoint is None:
            adjoint = dfx.ForwardMode()
        elif not isinstance(adjoint, dfx.ForwardMode):
            raise ValueError(
                "brownian='increments' supports only forward-mode gradients "
                "(adjoint=diffrax.ForwardMode()); use brownian='tree' for reverse mode"
            )
    return solver, adjoint


def is_fixed_step(stepsize_controller) -> bool:
    return stepsize_controller is None or isinstance(
        stepsize_controller, dfx.ConstantStepSize
    )


SCAN_ADJOINT_ENV = "KURALAB_SCAN_ADJOINT_MAX"
DEFAULT_SCAN_ADJOINT_MAX = 2 * 1024**3
#: State-sized residuals one fixed step stores for reverse mode under `ScanAdjoint`
#: (an upper estimate: RK4 keeps the four stage states and their sin/cos).
RESIDUALS_PER_STEP = 16


def scan_adjoint_max_bytes() -> int:
    raw = os.environ.get(SCAN_ADJOINT_ENV)
    if not raw:
        return DEFAULT_SCAN_ADJOINT_MAX
    from .._sizes import parse_size

    return parse_size(raw, SCAN_ADJOINT_ENV)


def check_adjoint(adjoint, fixed_step: bool, residual_bytes: int = 0):
    """The user's adjoint, or the default: `ScanAdjoint` for a fixed step (the step
    count is known, so reverse mode is one scan) when its stored residuals
    (`residual_bytes`, per vmap element) fit in `$KURALAB_SCAN_ADJOINT_MAX` (default
    2GB); `RecursiveCheckpointAdjoint` (bounded memory) otherwise."""
    if adjoint is None:
        if fixed_step and residual_bytes <= scan_adjoint_max_bytes():
            return ScanAdjoint()
        return dfx.RecursiveCheckpointAdjoint()
    if not isinstance(adjoint, ADJOINTS):
        raise ValueError(
            f"adjoint={type(adjoint).__name__}() is not supported by kl.simulate (it "
            "saves through diffrax SaveAt(subs=...) and retracts the state every step); "
            "use kl.ScanAdjoint() (default for a fixed step), "
            "diffrax.RecursiveCheckpointAdjoint() (default for adaptive steps), "
            "DirectAdjoint() or ForwardMode()"
        )
    return adjoint


def plan_steps(
    t0, t1, dt, burn_in, base, saveat, stepsize_controller, max_steps, *, delayed, noisy,
    brownian,
) -> Steps:
    if saveat is None:
        saveat = SaveAt(every=1)
    elif not isinstance(saveat, SaveAt):
        raise TypeError(f"`saveat` must be a kl.SaveAt; got {type(saveat).__name__}")
    n = num_steps(t0, t1, dt)
    adaptive = stepsize_controller is not None and not isinstance(
        stepsize_controller, dfx.ConstantStepSize
    )
    n_burn = 0
    if adaptive:
        if delayed:
            raise ValueError(
                "models with delays need a fixed step (solver 'euler', 'heun' or 'rk4' "
                "and no stepsize_controller): diffrax has no adaptive delay support"
            )
        if noisy and brownian == "increments":
            raise ValueError(
                "brownian='increments' cannot be used with adaptive steps; use 'tree'"
            )
        if not has_error_estimate(base):
            raise ValueError(
                f"solver {solver_name(base)!r} has no error estimate, so it cannot be "
                "used with an adaptive step-size controller; use 'tsit5', 'dopri5' or "
                "'bosh3', or wrap it in diffrax.HalfSolver"
            )
        if burn_in:
            raise ValueError(
                "`burn_in` needs a fixed step (no stepsize_controller): it is counted "
                "in steps"
            )
        if saveat.every is not None:
            # No step grid to count on: save on the dt grid instead.
            grid = t0 + (t1 - t0) * np.arange(0, n + 1, saveat.every) / n
            if grid[-1] != t1:
                grid = np.append(grid, t1)
            saveat = SaveAt(ts=jnp.asarray(grid), fn=saveat.fn)
        budget = max_steps if max_steps is not None else max(4096, 16 * n)
        steps = Steps(n, 0, dt, stepsize_controller, budget, saveat)
    else:
        if max_steps is not None and max_steps < n:
            raise ValueError(f"`max_steps`={max_steps} is less than the {n} fixed steps")
        dt0 = (t1 - t0) / n
        if burn_in:
            n_burn = round(burn_in / dt0)
            if abs(burn_in / dt0 - n_burn) > 1e-6 * max(1.0, n_burn) or n_burn < 1:
                raise ValueError(
                    f"`burn_in` must be a whole number of steps dt = {dt0:g}; got "
                    f"{burn_in:g} ({burn_in / dt0:g} steps)"
                )
        steps = Steps(n, n_burn, dt0, dfx.ConstantStepSize(), n, saveat)
    _check_ts(steps.saveat, t0, t0 + steps.n_burn * steps.dt0, t1)
    return steps


def _check_ts(saveat: SaveAt, t0: float, t_start: float, t1: float) -> None:
    if saveat.ts is None:
        return
    ts = jnp.asarray(saveat.ts)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"SaveAt `ts` must be a non-empty 1-D array; got {ts.shape}")
    if is_concrete(ts):
        tsn = np.asarray(ts)
        if np.any(np.diff(tsn) <= 0):
            raise ValueError("SaveAt `ts` must be strictly increasing")
        if tsn[0] < t_start - 1e-9 * abs(t_start) or tsn[-1] > t1 + 1e-9 * abs(t1):
            start = "t0 + burn_in" if t_start != t0 else "t0"
            raise ValueError(
                f"SaveAt `ts` must lie within [{start}, t1] = [{t_start}, {t1}]; "
                f"got [{tsn[0]}, {tsn[-1]}]"
            )


def sde_config(
    noisy: bool, brownian: str, base, t0: float, t1: float, n: int, *,
    model=None, y0=None, delayed: bool = False,
):
    """`(kind, levy area, tree tolerance, ito)` for a noisy model, else `None`.

    `ito` (static) is True when the model's noise is multiplicative (Stratonovich, with
    an Ito drift `model.ito_correction`) and the solver converges to the Ito solution:
    the drift then gets the correction (`solvers.noise_calculus`)."""
    if not noisy:
        return None
    levy = dfx.SpaceTimeLevyArea if needs_levy_area(base) else None
    # A dyadic resolution of [t0, t1] finer than the step: the path depends only on
    # (key, t0, t1), and runs with 2^k steps sample it at shared dyadic nodes.
    tol = (t1 - t0) / 2 ** math.ceil(math.log2(2 * n))
    ito = False
    if model is not None:
        # filter_eval_shape: a model may hold functions (a learned score, a schedule)
        correction = eqx.filter_eval_shape(lambda m, y: m.ito_correction(t0, y), model, y0)
        if correction is not None:
            calculus = noise_calculus(base, delayed)
            if calculus not in ("ito", "stratonovich"):
                raise ValueError(
                    "the model's noise is multiplicative (Noise(sensitivity=...), "
                    "Stratonovich): use solver 'euler' (Ito, drift corrected), 'heun' or "
                    f"'euler_heun' (Stratonovich); got {solver_name(base)!r}"
                )
            ito = calculus == "ito"
    return (brownian, levy, tol, ito)


def delay_config(model, y0, solver, noisy: bool, dt0: float):
    """Validate a delayed model's settings; return the static `(method, slots, kind)`:
    `kind` is the history (`"constant"` or a function) or `"kuranet"` (a warm-up run
    without delays fills `slots - 1` past steps)."""
    delays = model.sender_delays
    if delays is None:
        return None
    allowed = SDDE_SOLVERS if noisy else DELAY_SOLVERS
    if not isinstance(solver, str) or solver not in allowed:
        raise ValueError(
            f"models with delays{' and noise' if noisy else ''} need solver in "
            f"{allowed} (fixed step); got {solver!r}"
        )
    tau = delays.per_read(y0.shape[0], dt0)
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
        return ("euler", warm_steps + 1, "kuranet")
    n_slots = math.ceil(delays.bound(dt0) / dt0 - 1e-9) + 2
    return (solver, n_slots, delays.history)
