r"""Common-noise synchronisation of uncoupled identical oscillators, for `kl.theory`.

$N$ identical oscillators, uncoupled, each driven through its phase sensitivity $Z$:
$d\theta_i = \omega\,dt + \sigma Z(\theta_i) \circ dW_i$ (Stratonovich),
$\sigma^2 = 2D$ (`kl.Noise(D, common=c, sensitivity=Z)`), with noise correlation
$E[dW_i\,dW_j] = c\,dt$ between any two nodes. Weak-noise results ($D \ll \omega$,
$\theta$ uniform to leading order):

- fully common noise ($c = 1$): phase differences contract with the Lyapunov exponent
  $\lambda = -\tfrac{\sigma^2}{2}\langle Z'(\theta)^2\rangle = -D\langle Z'^2\rangle$
  (Teramae & Tanaka 2004);
- partially common noise: the phase difference $\phi$ of a pair has the stationary
  density $P(\phi) \propto 1/[g(0) - c\,g(\phi)]$, $g(\phi) = \langle Z(\theta)
  Z(\theta + \phi)\rangle$ (Nakao, Arai & Kawamura 2007). For $Z = \sin$ (or $\cos$):
  $P = \sqrt{1 - c^2} / [2\pi(1 - c\cos\phi)]$, $\langle\cos\phi\rangle =
  (1 - \sqrt{1 - c^2})/c$.

The derivations are in `analysis/common_noise.py`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._custom_types import RealArray, RealLike
from ._densities import _as_float
from ._misc import is_concrete

__all__ = ["common_noise_lyapunov", "common_noise_phase_density", "common_noise_synchrony"]

_GRID = 512  # quadrature nodes on the circle for a callable Z (spectral accuracy)


def _sensitivity(sensitivity):
    from ._noise import SENSITIVITIES

    if callable(sensitivity):
        return sensitivity
    if sensitivity not in SENSITIVITIES:
        raise ValueError(
            f"`sensitivity` must be one of {sorted(SENSITIVITIES)} or a callable Z(theta); "
            f"got {sensitivity!r}"
        )
    return SENSITIVITIES[sensitivity]


def _check_c(c):
    c = _as_float("c", c)
    if is_concrete(c) and bool(jnp.any((c < 0) | (c > 1))):
        raise ValueError(f"`c` must lie in [0, 1] (the common fraction); got {c}")
    return c


def _theta(dtype):
    return jnp.arange(_GRID, dtype=dtype) * (2 * math.pi / _GRID)


def common_noise_lyapunov(D: RealLike, sensitivity="sin") -> RealArray:
    r"""$\lambda = -D\,\langle Z'(\theta)^2\rangle_\theta$, the Lyapunov exponent of the
    phase difference under fully common noise (1/time; $-D/2$ for $Z = \sin$)."""
    D = _as_float("D", D)
    z = _sensitivity(sensitivity)
    th = _theta(D.dtype)
    _, dz = jax.jvp(z, (th,), (jnp.ones_like(th),))
    return -D * jnp.mean(dz**2)


def _g(z, phi):
    th = _theta(phi.dtype)
    return jnp.mean(z(th) * z(th + phi[..., None]), axis=-1)


def common_noise_phase_density(phi: RealLike, c: RealLike, sensitivity="sin") -> RealArray:
    r"""Stationary density of a pair's phase difference, $P(\phi) \propto
    1/[g(0) - c\,g(\phi)]$, normalised on the circle (1/rad); `c < 1`."""
    phi, c = _as_float("phi", phi), _check_c(c)
    if sensitivity in ("sin", "cos"):
        return jnp.sqrt(1 - c**2) / (2 * math.pi * (1 - c * jnp.cos(phi)))
    z = _sensitivity(sensitivity)
    grid = _theta(phi.dtype) - math.pi
    g0 = _g(z, jnp.zeros((), phi.dtype))
    norm = jnp.mean(1 / (g0 - c[..., None] * _g(z, grid)), axis=-1) * 2 * math.pi
    return 1 / ((g0 - c * _g(z, phi)) * norm)


def common_noise_synchrony(c: RealLike, sensitivity="sin") -> RealArray:
    r"""$\langle\cos\phi\rangle$ of a pair under `common_noise_phase_density`:
    $(1 - \sqrt{1 - c^2})/c$ for $Z = \sin$ (0 at $c = 0$, 1 at $c = 1$)."""
    c = _check_c(c)
    if sensitivity in ("sin", "cos"):
        safe = jnp.where(c > 0, c, 1.0)
        return jnp.where(c > 0, (1 - jnp.sqrt(jnp.clip(1 - c**2, 0.0))) / safe, 0.0)
    grid = _theta(c.dtype) - math.pi
    cs = jnp.minimum(c, 1 - 1e-6)
    p = common_noise_phase_density(grid, cs[..., None], sensitivity)
    mean = jnp.mean(jnp.cos(grid) * p, axis=-1) * 2 * math.pi
    return jnp.where(c < 1, mean, 1.0)
