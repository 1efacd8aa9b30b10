r"""The component-major layout `AKOrNLayer.run` steps in (private).

A channel map `(C, *grid)` holds `G = C / n` oscillators of `n` components per site,
oscillator `g` being channels `(g n, ..., g n + n - 1)`. Inside the layer's scan the state
is channels-last with the channels reordered component-major,

$$u[*p, k G + g] = x[g n + k, *p], \qquad \text{i.e. } u \text{ is } (*\mathrm{grid}, n, G)
\text{ flattened},$$

so that component `k` of every oscillator of a site is the contiguous slice
`u[..., k G:(k + 1) G]`: the per-oscillator norm, inner product and 2x2 rotation are
elementwise operations over `n` slices of length `G` (vectorised along `G`) instead of
reductions over a trailing axis of `n = 4`. The convolution is the same sum with its
kernel's input and output channels permuted the same way (`kernel_cm`), so the system is
unchanged; layouts are converted only at the layer boundary (`to_cm`, `from_cm`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def to_cm(x: Float[Array, "c *grid"], n: int) -> Float[Array, "*grid c"]:
    """`(C, *grid)` channels first -> channels-last component-major `(*grid, C)`."""
    g, grid = x.shape[0] // n, x.shape[1:]
    v = x.reshape((g, n) + grid)
    nd = len(grid)
    v = jnp.transpose(v, tuple(range(2, 2 + nd)) + (1, 0))  # (*grid, n, G)
    return v.reshape(grid + (x.shape[0],))


def from_cm(u: Float[Array, "*lead *grid c"], n: int, nd: int) -> Float[Array, "*lead c *grid"]:
    """Inverse of `to_cm` on the last `nd + 1` axes: `(*lead, *grid, C)` -> `(*lead, C,
    *grid)` with channel `g n + k` taken from component-major channel `k G + g`."""
    c = u.shape[-1]
    lead, grid = u.shape[: u.ndim - nd - 1], u.shape[u.ndim - nd - 1 : -1]
    v = u.reshape(lead + grid + (n, c // n))
    L = len(lead)
    perm = tuple(range(L)) + (L + nd + 1, L + nd) + tuple(range(L, L + nd))
    return jnp.transpose(v, perm).reshape(lead + (c,) + grid)


def vector_to_cm(b: Float[Array, " c"], n: int) -> Float[Array, " c"]:
    """A per-channel vector (bias) in the component-major channel order."""
    return b.reshape(-1, n).T.reshape(-1)


def kernel_cm(kernel: Float[Array, "*k c c"], n: int) -> Float[Array, "*k c c"]:
    """A `(*k, C_out, C_in)` kernel with both channel axes component-major: the same
    convolution on `to_cm` maps."""
    nd = kernel.ndim - 2
    c = kernel.shape[-1]
    ks = kernel.shape[:nd]
    w = kernel.reshape(ks + (c // n, n, c // n, n))
    w = jnp.transpose(w, tuple(range(nd)) + (nd + 1, nd, nd + 3, nd + 2))
    return w.reshape(ks + (c, c))


def components(u: Float[Array, "*b c"], n: int) -> Float[Array, "*b n g"]:
    """`(*b, C)` component-major -> `(*b, n, G)` (a free reshape)."""
    return u.reshape(u.shape[:-1] + (n, u.shape[-1] // n))


def normalise(v: Float[Array, "*b n g"]) -> Float[Array, "*b n g"]:
    """Every oscillator (the `n` axis) scaled to unit length."""
    return v * jax.lax.rsqrt(jnp.sum(v * v, axis=-2, keepdims=True))


def rotate(v: Float[Array, "*b n g"], w) -> Float[Array, "*b n g"]:
    r"""The reference Ω action on component pairs `(2k, 2k+1)`, $(a, b) \mapsto (\omega_k
    b, -\omega_k a)$; `w` is a scalar or `(G, n // 2)` (per oscillator and pair); an odd
    last component is not rotated."""
    n = v.shape[-2]
    k = n // 2
    if jnp.ndim(w) == 0:
        wk = [w] * k
    else:
        wk = [w[:, j] for j in range(k)]  # (G,) each, broadcast over the G axis
    parts = []
    for j in range(k):
        parts += [wk[j] * v[..., 2 * j + 1, :], -wk[j] * v[..., 2 * j, :]]
    if n % 2:
        parts.append(jnp.zeros_like(v[..., -1, :]))
    return jnp.stack(parts, axis=-2)
