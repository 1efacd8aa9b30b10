"""When an event happens: `At` (a given time) and `When` (a scalar condition on the
state crosses zero), and `EventLog`, the record of what happened in a run."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from .._misc import is_concrete
from .actions import AbstractAction

__all__ = ["At", "EventLog", "When", "check_events"]

DIRECTIONS = {None: None, "both": None, "up": True, "down": False}


def _actions(action, who: str) -> tuple[AbstractAction, ...]:
    acts = tuple(action) if isinstance(action, list | tuple) else (action,)
    for a in acts:
        if not isinstance(a, AbstractAction):
            raise TypeError(
                f"{who} `action` must be a kuralab event action (kl.ScaleCoupling, "
                "kl.RemoveEdges, kl.Kick, kl.SetParameter, kl.Stop) or a list of them; "
                f"got {type(a).__name__}"
            )
    return acts


class At(eqx.Module):
    """An event at a given time `t`: apply `action` (one action or a list, applied in
    order) to the model and state at `t`.

    **Arguments:**

    - `t`: the time (same units as `t0`, `t1`); must lie in `[t0, t1]`.
    - `action`: a `kl.ScaleCoupling`, `kl.RemoveEdges`, `kl.Kick`, `kl.SetParameter`,
      `kl.Stop`, or a list of them (an empty list only records the time).
    - `name`: label in the event record (default `"<index>_at"`).

    The integration stops exactly at `t` (the step before is shortened), the state saved
    at `t` is the one before the action, and integration restarts from the changed
    state. Events at the same time fire in list order.
    """

    t: Float[Array, ""]
    actions: tuple[AbstractAction, ...]
    name: str | None = eqx.field(static=True)

    def __init__(self, t: float, action, *, name: str | None = None):
        t = jnp.asarray(t)
        if t.ndim != 0 or not jnp.issubdtype(t.dtype, jnp.number):
            raise ValueError(f"At `t` must be a real scalar time; got shape {t.shape}")
        if is_concrete(t) and not np.isfinite(np.asarray(t)):
            raise ValueError(f"At `t` must be finite; got {float(t)}")
        self.t = t
        self.actions = _actions(action, "At")
        self.name = name


class When(eqx.Module):
    r"""An event when `cond(t, y)` crosses zero: apply `action` at the crossing.

    **Arguments:**

    - `cond`: `cond(t, y) -> scalar`, a real-valued function of the time and the model
      state `y` (phases wrapped to [-pi, pi); continuous in `y` across the wrap), e.g.
      `lambda t, y: jnp.abs(kl.order_parameter(y)) - 0.8`. It must return a real
      scalar (shape `()`): checked when the run is set up. Define it once at module level
      (a new function object means a new compilation).
    - `action`: as for `kl.At`.
    - `direction`: `"up"` (fires when `cond` goes from <= 0 to > 0), `"down"` (from > 0 to
      <= 0) or `None`/`"both"` (any sign change; default).
    - `after`: arm the condition only from this time on (default: from `t0`); before
      it the condition counts as positive for `"up"`/`None` and negative for
      `"down"`, so an `"up"` event fires at the first rise through zero after
      `after` (not at `after` if `cond` is already positive there). E.g. the time to
      resynchronise after the coupling comes back on at `t_on`: `after=t_on`.
    - `name`: label in the event record (default `"<index>_when"`).

    The sign is tested at the end of every step; on a change the crossing time is then
    located by bisection on the solver's dense output over that step (diffrax's
    `Event` with an `optimistix.Bisection` root finder; the sign change brackets the
    root, which Newton's method does not keep when the interpolant is not smooth within
    a step), to `root_tol` in time and in `cond`. Each
    `When` fires at most once per run (a crossing, not a level: a condition that
    starts positive does not fire an `"up"` event until it has come down and gone up
    again).
    """

    cond: Callable = eqx.field(static=True)
    actions: tuple[AbstractAction, ...]
    direction: bool | None = eqx.field(static=True)
    name: str | None = eqx.field(static=True)
    after: Float[Array, ""] | None

    def __init__(self, cond: Callable, action, *, direction: str | None = None,
                 after: float | None = None, name: str | None = None):
        if not callable(cond):
            raise TypeError(
                f"When `cond` must be a function cond(t, y) -> scalar; got "
                f"{type(cond).__name__}"
            )
        if direction not in DIRECTIONS:
            raise ValueError(
                f"When `direction` must be 'up', 'down' or None; got {direction!r}"
            )
        self.cond = cond
        self.actions = _actions(action, "When")
        self.direction = DIRECTIONS[direction]
        self.name = name
        if after is not None:
            after = jnp.asarray(after)
            if after.ndim != 0 or (is_concrete(after) and not np.isfinite(np.asarray(after))):
                raise ValueError(f"When `after` must be a finite scalar time; got {after}")
        self.after = after


class EventLog(eqx.Module):
    """What happened in a run of `kl.simulate_events` (`Trajectory.events`).

    **Attributes:**

    - `names`: one label per event, in the order given (static).
    - `kinds`: `"at"` or `"when"` per event (static).
    - `times`: `(event,)` time each event fired, NaN if it never did.
    - `fired`: `(event,)` booleans.
    - `t_end`: the time the run ended (`t1`, or the time of a `kl.Stop`).

    Under `jax.vmap` the arrays gain leading batch axes.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    kinds: tuple[str, ...] = eqx.field(static=True)
    times: Float[Array, "*batch event"]
    fired: Bool[Array, "*batch event"]
    t_end: Float[Array, "*batch"]


