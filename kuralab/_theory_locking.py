r"""Locked and synchronised states for `kl.theory`, in closed form or by root finding:
two coupled oscillators (the Adler equation), the locking threshold $K_L$ of a finite
mean-field population, and the in-phase synchronised frequencies of identical oscillators
with a uniform delay.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._custom_types import FrequenciesLike, RealArray, RealLike
from ._densities import _as_float
from ._misc import wrap_phase

__all__ = [
    "TwoOscillatorLocking",
    "delayed_sync_frequencies",
    "locking_threshold",
    "two_oscillator_locking",
]


# ---------------------------------------------------------------------------------
# Two oscillators
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

    locked: Array  # bool
    phase_difference: RealArray
    drift_frequency: RealArray


def two_oscillator_locking(
    delta_omega: RealLike, K_pair: RealLike
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
    return _two_oscillator_locking(dw, K)


@jax.jit
def _two_oscillator_locking(dw: Array, K: Array) -> TwoOscillatorLocking:
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


# ---------------------------------------------------------------------------------
# Delays
# ---------------------------------------------------------------------------------


def delayed_sync_frequencies(
    omega: float, K: float, tau, weights=None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Every in-phase synchronised frequency of identical delayed oscillators.

    Identical oscillators whose every receiver sees the same delays $\tau_k$ with
    coupling weights $w_k$ (normalised, $\sum_k w_k = 1$) admit in-phase synchrony
    $\theta_i = \Omega t$ at every root of

    $$\Omega = \omega - K\sum_k w_k \sin(\Omega\tau_k) .$$

    Uniform delay (a scalar `tau`, all-to-all coupling $K$): Yeung & Strogatz 1999. A
    delay distribution covers per-edge delays: on a ring or any network whose receivers
    all see the same delays, row $i$ of $\tau_{ij}$ with $w_j = K_{ij}/\sum_j K_{ij}$
    (e.g. $\tau_{ij} = |x_i - x_j|/v$ for oscillators equally spaced on a circle).
    `stable` is $K\sum_k w_k\cos(\Omega\tau_k) > 0$: for uniform delay the exact
    criterion ($K\cos\Omega\tau > 0$); for a distribution the condition that
    perturbations which average out over each receiver's senders decay (necessary in a
    large network), and sufficient when every $K w_k\cos(\Omega\tau_k) \ge 0$
    (consensus with non-negative delayed weights). Roots lie in
    $[\omega - |K|, \omega + |K|]$; the function samples that interval finely enough
    to see every sign change (the residual's fastest period is $2\pi/\max\tau$) and
    refines each bracket with Brent's method. Tangential double roots (at a fold) are
    not resolved. For $\tau = 0$ (or $K = 0$) the single root is $\Omega = \omega$.
    Plain NumPy/SciPy in float64 (not traceable): the number of roots varies with
    $\tau$.

    **Arguments:**

    - `omega`: the common natural frequency $\omega$.
    - `K`: coupling strength, the sum of each receiver's weights (mean field: $K$;
      negative: repulsive).
    - `tau`: the delay, a scalar >= 0, or the delays $\tau_k$ one receiver sees, shape
      `(k,)` (time units).
    - `weights`: optional `(k,)` non-negative weights of those delays (normalised
      here; default equal weights).

    **Returns:** `(Omega, stable)`: NumPy arrays, ascending roots and their stability.

    ??? cite "Reference"

        ```bibtex
        @article{yeung1999,
          author={Yeung, M. K. Stephen and Strogatz, Steven H.},
          title={Time delay in the {K}uramoto model of coupled oscillators},
          journal={Phys. Rev. Lett.}, volume={82}, pages={648--651}, year={1999}}
        ```
    """
    from scipy.optimize import brentq

    omega, K = float(omega), float(K)
    taus = np.asarray(tau, dtype=np.float64)
    if taus.ndim > 1 or taus.size == 0:
        raise ValueError(
            f"`tau` must be a scalar or a non-empty 1-D array of delays; got shape "
            f"{taus.shape}"
        )
    taus = taus.reshape(-1)
    if weights is None:
        w = np.full(taus.shape, 1.0 / taus.size)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != taus.shape or not np.all(np.isfinite(w)) or np.any(w < 0) or (
            w.sum() <= 0
        ):
            raise ValueError(
                f"`weights` must be finite, >= 0, not all zero, shape {taus.shape} (one "
                f"per delay); got {np.asarray(weights)!r}"
            )
        w = w / w.sum()
    if not (math.isfinite(omega) and math.isfinite(K)) or not np.all(np.isfinite(taus)) or (
        np.any(taus < 0)
    ):
        raise ValueError(
            f"need finite omega, K and tau >= 0; got omega={omega}, K={K}, tau={tau}"
        )
    tmax = float(taus.max())

    def g(x):
        x = np.asarray(x, dtype=np.float64)
        return x - omega + K * (np.sin(np.multiply.outer(x, taus)) @ w)

    if tmax == 0 or K == 0:
        roots = np.array([omega])
    else:
        lo, hi = omega - abs(K) - 1e-9, omega + abs(K) + 1e-9
        num = int(200 * (1 + (hi - lo) * tmax / (2 * math.pi))) + 1
        x = np.linspace(lo, hi, num)
        y = g(x)
        found = [x[i] for i in np.flatnonzero(y == 0)]
        for i in np.flatnonzero(y[:-1] * y[1:] < 0):
            found.append(
                brentq(g, x[i], x[i + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps)
            )
        roots = np.unique(np.asarray(found, dtype=np.float64))
    return roots, K * (np.cos(np.multiply.outer(roots, taus)) @ w) > 0


def locking_threshold(omega: FrequenciesLike) -> float:
    r"""Locking threshold $K_L$ of the finite mean-field Kuramoto model.

    For $\dot\theta_i = \omega_i + \frac{K}{N}\sum_j \sin(\theta_j - \theta_i)$ a locked
    state exists iff $K \ge K_L$. With $u = K r$ and $\delta_i = \omega_i - \bar\omega$,
    the locked states with all $\cos(\theta_i - \psi) \ge 0$ satisfy
    $r(u) = \frac1N\sum_i\sqrt{1 - \delta_i^2/u^2}$ and $K = u / r(u)$, so

    $$K_L = \min_{u \ge \max_i|\delta_i|} \frac{u}{r(u)} ,$$

    attained at the unique root $u^* \in [\max|\delta|, 2\max|\delta|]$ of
    $\sum_i (1 - 2\delta_i^2/u^2) / \sqrt{1 - \delta_i^2/u^2} = 0$ (found by `brentq`).
    At $K_L$ the stable locked state dies in a saddle-node. $N = 2$: $K_L =
    |\omega_2 - \omega_1|$.

    **Arguments:**

    - `omega`: natural frequencies, shape `(osc,)`, $N \ge 2$.

    **Returns:** $K_L$ as a Python float (0 for identical frequencies).

    ??? cite "Reference"

        ```bibtex
        @article{verwoerd2008,
          author={Verwoerd, Mark and Mason, Oliver},
          title={Global phase-locking in finite populations of phase-coupled
                 oscillators}, journal={SIAM J. Appl. Dyn. Syst.}, volume={7},
          number={1}, pages={134--160}, year={2008}}
        ```
    """
    from scipy.optimize import brentq

    w = np.asarray(omega, np.float64)
    if w.ndim != 1 or w.size < 2 or not np.all(np.isfinite(w)):
        raise ValueError(
            f"`omega` must be a finite 1-D array of at least 2 frequencies; got {w!r}"
        )
    d = w - w.mean()
    dmax = float(np.max(np.abs(d)))
    if dmax == 0:
        return 0.0

    def a(u):
        return (d / u) ** 2

    def g(u):  # proportional to d(u / r)/du with the sign flipped; increasing in u
        return float(np.sum((1 - 2 * a(u)) / np.sqrt(1 - a(u))))

    lo = dmax * (1 + 1e-15)
    while not np.all(a(lo) < 1):
        lo = np.nextafter(lo, np.inf)
    u = brentq(g, lo, 2 * dmax, xtol=1e-15 * dmax, rtol=4 * np.finfo(float).eps)
    r = float(np.mean(np.sqrt(1 - a(u))))
    return u / r
