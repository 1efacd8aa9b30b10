r"""Scores on the circle: the wrapped normal and the von Mises (orientation diffusion).

The one-step kernel of the orientation-diffusion chain is a wrapped normal
(SCIENCE.md §3): $p(y \mid \mu) = \mathrm{WN}(y; \mu, \sigma^2) = \sum_{k\in\mathbb Z}
\mathcal N(y - \mu + 2\pi k; 0, \sigma^2)$. Its score in $y$,

$$\partial_y \log \mathrm{WN}(y; \mu, \sigma^2)
  = -\frac{1}{\sigma^2}\,\frac{\sum_k (d + 2\pi k)\, e^{-(d + 2\pi k)^2 / 2\sigma^2}}
                               {\sum_k e^{-(d + 2\pi k)^2 / 2\sigma^2}},
  \qquad d = \mathrm{wrap}(y - \mu) \in [-\pi, \pi),$$

is the local score-matching target. The sum is truncated to $|k| \le$ `terms`
(reference: 3). Wrapping $d$ first and normalising the weights as a softmax of the
log-weights keeps it exact and finite in float32 for any $\sigma > 0$: at $\sigma = 10^{-3}$
the $k = 0$ weight is 1 and the score is $-d/\sigma^2$ without overflow.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._misc import wrap_phase

__all__ = [
    "wrapped_normal_logpdf",
    "wrapped_normal_score",
    "von_mises_logpdf",
    "von_mises_sample",
    "von_mises_score",
]


def _check_terms(terms) -> int:
    if isinstance(terms, bool) or not isinstance(terms, int) or terms < 0:
        raise ValueError(f"`terms` must be an int >= 0 (wrapping terms each side); got {terms!r}")
    return terms


def _log_weights(y, mean, sigma, terms):
    y = jnp.asarray(y)
    dtype = jnp.result_type(y, float)
    d = wrap_phase(jnp.asarray(y, dtype) - jnp.asarray(mean, dtype))
    k = jnp.arange(-terms, terms + 1, dtype=dtype) * (2 * math.pi)
    x = d[..., None] + k  # (..., 2 terms + 1)
    var = jnp.asarray(sigma, dtype)[..., None] ** 2
    return x, -0.5 * x * x / var, var


def wrapped_normal_score(
    y: Float[ArrayLike, "*shape"],
    mean: Float[ArrayLike, "*shape"],
    sigma: Float[ArrayLike, "*shape"],
    terms: int = 3,
) -> Float[Array, "*shape"]:
    r"""Score $\partial_y \log \mathrm{WN}(y; \mu, \sigma^2)$ of the wrapped normal
    (module docstring), elementwise.

    **Arguments:**

    - `y`: angles (radians, any range), shape `(*shape)`.
    - `mean`: $\mu$, broadcastable against `y`.
    - `sigma`: standard deviation $\sigma > 0$ of the unwrapped normal, broadcastable.
    - `terms`: wrapping terms $|k| \le$ `terms` (default 3, the reference's).

    **Returns:** the score in rad$^{-1}$, the broadcast shape. Differentiable.
    """
    terms = _check_terms(terms)
    x, logw, var = _log_weights(y, mean, sigma, terms)
    w = jax.nn.softmax(logw, axis=-1)
    return -jnp.sum(w * x, axis=-1) / var[..., 0]


def wrapped_normal_logpdf(
    y: Float[ArrayLike, "*shape"],
    mean: Float[ArrayLike, "*shape"],
    sigma: Float[ArrayLike, "*shape"],
    terms: int = 3,
) -> Float[Array, "*shape"]:
    r"""$\log \mathrm{WN}(y; \mu, \sigma^2)$ (truncated to $|k| \le$ `terms`), a density
    on $[-\pi, \pi)$ in rad$^{-1}$; `jax.grad` of it in `y` is `wrapped_normal_score`."""
    terms = _check_terms(terms)
    x, logw, var = _log_weights(y, mean, sigma, terms)
    return jax.nn.logsumexp(logw, axis=-1) - 0.5 * jnp.log(2 * math.pi * var[..., 0])


def von_mises_logpdf(theta, mu, kappa) -> Array:
    r"""$\log \mathrm{VM}(\theta; \mu, \kappa) = \kappa\cos(\theta - \mu) - \log(2\pi I_0(\kappa))$,
    elementwise (stable for large $\kappa$ through `i0e`)."""
    kappa = jnp.asarray(kappa, jnp.result_type(theta, float))
    return kappa * (jnp.cos(theta - mu) - 1.0) - jnp.log(2 * math.pi * jax.scipy.special.i0e(kappa))


def von_mises_score(theta, mu, kappa) -> Array:
    r"""$\partial_\theta \log \mathrm{VM}(\theta; \mu, \kappa) = -\kappa \sin(\theta - \mu)$."""
    return -jnp.asarray(kappa) * jnp.sin(jnp.asarray(theta) - mu)


def von_mises_sample(key, mu, kappa, shape: tuple[int, ...], *, rounds: int = 24) -> Array:
    r"""I.i.d. draws from $\mathrm{VM}(\mu, \kappa)$ of shape `shape`, in $[-\pi, \pi)$.

    Best & Fisher's (1979) wrapped-Cauchy rejection sampler, vectorised: `rounds`
    proposals per element, the first accepted one kept (acceptance is >= 0.65 for every
    $\kappa$, so all `rounds` = 24 fail with probability < 1e-10). $\rho$ is computed in a
    cancellation-free form so small $\kappa$ is right in float32; $\kappa = 0$ is uniform.
    `kappa` is a scalar (>= 0).
    """
    dtype = jnp.result_type(float)
    kappa = jnp.maximum(jnp.asarray(kappa, dtype), 1e-8)
    q = jnp.sqrt(1.0 + 4.0 * kappa**2)
    tau = 1.0 + q
    tau_m2 = 4.0 * kappa**2 / (q + 1.0)  # tau - 2
    rho = tau * tau_m2 / (tau + jnp.sqrt(2.0 * tau)) / (2.0 * kappa)
    r = (1.0 + rho**2) / (2.0 * rho)
    u = jax.random.uniform(key, (3, rounds) + tuple(shape), dtype)
    z = jnp.cos(math.pi * u[0])
    f = (1.0 + r * z) / (r + z)
    c = kappa * (r - f)
    ok = (c * (2.0 - c) - u[1] > 0) | (jnp.log(c / u[1]) + 1.0 - c >= 0)
    first = jnp.argmax(ok, axis=0)
    f = jnp.take_along_axis(f, first[None], axis=0)[0]
    sign = jnp.where(jnp.take_along_axis(u[2], first[None], axis=0)[0] < 0.5, -1.0, 1.0)
    theta = sign * jnp.arccos(jnp.clip(f, -1.0, 1.0))
    return wrap_phase(theta + mu)
