"""One-line argument checks shared by `kuralab.learn` (messages name the argument)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def check_choice(name: str, value, options: Sequence[str]) -> None:
    """`value` must be one of `options`; else a ValueError naming `name`."""
    if not isinstance(value, str) or value not in options:
        match = difflib.get_close_matches(str(value), list(options), n=1, cutoff=0.6)
        hint = f" (did you mean {match[0]!r}?)" if match else ""
        raise ValueError(f"`{name}` must be one of {tuple(options)}; got {value!r}{hint}")


def check_steps(name: str, value, minimum: int = 0) -> int:
    """A whole number of steps >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum} (Euler steps); got {value!r}")
    return value
