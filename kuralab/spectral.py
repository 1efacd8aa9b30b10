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

import functools
import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._misc import TWO_PI, is_concrete, nearest

__all__ = [
    "dominant_frequency",
    "phase_spectrum",
    "power_spectrum",
    "radial_spectrum",
    "snr",
]

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


def _check_spacing(spacing) -> tuple[float, float]:
    s = np.asarray(spacing, dtype=float) if is_concrete(spacing) else None
    if s is None or s.shape not in ((), (2,)) or not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(
            "`spacing` must be a concrete finite number > 0, or a pair (dy, dx) for the "
            f"two lattice axes (units of length per site); got {spacing!r}"
        )
    s = np.broadcast_to(s, (2,))
    return float(s[0]), float(s[1])


def _check_edges(name: str, edges) -> np.ndarray:
    e = np.asarray(edges, dtype=float) if is_concrete(edges) else np.zeros(0)
    ok = e.ndim == 1 and e.size >= 2 and np.all(np.isfinite(e)) and e[0] >= 0
    if not (ok and np.all(np.diff(e) > 0)):
        raise ValueError(
            f"`{name}` must be concrete, strictly increasing, finite, non-negative "
            f"band edges in rad per unit length, shape (n_bands + 1,) with at least 2 "
            f"edges; got {edges!r}"
        )
    return e


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
    x: ArrayLike,
    *,
    dt: float | ArrayLike,
    axis: int = 0,
    window: str | ArrayLike | None = "hann",
    detrend: str | None = "auto",
    nperseg: int | None = None,
    overlap: float = 0.5,
    angular: bool = True,
) -> tuple[Array, Array]:
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
    theta: ArrayLike,
    *,
    dt: float | ArrayLike,
    signal: str = "phasor",
    mean_field: bool = False,
    axis: int = 0,
    window: str | ArrayLike | None = "hann",
    detrend: str | None = None,
    nperseg: int | None = None,
    overlap: float = 0.5,
    angular: bool = True,
) -> tuple[Array, Array]:
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
    x: ArrayLike,
    *,
    dt: float | ArrayLike,
    axis: int = 0,
    band: tuple[float, float] | None = None,
    window: str | ArrayLike | None = "hann",
    detrend: str | None = "auto",
    nperseg: int | None = None,
    overlap: float = 0.5,
    refine: int = 4,
    angular: bool = True,
) -> Array:
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


# ---------------------------------------------------------------------------------
# Lattice fields: radial spectra and ensemble SNR
# ---------------------------------------------------------------------------------


def _radial_bins(shape, spacing, bins):
    """Static binning of |k|: bin id per mode (H*W,), n_bins, centres, counts."""
    (H, W), (dy, dx) = shape, spacing
    ky = TWO_PI * np.fft.fftfreq(H, dy)
    kx = TWO_PI * np.fft.fftfreq(W, dx)
    kmag = np.hypot(ky[:, None], kx[None, :]).ravel()
    if bins is None:  # shells of the finest grid spacing, centred on multiples of it
        dk = min(TWO_PI / (H * dy), TWO_PI / (W * dx))
        ids = np.floor(kmag / dk + 0.5).astype(np.int32)
        nb = int(ids.max()) + 1
        centres = dk * np.arange(nb)
    else:
        edges = _check_edges("bins", bins)
        nb = edges.size - 1
        ids = np.searchsorted(edges, kmag, side="right") - 1
        ids[kmag == edges[-1]] = nb - 1  # last edge inclusive (np.histogram)
        ids = np.where((ids < 0) | (ids >= nb), nb, ids).astype(np.int32)
        centres = 0.5 * (edges[:-1] + edges[1:])
    counts = np.bincount(ids, minlength=nb + 1)[:nb]
    return ids, nb, centres, counts


def _bin_sums(p, ids, nb):
    """Sum (..., H, W) over the modes of each bin -> (..., nb); id nb is dropped."""
    flat = p.reshape(p.shape[:-2] + (-1,))
    s = jax.ops.segment_sum(jnp.moveaxis(flat, -1, 0), ids, num_segments=nb + 1)
    return jnp.moveaxis(s[:nb], 0, -1)


