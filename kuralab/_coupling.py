"""Couplings: linear operators over the oscillator axis, shared by phase and vector models.

A coupling maps a node signal `u` of shape `(osc, *features)` to `(K u)_i = sum_j K_ij u_j`
(row i receives). Phase models apply it to the phasor components `cos(theta)` and
`sin(theta)` (two applications, never an N x N `sin`):

    sum_j K_ij sin(theta_j - theta_i - alpha)
        = cos(theta_i + alpha) (K sin theta)_i - sin(theta_i + alpha) (K cos theta)_i .

Vector (sphere) models apply the same operator to states of shape `(osc, dim)`.

Every coupling carries a `strength` multiplier, a constant or a schedule (`K(t)`), and
structure `tags` (`symmetric_tag`, `nonnegative_tag`) used by theorem checks. Tags that can
be proved from concrete values are added automatically; tags a user declares are verified
when the values are concrete.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._custom_types import NodeSignal
from ._misc import (
    as_float_array,
    as_tags,
    check_finite,
    is_concrete,
    nonnegative_tag,
    symmetric_tag,
)
from ._schedules import AbstractSchedule, evaluate

_HIGHEST = jax.lax.Precision.HIGHEST


def _strength_tags(strength) -> frozenset:
    """Tags implied by a (concrete, constant) strength multiplier."""
    if isinstance(strength, AbstractSchedule) or not is_concrete(strength):
        return frozenset()
    s = np.asarray(strength)
    return frozenset({nonnegative_tag}) if s.size and np.all(s >= 0) else frozenset()


def _check_declared(tags: frozenset, proved: frozenset, name: str, concrete: bool):
    """Declared tags must hold whenever we can check them."""
    if concrete:
        missing = tags - proved
        if missing:
            raise ValueError(
                f"{name} was declared {sorted(map(repr, missing))} but its values are "
                "not; drop the tag or fix the values"
            )


def _check_strength(strength):
    """Validate a strength multiplier; return it as a float array (or the schedule)."""
    if isinstance(strength, AbstractSchedule):
        return strength
    check_finite("strength", strength)
    if eqx.is_array_like(strength) and jnp.ndim(strength) != 0:
        raise ValueError(
            f"`strength` must be a scalar or a schedule; got shape {jnp.shape(strength)}"
        )
    return as_float_array(strength)


class AbstractCoupling(eqx.Module):
    """A linear operator over the oscillator axis: `(K u)_i = sum_j K_ij u_j`."""

    tags: eqx.AbstractVar[frozenset]

    @abc.abstractmethod
    def apply(self, u: NodeSignal, t=0.0) -> NodeSignal:
        """Apply the coupling to `u` of shape `(osc, *features)`; `t` is the time
        (used by schedules). Returns the same shape."""

    @property
    @abc.abstractmethod
    def n_osc(self) -> int | None:
        """Number of oscillators this operator is built for (None: any)."""

    def as_matrix(self, n: int | None = None, t=0.0) -> Array:
        """Materialise `K(t)` as an `(n, n)` matrix (row i receives). For tests and
        theorem checks; O(n^2) memory."""
        n = self.n_osc if n is None else n
        if n is None:
            raise ValueError("`n` is required for couplings that accept any size")
        return self.apply(jnp.eye(n), t)

    @property
    def symmetric(self) -> bool:
        return symmetric_tag in self.tags

    @property
    def nonnegative(self) -> bool:
        return nonnegative_tag in self.tags


class MeanField(AbstractCoupling):
    """All-to-all coupling $K_{ij} = K/N$, applied in O(N) through the mean field.

    **Arguments:**

    - `K`: coupling strength, a scalar or a schedule `K(t)`.
    """

    K: ArrayLike | AbstractSchedule
    tags: frozenset = eqx.field(static=True)

    def __init__(self, K: ArrayLike | AbstractSchedule):
        self.K = _check_strength(K)
        self.tags = frozenset({symmetric_tag}) | _strength_tags(K)

    @property
    def n_osc(self) -> int | None:
        return None

    def apply(self, u, t=0.0):
        u = jnp.asarray(u)
        mean = jnp.mean(u, axis=0, keepdims=True)
        return jnp.broadcast_to(evaluate(self.K, t) * mean, u.shape).astype(u.dtype)


class DenseCoupling(AbstractCoupling):
    """Arbitrary coupling matrix, $(Ku)_i = s \\sum_j K_{ij} u_j$ (row i receives).

    The scale is not divided by N: users control it.

    **Arguments:**

    - `matrix`: `(osc, osc)` array.
    - `strength`: scalar multiplier or schedule `s(t)` (default 1).
    - `tags`: declared structure (`kl.symmetric_tag`, `kl.nonnegative_tag`); checked
      when the matrix is concrete, and proved automatically where possible.
    """

    matrix: Array
    strength: ArrayLike | AbstractSchedule
    tags: frozenset = eqx.field(static=True)

    def __init__(self, matrix: ArrayLike, strength=1.0, tags=()):
        matrix = jnp.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(
                f"`matrix` must be a square (osc, osc) array; got shape {matrix.shape}"
            )
        check_finite("matrix", matrix)
        strength = _check_strength(strength)
        declared = as_tags(tags)
        concrete = is_concrete(matrix)
        proved = frozenset()
        if concrete:
            m = np.asarray(matrix)
            if np.array_equal(m, m.T):
                proved |= {symmetric_tag}
            if np.all(m >= 0) and nonnegative_tag in _strength_tags(strength):
                proved |= {nonnegative_tag}
        _check_declared(declared, proved, "DenseCoupling", concrete)
        self.matrix = matrix
        self.strength = strength
        self.tags = declared | proved

    @property
    def n_osc(self) -> int:
        return self.matrix.shape[0]

    def apply(self, u, t=0.0):
        u = jnp.asarray(u)
        out = jnp.tensordot(self.matrix.astype(u.dtype), u, axes=1, precision=_HIGHEST)
        return evaluate(self.strength, t) * out


class SparseCoupling(AbstractCoupling):
    """Coupling on a graph given as an edge list: $(Ku)_i = s \\sum_{e: r_e = i} w_e u_{s_e}$.

    **Arguments:**

    - `receivers`, `senders`: int arrays of shape `(edges,)` (edge e goes sender ->
      receiver, i.e. it is `K[receiver, sender]`).
    - `weights`: `(edges,)` weights (default 1).
    - `n`: number of oscillators.
    - `strength`: scalar multiplier or schedule (default 1).
    - `tags`: declared structure, checked when concrete.

    Build from a dense matrix with `SparseCoupling.from_dense(K)` or from a
    `jax.experimental.sparse.BCOO` with `SparseCoupling.from_bcoo(M)`.
    """

    receivers: Array
    senders: Array
    weights: Array
    n: int = eqx.field(static=True)
    strength: ArrayLike | AbstractSchedule
    tags: frozenset = eqx.field(static=True)

    def __init__(
        self, receivers, senders, weights=None, *, n: int, strength=1.0, tags=()
    ):
        receivers = jnp.asarray(receivers)
        senders = jnp.asarray(senders)
        if receivers.ndim != 1 or receivers.shape != senders.shape:
            raise ValueError(
                "`receivers` and `senders` must be 1-D int arrays of equal length; got "
                f"shapes {receivers.shape} and {senders.shape}"
            )
        if not (
            jnp.issubdtype(receivers.dtype, jnp.integer)
            and jnp.issubdtype(senders.dtype, jnp.integer)
        ):
            raise ValueError("`receivers` and `senders` must be integer arrays")
        weights = (
            jnp.ones(receivers.shape) if weights is None else jnp.asarray(weights)
        )
        if weights.shape != receivers.shape:
            raise ValueError(
                f"`weights` must have shape {receivers.shape} (one per edge); got "
                f"{weights.shape}"
            )
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"`n` must be a positive int; got {n!r}")
        check_finite("weights", weights)
        strength = _check_strength(strength)
        declared = as_tags(tags)
        concrete = is_concrete(receivers, senders, weights)
        proved = frozenset()
        if concrete:
            r, s_, w = map(np.asarray, (receivers, senders, weights))
            if r.size and (r.min() < 0 or r.max() >= n or s_.min() < 0 or s_.max() >= n):
                raise ValueError(f"edge indices must lie in [0, {n}); got out-of-range")
            dense = np.zeros((n, n)) if n <= 4096 else None
            if dense is not None:
                np.add.at(dense, (r, s_), w)
                if np.array_equal(dense, dense.T):
                    proved |= {symmetric_tag}
            if np.all(w >= 0) and nonnegative_tag in _strength_tags(strength):
                proved |= {nonnegative_tag}
            if dense is None:
                concrete = False  # cannot verify symmetry cheaply: trust the user
        _check_declared(declared, proved, "SparseCoupling", concrete)
        self.receivers = receivers.astype(jnp.int32)
        self.senders = senders.astype(jnp.int32)
        self.weights = weights
        self.n = int(n)
        self.strength = strength
        self.tags = declared | proved

    @classmethod
    def from_dense(cls, matrix, *, strength=1.0, tags=()) -> SparseCoupling:
        """Edges at the non-zero entries of a concrete `(osc, osc)` matrix."""
        m = np.asarray(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"`matrix` must be square; got shape {m.shape}")
        r, s_ = np.nonzero(m)
        return cls(r, s_, m[r, s_], n=m.shape[0], strength=strength, tags=tags)

    @classmethod
    def from_bcoo(cls, matrix, *, strength=1.0, tags=()) -> SparseCoupling:
        """From a `jax.experimental.sparse.BCOO` matrix of shape `(osc, osc)`."""
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.n_batch:
            raise ValueError(f"BCOO matrix must be square 2-D; got {matrix.shape}")
        idx = matrix.indices
        return cls(
            idx[:, 0], idx[:, 1], matrix.data, n=matrix.shape[0], strength=strength,
            tags=tags,
        )

    @property
    def n_osc(self) -> int:
        return self.n

    def apply(self, u, t=0.0):
        u = jnp.asarray(u)
        w = self.weights.astype(u.dtype).reshape((-1,) + (1,) * (u.ndim - 1))
        out = jax.ops.segment_sum(
            w * u[self.senders], self.receivers, num_segments=self.n
        )
        return evaluate(self.strength, t) * out


def check_grid(spatial: tuple[int, ...], shape: tuple[int, ...], boundary: str) -> None:
    """Validate a centred lattice kernel of spatial shape `spatial` on a grid `shape`."""
    nd = len(spatial)
    if len(shape) != nd or any(s < 1 for s in shape):
        raise ValueError(
            f"`shape` must be a grid shape of rank {nd} (the kernel's spatial rank); "
            f"got {shape}"
        )
    if any(k % 2 == 0 for k in spatial):
        raise ValueError(
            f"`kernel` spatial sizes must be odd (it is centred); got {spatial}"
        )
    if boundary not in ("periodic", "open"):
        raise ValueError(f"`boundary` must be 'periodic' or 'open'; got {boundary!r}")
    if boundary == "periodic" and any(k > s for k, s in zip(spatial, shape, strict=True)):
        raise ValueError(
            f"periodic `kernel` {spatial} must not be larger than the grid {shape} "
            "(it would count a neighbour twice)"
        )


class LatticeCoupling(AbstractCoupling):
    """A local kernel on a 1-D or 2-D grid: $(Ku)_i = s \\sum_d k_d\\, u_{i+d}$.

    Oscillators are the grid sites in row-major order (`osc = rows * cols`). The kernel
    has odd side lengths and is centred: `kernel[c + d]` (c the centre index) weights the
    neighbour at displacement `d` from the receiver. Boundaries are `"periodic"` (torus)
    or `"open"` (missing neighbours contribute nothing). Applied as a convolution, so it
    works on phasors and on vector states alike.

    **Arguments:**

    - `kernel`: `(k,)` or `(kh, kw)` array with odd sizes.
    - `shape`: grid shape `(L,)` or `(rows, cols)`, same rank as the kernel.
    - `boundary`: `"periodic"` (default) or `"open"`.
    - `strength`: scalar multiplier or schedule (default 1).
    - `tags`: declared structure, checked when concrete.
    """

    kernel: Array
    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True)
    strength: ArrayLike | AbstractSchedule
    tags: frozenset = eqx.field(static=True)

    def __init__(
        self,
        kernel: ArrayLike,
        shape: Sequence[int],
        boundary: str = "periodic",
        strength=1.0,
        tags=(),
    ):
        kernel = jnp.asarray(kernel)
        shape = tuple(int(s) for s in shape)
        if kernel.ndim not in (1, 2):
            raise ValueError(f"`kernel` must be 1-D or 2-D; got shape {kernel.shape}")
        check_grid(kernel.shape, shape, boundary)
        check_finite("kernel", kernel)
        strength = _check_strength(strength)
        declared = as_tags(tags)
        concrete = is_concrete(kernel)
        proved = frozenset()
        if concrete:
            k = np.asarray(kernel)
            if np.array_equal(k, k[(slice(None, None, -1),) * k.ndim]):
                proved |= {symmetric_tag}
            if np.all(k >= 0) and nonnegative_tag in _strength_tags(strength):
                proved |= {nonnegative_tag}
        _check_declared(declared, proved, "LatticeCoupling", concrete)
        self.kernel = kernel
        self.shape = shape
        self.boundary = boundary
        self.strength = strength
        self.tags = declared | proved

    @property
    def n_osc(self) -> int:
        return math.prod(self.shape)

    def apply(self, u, t=0.0):
        u = jnp.asarray(u)
        nd = len(self.shape)
        features = u.shape[1:]
        # (osc, *F) -> (F, 1, *grid) : features act as the convolution batch.
        grid = u.reshape(self.shape + (-1,))
        grid = jnp.moveaxis(grid, -1, 0)[:, None]
        half = [k // 2 for k in self.kernel.shape]
        pad = [(0, 0), (0, 0)] + [(h, h) for h in half]
        mode = "wrap" if self.boundary == "periodic" else "constant"
        grid = jnp.pad(grid, pad, mode=mode)
        rhs = self.kernel.astype(u.dtype)[None, None]
        spatial = "HW"[:nd] if nd == 2 else "H"
        dn = ("NC" + spatial, "OI" + spatial, "NC" + spatial)
        out = jax.lax.conv_general_dilated(
            grid, rhs, (1,) * nd, "VALID", dimension_numbers=dn, precision=_HIGHEST
        )
        out = jnp.moveaxis(out[:, 0], 0, -1).reshape((self.n_osc,) + features)
        return evaluate(self.strength, t) * out
