"""kl.theory: analytic values, the self-consistency solver against closed forms and
independent quadrature, Ott-Antonsen against an ODE solver, and simulations."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import kuralab as kl
from kuralab import theory
from kuralab.theory import _self_consistent_R

_PDF = {
    "lorentzian": lambda w, s: stats.cauchy.pdf(w, scale=s),
    "gaussian": lambda w, s: stats.norm.pdf(w, scale=s),
    "uniform": lambda w, s: stats.uniform.pdf(w, loc=-s, scale=2 * s),
}


# ---------------------------------------------------------------------------------
# Critical coupling
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.25, 1.0, 3.7])
def test_critical_coupling_values(scale):
    Kc = {d: float(theory.critical_coupling(d, scale)) for d in theory.DISTRIBUTIONS}
    assert round(Kc["gaussian"] / scale, 4) == 1.5958
    np.testing.assert_allclose(
        Kc["gaussian"], scale * math.sqrt(8 / math.pi), rtol=1e-6
    )
    np.testing.assert_allclose(Kc["lorentzian"], 2 * scale, rtol=1e-6)
    np.testing.assert_allclose(Kc["uniform"], 4 * scale / math.pi, rtol=1e-6)
    # The definition K_c = 2 / (pi g(0)) with SciPy's densities.
    for d, value in Kc.items():
        np.testing.assert_allclose(
            value, 2 / (math.pi * _PDF[d](0.0, scale)), rtol=1e-6
        )


def test_critical_coupling_broadcasts_and_errors():
    scales = jnp.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(
        theory.critical_coupling("lorentzian", scales), 2 * scales
    )
    with pytest.raises(ValueError, match="did you mean 'gaussian'"):
        theory.critical_coupling("gausian")
    with pytest.raises(ValueError, match="scale.*> 0"):
        theory.critical_coupling("uniform", -1.0)


# ---------------------------------------------------------------------------------
# Stationary order parameter
# ---------------------------------------------------------------------------------


def test_lorentzian_closed_form():
    gamma = 0.5
    K = jnp.array([0.2, 0.9, 1.0, 1.1, 2.0, 5.0, 40.0])
    R = theory.order_parameter(K, "lorentzian", gamma)
    expected = np.where(K > 2 * gamma, np.sqrt(np.clip(1 - 2 * gamma / K, 0, None)), 0)
    np.testing.assert_allclose(R, expected, atol=1e-7)
    assert R.dtype == jnp.float32
    # Broadcasting K against scale.
    grid = theory.order_parameter(K[:, None], "lorentzian", jnp.array([0.5, 1.0]))
    assert grid.shape == (7, 2)
    np.testing.assert_allclose(grid[:, 0], R, atol=1e-7)
    # Differentiable (closed form): dR/dK = gamma / (K^2 R) above K_c.
    dR = jax.grad(lambda k: theory.order_parameter(k, "lorentzian", gamma))(2.0)
    np.testing.assert_allclose(dR, gamma / (4.0 * math.sqrt(1 - gamma)), rtol=1e-5)


@pytest.mark.parametrize("gamma", [0.3, 1.0])
def test_generic_solver_reproduces_lorentzian(x64, gamma):
    K = gamma * jnp.concatenate(
        [jnp.linspace(0.5, 2.0, 4), jnp.linspace(2.01, 20.0, 25)]
    )
    R = _self_consistent_R(K, "lorentzian", jnp.asarray(gamma))
    expected = np.sqrt(np.clip(1 - 2 * gamma / np.asarray(K), 0, None))
    np.testing.assert_allclose(R, expected, atol=1e-9)


def test_generic_solver_float32():
    K = jnp.linspace(2.1, 10.0, 9)
    R = _self_consistent_R(K, "lorentzian", jnp.asarray(1.0))
    assert R.dtype == jnp.float32
    np.testing.assert_allclose(R, np.sqrt(1 - 2 / np.asarray(K)), atol=1e-5)


@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_self_consistency_holds_under_independent_quadrature(x64, distribution):
    scale = 0.8
    Kc = float(theory.critical_coupling(distribution, scale))
    Ks = Kc * np.array([1.001, 1.05, 1.3, 2.0, 5.0])
    R = np.asarray(theory.order_parameter(jnp.asarray(Ks), distribution, scale))
    assert np.all(np.diff(R) > 0) and np.all((R > 0) & (R < 1))
    for K, r in zip(Ks, R, strict=True):
        # 1 = K int cos^2(t) g(K r sin t) dt over the locked range (adaptive quad).
        rhs, _ = integrate.quad(
            lambda t, K=K, r=r: (
                math.cos(t) ** 2 * _PDF[distribution](K * r * math.sin(t), scale)
            ),
            -math.pi / 2,
            math.pi / 2,
            points=[
                -math.asin(min(1, scale / (K * r))),
                math.asin(min(1, scale / (K * r))),
            ],
            epsabs=1e-13,
            epsrel=1e-13,
            limit=200,
        )
        np.testing.assert_allclose(K * rhs, 1.0, atol=1e-8)
    below = theory.order_parameter(
        jnp.asarray(Kc * np.array([0.1, 0.9, 1.0])), distribution, scale
    )
    np.testing.assert_array_equal(below, 0.0)


def test_uniform_first_order_jump(x64):
    gamma = 1.5
    Kc = float(theory.critical_coupling("uniform", gamma))
    K = jnp.asarray(Kc * np.array([1 - 1e-6, 1.0, 1 + 1e-9, 1 + 1e-6]))
    R = theory.order_parameter(K, "uniform", gamma)
    np.testing.assert_array_equal(R[:2], 0.0)
    np.testing.assert_allclose(R[2], math.pi / 4, atol=1e-5)
    # Above the jump R grows like (K - K_c)^(2/3) (Pazo 2005).
    assert 0 < R[3] - math.pi / 4 < 10 * (1e-6) ** (2 / 3)


def test_gaussian_onset_matches_expansion(x64):
    # Strogatz (2000): R ~ sqrt(16 (K - K_c) / (pi K_c^4 |g''(0)|)) as K -> K_c+.
    sigma = 1.3
    Kc = float(theory.critical_coupling("gaussian", sigma))
    g2 = 1 / (sigma**3 * math.sqrt(2 * math.pi))  # |g''(0)|
    eps = np.array([1e-5, 1e-4, 1e-3])
    K = Kc * (1 + eps)
    R = np.asarray(theory.order_parameter(jnp.asarray(K), "gaussian", sigma))
    predicted = np.sqrt(16 * (K - Kc) / (math.pi * Kc**4 * g2))
    # The next correction is O(K - K_c) relative.
    assert np.all(np.abs(R / predicted - 1) < 3 * eps + 1e-6), R / predicted - 1


def test_order_parameter_errors():
    with pytest.raises(ValueError, match="did you mean 'uniform'"):
        theory.order_parameter(1.0, "unifrom")
    with pytest.raises(ValueError, match="K.*finite"):
        theory.order_parameter(jnp.array([1.0, jnp.nan]))


def _R(t, y):
    return jnp.abs(kl.order_parameter(y))


def test_mean_field_simulation_matches_gaussian_theory():
    # N = 2000 quantile-sampled Gaussian frequencies (no sampling noise); mean R.
    n, sigma, K = 2000, 1.0, 2.5
    omega = kl.sample_frequencies(None, n, "gaussian", scale=sigma, sampling="quantile")
    model = kl.Kuramoto(omega, kl.MeanField(K))
    traj = kl.simulate(
        model, jnp.zeros(n), t1=60.0, dt=0.1, saveat=kl.SaveAt(every=10, fn=_R)
    )
    R_sim = float(jnp.mean(traj.ys[-30:]))
    R_theory = float(theory.order_parameter(K, "gaussian", sigma))
    assert abs(R_sim - R_theory) < 5e-3, (R_sim, R_theory)


@pytest.mark.slow
def test_ott_antonsen_matches_mean_field_simulation():
    # Lorentzian frequencies and initial phases from a wrapped Cauchy law with R0,
    # independent of omega: the state lies on the Ott-Antonsen manifold.
    n, gamma, R0 = 5000, 0.5, 0.2
    omega = kl.sample_frequencies(
        None, n, "lorentzian", scale=gamma, sampling="quantile"
    )
    u = (jnp.arange(n) + 0.5) / n
    theta0 = 2 * jnp.arctan((1 - R0) / (1 + R0) * jnp.tan(jnp.pi * (u - 0.5)))
    theta0 = jax.random.permutation(jax.random.key(0), theta0)
    np.testing.assert_allclose(abs(kl.order_parameter(theta0)), R0, atol=1e-4)
    Ks = jnp.array([0.6, 1.5, 3.0])  # below, above and far above K_c = 1
    trajs = jax.vmap(
        lambda K: kl.simulate(
            kl.Kuramoto(omega, kl.MeanField(K)),
            theta0,
            t1=30.0,
            dt=0.05,
            saveat=kl.SaveAt(every=20, fn=_R),
        )
    )(Ks)
    predicted = theory.ott_antonsen(trajs.ts[0], R0, Ks[:, None], gamma)
    # Finite-N fluctuations are O(N^-1/2).
    np.testing.assert_allclose(trajs.ys, predicted, atol=0.06)
    np.testing.assert_allclose(
        trajs.ys[:, -10:].mean(axis=1),
        theory.order_parameter(Ks, scale=gamma),
        atol=0.03,
    )


# ---------------------------------------------------------------------------------
# Ott-Antonsen
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [0.8, 2.0, 3.0, 8.0])
@pytest.mark.parametrize("R0", [0.02, 0.5, 0.99])
def test_ott_antonsen_matches_ode(x64, K, R0):
    gamma = 1.0
    ts = np.linspace(0.0, 15.0, 61)
    sol = integrate.solve_ivp(
        lambda t, R: -gamma * R + 0.5 * K * R * (1 - R**2),
        (0.0, ts[-1]),
        [R0],
        t_eval=ts,
        rtol=1e-12,
        atol=1e-14,
        method="DOP853",
    )
    R = theory.ott_antonsen(jnp.asarray(ts), R0, K, gamma)
    np.testing.assert_allclose(R, sol.y[0], rtol=1e-8, atol=1e-12)


def test_ott_antonsen_limits_and_broadcasting():
    t = jnp.array([0.0, 1.0, 1e3])
    # Vectorised over K (rows) and time (columns); default scale gamma = 1.
    K = jnp.array([1.0, 2.0, 4.0])[:, None]
    R = theory.ott_antonsen(t, 0.3, K)
    assert R.shape == (3, 3) and R.dtype == jnp.float32
    np.testing.assert_allclose(R[:, 0], 0.3, rtol=1e-6)
    # Below K_c R decays exponentially, above it R -> sqrt(1 - 2 gamma / K).
    np.testing.assert_allclose(R[0, -1], 0.0, atol=1e-30)
    np.testing.assert_allclose(R[2, -1], math.sqrt(0.5), rtol=1e-5)
    # At K_c exactly: R = R0 / sqrt(1 + K R0^2 t).
    np.testing.assert_allclose(
        R[1], 0.3 / np.sqrt(1 + 2 * 0.09 * np.asarray(t)), rtol=1e-5
    )
    # Incoherence is a fixed point; no NaN anywhere.
    np.testing.assert_array_equal(theory.ott_antonsen(t, 0.0, 3.0), 0.0)
    grad = jax.grad(lambda k: theory.ott_antonsen(2.0, 0.3, k))(2.0)
    assert np.isfinite(grad) and grad > 0
    with pytest.raises(ValueError, match="R0"):
        theory.ott_antonsen(t, 1.5, 3.0)


# ---------------------------------------------------------------------------------
# Two oscillators
# ---------------------------------------------------------------------------------


def test_two_oscillator_locking_values():
    dw = jnp.array([-3.0, -2.0, -1.0, 0.0, 0.5, 2.0, 2.5])
    res = theory.two_oscillator_locking(dw, 1.0)
    np.testing.assert_array_equal(res.locked, np.abs(dw) <= 2.0)
    locked = np.asarray(res.locked)
    np.testing.assert_allclose(
        np.sin(res.phase_difference[locked]), dw[locked] / 2, atol=1e-6
    )
    assert np.all(np.cos(res.phase_difference[locked]) >= -1e-6)  # the stable root
    assert np.all(np.isnan(res.phase_difference[~locked]))
    np.testing.assert_array_equal(res.drift_frequency[locked], 0.0)
    np.testing.assert_allclose(
        res.drift_frequency[~locked],
        np.sign(dw[~locked]) * np.sqrt(dw[~locked] ** 2 - 4.0),
        rtol=1e-6,
    )
    # Repulsive coupling: the stable root has K cos(phi) > 0.
    rep = theory.two_oscillator_locking(0.6, -0.5)
    assert bool(rep.locked)
    np.testing.assert_allclose(math.sin(rep.phase_difference), 0.6 / -1.0, atol=1e-6)
    assert -0.5 * math.cos(rep.phase_difference) > 0


def _pair(dw, K):
    omega = jnp.array([-0.5, 0.5]) * dw
    return kl.Kuramoto(omega, kl.DenseCoupling(K * (1 - jnp.eye(2))))


def test_two_oscillator_locking_vs_simulation():
    # (dw, K): locked, locked near threshold, repulsive locked, unlocked, unlocked.
    dws = jnp.array([1.0, 1.9, 0.6, 2.0, 2.4])
    Ks = jnp.array([1.0, 1.0, -0.5, 0.5, 1.0])
    theta0 = jnp.array([0.0, 0.3])
    trajs = jax.vmap(
        lambda dw, K: kl.simulate(
            _pair(dw, K), theta0, t1=200.0, dt=0.05, saveat=kl.SaveAt(every=100)
        )
    )(dws, Ks)
    res = theory.two_oscillator_locking(dws, Ks)
    locked = np.asarray(res.locked)
    np.testing.assert_array_equal(locked, [True, True, True, False, False])
    final_phi = trajs.final[:, 1] - trajs.final[:, 0]
    kl.testing.assert_phase_allclose(
        final_phi[locked], res.phase_difference[locked], atol=1e-4
    )
    Omega = kl.effective_frequencies(trajs)
    # theta_1 + theta_2 advances at exactly omega_1 + omega_2 = 0.
    np.testing.assert_allclose(Omega.sum(axis=1), 0.0, atol=1e-4)
    # The bounded oscillating part of phi contributes at most ~2 pi / t1.
    np.testing.assert_allclose(
        Omega[:, 1] - Omega[:, 0], res.drift_frequency, atol=4e-2
    )


# ---------------------------------------------------------------------------------
# Finite-size incoherence
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 40])
def test_finite_size_incoherent_R_against_monte_carlo(n):
    rng = np.random.default_rng(n)
    theta = rng.uniform(-np.pi, np.pi, (40_000, n))
    R = np.abs(np.exp(1j * theta).mean(axis=1))
    predicted = float(theory.finite_size_incoherent_R(n))
    np.testing.assert_allclose(predicted, math.sqrt(math.pi / (4 * n)), rtol=1e-6)
    # Rayleigh mean plus its documented ~1/(16 N) relative bias, within 4 std errors.
    se = R.std() / math.sqrt(R.size)
    assert abs(R.mean() - predicted * (1 + 1 / (16 * n))) < 4 * se
    assert abs(R.mean() / predicted - 1) < 0.01
    with pytest.raises(ValueError, match="n.*>= 1"):
        theory.finite_size_incoherent_R(0)


def test_noisy_order_parameter_against_scipy():
    import scipy.optimize
    import scipy.special

    D = 0.25
    Ks = np.array([0.3, 0.5, 0.55, 0.8, 1.5, 4.0])
    got = np.asarray(kl.theory.noisy_order_parameter(jnp.asarray(Ks), D))
    for K, r in zip(Ks, got, strict=True):
        if K <= 2 * D:
            assert r == 0.0
        else:
            ref = scipy.optimize.brentq(
                lambda x, K=K: scipy.special.i1e(K * x / D) / scipy.special.i0e(K * x / D) - x,
                1e-12, 1.0,
            )
            np.testing.assert_allclose(r, ref, atol=2e-6)
    with pytest.raises(ValueError, match="`D` must be > 0"):
        kl.theory.noisy_order_parameter(1.0, 0.0)


def test_von_mises_mean_cos_limits():
    import scipy.special

    k = np.array([0.0, 0.5, 2.0, 50.0, 800.0])
    got = np.asarray(kl.theory.von_mises_mean_cos(jnp.asarray(k)))
    np.testing.assert_allclose(got[:4], scipy.special.i1(k[:4]) / scipy.special.i0(k[:4]), rtol=1e-5)
    assert got[0] == 0.0 and 0.99 < got[-1] <= 1.0  # no overflow at large kappa


def test_delayed_sync_frequencies_roots_and_stability():
    for tau in (0.0, 0.5, 1.3, 2.75, 6.0):
        roots, stable = kl.theory.delayed_sync_frequencies(1.0, 1.0, tau)
        np.testing.assert_allclose(roots - 1.0 + np.sin(roots * tau), 0.0, atol=1e-12)
        np.testing.assert_array_equal(stable, np.cos(roots * tau) > 0)
        assert stable.any()
    # tau = 6: several branches coexist
    assert len(kl.theory.delayed_sync_frequencies(1.0, 1.0, 6.0)[0]) >= 3
