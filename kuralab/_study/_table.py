"""Validating one TOML table at a time (`_Table`): unknown keys are rejected first,
with the nearest valid key suggested, then each key is read with its type and bounds,
so every error is one line naming the key path, the value and the expected form."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .spec import SpecError


def _show(value: Any) -> str:
    """A value as it would appear in TOML, shortened for one-line messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else str(value)
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, options: Iterable[str]) -> str:
    """A '; did you mean X?' hint, or '' if nothing is close (case-insensitive)."""
    lowered = {o.lower(): o for o in options}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[match[0]]!r}?" if match else ""


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_MISSING = object()


class _Table:
    """A TOML table being validated. Unknown keys are rejected on construction, so a
    typo is reported as such rather than as a missing key."""

    def __init__(self, path: str, data: Any, allowed: Iterable[str]):
        if not isinstance(data, dict):
            raise SpecError(f"{path} = {_show(data)}: expected a table")
        self.path = path
        self.data = data
        allowed = list(allowed)
        for key, value in data.items():
            if key not in allowed:
                hint = _suggest(key, allowed)
                raise SpecError(
                    f"{self.key(key)} = {_show(value)}: unknown key{hint} "
                    f"(valid keys: {', '.join(allowed)})"
                )

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, expected: str, default=_MISSING):
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise SpecError(f"{self.key(key)}: missing; expected {expected}")
        return default

    def fail(self, key: str, value, expected: str):
        raise SpecError(f"{self.key(key)} = {_show(value)}: expected {expected}")

    def number(
        self, key, *, default=_MISSING, gt=None, ge=None, expected=None
    ) -> float:
        bounds = (f" > {gt:g}" if gt is not None else "") + (
            f" >= {ge:g}" if ge is not None else ""
        )
        expected = expected or f"a finite number{bounds}"
        value = self.get(key, expected, default)
        if value is None:
            return None
        if not _is_number(value) or not math.isfinite(value):
            self.fail(key, value, expected)
        if (gt is not None and not value > gt) or (ge is not None and not value >= ge):
            self.fail(key, value, expected)
        return float(value)

    def integer(self, key, *, default=_MISSING, ge=None, expected=None) -> int:
        expected = expected or "an integer" + (f" >= {ge}" if ge is not None else "")
        value = self.get(key, expected, default)
        if value is None and default is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, value, expected)
        if ge is not None and value < ge:
            self.fail(key, value, expected)
        return value

    def string(self, key, *, default=_MISSING, choices=None, expected=None) -> str:
        if expected is None:
            expected = (
                "one of " + ", ".join(f'"{c}"' for c in choices)
                if choices is not None
                else "a string"
            )
        value = self.get(key, expected, default)
        if not isinstance(value, str):
            self.fail(key, value, expected)
        if choices is not None and value not in choices:
            raise SpecError(
                f"{self.key(key)} = {_show(value)}: expected {expected}"
                f"{_suggest(value, choices)}"
            )
        return value

    def boolean(self, key, *, default=_MISSING) -> bool:
        value = self.get(key, "true or false", default)
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")
        return value

    def table(self, key, allowed, *, required=True, what="") -> _Table:
        if key not in self.data:
            if required:
                raise SpecError(
                    f"{self.key(key)}: missing section; expected a [{self.key(key)}] "
                    f"table{what}"
                )
            return _Table(self.key(key), {}, allowed)
        return _Table(self.key(key), self.data[key], allowed)