def _label(i: int, event) -> str:
    if event.name is not None:
        return str(event.name)
    kind = "at" if isinstance(event, At) else "when"
    acts = "+".join(type(a).__name__ for a in event.actions)
    return f"{i}_{kind}_{acts}"


def check_events(
    events: Sequence, model, y0, t0: float, t1: float
) -> tuple[tuple, tuple[str, ...]]:
    """Validate `events` against the model and the time span; return them as a tuple and
    their unique labels. One-line errors name the event by its index."""
    if isinstance(events, At | When):
        events = [events]
    if not isinstance(events, list | tuple):
        raise TypeError(
            f"`events` must be a list of kl.At / kl.When; got {type(events).__name__}"
        )
    labels = []
    for i, ev in enumerate(events):
        if not isinstance(ev, At | When):
            raise TypeError(
                f"`events[{i}]` must be a kl.At or kl.When; got {type(ev).__name__}"
            )
        if isinstance(ev, At) and is_concrete(ev.t):
            t = float(ev.t)
            if not t0 <= t <= t1:
                raise ValueError(
                    f"`events[{i}]` time t = {t:g} lies outside [t0, t1] = [{t0:g}, {t1:g}]"
                )
        if isinstance(ev, When) and ev.after is not None and is_concrete(ev.after):
            t = float(ev.after)
            if not t0 <= t <= t1:
                raise ValueError(
                    f"`events[{i}]` When `after` = {t:g} lies outside [t0, t1] = "
                    f"[{t0:g}, {t1:g}]"
                )
        if isinstance(ev, When):
            out = jax.eval_shape(ev.cond, jnp.asarray(t0, y0.dtype), y0)
            leaves = jax.tree_util.tree_leaves(out)
            if (
                len(leaves) != 1
                or leaves[0].shape != ()
                or not jnp.issubdtype(leaves[0].dtype, jnp.floating)
            ):
                got = (
                    f"shape {leaves[0].shape}, dtype {leaves[0].dtype}"
                    if len(leaves) == 1
                    else f"a PyTree of {len(leaves)} leaves"
                )
                raise ValueError(
                    f"`events[{i}]` When `cond(t, y)` must return a real floating scalar "
                    f"(shape ()) whose zero crossing is the event; got {got}"
                )
        for a in ev.actions:
            a.check(model, y0)
        labels.append(_label(i, ev))
    if len(set(labels)) != len(labels):
        raise ValueError(f"event names must be unique; got {labels}")
    return tuple(events), tuple(labels)
