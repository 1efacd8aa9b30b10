"""What `simulate` returns and saves: `RESULTS`, `SimulationError`, `SaveAt`,
`Trajectory`, and the check that turns a failed result into an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array

from .._misc import TWO_PI, is_concrete
from .._models.base import AbstractModel

__all__ = ["RESULTS", "SaveAt", "SimulationError", "Trajectory", "raise_on_failure"]


class RESULTS(dfx.RESULTS):  # pyright: ignore
    """Outcome of `simulate`: diffrax's results plus kuralab's own."""

    nonfinite_state = (
        "The state became non-finite (NaN or inf). Reduce `dt`, check the model "
        "parameters, or use an adaptive solver with a step-size controller."
    )


class SimulationError(RuntimeError):
    """Raised by `simulate(..., throw=True)` when the integration fails."""



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



class Trajectory(eqx.Module):
    """The result of `simulate`.

    **Attributes:**

    - `ts`: save times, shape `(time,)`.
    - `ys`: saved states `(time, *state_shape)` (phases wrapped to [-pi, pi)), or the
      saved `SaveAt.fn` outputs.
    - `turns`: the retraction's bookkeeping (`AbstractModel.pack`) when states are
      saved: for phase models the winding numbers `(time, osc)` (unwrapped phase =
      `ys + 2 pi turns`); `None` for models that keep none or with a `SaveAt.fn`.
    - `final`: the state at `t1` (always saved), `final_turns` its bookkeeping.
    - `result`: a `kl.RESULTS` value; `result == kl.RESULTS.successful` on success.
    - `stats`: diffrax statistics (`num_steps`, `num_accepted_steps`, ...).
    - `model`: the model that was integrated.
    - `solver`, `dt`, `t0`, `t1`, `burn_in`: how it was integrated (static metadata;
      nothing was saved before `t0 + burn_in`).
    - `events`: a `kl.EventLog` from `kl.simulate_events` (when each event fired),
      `None` from `kl.simulate`.

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
    burn_in: float = eqx.field(static=True, default=0.0)
    events: Any = None

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
        from ..io import trajectory_to_dataset

        return trajectory_to_dataset(self, batch_dims)



def raise_on_failure(traj: Trajectory) -> Trajectory:
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
