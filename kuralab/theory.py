r"""Analytic and semi-analytic reference results for the Kuramoto model (`kl.theory`).

Everything here is for the classic mean-field model

$$d\theta_i = \Big[\omega_i + \frac{K}{N}\sum_{j=1}^{N}\sin(\theta_j - \theta_i)\Big]dt
  + \sqrt{2D}\,dW_i$$

(`kl.Kuramoto(omega, kl.MeanField(K))`, with `kl.Noise(D)` where noise is named) with
natural frequencies drawn from a unimodal, symmetric density $g$ of width `scale`. The
`distribution` argument is one of

- `"lorentzian"`: $g(\omega) = \gamma / [\pi(\omega^2 + \gamma^2)]$, `scale` $= \gamma$;
- `"gaussian"`: $g(\omega) = e^{-\omega^2 / 2\sigma^2} / (\sigma\sqrt{2\pi})$,
  `scale` $= \sigma$;
- `"uniform"`: $g(\omega) = 1/(2\gamma)$ on $[-\gamma, \gamma]$, `scale` $= \gamma$

(the names and widths of `kl.sample_frequencies`), or any other density given as a
`kl.theory.Tabulated(omega, density)` table or as a callable `g(omega)`; these are
taken at unit width and stretched by `scale`, $g_s(\omega) = g(\omega/s)/s$.

Results are for $N \to \infty$ unless stated; they are the yardsticks that simulations
are tested against. Functions broadcast over array arguments and follow the dtype of
their inputs (float32 by default, float64 under `jax.enable_x64`). The stationary
order parameters are found with `optimistix` root finders and are differentiable
(implicit differentiation) and `jit`/`vmap`-compatible.
"""

from __future__ import annotations

from ._densities import DISTRIBUTIONS as DISTRIBUTIONS, Tabulated as Tabulated
from ._theory_common_noise import (
    common_noise_lyapunov as common_noise_lyapunov,
    common_noise_phase_density as common_noise_phase_density,
    common_noise_synchrony as common_noise_synchrony,
)
from ._theory_locking import (
    TwoOscillatorLocking as TwoOscillatorLocking,
    delayed_sync_frequencies as delayed_sync_frequencies,
    locking_threshold as locking_threshold,
    two_oscillator_locking as two_oscillator_locking,
)
from ._theory_mean_field import (
    critical_coupling as critical_coupling,
    finite_size_incoherent_R as finite_size_incoherent_R,
    order_parameter as order_parameter,
    ott_antonsen as ott_antonsen,
    ott_antonsen_time as ott_antonsen_time,
)
from ._theory_noise import (
    noisy_critical_coupling as noisy_critical_coupling,
    noisy_order_parameter as noisy_order_parameter,
    noisy_stationary_density as noisy_stationary_density,
    von_mises_density as von_mises_density,
    von_mises_mean_cos as von_mises_mean_cos,
)

__all__ = [
    "DISTRIBUTIONS",
    "Tabulated",
    "TwoOscillatorLocking",
    "common_noise_lyapunov",
    "common_noise_phase_density",
    "common_noise_synchrony",
    "critical_coupling",
    "delayed_sync_frequencies",
    "finite_size_incoherent_R",
    "noisy_critical_coupling",
    "noisy_order_parameter",
    "noisy_stationary_density",
    "locking_threshold",
    "order_parameter",
    "ott_antonsen",
    "ott_antonsen_time",
    "two_oscillator_locking",
    "von_mises_density",
    "von_mises_mean_cos",
]
