"""The relative defect shared by the models' energy-theorem checks and `kl.check_lyapunov`."""

from __future__ import annotations

import math

__all__ = ["relative"]


def relative(num: float, den: float) -> float:
    """`num / den` as a relative defect: 0 when `num == 0`, inf when only `den` is 0."""
    if num == 0.0:
        return 0.0
    return num / den if den > 0 else math.inf
