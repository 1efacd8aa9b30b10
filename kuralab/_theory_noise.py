r"""Noisy mean-field theory for `kl.theory`: von Mises laws, the critical coupling of
noisy oscillators (linear stability of incoherence) and, for identical oscillators, the
stationary order parameter and one-oscillator density. Noise is $\sqrt{2D}\,dW$; the
model and conventions are in `kuralab/theory.py`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._custom_types import RealArray, RealLike
from ._densities import (
    Distribution,
    _as_float,
    _check_positive,
    _check_scale,
    _Density,
    _density,
    _root_in_unit_interval,
)
from ._theory_mean_field import _gauss_legendre, _padded

__all__ = [
    "noisy_critical_coupling",
    "noisy_order_parameter",
    "noisy_stationary_density",
    "von_mises_density",
    "von_mises_mean_cos",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def von_mises_mean_cos(kappa: RealLike) -> RealArray:
    r"""$E[\cos(\theta - \psi)] = I_1(\kappa)/I_0(\kappa)$ under the von Mises law
    $p(\theta) \propto e^{\kappa\cos(\theta - \psi)}$ (`von_mises_density`).

    A single oscillator forced toward $\psi$ with strength $h$ and noise $D$
    ($d\theta = h\sin(\psi - \theta)dt + \sqrt{2D}\,dW$) is stationary with
    $\kappa = h/D$. Uses exponentially scaled Bessel functions (no overflow)."""
    kappa = _as_float("kappa", kappa)
    return jax.scipy.special.i1e(kappa) / jax.scipy.special.i0e(kappa)


def von_mises_density(
    theta: RealLike, kappa: RealLike, loc: RealLike = 0.0
) -> RealArray:
    r"""The von Mises density on the circle.

    $$p(\theta) = \frac{e^{\kappa\cos(\theta - \mu)}}{2\pi I_0(\kappa)}$$

    normalised over any interval of length $2\pi$. It is the stationary law of an
    oscillator pulled toward $\mu$ with strength $h$ under noise $D$ ($\kappa = h/D$),
    and of each oscillator in the noisy mean field (`noisy_stationary_density`).
    Evaluated as $e^{\kappa\cos(\theta - \mu) - |\kappa|} / (2\pi\, \mathrm{i0e}(\kappa))$
    with the exponentially scaled Bessel function, so large $\kappa$ does not
    overflow; $\kappa = 0$ is the uniform density $1/2\pi$ and $\kappa < 0$ is the
    law centred on $\mu + \pi$.

    **Arguments:**

    - `theta`: phase(s) (any real values; $2\pi$-periodic).
    - `kappa`: concentration $\kappa$.
    - `loc`: the mean direction $\mu$ (default 0). All three broadcast together.

    **Returns:** $p(\theta)$ (per radian), shape `broadcast(theta, kappa, loc)`.
    """
    theta = _as_float("theta", theta)
    kappa = _as_float("kappa", kappa)
    loc = _as_float("loc", loc)
    dtype = jnp.result_type(theta, kappa, loc)
    theta, kappa, loc = (x.astype(dtype) for x in (theta, kappa, loc))
    log_p = kappa * jnp.cos(theta - loc) - jnp.abs(kappa)
    return jnp.exp(log_p) / (2.0 * math.pi * jax.scipy.special.i0e(kappa))


def noisy_critical_coupling(
    D: RealLike, distribution: Distribution = "identical", scale: RealLike = 1.0
) -> RealArray:
    r"""Critical coupling of noisy mean-field oscillators, $N \to \infty$.

    Linearising the Fokker--Planck equation about incoherence, its first Fourier mode
    grows once $1 < \frac{K}{2}\int g(\omega)\,\frac{D}{D^2 + \omega^2}\,d\omega$
    (for a symmetric unimodal $g$ the eigenvalue crosses 0 on the real axis), so

    $$K_c = 2\left[\int g(\omega)\,\frac{D}{D^2 + \omega^2}\,d\omega\right]^{-1}.$$

    - identical oscillators (`"identical"`, $g = \delta$): $K_c = 2D$;
    - `"lorentzian"` (width $\gamma$): $K_c = 2(\gamma + D)$;
    - `"gaussian"` ($\sigma$): $K_c = 2\sigma\sqrt{2\pi} / [\pi\,
      \mathrm{erfcx}(D/\sigma\sqrt2)]$ (a Voigt profile at 0);
    - `"uniform"` ($[-\gamma, \gamma]$): $K_c = 2\gamma / \arctan(\gamma/D)$;
    - a `Tabulated` table or callable: the integral by 256-point Gauss--Legendre in
      $\omega = D\tan\phi$.

    As $D \to 0$ these tend to `critical_coupling` ($2/\pi g(0)$); they are
    differentiable in `D` and `scale`.

    **Arguments:**

    - `D`: diffusion coefficient of the noise $\sqrt{2D}\,dW$, > 0.
    - `distribution`: `"identical"` (default), `"lorentzian"`, `"gaussian"`,
      `"uniform"`, a `kl.theory.Tabulated` or a callable `g(omega)` (unit width).
    - `scale`: the width of $g$, > 0 (ignored for `"identical"`). Broadcasts against
      `D`.

    **Returns:** $K_c$, shape `broadcast(D, scale)`.

    ??? cite "Reference"

        ```bibtex
        @article{strogatz1991,
          author={Strogatz, Steven H. and Mirollo, Renato E.},
          title={Stability of incoherence in a population of coupled oscillators},
          journal={J. Stat. Phys.}, volume={63}, pages={613--635}, year={1991}}
        ```
    """
    D = _check_positive("D", D, "the noise diffusion coefficient")
    if isinstance(distribution, str) and distribution == "identical":
        return 2.0 * D
    density = _density(distribution)
    scale = _check_scale(scale)
    dtype = jnp.result_type(D, scale)
    D, scale = jnp.broadcast_arrays(D.astype(dtype), scale.astype(dtype))
    d = D / scale  # noise in units of the width
    if isinstance(distribution, str):
        if distribution == "lorentzian":
            return 2.0 * (scale + D)
        if distribution == "gaussian":
            erfcx = jax.scipy.special.erfcx(d / math.sqrt(2.0))
            return 2.0 * _SQRT_2PI * scale / (math.pi * erfcx)
        if distribution == "uniform":
            return 2.0 * scale / jnp.arctan(1.0 / d)
    return 2.0 * scale / _lorentzian_smoothed_g0(density, d)


@eqx.filter_jit
def _lorentzian_smoothed_g0(density: _Density, d: Array) -> Array:
    r"""$\int g(\omega)\, d / (d^2 + \omega^2)\, d\omega = \int g(d\tan\phi)\,
    d\phi$ over $|\phi| < \arctan(a/d)$, by 256-point Gauss--Legendre."""
    x, w = _gauss_legendre(256, d.dtype)
    if density.support is None:
        phi_max = jnp.full_like(d, math.pi / 2)
    else:
        phi_max = jnp.arctan(jnp.asarray(density.support, d.dtype) / d)
    phi = phi_max[..., None] * x
    return phi_max * jnp.sum(w * density.pdf(d[..., None] * jnp.tan(phi)), axis=-1)


def _mean_cos_over_kappa(x: Array) -> Array:
    """$I_1(x)/(x I_0(x))$, which is 1/2 at $x = 0$ and decreasing for $x > 0$."""
    small = jnp.abs(x) < 1e-3
    x_safe = jnp.where(small, 1.0, x)
    x2 = x * x
    series = 0.5 - x2 / 16.0 + x2 * x2 / 96.0
    return jnp.where(small, series, von_mises_mean_cos(x_safe) / x_safe)


def noisy_order_parameter(K: RealLike, D: RealLike) -> RealArray:
    r"""Stationary $R$ of identical mean-field oscillators with noise, $N \to \infty$.

    $$d\theta_i = \frac{K}{N}\sum_j \sin(\theta_j - \theta_i)\,dt + \sqrt{2D}\,dW_i$$

    Incoherence loses stability at $K_c = 2D$ (`noisy_critical_coupling`); above it
    each oscillator is von Mises distributed in the mean field $KR$
    (`noisy_stationary_density`) and $R$ is the nonzero root of

    $$R = \frac{I_1(KR/D)}{I_0(KR/D)},$$

    found by `optimistix.Bisection` on $(0, 1]$ (for the reduced residual
    $k\,I_1(kR)/(kR\,I_0(kR)) - 1$, $k = K/D$, which is decreasing in $R$). Returns 0 for
    $K \le 2D$. Vectorised over `K`, `D`; differentiable in both by implicit
    differentiation (0 below $K_c$); `jit`/`vmap`-compatible.

    ??? cite "Reference"

        ```bibtex
        @article{sakaguchi1988,
          author={Sakaguchi, Hidetsugu}, title={Cooperative phenomena in coupled
          oscillator systems under external fields}, journal={Prog. Theor. Phys.},
          volume={79}, pages={39--46}, year={1988}}
        ```
    """
    K = _as_float("K", K)
    D = _check_positive("D", D, "the noise diffusion coefficient")
    dtype = jnp.result_type(K, D)
    K, D = jnp.broadcast_arrays(K.astype(dtype), D.astype(dtype))
    return _padded(_noisy_R, K / D)


def _noisy_residual(R, k):
    return k * _mean_cos_over_kappa(k * R) - 1.0


@jax.jit
def _noisy_R(k: Array) -> Array:
    above = k > 2.0
    k_safe = jnp.where(above, k, 4.0)
    R = jnp.vectorize(lambda k: _root_in_unit_interval(_noisy_residual, k))(k_safe)
    return jnp.where(above, R, jnp.zeros_like(R))


def noisy_stationary_density(
    theta: RealLike, K: RealLike, D: RealLike, psi: RealLike = 0.0
) -> RealArray:
    r"""One-oscillator stationary density of identical noisy mean-field oscillators.

    In the stationary state each oscillator feels the mean field $KR$ toward $\psi$, so
    (for $N \to \infty$)

    $$p(\theta) = \frac{e^{(KR/D)\cos(\theta - \psi)}}{2\pi I_0(KR/D)},$$

    with $R$ = `noisy_order_parameter(K, D)`: the uniform density $1/2\pi$ for
    $K \le 2D$, a von Mises law with $\kappa = KR/D$ above.

    **Arguments:**

    - `theta`: phase(s) at which to evaluate.
    - `K`, `D`: coupling and noise diffusion coefficient (> 0).
    - `psi`: the mean phase $\psi$ (arbitrary: the state is rotation invariant).

    All broadcast together. **Returns:** $p(\theta)$, shape of the broadcast.
    """
    K = _as_float("K", K)
    D = _check_positive("D", D, "the noise diffusion coefficient")
    R = noisy_order_parameter(K, D)
    return von_mises_density(theta, K * R / D, psi)
