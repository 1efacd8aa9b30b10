"""Byte sizes as people write them (`20GB`, `512MiB`) and as messages show them."""

from __future__ import annotations

import math
import re

__all__ = ["parse_size", "show_size"]

_UNITS = {
    "": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}


def parse_size(text: str | int | float, what: str) -> int:
    """`"20GB"`, `"512MiB"`, `"1e9"` or a number -> bytes (ValueError naming `what`)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if m is None or m.group(2).lower() not in _UNITS:
            raise ValueError(
                f"{what} = {text!r}: expected a size such as 20GB, 512MiB or a number "
                "of bytes"
            )
        value, unit = float(m.group(1)), m.group(2).lower()
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} = {text!r}: expected a size > 0")
    return int(value * _UNITS[unit])


def show_size(n: float) -> str:
    """Bytes as a short decimal size: `1.2 GB`."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"
