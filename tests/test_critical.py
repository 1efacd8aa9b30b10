"""kl.estimate_critical_coupling: recovery and calibration of the bootstrap error on
synthetic sweeps with a known K_c, the study Dataset layout, theory from attributes,
and bad input."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from kuralab import theory
from kuralab._critical import CriticalCouplingEstimate, estimate_critical_coupling

# Couplings in units of K_c, densest just above it (the onset window) and spanning the
# incoherent side (the fluctuation window).
# fmt: off
GRID = np.array([0.1, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95, 1.0, 1.02, 1.04, 1.07, 1.1, 1.14,
                 1.19, 1.25, 1.33, 1.45, 1.7, 2.2, 3.0])
# fmt: on


def _onset_sweep(rng, Kc, seeds, noise=0.01, shift=0.0, n=2000):
    """R[K, seed] from the Lorentzian-form branch R^2 = 1 - K_c/K above K_c (each seed
    with its own K_c + shift * normal, like a finite sample of frequencies) and the
    finite-size floor below, plus independent noise of size `noise`."""
    K = Kc * GRID
    Kc_seed = Kc * (1 + shift * rng.standard_normal(seeds))
    branch = np.sqrt(np.clip(1 - Kc_seed / K[:, None], 0, None))
    floor = math.sqrt(math.pi / (4 * n))
    R = np.maximum(branch, floor) + noise * rng.standard_normal((K.size, seeds))
    return K, np.clip(R, 1e-4, 1.0)


def _incoherent_sweep(rng, Kc, seeds, n, steps=400, rho=0.9, b=1.0):
    """(K, R, R_std) of a complex AR(1) order parameter Z_t with the incoherent-side
    variance <|Z|^2> = 1 / (N b (1 - K/K_c)), time-averaged over `steps` samples."""
    K = Kc * GRID[GRID < 0.97]
    var = 1.0 / (n * b * (1.0 - K / Kc))
    shape = (K.size, seeds)
    scale = np.sqrt(var[:, None] / 2)
    z = scale * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    innovation = math.sqrt(1 - rho**2)
    R_t = np.empty((*shape, steps))
    for t in range(steps):
        noise = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        z = rho * z + innovation * scale * noise
        R_t[..., t] = np.abs(z)
    return K, R_t.mean(-1), R_t.std(-1)


def _calibration(errors, stderrs):
    """Coverage of +-2 SE and <z^2> for z = error / SE. With S seeds z is roughly
    Student-t with S - 1 degrees of freedom (the SE is itself estimated): for S = 12,
    95% -> ~93% and <z^2> = 1 -> ~1.2."""
    z = np.asarray(errors) / np.asarray(stderrs)
    return np.mean(np.abs(z) <= 2), np.mean(z**2)


# ---------------------------------------------------------------------------------
# Recovery and calibration
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [0.0, 0.01], ids=["independent", "per-seed K_c"])
def test_onset_recovers_Kc_within_calibrated_stderr(shift):
    rng = np.random.default_rng(1)
    Kc, errors, stderrs = 1.3, [], []
    for replica in range(40):
        K, R = _onset_sweep(rng, Kc, seeds=12, shift=shift)
        est = estimate_critical_coupling(R, K, n=2000, num_bootstrap=300, key=replica)
        errors.append(est.K_c - Kc)
        stderrs.append(est.stderr)
    within2, mean_z2 = _calibration(errors, stderrs)
    # Loose enough for the spread of 40 replicas; an SE off by 2x fails.
    assert within2 >= 0.8, (within2, mean_z2)
    assert 0.4 < mean_z2 < 2.2, (within2, mean_z2)
    assert np.median(stderrs) < 0.02 * Kc  # and the estimate is informative


def test_fluctuation_recovers_Kc_within_calibrated_stderr():
    rng = np.random.default_rng(2)
    Kc, n, errors, stderrs, amplitudes = 0.8, 1000, [], [], []
    for replica in range(40):
        K, R, R_std = _incoherent_sweep(rng, Kc, seeds=12, n=n)
        est = estimate_critical_coupling(
            R,
            K,
            n=n,
            R_std=R_std,
            method="fluctuation",
            num_bootstrap=300,
            key=replica,
        )
        errors.append(est.K_c - Kc)
        stderrs.append(est.stderr)
        amplitudes.append(est.amplitude)
    within2, mean_z2 = _calibration(errors, stderrs)
    # Loose enough for the spread of 40 replicas; an SE off by 2x fails.
    assert within2 >= 0.8, (within2, mean_z2)
    assert 0.4 < mean_z2 < 2.2, (within2, mean_z2)
    # 1/(N <R^2>) = b (1 - K/K_c) with b = 1 here.
    assert abs(np.mean(amplitudes) - 1.0) < 0.05


def test_fluctuation_uses_R_std_or_rayleigh():
    rng = np.random.default_rng(3)
    Kc, n = 0.8, 1000
    K, R, R_std = _incoherent_sweep(rng, Kc, seeds=4, n=n)
    exact = estimate_critical_coupling(R, K, n=n, R_std=R_std, method="fluctuation")
    rayleigh = estimate_critical_coupling(R, K, n=n, method="fluctuation")
    # Z is Gaussian here, so both versions of <R^2> agree to sampling accuracy.
    assert abs(exact.K_c - rayleigh.K_c) < 2 * max(exact.stderr, rayleigh.stderr)
    m2 = (R**2 + R_std**2).mean(axis=1)
    np.testing.assert_allclose(exact.observable, 1 / (n * m2))
    np.testing.assert_allclose(
        rayleigh.observable, math.pi / (4 * n * (R**2).mean(axis=1))
    )


@pytest.mark.parametrize("case", ["noisy", "gaussian"])
def test_onset_bias_on_exact_theory_curves(x64, case):
    # Noise-free seeds on the infinite-N branch: what is left is the curvature bias of
    # the fit law, documented as 0.2-0.4% of K_c on the default window.
    if case == "noisy":
        Kc = 0.5
        K = Kc * GRID
        R_inf = np.asarray(theory.noisy_order_parameter(jnp.asarray(K), 0.25))
    else:
        Kc = float(theory.critical_coupling("gaussian", 0.7))
        K = Kc * GRID
        R_inf = np.asarray(theory.order_parameter(jnp.asarray(K), "gaussian", 0.7))
    rng = np.random.default_rng(4)
    R = np.clip(R_inf[:, None] + 1e-4 * rng.standard_normal((K.size, 4)), 1e-3, 1)
    est = estimate_critical_coupling(R, K, n=10**6)
    assert abs(est.K_c / Kc - 1) < 0.005, est
    # A window reaching far above onset sees the curvature: the fit gets worse.
    wide = estimate_critical_coupling(R, K, n=10**6, window=(1.0 * Kc, 3.0 * Kc))
    assert wide.fit_quality > 10 * est.fit_quality, (wide, est)


def test_lorentzian_branch_is_exact_for_onset_law():
    K = 2.0 * GRID
    R_inf = np.sqrt(np.clip(1 - 2.0 / K, 0, None))
    R = np.stack([R_inf + 1e-9, R_inf - 1e-9], axis=1).clip(1e-3, 1)
    est = estimate_critical_coupling(R, K, window=(2.0 * 1.01, 6.0))
    np.testing.assert_allclose(est.K_c, 2.0, rtol=1e-6)
    np.testing.assert_allclose(est.amplitude, 1.0, rtol=1e-6)
    np.testing.assert_allclose(est.fitted(K[est.used]), R_inf[est.used] ** 2, atol=1e-6)


def test_susceptibility_peak():
    rng = np.random.default_rng(5)
    K = np.linspace(0.4, 0.7, 13)
    peak, n = 0.537, 2000
    chi = 1.0 / ((K - peak) ** 2 + 0.03**2)
    R_std = np.sqrt(chi[:, None] / n * (1 + 0.05 * rng.standard_normal((13, 5))))
    R = np.full_like(R_std, 0.3)
    est = estimate_critical_coupling(R, K, n=n, R_std=R_std, method="susceptibility")
    assert abs(est.K_c - peak) < 0.5 * (K[1] - K[0])
    assert est.stderr > 0 and abs(est.K_c - peak) < 3 * est.stderr + 0.005
    assert math.isnan(est.fit_quality)
    np.testing.assert_allclose(est.observable, n * (R_std**2).mean(axis=1))
    with pytest.raises(ValueError, match="peaks at the highest coupling"):
        estimate_critical_coupling(
            R, K, n=n, R_std=R_std, method="susceptibility", window=(0.4, 0.5)
        )


def test_bootstrap_is_deterministic_in_key_and_sorted_K():
    rng = np.random.default_rng(6)
    K, R = _onset_sweep(rng, 1.0, seeds=4)
    a = estimate_critical_coupling(R, K, key=7)
    b = estimate_critical_coupling(R, K, key=7)
    c = estimate_critical_coupling(R, K, key=8)
    assert a.stderr == b.stderr and a.K_c == b.K_c
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.K_c == c.K_c and a.stderr != c.stderr  # the estimate itself is not random
    # Shuffled couplings give the same answer.
    perm = rng.permutation(K.size)
    d = estimate_critical_coupling(R[perm], K[perm], key=7)
    assert d.K_c == a.K_c and d.stderr == a.stderr
    np.testing.assert_array_equal(d.K, np.sort(K))


# ---------------------------------------------------------------------------------
# The study Dataset layout and theory from its attributes
# ---------------------------------------------------------------------------------


def _dataset(K, R, **attrs):
    seeds = R.shape[1]
    rng = np.random.default_rng(0)
    R_t = np.clip(R[..., None] + 0.01 * rng.standard_normal((*R.shape, 5)), 0, 1)
    ds = xr.Dataset(
        {
            "R": (("K", "seed"), R.astype(np.float32)),
            "R_std": (("K", "seed"), R_t.std(-1).astype(np.float32)),
            "R_t": (("K", "seed", "time"), R_t.astype(np.float32)),
        },
        coords={"K": K, "seed": np.arange(seeds), "time": np.arange(5.0)},
        attrs={
            "n": np.int64(2000),
            "model": "kuramoto",
            "coupling": "mean_field",
            "lag": 0.0,
            **attrs,
        },
    )
    return ds


@pytest.mark.parametrize(
    "attrs, expected",
    [
        (dict(distribution="identical", noise="additive", D=0.25), 0.5),
        (dict(distribution="lorentzian", scale=0.5, noise="none"), 1.0),
        (dict(distribution="lorentzian", scale=0.5, noise="additive", D=0.2), 1.4),
        (dict(distribution="gaussian", scale=1.0), math.sqrt(8 / math.pi)),
        (dict(distribution="identical", noise="none"), None),
        (dict(distribution="lorentzian", scale=0.5, lag=0.3), None),
        (dict(distribution="lorentzian", scale=0.5, delays="uniform"), None),
    ],
)
def test_dataset_layout_and_theory_from_attrs(attrs, expected):
    rng = np.random.default_rng(7)
    K, R = _onset_sweep(rng, 1.0, seeds=3)
    est = estimate_critical_coupling(_dataset(K, R, **attrs))
    assert isinstance(est, CriticalCouplingEstimate) and est.n == 2000
    plain = estimate_critical_coupling(R, K, n=2000)
    assert est.K_c == pytest.approx(plain.K_c, rel=1e-6)  # R is stored as float32
    if expected is None:
        assert est.theory is None and est.deviation is None
    else:
        assert est.theory == pytest.approx(expected, rel=1e-12)
        assert est.deviation == pytest.approx((est.K_c - expected) / est.stderr)
        assert f"theory {expected:.5g}" in str(est)


def test_theory_argument_overrides_and_dataarray_with_time():
    rng = np.random.default_rng(8)
    K, R = _onset_sweep(rng, 1.0, seeds=3)
    ds = _dataset(K, R, distribution="identical", noise="additive", D=0.25)
    est = estimate_critical_coupling(ds, theory=1.0)
    assert est.theory == 1.0
    # A time series is averaged over time; its spread is R_std.
    from_t = estimate_critical_coupling(ds["R_t"], n=2000, method="fluctuation")
    plain = estimate_critical_coupling(
        ds["R_t"].values.mean(-1),
        K,
        n=2000,
        R_std=ds["R_t"].values.std(-1),
        method="fluctuation",
    )
    assert from_t.K_c == pytest.approx(plain.K_c, rel=1e-6)
    # A DataArray without `n` in its attributes needs `n` for the fluctuation method.
    with pytest.raises(ValueError, match="needs the number of oscillators `n`"):
        estimate_critical_coupling(ds["R"], method="fluctuation")


# ---------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------


def test_bad_input_is_rejected_with_the_argument_named():
    rng = np.random.default_rng(9)
    K, R = _onset_sweep(rng, 1.0, seeds=3)
    ds = _dataset(K, R, distribution="identical", noise="additive", D=0.25)
    cases = [
        (dict(R=ds.rename(K="coupling")["R"]), "'K' dimension"),
        (dict(R=ds["R"].isel(seed=0)), "'seed' dimension"),
        (dict(R=ds.isel(seed=[0])), "at least 2 seeds"),
        (dict(R=R[:, :1], K=K), "at least 2 seeds"),
        (dict(R=np.full_like(R, 1e-9), K=K), r"`R` is ~0 at every coupling"),
        (dict(R=R), "`K`: the couplings are needed"),
        (dict(R=R, K=K[:-1]), r"`R` must have shape \(len\(K\), seeds\) = \(19"),
        (dict(R=np.where(K[:, None] > 2, np.nan, R), K=K), "`R` must be finite"),
        (dict(R=ds.drop_vars(["R"])), "has no variable 'R'"),
        (dict(R=ds, K=K), "`K`: pass couplings only with a plain array"),
        (dict(R=ds.expand_dims(D=[0.1, 0.2])), r"dimensions \['D'\] besides"),
        (dict(R=ds, method="peak"), "`method` must be one of"),
        (dict(R=R, K=K, method="susceptibility", n=100), "needs `R_std`"),
        (dict(R=R, K=K, window=(5.0, 6.0)), r"`window`=\(5.0, 6.0\) contains 0"),
        (dict(R=R, K=K, window=(2.0, 1.0)), "K_lo < K_hi"),
        (dict(R=R, K=K, num_bootstrap=3), "`num_bootstrap` must be an int >= 10"),
        (dict(R=R, K=K, theory=-1.0), "`theory` must be a finite K_c > 0"),
        (dict(R=R, K=K, key="seed"), "`key` must be an int or a JAX PRNG key"),
        (dict(R=R, K=K, n=0), "`n` must be a positive integer"),
        (dict(R=R, K=K, R_std=R[:-1]), "`R_std` must be finite"),
        (dict(R=R + 1.5, K=K), r"`R` must lie in \[0, 1\]"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            estimate_critical_coupling(**kwargs)


def test_empty_onset_window_explains_itself():
    K = np.linspace(0.1, 1.0, 8)
    R = np.full((8, 3), 0.03) + 0.001 * np.arange(3)  # incoherent everywhere
    with pytest.raises(ValueError, match="onset window .* holds 0 point"):
        estimate_critical_coupling(R, K, n=1000)
    R = np.full((8, 3), 0.9)  # synchronised everywhere: no incoherent side
    with pytest.raises(ValueError, match="fluctuation window .* holds 0 point"):
        estimate_critical_coupling(R, K, n=1000, method="fluctuation")


def test_interval_uses_student_t():
    from scipy import stats

    rng = np.random.default_rng(10)
    K, R = _onset_sweep(rng, 1.0, seeds=3)
    est = estimate_critical_coupling(R, K)
    lo, hi = est.interval(0.95)
    half = stats.t.ppf(0.975, 2) * est.stderr  # 4.30 SE for 3 seeds
    np.testing.assert_allclose([lo, hi], [est.K_c - half, est.K_c + half])
    assert est.seeds == 3 and hi - lo > 8 * est.stderr
    with pytest.raises(ValueError, match="`level`"):
        est.interval(95)


def test_key_may_be_a_jax_key():
    import jax

    rng = np.random.default_rng(11)
    K, R = _onset_sweep(rng, 1.0, seeds=4)
    a = estimate_critical_coupling(R, K, key=jax.random.key(3))
    b = estimate_critical_coupling(R, K, key=jax.random.key(3))
    c = estimate_critical_coupling(R, K, key=jax.random.key(4))
    assert a.stderr == b.stderr != c.stderr


_STUDY = """
[study]
name = "kc_from_simulation"

