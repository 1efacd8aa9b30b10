"""Synthetic data sets for the learning lines, generated in code (no downloads).

- `kuranet_disorder`: disordered oscillator networks, KuraNet's cases I--III.
- `gmm`, `moons`, `circles`, `spirals`: 2-D point clouds with integer labels, for cluster
  synchrony. Written here (a few lines each) rather than taken from scikit-learn, so
  that they are JAX functions of a key (reproducible, `vmap`-able, no extra dependency);
  they follow scikit-learn's conventions for `moons`/`circles`.

Every generator takes a PRNG `key` first and returns JAX arrays; the labels of the point
clouds are balanced (group sizes differ by at most one) and randomly ordered.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from .._checks import check_choice

__all__ = ["CASES", "circles", "gmm", "kuranet_disorder", "moons", "spirals"]

CASES = ("I", "II", "III")
#: NegBin(total_count=15, p=0.5) delays (mean 15 Euler steps), clipped at 40.
DELAY_COUNT, DELAY_PROB, DELAY_CLIP = 15, 0.5, 40


def _check_n(n, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ValueError(f"`n` must be an int >= {minimum} (number of nodes); got {n!r}")
    return n


def negative_binomial(key: PRNGKeyArray, shape, total_count: float, prob: float) -> Array:
    """Samples of torch's `NegativeBinomial(total_count, probs=prob)`: the number of
    successes (probability `prob`) before `total_count` failures; mean
    `total_count * prob / (1 - prob)`. Drawn as a gamma--Poisson mixture."""
    k1, k2 = jax.random.split(key)
    rate = jax.random.gamma(k1, total_count, shape) * (prob / (1.0 - prob))
    return jax.random.poisson(k2, rate, shape)


def kuranet_disorder(key: PRNGKeyArray, n: int, case: str = "I") -> dict:
    r"""One disordered network of KuraNet's global-synchrony experiments.

    - case `"I"`: $\omega_i \sim U(-1, 1)$;
    - case `"II"`: $\omega_i, h_i \sim U(-1, 1)$ (external field $h_i\sin\theta_i$);
    - case `"III"`: $\omega_i \sim U(2, 4)$, delays $\tau_i \sim$ NegBin(15, 0.5) Euler
      steps (mean 15), clipped at 40.

    **Returns:** a dict `{"omega": (n,), "field": (n,) or None, "delay": (n,) int32 or
    None}` for `kl.learn.kuranet_model` / `node_features`; a part the case does not have
    is `None` (so no forcing or delay machinery is built for it, even under `jit`).
    """
    n = _check_n(n)
    check_choice("case", case, CASES)
    k_omega, k_field, k_delay = jax.random.split(key, 3)
    if case == "III":
        omega = jax.random.uniform(k_omega, (n,), minval=2.0, maxval=4.0)
    else:
        omega = jax.random.uniform(k_omega, (n,), minval=-1.0, maxval=1.0)
    field = None
    if case == "II":
        field = jax.random.uniform(k_field, (n,), minval=-1.0, maxval=1.0)
    delay = None
    if case == "III":
        tau = negative_binomial(k_delay, (n,), DELAY_COUNT, DELAY_PROB)
        delay = jnp.clip(tau, 0, DELAY_CLIP).astype(jnp.int32)
    return {"omega": omega, "field": field, "delay": delay}


def _balanced_labels(key, n: int, groups: int) -> Array:
    return jax.random.permutation(key, jnp.arange(n, dtype=jnp.int32) % groups)


def _check_groups(groups, n: int) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int) or not 1 <= groups <= n:
        raise ValueError(f"`groups` must be an int in [1, n = {n}]; got {groups!r}")
    return groups


def gmm(
    key: PRNGKeyArray, n: int, groups: int = 5, *, radius: float = 10.0, scale: float = 1.0
) -> tuple[Array, Array]:
    r"""`groups` isotropic Gaussians (standard deviation `scale`) centred at
    `radius` $(\cos 2\pi k/G, \sin 2\pi k/G)$, the reference's GMM (radius 10, identity
    covariance).

    **Returns:** `(x, labels)`: points `(n, 2)` and labels `(n,)` int32 in `[0, groups)`.
    """
    n = _check_n(n)
    groups = _check_groups(groups, n)
    k_lab, k_pts = jax.random.split(key)
    labels = _balanced_labels(k_lab, n, groups)
    angle = 2 * math.pi * labels / groups
    centres = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    return centres + scale * jax.random.normal(k_pts, (n, 2)), labels


def moons(key: PRNGKeyArray, n: int, *, noise: float = 0.1) -> tuple[Array, Array]:
    """Two interleaving half circles (scikit-learn's `make_moons` layout: the upper
    moon centred at (0, 0), the lower at (1, 0.5), radius 1) plus Gaussian `noise`.

    **Returns:** `(x (n, 2), labels (n,))`, labels in {0, 1}.
    """
    n = _check_n(n)
    k_lab, k_t, k_noise = jax.random.split(key, 3)
    labels = _balanced_labels(k_lab, n, 2)
    t = jax.random.uniform(k_t, (n,), maxval=math.pi)
    upper = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    lower = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
    x = jnp.where(labels[:, None] == 0, upper, lower)
    return x + noise * jax.random.normal(k_noise, (n, 2)), labels


def circles(
    key: PRNGKeyArray, n: int, *, noise: float = 0.05, factor: float = 0.5
) -> tuple[Array, Array]:
    """Two concentric circles, radii 1 (label 0) and `factor` (label 1), plus Gaussian
    `noise` (scikit-learn's `make_circles` layout).

    **Returns:** `(x (n, 2), labels (n,))`.
    """
    n = _check_n(n)
    if not 0 < factor < 1:
        raise ValueError(f"`factor` must be in (0, 1); got {factor!r}")
    k_lab, k_t, k_noise = jax.random.split(key, 3)
    labels = _balanced_labels(k_lab, n, 2)
    t = jax.random.uniform(k_t, (n,), maxval=2 * math.pi)
    r = jnp.where(labels == 0, 1.0, factor)
    x = r[:, None] * jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    return x + noise * jax.random.normal(k_noise, (n, 2)), labels


def spirals(
    key: PRNGKeyArray, n: int, arms: int = 2, *, turns: float = 1.5, noise: float = 0.05
) -> tuple[Array, Array]:
    """`arms` interleaved Archimedean spirals (arm k rotated by 2 pi k / arms), radius
    growing from 0 to 1 over `turns` turns, plus Gaussian `noise`.

    **Returns:** `(x (n, 2), labels (n,))`, labels in `[0, arms)`.
    """
    n = _check_n(n)
    arms = _check_groups(arms, n)
    k_lab, k_t, k_noise = jax.random.split(key, 3)
    labels = _balanced_labels(k_lab, n, arms)
    s = jnp.sqrt(jax.random.uniform(k_t, (n,)))  # uniform density along the arm's area
    angle = 2 * math.pi * (turns * s + labels / arms)
    x = s[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    return x + noise * jax.random.normal(k_noise, (n, 2)), labels