def _lattice(name, x, axes, spacing):
    """Validate the lattice `axes` of `x` and `spacing`; (axes, (H, W), (dy, dx))."""
    axes = _check_axes("axes", axes, x.ndim)
    if len(axes) != 2:
        raise ValueError(
            f"`axes` must name the two lattice axes (row, col); got {axes}"
        )
    H, W = (x.shape[a] for a in axes)
    if H < 2 or W < 2:
        raise ValueError(
            f"`{name}` must have at least 2 sites along each lattice axis {axes}; got "
            f"shape {x.shape}"
        )
    return axes, (H, W), _check_spacing(spacing)


@functools.partial(jax.jit, static_argnames=("axes", "nb"))
def _radial(field, ids, weights, axes, nb):
    F = jnp.fft.fft2(jnp.moveaxis(field, axes, (-2, -1)))
    return _bin_sums(jnp.real(F) ** 2 + jnp.imag(F) ** 2, ids, nb) * weights


def radial_spectrum(
    field: ArrayLike,
    *,
    axes: tuple[int, int] = (-2, -1),
    spacing: float | tuple[float, float] = 1.0,
    bins: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""Radially averaged 2-D power spectrum of lattice fields.

    With $F(\mathbf k)$ the 2-D DFT of an $H \times W$ field on a grid of spacing
    $(\Delta y, \Delta x)$ and wave vectors $\mathbf k$ in rad per unit length, the
    2-D density is $S(\mathbf k) = |F(\mathbf k)|^2 \Delta y \Delta x /
    (HW (2\pi)^2)$, so that $\sum_{\mathbf k} S\, \Delta k_y \Delta k_x =
    \overline{|x|^2}$ with $\Delta k_y \Delta k_x = (2\pi)^2 / (HW\Delta y\Delta x)$.
    The result is the **mean** of $S$ over the modes whose $|\mathbf k|$ falls in each
    bin, so white noise of variance $\sigma^2$ gives the flat
    $\sigma^2 \Delta y\Delta x/(2\pi)^2$; multiply by the bin's mode count and
    $\Delta k_y \Delta k_x$ to get its share of the mean power. The mean is not
    removed: it sits in the $k = 0$ bin. The field is treated as periodic (no window).

    **Arguments:**

    - `field`: real or complex fields, shape `(..., H, W)` (lattice at `axes`).
    - `axes`: the two lattice axes (row, col), default `(-2, -1)` (keyword only, as
      are the rest).
    - `spacing`: lattice spacing, a number or a pair `(dy, dx)`, > 0 (default 1).
    - `bins`: `None` (default): shells of width $\Delta k = \min(2\pi/(H\Delta y),
      2\pi/(W\Delta x))$ centred on $0, \Delta k, 2\Delta k, \dots$ up to the corner
      of the Brillouin zone (every mode counted); or increasing edges in rad per unit
      length, shape `(n_bins + 1,)` (right-open, last edge closed; modes outside are
      dropped).

    **Returns:** `(k, power)`: `k`, shape `(n_bins,)`, the bin centres in rad per
    unit length; `power`, shape `(..., n_bins)` (the lattice axes replaced by a
    trailing bin axis), NaN for a bin holding no mode.
    """
    field = _as_array("field", field, "(..., H, W)")
    axes, (H, W), (dy, dx) = _lattice("field", field, axes, spacing)
    ids, nb, centres, counts = _radial_bins((H, W), (dy, dx), bins)
    real = jnp.finfo(field.dtype).dtype
    with np.errstate(divide="ignore"):  # an empty bin gives NaN
        weights = np.where(counts > 0, dy * dx / (H * W * TWO_PI**2) / counts, np.nan)
    power = _radial(field, jnp.asarray(ids), jnp.asarray(weights, real), axes, nb)
    return jnp.asarray(centres, real), power


@functools.partial(jax.jit, static_argnames=("perm", "n_field", "nb", "debias"))
def _snr(x, ids, perm, n_field, nb, debias):
    x = jnp.transpose(x, perm)  # (member, *kept, *field)
    M = x.shape[0]
    if nb is not None:  # Fourier modes of the lattice (the last two axes)
        x = jnp.fft.fft2(x)
    m = jnp.mean(x, axis=0)
    d = x - m
    noise = jnp.sum(jnp.real(d) ** 2 + jnp.imag(d) ** 2, axis=0) / (M - 1)
    sig = jnp.real(m) ** 2 + jnp.imag(m) ** 2
    if debias:
        sig = sig - noise / M
    if nb is not None:
        return _bin_sums(sig, ids, nb) / _bin_sums(noise, ids, nb)
    field = tuple(range(m.ndim - n_field, m.ndim))
    return jnp.mean(sig, axis=field) / jnp.mean(noise, axis=field)


def snr(
    ensemble: ArrayLike,
    *,
    axis: int = 0,
    axes: tuple[int, ...] | None = None,
    bands: ArrayLike | None = None,
    spacing: float | tuple[float, float] = 1.0,
    debias: bool = True,
) -> Array:
    r"""Signal-to-noise ratio of an ensemble of noisy realisations of one signal.

    For members $x_m$, $m = 1..M$ (e.g. noisy trajectories from one initial
    condition), the signal is the ensemble mean $\bar x = \frac1M\sum_m x_m$ (an
    estimate of $E[x \mid x_0]$) and the noise the deviations $d_m = x_m - \bar x$.
    Per element (or per Fourier mode, with `bands`),

    $$\hat\sigma^2 = \frac{1}{M-1}\sum_m |d_m|^2,\qquad
      \hat P_s = |\bar x|^2 - \hat\sigma^2 / M,$$

    both unbiased ($E|\bar x|^2 = |s|^2 + \sigma^2/M$). The SNR is the ratio of their
    averages over the field axes, $\langle\hat P_s\rangle / \langle\hat\sigma^2
    \rangle$ (a ratio of powers, not a mean of ratios): $P_s/\sigma^2$ for a signal
    $s$ of mean power $P_s$ plus noise of variance $\sigma^2$. Because of the
    debiasing it can come out slightly negative where there is no signal; with
    `debias=False` the signal power is $|\bar x|^2$ (biased up by $\sigma^2/M$).
    Complex members (e.g. phasors $e^{i\theta}$) use $|\cdot|^2$.

    With `bands`, powers are summed over the 2-D Fourier modes of the lattice whose
    $|\mathbf k|$ lies in each band (as in `radial_spectrum`), giving the SNR per
    spatial-frequency band; by Parseval one band holding every mode gives the
    overall SNR.

    **Arguments:**

    - `ensemble`: real or complex array with the members on `axis`, e.g. `(member,
      time, H, W)` or `(member, time, osc)`.
    - `axis`: the member axis (default 0); at least 2 members (keyword only, as are
      the rest).
    - `axes`: the field axes that powers are averaged over, as axes of `ensemble`
      (not the member axis); the other axes are kept (e.g. time, giving SNR(t)).
      Default: every non-member axis (one number) without `bands`, the two lattice
      axes `(-2, -1)` with `bands` (then exactly two axes).
    - `bands`: optional increasing band edges in rad per unit length, shape
      `(n_bands + 1,)` (right-open, last edge closed).
    - `spacing`: lattice spacing, a number or `(dy, dx)` (used with `bands`).
    - `debias`: subtract $\hat\sigma^2/M$ from the signal power (default `True`).

    **Returns:** real array of the kept axes' shape (in their order), plus a trailing
    `(n_bands,)` axis with `bands`. NaN/inf where the noise power is 0.
    """
    x = _as_array("ensemble", ensemble, "(member, ...)")
    axis = _check_axis("axis", axis, x.ndim)
    M = x.shape[axis]
    if M < 2:
        raise ValueError(
            f"`ensemble` needs at least 2 members along axis {axis} to estimate noise; "
            f"got shape {x.shape}"
        )
    if axes is None:
        axes = (
            (-2, -1) if bands is not None else [a for a in range(x.ndim) if a != axis]
        )
    if bands is not None:
        axes, shape, sp = _lattice("ensemble", x, axes, spacing)
    axes = _check_axes("axes", axes, x.ndim)
    if axis in axes:
        raise ValueError(
            f"`axes` {axes} must not contain the member axis `axis`={axis} (ensemble "
            f"shape {x.shape})"
        )
    perm = (axis, *(a for a in range(x.ndim) if a != axis and a not in axes), *axes)
    ids, nb = None, None
    if bands is not None:
        ids, nb, _, _ = _radial_bins(shape, sp, _check_edges("bands", bands))
        ids = jnp.asarray(ids)
    return _snr(x, ids, perm, len(axes), nb, bool(debias))
