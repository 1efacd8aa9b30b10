r"""Couplings for vector (sphere) oscillators that mix the components of the vectors.

A scalar-weight coupling (`kl.AbstractCoupling`: `MeanField`, `DenseCoupling`,
`SparseCoupling`, `LatticeCoupling`) applied to sphere states `x` of shape `(osc, dim)`
gives the scalar-block coupling $J_{ij} = K_{ij} I_{\mathrm{dim}}$: it never mixes the
components. The couplings here act on the whole vector:

$$(Jx)_i = \sum_j J_{ij}\, x_j, \qquad J_{ij} \in \mathbb{R}^{\mathrm{dim}\times\mathrm{dim}}$$

(row i receives, as everywhere in kuralab). `AbstractVectorCoupling.apply(x, t)` maps
`(osc, dim) -> (osc, dim)`. Linear ones (`BlockCoupling`, `LatticeBlockCoupling`; `linear`
is `True` by default) have fixed blocks, materialised by `coupling_blocks`;
state-dependent ones (`kl.AttentionCoupling`) set `linear: ClassVar[bool] = False`: their
$J_{ij}(x)$ changes with the state, so they are not linear operators and the AKOrN
Lyapunov theorem does not apply to them.

Symmetry of a vector coupling means *block symmetry* $J_{ij} = J_{ji}^\top$, i.e. the full
`(osc*dim, osc*dim)` matrix is symmetric (for scalar blocks this is $K_{ij} = K_{ji}$).
It is checked on the current values (`is_symmetric()`, `symmetry_defect()`).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real

from .._custom_types import ScalarLike, SphereState
from .._misc import as_tags, check_finite, symmetric_tag
from .._schedules import AbstractSchedule, evaluate
from .base import HIGHEST, AbstractOperator, Strength, check_strength, guard_declared
from .phase import AbstractCoupling, check_grid, grid_convolve


class AbstractVectorCoupling(AbstractOperator):
    """A coupling field for sphere states: `x` of shape `(osc, dim)` to `(Jx)` of the
    same shape, mixing vector components.

    A subclass implements `apply`, `n_osc` and `dim`. `linear` is `True` unless the
    subclass says otherwise: a state-dependent coupling (such as attention) declares

    ```python
    class MyAttention(kl.AbstractVectorCoupling):
        linear: ClassVar[bool] = False
        ...
    ```

    For a linear coupling of known size, block symmetry is checked by materialising
    `coupling_blocks`; override `_asymmetry` for a cheaper exact check.
    """

    @abc.abstractmethod
    def apply(self, x: SphereState, t: ScalarLike = 0.0) -> SphereState:
        """The coupling field $(Jx)_i$ at state `x` and time `t`."""

    @property
    @abc.abstractmethod
    def dim(self) -> int | None:
        """Vector dimension this coupling is built for (None: any)."""

    def _asymmetry(self):
        n, d = self.n_osc, self.dim
        if not self.linear or n is None or d is None:
            return super()._asymmetry()
        return _block_asymmetry(coupling_blocks(self, n, d))


def _block_asymmetry(blocks):
    bt = jnp.transpose(blocks, (1, 0, 3, 2))
    return jnp.max(jnp.abs(blocks - bt)), jnp.max(jnp.abs(blocks))


def is_autonomous(coupling) -> bool:
    """True when a coupling does not depend on time (no schedule multiplier)."""
    if coupling is None:
        return True
    leaves = jax.tree_util.tree_leaves(
        coupling, is_leaf=lambda v: isinstance(v, AbstractSchedule)
    )
    return not any(isinstance(v, AbstractSchedule) for v in leaves)


def coupling_blocks(
    coupling, n: int, dim: int, t: ScalarLike = 0.0, dtype=None
) -> Float[Array, "osc osc dim dim"]:
    r"""Materialise a linear coupling as blocks `J[i, j]` of shape `(n, n, dim, dim)`.

    For a scalar-weight coupling (`kl.AbstractCoupling`) the blocks are
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


