"""`kl.learn.data`: synthetic data sets for the learning lines, generated in code.

Nothing is downloaded at run time: every generator takes a PRNG `key` first and returns
JAX (or NumPy, where stated) arrays. One private module per research line:

- `_kuranet`: `kuranet_disorder` (KuraNet cases I--III) and the 2-D point clouds
  `gmm`, `moons`, `circles`, `spirals` for cluster synchrony.
"""

from ._kuranet import (
    CASES as CASES,
    circles as circles,
    gmm as gmm,
    kuranet_disorder as kuranet_disorder,
    moons as moons,
    spirals as spirals,
)

__all__ = [
    "CASES",
    "circles",
    "gmm",
    "kuranet_disorder",
    "moons",
    "spirals",
]
