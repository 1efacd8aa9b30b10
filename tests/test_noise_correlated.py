"""Correlated and phase-dependent noise: increment covariances against C, equivalence of
the common / low-rank / full forms, the unchanged diagonal path, the Ito drift of
Stratonovich noise, and the common-noise Lyapunov exponent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab._brownian import IncrementPath

N = 5
D = jnp.array([0.5, 0.2, 0.3, 0.4, 0.1])  # per-node diffusion coefficients
DT = 0.01
STEPS = 5000  # SE of a covariance entry ~ 2 % of Sigma_ii


def _full_correlation(c, n=N):
    C = np.full((n, n), c)
    np.fill_diagonal(C, 1.0)
    return C


def _low_rank_factor():
    # two factors, every row of unit norm: C = F F^T exactly (rank 2)
    a = np.linspace(0.0, np.pi / 2, N)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _increments(noise, solver="euler", brownian="increments", key=0):
    """Increments of free phases (no drift) over STEPS steps of DT: (steps, osc)."""
    model = kl.Kuramoto(jnp.zeros(N), kl.MeanField(0.0), noise=noise)
    tr = kl.simulate(model, jnp.zeros(N), t1=STEPS * DT, dt=DT, solver=solver,
                     brownian=brownian, key=jax.random.key(key))
    return np.asarray(kl.wrap_phase(jnp.diff(tr.ys, axis=0)), np.float64)


def _assert_covariance(x, C, n_se=5.0):
    """Sample covariance of zero-mean Gaussian increments against 2 sqrt(D_i D_j) C_ij dt.

    Error budget: for M independent zero-mean Gaussian samples the entry S_ij of the
    sample covariance has standard error sqrt((Sigma_ij^2 + Sigma_ii Sigma_jj) / M);
    every one of the N(N+1)/2 = 15 entries must lie within 5 SE (a false alarm has
    probability < 1e-5). float32 rounding of the increments (~1e-7 relative) is far
    below the SE (~1 %)."""
    d = np.asarray(D, np.float64)
    sigma = 2 * np.sqrt(np.outer(d, d)) * C * DT
    m = x.shape[0]
    S = x.T @ x / m
    se = np.sqrt((sigma**2 + np.outer(np.diag(sigma), np.diag(sigma))) / m)
    z = np.abs(S - sigma) / se
    assert z.max() < n_se, (z.max(), S, sigma)


C_COMMON = _full_correlation(0.6)
F_LOW = _low_rank_factor()


@pytest.mark.parametrize(
    "noise, C",
    [
        (kl.Noise(D, correlation=C_COMMON), C_COMMON),
        (kl.Noise(D, common=0.6), C_COMMON),  # the same C as the line above
        pytest.param(kl.Noise(D, factor=np.full((N, 1), np.sqrt(0.6))), C_COMMON,
                     marks=pytest.mark.slow),  # and again
        pytest.param(kl.Noise(D, factor=F_LOW), F_LOW @ F_LOW.T, marks=pytest.mark.slow),
        pytest.param(kl.Noise(D, correlation=F_LOW @ F_LOW.T), F_LOW @ F_LOW.T,
                     marks=pytest.mark.slow),  # singular C
        pytest.param(kl.Noise(D), np.eye(N), marks=pytest.mark.slow),
    ],
    ids=["full", "common", "factor-r1", "factor-r2", "full-singular", "diagonal"],
)
def test_increment_covariance_matches_correlation(noise, C):
    _assert_covariance(_increments(noise), C)


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["euler", "heun", "euler_heun", "sra1", "shark"])
@pytest.mark.parametrize("brownian", ["tree", "increments"])
def test_every_sde_solver_and_path_mixes_the_same_covariance(solver, brownian):
    # zero drift: every additive-noise solver's step is exactly g L dW
    C = _full_correlation(0.3)
    C[0, 1] = C[1, 0] = -0.4
    _assert_covariance(_increments(kl.Noise(D, correlation=C), solver, brownian), C)
    _assert_covariance(_increments(kl.Noise(D, common=0.3), solver, brownian),
                       _full_correlation(0.3))


def test_diagonal_noise_path_is_the_independent_path_bit_for_bit():
    # one Euler step of free phases is sqrt(2 D) W(dt) with the path kuralab draws
    model = kl.Kuramoto(jnp.zeros(N), kl.MeanField(0.0), noise=kl.Noise(D))
    key = jax.random.key(7)
    tr = kl.simulate(model, jnp.zeros(N), t1=DT, dt=DT, key=key, brownian="increments",
                     saveat=kl.SaveAt(final=True))
    w = IncrementPath(jax.ShapeDtypeStruct((N,), jnp.float32), key).evaluate(0.0, DT)
    # equal up to one float32 ulp (the product is rounded in compiled vs eager code)
    np.testing.assert_allclose(np.asarray(tr.final), np.asarray(jnp.sqrt(2 * D) * w),
                               rtol=2.4e-7, atol=0)


@pytest.mark.slow
def test_common_noise_is_the_factor_with_sqrt_c_same_path():
    # common=c and factor=sqrt(c) 1 draw the same (osc + 1) Brownian motions
    a = _increments(kl.Noise(D, common=0.6))[:100]
    b = _increments(kl.Noise(D, factor=np.full((N, 1), np.sqrt(0.6))))[:100]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # float32 sqrt rounding


@pytest.mark.slow  # three compilations, ~15-20 s on the loaded 2-core machine
def test_same_key_same_path_and_vmap_jit_over_common_fraction():
    model = lambda c: kl.Kuramoto(jnp.linspace(-1, 1, N), kl.MeanField(0.5),
                                  noise=kl.Noise(D, common=c))

    def run(c, key):
        return kl.simulate(model(c), jnp.zeros(N), t1=1.0, dt=0.05, key=key,
                           saveat=kl.SaveAt(final=True)).final

    cs = jnp.array([0.0, 0.5, 1.0])
    keys = jax.random.split(jax.random.key(1), 3)
    batched = jax.jit(jax.vmap(run))(cs, keys)
    for i in range(3):
        eager = run(float(cs[i]), keys[i])
        np.testing.assert_allclose(batched[i], eager, atol=2e-6)  # jit vs eager rounding
        np.testing.assert_array_equal(eager, run(float(cs[i]), keys[i]))  # same key


def _stationary_sin_density(omega, D, K=40):
    """Stationary density of the Stratonovich SDE dtheta = omega dt + sqrt(2D) sin(theta)
    o dW, from its Fokker--Planck equation omega P' = D (Z (Z P)')' (Z = sin), solved in
    Fourier modes |k| <= K (the spectrum decays like (D / omega)^k)."""
    k = np.arange(-K, K + 1)
    n = k.size
    Dk = np.diag(1j * k)
    S = np.zeros((n, n), complex)  # (sin f)_k = (f_{k-1} - f_{k+1}) / (2i)
    for i in range(n):
        if i - 1 >= 0:
            S[i, i - 1] = 1 / 2j
        if i + 1 < n:
            S[i, i + 1] = -1 / 2j
    A = omega * Dk - D * Dk @ S @ Dk @ S
    b = np.zeros(n, complex)
    A[K] = 0.0
    A[K, K] = 1.0
    b[K] = 1 / (2 * np.pi)  # normalisation
    p = np.linalg.solve(A, b)
    return lambda th: np.real(np.exp(1j * np.outer(th, k)) @ p)


def _mean_sin2(solver, omega=1.0, Dn=0.2, n=256, dt=0.01, t1=200.0, t_burn=20.0):
    model = kl.Kuramoto(jnp.full(n, omega), kl.MeanField(0.0),
                        noise=kl.Noise(Dn, sensitivity="sin"))
    theta0 = kl.random_phases(jax.random.key(2), n)
    ys = kl.simulate(model, theta0, t1=t1, dt=dt, solver=solver, key=jax.random.key(3),
                     burn_in=t_burn, saveat=kl.SaveAt(every=10)).ys
    per_osc = np.asarray(jnp.mean(jnp.sin(2 * ys), axis=0), np.float64)
    return per_osc.mean(), per_osc.std(ddof=1) / np.sqrt(n)


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_stratonovich_sensitivity_stationary_law(solver):
    # <sin 2 theta> under the exact stationary density: D / (4 omega) (1 + O(D^2)) =
    # 0.0474; an Ito reading (no drift correction) would give about twice that.
    th = np.linspace(-np.pi, np.pi, 4001)
    P = _stationary_sin_density(1.0, 0.2)(th)
    theory = np.trapezoid(np.sin(2 * th) * P, th)
    assert abs(np.trapezoid(P, th) - 1) < 1e-8 and abs(theory / 0.05 - 1) < 0.06
    mean, se = _mean_sin2(solver)
    # error budget: 4 SE (independent oscillators) + weak step bias O(dt) <= 0.003
    assert abs(mean - theory) < 4 * se + 0.003, (mean, se, theory)


def test_ito_drift_correction_is_d_z_zprime():
    noise = kl.Noise(jnp.array([0.1, 0.2, 0.3]), sensitivity="sin")
    theta = jnp.array([0.3, -1.0, 2.0])
    expected = np.array([0.1, 0.2, 0.3]) * np.sin(theta) * np.cos(theta)
    np.testing.assert_allclose(noise.ito_correction(0.0, theta), expected, rtol=1e-6)
    assert kl.Noise(0.1).ito_correction(0.0, theta) is None


@pytest.mark.slow
def test_common_noise_lyapunov_exponent_is_minus_sigma2_over_4(x64):
    # dtheta = omega dt + sigma sin(theta) o dW (fully common, c = 1): the phase
    # difference phi obeys d ln phi = sigma cos(theta) o dW, so
    # lambda = -(sigma^2 / 2) <cos^2> = -sigma^2 / 4 = -D / 2 (sigma^2 = 2 D; the
    # stationary density's correction to <cos^2> is O(D^2 / omega^2), < 1 %). phi stays
    # above float64 resolution: phi0 e^{-0.11 T} = 3e-12 for the fastest path seen.
    Dn, T, M, phi0 = 0.1, 200.0, 64, 1e-2
    model = kl.Kuramoto(jnp.ones(2), kl.MeanField(0.0),
                        noise=kl.Noise(Dn, common=1.0, sensitivity="sin"))

    def rate(key, th):
        y0 = jnp.array([th, th + phi0])
        tr = kl.simulate(model, y0, t1=T, dt=0.05, key=key, brownian="increments",
                         saveat=kl.SaveAt(final=True))
        phi = jnp.abs(kl.wrap_phase(tr.final[1] - tr.final[0]))
        return jnp.log(phi / phi0) / T

    keys = jax.random.split(jax.random.key(4), M)
    rates = np.asarray(jax.vmap(rate)(keys, jnp.linspace(-3, 3, M)))
    se = rates.std(ddof=1) / np.sqrt(M)  # about sqrt(D / T) / sqrt(M) = 0.003
    # 4 SE + Euler's weak bias O(D dt) and the O(D^2) density correction, <= 0.002
    assert abs(rates.mean() - (-Dn / 2)) < 4 * se + 0.002, (rates.mean(), se)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: kl.Noise(0.1, correlation=[[1.0, 0.5], [0.4, 1.0]]),
         r"`correlation` must be symmetric"),
        (lambda: kl.Noise(0.1, correlation=_full_correlation(-0.6, 3)),
         r"`correlation` must be positive semi-definite"),
        (lambda: kl.Noise(0.1, correlation=[[2.0, 0.5], [0.5, 1.0]]),
         r"`correlation` must have a unit diagonal"),
        (lambda: kl.Noise(0.1, correlation=np.eye(3)[:2]),
         r"`correlation` must be a square \(osc, osc\) matrix"),
        (lambda: kl.Kuramoto(jnp.zeros(3), kl.MeanField(1.0),
                             noise=kl.Noise(0.1, correlation=np.eye(2))),
         r"`noise.correlation` must have shape \(3, 3\)"),
        (lambda: kl.Kuramoto(jnp.zeros(3), kl.MeanField(1.0),
                             noise=kl.Noise(0.1, factor=np.zeros((2, 1)))),
         r"`noise.factor` must have shape \(3, r\)"),
        (lambda: kl.Noise(0.1, factor=np.ones((3, 2))),
         r"`factor` rows must have norm <= 1"),
        (lambda: kl.Noise(0.1, factor=np.ones(3)), r"`factor` must have shape \(osc, r\)"),
        (lambda: kl.Noise(0.1, common=1.5), r"`common` must lie in \[0, 1\]"),
        (lambda: kl.Noise(0.1, common=-0.1), r"`common` must lie in \[0, 1\]"),
        (lambda: kl.Noise(-0.1, common=0.5), r"`D` must be >= 0"),
        (lambda: kl.Noise(0.1, common=0.5, correlation=np.eye(2)), "at most one of"),
        (lambda: kl.Noise(0.1, sensitivity="tan"), r"`sensitivity` must be one of"),
        (lambda: kl.simulate(
            kl.Kuramoto(jnp.zeros(2), kl.MeanField(0.0),
                        noise=kl.Noise(0.1, sensitivity="sin")),
            jnp.zeros(2), t1=1.0, dt=0.1, key=jax.random.key(0), solver="sra1"),
         r"multiplicative .* got 'sra1'"),
    ],
)
def test_bad_correlated_noise_input(make, match):
    with pytest.raises(ValueError, match=match) as info:
        make()
    assert "\n" not in str(info.value)  # one line


@pytest.mark.slow  # ~10 s of eager dispatch on the loaded 2-core machine
def test_common_noise_theory_closed_forms_against_quadrature():
    # the callable path integrates g(phi) = <Z(theta) Z(theta + phi)> and P numerically
    # (512 nodes, spectral accuracy for these smooth densities while c <= 0.9)
    c = jnp.array([0.0, 0.3, 0.6, 0.9])
    closed = kl.theory.common_noise_synchrony(c)
    numeric = kl.theory.common_noise_synchrony(c, sensitivity=lambda x: jnp.sin(x))
    np.testing.assert_allclose(numeric, closed, atol=1e-5)
    # r = (1 - sqrt(1 - c^2)) / c solves c = 2 r / (1 + r^2) (wrapped Cauchy)
    np.testing.assert_allclose(2 * closed[1:] / (1 + closed[1:] ** 2), c[1:], rtol=1e-5)
    assert float(kl.theory.common_noise_synchrony(1.0)) == 1.0
    # Z = 1 - cos: g(phi) = 1 + cos(phi) / 2, a constant offset weakens the attraction
    phi = jnp.linspace(-np.pi, np.pi, 9)
    p = kl.theory.common_noise_phase_density(phi, 0.5, sensitivity="1-cos")
    expected = 1 / (1.5 - 0.5 * (1 + np.cos(phi) / 2))
    grid = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    expected /= np.mean(1 / (1.5 - 0.5 * (1 + np.cos(grid) / 2))) * 2 * np.pi
    np.testing.assert_allclose(p, expected, rtol=1e-5)
    # lambda = -D <Z'^2>: -D/2 for sin, -D for Z = sin(theta) + cos(theta) (<Z'^2> = 1)
    np.testing.assert_allclose(kl.theory.common_noise_lyapunov(0.1), -0.05, rtol=1e-6)
    np.testing.assert_allclose(
        kl.theory.common_noise_lyapunov(0.1, lambda x: jnp.sin(x) + jnp.cos(x)), -0.1,
        rtol=1e-5)
    with pytest.raises(ValueError, match=r"`c` must lie in \[0, 1\]"):
        kl.theory.common_noise_synchrony(1.2)
