r"""Scalar-weight couplings (the phase-model family): $(Ku)_i = s \sum_j K_{ij} u_j$.

Phase models apply them to the phasor components `cos(theta)` and `sin(theta)` (two
applications, never an N x N `sin`):

$$\sum_j K_{ij} \sin(\theta_j - \theta_i - \alpha)
    = \cos(\theta_i + \alpha) (K \sin\theta)_i - \sin(\theta_i + \alpha) (K \cos\theta)_i .$$

Vector (sphere) models apply the same operator to states of shape `(osc, dim)`: the blocks
are $K_{ij} I$. Every coupling carries a `strength` multiplier, a constant or a schedule
$s(t)$. Structure (symmetry, non-negativity) is checked on the current values; see
`kuralab/_coupling/base.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, Real

from .._custom_types import CouplingMatrix, NodeSignal, ScalarLike
from .._fastmath import sincos
from .._misc import as_tags, check_finite, is_concrete
from .._phasor_mean import sincos_mean
from .._schedules import AbstractSchedule, evaluate
from .base import (
    HIGHEST,
    AbstractOperator,
    Strength,
    check_strength,
    guard_declared,
    strength_nonnegative,
)


class AbstractCoupling(AbstractOperator):
    """A scalar-weight coupling over the oscillator axis: `(K u)_i = sum_j K_ij u_j`,
    applied alike to every feature of `u` (shape `(osc, *features)`).

    This is the family `kl.Kuramoto` accepts. A subclass implements `apply` and `n_osc`
    (and `linear` is already `True`):

    ```python
    class Ring(kl.AbstractCoupling):
        k: jax.Array

        @property
        def n_osc(self):
            return None

        def apply(self, u, t=0.0):
            return self.k * (jnp.roll(u, 1, axis=0) + jnp.roll(u, -1, axis=0))
    ```

    Symmetry and non-negativity are then checked by materialising `as_matrix()`;
    override `_asymmetry` / `_all_weights_nonnegative` for a cheaper exact check.
    """

    def as_matrix(
        self, n: int | None = None, t: ScalarLike = 0.0
    ) -> Float[Array, "osc osc"]:
        """Materialise `K(t)` as an `(n, n)` matrix (row i receives). For tests and
        theorem checks; O(n^2) memory."""
        n = self.n_osc if n is None else n
        if n is None:
            raise ValueError("`n` is required for couplings that accept any size")
        return self.apply(jnp.eye(n), t)

    def _phasor_apply(self, theta, t: ScalarLike = 0.0):
        """`(sin theta, cos theta, K sin theta, K cos theta)` for phases of shape
        `(osc,)`: the receivers' phasor and the coupling applied to it (what a phase
        model's drift needs). The last two broadcast against `(osc,)` (a mean field
        returns them as scalars)."""
        s, c = sincos(theta)
        return s, c, self.apply(s, t), self.apply(c, t)

    def _asymmetry(self):
        if self.n_osc is None:
            return super()._asymmetry()
        m = self.as_matrix()
        return jnp.max(jnp.abs(m - m.T), initial=0.0), jnp.max(jnp.abs(m), initial=0.0)

    def _all_weights_nonnegative(self):
        if self.n_osc is None:
            return super()._all_weights_nonnegative()
        return jnp.all(self.as_matrix() >= 0)


class MeanField(AbstractCoupling):
    """All-to-all coupling $K_{ij} = K/N$, applied in O(N) through the mean field.

    **Arguments:**

    - `K`: coupling strength, a scalar or a schedule `K(t)`.

    Symmetric by construction; non-negative when `K >= 0`.
    """

    K: ScalarLike | AbstractSchedule

    def __init__(self, K: Strength):
        self.K = check_strength(K)

    @property
    def n_osc(self) -> int | None:
        return None

    def apply(self, u: NodeSignal, t: ScalarLike = 0.0) -> NodeSignal:
        u = jnp.asarray(u)
        mean = jnp.mean(u, axis=0, keepdims=True)
        return jnp.broadcast_to(evaluate(self.K, t) * mean, u.shape).astype(u.dtype)

    def _phasor_apply(self, theta, t: ScalarLike = 0.0):
        # sin, cos and both means in one pass (kuralab/_phasor_mean.py: the native
        # kernel for float32 on a CPU); the coupled means come back as scalars.
        theta = jnp.asarray(theta)
        if theta.ndim != 1:
            return super()._phasor_apply(theta, t)
        s, c, ms, mc = sincos_mean(theta)
        k = evaluate(self.K, t)
        return s, c, (k * ms).astype(s.dtype), (k * mc).astype(s.dtype)

    def _asymmetry(self):
        zero = jnp.zeros(())
        return zero, zero

    def _all_weights_nonnegative(self):
        return strength_nonnegative(self.K)


class DenseCoupling(AbstractCoupling):
    """Arbitrary coupling matrix, $(Ku)_i = s \\sum_j K_{ij} u_j$ (row i receives).

    The scale is not divided by N: users control it.

    **Arguments:**

    - `matrix`: `(osc, osc)` array.
    - `strength`: scalar multiplier or schedule `s(t)` (default 1).
    - `tags`: structure the caller asserts (`kl.symmetric_tag`, `kl.nonnegative_tag`);
      checked now, not stored. `is_symmetric()` / `is_nonnegative()` check the current
      matrix (also after training).
    """

    matrix: Float[Array, "osc osc"]
    strength: ScalarLike | AbstractSchedule

    def __init__(
        self, matrix: CouplingMatrix, strength: Strength = 1.0, tags=()
    ):
        matrix = jnp.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(
                f"`matrix` must be a square (osc, osc) array; got shape {matrix.shape}"
            )
        check_finite("matrix", matrix)
        self.matrix = matrix
        self.strength = check_strength(strength)
        self.matrix = guard_declared(self, as_tags(tags), "DenseCoupling", matrix)

    @property
    def n_osc(self) -> int:
        return self.matrix.shape[0]

    def apply(self, u: NodeSignal, t: ScalarLike = 0.0) -> NodeSignal:
        u = jnp.asarray(u)
        out = jnp.tensordot(self.matrix.astype(u.dtype), u, axes=1, precision=HIGHEST)
        return evaluate(self.strength, t) * out

    def _asymmetry(self):
        m = self.matrix
        return jnp.max(jnp.abs(m - m.T), initial=0), jnp.max(jnp.abs(m), initial=0)

    def _all_weights_nonnegative(self):
        return jnp.all(self.matrix >= 0) & strength_nonnegative(self.strength)


class SparseCoupling(AbstractCoupling):
    """Coupling on a graph given as an edge list: $(Ku)_i = s \\sum_{e: r_e = i} w_e u_{s_e}$.

    **Arguments:**

    - `receivers`, `senders`: int arrays of shape `(edges,)` (edge e goes sender ->
      receiver, i.e. it is `K[receiver, sender]`; repeated edges add up).
    - `weights`: `(edges,)` weights (default 1).
    - `n`: number of oscillators. (Keyword only, as are the rest.)
    - `strength`: scalar multiplier or schedule (default 1).
    - `tags`: structure the caller asserts; checked now (on the edges, no dense
      matrix), not stored.

    Build from a dense matrix with `SparseCoupling.from_dense(K)` or from a
    `jax.experimental.sparse.BCOO` with `SparseCoupling.from_bcoo(M)`.
    """

    receivers: Int[Array, " edges"]
    senders: Int[Array, " edges"]
    weights: Float[Array, " edges"]
    n: int = eqx.field(static=True)
    strength: ScalarLike | AbstractSchedule

    def __init__(
        self,
        receivers: Int[ArrayLike, " edges"],
        senders: Int[ArrayLike, " edges"],
        weights: Real[ArrayLike, " edges"] | None = None,
        *,
        n: int,
        strength: Strength = 1.0,
        tags=(),
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
        if is_concrete(receivers, senders):
            r, s_ = np.asarray(receivers), np.asarray(senders)
            if r.size and (r.min() < 0 or r.max() >= n or s_.min() < 0 or s_.max() >= n):
                raise ValueError(f"edge indices must lie in [0, {n}); got out-of-range")
        self.receivers = receivers.astype(jnp.int32)
        self.senders = senders.astype(jnp.int32)
        self.weights = weights
        self.n = int(n)
        self.strength = check_strength(strength)
        self.weights = guard_declared(self, as_tags(tags), "SparseCoupling", weights)

    @classmethod
    def from_dense(
        cls, matrix: CouplingMatrix, *, strength: Strength = 1.0, tags=()
    ) -> SparseCoupling:
        """Edges at the non-zero entries of a concrete `(osc, osc)` matrix."""
        m = np.asarray(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"`matrix` must be square; got shape {m.shape}")
        r, s_ = np.nonzero(m)
        return cls(r, s_, m[r, s_], n=m.shape[0], strength=strength, tags=tags)

    @classmethod
    def from_bcoo(cls, matrix, *, strength: Strength = 1.0, tags=()) -> SparseCoupling:
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

    def apply(self, u: NodeSignal, t: ScalarLike = 0.0) -> NodeSignal:
        u = jnp.asarray(u)
        w = self.weights.astype(u.dtype).reshape((-1,) + (1,) * (u.ndim - 1))
        out = jax.ops.segment_sum(
            w * u[self.senders], self.receivers, num_segments=self.n
        )
        return evaluate(self.strength, t) * out

    def _asymmetry(self):
        """Compare each edge's total weight K[r, s] (repeated edges summed) with the
        reverse K[s, r]: O(edges log edges), no dense matrix."""
        r, s_, w = self.receivers, self.senders, self.weights
        if r.shape[0] == 0:
            zero = jnp.zeros((), w.dtype)
            return zero, zero
        x64 = bool(jax.config.jax_enable_x64)
        if self.n * self.n >= 2**31 and not x64:
            if not is_concrete(self):
                return super(AbstractCoupling, self)._asymmetry()  # NaN: cannot tell
            return _edge_asymmetry(np, *map(np.asarray, (r, s_, w)), self.n, np.int64)
        return _edge_asymmetry(jnp, r, s_, w, self.n, jnp.int64 if x64 else jnp.int32)

    def _all_weights_nonnegative(self):
        return jnp.all(self.weights >= 0) & strength_nonnegative(self.strength)


def _edge_asymmetry(xp, r, s_, w, n, key_dtype):
    key = r.astype(key_dtype) * n + s_.astype(key_dtype)
    rev = s_.astype(key_dtype) * n + r.astype(key_dtype)
    order = xp.argsort(key)
    ks, ws = key[order], w[order]
    # Coalesce repeated edges: one segment per distinct key (in sorted order).
    seg = xp.concatenate([xp.zeros(1, key_dtype), xp.cumsum(ks[1:] != ks[:-1])])
    if xp is np:
        total = np.zeros(len(ks), w.dtype)
        np.add.at(total, seg, ws)
    else:
        total = jax.ops.segment_sum(ws, seg, num_segments=ks.shape[0])
    here = total[seg]  # K[r_e, s_e] for the sorted edges
    j = xp.clip(xp.searchsorted(ks, rev[order]), 0, ks.shape[0] - 1)
    there = xp.where(ks[j] == rev[order], total[seg[j]], 0)  # K[s_e, r_e]
    return xp.max(xp.abs(here - there)), xp.max(xp.abs(here))


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


def grid_convolve(grid, rhs, kernel_spatial, boundary: str):
    """`(N, C, *grid)` convolved with the centred `(O, C, *k)` kernel `rhs`."""
    nd = len(kernel_spatial)
    half = [k // 2 for k in kernel_spatial]
    pad = [(0, 0), (0, 0)] + [(h, h) for h in half]
    mode = "wrap" if boundary == "periodic" else "constant"
    grid = jnp.pad(grid, pad, mode=mode)
    spatial = "HW" if nd == 2 else "H"
    dn = ("NC" + spatial, "OI" + spatial, "NC" + spatial)
    return jax.lax.conv_general_dilated(
        grid, rhs, (1,) * nd, "VALID", dimension_numbers=dn, precision=HIGHEST
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
    - `tags`: structure the caller asserts; checked now, not stored. The coupling is
      symmetric exactly when the kernel equals its mirror image.
    """

    kernel: Float[Array, "*k"]
    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True)
    strength: ScalarLike | AbstractSchedule

    def __init__(
        self,
        kernel: Real[ArrayLike, "*k"],
        shape: Sequence[int],
        boundary: str = "periodic",
        strength: Strength = 1.0,
        tags=(),
    ):
        kernel = jnp.asarray(kernel)
        shape = tuple(int(s) for s in shape)
        if kernel.ndim not in (1, 2):
            raise ValueError(f"`kernel` must be 1-D or 2-D; got shape {kernel.shape}")
        check_grid(kernel.shape, shape, boundary)
        check_finite("kernel", kernel)
        self.kernel = kernel
        self.shape = shape
        self.boundary = boundary
        self.strength = check_strength(strength)
        self.kernel = guard_declared(self, as_tags(tags), "LatticeCoupling", kernel)

    @property
    def n_osc(self) -> int:
        return math.prod(self.shape)

    def apply(self, u: NodeSignal, t: ScalarLike = 0.0) -> NodeSignal:
        u = jnp.asarray(u)
        features = u.shape[1:]
        # (osc, *F) -> (F, 1, *grid) : features act as the convolution batch.
        grid = u.reshape(self.shape + (-1,))
        grid = jnp.moveaxis(grid, -1, 0)[:, None]
        rhs = self.kernel.astype(u.dtype)[None, None]
        out = grid_convolve(grid, rhs, self.kernel.shape, self.boundary)
        out = jnp.moveaxis(out[:, 0], 0, -1).reshape((self.n_osc,) + features)
        return evaluate(self.strength, t) * out

    def _asymmetry(self):
        k = self.kernel
        flipped = k[(slice(None, None, -1),) * k.ndim]
        return jnp.max(jnp.abs(k - flipped)), jnp.max(jnp.abs(k))

    def _all_weights_nonnegative(self):
        return jnp.all(self.kernel >= 0) & strength_nonnegative(self.strength)
