"""Couplings: operators over the oscillator axis, shared by phase and vector models.

- `base.py`: `AbstractOperator`, the one base of every coupling (`apply`, `n_osc`,
  `linear`, and the structure checks `symmetry_defect` / `is_symmetric` /
  `is_nonnegative` that replace stored tags);
- `phase.py`: `AbstractCoupling` (scalar weights K_ij) and `MeanField`, `DenseCoupling`,
  `SparseCoupling`, `LatticeCoupling`;
- `vector.py`: `AbstractVectorCoupling` (dim x dim blocks) and `BlockCoupling`,
  `LatticeBlockCoupling`, plus `coupling_blocks` and `is_autonomous`;
- `attention.py`: `AttentionCoupling` (state-dependent blocks);
- `conv.py`: `ChannelConvCoupling` (AKOrN's channel-mixing convolution, several
  oscillators per grid site).

Every name the former modules `_coupling.py`, `_vector_coupling.py` and `_attention.py`
defined is importable from here.
"""

from __future__ import annotations

from .._misc import (
    is_concrete,
    nonnegative_tag as nonnegative_tag,
    symmetric_tag as symmetric_tag,
)
from .attention import AttentionCoupling as AttentionCoupling
from .base import (
    HIGHEST as _HIGHEST,
    AbstractOperator as AbstractOperator,
    check_declared as check_declared,
    check_strength as check_strength,
    strength_nonnegative as strength_nonnegative,
)
from .conv import ChannelConvCoupling as ChannelConvCoupling
from .phase import (
    AbstractCoupling as AbstractCoupling,
    DenseCoupling as DenseCoupling,
    LatticeCoupling as LatticeCoupling,
    MeanField as MeanField,
    SparseCoupling as SparseCoupling,
    check_grid as check_grid,
)
from .vector import (
    AbstractVectorCoupling as AbstractVectorCoupling,
    BlockCoupling as BlockCoupling,
    LatticeBlockCoupling as LatticeBlockCoupling,
    coupling_blocks as coupling_blocks,
    is_autonomous as is_autonomous,
)

# Former private helpers of `_coupling.py`, kept for code that imported them.
_check_strength = check_strength


def _strength_tags(strength) -> frozenset:
    """Tags implied by a (concrete, constant) strength multiplier (former helper)."""
    if not is_concrete(strength):
        return frozenset()
    nonneg = bool(strength_nonnegative(strength))
    return frozenset({nonnegative_tag}) if nonneg else frozenset()


def _check_declared(tags: frozenset, proved: frozenset, name: str, concrete: bool):
    """Former helper: declared tags must hold whenever they can be checked."""
    missing = tags - proved if concrete else frozenset()
    if missing:
        raise ValueError(
            f"{name} was declared {sorted(map(repr, missing))} but its values are "
            "not; drop the tag or fix the values"
        )


__all__ = [
    "AbstractCoupling",
    "AbstractOperator",
    "AbstractVectorCoupling",
    "AttentionCoupling",
    "BlockCoupling",
    "ChannelConvCoupling",
    "DenseCoupling",
    "LatticeBlockCoupling",
    "LatticeCoupling",
    "MeanField",
    "SparseCoupling",
    "check_declared",
    "check_grid",
    "check_strength",
    "coupling_blocks",
    "is_autonomous",
    "nonnegative_tag",
    "strength_nonnegative",
    "symmetric_tag",
]
