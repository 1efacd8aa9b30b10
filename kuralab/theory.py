r"""Analytic and semi-analytic reference results for the Kuramoto model (`kl.theory`).

Everything here is for the classic mean-field model

$$\dot\theta_i = \omega_i + \frac{K}{N}\sum_{j=1}^{N}\sin(\theta_j - \theta_i)$$

(`kl.Kuramoto(omega, kl.MeanField(K))`) with natural frequencies drawn from a
unimodal, symmetric density $g$ of width `scale` (the names and widths of
`kl.sample_frequencies`):

- `"lorentzian"`: $g(\omega) = \gamma / [\pi(\omega^2 + \gamma^2)]$, `scale` $= \gamma$;
- `"gaussian"`: $g(\omega) = e^{-\omega^2 / 2\sigma^2} / (\sigma\sqrt{2\pi})$,
  `scale` $= \sigma$;
- `"uniform"`: $g(\omega) = 1/(2\gamma)$ on $[-\gamma, \gamma]$, `scale` $= \gamma$.

Results are for $N \to \infty$ unless stated; they are the yardsticks that simulations
are tested against. Functions broadcast over array arguments and follow the dtype of
their inputs (float32 by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._misc import is_concrete, nearest, wrap_phase

__all__ = [
    "DISTRIBUTIONS",
    "TwoOscillatorLocking",
    "critical_coupling",
    "delayed_sync_frequencies",
    "finite_size_incoherent_R",
    "noisy_order_parameter",
    "von_mises_mean_cos",
    "order_parameter",
    "ott_antonsen",
    "two_oscillator_locking",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


class _Density(NamedTuple):
    pdf: Callable  # g(omega) for scale 1
    g0: float  # g(0) for scale 1
    support: float  # half-width of the support for scale 1 (inf if unbounded)


_DENSITIES: dict[str, _Density] = {
    "lorentzian": _Density(
        lambda w: 1.0 / (math.pi * (w * w + 1.0)), 1 / math.pi, math.inf
    ),
    "gaussian": _Density(
        lambda w: jnp.exp(-0.5 * w * w) / _SQRT_2PI, 1 / _SQRT_2PI, math.inf
    ),
    "uniform": _Density(lambda w: jnp.where(jnp.abs(w) <= 1.0, 0.5, 0.0), 0.5, 1.0),
}

#: Names of the frequency densities known to `kl.theory`.
DISTRIBUTIONS = tuple(_DENSITIES)


def _density(distribution: str) -> _Density:
    if not isinstance(distribution, str) or distribution not in _DENSITIES:
        raise ValueError(
            f"`distribution` must be one of {DISTRIBUTIONS}; got {distribution!r}"
            + nearest(str(distribution), DISTRIBUTIONS)
        )
    return _DENSITIES[distribution]


def _as_float(name: str, x) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"`{name}` must be finite; got {x}")
    return x


def _check_scale(scale) -> Array:
    scale = _as_float("scale", scale)
    if is_concrete(scale) and np.any(np.asarray(scale) <= 0):
        raise ValueError(f"`scale` must be > 0 (the width of g); got {scale}")
    return scale


# ---------------------------------------------------------------------------------
# Critical coupling and the stationary order parameter
# ---------------------------------------------------------------------------------


def critical_coupling(
    distribution: str = "lorentzian", scale: ArrayLike = 1.0
) -> Array:
    r"""Kuramoto's critical coupling for the onset of synchrony.

    $$K_c = \frac{2}{\pi g(0)}$$

    Lorentzian: $K_c = 2\gamma$. Gaussian: $K_c = \sigma\sqrt{8/\pi} \approx
    1.5958\,\sigma$. Uniform on $[-\gamma, \gamma]$: $K_c = 4\gamma/\pi$.

    **Arguments:**

    - `distribution`: `"lorentzian"`, `"gaussian"` or `"uniform"`.
    - `scale`: the width ($\gamma$ or $\sigma$), > 0; scalar or array.

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
    return (2.0 / (math.pi * density.g0)) * scale


def _gauss_legendre(n: int, dtype) -> tuple[Array, Array]:
    x, w = np.polynomial.legendre.leggauss(n)
    return jnp.asarray(x, dtype), jnp.asarray(w, dtype)


