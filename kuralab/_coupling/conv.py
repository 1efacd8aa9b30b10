r"""A channel-mixing convolution over a grid of oscillator groups (AKOrN's `J="conv"`).

AKOrN lays out `C` channels at every site of a grid; consecutive channels
`(g n, ..., g n + n - 1)` form oscillator `g` on $S^{n-1}$, so a site holds `C / n`
oscillators, and the connectivity is ONE convolution `Conv(C, C, k)` mixing all channels
of a neighbourhood:

$$(Jx)_{o}(p) = s \sum_{d} \sum_{i} W_{d}[o, i]\; x_{i}(p + d - \lfloor k/2 \rfloor),$$

a cross-correlation (as `torch.nn.Conv2d`) with a padding mode for the missing
neighbours. `kl.LatticeBlockCoupling` is the special case `C = n` (one oscillator per
site); `ChannelConvCoupling` allows any number of oscillators per site.

**State layout for `kl.SphereKuramoto`.** The model's state is `(osc, dim)` with
`dim = n` and `osc = (C / n) * prod(grid)`: oscillators ordered group-major, then the grid
row-major, i.e. a `(C, *grid)` channel map `u` is the state
`u.reshape(C // n, n, *grid)` moved to `(C // n, *grid, n)` and flattened (`to_state` /
`from_state` do this).

The convolution runs channels-last as ONE matrix product over im2col patches
(`conv_channels_last`, `conv_im2col`): on a 2-core CPU, inside the AKOrN layer's scan,
forward + backward, XLA's convolution in either layout is ~10x slower
(benchmarks/l2_akorn.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real

from .._custom_types import ScalarLike, SphereState
from .._misc import check_finite
from .._schedules import AbstractSchedule, evaluate
from .base import HIGHEST, Strength, check_strength, guard_declared
from .vector import AbstractVectorCoupling, _only_symmetric

#: Padding modes: name -> `jnp.pad` mode (zeros = open boundary, circular = periodic).
PADDINGS = {
    "zeros": "constant",
    "circular": "wrap",
    "reflect": "reflect",
    "replicate": "edge",
}
_SPATIAL = "DHW"


def check_conv(kernel_spatial: Sequence[int], grid: Sequence[int], padding: str) -> None:
    """Validate a kernel of spatial shape `kernel_spatial` on `grid` with `padding`."""
    ks, grid = tuple(kernel_spatial), tuple(grid)
    if padding not in PADDINGS:
        raise ValueError(f"`padding` must be one of {tuple(PADDINGS)}; got {padding!r}")
    if len(grid) != len(ks) or not 1 <= len(ks) <= 3 or any(s < 1 for s in grid):
        raise ValueError(
            f"the grid must be 1-, 2- or 3-D with the kernel's spatial rank {len(ks)}; "
            f"got grid {grid}"
        )
    if any(k < 1 for k in ks):
        raise ValueError(f"kernel sizes must be >= 1; got {ks}")
    if padding != "zeros" and any(k > s for k, s in zip(ks, grid, strict=True)):
        raise ValueError(
            f"kernel {ks} is larger than the grid {grid}: only padding='zeros' allows "
            f"that ({padding!r} would reuse sites)"
        )


def _pads(ks: Sequence[int]) -> list[tuple[int, int]]:
    """'Same' padding for any kernel size (odd: k//2 each side; even: one less before)."""
    return [((k - 1) // 2, k // 2) for k in ks]


METHODS = ("im2col", "shift", "xla")


def im2col_weight(kernel: Float[Array, "*k cout cin"]) -> Float[Array, "cout kcin"]:
    """`kernel` `(*k, C_out, C_in)` as the `(C_out, prod(k) * C_in)` matrix of
    `conv_im2col`: row `o`, column `d * C_in + i` (kernel offset `d` in row-major
    order, input channel `i`)."""
    nd = kernel.ndim - 2
    kk = math.prod(kernel.shape[:nd])
    w = jnp.moveaxis(kernel.reshape((kk,) + kernel.shape[nd:]), 0, 1)  # (cout, kk, cin)
    return w.reshape(kernel.shape[-2], kk * kernel.shape[-1])


def im2col_adjoint_weight(wmat: Float[Array, "cout kcin"], cin: int) -> Float[Array, "cin kcout"]:
    """The im2col weight of the adjoint convolution: the kernel flipped in every spatial
    axis with input and output channels swapped, `(C_in, prod(k) * C_out)`. With the
    'same' padding swapped (`adjoint_pads`) and zero or circular padding,
    `conv_im2col(g, adjoint, ...)` is the transpose of `conv_im2col(., wmat, ...)`."""
    cout = wmat.shape[0]
    k3 = wmat.reshape(cout, -1, cin)[:, ::-1, :]  # offset d -> K - 1 - d
    return jnp.transpose(k3, (2, 1, 0)).reshape(cin, -1)


def adjoint_pads(ks: Sequence[int]) -> list[tuple[int, int]]:
    """'Same' padding of the adjoint convolution: `_pads(ks)` with the sides swapped."""
    return [(hi, lo) for lo, hi in _pads(ks)]


def conv_im2col(
    u: Float[Array, "*batch *grid cin"],
    wmat: Float[Array, "cout kcin"],
    kernel_spatial: Sequence[int],
    padding: str = "zeros",
    pads: Sequence[tuple[int, int]] | None = None,
) -> Float[Array, "*batch *grid cout"]:
    """`conv_channels_last(u, kernel, padding, method="im2col")` with the weight
    already as `wmat = im2col_weight(kernel)` (a layer that applies one kernel many
    times builds the matrix once). The patches `(*batch, *grid, prod(k) * C_in)` are the
    shifted views of the padded map concatenated on the channel axis; the product is one
    matmul with contraction length `prod(k) * C_in`; `pads` overrides the 'same'
    padding `(before, after)` per spatial axis."""
    patches = im2col_patches(u, kernel_spatial, padding, pads)
    dn = (((patches.ndim - 1,), (1,)), ((), ()))
    return jax.lax.dot_general(patches, wmat.astype(u.dtype), dn, precision=HIGHEST)


def im2col_patches(
    u: Float[Array, "*batch *grid cin"],
    kernel_spatial: Sequence[int],
    padding: str = "zeros",
    pads: Sequence[tuple[int, int]] | None = None,
) -> Float[Array, "*batch *grid kcin"]:
    """The patch matrix of `conv_im2col`: the `prod(k)` shifted views of the padded map
    (offsets row-major) concatenated on the channel axis."""
    ks = tuple(kernel_spatial)
    nd = len(ks)
    pads = _pads(ks) if pads is None else [tuple(p) for p in pads]
    grid = u.shape[u.ndim - nd - 1 : -1]
    lead = [(0, 0)] * (u.ndim - nd - 1)
    up = u
    if any(p != (0, 0) for p in pads):
        up = jnp.pad(u, lead + list(pads) + [(0, 0)], mode=PADDINGS[padding])
    views = []
    for off in itertools.product(*[range(k) for k in ks]):
        sl = tuple(slice(o, o + g) for o, g in zip(off, grid, strict=True))
        views.append(up[(Ellipsis, *sl, slice(None))])
    return views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)


def conv_channels_last(
    u: Float[Array, "*batch *grid cin"],
    kernel: Float[Array, "*k cout cin"],
    padding: str = "zeros",
    method: str = "im2col",
) -> Float[Array, "*batch *grid cout"]:
    """'Same'-size cross-correlation of a channels-last map `u` (`(*batch, *grid, C)`)
    with `kernel` `(*k, C_out, C_in)`; `padding` as in `PADDINGS`:
    `out[p, o] = sum_d sum_i kernel[d, o, i] * u_pad[p + d, i]`.

    `method` (all three compute the same sum, in different orders):

    - `"im2col"` (default): pad once, concatenate the `prod(k)` shifted views on the
      channel axis and do ONE matmul with the `(prod(k) * C_in, C_out)` weight
      (`conv_im2col`);
    - `"shift"`: one matmul per kernel offset, summed, `out = sum_d u[p + d] @ W_d^T`;
    - `"xla"`: `lax.conv_general_dilated`.

    Measured on a shared 2-core Intel Xeon (jax 0.10, batch 16, 16x16, C = 64, 3x3, the
    AKOrN layer's 8 steps forward + backward inside a hand-written `lax.scan`, JAX
    autodiff; benchmarks/l2_akorn.py, one run): XLA's convolution 1.59 s, the shifted
    products 0.204 s, im2col 0.174 s (one long contraction instead of nine short ones
    and eight adds); hence the default."""
    nd = kernel.ndim - 2
    ks = kernel.shape[:nd]
    pads = _pads(ks)
    w = kernel.astype(u.dtype)
    if method == "im2col":
        return conv_im2col(u, im2col_weight(w), ks, padding)
    if method == "xla":
        unbatched = u.ndim == nd + 1
        lhs = u[None] if unbatched else u.reshape((-1,) + u.shape[u.ndim - nd - 1 :])
        if padding == "zeros":
            conv_pad = pads
        else:
            lhs = jnp.pad(lhs, [(0, 0), *pads, (0, 0)], mode=PADDINGS[padding])
            conv_pad = [(0, 0)] * nd
        sp = _SPATIAL[-nd:]
        out = jax.lax.conv_general_dilated(
            lhs, w, (1,) * nd, conv_pad,
            dimension_numbers=("N" + sp + "C", sp + "OI", "N" + sp + "C"),
            precision=HIGHEST,
        )
        return out.reshape(u.shape[:-1] + (w.shape[-2],))
    if method != "shift":
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}")
    grid = u.shape[u.ndim - nd - 1 : -1]
    lead = [(0, 0)] * (u.ndim - nd - 1)
    up = u
    if any(p != (0, 0) for p in pads):
        up = jnp.pad(u, lead + list(pads) + [(0, 0)], mode=PADDINGS[padding])
    out = None
    for off in itertools.product(*[range(k) for k in ks]):
        sl = tuple(slice(o, o + g) for o, g in zip(off, grid, strict=True))
        patch = up[(Ellipsis, *sl, slice(None))]
        term = jnp.dot(patch, w[off].T, precision=HIGHEST)
        out = term if out is None else out + term
    return out


def to_state(u: Float[Array, "channels *grid"], n: int) -> SphereState:
    """A `(C, *grid)` channel map as the `(osc, n)` state of `ChannelConvCoupling`."""
    c, grid = u.shape[0], u.shape[1:]
    v = u.reshape((c // n, n) + grid)
    return jnp.moveaxis(v, 1, -1).reshape(-1, n)


def from_state(x: SphereState, channels: int, grid: Sequence[int]) -> Array:
    """Inverse of `to_state`: `(osc, n)` back to `(channels, *grid)`."""
    n = x.shape[-1]
    grid = tuple(grid)
    v = x.reshape((channels // n,) + grid + (n,))
    return jnp.moveaxis(v, -1, 1).reshape((channels,) + grid)


class ChannelConvCoupling(AbstractVectorCoupling):
    r"""A convolution mixing all `C` channels of a grid whose sites hold `C / dim`
    oscillators of dimension `dim` (AKOrN's conv connectivity; see the module docs for
    the equation and the state layout).

    Linear (its blocks are materialised by `kl.coupling_blocks` for the theorem checks)
    and block-symmetric exactly when $W_{-d} = W_d^\top$ (checked on the kernel for
    zero and circular padding; reflect/replicate padding is checked on the
    materialised matrix). The reference conv's bias is not part of $J$: it is a
    constant field, i.e. part of the stimulus.

    **Arguments:**

    - `kernel`: `(*k, C, C)`; `kernel[d][o, i]` maps input channel `i` at offset `d`
      to output channel `o` (a PyTorch weight `w` of shape `(O, I, kh, kw)` is
      `moveaxis(w, (0, 1), (-2, -1))`).
    - `shape`: the grid, rank 1-3 (the kernel's spatial rank).
    - `dim`: oscillator dimension `n` (`C % n == 0`).
    - `padding`: `"zeros"` (default), `"circular"`, `"reflect"` or `"replicate"`.
    - `strength`: scalar multiplier or schedule (default 1).
    - `tags`: `kl.symmetric_tag` asserts block symmetry; checked now, not stored.
    """

    kernel: Float[Array, "*k channels channels"]
    shape: tuple[int, ...] = eqx.field(static=True)
    vdim: int = eqx.field(static=True)
    padding: str = eqx.field(static=True)
    strength: ScalarLike | AbstractSchedule

    def __init__(
        self,
        kernel: Real[ArrayLike, "*k channels channels"],
        shape: Sequence[int],
        dim: int,
        padding: str = "zeros",
        strength: Strength = 1.0,
        tags=(),
    ):
        kernel = jnp.asarray(kernel)
        if not jnp.issubdtype(kernel.dtype, jnp.floating):
            kernel = kernel.astype(jnp.result_type(float))
        if kernel.ndim < 3 or kernel.shape[-1] != kernel.shape[-2]:
            raise ValueError(
                "`kernel` must have shape (*k, C, C) (C channels in and out); got shape "
                f"{kernel.shape}"
            )
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"`dim` must be a positive int; got {dim!r}")
        channels = kernel.shape[-1]
        if channels % dim:
            raise ValueError(
                f"`kernel` has {channels} channels, not divisible by dim = {dim} "
                "(each oscillator is `dim` consecutive channels)"
            )
        shape = tuple(int(s) for s in shape)
        check_conv(kernel.shape[:-2], shape, padding)
        check_finite("kernel", kernel)
        declared = _only_symmetric(tags, "ChannelConvCoupling")
        self.kernel = kernel
        self.shape = shape
        self.vdim = dim
        self.padding = padding
        self.strength = check_strength(strength)
        self.kernel = guard_declared(self, declared, "ChannelConvCoupling", kernel)

    @property
    def channels(self) -> int:
        return self.kernel.shape[-1]

    @property
    def n_osc(self) -> int:
        return (self.channels // self.vdim) * math.prod(self.shape)

    @property
    def dim(self) -> int:
        return self.vdim

    def apply_map(self, u: Float[Array, "channels *grid"], t: ScalarLike = 0.0) -> Array:
        """$J$ on a `(C, *grid)` channel map (channels first, as in the reference)."""
        v = jnp.moveaxis(jnp.asarray(u), 0, -1)
        out = conv_channels_last(v, self.kernel, self.padding)
        return evaluate(self.strength, t) * jnp.moveaxis(out, -1, 0)

    def apply(self, x: SphereState, t: ScalarLike = 0.0) -> SphereState:
        x = jnp.asarray(x)
        g, n = self.channels // self.vdim, self.vdim
        # (osc, n) = (g, *grid, n) -> channels-last (*grid, g * n)
        v = jnp.moveaxis(x.reshape((g,) + self.shape + (n,)), 0, -2)
        v = v.reshape(self.shape + (g * n,))
        out = conv_channels_last(v, self.kernel, self.padding)
        out = jnp.moveaxis(out.reshape(self.shape + (g, n)), -2, 0)
        return evaluate(self.strength, t) * out.reshape(-1, n)

    def _asymmetry(self):
        if self.padding not in ("zeros", "circular") or any(
            k % 2 == 0 for k in self.kernel.shape[:-2]
        ):
            return super()._asymmetry()
        k = self.kernel
        nd = k.ndim - 2
        flipped = jnp.swapaxes(k[(slice(None, None, -1),) * nd], -1, -2)
        return jnp.max(jnp.abs(k - flipped)), jnp.max(jnp.abs(k))
