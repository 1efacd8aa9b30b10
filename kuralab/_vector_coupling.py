r"""Couplings for vector (sphere) oscillators that mix the components of the vectors.

A phase-model coupling (`kl.AbstractCoupling`: `MeanField`, `DenseCoupling`,
`SparseCoupling`, `LatticeCoupling`) applied to sphere states `x` of shape `(osc, dim)`
gives the scalar-block coupling $J_{ij} = K_{ij} I_{\mathrm{dim}}$: it never mixes the
components. The couplings here act on the whole vector:

$$(Jx)_i = \sum_j J_{ij}\, x_j, \qquad J_{ij} \in \mathbb{R}^{\mathrm{dim}\times\mathrm{dim}}$$

(row i receives, as everywhere in kuralab). `AbstractVectorCoupling.apply(x, t)` maps
`(osc, dim) -> (osc, dim)`. Linear ones (`BlockCoupling`, `LatticeBlockCoupling`) have
fixed blocks, materialised by `coupling_blocks`; state-dependent ones
(`kl.AttentionCoupling`) declare `linear = False`: their $J_{ij}(x)$ changes with the
state, so they are not linear operators and the AKOrN Lyapunov theorem does not apply to
them.

The tag `kl.symmetric_tag` on a vector coupling means *block symmetry*
$J_{ij} = J_{ji}^\top$, i.e. the full `(osc*dim, osc*dim)` matrix is symmetric (for scalar
blocks this is $K_{ij} = K_{ji}$).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._coupling import (
    AbstractCoupling,
    _check_declared,
    _check_strength,
    check_grid,
)
from ._misc import as_tags, check_finite, is_concrete, symmetric_tag
from ._schedules import AbstractSchedule, evaluate

_HIGHEST = jax.lax.Precision.HIGHEST


class AbstractVectorCoupling(eqx.Module):
    """A coupling field for sphere states: `x` of shape `(osc, dim)` to `(Jx)` of the
    same shape, mixing vector components.

    Subclasses declare `linear` (class attribute): `True` when `apply` is a fixed linear
    map of `x` (then `coupling_blocks` materialises it and energies are quadratic forms),
    `False` for state-dependent couplings such as attention.
    """

    tags: eqx.AbstractVar[frozenset]
    linear: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def apply(self, x: Float[Array, "osc dim"], t=0.0) -> Float[Array, "osc dim"]:
        """The coupling field $(Jx)_i$ at state `x` and time `t`."""

    @property
    @abc.abstractmethod
    def n_osc(self) -> int | None:
        """Number of oscillators this coupling is built for (None: any)."""

    @property
    @abc.abstractmethod
    def dim(self) -> int | None:
        """Vector dimension this coupling is built for (None: any)."""

    @property
    def symmetric(self) -> bool:
        """Declared or proved block symmetry $J_{ij} = J_{ji}^\\top$."""
        return symmetric_tag in self.tags


def is_autonomous(coupling) -> bool:
    """True when a coupling does not depend on time (no schedule multiplier)."""
    if coupling is None:
        return True
    leaves = jax.tree_util.tree_leaves(
        coupling, is_leaf=lambda v: isinstance(v, AbstractSchedule)
    )
    return not any(isinstance(v, AbstractSchedule) for v in leaves)


def coupling_blocks(coupling, n: int, dim: int, t=0.0, dtype=None) -> Array:
    r"""Materialise a linear coupling as blocks `J[i, j]` of shape `(n, n, dim, dim)`.

    For a phase-model coupling (`kl.AbstractCoupling`) the blocks are
    $K_{ij} I_{\mathrm{dim}}$; for a linear `AbstractVectorCoupling` they are read off by
    applying it to the `n * dim` unit vectors. O((n dim)^2) memory: for theorem checks.

    **Raises:** `ValueError` for a state-dependent (non-linear) coupling.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    if coupling is None:
        return jnp.zeros((n, n, dim, dim), dtype)
    if isinstance(coupling, AbstractCoupling):
        K = coupling.as_matrix(n, t).astype(dtype)
        return K[:, :, None, None] * jnp.eye(dim, dtype=dtype)
    if not isinstance(coupling, AbstractVectorCoupling):
        raise TypeError(f"not a kuralab coupling: {type(coupling).__name__}")
    if not coupling.linear:
        raise ValueError(
            f"{type(coupling).__name__} is state-dependent (not linear): it has no fixed "
            "blocks J_ij"
        )
    basis = jnp.eye(n * dim, dtype=dtype).reshape(n * dim, n, dim)
    cols = jax.vmap(lambda e: coupling.apply(e, t))(
        basis
    )  # (n*dim [j b], n [i], dim [a])
    cols = cols.reshape(n, dim, n, dim)  # (j, b, i, a)
    return jnp.transpose(cols, (2, 0, 3, 1))  # (i, j, a, b)


