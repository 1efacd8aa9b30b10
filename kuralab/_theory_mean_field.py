r"""Noise-free mean-field theory for `kl.theory`: Kuramoto's critical coupling, the
stationary order parameter $R_\infty(K)$ (self-consistency by quadrature and bisection),
the Ott--Antonsen $R(t)$ for Lorentzian frequencies, and the finite-size floor of $R$ in
the incoherent state. The model, densities and conventions are in `kuralab/theory.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._custom_types import RealArray, RealLike
from ._densities import (
    Distribution,
    _as_float,
    _check_scale,
    _Density,
    _density,
    _root_in_unit_interval,
)
from ._misc import is_concrete

__all__ = [
    "critical_coupling",
    "finite_size_incoherent_R",
    "order_parameter",
    "ott_antonsen",
    "ott_antonsen_time",
]


# ---------------------------------------------------------------------------------
# Critical coupling and the stationary order parameter
# ---------------------------------------------------------------------------------


def critical_coupling(
    distribution: Distribution = "lorentzian", scale: RealLike = 1.0
) -> RealArray:
    r"""Kuramoto's critical coupling for the onset of synchrony.

    $$K_c = \frac{2}{\pi g(0)}$$

    Lorentzian: $K_c = 2\gamma$. Gaussian: $K_c = \sigma\sqrt{8/\pi} \approx
    1.5958\,\sigma$. Uniform on $[-\gamma, \gamma]$: $K_c = 4\gamma/\pi$. For any other
    symmetric unimodal $g$ (a `Tabulated` table or a callable), the same formula with
    its $g(0)$.

    **Arguments:**

    - `distribution`: `"lorentzian"`, `"gaussian"`, `"uniform"`, a
      `kl.theory.Tabulated(omega, density)` or a callable `g(omega)` (unit width,
      symmetric, unimodal, normalised; see `Tabulated` for the checks).
    - `scale`: the width ($\gamma$ or $\sigma$; the stretch of a table), > 0; scalar or
      array.

    **Returns:** $K_c$, same shape as `scale`.

    ??? cite "Reference"

        ```bibtex
        @article{strogatz2000,
          author={Strogatz, Steven H.},
          title={From {K}uramoto to {C}rawford: exploring the onset of synchronization
                 in populations of coupled oscillators},
          journal={Physica D}, volume={143}, pages={1--20}, year={2000}}
        ```
    """
    density = _density(distribution)
    scale = _check_scale(scale)
    return (2.0 / (math.pi * jnp.asarray(density.g0, scale.dtype))) * scale


def _gauss_legendre(n: int, dtype) -> tuple[Array, Array]:
    x, w = np.polynomial.legendre.leggauss(n)
    return jnp.asarray(x, dtype), jnp.asarray(w, dtype)


#: The locked integral splits at |omega| = _CORE widths (see `_locked_integral`).
_CORE = 8.0


def _arcsin_of_ratio(a, r: Array) -> Array:
    r"""$\arcsin(\min(1, a/r))$ with a finite derivative everywhere (the branch at 1
    is a constant, not `arcsin'(1) = inf` times 0)."""
    a = jnp.asarray(a, r.dtype)
    beyond = r > a
    safe_r = jnp.where(beyond, r, 2.0 * a)
    return jnp.where(beyond, jnp.arcsin(a / safe_r), math.pi / 2)


def _locked_integral(r: Array, density: _Density, nodes: int = 128) -> Array:
    r"""$\int_{-\pi/2}^{\pi/2} \cos^2\theta\, g(r\sin\theta)\, d\theta$ for unit scale.

    The integrand is even and, for large $r$, peaked at $\theta = 0$ with width
    $1/r$ (a Lorentzian's poles sit at $\theta \approx \pm i/r$, which stalls one
    fixed rule on the whole interval once $r \gtrsim 20$). So $[0, \theta_{\max}]$ is
    cut where $|\omega| = r\sin\theta$ equals 8 widths and $\sqrt{8r}$, and each
    piece gets a `nodes`-point Gauss--Legendre rule: accurate to ~1e-13 (relative)
    for $r$ up to $10^5$. $\theta_{\max} = \arcsin(\min(1, a/r))$ for a support of
    half-width $a$, so the integrand is smooth on each piece (no kink at the edge of a
    compact support, e.g. the uniform density's).
    """
    x, w = _gauss_legendre(nodes, r.dtype)
    t = 0.5 * (x + 1.0)  # nodes on [0, 1], weights w / 2
    if density.support is None:
        theta_max = jnp.full_like(r, math.pi / 2)
    else:
        theta_max = _arcsin_of_ratio(density.support, r)
    # Break points at |omega| = 8 and at the geometric mean of 8 and r.
    theta_core = jnp.minimum(_arcsin_of_ratio(_CORE, r), theta_max)
    theta_mid = jnp.minimum(
        _arcsin_of_ratio(jnp.sqrt(_CORE * jnp.maximum(r, _CORE)), r), theta_max
    )
    edges = jnp.stack([jnp.zeros_like(r), theta_core, theta_mid, theta_max], axis=-1)
    lo, width = edges[..., :-1, None], jnp.diff(edges, axis=-1)[..., None]
    theta = lo + width * t  # (..., 3 pieces, nodes): one call of the pdf
    s = jnp.sin(theta)
    f = (1.0 - s * s) * density.pdf(r[..., None, None] * s)  # cos^2 = 1 - sin^2
    return jnp.sum(width * w * f, axis=(-2, -1))  # 2 (even) * w / 2 (to [0, 1])


def _self_consistent_R(K: Array, distribution, scale: Array) -> Array:
    r"""Nonzero branch of the self-consistency $1 = K \int \cos^2\theta\,
    g(KR\sin\theta)\, d\theta$ (0 at and below $K_c$), for any density.

    With $u = K/\gamma$ in units of the scale, the residual
    $F(R) = u\, I(uR) - 1$ ($I$ the unit-scale `_locked_integral`) is non-increasing
    in $R$ for a unimodal $g$, positive near $R = 0$ iff $u > u_c = 2/(\pi g(0))$, and
    negative at $R = 1$ (only the locked fraction $< 1$ contributes), so bisection on
    $[0, 1]$ always brackets the root. Below $u_c$ the solve runs at a stand-in
    $u = 2u_c$ and the result is replaced by an exact 0 (with zero derivative).
    """
    density = _density(distribution)
    K, scale = jnp.broadcast_arrays(K, scale)
    u = K / scale  # coupling in units of the width
    return _padded(lambda u: _locked_R_jit(density, u), u)


def _padded(fn: Callable, x: Array) -> Array:
    """`fn(x)` for an elementwise `fn`, evaluated on `x` flattened and padded to a
    power-of-two length (>= 8), so that sweeps of different lengths share one
    compilation."""
    if x.ndim == 0 or x.size == 0:
        return fn(x)
    flat = x.ravel()
    size = max(8, 1 << (flat.size - 1).bit_length())
    padded = jnp.concatenate([flat, jnp.broadcast_to(flat[:1], (size - flat.size,))])
    return fn(padded)[: flat.size].reshape(x.shape)


def _locked_R(density: _Density, u: Array) -> Array:
    uc = 2.0 / (math.pi * jnp.asarray(density.g0, u.dtype))
    above = u > uc
    u_safe = jnp.where(above, u, 2.0 * uc)

    def residual(R, u):
        return u * _locked_integral(u * R, density) - 1.0

    R = jnp.vectorize(lambda u: _root_in_unit_interval(residual, u))(u_safe)
    return jnp.where(above, R, jnp.zeros_like(R))


_locked_R_jit = eqx.filter_jit(_locked_R)


def order_parameter(
    K: RealLike, distribution: Distribution = "lorentzian", scale: RealLike = 1.0
) -> RealArray:
    r"""Stationary order parameter $R_\infty(K)$ of the infinite mean-field model.

    Below $K_c$ the incoherent state ($R = 0$) is returned. Above it, the partially
    locked state: for a Lorentzian the closed form

    $$R = \sqrt{1 - 2\gamma/K}\qquad (K > 2\gamma),$$

    otherwise the nonzero root of Kuramoto's self-consistency condition (only locked
    oscillators contribute for a symmetric $g$)

    $$R = K R \int_{-\pi/2}^{\pi/2} \cos^2\theta\; g(K R \sin\theta)\, d\theta ,$$

    with the integral by piecewise Gauss--Legendre quadrature (split where $g$ peaks,
    so it stays accurate for $K R$ up to $10^5$ widths) and the root by
    `optimistix.Bisection` on $R \in (0, 1]$: accurate to a few float eps of the
    input dtype for the named densities; a table is interpolated linearly, which
    limits the accuracy to ~ its grid spacing squared. The Gaussian branch bifurcates
    continuously from 0 at $K_c$ ($R \approx \sqrt{16 (K - K_c)/(\pi K_c^4\,
    |g''(0)|)}$). The uniform density is degenerate: the transition is first order,
    with a jump from $R = 0$ to $R = \pi/4$ at $K_c^+$ (all oscillators lock at once).

    Differentiable in `K` and `scale` (`jax.grad`, `jax.jvp`): the numerical branch
    uses implicit differentiation of the self-consistency (optimistix's
    `ImplicitAdjoint`), and the derivative is exactly 0 below $K_c$. Works under
    `jax.jit` and `jax.vmap`.

    **Arguments:**

    - `K`: coupling strength(s), any shape (same units as the frequencies).
    - `distribution`: `"lorentzian"` (default), `"gaussian"`, `"uniform"`, a
      `kl.theory.Tabulated(omega, density)` or a callable `g(omega)` (unit width,
      symmetric, unimodal, normalised).
    - `scale`: the width ($\gamma$ or $\sigma$), > 0; broadcasts against `K`.

    **Returns:** $R_\infty$, shape `broadcast(K, scale)`, in $[0, 1)$.

    ??? cite "Reference"

        ```bibtex
        @article{strogatz2000,
          author={Strogatz, Steven H.},
          title={From {K}uramoto to {C}rawford: exploring the onset of synchronization
                 in populations of coupled oscillators},
          journal={Physica D}, volume={143}, pages={1--20}, year={2000}}
        @article{pazo2005,
          author={Paz{\'o}, Diego},
          title={Thermodynamic limit of the first-order phase transition in the
                 {K}uramoto model},
          journal={Phys. Rev. E}, volume={72}, pages={046211}, year={2005}}
        ```
    """
    density = _density(distribution)  # validates the name or table up front
    K = _as_float("K", K)
    scale = _check_scale(scale).astype(K.dtype)
    if isinstance(distribution, str) and distribution == "lorentzian":
        Kc = 2.0 * scale
        above = K > Kc
        safe_K = jnp.where(above, K, 2.0 * Kc + 1.0)
        return jnp.where(above, jnp.sqrt(1.0 - Kc / safe_K), 0.0)
    return _self_consistent_R(K, density, scale)


# ---------------------------------------------------------------------------------
# Ott-Antonsen dynamics
# ---------------------------------------------------------------------------------


def ott_antonsen(
    t: RealLike, R0: RealLike, K: RealLike, scale: RealLike = 1.0
) -> RealArray:
    r"""Exact $R(t)$ on the Ott--Antonsen manifold (Lorentzian $g$, $N \to \infty$).

    For Lorentzian frequencies of width $\gamma$ the order parameter on the
    Ott--Antonsen manifold obeys

    $$\dot R = -\gamma R + \frac{K}{2} R (1 - R^2),$$

    a Bernoulli equation $\dot R = aR - bR^3$ with $a = K/2 - \gamma$, $b = K/2$. With
    $u = R^{-2}$ it becomes linear, $\dot u = -2au + 2b$, giving

    $$R(t) = \frac{R_0}{\sqrt{e^{-2at} + 2 b R_0^2\, t\, \varphi(2at)}},\qquad
      \varphi(x) = \frac{1 - e^{-x}}{x}\ (\varphi(0) = 1),$$

    which is finite for every sign of $a$ (including $K = K_c = 2\gamma$, where
    $R = R_0/\sqrt{1 + K R_0^2 t}$) and tends to $\sqrt{1 - 2\gamma/K}$ above $K_c$
    and to 0 below it.

    **Arguments:**

    - `t`: time(s) since the initial state, >= 0.
    - `R0`: initial order parameter in $[0, 1]$ (0 stays 0: the incoherent fixed
      point).
    - `K`: mean-field coupling strength.
    - `scale`: Lorentzian width $\gamma$ (default 1).

    All arguments broadcast together.

    **Returns:** $R(t)$, shape `broadcast(t, R0, K, scale)`.

    ??? cite "Reference"

        ```bibtex
        @article{ott2008,
          author={Ott, Edward and Antonsen, Thomas M.},
          title={Low dimensional behavior of large systems of globally coupled
                 oscillators},
          journal={Chaos}, volume={18}, pages={037113}, year={2008}}
        ```
    """
    t = _as_float("t", t)
    dtype = jnp.result_type(t, jnp.asarray(R0), jnp.asarray(K), float)
    t = t.astype(dtype)
    R0 = _as_float("R0", R0).astype(dtype)
    K = _as_float("K", K).astype(dtype)
    gamma = _check_scale(scale).astype(dtype)
    if is_concrete(R0) and np.any((np.asarray(R0) < 0) | (np.asarray(R0) > 1)):
        raise ValueError(f"`R0` must lie in [0, 1]; got {R0}")
    return _ott_antonsen(t, R0, K, gamma)


@jax.jit  # one kernel rather than a dozen eager operations
def _ott_antonsen(t: Array, R0: Array, K: Array, gamma: Array) -> Array:
    a = 0.5 * K - gamma
    b = 0.5 * K
    x = 2.0 * a * t
    small = jnp.abs(x) < 1e-4
    x_safe = jnp.where(small, 1.0, x)
    phi = jnp.where(small, 1.0 - 0.5 * x + x * x / 6.0, -jnp.expm1(-x_safe) / x_safe)
    # R^-2 = e^{-x} / R0^2 + 2 b t phi, with e^{-x} / R0^2 formed in log space so that
    # neither R0 -> 0 nor large |x| produces 0/0 or inf/inf (R0 = 0 gives R = 0).
    decay = jnp.exp(-x - 2.0 * jnp.log(R0))
    return jax.lax.rsqrt(decay + 2.0 * b * t * phi)


def ott_antonsen_time(
    R0: RealLike, r: RealLike, K: RealLike, scale: RealLike = 1.0
) -> RealArray:
    r"""Time for $R$ to go from `R0` to `r` on the Ott--Antonsen manifold (Lorentzian
    $g$ of width $\gamma$, $N \to \infty$): the inverse of `ott_antonsen` in $t$.

    With $u = R^{-2}$, $\dot u = -2au + 2b$ ($a = K/2 - \gamma$, $b = K/2$), so
    $u(t) = u_\infty + (u_0 - u_\infty) e^{-2at}$ with $u_\infty = b/a$ and

    $$t = \frac{1}{2a} \ln\frac{u_0 - u_\infty}{u_r - u_\infty}
        \quad (a \ne 0), \qquad t = \frac{u_r - u_0}{2b} \quad (a = 0).$$

    Above $K_c = 2\gamma$ this is the time to resynchronise from `R0` up to
    `r` $< R_\infty = \sqrt{1 - 2\gamma/K}$, a logistic law in $R^2$; with $K = 0$ it is
    the free decay $R = R_0 e^{-\gamma t}$.

    **Arguments:** `R0`, `r` in $(0, 1]$, `K` >= 0, `scale` $= \gamma > 0$; broadcast
    together.

    **Returns:** $t$ (model time units); NaN where `r` is not reached from `R0` (on the
    other side of $R_\infty$, or approached only as $t \to \infty$).
    """
    dtype = jnp.result_type(jnp.asarray(R0), jnp.asarray(r), jnp.asarray(K), float)
    R0 = _as_float("R0", R0).astype(dtype)
    r = _as_float("r", r).astype(dtype)
    K = _as_float("K", K).astype(dtype)
    gamma = _check_scale(scale).astype(dtype)
    for name, v in (("R0", R0), ("r", r)):
        if is_concrete(v) and np.any((np.asarray(v) <= 0) | (np.asarray(v) > 1)):
            raise ValueError(f"`{name}` must lie in (0, 1]; got {v}")
    a = 0.5 * K - gamma
    b = 0.5 * K
    u0, ur = R0**-2, r**-2
    a_safe = jnp.where(a == 0, 1.0, a)
    u_inf = b / a_safe
    ratio = (u0 - u_inf) / (ur - u_inf)
    t = jnp.where(a == 0, (ur - u0) / (2 * b), jnp.log(ratio) / (2 * a_safe))
    return jnp.where(jnp.isfinite(t) & (t >= 0) & ((a == 0) | (ratio > 0)), t, jnp.nan)


# ---------------------------------------------------------------------------------
# Finite-size incoherence
# ---------------------------------------------------------------------------------


def finite_size_incoherent_R(n: RealLike) -> RealArray:
    r"""Mean order parameter of $N$ independent uniform phases (finite-size floor).

    $$\mathbb{E}[R] \approx \sqrt{\frac{\pi}{4N}}$$

    For large $N$, $Z_1 = \frac{1}{N}\sum_j e^{i\theta_j}$ is approximately a circular
    complex Gaussian with $\mathbb{E}|Z_1|^2 = 1/N$ (exact), so $R = |Z_1|$ is Rayleigh
    distributed with $\sigma^2 = 1/(2N)$ and mean $\sigma\sqrt{\pi/2}$. This
    large-$N$ (Rayleigh) value underestimates the exact mean (Pearson's random walk) by
    a relative $\approx 1/(16N)$: 0.6% at $N = 10$, 0.06% at $N = 100$ (exact values:
    1 for $N = 1$, $2/\pi$ for $N = 2$). An incoherent simulation of $N$ oscillators
    shows $R$ of this size, not 0.

    **Arguments:**

    - `n`: number of oscillators $N \ge 1$ (scalar or array).

    **Returns:** $\sqrt{\pi / 4N}$, same shape as `n`, floating point.
    """
    n = _as_float("n", n)
    if is_concrete(n) and np.any(np.asarray(n) < 1):
        raise ValueError(f"`n` must be >= 1; got {n}")
    return jnp.sqrt(jnp.pi / (4.0 * n))
