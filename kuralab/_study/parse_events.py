"""`[[events]]` tables of a study spec (issue 20) -> `EventSpec`s, validated with
one-line `SpecError`s naming the key path (`events[1].at = 120.0: ...`).

```toml
[[events]]
name = "off"          # optional; labels the result's `event` coordinate
at = 50.0             # a time in [solve.t0, solve.t1] ...
action = "coupling"   # "coupling" (K -> scale K), "kick" (theta += delta), "stop", "record"
scale = 0.0

[[events]]
when = "R > 0.8"      # ... or a crossing of the order parameter R ("R > r" / "R < r")
after = 30.0          # optional: armed only from this time on
action = "stop"
```

The result gains `event_time` (grid..., event): the time each event fired, NaN if it
never did. A `stop` ends the run: saves after it are NaN, and so are reductions over a
window that contains them.
"""

from __future__ import annotations

import re

from ._table import _show, _Table
from .spec import EVENT_ACTIONS, EventSpec, SpecError

__all__ = ["parse_events"]

_WHEN = re.compile(r"^\s*R\s*([<>])\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")
_KEYS = ("name", "at", "when", "after", "action", "scale", "delta")


def _one(i: int, raw, t0: float, t1: float) -> EventSpec:
    t = _Table(f"events[{i}]", raw, _KEYS)
    name = t.string("name", default=f"event{i}")
    action = t.string("action", choices=tuple(EVENT_ACTIONS))
    if ("at" in raw) == ("when" in raw):
        raise SpecError(
            f"events[{i}]: expected exactly one of `at` (a time) or `when` (e.g. "
            f"\"R > 0.8\"); got {'both' if 'at' in raw else 'neither'}"
        )
    at = when = after = None
    if "after" in raw:
        if "when" not in raw:
            t.fail("after", raw["after"], "no `after` for an `at` event (only with `when`)")
        after = t.number("after")
        if not t0 <= after <= t1:
            t.fail("after", raw["after"],
                   f"a time in [solve.t0, solve.t1] = [{t0:g}, {t1:g}]")
    if "at" in raw:
        at = t.number("at")
        if not t0 <= at <= t1:
            t.fail("at", raw["at"], f"a time in [solve.t0, solve.t1] = [{t0:g}, {t1:g}]")
    else:
        when = t.string("when")
        m = _WHEN.match(when)
        if m is None or not 0.0 <= float(m.group(2)) <= 1.0:
            t.fail("when", when, 'a threshold crossing "R > r" or "R < r" with r in [0, 1]')
        when = f"R {m.group(1)} {float(m.group(2))!r}"
    values = {}
    needed = EVENT_ACTIONS[action]
    for key in ("scale", "delta"):
        if key in raw and key != needed:
            raise SpecError(
                f"events[{i}].{key} = {_show(raw[key])}: unexpected for action = "
                f"\"{action}\"" + (f" (it takes `{needed}`)" if needed else " (no value)")
            )
    if needed is not None:
        values[needed] = t.number(needed)
    return EventSpec(name=name, action=action, at=at, when=when, after=after, **values)


def parse_events(data: dict, spec_solve, model, sweep, observe) -> tuple[EventSpec, ...]:
    """The spec's `events` array of tables (none: `()`), checked against the run."""
    raw = data.get("events", [])
    if isinstance(raw, dict):
        raise SpecError(
            "events: expected an array of tables ([[events]], double brackets); got a "
            "single [events] table"
        )
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise SpecError(f"events = {_show(raw)}: expected [[events]] tables")
    events = tuple(_one(i, e, spec_solve.t0, spec_solve.t1) for i, e in enumerate(raw))
    if not events:
        return ()
    names = [e.name for e in events]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise SpecError(f"events[{i}].name = {_show(n)}: expected a unique name")
    if model.kind != "kuramoto":
        raise SpecError(
            f"events: expected model.kind = \"kuramoto\" (events act on phases and the "
            f"coupling K); got {_show(model.kind)}"
        )
    if model.delayed:
        raise SpecError(
            "events: not available for a model with delays ([model.delays] or "
            "sweep.tau): a restart after an event would reset the delay history"
        )
    if model.noisy and model.noise.brownian != "tree":
        raise SpecError(
            f"model.noise.brownian = {_show(model.noise.brownian)}: expected \"tree\" "
            "with [[events]] (every segment reads one Brownian tree on [t0, t1])"
        )
    if sweep.adiabatic:
        raise SpecError('events: not available with sweep.mode = "adiabatic"')
    if observe.lyapunov:
        raise SpecError("observe.lyapunov = true: expected false with [[events]]")
    return events
