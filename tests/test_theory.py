"""kl.theory: analytic values; the optimistix self-consistency solver against closed
forms and independent quadrature, its implicit derivatives against analytic ones and
finite differences, under jit/vmap and in float32; tabulated and callable densities;
noisy K_c, R(K, D) and the von Mises laws; Ott-Antonsen against an ODE solver; delayed
synchronised frequencies; and (slow) simulations."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import kuralab as kl
from kuralab import theory
from kuralab._theory_mean_field import _self_consistent_R

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


# The solver compiles once per (density, dtype, padded length 8 / vmapped size 8):
# the tests below keep to these shapes so that they share compilations.


def test_generic_solver_reproduces_lorentzian_and_its_gradient(x64):
    # R = sqrt(1 - 2 gamma / K): dR/dK = gamma / (K^2 R), dR/dgamma = -1 / (K R).
    gamma = 0.7
    # From just above K_c to K R ~ 10^4 widths, where the integrand is very peaked.
    K = gamma * jnp.asarray(np.geomspace(2.001, 2e4, 8))
    R_closed = np.sqrt(1 - 2 * gamma / np.asarray(K))
    np.testing.assert_allclose(
        _self_consistent_R(K, "lorentzian", jnp.asarray(gamma)), R_closed, atol=1e-12
    )
    grad = jax.vmap(
        jax.grad(lambda K, g: _self_consistent_R(K, "lorentzian", g), argnums=(0, 1)),
        in_axes=(0, None),
    )
    dK, dgamma = grad(K, jnp.asarray(gamma))
    np.testing.assert_allclose(dK, gamma / (np.asarray(K) ** 2 * R_closed), rtol=1e-7)
    np.testing.assert_allclose(dgamma, -1 / (np.asarray(K) * R_closed), rtol=1e-7)
    # Below and at K_c: R = 0 exactly, with zero derivative (no NaN).
    below = gamma * jnp.array([0.1, 0.5, 1.0, 1.5, 1.9, 1.99, 1.999999, 2.0])
    np.testing.assert_array_equal(_self_consistent_R(below, "lorentzian", gamma), 0.0)
    np.testing.assert_array_equal(grad(below, jnp.asarray(gamma)), 0.0)


def test_solver_float32_under_jit_and_vmap():
    # float32 in, float32 out, to float32 accuracy; the same under jit(vmap(grad)).
    K = jnp.array([0.5, 1.0, 1.5, 2.1, 2.5, 4.0, 10.0, 100.0])
    R = _self_consistent_R(K, "lorentzian", jnp.asarray(1.0))
    assert R.dtype == jnp.float32
    exact = np.sqrt(np.clip(1 - 2 / np.asarray(K, np.float64), 0, None))
    np.testing.assert_allclose(R, exact, atol=2e-6)
    grad = jax.grad(lambda k: _self_consistent_R(k, "lorentzian", jnp.asarray(1.0)))
    dR = jax.jit(jax.vmap(grad))(K)
    assert dR.dtype == jnp.float32
    above = np.asarray(K) > 2
    np.testing.assert_array_equal(dR[~above], 0.0)
    K_above = np.asarray(K, np.float64)[above]
    expected = 1 / (K_above**2 * np.sqrt(1 - 2 / K_above))
    np.testing.assert_allclose(dR[above], expected, rtol=1e-4)


@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_self_consistency_holds_under_independent_quadrature(x64, distribution):
    scale = 0.8
    Kc = float(theory.critical_coupling(distribution, scale))
    Ks = Kc * np.array([1.001, 1.05, 1.3, 2.0, 5.0, 20.0, 100.0, 1000.0])
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
                math.copysign(math.asin(min(1, c * scale / (K * r))), sign)
                for c in (1.0, 0.1, 0.01)
                for sign in (-1, 1)
            ],
            epsabs=1e-13,
            epsrel=1e-13,
            limit=500,
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


# ---------------------------------------------------------------------------------
# Differentiability, jit and vmap of the optimistix self-consistency solve
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "distribution", ["gaussian", pytest.param("uniform", marks=pytest.mark.slow)]
)
def test_order_parameter_gradient_matches_finite_differences(x64, distribution):
    scale = 1.2
    Kc = float(theory.critical_coupling(distribution, scale))
    K = Kc * np.array([0.5, 0.99, 1.01, 1.05, 1.5, 4.0, 10.0, 50.0])
    dK, ds = jax.vmap(
        jax.grad(
            lambda K, s: theory.order_parameter(K, distribution, s), argnums=(0, 1)
        ),
        in_axes=(0, None),
    )(jnp.asarray(K), scale)
    R_plus, R_minus = (
        np.asarray(
            theory.order_parameter(jnp.asarray(K * (1 + e)), distribution, scale)
        )
        for e in (1e-6, -1e-6)
    )
    above = K > Kc
    fd = (R_plus - R_minus) / (2e-6 * K)
    np.testing.assert_allclose(dK[above], fd[above], rtol=1e-5)
    np.testing.assert_array_equal(dK[~above], 0.0)
    np.testing.assert_array_equal(ds[~above], 0.0)
    # More coupling or a narrower g: more synchrony.
    assert np.all(np.asarray(dK[above]) > 0) and np.all(np.asarray(ds[above]) < 0)
    # R depends on K / scale only, so K dR/dK = -scale dR/dscale.
    np.testing.assert_allclose(K * dK, -scale * ds, rtol=1e-9, atol=1e-15)


# ---------------------------------------------------------------------------------
# Tabulated and callable densities
# ---------------------------------------------------------------------------------


def _table(name):
    """A table of a named density, 4001 points (tables of one length share a
    compilation). The Lorentzian is on omega = sinh(s), out to |omega| = sinh(10)
    ~ 11000, missing 6e-5 of its mass."""
    if name == "gaussian":
        omega = np.linspace(-12.0, 12.0, 4001)
    elif name == "lorentzian":
        omega = np.sinh(np.linspace(-10.0, 10.0, 4001))
    else:
        omega = np.linspace(-1.0, 1.0, 4001)
    return theory.Tabulated(omega, _PDF[name](omega, 1.0))


@pytest.mark.parametrize(
    "name, rtol_Kc, atol_R",
    # Linear interpolation of g with step h costs ~h^2 |g''| / 8 in g, more in R near
    # onset (where R depends on g''(0)); the Lorentzian table is renormalised for its
    # truncated tail (6e-5 of the mass).
    [("gaussian", 1e-12, 1e-4), ("lorentzian", 1e-4, 5e-4), ("uniform", 1e-12, 1e-9)],
)
def test_tabulated_density_reproduces_named(x64, name, rtol_Kc, atol_R):
    scale = 0.8
    table = _table(name)
    Kc = float(theory.critical_coupling(name, scale))
    np.testing.assert_allclose(theory.critical_coupling(table, scale), Kc, rtol=rtol_Kc)
    K = jnp.asarray(Kc * np.array([0.5, 0.99, 1.02, 1.2, 1.6, 3.0, 8.0, 30.0]))
    expected = theory.order_parameter(K, name, scale)
    got = theory.order_parameter(K, table, scale)
    np.testing.assert_allclose(got, expected, atol=atol_R)
    np.testing.assert_array_equal(got[:2], 0.0)
    # The right half alone (omega >= 0) is mirrored: the same density.
    half = np.asarray(table.omega) >= 0
    one_sided = theory.Tabulated(table.omega[half], table.density[half])
    np.testing.assert_allclose(
        theory.order_parameter(K, one_sided, scale), got, atol=1e-12
    )
    # Differentiable through the generic solve: the derivative of what is computed
    # (finite differences of the table's R), close to the named density's.
    dR = jax.vmap(jax.grad(lambda k: theory.order_parameter(k, table, scale)))(K)
    np.testing.assert_array_equal(dR[:2], 0.0)
    for distribution, rtol in ((table, 1e-5), (name, 3e-2)):
        fd = (
            theory.order_parameter(K * (1 + 1e-7), distribution, scale)
            - theory.order_parameter(K * (1 - 1e-7), distribution, scale)
        ) / (2e-7 * K)
        np.testing.assert_allclose(dR[2:], fd[2:], rtol=rtol, atol=1e-9)


def test_callable_density_matches_named(x64):
    def cauchy(w):
        return 1.0 / (math.pi * (1.0 + w * w))

    # The generic solve with a Lorentzian callable against the closed form.
    K = jnp.array([0.5, 1.19, 1.21, 1.7, 2.5, 6.0, 60.0, 600.0])
    np.testing.assert_allclose(
        theory.order_parameter(K, cauchy, 0.6),
        theory.order_parameter(K, "lorentzian", 0.6),
        atol=1e-12,
    )
    np.testing.assert_allclose(theory.critical_coupling(cauchy, 0.6), 1.2, rtol=1e-12)


@pytest.mark.slow
def test_tabulated_float32_default():
    table = _table("gaussian")
    K = jnp.array([0.5, 1.0, 1.6, 1.7, 2.0, 3.0, 5.0, 10.0])
    R = theory.order_parameter(K, table)
    assert R.dtype == jnp.float32
    np.testing.assert_allclose(R, theory.order_parameter(K, "gaussian"), atol=1e-4)


def test_bad_tables_and_callables_are_rejected():
    w = np.linspace(-10, 10, 1001)
    g = stats.norm.pdf(w)
    bimodal = 0.5 * stats.norm.pdf(w, -2, 0.7) + 0.5 * stats.norm.pdf(w, 2, 0.7)
    cases = [
        (theory.Tabulated(w, stats.norm.pdf(w, loc=0.4)), "must be symmetric"),
        (theory.Tabulated(w, bimodal), "must be unimodal"),
        (theory.Tabulated(w, 2 * g), "must integrate to 1"),
        (theory.Tabulated(w, g - 0.01), "must be >= 0"),
        (theory.Tabulated(w[::-1], g), "strictly increasing"),
        (theory.Tabulated(w + 11, g), "span both signs or start at 0"),
        (theory.Tabulated(w, g[:-1]), "same length"),
        (theory.Tabulated(w[:2], g[:2]), "same length >= 3"),
        (theory.Tabulated(w, np.where(w > 3, np.nan, g)), "must be finite"),
        ((w, 2 * g), "must integrate to 1"),  # a plain (omega, g) pair is a table
        (lambda x: jnp.exp(-x * x), "must be normalised"),
        (lambda x: stats.norm.pdf(np.asarray(x), 0.3), "symmetric and unimodal"),
        (lambda x, y: x, "calling it failed"),
        (3.0, "must be one of"),
    ]
    for distribution, message in cases:
        for fn in (theory.critical_coupling, theory.order_parameter):
            args = (
                (distribution,)
                if fn is theory.critical_coupling
                else (2.0, distribution)
            )
            with pytest.raises(ValueError, match=message):
                fn(*args)


# ---------------------------------------------------------------------------------
# Simulations
# ---------------------------------------------------------------------------------


def _R(t, y):
    return jnp.abs(kl.order_parameter(y))


@pytest.mark.slow
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
    # Error budget (RK4 at dt = 0.05 contributes < 1e-6): finite-N fluctuations. The
    # random pairing of quantile phases with frequencies leaves |Z - Z_OA| ~ N^-1/2,
    # amplified near incoherence by linear response, <|Z|^2> = 1/(N |1 - K/K_c|):
    # sqrt of it is 0.022, 0.020, 0.010 for K = 0.6, 1.5, 3. The trajectory (75 saves,
    # ~15 correlation times) is held to 4 of them (measured max 0.047, 0.036, 0.017
    # over three pairings), but never looser than 0.06.
    fluct = np.sqrt(1 / (n * np.abs(1 - np.asarray(Ks) / (2 * gamma))))
    err = np.abs(np.asarray(trajs.ys) - np.asarray(predicted)).max(axis=1)
    assert np.all(err < np.minimum(4 * fluct, 0.06)), (err, fluct)
    # Stationary tails (10 saves 1.0 apart): above K_c the locked R fluctuates with
    # sd sqrt((1 - R^2) / (2N)) per save: 4 standard errors of the 10-save mean
    # (1.0e-2, 7e-3; measured <= 2.5e-3). Below, OA's R -> 0 and the tail is the
    # finite-N floor sqrt(pi/4 <|Z|^2>) = 0.020 (measured 0.015-0.018); the tolerance is
    # the floor plus its 4 standard errors over ~2 correlation times, 0.3 relative each.
    tail = np.asarray(trajs.ys[:, -10:].mean(axis=1))
    R_inf = np.asarray(theory.order_parameter(Ks, scale=gamma))
    above = R_inf > 0
    tol = 4 * np.sqrt((1 - R_inf**2) / (2 * n)) / np.sqrt(10)
    assert np.all(np.abs(tail - R_inf)[above] < tol[above]), (tail, R_inf, tol)
    floor = np.sqrt(np.pi / 4) * fluct
    assert np.all(tail[~above] < (floor * (1 + 4 * 0.3))[~above]), (tail, floor)


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


@pytest.mark.slow
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


# ---------------------------------------------------------------------------------
# Noise: critical coupling, order parameter, von Mises laws
# ---------------------------------------------------------------------------------


def test_noisy_order_parameter_against_scipy():
    import scipy.optimize
    import scipy.special

    D = 0.25
    Ks = np.array([0.3, 0.5, 0.55, 0.8, 1.5, 4.0])
    got = np.asarray(kl.theory.noisy_order_parameter(jnp.asarray(Ks), D))
    assert got.dtype == np.float32
    for K, r in zip(Ks, got, strict=True):
        if K <= 2 * D:
            assert r == 0.0
        else:
            ref = scipy.optimize.brentq(
                lambda x, K=K: (
                    scipy.special.i1e(K * x / D) / scipy.special.i0e(K * x / D) - x
                ),
                1e-12,
                1.0,
            )
            np.testing.assert_allclose(r, ref, atol=2e-6)
    with pytest.raises(ValueError, match="`D` must be > 0"):
        kl.theory.noisy_order_parameter(1.0, 0.0)


def test_noisy_order_parameter_gradient(x64):
    D = 0.25
    K = np.array([0.2, 0.5, 0.5001, 0.51, 0.6, 1.0, 3.0, 30.0])
    f = jax.vmap(
        jax.grad(theory.noisy_order_parameter, argnums=(0, 1)), in_axes=(0, None)
    )
    dK, dD = jax.jit(f)(jnp.asarray(K), D)
    R_plus, R_minus = (
        np.asarray(theory.noisy_order_parameter(jnp.asarray(K * (1 + e)), D))
        for e in (1e-7, -1e-7)
    )
    above = K > 2 * D
    np.testing.assert_allclose(
        dK[above], ((R_plus - R_minus) / (2e-7 * K))[above], rtol=1e-5
    )
    np.testing.assert_array_equal(dK[~above], 0.0)
    np.testing.assert_array_equal(dD[~above], 0.0)
    # R depends on K / D only.
    np.testing.assert_allclose(K * dK, -D * dD, rtol=1e-9)
    # Implicit differentiation of R = A(kR), A = I1/I0, k = K/D:
    # dR/dk = R A'(kR) / (1 - k A'(kR)) with A'(x) = 1 - A/x - A^2.
    R = np.asarray(theory.noisy_order_parameter(jnp.asarray(K), D))[above]
    k = K[above] / D
    A = R
    A_prime = 1 - A / (k * R) - A**2
    np.testing.assert_allclose(
        dK[above], R * A_prime / (1 - k * A_prime) / D, rtol=1e-6
    )


def test_noisy_critical_coupling_closed_forms(x64):
    D = jnp.array([0.05, 0.3, 2.0])
    np.testing.assert_allclose(theory.noisy_critical_coupling(D), 2 * D, rtol=1e-15)
    assert jax.grad(theory.noisy_critical_coupling)(0.3) == 2.0
    gamma = 0.7
    np.testing.assert_allclose(
        theory.noisy_critical_coupling(D, "lorentzian", gamma),
        2 * (gamma + D),
        rtol=1e-12,
    )

    # The definition K_c = 2 / int g(w) D / (D^2 + w^2) dw, by adaptive quadrature.
    def by_quad(name, d):
        val, _ = integrate.quad(
            lambda w: _PDF[name](w, gamma) * d / (d * d + w * w),
            -np.inf if name != "uniform" else -gamma,
            np.inf if name != "uniform" else gamma,
            epsabs=1e-14,
            epsrel=1e-12,
            limit=400,
        )
        return 2 / val

    for name in ("gaussian", "uniform", "lorentzian"):
        expected = [by_quad(name, float(d)) for d in D]
        np.testing.assert_allclose(
            theory.noisy_critical_coupling(D, name, gamma), expected, rtol=1e-9
        )
        # The generic quadrature (a table or a callable) agrees.
        table = _table(name)
        tol = {"gaussian": 1e-5, "uniform": 1e-9, "lorentzian": 1e-4}[name]
        np.testing.assert_allclose(
            theory.noisy_critical_coupling(D, table, gamma), expected, rtol=tol
        )
        # Vanishing noise: the noiseless K_c = 2 / (pi g(0)).
        np.testing.assert_allclose(
            theory.noisy_critical_coupling(1e-9, name, gamma),
            theory.critical_coupling(name, gamma),
            rtol=1e-8,
        )
    with pytest.raises(ValueError, match="`D` must be > 0"):
        theory.noisy_critical_coupling(0.0)
    with pytest.raises(ValueError, match="did you mean 'gaussian'"):
        theory.noisy_critical_coupling(0.1, "gausian")


def test_noisy_order_parameter_onset_at_noisy_critical_coupling(x64):
    D = 0.37
    Kc = float(theory.noisy_critical_coupling(D))
    R = theory.noisy_order_parameter(
        jnp.asarray(Kc * np.array([1 - 1e-9, 1.0, 1 + 1e-4])), D
    )
    np.testing.assert_array_equal(R[:2], 0.0)
    # Near onset R^2 = 8 (k - 2) / k^3 + ..., k = K/D (A(x) = x/2 - x^3/16).
    k = Kc * (1 + 1e-4) / D
    np.testing.assert_allclose(R[2] ** 2, 8 * (k - 2) / k**3, rtol=1e-3)


@pytest.mark.parametrize("kappa", [0.0, 0.5, 3.0, 40.0, 700.0, -2.5])
def test_von_mises_density(kappa):
    loc = 0.7
    # The trapezoid rule on a periodic grid is spectrally accurate (the peak of
    # kappa = 700 has width 0.04, ~25 grid steps).
    grid = np.linspace(-math.pi, math.pi, 2**14, endpoint=False)
    p = np.asarray(theory.von_mises_density(jnp.asarray(grid), kappa, loc), np.float64)
    step = grid[1] - grid[0]
    np.testing.assert_allclose(p.sum() * step, 1.0, rtol=1e-5)
    mean_cos = np.sum(np.cos(grid - loc) * p) * step
    np.testing.assert_allclose(mean_cos, theory.von_mises_mean_cos(kappa), atol=1e-5)
    theta = np.linspace(-4, 4, 9)
    got = np.asarray(theory.von_mises_density(jnp.asarray(theta), kappa, loc))
    assert np.all(np.isfinite(got)) and got.dtype == np.float32
    if abs(kappa) <= 40:
        expected = stats.vonmises.pdf(
            theta, abs(kappa), loc + (math.pi if kappa < 0 else 0)
        )
        np.testing.assert_allclose(got, expected, rtol=1e-4)
    np.testing.assert_allclose(  # 2 pi periodic
        theory.von_mises_density(theta + 2 * math.pi, kappa, loc), got, rtol=1e-4
    )


def test_noisy_stationary_density_is_self_consistent(x64):
    D, psi = 0.25, -1.1
    # Trapezoid on a periodic grid: spectrally accurate for these smooth densities.
    theta = np.linspace(-math.pi, math.pi, 512, endpoint=False)
    step = theta[1] - theta[0]
    for K in (0.3, 0.55, 1.5):
        R = float(theory.noisy_order_parameter(K, D))
        p = np.asarray(theory.noisy_stationary_density(jnp.asarray(theta), K, D, psi))
        np.testing.assert_allclose(p.sum() * step, 1.0, rtol=1e-12)
        # Each oscillator's law reproduces the mean field it feels:
        # R = int cos(theta - psi) p(theta) d theta, and no sine part.
        np.testing.assert_allclose(
            np.sum(np.cos(theta - psi) * p) * step, R, atol=1e-12
        )
        assert abs(np.sum(np.sin(theta - psi) * p) * step) < 1e-12
        if K <= 2 * D:
            np.testing.assert_allclose(p, 1 / (2 * math.pi), rtol=1e-14)
        else:
            assert R > 0.1 and p.argmax() == np.argmin(np.abs(theta - psi))


def test_von_mises_mean_cos_limits():
    import scipy.special

    k = np.array([0.0, 0.5, 2.0, 50.0, 800.0])
    got = np.asarray(kl.theory.von_mises_mean_cos(jnp.asarray(k)))
    np.testing.assert_allclose(
        got[:4], scipy.special.i1(k[:4]) / scipy.special.i0(k[:4]), rtol=1e-5
    )
    assert got[0] == 0.0 and 0.99 < got[-1] <= 1.0  # no overflow at large kappa


# ---------------------------------------------------------------------------------
# Delays
# ---------------------------------------------------------------------------------


def test_delayed_sync_frequencies_roots_and_stability():
    for tau in (0.0, 0.5, 1.3, 2.75, 6.0):
        roots, stable = kl.theory.delayed_sync_frequencies(1.0, 1.0, tau)
        np.testing.assert_allclose(roots - 1.0 + np.sin(roots * tau), 0.0, atol=1e-12)
        np.testing.assert_array_equal(stable, np.cos(roots * tau) > 0)
        assert stable.any()
    # tau = 6: several branches coexist
    assert len(kl.theory.delayed_sync_frequencies(1.0, 1.0, 6.0)[0]) >= 3


@pytest.mark.parametrize(
    "K, R0, r",
    [(3.0, 0.2, 0.7), (1.5, 0.3, 0.55), (0.0, 0.8, 0.3), (1.0, 0.5, 0.3), (0.6, 0.5, 0.2)],
)
def test_ott_antonsen_time_inverts_ott_antonsen(x64, K, R0, r):
    # above K_c rising to r < R_inf, at K_c = 2 gamma (a = 0), below K_c and at K = 0
    # (free decay R0 e^{-gamma t}) decaying: R(t(r)) = r to rounding
    t = theory.ott_antonsen_time(R0, r, K, 0.5)
    assert float(t) > 0
    np.testing.assert_allclose(theory.ott_antonsen(t, R0, K, 0.5), r, rtol=1e-12)
    if K == 0.0:
        np.testing.assert_allclose(t, np.log(R0 / r) / 0.5, rtol=1e-12)


def test_ott_antonsen_time_unreachable_is_nan():
    # R_inf(K = 1.5, gamma = 0.5) = 0.577: 0.5 -> 0.3 (below it) and 0.2 -> 0.9
    # (above it) are never reached; neither is a rise below K_c
    t = theory.ott_antonsen_time(jnp.array([0.5, 0.2, 0.2]), jnp.array([0.3, 0.9, 0.4]),
                                 jnp.array([1.5, 1.5, 0.6]), 0.5)
    assert np.all(np.isnan(np.asarray(t)))
    with pytest.raises(ValueError, match=r"`r` must lie in \(0, 1\]"):
        theory.ott_antonsen_time(0.5, 1.2, 3.0, 0.5)


def test_delayed_sync_frequencies_delay_distribution():
    taus, w = np.array([0.3, 1.1, 2.4]), np.array([1.0, 2.0, 1.0])
    roots, stable = kl.theory.delayed_sync_frequencies(1.0, 1.5, taus, w)
    wn = w / w.sum()
    resid = roots - 1.0 + 1.5 * np.sin(np.outer(roots, taus)) @ wn
    np.testing.assert_allclose(resid, 0.0, atol=1e-12)
    np.testing.assert_array_equal(stable, 1.5 * np.cos(np.outer(roots, taus)) @ wn > 0)
    # every sign change of the residual on a fine independent grid is one root
    x = np.linspace(1.0 - 1.5, 1.0 + 1.5, 200_001)
    g = x - 1.0 + 1.5 * np.sin(np.outer(x, taus)) @ wn
    assert len(roots) == np.count_nonzero(g[:-1] * g[1:] < 0)
    # equal delays collapse to the uniform case; weights are normalised
    a = kl.theory.delayed_sync_frequencies(1.0, 1.0, 6.0)
    b = kl.theory.delayed_sync_frequencies(1.0, 1.0, [6.0, 6.0], [3.0, 3.0])
    np.testing.assert_allclose(b[0], a[0], atol=1e-12)
    np.testing.assert_array_equal(b[1], a[1])
    with pytest.raises(ValueError, match="`weights` must be finite, >= 0"):
        kl.theory.delayed_sync_frequencies(1.0, 1.0, [0.5, 1.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="`tau` must be a scalar or a non-empty 1-D"):
        kl.theory.delayed_sync_frequencies(1.0, 1.0, np.ones((2, 2)))