class BlockCoupling(AbstractVectorCoupling):
    r"""Dense block coupling $(Jx)_i = s \sum_j J_{ij} x_j$ with arbitrary
    `dim x dim` blocks $J_{ij}$ (row i receives).

    **Arguments:**

    - `blocks`: array of shape `(osc, osc, dim, dim)`; `blocks[i, j]` is $J_{ij}$.
    - `strength`: scalar multiplier or schedule `s(t)` (default 1).
    - `tags`: declared structure; `kl.symmetric_tag` means $J_{ij} = J_{ji}^\top$ and is
      proved automatically when exact, checked when declared.

    Scalar blocks $K_{ij} I$ are cheaper as `kl.DenseCoupling(K)`.
    """

    blocks: Array
    strength: ArrayLike | AbstractSchedule
    tags: frozenset = eqx.field(static=True)
    linear = True

    def __init__(self, blocks: ArrayLike, strength=1.0, tags=()):
        blocks = jnp.asarray(blocks)
        if (
            blocks.ndim != 4
            or blocks.shape[0] != blocks.shape[1]
            or blocks.shape[2] != blocks.shape[3]
        ):
            raise ValueError(
                "`blocks` must have shape (osc, osc, dim, dim) (blocks[i, j] = J_ij); got "
                f"shape {blocks.shape}"
            )
        if not jnp.issubdtype(blocks.dtype, jnp.floating):
            blocks = blocks.astype(jnp.result_type(float))
        check_finite("blocks", blocks)
        declared = as_tags(tags)
        concrete = is_concrete(blocks)
        proved = frozenset()
        if concrete:
            b = np.asarray(blocks)
            if np.array_equal(b, np.transpose(b, (1, 0, 3, 2))):
                proved |= {symmetric_tag}
        declared_other = declared - {symmetric_tag}
        if declared_other:
            raise ValueError(
                f"BlockCoupling supports only kl.symmetric_tag; got {sorted(map(repr, declared_other))}"
            )
        _check_declared(declared, proved, "BlockCoupling", concrete)
        self.blocks = blocks
        self.strength = _check_strength(strength)
        self.tags = declared | proved

    @property
    def n_osc(self) -> int:
        return self.blocks.shape[0]

    @property
    def dim(self) -> int:
        return self.blocks.shape[2]

    def apply(self, x, t=0.0):
        x = jnp.asarray(x)
        out = jnp.einsum(
            "ijab,jb->ia", self.blocks.astype(x.dtype), x, precision=_HIGHEST
        )
        return evaluate(self.strength, t) * out


class LatticeBlockCoupling(AbstractVectorCoupling):
    r"""A local kernel of `dim x dim` blocks on a 1-D or 2-D grid (a channel-mixing
    convolution): $(Jx)_i = s \sum_d W_d\, x_{i+d}$.

    This is AKOrN's `J="conv"` connectivity for one oscillator per grid site (the
    reference `Conv2d(C, C, k)` with `C = dim` channels, without bias). Oscillators are the
    sites in row-major order (`osc = rows * cols`). `kernel[c + d]` (c the centre index)
    is the block $W_d$ applied to the neighbour at displacement `d` from the receiver.

    **Arguments:**

    - `kernel`: `(k, dim, dim)` or `(kh, kw, dim, dim)` with odd spatial sizes;
      `kernel[..., a, b]` maps input component `b` to output component `a`.
    - `shape`: grid shape `(L,)` or `(rows, cols)`, same spatial rank as the kernel.
    - `boundary`: `"periodic"` (default) or `"open"`.
    - `strength`: scalar multiplier or schedule (default 1).
    - `tags`: declared structure; block symmetry holds iff $W_{-d} = W_d^\top$, proved
      automatically when exact.
    """

    kernel: Array
    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True)
    strength: ArrayLike | AbstractSchedule
    tags: frozenset = eqx.field(static=True)
    linear = True

    def __init__(
        self,
        kernel: ArrayLike,
        shape: Sequence[int],
        boundary: str = "periodic",
        strength=1.0,
        tags=(),
    ):
        kernel = jnp.asarray(kernel)
        if not jnp.issubdtype(kernel.dtype, jnp.floating):
            kernel = kernel.astype(jnp.result_type(float))
        shape = tuple(int(s) for s in shape)
        if kernel.ndim not in (3, 4) or kernel.shape[-1] != kernel.shape[-2]:
            raise ValueError(
                "`kernel` must have shape (k, dim, dim) or (kh, kw, dim, dim); got shape "
                f"{kernel.shape}"
            )
        nd = kernel.ndim - 2
        spatial = kernel.shape[:nd]
        check_grid(spatial, shape, boundary)
        check_finite("kernel", kernel)
        declared = as_tags(tags)
        if declared - {symmetric_tag}:
            raise ValueError("LatticeBlockCoupling supports only kl.symmetric_tag")
        concrete = is_concrete(kernel)
        proved = frozenset()
        if concrete:
            k = np.asarray(kernel)
            flipped = np.swapaxes(k[(slice(None, None, -1),) * nd], -1, -2)
            if np.array_equal(k, flipped):
                proved |= {symmetric_tag}
        _check_declared(declared, proved, "LatticeBlockCoupling", concrete)
        self.kernel = kernel
        self.shape = shape
        self.boundary = boundary
        self.strength = _check_strength(strength)
        self.tags = declared | proved

    @property
    def n_osc(self) -> int:
        return math.prod(self.shape)

    @property
    def dim(self) -> int:
        return self.kernel.shape[-1]

    def apply(self, x, t=0.0):
        x = jnp.asarray(x)
        nd = len(self.shape)
        grid = x.reshape(self.shape + (self.dim,))
        grid = jnp.moveaxis(grid, -1, 0)[None]  # (1, dim, *grid)
        half = [k // 2 for k in self.kernel.shape[:nd]]
        pad = [(0, 0), (0, 0)] + [(h, h) for h in half]
        mode = "wrap" if self.boundary == "periodic" else "constant"
        grid = jnp.pad(grid, pad, mode=mode)
        # (k..., out, in) -> (out, in, k...)
        rhs = jnp.moveaxis(self.kernel.astype(x.dtype), (-2, -1), (0, 1))
        spatial = "HW" if nd == 2 else "H"
        dn = ("NC" + spatial, "OI" + spatial, "NC" + spatial)
        out = jax.lax.conv_general_dilated(
            grid, rhs, (1,) * nd, "VALID", dimension_numbers=dn, precision=_HIGHEST
        )
        out = jnp.moveaxis(out[0], 0, -1).reshape((self.n_osc, self.dim))
        return evaluate(self.strength, t) * out
