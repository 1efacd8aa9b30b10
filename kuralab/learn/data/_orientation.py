r"""Synthetic data for Kuramoto orientation diffusion, generated in code.

- Mixtures of von Mises modes on the torus $T^d$: each mode is a product of
  independent von Mises laws per coordinate, $p(\theta) = \sum_m w_m \prod_j
  \mathrm{VM}(\theta_j; \mu_{mj}, \kappa_{mj})$ (`vm_mixture_params`,
  `von_mises_mixture`, `vm_mixture_logpdf`).
- Orientation fields on a periodic $L \times L$ lattice, shape `(n, 1, L, L)`.
  Orientations $\phi \in [0, \pi)$ are axial ($\phi$ and $\phi + \pi$ are the same line),
  so the phase is the doubled angle $\theta = \mathrm{wrap}(2\phi)$, a point on the
  circle (not the image map $0.9\pi x$):
  `oriented_gratings` (2 regions of constant orientation split by a random straight
  edge, with von Mises jitter) and `flow_fields` (the streamline orientation of a
  random smooth incompressible flow: stream function of a few low wave numbers).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ..._misc import wrap_phase
from ..diffusion_score import von_mises_sample


def vm_mixture_params(key: PRNGKeyArray, d: int, modes: int = 3,
                      kappa: tuple[float, float] = (6.0, 16.0)) -> dict[str, Array]:
    """Random mixture parameters on $T^d$: `means` `(modes, d)` uniform, `kappas`
    `(modes, d)` uniform in `kappa`, `weights` `(modes,)` Dirichlet(4) (no tiny modes)."""
    if not (isinstance(d, int) and d >= 1) or not (isinstance(modes, int) and modes >= 1):
        raise ValueError(f"`d` and `modes` must be ints >= 1; got d={d!r}, modes={modes!r}")
    k1, k2, k3 = jax.random.split(key, 3)
    means = jax.random.uniform(k1, (modes, d), minval=-math.pi, maxval=math.pi)
    kappas = jax.random.uniform(k2, (modes, d), minval=kappa[0], maxval=kappa[1])
    weights = jax.random.dirichlet(k3, jnp.full((modes,), 4.0))
    return dict(means=means, kappas=kappas, weights=weights)


@functools.partial(jax.jit, static_argnames=("n",))
def von_mises_mixture(key: PRNGKeyArray, n: int, params: dict[str, Array]) -> Array:
    """`n` draws `(n, d)` from the mixture `params` (`vm_mixture_params`)."""
    means, kappas, weights = (jnp.asarray(params[k]) for k in ("means", "kappas", "weights"))
    k1, k2 = jax.random.split(key)
    labels = jax.random.choice(k1, weights.shape[0], (n,), p=weights)
    return jax.vmap(_vm_vec)(jax.random.split(k2, n), means[labels], kappas[labels])


def _vm_vec(key, mu, kappa):
    keys = jax.random.split(key, mu.shape[0])
    return jax.vmap(lambda k, m, kap: von_mises_sample(k, m, kap, ()))(keys, mu, kappa)


def vm_mixture_logpdf(theta: Array, params: dict[str, Array]) -> Array:
    """Exact log density of the mixture at `theta` `(..., d)` (per unit volume rad^d)."""
    means, kappas, weights = (jnp.asarray(params[k]) for k in ("means", "kappas", "weights"))
    theta = jnp.asarray(theta)[..., None, :]  # (..., 1, d)
    comp = kappas * (jnp.cos(theta - means) - 1.0) - jnp.log(
        2 * math.pi * jax.scipy.special.i0e(kappas)
    )
    return jax.nn.logsumexp(jnp.sum(comp, axis=-1) + jnp.log(weights), axis=-1)


def _check_size(size):
    if not (isinstance(size, int) and size >= 4):
        raise ValueError(f"`size` must be an int >= 4; got {size!r}")


def _grid(size: int):
    x = jnp.arange(size) / size
    return jnp.meshgrid(x, x, indexing="ij")  # (row, col) in [0, 1)


@functools.partial(jax.jit, static_argnames=("n", "size"))
def oriented_gratings(key: PRNGKeyArray, n: int, size: int = 16, jitter: float = 20.0) -> Array:
    """`n` fields `(n, 1, size, size)` of doubled-angle phases: two regions of constant
    orientation (uniform, independent) split by a random straight edge through the
    field, each pixel jittered by VM(0, `jitter`) in the doubled angle."""
    _check_size(size)
    yy, xx = _grid(size)

    def one(k):
        k1, k2, k3, k4 = jax.random.split(k, 4)
        phi = jax.random.uniform(k1, (2,), maxval=math.pi)
        normal = jax.random.uniform(k2, (), maxval=2 * math.pi)
        offset = jax.random.uniform(k3, (), minval=-0.25, maxval=0.25)
        side = (jnp.cos(normal) * (xx - 0.5) + jnp.sin(normal) * (yy - 0.5)) > offset
        field = jnp.where(side, 2 * phi[0], 2 * phi[1])
        noise = von_mises_sample(k4, 0.0, jitter, (size, size))
        return wrap_phase(field + noise)[None]

    return jax.vmap(one)(jax.random.split(key, n))


@functools.partial(jax.jit, static_argnames=("n", "size", "modes"))
def flow_fields(key: PRNGKeyArray, n: int, size: int = 16, modes: int = 4) -> Array:
    """`n` fields `(n, 1, size, size)`: the doubled angle of the streamlines of a random
    periodic incompressible flow, stream function $\\psi = \\sum_k a_k \\cos(2\\pi k\\cdot x
    + \\varphi_k)$ over `modes` random wave vectors with integer entries in [-2, 2]."""
    _check_size(size)
    yy, xx = _grid(size)

    def one(k):
        k1, k2, k3 = jax.random.split(k, 3)
        kv = jax.random.randint(k1, (modes, 2), -2, 3).astype(jnp.float32)
        kv = jnp.where(jnp.all(kv == 0, axis=-1, keepdims=True), jnp.array([1.0, 0.0]), kv)
        amp = jax.random.normal(k2, (modes,)) / jnp.linalg.norm(kv, axis=-1)
        ph = jax.random.uniform(k3, (modes,), maxval=2 * math.pi)
        arg = 2 * math.pi * (kv[:, 0, None, None] * yy + kv[:, 1, None, None] * xx) + ph[:, None, None]
        ds = -2 * math.pi * amp[:, None, None] * jnp.sin(arg)  # d psi / d arg * 2 pi
        dpsi_dy = jnp.sum(ds * kv[:, 0, None, None], axis=0)
        dpsi_dx = jnp.sum(ds * kv[:, 1, None, None], axis=0)
        vx, vy = dpsi_dy, -dpsi_dx  # velocity = curl of the stream function
        return wrap_phase(2 * jnp.arctan2(vy, vx))[None]

    return jax.vmap(one)(jax.random.split(key, n))
