"""Orientation diffusion against exact results: the wrapped-normal score, the forward
chain's terminal law and closed forms, the SDE view, score matching's minimiser and the
reverse sampler with exact scores (KS tests on the circle)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from hypothesis import given, settings, strategies as hs

import kuralab as kl
import kuralab.learn as L

# -- exact marginal scores used as "perfect networks" -------------------------------


def fourier_score(process, mu, kappa, n_terms=80):
    """Exact marginal score of the isotropic chain from VM(mu, kappa) data:
    p_t = VM * WN(S_t), S_t = sum_{j<t} sigma_j^2, as a Fourier series."""
    rho = sp.ive(np.arange(1, n_terms + 1), kappa) / sp.ive(0, kappa)
    n = jnp.arange(1, n_terms + 1, dtype=jnp.float32)
    cum = jnp.asarray(np.concatenate([[0.0], np.cumsum(np.asarray(process.sigma2, np.float64))]),
                      jnp.float32)
    rho = jnp.asarray(rho, jnp.float32)

    def score(theta, t):
        S = jnp.interp(jnp.asarray(t, jnp.float32), jnp.arange(cum.shape[0], dtype=jnp.float32), cum)
        a = rho * jnp.exp(-0.5 * n**2 * S)
        x = (theta[..., None] - mu) * n
        p = 1 + 2 * jnp.sum(a * jnp.cos(x), axis=-1)
        dp = -2 * jnp.sum(a * n * jnp.sin(x), axis=-1)
        return dp / p

    return score


def grid_score(process, mu, kappa, grid=384):
    """Exact marginal score of a one-phase (d = 1) chain from VM(mu, kappa): the
    density pushed through every transition kernel on a grid (NumPy, float64)."""
    x = -np.pi + 2 * np.pi * np.arange(grid) / grid
    dx = 2 * np.pi / grid
    p = np.exp(kappa * np.cos(x - mu)) / (2 * np.pi * sp.i0(kappa))
    K, Kr, s2 = (np.asarray(a, np.float64) for a in (process.k, process.k_ref, process.sigma2))
    scores = [np.zeros(grid)]  # t = 0 unused
    k = np.arange(-4, 5) * 2 * np.pi
    for i in range(process.steps):
        m = x + Kr[i] * np.sin(process.ref_phase - x)  # d = 1: the coupling term is 0
        d = (x[:, None] - m[None, :] + np.pi) % (2 * np.pi) - np.pi
        u = d[..., None] + k
        w = np.exp(-0.5 * u**2 / s2[i]) / np.sqrt(2 * np.pi * s2[i])
        pn = (w.sum(-1) * p[None]).sum(1) * dx
        dpn = ((-u / s2[i] * w).sum(-1) * p[None]).sum(1) * dx
        p = pn
        scores.append(dpn / pn)
    table = jnp.asarray(np.stack(scores), jnp.float32)  # (T + 1, grid)
    xs = jnp.asarray(x, jnp.float32)

    def score(theta, t):
        ti = jnp.clip(jnp.round(t).astype(jnp.int32), 0, process.steps)
        row = table[ti]
        return jnp.interp(kl._misc.wrap_phase(theta), xs, row, period=2 * math.pi)

    return score, x, p


# -- the wrapped-normal score ------------------------------------------------------


def test_score_is_the_gradient_of_the_log_density(x64):
    y = jnp.linspace(-7.0, 7.0, 41)
    auto_score = jax.jit(jax.vmap(jax.grad(lambda v, m, s: L.wrapped_normal_logpdf(v, m, s, terms=6)),
                                  in_axes=(0, None, None)))
    score = jax.jit(lambda v, m, s: L.wrapped_normal_score(v, m, s, terms=6))
    for mean, sigma in [(0.3, 0.05), (-2.0, 0.4), (3.0, 1.0), (0.0, 2.5)]:
        np.testing.assert_allclose(score(y, mean, sigma), auto_score(y, mean, sigma),
                                   rtol=1e-10, atol=1e-10)
    # truncation at |k| <= 3 against 30 terms: exact to 1e-9 up to sigma = 1
    s3 = L.wrapped_normal_score(y, 0.5, 1.0, terms=3)
    s30 = L.wrapped_normal_score(y, 0.5, 1.0, terms=30)
    np.testing.assert_allclose(s3, s30, atol=1e-9)
    # density integrates to 1
    g = jnp.linspace(-math.pi, math.pi, 4001)[:-1]
    assert abs(float(jnp.sum(jnp.exp(L.wrapped_normal_logpdf(g, 1.0, 0.7))) * (2 * math.pi / 4000)) - 1) < 1e-9


def test_score_is_stable_in_float32_for_small_sigma():
    y = jnp.array([0.0, 1e-3, -2e-3, 3.1, -3.1], jnp.float32)
    for sigma in (1e-2, 1e-3, 1e-4):
        s = L.wrapped_normal_score(y, 0.0, jnp.float32(sigma))
        assert s.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(s)))
        np.testing.assert_allclose(s, -np.asarray(y, np.float64) / sigma**2, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(hs.floats(-3.0, 3.0), hs.floats(-3.0, 3.0), hs.floats(0.05, 2.0))
def test_score_is_periodic_and_odd_about_the_mean(y, mean, sigma):
    s = lambda v: float(L.wrapped_normal_score(jnp.float32(v), jnp.float32(mean), jnp.float32(sigma)))
    scale = 1.0 / sigma**2
    assert abs(s(y) - s(y + 2 * math.pi)) <= 1e-3 * scale
    d = y - mean
    assert abs(s(mean + d) + s(mean - d)) <= 1e-3 * scale


def test_von_mises_sampler_passes_ks():
    draw = jax.jit(lambda kappa: L.von_mises_sample(jax.random.key(3), 0.5, kappa, (6000,)))
    for kappa in (0.0, 0.05, 1.2, 30.0):
        th = np.asarray(draw(kappa))
        cdf = (lambda v: st.vonmises.cdf(v, kappa, loc=0.5)) if kappa > 0 else (
            lambda v: (v + np.pi) / (2 * np.pi))
        # CDF on [-pi, pi) (vonmises' cdf is cumulative from loc - pi)
        shifted = lambda v: (cdf(v) - cdf(-np.pi)) % 1.0 if kappa > 0 else cdf(v)
        assert st.kstest(th, shifted).pvalue > 1e-3, kappa


# -- the forward chain -------------------------------------------------------------


def test_drift_is_the_mean_field_of_phasors():
    proc = L.OrientationDiffusion()
    th = jnp.asarray(np.random.default_rng(0).vonmises(2.0, 1.0, size=(3, 5, 5)), jnp.float32)
    z = np.mean(np.exp(1j * np.asarray(th, np.float64)))
    want = 0.2 * np.abs(z) * np.sin(np.angle(z) - th) + 0.3 * np.sin(-th)
    np.testing.assert_allclose(proc.drift(th, 0.2, 0.3), want, atol=2e-6)


@pytest.mark.slow
def test_local_coupling_averages_phasors_not_angles():
    # phases alternating just either side of +-pi: the phasor mean points to pi; the
    # reference's raw-angle box average would give ~0 (and |Z| = 1 always).
    lat = kl.LatticeCoupling(jnp.ones((3, 3)) / 9, (6, 6))
    proc = L.OrientationDiffusion(coupling=lat)
    eps = 0.1
    th = jnp.where((jnp.arange(36).reshape(6, 6) % 2) == 0, math.pi - eps, -math.pi + eps)[None]
    Z = proc.order_parameter(th)
    assert Z.shape == (1, 6, 6)
    # 6 of one sign and 3 of the other in every 3 x 3 box: angle pi - eps/3 or its mirror
    np.testing.assert_allclose(np.abs(np.angle(np.asarray(Z))), math.pi - eps / 3, atol=1e-3)
    assert np.all(np.abs(np.asarray(Z)) > 0.99)
    # and the drift equals kl.Kuramoto's with that lattice coupling (the SDE view)
    th2 = jnp.asarray(np.random.default_rng(1).uniform(-3, 3, (6, 6)), jnp.float32)
    sde = proc.sde((6, 6))
    i = 37
    np.testing.assert_allclose(
        proc.drift(th2, proc.k[i], proc.k_ref[i]).ravel(), sde.drift(float(i), th2.ravel()), atol=1e-7)


def test_forward_returns_every_state_of_one_chain():
    proc = L.OrientationDiffusion(steps=7)
    th0 = jnp.linspace(-2, 2, 12).reshape(3, 4)
    chain = proc.forward(th0, key=jax.random.key(0))
    assert chain.shape == (7, 3, 4)
    assert bool(jnp.all((chain >= -math.pi) & (chain < math.pi)))
    # same key, same chain; the first state is one transition from theta0
    np.testing.assert_array_equal(chain, proc.forward(th0, key=jax.random.key(0)))
    step = np.asarray(L.coherence(chain[:1], th0))
    assert step[0] > 0.99


def _self_consistent_r(a):
    """Stationary R of dtheta = -K (R + c) sin theta + noise: R = A(kappa(R))."""
    R = 0.5
    for _ in range(200):
        R = sp.ive(1, a(R)) / sp.ive(0, a(R))
    return R


@pytest.mark.slow
def test_forward_terminal_law_is_von_mises():
    # Long constant schedules: the chain relaxes to VM(kappa), kappa = 2 (K R + K_ref) / sigma^2.
    K, s2, T, n = 0.006, 0.01, 2500, 4096
    proc = L.OrientationDiffusion(steps=T, k_schedule=np.full(T, K), noise_schedule=np.full(T, s2))
    th0 = jnp.asarray(np.random.default_rng(0).uniform(-math.pi, math.pi, n), jnp.float32)
    final = proc.forward(th0, key=jax.random.key(1))[-1]
    R = float(jnp.abs(proc.order_parameter(final)))
    kappa = 2 * (K * R + 1.5 * K) / s2
    R_theory = _self_consistent_r(lambda r: 2 * (K * r + 1.5 * K) / s2)
    assert abs(R - R_theory) < 0.03, (R, R_theory)
    cdf = lambda v: (st.vonmises.cdf(v, kappa) - st.vonmises.cdf(-np.pi, kappa)) % 1.0
    assert st.kstest(np.asarray(final), cdf).pvalue > 1e-3
    # and the default schedule's prior kappa is the reference's 1.2 (R = 0.5)
    assert abs(float(L.OrientationDiffusion().prior_kappa()) - 1.2) < 1e-5


@pytest.mark.slow
def test_isotropic_coherence_and_snr_closed_forms():
    proc = L.OrientationDiffusion.isotropic()
    th0 = jnp.asarray(np.random.default_rng(2).uniform(-3, 3, 8192), jnp.float32)
    chain = proc.forward(th0, key=jax.random.key(4))
    got = np.asarray(L.coherence(chain, th0))
    want = np.asarray(L.isotropic_coherence(proc))
    assert np.max(np.abs(got - want)) < 4 / math.sqrt(8192)
    S = np.cumsum(np.asarray(proc.sigma2, np.float64))
    snr = np.asarray(L.forward_snr(proc, th0[:256].reshape(16, 16), key=jax.random.key(5), members=100))
    want_snr = np.exp(-S) / (1 - np.exp(-S))
    for t in (10, 30, 60):
        assert abs(snr[t] / want_snr[t] - 1) < 0.15, (t, snr[t], want_snr[t])
    bands = np.asarray(L.forward_snr(proc, th0[:256].reshape(1, 16, 16), key=jax.random.key(5),
                                     members=100, bands=jnp.array([0.0, 1.0, 2.0, 4.5])))
    assert bands.shape == (100, 3)
    assert np.all(np.abs(bands[30] / want_snr[30] - 1) < 0.3)  # white noise: flat in k


@pytest.mark.slow
def test_kuramoto_and_isotropic_snr_as_measured():
    # What the diagnostic shows (not the paper's "higher SNR early"): the two chains
    # agree over the first steps, where K_i is tiny, and the Kuramoto chain ends with
    # the higher SNR because the reference pulls every chain's mean toward psi_ref.
    th0 = jnp.asarray(np.random.default_rng(3).vonmises(0.0, 0.5, (1, 16, 16)), jnp.float32)
    ku = np.asarray(L.forward_snr(L.OrientationDiffusion(), th0, key=jax.random.key(0), members=64))
    iso = np.asarray(L.forward_snr(L.OrientationDiffusion.isotropic(), th0, key=jax.random.key(0), members=64))
    np.testing.assert_allclose(ku[:15], iso[:15], rtol=0.2)
    assert ku[-1] > 2 * iso[-1]


@pytest.mark.slow
def test_discrete_chain_and_sde_agree_in_distribution():
    proc = L.OrientationDiffusion(steps=60, k_schedule=(0.01, 0.1), noise_schedule=(1e-3, 0.1))
    rng = np.random.default_rng(5)
    th0 = jnp.asarray(rng.vonmises(1.0, 3.0, 64), jnp.float32)
    keys = jax.random.split(jax.random.key(0), 300)
    a = jax.vmap(lambda k: proc.forward(th0, key=k)[-1])(keys)
    sde = proc.sde((64,))
    b = jax.vmap(lambda k: kl.simulate(sde, th0, t1=60.0, dt=1.0, solver="euler", key=k,
                                       brownian="increments", saveat=kl.SaveAt(final=True)).final)(keys)
    for f in (jnp.cos, jnp.sin):
        assert abs(float(jnp.mean(f(a)) - jnp.mean(f(b)))) < 0.03
    Ra = jnp.abs(jax.vmap(proc.order_parameter)(a))
    Rb = jnp.abs(jax.vmap(proc.order_parameter)(b))
    assert abs(float(jnp.mean(Ra) - jnp.mean(Rb))) < 0.02
    assert st.ks_2samp(np.asarray(a[:, 0]), np.asarray(b[:, 0])).pvalue > 1e-3


# -- score matching and sampling with exact scores ---------------------------------


@pytest.mark.slow
def test_loss_is_minimised_by_the_exact_score():
    # L(exact + c g) = L(exact) + c B + c^2 A with B = 0 iff `exact` is the conditional
    # mean of the one-step targets, i.e. the marginal score. Common random numbers; the
    # fitted minimiser c* = -B / 2A must be ~0 for perturbations g of several shapes.
    proc = L.OrientationDiffusion.isotropic()
    exact = fourier_score(proc, 0.7, 3.0)
    data = L.von_mises_sample(jax.random.key(0), 0.7, 3.0, (32, 32))
    keys = jax.random.split(jax.random.key(1), data.shape[0])
    perturbations = {"scale": lambda th, t: exact(th, t), "sin": lambda th, t: jnp.sin(th),
                     "cos2": lambda th, t: jnp.cos(2 * th) * t / 100}

    @jax.jit
    def loss(c, which):
        def score(th, t):
            g = jax.lax.switch(which, list(perturbations.values()), th, t)
            return exact(th, t) + c * g
        return jnp.mean(jax.vmap(lambda x, k: proc.score_matching_loss(score, x, key=k, samples=2))(data, keys))

    for j, name in enumerate(perturbations):
        l0, lp, lm = (float(loss(c, j)) for c in (0.0, 0.3, -0.3))
        A = (lp + lm - 2 * l0) / (2 * 0.3**2)
        B = (lp - lm) / (2 * 0.3)
        assert A > 0 and abs(B / (2 * A)) < 0.05, (name, A, B)


@pytest.mark.slow
def test_sampler_with_exact_score_reproduces_the_density():
    proc = L.OrientationDiffusion.isotropic(noise_schedule=(1e-3, 0.3))
    mu, kappa = 1.0, 4.0
    exact = fourier_score(proc, mu, kappa)
    cdf = lambda v: (st.vonmises.cdf(v, kappa, loc=mu) - st.vonmises.cdf(-np.pi, kappa, loc=mu)) % 1.0
    x = proc.sample(exact, (4000,), key=jax.random.key(0))
    assert st.kstest(np.asarray(x), cdf).pvalue > 1e-3
    # fewer, merged reverse steps still give the law to a small KS distance
    x20 = proc.sample(exact, (4000,), key=jax.random.key(1), steps=20)
    assert st.kstest(np.asarray(x20), cdf).statistic < 0.08
    # the reverse-time SDE through kl.simulate (an ordinary model)
    model = L.ReverseOrientationSDE(proc, exact, (4000,))
    th_T = proc.sample_prior((4000,), key=jax.random.key(2))
    y = kl.simulate(model, th_T, t1=100.0, dt=0.5, solver="euler", key=jax.random.key(3),
                    brownian="increments", saveat=kl.SaveAt(final=True)).final
    assert st.kstest(np.asarray(y), cdf).statistic < 0.04


@pytest.mark.slow
def test_kuramoto_sampler_with_exact_score_reproduces_the_density():
    # d = 1: the mean field is the phase itself, so only the reference drift acts and the
    # exact marginal follows from the transition kernels on a grid.
    proc = L.OrientationDiffusion(noise_schedule=(1e-3, 0.3))
    mu, kappa = 2.0, 5.0
    score, _, pT = grid_score(proc, mu, kappa)
    cdf = lambda v: (st.vonmises.cdf(v, kappa, loc=mu) - st.vonmises.cdf(-np.pi, kappa, loc=mu)) % 1.0
    keys = jax.random.split(jax.random.key(0), 3000)
    x = jax.vmap(lambda k: proc.sample(score, (1,), key=k, order=1.0))(keys)[:, 0]
    assert st.kstest(np.asarray(x), cdf).statistic < 0.04


def test_bad_input_is_rejected_with_one_line_errors():
    with pytest.raises(ValueError, match=r"`x` must lie in \[-1, 1\]"):
        L.to_phase(jnp.array([0.0, 1.5]))
    np.testing.assert_allclose(L.from_phase(L.to_phase(jnp.array([-1.0, 0.3, 1.0]))), [-1.0, 0.3, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="noise_schedule.*length steps=100"):
        L.OrientationDiffusion(noise_schedule=np.ones(50))
    with pytest.raises(ValueError, match="noise_schedule.*> 0"):
        L.OrientationDiffusion(noise_schedule=(0.0, 0.1))
    with pytest.raises(ValueError, match="k_schedule.*>= 0"):
        L.OrientationDiffusion(k_schedule=(-1.0, 0.1))
    with pytest.raises(ValueError, match="`coupling` must be"):
        L.OrientationDiffusion(coupling="local")
    with pytest.raises(ValueError, match="`steps` must be None or an int in"):
        L.OrientationDiffusion().sample(lambda th, t: th, (3,), key=jax.random.key(0), steps=101)
    with pytest.raises(ValueError, match="`terms` must be an int"):
        L.wrapped_normal_score(0.0, 0.0, 1.0, terms=-1)