[model]
kind = "kuramoto"
n = 1000

[model.frequencies]
distribution = "lorentzian"
scale = 0.5
sampling = "random"

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.6, 0.8, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4, 1.6]
seeds = 8

[solve]
t1 = 120.0
dt = 0.1
solver = "rk4"
save_every = 10

[observe]
window = 60.0
"""


@pytest.mark.slow
def test_estimate_on_a_simulated_study_recovers_theory(tmp_path):
    """Real `kuralab run` output (N = 1000 random Lorentzian frequencies, gamma = 0.5,
    8 seeds): the onset fit recovers K_c = 2 gamma = 1, read from the attributes,
    within its 99% Student-t interval (measured 1.019 +- 0.029), with a standard error
    small enough (< 0.05) that a factor-2 error in the coupling convention (K_c = 2 or
    0.5) is rejected by > 10 of them."""
    import kuralab as kl
    from kuralab.study import parse_spec, run_study

    out = tmp_path / "kc.nc"
    run_study(parse_spec(_STUDY), out, spec_text=_STUDY, progress=False,
              compile_cache=False)
    ds = kl.io.load(out)
    est = estimate_critical_coupling(ds, method="onset")
    assert est.theory == pytest.approx(float(theory.critical_coupling("lorentzian", 0.5)))
    assert est.theory == pytest.approx(1.0)
    lo, hi = est.interval(0.99)
    assert lo <= 1.0 <= hi, est
    assert est.stderr < 0.05 and est.used.sum() >= 4, est
    assert abs(est.K_c - 2.0) > 10 * est.stderr and abs(est.K_c - 0.5) > 10 * est.stderr
