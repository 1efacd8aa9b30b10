"""kl.spectral: Parseval and normalisation, known tones (sign, power, sub-bin peaks),
radial spectra of plane waves and white noise, ensemble SNR against its sampling
distribution, jit/vmap, errors, and one simulated locked network."""

import math

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import kuralab as kl
from kuralab import spectral

TWO_PI = 2 * math.pi

# A few fixed shapes (every new shape costs a compilation); float32 like the library.
_signals = hnp.arrays(
    np.float32,
    st.sampled_from([(64,), (33, 2)]),
    elements=st.floats(-10.0, 10.0, width=32),
)
_settings = settings(max_examples=25, deadline=None)


def _df(freqs):
    """Bin spacing (from the ends: less float32 round-off than adjacent bins)."""
    f = np.asarray(freqs, np.float64)
    return (f[-1] - f[0]) / (f.size - 1)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------
# power_spectrum: normalisation, Parseval, properties
# ---------------------------------------------------------------------------------


@_settings
@given(x=_signals, a=st.floats(0.1, 10.0))
def test_psd_properties(x, a):
    dt = 0.1
    f, p = spectral.power_spectrum(x, dt=dt, window=None, detrend=None)
    n = x.shape[0]
    assert f.shape == (n // 2 + 1,) and p.shape == (n // 2 + 1, *x.shape[1:])
    assert np.all(np.asarray(p) >= 0)
    # Parseval (exact without a window): sum S dw = mean power.
    mean_power = np.mean(x.astype(np.float64) ** 2, axis=0)
    scale = float(np.max(mean_power)) + 1e-3
    np.testing.assert_allclose(np.sum(p, 0) * _df(f), mean_power, atol=1e-5 * scale)
    # Scaling x -> a x scales the PSD by a^2.
    _, pa = spectral.power_spectrum(a * x, dt=dt, window=None, detrend=None)
    np.testing.assert_allclose(pa, a**2 * p, rtol=1e-4, atol=1e-5 * a**2 * scale)
    # A circular time shift only changes the phases of the DFT.
    _, ps = spectral.power_spectrum(np.roll(x, 5, axis=0), dt=dt, window=None)
    _, p0 = spectral.power_spectrum(x, dt=dt, window=None)
    np.testing.assert_allclose(ps, p0, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("n, complex_", [(256, False), (255, False), (256, True)])
def test_parseval_mean_power_and_variance(n, complex_):
    x = 1.5 + _rng().standard_normal((n, 3))
    if complex_:
        x = x + 1j * _rng(1).standard_normal((n, 3))
    x = x.astype(np.complex64 if complex_ else np.float32)
    dt = 0.02
    f, p = spectral.power_spectrum(x, dt=dt, window=None, detrend=None)
    np.testing.assert_allclose(
        np.sum(p, 0) * _df(f), np.mean(np.abs(x) ** 2, 0), rtol=2e-5
    )
    f, p = spectral.power_spectrum(x, dt=dt, window=None, detrend="mean")
    np.testing.assert_allclose(np.sum(p, 0) * _df(f), np.var(x, 0), rtol=2e-5)
    # Frequency grid: spacing 2 pi / (n dt); one-sided from 0 for real input,
    # ascending two-sided over [-pi/dt, pi/dt) for complex input.
    np.testing.assert_allclose(_df(f), TWO_PI / (n * dt), rtol=1e-5)
    if complex_:
        assert f.shape == (n,) and float(f[0]) >= -math.pi / dt - 1e-3
        assert np.all(np.diff(np.asarray(f)) > 0) and float(f[-1]) < math.pi / dt
    else:
        assert f.shape == (n // 2 + 1,) and float(f[0]) == 0.0
    # Cycles per unit time: f / 2 pi and a PSD 2 pi times larger.
    fc, pc = spectral.power_spectrum(
        x, dt=dt, window=None, detrend="mean", angular=False
    )
    np.testing.assert_allclose(fc, f / TWO_PI, rtol=1e-6)
    np.testing.assert_allclose(pc, p * TWO_PI, rtol=1e-5)


def test_welch_parseval_and_white_noise_level():
    # Non-overlapping rectangular segments tile the record: Parseval stays exact.
    x = _rng().standard_normal(1024).astype(np.float32)
    f, p = spectral.power_spectrum(
        x, dt=0.5, window=None, detrend=None, nperseg=128, overlap=0.0
    )
    assert f.shape == (65,)
    np.testing.assert_allclose(np.sum(p) * _df(f), np.mean(x**2), rtol=1e-5)
    # White noise of variance s2 has the flat one-sided density s2 dt / pi (any
    # window: the density normalisation divides by sum w^2; no detrending, which
    # would take a little power from the bins next to DC). Interior bins of a Hann
    # Welch estimate over B series of n samples: the grand mean is an average of about
    # B n independent squares, relative std <= 2 sqrt(2 / (B n)) (the factor 2 covers
    # the Hann window's bin correlations); allow 5 of those.
    B, n, s2, dt = 64, 1024, 2.0, 0.5
    x = (math.sqrt(s2) * _rng(1).standard_normal((n, B))).astype(np.float32)
    f, p = spectral.power_spectrum(x, dt=dt, detrend=None, nperseg=128)
    level = float(np.mean(p[1:-1]))
    tol = 5 * 2 * math.sqrt(2 / (B * n))
    assert abs(level / (s2 * dt / math.pi) - 1) < tol


def test_tone_power_and_sign():
    n, dt, bin_ = 512, 0.05, 40
    t = np.arange(n) * dt
    w0 = TWO_PI * bin_ / (n * dt)
    A = 1.7
    f, p = spectral.power_spectrum(A * np.cos(w0 * t + 0.3), dt=dt, window=None)
    p = np.asarray(p)
    assert int(np.argmax(p)) == bin_
    np.testing.assert_allclose(p[bin_] * _df(f), A**2 / 2, rtol=1e-4)
    assert np.sum(np.delete(p, bin_)) * _df(f) < 1e-5 * A**2
    # A phasor rotating at -w0 peaks at -w0 (two-sided), not at +w0.
    z = np.exp(-1j * w0 * t).astype(np.complex64)
    f, p = spectral.power_spectrum(z, dt=dt, window=None)
    k = int(np.argmax(p))
    np.testing.assert_allclose(f[k], -w0, rtol=1e-5)
    np.testing.assert_allclose(p[k] * _df(f), 1.0, rtol=1e-4)


# ---------------------------------------------------------------------------------
# dominant_frequency
# ---------------------------------------------------------------------------------


def test_dominant_frequency_sub_bin():
    n, dt = 1024, 0.05
    bin_w = TWO_PI / (n * dt)
    t = np.arange(n)[:, None] * dt
    offsets = np.linspace(0.0, 1.0, 11)  # across one bin
    w0 = (37.0 + offsets) * bin_w
    tones = {
        "phasor": (np.exp(1j * w0 * t).astype(np.complex64), w0),
        "reverse": (np.exp(-1j * w0 * t).astype(np.complex64), -w0),
        "cos": (np.cos(w0 * t + 1.0).astype(np.float32), w0),
    }
    for x, truth in tones.values():
        # The log-parabola alone: Hann's main lobe is nearly Gaussian (< 0.02 bin).
        coarse = spectral.dominant_frequency(x, dt=dt, refine=0)
        assert coarse.shape == (11,)
        assert np.max(np.abs(coarse - truth)) / bin_w < 0.02
        # Newton steps on the continuous periodogram: exact up to float32 round-off.
        fine = spectral.dominant_frequency(x, dt=dt)
        assert np.max(np.abs(fine - truth)) / bin_w < 1e-3
    x, truth = tones["phasor"]
    cyc = spectral.dominant_frequency(x, dt=dt, angular=False)
    np.testing.assert_allclose(cyc, truth / TWO_PI, rtol=1e-4)


def test_float64(x64):
    # dtypes follow the input; Newton refinement then reaches float64 round-off.
    n, dt = 512, 0.1
    w0 = 21.37 * TWO_PI / (n * dt)
    z = np.exp(1j * w0 * np.arange(n) * dt)
    f, p = spectral.power_spectrum(z, dt=dt)
    assert f.dtype == jnp.float64 and p.dtype == jnp.float64
    w = spectral.dominant_frequency(z, dt=dt)
    assert w.dtype == jnp.float64
    assert abs(float(w) - w0) / (TWO_PI / (n * dt)) < 1e-8


def test_dominant_frequency_band_and_welch():
    n, dt = 2048, 0.1
    t = np.arange(n) * dt
    x = 3.0 * np.sin(0.7 * t) + np.sin(4.1 * t) + 5.0  # offset removed by "auto"
    np.testing.assert_allclose(spectral.dominant_frequency(x, dt=dt), 0.7, rtol=1e-3)
    np.testing.assert_allclose(
        spectral.dominant_frequency(x, dt=dt, band=(2.0, 6.0)), 4.1, rtol=1e-3
    )
    np.testing.assert_allclose(
        spectral.dominant_frequency(x, dt=dt, band=(2.0 / TWO_PI, 1.0), angular=False),
        4.1 / TWO_PI,
        rtol=1e-3,
    )
    # Welch segments: coarser bins (2 pi / 25.6 ~ 0.25 rad), refined all the same.
    np.testing.assert_allclose(
        spectral.dominant_frequency(x, dt=dt, nperseg=256), 0.7, rtol=1e-3
    )


def test_dominant_frequency_of_wrapped_phases():
    # theta_j(t) = omega_j t + phi_j, wrapped; the phasor keeps the sign of omega_j.
    omega = np.array([-2.3, -0.4, 0.0, 0.55, 1.234, 3.0])
    phi = np.linspace(0.1, 5.0, omega.size)
    n, dt = 1000, 0.04
    t = np.arange(n)[:, None] * dt
    theta = np.mod(omega * t + phi + np.pi, TWO_PI) - np.pi  # wrapped, (time, osc)
    bin_w = TWO_PI / (n * dt)
    got = spectral.dominant_frequency(np.exp(1j * theta).astype(np.complex64), dt=dt)
    assert got.shape == omega.shape
    assert np.max(np.abs(got - omega)) / bin_w < 1e-3
    # cos(theta) is real: one-sided, so only |omega| is visible (skip omega = 0).
    x = np.cos(theta).astype(np.float32)
    got = spectral.dominant_frequency(x, dt=dt, band=(0.1, 10.0))
    np.testing.assert_allclose(got[omega != 0], np.abs(omega[omega != 0]), atol=1e-2)


# ---------------------------------------------------------------------------------
# phase_spectrum
# ---------------------------------------------------------------------------------


def test_phase_spectrum_nodes_and_mean_field():
    omega = np.array([-1.5, 0.5, 2.0])
    n, dt = 600, 0.05
    t = np.arange(n)[:, None] * dt
    theta = (np.mod(omega * t + np.pi, TWO_PI) - np.pi).astype(np.float32)
    bin_w = TWO_PI / (n * dt)
    f, p = spectral.phase_spectrum(theta, dt=dt, window=None)
    assert p.shape == (n, 3)
    peaks = np.asarray(f)[np.argmax(np.asarray(p), axis=0)]
    assert np.all(np.abs(peaks - omega) <= bin_w / 2 + 1e-6)
    np.testing.assert_allclose(np.sum(p, 0) * _df(f), 1.0, rtol=1e-4)  # |e^{i th}| = 1
    f, p = spectral.phase_spectrum(theta, dt=dt, signal="cos", window=None)
    assert p.shape == (n // 2 + 1, 3)
    peaks = np.asarray(f)[np.argmax(np.asarray(p), axis=0)]
    assert np.all(np.abs(peaks - np.abs(omega)) <= bin_w / 2 + 1e-6)
    np.testing.assert_allclose(
        np.sum(p, 0) * _df(f), np.mean(np.cos(theta) ** 2, 0), rtol=1e-4
    )
    # Mean field of a rigidly rotating cluster: Z = R e^{i Omega t}, power R^2.
    offsets = np.array([0.0, 0.5, 1.0, -0.7])
    theta = (1.1 * t + offsets).astype(np.float32)
    R2 = abs(np.mean(np.exp(1j * offsets))) ** 2
    f, p = spectral.phase_spectrum(theta, dt=dt, mean_field=True, window=None)
    assert p.shape == (n,)
    np.testing.assert_allclose(np.sum(p) * _df(f), R2, rtol=1e-4)
    w = spectral.dominant_frequency(kl.order_parameter(theta), dt=dt)
    np.testing.assert_allclose(w, 1.1, rtol=1e-4)


# ---------------------------------------------------------------------------------
# radial_spectrum
# ---------------------------------------------------------------------------------


def _kgrid(H, W, dy, dx):
    ky = TWO_PI * np.fft.fftfreq(H, dy)
    kx = TWO_PI * np.fft.fftfreq(W, dx)
    return np.hypot(ky[:, None], kx[None, :])


@pytest.mark.parametrize(
    "H, W, dy, dx, a, b", [(32, 32, 1.0, 1.0, 3, 4), (16, 32, 0.5, 1.0, 1, 6)]
)
def test_radial_plane_wave_and_parseval(H, W, dy, dx, a, b):
    y = np.arange(H)[:, None] * dy
    x = np.arange(W)[None, :] * dx
    ky, kx = TWO_PI * a / (H * dy), TWO_PI * b / (W * dx)
    wave = np.cos(ky * y + kx * x + 0.2).astype(np.float32)
    k, p = spectral.radial_spectrum(wave, spacing=(dy, dx))
    dk = min(TWO_PI / (H * dy), TWO_PI / (W * dx))
    assert abs(float(k[int(np.nanargmax(p))]) - math.hypot(ky, kx)) <= dk / 2
    # Parseval: sum over bins of power x modes x dky dkx = mean power. Mode counts
    # from the |k| grid, binned on the default shells (centred on multiples of dk).
    field = (_rng().standard_normal((2, H, W)) + 0.5).astype(np.float32)
    k, p = spectral.radial_spectrum(field, spacing=(dy, dx))
    counts = np.bincount(np.rint(_kgrid(H, W, dy, dx) / dk).astype(int).ravel())
    assert p.shape == (2, counts.size) and np.all(counts > 0)
    np.testing.assert_allclose(k, dk * np.arange(counts.size), rtol=1e-6)
    cell = TWO_PI**2 / (H * W * dy * dx)
    np.testing.assert_allclose(
        np.sum(p * counts, -1) * cell, np.mean(field**2, (-2, -1)), rtol=1e-5
    )
    # Custom bins against a NumPy reference (mean of |F|^2 dy dx / (H W 4 pi^2)).
    # No mode has |k| in [0.5, 0.52) on either grid (e.g. 32 x 32: |k| = 2 pi
    # sqrt(a^2 + b^2) / 32 would need a^2 + b^2 in [6.5, 7)): that bin is NaN.
    edges = np.array([0.5, 0.52, 1.0, 2.0, 3.0])
    k, p = spectral.radial_spectrum(field, spacing=(dy, dx), bins=edges)
    np.testing.assert_allclose(k, [0.51, 0.76, 1.5, 2.5])
    assert np.all(np.isnan(p[:, 0])) and np.all(np.isfinite(p[:, 1:]))
    F2 = np.abs(np.fft.fft2(np.asarray(field, np.float64))) ** 2
    kg = _kgrid(H, W, dy, dx)
    for i in range(1, 4):
        inside = (kg >= edges[i]) & (kg < edges[i + 1])
        ref = F2[:, inside].mean(-1) * dy * dx / (H * W * TWO_PI**2)
        np.testing.assert_allclose(p[:, i], ref, rtol=1e-4)


def test_radial_white_noise_is_flat():
    # Per field, the mean of |F|^2 over a bin of c modes has relative variance 2/c
    # (pairs k, -k are equal for a real field: c/2 exponentials; self-conjugate modes
    # are chi^2_1). Over B fields 2/(B c); allow 5 standard deviations per bin.
    B, H, W, sigma, d = 64, 32, 32, 2.0, 0.5
    field = (sigma * _rng().standard_normal((B, 1, H, W))).astype(np.float32)
    k, p = spectral.radial_spectrum(field, axes=(2, 3), spacing=d)
    assert p.shape == (B, 1, k.size)
    level = sigma**2 * d * d / TWO_PI**2
    counts = np.bincount(
        np.rint(_kgrid(H, W, d, d) / (TWO_PI / (H * d))).astype(int).ravel()
    )
    rel = np.mean(np.asarray(p)[:, 0], 0) / level - 1
    assert np.all(np.abs(rel) < 5 * np.sqrt(2 / (B * counts)))


# ---------------------------------------------------------------------------------
# snr
# ---------------------------------------------------------------------------------


def _snr_std(snr, M, n):
    """Delta-method std of the debiased SNR estimate for Gaussian noise, n elements.

    Var = (4 SNR/M + 2/M^2)/n + v (SNR + 1/M)^2, v = 2/(n (M-1)) the relative variance
    of the noise estimate (mean and deviations are independent)."""
    v = 2 / (n * (M - 1))
    return math.sqrt((4 * snr / M + 2 / M**2) / n + v * (snr + 1 / M) ** 2)


def _pattern(H, W):
    y, x = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    # Two on-grid waves: mean power exactly (1.5^2 + 1) / 2.
    s = 1.5 * np.cos(TWO_PI * 2 * x / W) + np.sin(TWO_PI * (y + 3 * x) / H)
    return s.astype(np.float32), (1.5**2 + 1) / 2


def test_snr_gaussian_matches_sampling_distribution():
    # R independent ensembles side by side: the replicate axis is kept, like time.
    R, M, H, W, sigma = 200, 8, 16, 16, 0.8
    s, Ps = _pattern(H, W)
    truth = Ps / sigma**2
    ens = (s + sigma * _rng().standard_normal((R, M, H, W))).astype(np.float32)
    est = np.asarray(spectral.snr(ens, axis=1, axes=(2, 3)))
    assert est.shape == (R,)
    # Unbiased: the replicate mean is within 5 standard errors of P_s / sigma^2, and
    # the spread matches the delta-method std (std of a std from R draws ~ 1/sqrt(2R)).
    sd = _snr_std(truth, M, H * W)
    assert abs(est.mean() - truth) < 5 * sd / math.sqrt(R)
    assert abs(est.std(ddof=1) / sd - 1) < 5 / math.sqrt(2 * R)
    # Without debiasing the signal power carries the extra sigma^2 / M.
    biased = np.asarray(spectral.snr(ens, axis=1, axes=(2, 3), debias=False))
    np.testing.assert_allclose(biased - est, 1 / M, rtol=1e-4)
    assert abs(biased.mean() - (truth + 1 / M)) < 5 * sd / math.sqrt(R)


def test_snr_per_time_and_member_axis():
    # SNR(t) for a (member, time, H, W) ensemble whose noise grows with t.
    M, T, H, W = 16, 5, 32, 32
    s, Ps = _pattern(H, W)
    sigmas = np.array([0.3, 0.6, 1.0, 1.5, 3.0], np.float32)[:, None, None]
    ens = (s + sigmas * _rng().standard_normal((M, T, H, W))).astype(np.float32)
    got = np.asarray(spectral.snr(ens, axes=(-2, -1)))
    truth = Ps / sigmas.ravel() ** 2
    assert got.shape == (T,)
    for g, tr in zip(got, truth, strict=True):
        assert abs(g - tr) < 5 * _snr_std(tr, M, H * W)
    # The member axis may be anywhere; the kept axes keep their order.
    moved = jnp.moveaxis(ens, 0, 2)  # (time, H, member, W)
    np.testing.assert_allclose(spectral.snr(moved, axis=2, axes=(1, 3)), got, rtol=1e-5)
    # One overall number by default; and a single band holding every mode gives the
    # same ratio (Parseval).
    overall = spectral.snr(ens[:, 1])
    assert overall.shape == ()
    kmax = float(_kgrid(H, W, 1.0, 1.0).max())
    np.testing.assert_allclose(
        spectral.snr(ens[:, 1], bands=[0.0, kmax]), overall[None], rtol=1e-4
    )


def test_snr_band_limited_signal():
    M, H, W, sigma = 16, 32, 32, 1.0
    y, x = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    # Waves with |k| = 2 pi * 5 / 32 ~ 0.98 (modes (3, 4), (5, 0)): inside [0.8, 1.2).
    s = np.cos(TWO_PI * (3 * y + 4 * x) / H) + np.cos(TWO_PI * 5 * x / W)
    Ps = 1.0  # two unit cosines: 1/2 each
    ens = (s + sigma * _rng().standard_normal((M, H, W))).astype(np.float32)
    edges = np.array([0.0, 0.4, 0.8, 1.2, 2.0, 4.5])
    got = np.asarray(spectral.snr(ens, bands=edges))
    assert got.shape == (5,)
    kg = _kgrid(H, W, 1.0, 1.0)
    n = H * W
    for i, g in enumerate(got):
        n_b = int(np.sum((kg >= edges[i]) & (kg < edges[i + 1])))
        # White noise puts sigma^2 n_b / n of its power in the band.
        truth = Ps / (sigma**2 * n_b / n) if i == 2 else 0.0
        assert abs(g - truth) < 5 * _snr_std(truth, M, n_b), (i, g, truth)
    assert got[2] > 10


def test_snr_of_phasors():
    # x_m = exp(i (phi + sigma eps)): E x = e^{i phi} e^{-sigma^2/2}, so
    # SNR = e^{-sigma^2} / (1 - e^{-sigma^2}). Tolerance: 5 empirical standard errors.
    R, M, n, sigma = 100, 8, 256, 0.7
    rng = _rng()
    phi = rng.uniform(-math.pi, math.pi, n)
    z = np.exp(1j * (phi + sigma * rng.standard_normal((R, M, n)))).astype(np.complex64)
    est = np.asarray(spectral.snr(z, axis=1, axes=-1))
    q = math.exp(-(sigma**2))
    truth = q / (1 - q)
    assert abs(est.mean() - truth) < 5 * est.std(ddof=1) / math.sqrt(R)
    assert est.std() < 0.1 * truth  # and it is informative


# ---------------------------------------------------------------------------------
# Transforms, errors, and a simulated network
# ---------------------------------------------------------------------------------


def test_jit_and_vmap():
    x = _rng().standard_normal((4, 128)).astype(np.float32)
    f, p = jax.jit(lambda x, dt: spectral.power_spectrum(x, dt=dt, axis=1))(x, 0.1)
    f0, p0 = spectral.power_spectrum(x, dt=0.1, axis=1)
    np.testing.assert_allclose(p, p0, rtol=1e-5)
    np.testing.assert_allclose(f, f0, rtol=1e-6)
    per = jax.vmap(lambda s: spectral.dominant_frequency(s, dt=0.1))(x)
    np.testing.assert_allclose(
        per, spectral.dominant_frequency(x, dt=0.1, axis=1), rtol=1e-5
    )


_X = np.zeros((16, 3), np.float32)
_FIELD = np.zeros((4, 8, 8), np.float32)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: spectral.power_spectrum(_X, dt=0.0),
            "`dt` must be a finite scalar > 0",
        ),
        (lambda: spectral.power_spectrum(_X, dt=np.nan), "`dt` must be a finite"),
        (lambda: spectral.power_spectrum(_X, dt=[0.1, 0.2]), "`dt` must be a finite"),
        (lambda: spectral.power_spectrum(_X[:1], dt=0.1), "at least 2 samples"),
        (
            lambda: spectral.power_spectrum(_X, dt=0.1, axis=2),
            "`axis`=2 is out of range",
        ),
        (
            lambda: spectral.power_spectrum(_X, dt=0.1, nperseg=32),
            r"`nperseg`.*\[2, 16\]",
        ),
        (lambda: spectral.power_spectrum(_X, dt=0.1, overlap=1.0), "`overlap`"),
        (
            lambda: spectral.power_spectrum(_X, dt=0.1, window="han"),
            "did you mean 'hann'",
        ),
        (
            lambda: spectral.power_spectrum(_X, dt=0.1, window=np.ones(5)),
            r"\(nperseg,\)",
        ),
        (lambda: spectral.power_spectrum(_X, dt=0.1, detrend="linear"), "`detrend`"),
        (lambda: spectral.power_spectrum(1.0, dt=0.1), "got a scalar"),
        (lambda: spectral.phase_spectrum(_X + 0j, dt=0.1), "real phases"),
        (lambda: spectral.phase_spectrum(_X, dt=0.1, signal="sin"), "`signal`"),
        (
            lambda: spectral.phase_spectrum(_X[:, 0], dt=0.1, mean_field=True),
            "mean_field",
        ),
        (
            lambda: spectral.dominant_frequency(_X, dt=0.1, band=(2.0, 1.0)),
            "low < high",
        ),
        (
            lambda: spectral.dominant_frequency(_X, dt=0.1, band=(0.01, 0.02)),
            "no frequency bin",
        ),
        (lambda: spectral.dominant_frequency(_X, dt=0.1, refine=-1), "`refine`"),
        (lambda: spectral.radial_spectrum(_FIELD, axes=(0,)), "two lattice axes"),
        (lambda: spectral.radial_spectrum(_FIELD, axes=(1, 1)), "distinct axes"),
        (lambda: spectral.radial_spectrum(_FIELD, spacing=-1.0), "`spacing`"),
        (
            lambda: spectral.radial_spectrum(_FIELD[:, :1], axes=(1, 2)),
            "at least 2 sites",
        ),
        (
            lambda: spectral.radial_spectrum(_FIELD, bins=[0.0, 2.0, 1.0]),
            "strictly increasing",
        ),
        (lambda: spectral.snr(_FIELD[:1]), "at least 2 members"),
        (lambda: spectral.snr(_FIELD, axes=(0, 1)), "must not contain the member axis"),
        (lambda: spectral.snr(_FIELD, axes=(1, 5)), "out of range"),
        (lambda: spectral.snr(_FIELD, bands=[1.0]), "band edges"),
        (lambda: spectral.snr(_FIELD, bands=[0.0, 1.0], axes=(1,)), "two lattice axes"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_locked_network_mean_field_frequency():
    # Symmetric all-to-all coupling far above the frequency spread (max |omega_i -
    # mean| = 0.46 << K = 4) locks the network; the coupling terms cancel in the mean,
    # so every oscillator and the mean field turn at mean(omega).
    omega = jnp.array([0.8, 1.0, 1.4, 1.5, 1.6])
    model = kl.Kuramoto(omega, kl.MeanField(4.0))
    dt, every = 0.1, 2
    tr = kl.simulate(
        model, jnp.zeros(5), t1=120.0, dt=dt, saveat=kl.SaveAt(every=every)
    )
    ys = tr.ys[100:]  # drop the locking transient (t < 20)
    n, ds = ys.shape[0], dt * every
    bin_w = TWO_PI / (n * ds)
    Omega = float(jnp.mean(omega))
    # The mean field Z(t) and each oscillator's phasor, in one call: (time, 1 + osc).
    signals = jnp.concatenate([kl.order_parameter(ys)[:, None], jnp.exp(1j * ys)], 1)
    w = np.asarray(spectral.dominant_frequency(signals, dt=ds))
    np.testing.assert_allclose(w, Omega, atol=1e-2 * bin_w)
    # Far from the natural frequencies themselves (locking moved them by >= 0.14).
    assert np.min(np.abs(w[1:] - np.asarray(omega))) > 0.1
