"""`kl.learn.data`: synthetic data sets for the learning lines, generated in code.

Nothing is downloaded at run time: every generator takes a PRNG `key` first and returns
JAX (or NumPy, where stated) arrays. One private module per research line:

- `_kuranet`: `kuranet_disorder` (KuraNet cases I--III) and the 2-D point clouds
  `gmm`, `moons`, `circles`, `spirals` for cluster synchrony.
- `_sudoku`: `sudoku` (4x4 / 9x9 puzzles with unique solutions), `sudoku_solved`,
  `sudoku_mask` (AKOrN's Sudoku task).
- `_waves`: `adding_task` (the adding problem) and `rotating_shapes` (procedural bars
  and letters rotated frame by frame) for the topographic-wave line.
- `_orientation`: von Mises mixtures on the torus (`vm_mixture_params`,
  `von_mises_mixture`, `vm_mixture_logpdf`) and orientation fields
  (`oriented_gratings`, `flow_fields`) for orientation diffusion.
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
from ._waves import (
    SHAPES as SHAPES,
    adding_task as adding_task,
    rotating_shapes as rotating_shapes,
)
from ._orientation import (
    flow_fields as flow_fields,
    oriented_gratings as oriented_gratings,
    vm_mixture_logpdf as vm_mixture_logpdf,
    vm_mixture_params as vm_mixture_params,
    von_mises_mixture as von_mises_mixture,
)

__all__ = [
    "CASES",
    "SHAPES",
    "adding_task",
    "circles",
    "flow_fields",
    "gmm",
    "kuranet_disorder",
    "moons",
    "rotating_shapes",
    "spirals",
    "sudoku",
    "sudoku_mask",
    "sudoku_solved",
    "oriented_gratings",
    "vm_mixture_logpdf",
    "vm_mixture_params",
    "von_mises_mixture",
]