def _locked_integral(r: Array, density: _Density, nodes: int = 256) -> Array:
    r"""$\int_{-\pi/2}^{\pi/2} \cos^2\theta\, g(r\sin\theta)\, d\theta$ for unit scale.

    Gauss--Legendre on $|\theta| \le \theta_{\max} = \arcsin(\min(1, a/r))$, where $a$
    is the support half-width: the integrand is smooth there (no kink at the edge of a
    compact support, e.g. the uniform density's), so the fixed rule is accurate.
    """
    x, w = _gauss_legendre(nodes, r.dtype)
    if math.isinf(density.support):
        theta_max = jnp.full_like(r, math.pi / 2)
    else:
        ratio = density.support / jnp.maximum(r, density.support)
        theta_max = jnp.arcsin(ratio)
    theta = theta_max[..., None] * x  # (..., nodes)
    f = jnp.cos(theta) ** 2 * density.pdf(r[..., None] * jnp.sin(theta))
    return theta_max * jnp.sum(w * f, axis=-1)


def _self_consistent_R(
    K: Array, distribution: str, scale: Array, iterations: int | None = None
) -> Array:
    r"""Nonzero branch of the self-consistency $1 = K \int \cos^2\theta\,
    g(KR\sin\theta)\, d\theta$, by bisection on $R \in [0, 1]$ (0 below $K_c$).

    With $u = K/\gamma$ in units of the scale, the residual
    $F(R) = u\, I(uR) - 1$ ($I$ the unit-scale `_locked_integral`) is non-increasing
    in $R$ for a unimodal $g$, positive near $R = 0$ iff $K > K_c$, and negative at
    $R = 1$, so bisection always brackets the root.
    """
    density = _density(distribution)
    K, scale = jnp.broadcast_arrays(K, scale)
    dtype = K.dtype
    u = K / scale  # coupling in units of the width
    if iterations is None:
        iterations = 2 + int(-math.log2(float(jnp.finfo(dtype).eps)))

    def residual(R):
        return u * _locked_integral(u * R, density) - 1.0

    def body(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        up = residual(mid) > 0
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo = jnp.zeros_like(u)
    hi = jnp.ones_like(u)
    lo, hi = jax.lax.fori_loop(0, iterations, body, (lo, hi))
    R = 0.5 * (lo + hi)
    Kc = 2.0 / (math.pi * density.g0)
    return jnp.where(u > Kc, R, jnp.zeros_like(R))


def order_parameter(
    K: ArrayLike, distribution: str = "lorentzian", scale: ArrayLike = 1.0
) -> Array:
    r"""Stationary order parameter $R_\infty(K)$ of the infinite mean-field model.

    Below $K_c$ the incoherent state ($R = 0$) is returned. Above it, the partially
    locked state: for a Lorentzian the closed form

    $$R = \sqrt{1 - 2\gamma/K}\qquad (K > 2\gamma),$$

    otherwise the nonzero root of Kuramoto's self-consistency condition (only locked
    oscillators contribute for a symmetric $g$)

    $$R = K R \int_{-\pi/2}^{\pi/2} \cos^2\theta\; g(K R \sin\theta)\, d\theta ,$$

    solved by Gauss--Legendre quadrature and bisection on $R \in (0, 1]$ (accurate to
    a few float eps of the input dtype). The Gaussian branch bifurcates continuously
    from 0 at $K_c$ ($R \approx \sqrt{16 (K - K_c)/(\pi K_c^4\, |g''(0)|)}$). The
    uniform density is degenerate: the transition is first order, with a jump from
    $R = 0$ to $R = \pi/4$ at $K_c^+$ (all oscillators lock at once).

    **Arguments:**

    - `K`: coupling strength(s), any shape (same units as the frequencies).
    - `distribution`: `"lorentzian"` (default), `"gaussian"` or `"uniform"`.
    - `scale`: the width ($\gamma$ or $\sigma$), > 0; broadcasts against `K`.

    **Returns:** $R_\infty$, shape `broadcast(K, scale)`, in $[0, 1)$. The Lorentzian
    closed form is differentiable in `K`; the numerical branches are not (bisection).

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
    _density(distribution)  # validates the name
    K = _as_float("K", K)
    scale = _check_scale(scale).astype(K.dtype)
    if distribution == "lorentzian":
        Kc = 2.0 * scale
        above = K > Kc
        safe_K = jnp.where(above, K, 2.0 * Kc + 1.0)
        return jnp.where(above, jnp.sqrt(1.0 - Kc / safe_K), 0.0)
    return _self_consistent_R(K, distribution, scale)


# ---------------------------------------------------------------------------------
# Ott-Antonsen dynamics
# ---------------------------------------------------------------------------------


def ott_antonsen(
    t: ArrayLike, R0: ArrayLike, K: ArrayLike, scale: ArrayLike = 1.0
) -> Array:
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


# ---------------------------------------------------------------------------------
# Two oscillators; finite-size incoherence
# ---------------------------------------------------------------------------------


class TwoOscillatorLocking(NamedTuple):
    r"""Result of `kl.theory.two_oscillator_locking`.

    **Attributes:**

    - `locked`: bool array, $|\Delta\omega| \le 2|K|$.
    - `phase_difference`: the stable locked $\phi^* = \theta_2 - \theta_1$ in
      $[-\pi, \pi)$; NaN where not locked (and 0 for $K = \Delta\omega = 0$, where
      every phase difference is neutrally stable).
    - `drift_frequency`: the mean rate of $\phi$,
      $\operatorname{sign}(\Delta\omega)\sqrt{\Delta\omega^2 - 4K^2}$; 0 where locked.
      The oscillators' effective frequencies are
      $\bar\omega \mp$ `drift_frequency`$/2$ with $\bar\omega = (\omega_1+\omega_2)/2$.
    """

    locked: Array
    phase_difference: Array
    drift_frequency: Array


def two_oscillator_locking(
    delta_omega: ArrayLike, K_pair: ArrayLike
) -> TwoOscillatorLocking:
    r"""Phase locking of two symmetrically coupled oscillators.

    $$\dot\theta_1 = \omega_1 + K\sin(\theta_2 - \theta_1),\qquad
      \dot\theta_2 = \omega_2 + K\sin(\theta_1 - \theta_2)$$

    ($K$ = `K_pair` each way; the mean-field model with $N = 2$ has $K$ = `K`/2). The
    phase difference $\phi = \theta_2 - \theta_1$ obeys the Adler equation
    $\dot\phi = \Delta\omega - 2K\sin\phi$ with $\Delta\omega = \omega_2 - \omega_1$:

    - $|\Delta\omega| \le 2|K|$: locked at $\sin\phi^* = \Delta\omega / 2K$, the stable
      root being the one with $K\cos\phi^* > 0$ ($\phi^* = \arcsin(\Delta\omega/2K)$ for
      $K > 0$, $\pi - \arcsin(\Delta\omega/2K)$ for $K < 0$);
    - otherwise $\phi$ drifts with period $2\pi/\sqrt{\Delta\omega^2 - 4K^2}$, i.e. mean
      rate $\operatorname{sign}(\Delta\omega)\sqrt{\Delta\omega^2 - 4K^2}$.

    $\theta_1 + \theta_2$ always advances at exactly $\omega_1 + \omega_2$.

    **Arguments:**

    - `delta_omega`: $\Delta\omega = \omega_2 - \omega_1$ (rad per unit time).
    - `K_pair`: coupling strength each way. Broadcasts against `delta_omega`.

    **Returns:** a `TwoOscillatorLocking(locked, phase_difference, drift_frequency)`
    named tuple of arrays of the broadcast shape (NaN phase difference where unlocked,
    zero drift where locked).
    """
    dw = _as_float("delta_omega", delta_omega)
    K = _as_float("K_pair", K_pair)
    dtype = jnp.promote_types(dw.dtype, K.dtype)
    dw, K = jnp.broadcast_arrays(dw.astype(dtype), K.astype(dtype))
    two_K = 2.0 * jnp.abs(K)
    locked = jnp.abs(dw) <= two_K
    coupled = two_K > 0
    ratio = jnp.where(locked & coupled, dw / jnp.where(coupled, 2.0 * K, 1.0), 0.0)
    base = jnp.arcsin(jnp.clip(ratio, -1.0, 1.0))
    phi = jnp.where(K >= 0, base, wrap_phase(jnp.pi - base))
    phase_difference = jnp.where(locked, phi, jnp.nan)
    excess = jnp.where(locked, 0.0, dw * dw - two_K * two_K)
    drift = jnp.where(locked, 0.0, jnp.sign(dw) * jnp.sqrt(excess))
    return TwoOscillatorLocking(locked, phase_difference, drift)


def finite_size_incoherent_R(n: ArrayLike) -> Array:
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


def von_mises_mean_cos(kappa: ArrayLike) -> Array:
    r"""$E[\cos(\theta - \psi)] = I_1(\kappa)/I_0(\kappa)$ under the von Mises law
    $p(\theta) \propto e^{\kappa\cos(\theta - \psi)}$.

    A single oscillator forced toward $\psi$ with strength $h$ and noise $D$
    ($d\theta = h\sin(\psi - \theta)dt + \sqrt{2D}\,dW$) is stationary with
    $\kappa = h/D$. Uses exponentially scaled Bessel functions (no overflow)."""
    kappa = _as_float("kappa", kappa)
    return jax.scipy.special.i1e(kappa) / jax.scipy.special.i0e(kappa)


def noisy_order_parameter(K: ArrayLike, D: ArrayLike) -> Array:
    r"""Stationary $R$ of identical mean-field oscillators with noise, $N \to \infty$.

    $$d\theta_i = \frac{K}{N}\sum_j \sin(\theta_j - \theta_i)\,dt + \sqrt{2D}\,dW_i$$

    Incoherence loses stability at $K_c = 2D$; above it $R$ is the nonzero root of
    $R = I_1(KR/D)/I_0(KR/D)$ (each oscillator is von Mises in the mean field $KR$),
    found by bisection on $(0, 1]$. Returns 0 for $K \le 2D$. Vectorised over `K`, `D`.

    ??? cite "Reference"

        ```bibtex
        @article{sakaguchi1988,
          author={Sakaguchi, Hidetsugu}, title={Cooperative phenomena in coupled
          oscillator systems under external fields}, journal={Prog. Theor. Phys.},
          volume={79}, pages={39--46}, year={1988}}
        ```
    """
    K = _as_float("K", K)
    D = _as_float("D", D)
    if is_concrete(D) and bool(jnp.any(D <= 0)):
        raise ValueError(f"`D` must be > 0; got {D}")
    K, D = jnp.broadcast_arrays(K, D)
    iterations = 2 + int(-math.log2(float(jnp.finfo(K.dtype).eps)))

    def residual(R):
        return von_mises_mean_cos(K * R / D) - R

    def body(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        up = residual(mid) > 0
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(
        0, iterations, body, (jnp.zeros_like(K), jnp.ones_like(K))
    )
    return jnp.where(K > 2 * D, 0.5 * (lo + hi), jnp.zeros_like(K))


def delayed_sync_frequencies(omega: float, K: float, tau: float):
    r"""Every in-phase synchronised frequency of identical delayed oscillators.

    All-to-all coupling $K$ with uniform delay $\tau$ admits in-phase synchrony at every
    root of $\Omega = \omega - K\sin(\Omega\tau)$; a root is linearly stable when
    $K\cos(\Omega\tau) > 0$ (Yeung & Strogatz 1999). Roots lie in
    $[\omega - |K|, \omega + |K|]$; the function samples that interval finely enough
    to see every sign change (the residual oscillates with period $2\pi/\tau$) and
    refines each bracket with Brent's method. Tangential double roots (at a fold) are
    not resolved.

    **Returns:** `(Omega, stable)`: NumPy arrays, ascending roots and their stability.

    ??? cite "Reference"

        ```bibtex
        @article{yeung1999,
          author={Yeung, M. K. Stephen and Strogatz, Steven H.},
          title={Time delay in the {K}uramoto model of coupled oscillators},
          journal={Phys. Rev. Lett.}, volume={82}, pages={648--651}, year={1999}}
        ```
    """
    import numpy as np
    from scipy.optimize import brentq

    omega, K, tau = float(omega), float(K), float(tau)
    if not all(map(math.isfinite, (omega, K, tau))) or tau < 0:
        raise ValueError(
            f"need finite omega, K and tau >= 0; got omega={omega}, K={K}, tau={tau}"
        )
    if tau == 0 or K == 0:
        roots = np.array([omega - K * math.sin(omega * tau)])
    else:
        lo, hi = omega - abs(K) - 1e-9, omega + abs(K) + 1e-9

        def g(x):
            return x - omega + K * np.sin(x * tau)

        num = int(200 * (1 + (hi - lo) * tau / (2 * math.pi))) + 1
        x = np.linspace(lo, hi, num)
        y = g(x)
        found = [x[i] for i in np.flatnonzero(y == 0)]
        for i in np.flatnonzero(y[:-1] * y[1:] < 0):
            found.append(brentq(g, x[i], x[i + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps))
        roots = np.unique(np.asarray(found, dtype=np.float64))
    return roots, K * np.cos(roots * tau) > 0
