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

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._coupling.conv import (
    adjoint_pads,
    conv_im2col,
    im2col_adjoint_weight,
    im2col_patches,
)

HIGHEST = jax.lax.Precision.HIGHEST


def to_cm(x: Float[Array, "*lead c *grid"], n: int, nb: int = 0) -> Float[Array, "*lead *grid c"]:
    """`(*lead, C, *grid)` channels first (`nb` leading batch axes) -> channels-last
    component-major `(*lead, *grid, C)`."""
    lead, c, grid = x.shape[:nb], x.shape[nb], x.shape[nb + 1 :]
    v = x.reshape(lead + (c // n, n) + grid)
    nd = len(grid)
    perm = tuple(range(nb)) + tuple(range(nb + 2, nb + 2 + nd)) + (nb + 1, nb)
    return jnp.transpose(v, perm).reshape(lead + grid + (c,))  # (*lead, *grid, n, G)


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
    # pairs (..., k, 2, G) reversed inside each pair and signed: (b, a) * (w, -w); a
    # reverse and a multiply fuse into the caller's elementwise pass (a stack of the
    # 2k slices did not: it was a separate concatenation)
    pairs = v[..., : 2 * k, :].reshape(v.shape[:-2] + (k, 2, v.shape[-1]))
    sign = jnp.asarray([1.0, -1.0], v.dtype)[:, None]  # (2, 1)
    wk = w if jnp.ndim(w) == 0 else jnp.swapaxes(w, 0, 1)[:, None, :]  # (k, 1, G)
    rot = (jnp.flip(pairs, axis=-2) * (sign * wk)).reshape(v.shape[:-2] + (2 * k, v.shape[-1]))
    if n % 2:
        rot = jnp.concatenate([rot, jnp.zeros_like(v[..., -1:, :])], axis=-2)
    return rot


# ---------------------------------------------------------------------------------
# one conv step with a hand-written backward pass
# ---------------------------------------------------------------------------------

#: padding modes whose convolution has a convolution as its adjoint (`conv_step`)
ADJOINT_PADDINGS = ("zeros", "circular")


def _drift_parts(v, y, w, mode):
    """`s = <y, v>` per oscillator and the drift `y - s v + R v` (R = Ω, I or 0)."""
    s = jnp.sum(y * v, axis=-2, keepdims=True)
    drift = y - s * v
    if mode == "omega":
        drift = drift + rotate(v, w)
    elif mode == "identity":
        drift = drift + v
    return s, drift


def _step_forward(u, cl, wmat, gamma, w, n, ks, padding, mode):
    ju = conv_im2col(u, wmat, ks, padding)
    v, y = components(u, n), components(ju + cl, n)
    _, drift = _drift_parts(v, y, w, mode)
    u_new = normalise(v + gamma * drift).reshape(u.shape)
    site = tuple(range(u.ndim - len(ks) - 1, u.ndim))  # per example: grid and channels
    return (u_new, jnp.sum(u * ju, site), jnp.sum(u * cl, site)), ju


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7, 8))
def conv_step(u, cl, wmat, gamma, w, n, ks, padding, mode):
    r"""One AKOrN step on a component-major channels-last state `u` `(*grid, C)` with
    the conv coupling: `ju = conv_im2col(u, wmat)`, `y = ju + cl`,
    $u' = \Pi[v + \gamma(y - \langle y, v\rangle v + R v)]$ per oscillator ($R$ = the
    rotation by rates `w` for `mode="omega"`, the identity for `"identity"`, none for
    `"none"`). `u` may have leading batch axes `(*batch, *grid, C)`. Returns `(u',
    <u, ju>, <u, cl>)`, the sums `(*batch,)` per example (they feed the energies).

    The backward pass is written out (`_step_bwd`): it keeps only `u` and `ju` per step
    (autodiff kept ten arrays, the 9x larger patch matrix among them) and recomputes the
    rest; the conv's transpose is the adjoint convolution (zero or circular padding)."""
    return _step_forward(u, cl, wmat, gamma, w, n, ks, padding, mode)[0]


def _step_fwd(u, cl, wmat, gamma, w, n, ks, padding, mode):
    out, ju = _step_forward(u, cl, wmat, gamma, w, n, ks, padding, mode)
    return out, (u, ju, cl, wmat, gamma, w)


def _step_bwd(n, ks, padding, mode, res, cts):
    u, ju, cl, wmat, gamma, w = res
    g_new, e_xjx, e_cx = cts
    v, y = components(u, n), components(ju + cl, n)
    s, drift = _drift_parts(v, y, w, mode)
    a = v + gamma * drift
    r = jax.lax.rsqrt(jnp.sum(a * a, axis=-2, keepdims=True))
    gn = components(g_new, n)
    # through the normalisation u' = a / |a|
    da = r * (gn - jnp.sum(gn * a, axis=-2, keepdims=True) * (r * r) * a)
    dgamma = jnp.sum(da * drift)
    dav = jnp.sum(da * v, axis=-2, keepdims=True)
    dy = gamma * (da - dav * v)
    dv = da - gamma * (s * da + dav * y)
    dw = None
    if mode == "omega":
        dv = dv - gamma * rotate(da, w)  # R^T = -R
        k = n // 2
        # d<da, R v>/dw_k = sum(da_{2k} v_{2k+1} - da_{2k+1} v_{2k})
        per = jnp.stack(
            [da[..., 2 * j, :] * v[..., 2 * j + 1, :] - da[..., 2 * j + 1, :] * v[..., 2 * j, :]
             for j in range(k)], -1)  # (*grid, G, k)
        per = gamma * per.reshape((-1,) + per.shape[-2:]).sum(0)
        dw = per.sum() if jnp.ndim(w) == 0 else per
    elif mode == "identity":
        dv = dv + gamma * da
    dy = dy.reshape(u.shape)
    # energies: <u, ju> and <u, cl>, one per example
    e_xjx = e_xjx.reshape(e_xjx.shape + (1,) * (len(ks) + 1))
    e_cx = e_cx.reshape(e_cx.shape + (1,) * (len(ks) + 1))
    dju = dy + e_xjx * u
    du = dv.reshape(u.shape) + e_xjx * ju + e_cx * cl
    dcl = dy + e_cx * u
    # gamma and the rates are shared by the batch: their cotangents sum over it
    cin = u.shape[-1]
    du = du + conv_im2col(dju, im2col_adjoint_weight(wmat, cin), ks, padding, adjoint_pads(ks))
    # the weight gradient, (C_out, k C_in): one contraction over batch and pixels (under
    # jax.vmap of the layer: one product per example, summed)
    patches = im2col_patches(u, ks, padding)
    lead = tuple(range(u.ndim - 1))
    dwmat = jax.lax.dot_general(dju, patches, ((lead, lead), ((), ())), precision=HIGHEST)
    return du, dcl, dwmat.astype(wmat.dtype), dgamma, dw


conv_step.defvjp(_step_fwd, _step_bwd)
