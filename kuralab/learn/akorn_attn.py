r"""AKOrN's attentive connectivity over grid positions, with optional GTA rotations.

Tokens are the grid positions $p$ (not single oscillators, unlike `kl.AttentionCoupling`):
each carries all `C` channels of its `C / n` oscillators. With `u_p` the channels-last
feature of position $p$ (shape `(C,)`):

$$[q, k, v]_p = W_{qkv} u_p + b_{qkv},\quad
  o^h_p = R_p^\top \sum_{p'} \operatorname{softmax}_{p'}\!\Big(
     \frac{\langle R_p q^h_p, R_{p'} k^h_{p'}\rangle}{\sqrt{d_h}}\Big) R_{p'} v^h_{p'},\quad
  (J u)_p = W_o\, o_p + b_o .$$

Heads interleave channels as in the reference (`b (c nh) h w -> b nh (h w) c`): channel
`c * heads + h` belongs to head `h`. With `gta=True`, $R_p$ is block-diagonal with one
2x2 rotation per pair of head dimensions (an SO(2) representation of the position,
"geometric transform attention"): learnable angles initialised RoPE-style, the first
half of the pairs rotating with the row index at frequencies $10000^{-2f/F}$, the second
half with the column index (1-D grids: all with the index). The reference learns the 2x2
matrices themselves; angles keep them rotations.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from .._coupling import AbstractVectorCoupling
from .._coupling.conv import from_state as _from_state, to_state as _to_state
from .._custom_types import Key, ScalarLike, SphereState

_HIGHEST = jax.lax.Precision.HIGHEST


def torch_uniform(key: Key, shape, fan_in: int, dtype=None) -> Array:
    """PyTorch's default Conv/Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def rope_angles(grid: tuple[int, ...], pairs: int) -> np.ndarray:
    """RoPE-style initial GTA angles, shape `(prod(grid), pairs)` (rad)."""
    coords = np.stack(np.meshgrid(*[np.arange(s) for s in grid], indexing="ij"), -1)
    coords = coords.reshape(-1, len(grid)).astype(np.float64)
    per_axis = pairs // len(grid)
    out = np.zeros((coords.shape[0], pairs))
    if per_axis == 0:
        return out
    freqs = 10000.0 ** (-2.0 * np.arange(per_axis) / (2 * per_axis))
    for a in range(len(grid)):
        out[:, a * per_axis : (a + 1) * per_axis] = coords[:, a : a + 1] * freqs
    return out


def _rotate(z, cos, sin, inverse: bool = False):
    """Rotate consecutive pairs of the last axis of `z` `(P, heads, dh)` by the angles
    whose cos/sin are `(P, dh // 2)` (the same for every head)."""
    zr = z.reshape(z.shape[:-1] + (-1, 2))
    a, b = zr[..., 0], zr[..., 1]
    c, s = cos[:, None], sin[:, None]
    if inverse:
        s = -s
    out = jnp.stack([c * a - s * b, s * a + c * b], -1)
    return out.reshape(z.shape)


