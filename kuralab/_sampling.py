"""Natural-frequency distributions and initial states (randomness only through `key`)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._custom_types import Frequencies, Key, Phases
from ._misc import nearest

DISTRIBUTIONS = ("lorentzian", "gaussian", "uniform")
SAMPLING = ("random", "quantile")


def _quantile_fn(distribution: str, loc, scale):
    if distribution == "lorentzian":
        return lambda u: loc + scale * jnp.tan(jnp.pi * (u - 0.5))
    if distribution == "gaussian":
        return lambda u: (
            loc + scale * math.sqrt(2.0) * jax.scipy.special.erfinv(2 * u - 1)
        )
    return lambda u: loc + scale * (2 * u - 1)


def sample_frequencies(
    key: Key | None,
    n: int,
    distribution: str = "lorentzian",
    *,
    loc: float = 0.0,
    scale: float = 1.0,
    sampling: str = "random",
    dtype=None,
) -> Frequencies:
    r"""Natural frequencies $\omega_i$ drawn from a unimodal symmetric density $g$.

    **Arguments:**

    - `key`: a PRNG key (may be `None` for `sampling="quantile"` without shuffling).
    - `n`: number of oscillators.
    - `distribution`: `"lorentzian"` ($g = \gamma / \pi(\omega^2 + \gamma^2)$, `scale`
      $= \gamma$), `"gaussian"` (`scale` $= \sigma$) or `"uniform"` (on
      $[\text{loc} - \text{scale}, \text{loc} + \text{scale}]$).
    - `loc`: centre of the distribution (default 0).
    - `scale`: width (see above), > 0.
    - `sampling`: `"random"` (i.i.d. draws) or `"quantile"` (the deterministic midpoint
      quantiles $G^{-1}((k + 1/2)/n)$, which remove sampling noise from finite-N
      comparisons with $N \to \infty$ theory; shuffled by `key` when one is given).

    **Returns:** array of shape `(n,)`, radians per unit time.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"`distribution` must be one of {DISTRIBUTIONS}; got {distribution!r}"
            + nearest(str(distribution), DISTRIBUTIONS)
        )
    if sampling not in SAMPLING:
        raise ValueError(
            f"`sampling` must be one of {SAMPLING}; got {sampling!r}"
            + nearest(str(sampling), SAMPLING)
        )
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive int; got {n!r}")
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"`scale` must be a finite number > 0; got {scale!r}")
    if not (isinstance(loc, int | float) and math.isfinite(loc)):
        raise ValueError(f"`loc` must be a finite number; got {loc!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    quantile = _quantile_fn(distribution, loc, scale)
    if sampling == "quantile":
        u = (jnp.arange(n, dtype=dtype) + 0.5) / n
        omega = quantile(u)
        return omega if key is None else jax.random.permutation(key, omega)
    if key is None:
        raise ValueError("`key` is required for sampling='random'")
    u = jax.random.uniform(key, (n,), dtype=dtype, minval=0.0, maxval=1.0)
    # Keep u strictly inside (0, 1) so the Lorentzian/Gaussian quantiles stay finite.
    eps = jnp.finfo(dtype).eps
    return quantile(jnp.clip(u, eps, 1 - eps))


def random_phases(key: Key, n: int, *, dtype=None) -> Phases:
    """Phases i.i.d. uniform on the torus, shape `(n,)`, in [-pi, pi)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive int; got {n!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jax.random.uniform(key, (n,), dtype=dtype, minval=-jnp.pi, maxval=jnp.pi)
