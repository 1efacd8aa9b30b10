"""`kl.learn.data`: synthetic data sets for the learning lines, generated in code.

Nothing is downloaded at run time: every generator takes a PRNG `key` first and returns
JAX (or NumPy, where stated) arrays. One private module per research line:

- `_kuranet`: `kuranet_disorder` (KuraNet cases I--III) and the 2-D point clouds
  `gmm`, `moons`, `circles`, `spirals` for cluster synchrony.
- `_sudoku`: `sudoku` (4x4 / 9x9 puzzles with unique solutions), `sudoku_solved`,
  `sudoku_mask` (AKOrN's Sudoku task).
"""

from ._kuranet import (
    CASES as CASES,
    circles as circles,
    gmm as gmm,
    kuranet_disorder as kuranet_disorder,
    moons as moons,
    spirals as spirals,
)
from ._sudoku import (
    sudoku as sudoku,
    sudoku_mask as sudoku_mask,
    sudoku_solved as sudoku_solved,
)

__all__ = [
    "CASES",
    "circles",
    "gmm",
    "kuranet_disorder",
    "moons",
    "spirals",
    "sudoku",
    "sudoku_mask",
    "sudoku_solved",
]
