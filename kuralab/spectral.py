r"""Spectral tools for oscillator signals and lattice fields (`kl.spectral`).

Power spectral densities of time series (`power_spectrum`, `phase_spectrum`), their
peak frequency (`dominant_frequency`), radially averaged 2-D spectra of lattice fields
(`radial_spectrum`) and the signal-to-noise ratio of an ensemble of noisy trajectories,
overall and per spatial-frequency band (`snr`; SCIENCE.md §3, "Spectral evaluation").

Conventions, shared by every function here:

- **Units.** Frequencies are angular by default (`angular=True`): rad per unit time
  for time series, so a spectrum peaks at the natural frequency $\omega$ itself, and
  rad per unit length for wave numbers $|k|$. With `angular=False` time frequencies
  are in cycles per unit time, $f = \omega / 2\pi$.
- **Density normalisation.** A PSD $S$ is a density in its frequency variable:
  $\sum_j S(\omega_j)\, \Delta\omega = \overline{|x|^2}$, the mean power of the
  (detrended) signal, i.e. its variance after mean removal (Parseval). With a window
  $w$ the right-hand side is the $w^2$-weighted mean power, which equals the mean
  power on average for stationary signals; with `window=None` Parseval is exact.
  Welch averaging (`nperseg`) averages the segments' densities.
- **One- and two-sided.** Real input gives a one-sided spectrum on
  $0 \le \omega \le \pi/\Delta t$, with the power of $\pm\omega$ folded onto $+\omega$.
  Complex input (e.g. the phasor $e^{i\theta}$) gives a two-sided spectrum on
  $[-\pi/\Delta t, \pi/\Delta t)$ in ascending order, where the sign matters: a phase
  rotating at $+\omega$ peaks at $+\omega$, one at $-\omega$ at $-\omega$.
- **Detrending.** `detrend="auto"` (default) removes the mean of real signals (so an
  offset does not swamp the DC bin) and leaves complex signals alone (the mean of
  $e^{i\theta}$ is the $\omega = 0$ rotation, which is information).
- **Arrays.** NumPy or JAX arrays; float32 in, float32 out. The time axis is explicit
  (`axis`, default 0, matching `kl.simulate`'s `ys` of shape `(time, osc)`); lattice
  axes default to the last two. Everything is `jax.numpy` (FFT-based) and works under
  `jax.jit` and `jax.vmap`: the data and `dt` may be traced, while `axis`, `axes`,
  `nperseg`, `window`, `band`, `bins`, `bands` and `spacing` must be concrete.
"""

from __future__ import annotations

from ._spectral_lattice import radial_spectrum as radial_spectrum, snr as snr
from ._spectral_time import (
    dominant_frequency as dominant_frequency,
    phase_spectrum as phase_spectrum,
    power_spectrum as power_spectrum,
)

__all__ = [
    "dominant_frequency",
    "phase_spectrum",
    "power_spectrum",
    "radial_spectrum",
    "snr",
]
