"""`kl.learn.data`: synthetic data sets for the learning lines, generated in code.

Nothing is downloaded at run time: every generator takes a PRNG `key` first and returns
JAX (or NumPy, where stated) arrays. One private module per research line:

- `_kuranet`: `kuranet_disorder` (KuraNet cases I--III) and the 2-D point clouds
  `gmm`, `moons`, `circles`, `spirals` for cluster synchrony.
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
from ._orientation import (
    flow_fields as flow_fields,
    oriented_gratings as oriented_gratings,
    vm_mixture_logpdf as vm_mixture_logpdf,
    vm_mixture_params as vm_mixture_params,
    von_mises_mixture as von_mises_mixture,
)

__all__ = [
    "CASES",
    "circles",
    "flow_fields",
    "gmm",
    "kuranet_disorder",
    "moons",
    "oriented_gratings",
    "spirals",
    "vm_mixture_logpdf",
    "vm_mixture_params",
    "von_mises_mixture",
]
