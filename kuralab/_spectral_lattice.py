r"""Spectra of lattice fields for `kl.spectral`: radially averaged 2-D power spectra
(`radial_spectrum`) and the signal-to-noise ratio of an ensemble of noisy realisations,
overall or per spatial-frequency band (`snr`). Conventions in `kuralab/spectral.py`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import GridLike, RealArray, SignalLike
from ._misc import TWO_PI, is_concrete
from ._spectral_time import _as_array, _check_axes, _check_axis

__all__ = ["radial_spectrum", "snr"]


# ---------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------


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
    field: SignalLike,
    *,
    axes: tuple[int, int] = (-2, -1),
    spacing: float | tuple[float, float] = 1.0,
    bins: GridLike | None = None,
) -> tuple[RealArray, RealArray]:
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
    ensemble: SignalLike,
    *,
    axis: int = 0,
    axes: tuple[int, ...] | None = None,
    bands: GridLike | None = None,
    spacing: float | tuple[float, float] = 1.0,
    debias: bool = True,
) -> RealArray:
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
