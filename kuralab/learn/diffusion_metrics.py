r"""Diagnostics of orientation diffusion: forward-process SNR and coherence, and sample
quality on the torus (circular moments, von Mises-kernel MMD).

- `coherence(chain, theta0)`: $E[\cos(\theta_t - \theta_0)]$ per step; for the isotropic
  chain it is $\exp(-\tfrac12\sum_{j<t}\sigma_j^2)$ exactly (`isotropic_coherence`), since
  $\theta_t - \theta_0$ is a wrapped normal of variance $\sum_{j<t}\sigma_j^2$.
- `forward_snr`: the SNR of the phasor $e^{i\theta_t}$ over an ensemble of chains from one
  $\theta_0$ (`kl.spectral.snr`: signal $|E[e^{i\theta_t}\mid\theta_0]|^2$ against the
  noise variance), overall or per spatial-frequency band for fields. Isotropic chain:
  $\mathrm{SNR}_t = e^{-S_t}/(1 - e^{-S_t})$, $S_t = \sum_{j<t}\sigma_j^2$.
- `circular_moments`, `moment_error`: trigonometric moments $m_p = E[e^{ip\theta}]$ per
  coordinate and their mean absolute difference between two sample sets.
- `von_mises_mmd`: the unbiased squared MMD with the kernel
  $k(x, y) = \exp\big(\kappa\,\mathrm{mean}_d(\cos(x_d - y_d) - 1)\big)$ on $T^d$.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._spectral_lattice import snr as _snr
from .diffusion import OrientationDiffusion

__all__ = [
    "circular_moments",
    "coherence",
    "forward_snr",
    "isotropic_coherence",
    "moment_error",
    "von_mises_mmd",
]


def coherence(chain: Float[ArrayLike, "*members steps *shape"], theta0) -> Array:
    """$E[\\cos(\\theta_t - \\theta_0)]$ averaged over every axis but the step axis,
    which is the first axis after those of `theta0`'s broadcast leading members: pass
    `chain` `(steps, *shape)` or `(members, steps, *shape)` with `theta0` `(*shape)`."""
    chain = jnp.asarray(chain)
    theta0 = jnp.asarray(theta0)
    d = jnp.cos(chain - theta0)
    axis = chain.ndim - theta0.ndim - 1
    other = tuple(a for a in range(chain.ndim) if a != axis)
    return jnp.mean(d, axis=other)


def isotropic_coherence(process: OrientationDiffusion) -> Array:
    """The closed form $\\exp(-\\tfrac12\\sum_{j<t}\\sigma_j^2)$, $t = 1..T$, shape `(steps,)`
    (exact for the isotropic chain)."""
    return jnp.exp(-0.5 * jnp.cumsum(process.sigma2))


def forward_snr(process: OrientationDiffusion, theta0: Float[ArrayLike, "*shape"], *,
                key: PRNGKeyArray, members: int = 64, bands=None) -> Array:
    """SNR per step of $e^{i\\theta_t}$ over `members` forward chains from `theta0`:
    shape `(steps,)`, or `(steps, n_bands)` with `bands` (edges in rad per lattice
    unit; the state's last two axes are the lattice). Reuses `kl.spectral.snr`."""
    if not (isinstance(members, int) and members >= 2):
        raise ValueError(f"`members` must be an int >= 2; got {members!r}")
    theta0 = jnp.asarray(theta0)
    keys = jax.random.split(key, members)
    chains = jax.vmap(lambda k: process.forward(theta0, key=k))(keys)  # (M, T, *shape)
    z = jnp.exp(1j * chains)
    if bands is None:
        return _snr(z, axis=0, axes=tuple(range(2, z.ndim)))
    if theta0.ndim < 2:
        raise ValueError(f"`bands` needs a lattice state (..., H, W); got shape {theta0.shape}")
    if theta0.ndim > 2:  # (..., H, W) with leading channel axes: the mean over channels
        z = z.reshape(z.shape[:2] + (-1,) + z.shape[-2:])
        per = [_snr(z[:, :, c], axis=0, axes=(-2, -1), bands=bands) for c in range(z.shape[2])]
        return jnp.mean(jnp.stack(per), axis=0)
    return _snr(z, axis=0, axes=(-2, -1), bands=bands)


def circular_moments(theta: Float[ArrayLike, "n *shape"], orders=(1, 2)) -> Array:
    """$m_p = \\frac1n\\sum_j e^{ip\\theta_j}$ over the first axis: `(len(orders), *shape)` complex."""
    theta = jnp.asarray(theta)
    return jnp.stack([jnp.mean(jnp.exp(1j * p * theta), axis=0) for p in orders])


def moment_error(samples, data, orders=(1, 2)) -> Array:
    """Mean $|m_p(\\text{samples}) - m_p(\\text{data})|$ over orders and coordinates."""
    return jnp.mean(jnp.abs(circular_moments(samples, orders) - circular_moments(data, orders)))


def von_mises_mmd(x: Float[ArrayLike, "n *shape"], y: Float[ArrayLike, "m *shape"],
                  kappa: float = 4.0) -> Array:
    """Unbiased squared MMD between sample sets on the torus (module docstring kernel);
    coordinates are flattened, `n, m >= 2`."""
    x = jnp.asarray(x).reshape(jnp.shape(x)[0], -1)
    y = jnp.asarray(y).reshape(jnp.shape(y)[0], -1)
    if x.shape[0] < 2 or y.shape[0] < 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"`x`, `y` must be (n >= 2, d) sample sets of the same d; got {x.shape}, {y.shape}")

    def gram(a, b):
        ca, sa, cb, sb = jnp.cos(a), jnp.sin(a), jnp.cos(b), jnp.sin(b)
        mean_cos = (ca @ cb.T + sa @ sb.T) / a.shape[1]
        return jnp.exp(kappa * (mean_cos - 1.0))

    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    sxx = (jnp.sum(kxx) - jnp.trace(kxx)) / (n * (n - 1))
    syy = (jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
    return sxx + syy - 2 * jnp.mean(kxy)