def _only_symmetric(tags, name: str) -> frozenset:
    declared = as_tags(tags)
    other = declared - {symmetric_tag}
    if other:
        raise ValueError(
            f"{name} supports only kl.symmetric_tag; got {sorted(map(repr, other))}"
        )
    return declared


class BlockCoupling(AbstractVectorCoupling):
    r"""Dense block coupling $(Jx)_i = s \sum_j J_{ij} x_j$ with arbitrary
    `dim x dim` blocks $J_{ij}$ (row i receives).

    **Arguments:**

    - `blocks`: array of shape `(osc, osc, dim, dim)`; `blocks[i, j]` is $J_{ij}$.
    - `strength`: scalar multiplier or schedule `s(t)` (default 1).
    - `tags`: `kl.symmetric_tag` asserts $J_{ij} = J_{ji}^\top$; checked now, not
      stored (`is_symmetric()` checks the current blocks).

    Scalar blocks $K_{ij} I$ are cheaper as `kl.DenseCoupling(K)`.
    """

    blocks: Float[Array, "osc osc dim dim"]
    strength: ScalarLike | AbstractSchedule

    def __init__(
        self,
        blocks: Real[ArrayLike, "osc osc dim dim"],
        strength: Strength = 1.0,
        tags=(),
    ):
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
        declared = _only_symmetric(tags, "BlockCoupling")
        self.blocks = blocks
        self.strength = check_strength(strength)
        self.blocks = guard_declared(self, declared, "BlockCoupling", blocks)

    @property
    def n_osc(self) -> int:
        return self.blocks.shape[0]

    @property
    def dim(self) -> int:
        return self.blocks.shape[2]

    def apply(self, x: SphereState, t: ScalarLike = 0.0) -> SphereState:
        x = jnp.asarray(x)
        out = jnp.einsum(
            "ijab,jb->ia", self.blocks.astype(x.dtype), x, precision=HIGHEST
        )
        return evaluate(self.strength, t) * out

    def _asymmetry(self):
        return _block_asymmetry(self.blocks)


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
    - `tags`: `kl.symmetric_tag` asserts block symmetry, which holds iff
      $W_{-d} = W_d^\top$; checked now, not stored.
    """

    kernel: Float[Array, "*k dim dim"]
    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True)
    strength: ScalarLike | AbstractSchedule

    def __init__(
        self,
        kernel: Real[ArrayLike, "*k dim dim"],
        shape: Sequence[int],
        boundary: str = "periodic",
        strength: Strength = 1.0,
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
        check_grid(kernel.shape[:nd], shape, boundary)
        check_finite("kernel", kernel)
        declared = _only_symmetric(tags, "LatticeBlockCoupling")
        self.kernel = kernel
        self.shape = shape
        self.boundary = boundary
        self.strength = check_strength(strength)
        self.kernel = guard_declared(self, declared, "LatticeBlockCoupling", kernel)

    @property
    def n_osc(self) -> int:
        return math.prod(self.shape)

    @property
    def dim(self) -> int:
        return self.kernel.shape[-1]

    def apply(self, x: SphereState, t: ScalarLike = 0.0) -> SphereState:
        x = jnp.asarray(x)
        nd = len(self.shape)
        grid = x.reshape(self.shape + (self.dim,))
        grid = jnp.moveaxis(grid, -1, 0)[None]  # (1, dim, *grid)
        # (k..., out, in) -> (out, in, k...)
        rhs = jnp.moveaxis(self.kernel.astype(x.dtype), (-2, -1), (0, 1))
        out = grid_convolve(grid, rhs, self.kernel.shape[:nd], self.boundary)
        out = jnp.moveaxis(out[0], 0, -1).reshape((self.n_osc, self.dim))
        return evaluate(self.strength, t) * out

    def _asymmetry(self):
        k = self.kernel
        nd = k.ndim - 2
        flipped = jnp.swapaxes(k[(slice(None, None, -1),) * nd], -1, -2)
        return jnp.max(jnp.abs(k - flipped)), jnp.max(jnp.abs(k))
