r"""Small score networks for orientation diffusion (Equinox, one example, no batch axis).

The network contract (`kl.learn.OrientationDiffusion` uses nothing else): an Equinox module
called as `net(c, s, emb)` with $c = \cos\theta$, $s = \sin\theta$ of shape `(*shape)`
(the state of one example) and a time embedding `emb` of shape `(embed_dim,)`
(`time_embedding`), returning either

- the tangential score itself, shape `(*shape)`, or
- an $\mathbb R^2$ vector field $(a, b)$, shape `(2, *shape)`, of which the tangential
  component $\hat s = -a\sin\theta + b\cos\theta$ is the score (the reference's
  `angle_space`).

`score_of(net, theta, emb)` applies either and rejects any other output shape with a
one-line error. The two networks shipped here return `(2, *shape)`:

- `ScoreMLP`: flattened $(\cos\theta, \sin\theta)$ and the embedding through an MLP
  (SiLU); for points on the torus $T^d$.
- `ScoreUNet`: a two-level convolutional U-Net on `(channels, H, W)` fields with
  periodic (circular) padding, GroupNorm, SiLU and the embedding added to every block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["ScoreMLP", "ScoreUNet", "score_of", "time_embedding"]


def time_embedding(t, dim: int) -> Float[Array, " dim"]:
    r"""Sinusoidal embedding of a (step) time $t$: $[\sin(t f_k), \cos(t f_k)]_{k < dim/2}$,
    $f_k = 10000^{-k/(dim/2)}$ (the transformer / DDPM embedding); `dim` even."""
    if dim < 2 or dim % 2:
        raise ValueError(f"`dim` must be an even int >= 2; got {dim}")
    half = dim // 2
    f = jnp.exp(-math.log(10000.0) * jnp.arange(half) / half)
    x = jnp.asarray(t, jnp.float32) * f
    return jnp.concatenate([jnp.sin(x), jnp.cos(x)])


def score_of(net, theta: Array, emb: Array) -> Array:
    """The tangential score of a network following the contract (module docstring)."""
    c, s = jnp.cos(theta), jnp.sin(theta)
    out = net(c, s, emb)
    shape = jnp.shape(theta)
    if jnp.shape(out) == shape:
        return out
    if jnp.shape(out) == (2,) + shape:
        return -out[0] * s + out[1] * c
    raise ValueError(
        f"score network output must have shape {shape} (a tangential score) or "
        f"{(2,) + shape} (a vector field (a, b)); got {jnp.shape(out)}"
    )


class ScoreMLP(eqx.Module):
    """MLP score network on the torus: `(cos θ, sin θ, emb)` -> `(2, *shape)`.

    **Arguments:** `shape` (the state of one example, e.g. `(d,)`), `hidden` widths
    (default `(256, 256)`), `embed_dim` (default 64), `key` (keyword only).
    """

    layers: list
    shape: tuple[int, ...] = eqx.field(static=True)
    embed_dim: int = eqx.field(static=True)

    def __init__(self, shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                 embed_dim: int = 64, *, key: PRNGKeyArray):
        self.shape = tuple(int(s) for s in shape)
        self.embed_dim = int(embed_dim)
        n = math.prod(self.shape)
        sizes = [2 * n + self.embed_dim, *hidden, 2 * n]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = [eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)]

    def __call__(self, c, s, emb):
        h = jnp.concatenate([c.ravel(), s.ravel(), emb])
        for layer in self.layers[:-1]:
            h = jax.nn.silu(layer(h))
        return self.layers[-1](h).reshape((2,) + self.shape)


class _Block(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    norm1: eqx.nn.GroupNorm
    norm2: eqx.nn.GroupNorm
    temb: eqx.nn.Linear
    skip: eqx.nn.Conv2d | None

    def __init__(self, cin, cout, embed_dim, *, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        conv = dict(kernel_size=3, padding=1, padding_mode="CIRCULAR")
        self.conv1 = eqx.nn.Conv2d(cin, cout, key=k1, **conv)
        self.conv2 = eqx.nn.Conv2d(cout, cout, key=k2, **conv)
        self.norm1 = eqx.nn.GroupNorm(min(8, cin) if cin % min(8, cin) == 0 else 1, cin)
        self.norm2 = eqx.nn.GroupNorm(min(8, cout) if cout % min(8, cout) == 0 else 1, cout)
        self.temb = eqx.nn.Linear(embed_dim, cout, key=k3)
        self.skip = None if cin == cout else eqx.nn.Conv2d(cin, cout, 1, key=k4)

    def __call__(self, x, emb):
        h = self.conv1(jax.nn.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, None, None]
        h = self.conv2(jax.nn.silu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


def _down(x):
    c, h, w = x.shape
    return x.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def _up(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class ScoreUNet(eqx.Module):
    """A small convolutional U-Net on orientation fields `(channels, H, W)`, H and W
    divisible by 4: `(cos θ, sin θ, emb)` -> `(2, channels, H, W)`.

    Two resolution levels below the input (average-pool down, nearest up), one residual
    block per level on the way down and up, skip connections by concatenation,
    circular padding (the fields live on a periodic lattice). The time embedding goes
    through a 2-layer MLP and is added inside every block.

    **Arguments:** `channels` (of the field, default 1), `width` (channels of the first
    level, doubled at each level; default 16), `embed_dim` (default 64), `key`.
    """

    t_mlp: list
    inp: eqx.nn.Conv2d
    down: list
    mid: _Block
    up: list
    out: eqx.nn.Conv2d
    out_norm: eqx.nn.GroupNorm
    channels: int = eqx.field(static=True)
    embed_dim: int = eqx.field(static=True)

    def __init__(self, channels: int = 1, width: int = 16, embed_dim: int = 64, *,
                 key: PRNGKeyArray):
        self.channels = int(channels)
        self.embed_dim = int(embed_dim)
        ks = iter(jax.random.split(key, 12))
        e = 4 * width
        self.t_mlp = [eqx.nn.Linear(embed_dim, e, key=next(ks)), eqx.nn.Linear(e, e, key=next(ks))]
        widths = (width, 2 * width, 4 * width)
        self.inp = eqx.nn.Conv2d(2 * channels, width, 3, padding=1, padding_mode="CIRCULAR",
                                 key=next(ks))
        self.down = [_Block(widths[i], widths[i + 1], e, key=next(ks)) for i in range(2)]
        self.mid = _Block(widths[2], widths[2], e, key=next(ks))
        self.up = [_Block(2 * widths[2 - i], widths[1 - i], e, key=next(ks)) for i in range(2)]
        self.out_norm = eqx.nn.GroupNorm(min(8, width), width)
        self.out = eqx.nn.Conv2d(width, 2 * channels, 3, padding=1, padding_mode="CIRCULAR",
                                 key=next(ks))

    def __call__(self, c, s, emb):
        if c.ndim != 3 or c.shape[0] != self.channels or c.shape[1] % 4 or c.shape[2] % 4:
            raise ValueError(
                f"ScoreUNet takes fields of shape ({self.channels}, H, W) with H, W "
                f"divisible by 4; got {c.shape}"
            )
        e = self.t_mlp[1](jax.nn.silu(self.t_mlp[0](emb)))
        h = self.inp(jnp.concatenate([c, s], axis=0))
        skips = [h]
        for block in self.down:
            h = block(_down(h), e)
            skips.append(h)
        h = self.mid(h, e)
        for block, skip in zip(self.up, (skips[2], skips[1])):
            h = _up(block(jnp.concatenate([h, skip], axis=0), e))
        h = self.out(jax.nn.silu(self.out_norm(h + skips[0])))
        return h.reshape((2,) + c.shape)