class PositionAttention(eqx.Module):
    """Multi-head self-attention over the positions of a grid, channels-last
    (`(*grid, C) -> (*grid, C)`); see the module documentation for the equations.

    **Arguments:**

    - `channels`: `C`.
    - `grid`: the spatial shape (needed for `gta` and `mask`).
    - `heads`: number of heads (`C % heads == 0`; default 8). (Keyword only.)
    - `gta`: per-position SO(2) rotations of q, k, v and the output (default False);
      needs an even head width `C / heads`.
    - `mask`: optional boolean `(P, P)` over the `P = prod(grid)` positions (row =
      receiver); every row needs one True.
    - `key`: PRNG key.
    """

    wqkv: Float[Array, "c3 c"]
    bqkv: Float[Array, " c3"]
    wo: Float[Array, "c c"]
    bo: Float[Array, " c"]
    angles: Float[Array, "pos pairs"] | None
    mask: Bool[Array, "pos pos"] | None
    heads: int = eqx.field(static=True)
    grid: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        channels: int,
        grid,
        *,
        heads: int = 8,
        gta: bool = False,
        mask: Bool[ArrayLike, "pos pos"] | None = None,
        key: Key,
    ):
        grid = tuple(int(s) for s in grid)
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise ValueError(f"`heads` must be a positive int; got {heads!r}")
        if channels % heads:
            raise ValueError(
                f"`channels` ({channels}) must be divisible by `heads` ({heads})"
            )
        dh = channels // heads
        if gta and dh % 2:
            raise ValueError(
                f"`gta=True` needs an even head width channels / heads; got {dh}"
            )
        P = math.prod(grid)
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.shape != (P, P) or mask.dtype != jnp.bool_:
                raise ValueError(
                    f"`mask` must be a boolean ({P}, {P}) array over the grid positions; "
                    f"got {mask.dtype} {mask.shape}"
                )
            if not bool(np.all(np.asarray(mask).any(axis=1))):
                raise ValueError("`mask` has a row with no True entry")
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.wqkv = torch_uniform(k1, (3 * channels, channels), channels)
        self.bqkv = torch_uniform(k2, (3 * channels,), channels)
        self.wo = torch_uniform(k3, (channels, channels), channels)
        self.bo = torch_uniform(k4, (channels,), channels)
        self.angles = jnp.asarray(rope_angles(grid, dh // 2), self.wo.dtype) if gta else None
        self.mask = mask
        self.heads = heads
        self.grid = grid

    def __call__(self, u: Float[Array, "*grid c"]) -> Float[Array, "*grid c"]:
        shape = u.shape
        C, H = shape[-1], self.heads
        dh = C // H
        tok = u.reshape(-1, C)  # (P, C)
        qkv = jnp.dot(tok, self.wqkv.T.astype(u.dtype), precision=_HIGHEST) + self.bqkv
        q, k, v = (
            z.reshape(-1, dh, H).swapaxes(-1, -2) for z in jnp.split(qkv, 3, axis=-1)
        )  # (P, H, dh); channel c * H + h -> head h
        if self.angles is not None:
            cos, sin = jnp.cos(self.angles), jnp.sin(self.angles)
            q, k, v = (_rotate(z, cos, sin) for z in (q, k, v))
        logits = jnp.einsum("phd,qhd->hpq", q, k, precision=_HIGHEST) / math.sqrt(dh)
        if self.mask is not None:
            logits = jnp.where(self.mask[None], logits, -jnp.inf)
        a = jax.nn.softmax(logits, axis=-1)
        o = jnp.einsum("hpq,qhd->phd", a, v, precision=_HIGHEST)
        if self.angles is not None:
            o = _rotate(o, cos, sin, inverse=True)
        o = o.swapaxes(-1, -2).reshape(-1, C)
        out = jnp.dot(o, self.wo.T.astype(u.dtype), precision=_HIGHEST) + self.bo
        return out.reshape(shape)


class GridMapCoupling(AbstractVectorCoupling):
    r"""A state-dependent vector coupling from a channels-last map `fn: (*grid, C) ->
    (*grid, C)` (e.g. `PositionAttention`), on the `(osc, n)` state layout of
    `kl.ChannelConvCoupling` (`osc = (C / n) * prod(grid)`, group-major). This is how
    `AKOrNLayer.model` hands attention connectivity to `kl.SphereKuramoto`.
    """

    fn: eqx.Module
    channels: int = eqx.field(static=True)
    grid: tuple[int, ...] = eqx.field(static=True)
    vdim: int = eqx.field(static=True)
    linear: ClassVar[bool] = False

    @property
    def n_osc(self) -> int:
        return (self.channels // self.vdim) * math.prod(self.grid)

    @property
    def dim(self) -> int:
        return self.vdim

    def apply(self, x: SphereState, t: ScalarLike = 0.0) -> SphereState:
        u = _from_state(jnp.asarray(x), self.channels, self.grid)
        out = self.fn(jnp.moveaxis(u, 0, -1))
        return _to_state(jnp.moveaxis(out, -1, 0), self.vdim)
