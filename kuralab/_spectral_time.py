r"""Spectra of time series for `kl.spectral`: power spectral densities
(`power_spectrum`, `phase_spectrum`, periodogram and Welch), the refined peak frequency
(`dominant_frequency`), and the argument checks shared with the lattice spectra. The
conventions (units, density normalisation, one- and two-sided spectra, detrending) are
in `kuralab/spectral.py`.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._custom_types import RealArray, RealLike, ScalarLike, SignalLike
from ._misc import TWO_PI, is_concrete, nearest

__all__ = ["dominant_frequency", "phase_spectrum", "power_spectrum"]

_WINDOWS = ("hann",)
_DETRENDS = ("auto", "mean")
_SIGNALS = ("phasor", "cos")

# ---------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------


def _as_array(name: str, x, what: str) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    if x.ndim < 1:
        raise ValueError(f"`{name}` must be an array of shape {what}; got a scalar")
    return x


def _check_axis(name: str, axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ValueError(f"`{name}` must be an int; got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"`{name}`={axis} is out of range for an array with {ndim} axes "
            f"(expected -{ndim} <= {name} < {ndim})"
        )
    return int(axis) % ndim


def _check_axes(name: str, axes, ndim: int) -> tuple[int, ...]:
    if isinstance(axes, int | np.integer):
        axes = (axes,)
    try:
        axes = tuple(axes)
    except TypeError:
        raise ValueError(f"`{name}` must be a tuple of ints; got {axes!r}") from None
    out = tuple(_check_axis(name, a, ndim) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` must name distinct axes; got {axes!r}")
    return out


def _check_dt(dt, dtype) -> Array:
    if is_concrete(dt):
        try:
            v = float(np.asarray(dt, dtype=float)) if np.ndim(dt) == 0 else math.nan
        except (TypeError, ValueError):
            v = math.nan
        if not (math.isfinite(v) and v > 0):
            raise ValueError(
                f"`dt` must be a finite scalar > 0 (the sample spacing in time units); "
                f"got {dt!r}"
            )
    return jnp.asarray(dt, dtype)


def _segment_plan(n: int, window, detrend, nperseg, overlap, is_complex: bool):
    """Validate the spectral options; return (nperseg, step, window, detrend)."""
    if n < 2:
        raise ValueError(
            f"the time axis has {n} sample(s); a spectrum needs at least 2 samples"
        )
    if nperseg is None:
        nperseg = n
    elif isinstance(nperseg, bool) or not isinstance(nperseg, int | np.integer):
        raise ValueError(f"`nperseg` must be an int or None; got {nperseg!r}")
    elif not 2 <= nperseg <= n:
        raise ValueError(
            f"`nperseg` (samples per Welch segment) must be in [2, {n}] (the number "
            f"of time samples); got {nperseg}"
        )
    nperseg = int(nperseg)
    if not isinstance(overlap, numbers.Real) or not 0.0 <= overlap < 1.0:
        raise ValueError(
            f"`overlap` must be a fraction in [0, 1) of `nperseg`; got {overlap!r}"
        )
    step = max(1, nperseg - int(round(overlap * nperseg)))
    if window is None:
        w = None
    elif isinstance(window, str):
        if window not in _WINDOWS:
            raise ValueError(
                f"`window` must be one of {_WINDOWS}, None or an array of shape "
                f"(nperseg,) = ({nperseg},); got {window!r}" + nearest(window, _WINDOWS)
            )
        # Periodic (DFT-even) Hann, the usual choice for spectral estimation.
        w = 0.5 - 0.5 * np.cos(TWO_PI * np.arange(nperseg) / nperseg)
    else:
        w = np.asarray(window, dtype=float) if is_concrete(window) else np.zeros(0)
        if w.shape != (nperseg,) or not np.all(np.isfinite(w)) or not np.any(w):
            raise ValueError(
                f"`window` as an array must be concrete, finite, not all zero and of "
                f"shape (nperseg,) = ({nperseg},); got shape {np.shape(window)}"
            )
    if detrend is not None and detrend not in _DETRENDS:
        raise ValueError(
            f"`detrend` must be one of {_DETRENDS} or None; got {detrend!r}"
            + nearest(str(detrend), _DETRENDS)
        )
    do_detrend = detrend == "mean" or (detrend == "auto" and not is_complex)
    return nperseg, step, w, do_detrend


def _unit(angular, dtype) -> Array:
    """Frequency unit per cycle: 2 pi (rad) or 1 (cycles); traced, so no recompile."""
    return jnp.asarray(TWO_PI if angular else 1.0, dtype)


def _bin_freqs(nperseg: int, onesided: bool) -> np.ndarray:
    """Bin frequencies in cycles per sample, ascending."""
    if onesided:
        return np.fft.rfftfreq(nperseg)
    return np.fft.fftshift(np.fft.fftfreq(nperseg))


# ---------------------------------------------------------------------------------
# Time-series spectra
# ---------------------------------------------------------------------------------


class _Plan(NamedTuple):
    """Static description of a spectral estimate (hashable: a jit static argument)."""

    axis: int  # the time axis of the input
    nperseg: int
    step: int
    detrend: bool
    onesided: bool  # real input


def _prepare(x, dt, axis, window, detrend, nperseg, overlap):
    x = _as_array("x", x, "(..., time, ...) with the time axis at `axis`")
    axis = _check_axis("axis", axis, x.ndim)
    is_complex = jnp.issubdtype(x.dtype, jnp.complexfloating)
    real = jnp.finfo(x.dtype).dtype
    nperseg, step, w, dtr = _segment_plan(
        x.shape[axis], window, detrend, nperseg, overlap, is_complex
    )
    w = None if w is None else jnp.asarray(w, real)
    return x, _check_dt(dt, real), w, _Plan(axis, nperseg, step, dtr, not is_complex)


def _periodogram(x, window, plan):
    """Welch segments (..., nseg, nperseg) and their mean |DFT|^2 (..., n_freq)."""
    x = jnp.moveaxis(x, plan.axis, -1)
    nseg = 1 + (x.shape[-1] - plan.nperseg) // plan.step
    y = x[..., np.arange(nseg)[:, None] * plan.step + np.arange(plan.nperseg)]
    if plan.detrend:
        y = y - jnp.mean(y, axis=-1, keepdims=True)
    if window is not None:
        y = y * window
    if plan.onesided:
        X = jnp.fft.rfft(y, axis=-1)
    else:
        X = jnp.fft.fftshift(jnp.fft.fft(y, axis=-1), axes=-1)
    return y, jnp.mean(jnp.real(X) ** 2 + jnp.imag(X) ** 2, axis=-2)


@functools.partial(jax.jit, static_argnames="plan")
def _psd(x, dt, window, plan, unit):
    _, p = _periodogram(x, window, plan)
    norm = plan.nperseg if window is None else jnp.sum(window**2)
    p = p * (dt / norm)  # density per cycle per unit time
    if plan.onesided:  # fold -f onto +f, except DC and (even nperseg) Nyquist
        fold = np.full(p.shape[-1], 2.0)
        fold[0] = 1.0
        if plan.nperseg % 2 == 0:
            fold[-1] = 1.0
        p = p * jnp.asarray(fold, p.dtype)
    freqs = jnp.asarray(_bin_freqs(plan.nperseg, plan.onesided), dt.dtype) / dt
    return unit * freqs, jnp.moveaxis(p / unit, -1, plan.axis)


def power_spectrum(
    x: SignalLike,
    *,
    dt: ScalarLike,
    axis: int = 0,
    window: str | ArrayLike | None = "hann",
    detrend: str | None = "auto",
    nperseg: int | None = None,
    overlap: float = 0.5,
    angular: bool = True,
) -> tuple[RealArray, RealArray]:
    r"""Power spectral density of signals sampled every `dt` along `axis`.

    $$S(\omega_j) = \frac{\Delta t}{2\pi \sum_n w_n^2}
      \Big|\sum_{n} w_n\, x_n\, e^{-i\omega_j n \Delta t}\Big|^2
      \quad(\times 2 \text{ for } 0 < \omega_j < \pi/\Delta t \text{ if } x
      \text{ is real}),$$

    so that $\sum_j S(\omega_j)\,\Delta\omega = \overline{|x|^2}$ exactly with
    `window=None`, and on average with a window (module docstring).
    With `nperseg`, Welch's method averages this over segments of `nperseg` samples
    overlapping by the fraction `overlap`: less variance, coarser resolution
    $\Delta\omega = 2\pi / (\text{nperseg}\,\Delta t)$.

    **Arguments:**

    - `x`: real or complex signals, shape `(..., time, ...)` with time at `axis`
      (e.g. `cos(theta)` or `exp(1j * theta)` of a `(time, osc)` trajectory).
    - `dt`: sample spacing in time units, > 0 (keyword only, as are the rest).
    - `axis`: the time axis (default 0).
    - `window`: `"hann"` (default, periodic Hann), `None` (rectangular), or an array
      of shape `(nperseg,)`.
    - `detrend`: `"auto"` (default: mean removal for real `x`, none for complex),
      `"mean"`, or `None`; applied per segment.
    - `nperseg`: samples per Welch segment, in `[2, time]`; `None` (default) uses the
      whole record as one segment (finest resolution).
    - `overlap`: overlap of consecutive segments as a fraction of `nperseg`, in
      `[0, 1)` (default 0.5).
    - `angular`: frequencies in rad per unit time and $S$ per rad per unit time
      (default); `False` for cycles per unit time (and $S$ per cycle per unit time,
      $2\pi$ times larger).

    **Returns:** `(freqs, psd)`: `freqs` of shape `(n_freq,)`, ascending
    (`nperseg // 2 + 1` one-sided bins for real `x`, `nperseg` two-sided bins for
    complex `x`); `psd`, real and non-negative, of the shape of `x` with the time axis
    replaced by the `n_freq` frequencies (same position).
    """
    x, dt, w, plan = _prepare(x, dt, axis, window, detrend, nperseg, overlap)
    return _psd(x, dt, w, plan, _unit(angular, dt.dtype))


def phase_spectrum(
    theta: RealLike,
    *,
    dt: ScalarLike,
    signal: str = "phasor",
    mean_field: bool = False,
    axis: int = 0,
    window: str | ArrayLike | None = "hann",
    detrend: str | None = None,
    nperseg: int | None = None,
    overlap: float = 0.5,
    angular: bool = True,
) -> tuple[RealArray, RealArray]:
    r"""Power spectrum of oscillator phases, per node or of the mean field.

    The signal is $e^{i\theta_j(t)}$ (`signal="phasor"`, two-sided: the sign of the
    rotation is kept) or $\cos\theta_j(t)$ (`signal="cos"`, one-sided), or, with
    `mean_field=True`, the order parameter $Z(t) = \frac{1}{N}\sum_j e^{i\theta_j(t)}$
    (resp. $\operatorname{Re} Z$). Phases may be wrapped. Then as `power_spectrum`,
    except that `detrend` defaults to `None` (a constant phasor is a frequency-0
    rotation, not an offset).

    **Arguments:**

    - `theta`: real phases in radians, shape `(time, ..., osc)` with time at `axis`
      and oscillators on the last axis (e.g. `traj.ys`).
    - `dt`: sample spacing, > 0.
    - `signal`: `"phasor"` (default) or `"cos"`.
    - `mean_field`: spectrum of the mean over the last (oscillator) axis, which must
      then differ from `axis`.
    - `axis`, `window`, `detrend`, `nperseg`, `overlap`, `angular`: as in
      `power_spectrum`.

    **Returns:** `(freqs, psd)` as `power_spectrum`; with `mean_field=True` the
    oscillator axis is gone.
    """
    theta = jnp.asarray(theta)
    if jnp.issubdtype(theta.dtype, jnp.complexfloating):
        raise ValueError(
            "`theta` must hold real phases in radians, shape (time, ..., osc); got a "
            "complex array (pass phases, or use `power_spectrum` on the phasors)"
        )
    theta = _as_array("theta", theta, "(time, ..., osc)")
    if signal not in _SIGNALS:
        raise ValueError(
            f"`signal` must be one of {_SIGNALS}; got {signal!r}"
            + nearest(str(signal), _SIGNALS)
        )
    axis = _check_axis("axis", axis, theta.ndim)
    if mean_field and axis == theta.ndim - 1:
        raise ValueError(
            "`mean_field=True` needs `theta` of shape (time, ..., osc) with the time "
            f"`axis` before the last (oscillator) axis; got shape {theta.shape} and "
            f"axis={axis}"
        )
    x = _phase_signal(theta, signal, bool(mean_field))
    options = dict(window=window, detrend=detrend, nperseg=nperseg, overlap=overlap)
    return power_spectrum(x, dt=dt, axis=axis, angular=angular, **options)


@functools.partial(jax.jit, static_argnames=("signal", "mean_field"))
def _phase_signal(theta, signal, mean_field):
    if signal == "cos":
        x = jnp.cos(theta)
    else:
        x = jax.lax.complex(jnp.cos(theta), jnp.sin(theta))
    return jnp.mean(x, axis=-1) if mean_field else x


@functools.partial(jax.jit, static_argnames="plan")
def _peak(x, dt, window, lo, hi, plan, refine, unit):
    """Peak frequency of the (segment-averaged) periodogram, shape (...)."""
    y, p = _periodogram(x, window, plan)
    L = plan.nperseg
    w_bins = jnp.asarray(TWO_PI * _bin_freqs(L, plan.onesided), dt.dtype) / dt
    dw = TWO_PI / (L * dt)
    k = jnp.argmax(jnp.where((w_bins >= lo) & (w_bins <= hi), p, -jnp.inf), axis=-1)
    if plan.onesided:  # the spectrum is even about DC and Nyquist: reflect
        pe = jnp.concatenate([p[..., 1:2], p, p[..., -2:-1]], axis=-1)
    else:  # the two-sided spectrum is periodic: wrap around
        pe = jnp.concatenate([p[..., -1:], p, p[..., :1]], axis=-1)
    tiny = jnp.finfo(p.dtype).tiny
    la, lb, lc = (
        jnp.log(jnp.maximum(jnp.take_along_axis(pe, k[..., None] + i, -1), tiny))
        for i in range(3)
    )
    curv = (la - 2 * lb + lc)[..., 0]
    concave = curv < 0
    delta = jnp.where(
        concave, 0.5 * (la - lc)[..., 0] / jnp.where(concave, curv, -1), 0
    )
    w = w_bins[k] + jnp.clip(delta, -0.5, 0.5) * dw
    # Newton steps on the continuous periodogram P(w) = mean_seg |Y(w)|^2, with
    # Y(w) = sum_n y_n exp(-i w t_n) (t centred for conditioning).
    t = (jnp.arange(L, dtype=dt.dtype) - (L - 1) / 2) * dt

    def newton(_, w):
        ph = -w[..., None, None] * t
        ye = y * jax.lax.complex(jnp.cos(ph), jnp.sin(ph))
        Y0 = jnp.sum(ye, axis=-1)
        Y1 = -1j * jnp.sum(ye * t, axis=-1)  # dY/dw
        Y2 = -jnp.sum(ye * t**2, axis=-1)  # d2Y/dw2
        d1 = jnp.mean(jnp.real(jnp.conj(Y0) * Y1), axis=-1)  # P'/2
        d2 = jnp.mean(jnp.abs(Y1) ** 2 + jnp.real(jnp.conj(Y0) * Y2), axis=-1)  # P''/2
        step = -d1 / jnp.where(d2 < 0, d2, -1.0)
        return w + jnp.where(d2 < 0, jnp.clip(step, -0.5 * dw, 0.5 * dw), 0.0)

    w = jax.lax.fori_loop(0, refine, newton, w)
    nyq = math.pi / dt
    w = jnp.clip(w, 0.0, nyq) if plan.onesided else jnp.mod(w + nyq, 2 * nyq) - nyq
    return jnp.clip(w, lo, hi) * (unit / TWO_PI)


def dominant_frequency(
    x: SignalLike,
    *,
    dt: ScalarLike,
    axis: int = 0,
    band: tuple[float, float] | None = None,
    window: str | ArrayLike | None = "hann",
    detrend: str | None = "auto",
    nperseg: int | None = None,
    overlap: float = 0.5,
    refine: int = 4,
    angular: bool = True,
) -> RealArray:
    r"""Frequency of the highest spectral peak, to a small fraction of a bin.

    The peak bin of the periodogram (as in `power_spectrum`) is refined by a parabola
    through the log-power of it and its two neighbours (exact for a Gaussian peak; for
    the Hann window's main lobe the error is below 0.02 bin), then by `refine` Newton
    steps on the continuous windowed periodogram $P(\omega) =
    |\sum_n w_n x_n e^{-i\omega t_n}|^2$. For a complex tone $e^{i\omega_0 t}$,
    $P$ peaks exactly at $\omega_0$ (real windows have an even transform); for a real
    tone the $-\omega_0$ image shifts it by a negligible amount unless $\omega_0$ is
    within a few bins of 0 or Nyquist.

    For phases use the phasor: `dominant_frequency(jnp.exp(1j * theta), dt=dt)` gives
    each oscillator's signed frequency (wrapped phases are fine); for the mean field
    pass `kl.order_parameter(theta)`.

    **Arguments:**

    - `x`: real or complex signals with time at `axis`.
    - `dt`: sample spacing, > 0.
    - `axis`: the time axis (default 0).
    - `band`: optional `(low, high)` search range in the units of the result (e.g.
      to skip slow drifts); it must contain at least one frequency bin.
    - `window`, `detrend`, `nperseg`, `overlap`, `angular`: as in `power_spectrum`.
      The default (one segment) gives the finest resolution.
    - `refine`: number of Newton steps (default 4; 0 for the interpolated bin only).

    **Returns:** array of the shape of `x` without the time axis: the peak frequency
    in rad per unit time (or cycles per unit time with `angular=False`); in
    $[0, \pi/\Delta t]$ for real `x`, in $[-\pi/\Delta t, \pi/\Delta t)$ for complex.
    """
    x, dt, w, plan = _prepare(x, dt, axis, window, detrend, nperseg, overlap)
    if (
        isinstance(refine, bool)
        or not isinstance(refine, int | np.integer)
        or refine < 0
    ):
        raise ValueError(f"`refine` must be an int >= 0 (Newton steps); got {refine!r}")
    unit = 1.0 if angular else TWO_PI  # band -> rad per unit time
    lo, hi = -math.inf, math.inf
    if band is not None:
        b = np.asarray(band, dtype=float) if is_concrete(band) else None
        if b is None or b.shape != (2,) or np.isnan(b).any() or not b[0] < b[1]:
            raise ValueError(
                f"`band` must be a concrete pair (low, high) with low < high; got {band!r}"
            )
        lo, hi = float(b[0]) * unit, float(b[1]) * unit
        bins = TWO_PI * _bin_freqs(plan.nperseg, plan.onesided)
        if is_concrete(dt):
            bins = bins / float(dt)
            if not np.any((bins >= lo) & (bins <= hi)):
                raise ValueError(
                    f"`band`={tuple(b)} contains no frequency bin (bins are "
                    f"{(bins[1] - bins[0]) / unit:g} apart, from {bins[0] / unit:g}); "
                    "widen it"
                )
    return _peak(x, dt, w, lo, hi, plan, int(refine), _unit(angular, dt.dtype))
