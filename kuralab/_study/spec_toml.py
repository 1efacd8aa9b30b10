"""`StudySpec.to_toml`: a spec written back as canonical TOML text (the inverse of
`kuralab._study.parse`: `parse_spec(spec.to_toml()) == spec`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: spec.py imports this module lazily in `to_toml`
    from .spec import EventSpec, KuramotoSpec, SphereSpec, StudySpec

#: the default `[model.initial_phases] spread` (spec.FULL_CIRCLE): not written out
FULL_CIRCLE = 2 * math.pi


def _delay_items(d) -> list:
    if getattr(d, "kind", None) == "edges":  # an EdgeDelaySpec: kind first, as written
        return [("kind", d.kind), ("speed", d.speed), ("radius", d.radius),
                ("distance", d.distance)]
    return list(dataclasses.asdict(d).items())


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return (
            '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        )
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _toml_table(header: str, items: Iterable[tuple[str, Any]]) -> str:
    lines = [f"[{header}]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in items if v is not None]
    return "\n".join(lines) + "\n"


def _model_toml(m: KuramotoSpec | SphereSpec) -> list[str]:
    c, f = m.coupling, m.frequencies
    if m.kind == "sphere":  # a SphereSpec
        return [
            _toml_table(
                "model",
                [
                    ("kind", m.kind),
                    ("n", m.n),
                    ("dim", m.dim),
                    ("rotation", m.rotation),
                ],
            ),
            _toml_table("model.frequencies", dataclasses.asdict(f).items()),
            _toml_table("model.coupling", [("kind", c.kind), ("K", c.K)]),
            *(
                [_toml_table("model.stimulus", [("h", m.stimulus.h)])]
                if m.stimulus is not None
                else []
            ),
        ]
    return [
        _toml_table("model", [("kind", m.kind), ("n", m.n)]),
        _toml_table("model.frequencies", dataclasses.asdict(f).items()),
        _toml_table(
            "model.coupling",
            [("kind", c.kind), ("K", c.K), ("lag", c.lag)]
            + (c.network.toml_items() if c.network is not None else []),
        ),
        *(
            [_toml_table("model.noise", dataclasses.asdict(m.noise).items())]
            if m.noise is not None
            else []
        ),
        *(
            [_toml_table("model.delays", _delay_items(m.delays))]
            if m.delays is not None
            else []
        ),
        *(
            [_toml_table("model.initial_phases", [("spread", m.initial_phases.spread)])]
            if m.initial_phases.spread != FULL_CIRCLE
            else []
        ),
    ]


def to_toml(spec: StudySpec) -> str:
    # `energy` is written only when on: the canonical text (and so the chunk store's
    # spec hash) of a spec without it is what it was before the key existed.
    # The same for `omega_z` (TOML key `Omega_Z`).
    observe = [
        ("Omega_Z" if k == "omega_z" else k, v)
        for k, v in dataclasses.asdict(spec.observe).items()
        if k not in ("energy", "omega_z") or v
    ]
    parts = [
        _toml_table(
            "study",
            [("name", spec.study.name), ("description", spec.study.description)],
        ),
        *_model_toml(spec.model),
        _toml_table(
            "sweep",
            [
                *([("n", spec.sweep.sizes)] if spec.sweep.sizes else []),
                *spec.sweep.axes,
                ("seeds", spec.sweep.seeds),
                *(
                    [("mode", spec.sweep.mode), ("along", spec.sweep.along)]
                    if spec.sweep.adiabatic
                    else []
                ),
            ],
        ),
        _toml_table("solve", dataclasses.asdict(spec.solve).items()),
        _toml_table("observe", observe),
        _toml_table("output", dataclasses.asdict(spec.output).items()),
        *[_event_toml(e) for e in spec.events],
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------
# Events (issue 20): [[events]] tables, parsed by kuralab._study.parse_events
# ---------------------------------------------------------------------------------

#: Event actions a spec may name -> the key holding their value (None: no value).


def _event_toml(e: EventSpec) -> str:
    return "[[events]]\n" + "".join(
        f"{k} = {_toml_value(v)}\n"
        for k, v in dataclasses.asdict(e).items()
        if v is not None
    )
