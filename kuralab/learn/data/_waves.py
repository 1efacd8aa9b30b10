r"""Synthetic data for the topographic-wave line (research/reference_impls.md §4), in code.

- `adding_task`: Hochreiter & Schmidhuber's adding problem as the NWM sequence-modelling
  code draws it: values $\sim U(0, 1)$ with one marker in each half of the sequence; the
  target is the sum of the two marked values. The trivial predictor (always 1) has MSE
  $\mathrm{Var}(u_1 + u_2) = 1/6 \approx 0.167$.
- `rotating_shapes`: procedural bars and block letters (L, T, F, E) rotated about the
  image centre by a fixed angle per frame (18 frames of 20 degrees: one full turn), the
  offline stand-in for Rotating MNIST. None of the shapes has a rotational symmetry, so
  the sequence's period is exactly one turn.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["SHAPES", "adding_task", "rotating_shapes"]

#: Rectangles (x0, x1, y0, y1) of each shape in a [-1, 1]^2 box, y pointing up.
_RECTS = {
    "bar": [(-0.14, 0.14, -0.35, 0.95)],  # off-centre, so not symmetric under 180 degrees
    "L": [(-0.55, -0.25, -0.8, 0.8), (-0.55, 0.5, -0.8, -0.5)],
    "T": [(-0.6, 0.6, 0.5, 0.8), (-0.15, 0.15, -0.8, 0.8)],
    "F": [(-0.5, -0.2, -0.8, 0.8), (-0.5, 0.55, 0.5, 0.8), (-0.5, 0.3, -0.12, 0.16)],
    "E": [(-0.5, -0.2, -0.8, 0.8), (-0.5, 0.5, 0.5, 0.8), (-0.5, 0.35, -0.14, 0.14),
          (-0.5, 0.5, -0.8, -0.5)],
}
SHAPES = tuple(_RECTS)
_MAX_RECTS = max(len(r) for r in _RECTS.values())


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {value!r}")
    return value


def adding_task(key: PRNGKeyArray, batch: int, length: int) -> tuple[
        Float[Array, "batch length 2"], Float[Array, " batch"]]:
    r"""A batch of the adding problem: `(x, y)`.

    `x[b, t] = (u_t, m_t)` with $u_t \sim U(0, 1)$ and markers $m_t \in \{0, 1\}$: one
    marked step drawn uniformly from the first half `[0, length // 2)`, one from the
    second half `[length // 2, length)`; `y[b]` is the sum of the two marked values.
    """
    _positive_int("batch", batch)
    _positive_int("length", length, 2)
    return _adding(key, batch, length)


@partial(jax.jit, static_argnums=(1, 2))
def _adding(key, batch, length):
    ku, k1, k2 = jax.random.split(key, 3)
    half = length // 2
    u = jax.random.uniform(ku, (batch, length))
    i1 = jax.random.randint(k1, (batch,), 0, half)
    i2 = jax.random.randint(k2, (batch,), half, length)
    t = jnp.arange(length)
    m = ((t == i1[:, None]) | (t == i2[:, None])).astype(u.dtype)
    return jnp.stack([u, m], -1), jnp.sum(u * m, 1)


def _render(rects, mask, scale, angle, size: int, edge: float):
    """One image: the union of soft-edged rectangles, rotated by `angle` (radians,
    counter-clockwise as displayed with row 0 at the top) and scaled by `scale`."""
    c = (size - 1) / 2
    r = jnp.arange(size)
    Y, X = jnp.meshgrid(-(r - c) / c, (r - c) / c, indexing="ij")
    ca, sa = jnp.cos(angle), jnp.sin(angle)
    xs = (ca * X + sa * Y) / scale  # rotate the pixel grid back by -angle
    ys = (-sa * X + ca * Y) / scale
    w = edge / (c * scale)

    def one(rect):
        x0, x1, y0, y1 = rect
        ix = jax.nn.sigmoid((0.5 * (x1 - x0) - jnp.abs(xs - 0.5 * (x0 + x1))) / w)
        iy = jax.nn.sigmoid((0.5 * (y1 - y0) - jnp.abs(ys - 0.5 * (y0 + y1))) / w)
        return ix * iy

    imgs = jax.vmap(one)(rects) * mask[:, None, None]
    return jnp.max(imgs, 0)


def rotating_shapes(key: PRNGKeyArray, batch: int, *, frames: int = 18, step_deg: float = 20.0,
                    size: int = 28, shapes=SHAPES, direction: int = 1,
                    scale: tuple[float, float] = (0.6, 0.85), edge: float = 0.5,
                    ) -> Float[Array, "batch frames size size"]:
    r"""Sequences of a rotating shape: `(batch, frames, size, size)` in [0, 1].

    Each sequence draws a shape from `shapes` (uniformly), a scale $\sim U$(`scale`)
    (fraction of the half-width of the image) and a start angle $\theta_0 \sim U(0,
    2\pi)$; frame $t$ shows it rotated by $\theta_0 + $ `direction` $\cdot\, t \cdot$
    `step_deg` degrees about the image centre (`direction=1`: counter-clockwise as
    displayed with row 0 at the top; `-1`: clockwise; `0`: a random sign per sequence).
    With the defaults (18 frames of 20 degrees) a sequence is one full turn; more frames
    repeat it periodically. Edges are smooth over about `edge` pixels (sigmoid ramps).
    """
    _positive_int("batch", batch)
    _positive_int("frames", frames)
    _positive_int("size", size, 4)
    shapes = tuple(shapes)
    bad = [s for s in shapes if s not in _RECTS]
    if not shapes or bad:
        raise ValueError(f"`shapes` must be a non-empty subset of {SHAPES}; got {shapes!r}")
    if direction not in (-1, 0, 1):
        raise ValueError(f"`direction` must be 1, -1 or 0 (random per sequence); got {direction!r}")
    lo, hi = scale
    if not 0 < lo <= hi:
        raise ValueError(f"`scale` must be (low, high) with 0 < low <= high; got {scale!r}")
    table = jnp.zeros((len(shapes), _MAX_RECTS, 4))
    mask = jnp.zeros((len(shapes), _MAX_RECTS))
    for i, s in enumerate(shapes):
        table = table.at[i, : len(_RECTS[s])].set(jnp.asarray(_RECTS[s]))
        mask = mask.at[i, : len(_RECTS[s])].set(1.0)
    return _rotating(key, table, mask, batch, frames, float(step_deg), size, direction,
                     float(lo), float(hi), float(edge))


@partial(jax.jit, static_argnums=(3, 4, 6, 7))
def _rotating(key, table, mask, batch, frames, step_deg, size, direction, lo, hi, edge):
    kk, ks, ka, kd = jax.random.split(key, 4)
    kind = jax.random.randint(kk, (batch,), 0, table.shape[0])
    sc = jax.random.uniform(ks, (batch,), minval=lo, maxval=hi)
    a0 = jax.random.uniform(ka, (batch,), maxval=2 * math.pi)
    sign = (jnp.where(jax.random.bernoulli(kd, 0.5, (batch,)), 1.0, -1.0) if direction == 0
            else jnp.full((batch,), float(direction)))
    angles = a0[:, None] + sign[:, None] * jnp.deg2rad(step_deg) * jnp.arange(frames)

    def seq(k, s, ang):
        return jax.vmap(lambda a: _render(table[k], mask[k], s, a, size, edge))(ang)

    return jax.vmap(seq)(kind, sc, angles)
