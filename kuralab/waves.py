r"""Traveling-wave analysis of oscillator sheets and phase lattices (`kl.waves`).

Pure functions of arrays (jit/vmap-able); nothing here knows which model made the data.

**Conventions.** Time is one array axis (`axis` / `time_axis`, default 0) with sampling
step `dt`; the grid is the *last* `ndim` axes (1 or 2) with site spacing `spacing`. On a
2-D grid `(rows, cols)` the wave-vector components come in grid-axis order
`(k_row, k_col)`; directions are angles $\operatorname{atan2}(k_{row}, k_{col})$ in the
plane $x = $ column, $y = $ row. Phases are radians; every phase difference is wrapped
to $[-\pi, \pi)$. Phases advance in time (the oscillator convention, and what the
analytic signal of $\cos(\omega t - k\cdot x)$ gives): a plane wave is
$\phi(x, t) = \omega t - k\cdot x + \phi_0$, so the angular frequency is
$\omega = \partial_t\phi$ and the wave vector $k = -\nabla\phi$ (rad per unit length;
waves travel from phase lead to phase lag); the phase velocity is $c = \omega k/|k|^2$
(speed $|\omega|/|k|$, direction of $\operatorname{sign}(\omega) k$, which is $k$ for
$\omega > 0$). A static twisted state $\theta_i = 2\pi q i/N$ has $k = -2\pi q/N$.

- `analytic_signal`, `instantaneous_phase`: the analytic signal along time by the FFT
  Hilbert transform (optionally z-scored and band-passed), as in the reference
  (`NeuralWaveMachines utils/phase.py`, `research/reference_impls.md` §4.2).
- `wave_vector`: local $k = -\nabla\phi$ from wrapped neighbour differences. The reference
  uses $\tfrac12\arg(a_{x+1}\bar a_{x-1})$, which aliases for $|k| > \pi/2$ per site;
  here it is the mean of the two one-sided wrapped differences (exact for any
  $|k| < \pi$ per site, the same value below $\pi/2$).
- `phase_velocity`: local $c = \omega k / |k|^2$.
- `plane_wave_fit`: the wave vector, frequency, speed and direction of a whole movie,
  with standard errors and a coherence in $[0, 1]$.
- `dominant_wave_vector`: the peak of the spatial power spectrum.
- `winding_number` (1-D rings: the twist of a twisted state), `topological_charge`
  (2-D: the winding of every plaquette, $\pm1$ at spiral cores), `phase_locking`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from ._misc import wrap_phase

__all__ = [
    "DominantWave",
    "WaveFit",
    "analytic_signal",
    "dominant_wave_vector",
    "instantaneous_phase",
    "phase_locking",
    "phase_velocity",
    "plane_wave_fit",
    "topological_charge",
    "wave_vector",
    "winding_number",
]

BOUNDARIES = ("periodic", "open")


def _compiled(*static: str):
    """Compile the whole function once per shape and option set: `static` names its
    non-array arguments (validated while tracing, so bad input still raises at once).
    Eager op-by-op execution costs seconds per new shape; one `jax.jit` is ~10x less."""

    def wrap(f):
        jitted = jax.jit(f, static_argnames=static)

        @functools.wraps(f)
        def call(*args, **kwargs):
            kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
            return jitted(*args, **kwargs)

        return call

    return wrap


# -- checks ------------------------------------------------------------------------------


def _real(name: str, x) -> Array:
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        raise TypeError(f"`{name}` must be real (phases in radians); got dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _axis(name: str, axis: int, nd: int) -> int:
    if not isinstance(axis, int) or not -nd <= axis < nd:
        raise ValueError(f"`{name}` must be an integer axis of an array of rank {nd}; got {axis!r}")
    return axis % nd


def _grid(x, ndim, *, extra: int = 0) -> int:
    if ndim not in (1, 2):
        raise ValueError(f"`ndim` (number of trailing grid axes) must be 1 or 2; got {ndim!r}")
    if x.ndim < ndim + extra:
        raise ValueError(
            f"the array must have at least {ndim + extra} axes (ndim={ndim} grid axes"
            f"{' after the time axis' if extra else ''}); got shape {tuple(x.shape)}"
        )
    return ndim


def _spacings(spacing, ndim: int) -> tuple[float, ...]:
    sp = (spacing,) * ndim if jnp.ndim(spacing) == 0 else tuple(spacing)
    if len(sp) != ndim or not all(float(s) > 0 for s in sp):
        raise ValueError(
            f"`spacing` must be a positive number or {ndim} positive numbers; got {spacing!r}"
        )
    return tuple(float(s) for s in sp)


def _positive(name: str, x) -> float:
    x = float(x)
    if not x > 0:
        raise ValueError(f"`{name}` must be > 0; got {x}")
    return x


def _boundary(boundary: str) -> str:
    if boundary not in BOUNDARIES:
        raise ValueError(f"`boundary` must be one of {BOUNDARIES}; got {boundary!r}")
    return boundary


# -- phase along time --------------------------------------------------------------------


def _hilbert_weights(n: int, dtype) -> Array:
    w = jnp.zeros(n, dtype)
    w = w.at[0].set(1.0)
    if n % 2 == 0:
        w = w.at[1 : n // 2].set(2.0).at[n // 2].set(1.0)
    else:
        w = w.at[1 : (n + 1) // 2].set(2.0)
    return w


def _bandpass_gain(n: int, dt: float, band, order: int, dtype) -> Array:
    lo, hi = (float(b) for b in band)
    nyquist = 0.5 / dt
    if not 0 < lo < hi <= nyquist:
        raise ValueError(
            f"`band` must be (f_lo, f_hi) with 0 < f_lo < f_hi <= the Nyquist frequency "
            f"{nyquist:g} (cycles per unit time); got {band!r}"
        )
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"`order` must be a positive integer; got {order!r}")
    f = jnp.abs(jnp.fft.fftfreq(n, d=dt)).astype(dtype)
    low = 1.0 / jnp.sqrt(1.0 + (f / hi) ** (2 * order))
    r = (f / lo) ** order
    high = r / jnp.sqrt(1.0 + r * r)
    return low * high


@_compiled("axis")
def analytic_signal(x: Float[ArrayLike, "..."], axis: int = 0) -> Array:
    r"""The analytic signal $a = x + i\,\mathcal{H}[x]$ along `axis` (FFT Hilbert
    transform, the convention of `scipy.signal.hilbert`: positive frequencies doubled,
    negative ones removed, DC and Nyquist kept). Complex, the shape of `x`. The signal
    is treated as periodic along `axis` (edge effects over a few periods otherwise)."""
    x = _real("x", x)
    axis = _axis("axis", axis, x.ndim)
    n = x.shape[axis]
    w = _hilbert_weights(n, x.dtype).reshape((n,) + (1,) * (x.ndim - axis - 1))
    return jnp.fft.ifft(jnp.fft.fft(x, axis=axis) * w, axis=axis)


@_compiled("axis", "band", "dt", "order", "zscore")
def instantaneous_phase(
    x: Float[ArrayLike, "..."],
    axis: int = 0,
    *,
    band: tuple[float, float] | None = None,
    dt: float = 1.0,
    order: int = 5,
    zscore: bool = True,
) -> Float[Array, "..."]:
    r"""Instantaneous phase $\arg a(t)$ of every unit's signal along `axis` (time), in
    $[-\pi, \pi)$; the shape of `x`.

    **Arguments:**

    - `x`: real signals, time along `axis` (e.g. positions `h` of shape `(time, *grid)`).
    - `axis`: the time axis (default 0).
    - `band`: optional `(f_lo, f_hi)` in cycles per unit time: a zero-phase band-pass
      with the magnitude response of an order-`order` Butterworth band-pass,
      $|G(f)| = [1 + (f/f_{hi})^{2n}]^{-1/2}\,(f/f_{lo})^n[1 + (f/f_{lo})^{2n}]^{-1/2}$,
      applied in the Fourier domain. The reference's visualisation filter (normalised
      band 0.2--0.4 of Nyquist) is `band=(0.1 / dt, 0.2 / dt)`.
    - `dt`: sampling step (default 1). `order`: filter order (default 5).
    - `zscore`: remove each unit's temporal mean and scale by its standard deviation
      first (default `True`, as the reference; a constant unit gets phase 0).
    """
    x = _real("x", x)
    axis = _axis("axis", axis, x.ndim)
    dt = _positive("dt", dt)
    n = x.shape[axis]
    if zscore:
        x = x - jnp.mean(x, axis=axis, keepdims=True)
        sd = jnp.std(x, axis=axis, keepdims=True)
        x = x / jnp.where(sd > 0, sd, 1.0)
    w = _hilbert_weights(n, x.dtype)
    if band is not None:
        w = w * _bandpass_gain(n, dt, band, order, x.dtype)
    w = w.reshape((n,) + (1,) * (x.ndim - axis - 1))
    a = jnp.fft.ifft(jnp.fft.fft(x, axis=axis) * w, axis=axis)
    return wrap_phase(jnp.angle(a))


@_compiled("axis")
def phase_locking(
    phase: Float[ArrayLike, "..."], reference: Float[ArrayLike, "..."], axis: int = 0
) -> Float[Array, "..."]:
    r"""Phase-locking value $|\langle e^{i(\phi - \phi_{ref})}\rangle|$ along `axis`
    (time): 1 for a unit locked to the reference at a constant lag, about
    $1/\sqrt{T}$ for an unrelated one. `reference` broadcasts against `phase`."""
    phase = _real("phase", phase)
    reference = _real("reference", reference)
    axis = _axis("axis", axis, phase.ndim)
    return jnp.abs(jnp.mean(jnp.exp(1j * (phase - reference)), axis=axis))


# -- spatial structure -------------------------------------------------------------------


def _gradient(phase, axis: int, boundary: str):
    """Mean of the two one-sided wrapped differences along `axis` (one-sided at open
    edges)."""
    fwd = wrap_phase(jnp.roll(phase, -1, axis) - phase)  # phi_{x+1} - phi_x
    bwd = jnp.roll(fwd, 1, axis)  # phi_x - phi_{x-1}
    if boundary == "periodic":
        return 0.5 * (fwd + bwd)
    n = phase.shape[axis]
    idx = jnp.arange(n).reshape((n,) + (1,) * (phase.ndim - axis - 1))
    if n == 1:
        return jnp.zeros_like(phase)
    return jnp.where(idx == 0, fwd, jnp.where(idx == n - 1, bwd, 0.5 * (fwd + bwd)))


@_compiled("ndim", "spacing", "boundary")
def wave_vector(
    phase: Float[ArrayLike, "... *grid"],
    *,
    ndim: int,
    spacing: float | tuple[float, ...] = 1.0,
    boundary: str = "periodic",
) -> Float[Array, "... *grid ndim"]:
    r"""Local wave vector $k = -\nabla\phi$ (rad per unit length) at every site of the
    last `ndim` axes, from wrapped nearest-neighbour phase differences:
    $k_x = -\tfrac12[\mathrm{wrap}(\phi_{x+1} - \phi_x) + \mathrm{wrap}(\phi_x -
    \phi_{x-1})]/\mathtt{spacing}$ (one-sided at the edges of an `"open"` grid).
    Exact for a plane wave with $|k|\,\mathtt{spacing} < \pi$. Shape
    `phase.shape + (ndim,)`, components in grid-axis order (`(k_row, k_col)` in 2-D)."""
    phase = _real("phase", phase)
    ndim = _grid(phase, ndim)
    sp = _spacings(spacing, ndim)
    boundary = _boundary(boundary)
    axes = range(phase.ndim - ndim, phase.ndim)
    return jnp.stack(
        [-_gradient(phase, a, boundary) / s for a, s in zip(axes, sp, strict=True)],
        axis=-1,
    )


def _frequency(phase, axis: int, dt: float):
    """$\\omega = \\partial_t\\phi$ by wrapped differences (one-sided at the ends)."""
    return _gradient(phase, axis, "open") / dt


@_compiled("ndim", "dt", "spacing", "time_axis", "boundary")
def phase_velocity(
    phase: Float[ArrayLike, "time *grid"],
    *,
    ndim: int,
    dt: float = 1.0,
    spacing: float | tuple[float, ...] = 1.0,
    time_axis: int = 0,
    boundary: str = "periodic",
) -> Float[Array, "time *grid ndim"]:
    r"""Local phase velocity $c = \omega\,k/|k|^2$ (length per unit time) with
    $\omega = \partial_t\phi$ (wrapped differences along `time_axis`, step `dt`) and
    $k = -\nabla\phi$ (`wave_vector`). Shape `phase.shape + (ndim,)`; NaN where $k = 0$
    (no wave, no phase velocity)."""
    phase = _real("phase", phase)
    ndim = _grid(phase, ndim, extra=1)
    time_axis = _axis("time_axis", time_axis, phase.ndim)
    if time_axis >= phase.ndim - ndim:
        raise ValueError(
            f"`time_axis` ({time_axis}) must not be one of the last {ndim} (grid) axes"
        )
    dt = _positive("dt", dt)
    k = wave_vector(phase, ndim=ndim, spacing=spacing, boundary=boundary)
    omega = _frequency(phase, time_axis, dt)
    k2 = jnp.sum(k * k, axis=-1)
    safe = jnp.where(k2 > 0, k2, 1.0)
    return jnp.where((k2 > 0)[..., None], (omega / safe)[..., None] * k, jnp.nan)


class WaveFit(NamedTuple):
    """A plane-wave summary of a phase movie (`plane_wave_fit`). Standard errors
    (`*_se`) treat the grid's sites as independent measurements (spatially correlated
    noise makes them optimistic); the mean over frames is taken first."""

    #: Mean local wave vector `(ndim,)`, rad per unit length, grid-axis order.
    wave_vector: Array
    wave_vector_se: Array
    #: |wave_vector|.
    wavenumber: Array
    #: Mean angular frequency dphi/dt (rad per unit time) and its standard error.
    frequency: Array
    frequency_se: Array
    #: Phase speed |omega| / |k| (length per unit time) and its standard error.
    speed: Array
    speed_se: Array
    #: Propagation direction: 2-D the angle atan2 of sign(omega) k (x = col, y = row),
    #: radians; 1-D +1 or -1 (towards increasing or decreasing index).
    direction: Array
    direction_se: Array
    #: |mean of the unit local wave vectors|: 1 for a plane wave, ~0 for a spiral or
    #: disorder.
    coherence: Array


@_compiled("ndim", "dt", "spacing", "boundary")
def plane_wave_fit(
    phase: Float[ArrayLike, "time *grid"],
    *,
    ndim: int,
    dt: float = 1.0,
    spacing: float | tuple[float, ...] = 1.0,
    boundary: str = "periodic",
) -> WaveFit:
    r"""Fit one plane wave $\phi = \omega t - k\cdot x$ to a phase movie `phase` of
    shape `(time, *grid)` (`time >= 2`): $k$ the mean of the local wave vectors, $\omega$
    the mean of $\partial_t\phi$, speed $|\omega|/|k|$ with a delta-method error
    $(\sigma_c/c)^2 = (\sigma_\omega/\omega)^2 + (\sigma_{|k|}/|k|)^2$, direction the
    angle of $\operatorname{sign}(\omega)k$. Returns a `WaveFit`."""
    phase = _real("phase", phase)
    ndim = _grid(phase, ndim, extra=1)
    if phase.ndim != ndim + 1 or phase.shape[0] < 2:
        raise ValueError(
            f"`phase` must have shape (time >= 2, *grid) with {ndim} grid axes; got "
            f"shape {tuple(phase.shape)}"
        )
    dt = _positive("dt", dt)
    k = wave_vector(phase, ndim=ndim, spacing=spacing, boundary=boundary)
    omega = _frequency(phase, 0, dt)
    sites = math.prod(phase.shape[1:])
    grid_axes = tuple(range(1, ndim + 1))

    def mean_se(q, axes):  # mean over frames and sites; SE over sites of the time-mean
        per_site = jnp.mean(q, axis=0)
        m = jnp.mean(per_site, axis=tuple(a - 1 for a in axes))
        sd = jnp.std(per_site, axis=tuple(a - 1 for a in axes), ddof=1 if sites > 1 else 0)
        return m, sd / math.sqrt(sites)

    kbar, kse = mean_se(k, grid_axes)
    w, wse = mean_se(omega, grid_axes)
    kn = jnp.linalg.norm(kbar)
    khat = kbar / jnp.where(kn > 0, kn, 1.0)
    kn_se = jnp.sqrt(jnp.sum((khat * kse) ** 2))
    speed = jnp.abs(w) / kn
    speed_se = speed * jnp.sqrt((wse / w) ** 2 + (kn_se / kn) ** 2)
    s = jnp.where(w < 0, -1.0, 1.0).astype(kbar.dtype)
    if ndim == 1:
        direction = jnp.sign(s * kbar[0])
        direction_se = jnp.zeros_like(direction)
    else:
        direction = jnp.arctan2(s * kbar[0], s * kbar[1])
        perp = jnp.array([khat[1], -khat[0]])
        direction_se = jnp.sqrt(jnp.sum((perp * kse) ** 2)) / kn
    kl2 = jnp.linalg.norm(k, axis=-1, keepdims=True)
    unit = k / jnp.where(kl2 > 0, kl2, 1.0)
    coherence = jnp.linalg.norm(jnp.mean(unit, axis=tuple(range(k.ndim - 1))))
    return WaveFit(
        wave_vector=kbar, wave_vector_se=kse, wavenumber=kn, frequency=w,
        frequency_se=wse, speed=speed, speed_se=speed_se, direction=direction,
        direction_se=direction_se, coherence=coherence,
    )


class DominantWave(NamedTuple):
    """The peak of a spatial power spectrum (`dominant_wave_vector`)."""

    #: Wave vector of the peak `(ndim,)`, rad per unit length, grid-axis order.
    wave_vector: Array
    #: |wave_vector|.
    wavenumber: Array
    #: Half the frequency-bin width per axis `(ndim,)`: the estimate's resolution.
    resolution: Array
    #: Fraction of the non-DC power in the peak bin (1 for one pure plane wave).
    power_fraction: Array


@_compiled("ndim", "spacing")
def dominant_wave_vector(
    x: ArrayLike,
    *,
    ndim: int,
    spacing: float | tuple[float, ...] = 1.0,
) -> DominantWave:
    r"""The dominant wave vector of field(s) `x` `(..., *grid)`: the peak of the spatial
    power spectrum $|\hat x(k)|^2$ over the last `ndim` axes, averaged over the leading
    ones, excluding $k = 0$ (the spatial mean is removed). The grid is taken as
    periodic. For a signed wave vector pass a complex field, e.g.
    `exp(1j * phase)` or `analytic_signal(h)` (the sign convention is `wave_vector`'s:
    $e^{i(\omega t - k\cdot x)}$ gives $+k$); a real field's spectrum is symmetric,
    so only $\pm k$ is determined. Exact (up to `resolution`) for a wave that fits the
    grid an integer number of times."""
    x = jnp.asarray(x)
    ndim = _grid(x, ndim)
    sp = _spacings(spacing, ndim)
    axes = tuple(range(x.ndim - ndim, x.ndim))
    xs = x - jnp.mean(x, axis=axes, keepdims=True)
    power = jnp.abs(jnp.fft.fftn(xs, axes=axes)) ** 2
    power = jnp.mean(power.reshape((-1,) + power.shape[x.ndim - ndim :]), axis=0)
    grid = power.shape
    flat = jnp.argmax(power.reshape(-1))
    idx = jnp.unravel_index(flat, grid)
    freqs = [
        2 * jnp.pi * jnp.fft.fftfreq(n, d=s).astype(power.dtype)
        for n, s in zip(grid, sp, strict=True)
    ]
    # a field exp(i phi) = exp(i(omega t - k.x)) peaks at fftfreq -k: report +k.
    k = -jnp.stack([f[i] for f, i in zip(freqs, idx, strict=True)])
    res = jnp.array([jnp.pi / (n * s) for n, s in zip(grid, sp, strict=True)], power.dtype)
    total = jnp.sum(power)
    frac = jnp.where(total > 0, power.reshape(-1)[flat] / jnp.where(total > 0, total, 1.0), 0.0)
    return DominantWave(
        wave_vector=k, wavenumber=jnp.linalg.norm(k), resolution=res, power_fraction=frac
    )


# -- topology ----------------------------------------------------------------------------


@_compiled("axis")
def winding_number(phase: Float[ArrayLike, "..."], axis: int = -1) -> Int[Array, "..."]:
    r"""Winding number $q = \frac{1}{2\pi}\sum_i \mathrm{wrap}(\phi_{i+1} - \phi_i)$ of
    phases on a ring along `axis` (closing the ring), an integer: the twist of a twisted
    state $\phi_i = 2\pi q i / N$ (valid while neighbours differ by less than $\pi$).
    Shape: `phase` without `axis`."""
    phase = _real("phase", phase)
    axis = _axis("axis", axis, phase.ndim)
    d = wrap_phase(jnp.roll(phase, -1, axis) - phase)
    return jnp.round(jnp.sum(d, axis=axis) / (2 * jnp.pi)).astype(jnp.int32)


@_compiled("boundary")
def topological_charge(
    phase: Float[ArrayLike, "... rows cols"], *, boundary: str = "periodic"
) -> Int[Array, "... plaquettes_r plaquettes_c"]:
    r"""Topological charge of every plaquette of a 2-D phase field (the last two axes):
    the winding $\frac{1}{2\pi}\oint d\phi$ around the cell with corners $(i, j)$,
    $(i, j+1)$, $(i+1, j+1)$, $(i+1, j)$, traversed counter-clockwise in the plane
    $x = $ column, $y = $ row. A spiral $\phi = \operatorname{atan2}(y - y_0, x - x_0)$
    has charge $+1$ in the plaquette holding its core and 0 elsewhere; the reversed
    spiral $-1$. Integers, shape `(..., rows, cols)` on a periodic grid (charges then sum
    to 0), `(..., rows - 1, cols - 1)` on an open one."""
    phase = _real("phase", phase)
    boundary = _boundary(boundary)
    if phase.ndim < 2:
        raise ValueError(
            f"`phase` must have at least 2 (grid) axes; got shape {tuple(phase.shape)}"
        )
    p00 = phase
    p01 = jnp.roll(phase, -1, -1)  # (i, j+1)
    p11 = jnp.roll(p01, -1, -2)  # (i+1, j+1)
    p10 = jnp.roll(phase, -1, -2)  # (i+1, j)
    loop = (
        wrap_phase(p01 - p00) + wrap_phase(p11 - p01)
        + wrap_phase(p10 - p11) + wrap_phase(p00 - p10)
    )
    q = jnp.round(loop / (2 * jnp.pi)).astype(jnp.int32)
    return q if boundary == "periodic" else q[..., :-1, :-1]
