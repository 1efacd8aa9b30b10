"""Noise: SDE convergence orders, reproducible Brownian paths, stationary laws, gradients."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special

import kuralab as kl
from kuralab.testing import assert_phase_allclose


def _noisy_model(n=4, D=0.3, dtype=None):
    omega = jnp.linspace(-0.5, 0.5, n, dtype=dtype)
    return kl.Kuramoto(omega, kl.MeanField(1.2), forcing=kl.Forcing(0.4, 0.2),
                       noise=kl.Noise(D))


def _final_unwrapped(model, y0, key, dt, solver, t1=1.0):
    tr = kl.simulate(model, y0, t1=t1, dt=dt, solver=solver, key=key,
                     saveat=kl.SaveAt(final=True))
    return tr.final + 2 * jnp.pi * tr.final_turns


def _strong_errors(solver, ks, k_ref, n_paths=16):
    model = _noisy_model(dtype=jnp.float64)
    y0 = jnp.array([0.3, -1.0, 2.0, 0.5])
    keys = jax.random.split(jax.random.key(0), n_paths)
    # The reference uses the same solver: a Brownian tree that also samples Levy areas
    # (SRA1, ShARK) is a different realisation than one that does not.
    ref = jax.vmap(lambda k: _final_unwrapped(model, y0, k, 2.0**-k_ref, solver))(keys)
    errors = []
    for k in ks:
        out = jax.vmap(lambda key, k=k: _final_unwrapped(model, y0, key, 2.0**-k, solver))(keys)
        errors.append(float(jnp.sqrt(jnp.mean((out - ref) ** 2))))
    return np.array([2.0**-k for k in ks]), np.array(errors)


@pytest.mark.parametrize(
    "solver, order",
    [("euler", 1.0), ("heun", 1.0), ("euler_heun", 1.0), ("sra1", 1.5), ("shark", 1.5)],
)
@pytest.mark.slow
def test_strong_convergence_order_additive_noise(x64, solver, order):
    # Additive noise: Euler-Maruyama, Heun and Euler-Heun have strong order 1, SRA1 and
    # ShARK (both built for additive noise) 1.5. Every run
    # samples the same Brownian path (VirtualBrownianTree on dyadic nodes), so the
    # reference at a much finer step is the same realisation.
    dts, errors = _strong_errors(solver, ks=[4, 5, 6, 7], k_ref=12)
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.3, (solver, slope, errors)


@pytest.mark.slow
def test_weak_convergence_euler_maruyama(x64):
    # E[cos theta_T] over many independent oscillators (K = 0), common random numbers
    # against a fine reference: weak order 1.
    n = 4000
    model = kl.Kuramoto(jnp.zeros(n), kl.MeanField(0.0), forcing=kl.Forcing(1.5, 0.0),
                        noise=kl.Noise(0.2))
    y0 = jnp.full(n, 2.5)
    key = jax.random.key(3)
    ref = jnp.mean(jnp.cos(_final_unwrapped(model, y0, key, 2.0**-11, "euler")))
    dts = np.array([2.0**-k for k in (3, 4, 5, 6)])
    errors = [abs(float(jnp.mean(jnp.cos(_final_unwrapped(model, y0, key, dt, "euler"))) - ref))
              for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - 1.0) < 0.3, (slope, errors)


def test_same_key_same_path_whatever_the_save_grid():
    model = _noisy_model()
    y0 = jnp.zeros(4)
    key = jax.random.key(5)
    every = kl.simulate(model, y0, t1=2.0, dt=0.01, key=key)
    sparse = kl.simulate(model, y0, t1=2.0, dt=0.01, key=key, saveat=kl.SaveAt(every=7))
    np.testing.assert_array_equal(sparse.ys[:-1], every.ys[::7])
    np.testing.assert_array_equal(sparse.final, every.final)
    other = kl.simulate(model, y0, t1=2.0, dt=0.01, key=jax.random.key(6),
                        saveat=kl.SaveAt(every=7))
    assert not np.allclose(other.final, sparse.final)
    # the "increments" path is reproducible on the same step grid
    a = kl.simulate(model, y0, t1=2.0, dt=0.01, key=key, brownian="increments")
    b = kl.simulate(model, y0, t1=2.0, dt=0.01, key=key, brownian="increments",
                    saveat=kl.SaveAt(every=7))
    np.testing.assert_array_equal(a.final, b.final)
    assert not np.allclose(a.final, every.final)  # a different path from the tree's


def test_finer_step_converges_to_the_same_path(x64):
    model = _noisy_model(dtype=jnp.float64)
    y0 = jnp.zeros(4)
    key = jax.random.key(8)
    coarse = _final_unwrapped(model, y0, key, 2.0**-6, "heun")
    fine = _final_unwrapped(model, y0, key, 2.0**-10, "heun")
    # Error budget: Heun is strong order 1 for this additive noise; the rms
    # per-oscillator error of dt = 2^-6 against 2^-10 on this model is 2.5e-3 over 16
    # paths (_strong_errors("heun", [6], 10)); the largest of 4 oscillators of one
    # path is held to 2 rms (measured 3.6e-3).
    assert float(jnp.max(jnp.abs(coarse - fine))) < 2 * 2.5e-3


def test_forced_noisy_oscillator_is_von_mises():
    # dtheta = h sin(psi - theta) dt + sqrt(2D) dW: stationary density ~ exp(kappa cos),
    # kappa = h / D, so E[cos(theta - psi)] = I1(kappa) / I0(kappa).
    n, h, D, psi = 4000, 1.0, 0.5, 0.3
    model = kl.Kuramoto(jnp.zeros(n), kl.MeanField(0.0), forcing=kl.Forcing(h, psi),
                        noise=kl.Noise(D))
    tr = kl.simulate(model, jnp.zeros(n), t1=40.0, dt=0.005, key=jax.random.key(0),
                     brownian="increments", saveat=kl.SaveAt(every=100))
    c = np.cos(np.asarray(tr.ys[np.asarray(tr.ts) >= 10.0], np.float64) - psi)
    expected = scipy.special.i1(h / D) / scipy.special.i0(h / D)
    stderr = c.std() / np.sqrt(c.size / 10)  # saves 0.5 apart are correlated
    assert abs(c.mean() - expected) < max(4 * stderr, 4e-3), (c.mean(), expected, stderr)


def test_noisy_identical_mean_field_self_consistency():
    # R solves R = I1(K R / D) / I0(K R / D) above K_c = 2D; below, R = O(1/sqrt(N)).
    n, D = 3000, 0.25
    Ks = jnp.array([0.3, 1.0])

    def mean_R(K):
        model = kl.Kuramoto(jnp.zeros(n), kl.MeanField(K), noise=kl.Noise(D))
        tr = kl.simulate(model, jnp.zeros(n), t1=80.0, dt=0.02, key=jax.random.key(2),
                         brownian="increments", saveat=kl.SaveAt(every=50, fn=_R))
        return jnp.mean(tr.ys[-40:])

    R = np.asarray(jax.vmap(mean_R)(Ks))
    theory = scipy.optimize.brentq(
        lambda r: r - scipy.special.i1(r / D) / scipy.special.i0(r / D), 1e-3, 1.0
    )
    # Below K_c: linear response of the noisy incoherent state (free kernel exp(-D t))
    # gives N <|Z|^2> = D / (D - K/2), so <R> = sqrt(pi/4 * 2.5 / N) = 1.40/sqrt(N); the
    # 40-time-unit window sees ~4 correlation times 1/(D - K/2) = 10, relative standard
    # error ~0.26: the bound 4/sqrt(N) is theory + 7 standard errors.
    assert R[0] < 4 / np.sqrt(n), R
    # Above: finite-N variance of R is Var(cos phi)/N under the von Mises density
    # (kappa = K R / D); 40 saves 1.0 apart (correlation time ~1/(K R) ~ 1.2) are >= 20
    # independent samples. Budget: 4 standard errors + the O(1/N) finite-size bias +
    # Euler-Maruyama's stationary bias R D dt / 4 (variance of the linearised phase
    # inflated by K R dt / 2). ~6e-3 instead of 0.01.
    kappa = theory / D
    var_cos = 0.5 * (1 + scipy.special.iv(2, kappa) / scipy.special.iv(0, kappa)) - theory**2
    tol = 4 * np.sqrt(var_cos / n / 20) + 1 / n + theory * D * 0.02 / 4
    assert abs(R[1] - theory) < tol, (R, theory, tol)


def _R(t, theta):
    return jnp.abs(jnp.mean(jnp.exp(1j * theta)))


def test_orientation_diffusion_forward_process():
    # SCIENCE.md §3: dtheta = [K(t) R sin(psi - theta) + K_ref(t) sin(psi_ref - theta)] dt
    #                + sqrt(2 D(t)) dW, wrapped every step. Mean field = kl.MeanField(K(t)),
    # reference phase = kl.Forcing(K_ref(t), psi_ref), D(t) a schedule. The terminal law
    # is von Mises around psi_ref with concentration (K R + K_ref) / D.
    n, T = 4000, 30.0
    K = kl.Linear(0.0, 0.6, t0=0.0, t1=10.0)
    K_ref = kl.Linear(0.0, 0.9, t0=0.0, t1=10.0)
    D = kl.Linear(0.01, 0.5, t0=0.0, t1=10.0)
    psi_ref = 0.0
    model = kl.Kuramoto(jnp.zeros(n), kl.MeanField(K), forcing=kl.Forcing(K_ref, psi_ref),
                        noise=kl.Noise(D))
    data = kl.random_phases(jax.random.key(0), n) * 0.3 + 1.0  # a "structured" start
    tr = kl.simulate(model, data, t1=T, dt=0.01, key=jax.random.key(1),
                     brownian="increments", saveat=kl.SaveAt(every=100))
    assert bool(jnp.all((tr.ys >= -jnp.pi) & (tr.ys < jnp.pi)))
    tail = np.asarray(tr.ys[np.asarray(tr.ts) >= 20.0], np.float64)
    R = np.abs(np.mean(np.exp(1j * tail), axis=-1)).mean()
    kappa = (0.6 * R + 0.9) / 0.5
    expected = scipy.special.i1(kappa) / scipy.special.i0(kappa)
    # Error budget: 4 standard errors of the mean of cos over n oscillators x 11 saves
    # (1.0 apart, longer than the single-oscillator correlation time 1/(kappa D) ~ 0.7;
    # counted as 5 independent saves to be safe), plus the uncertainty of kappa through
    # the measured R (dkappa = 0.6 dR / 0.5, dR ~ 1/sqrt(n)) times d<cos>/dkappa <= 0.5.
    c = np.cos(tail - psi_ref)
    tol = 4 * c.std() / np.sqrt(n * 5) + 0.5 * (0.6 / 0.5) / np.sqrt(n)
    assert abs(c.mean() - expected) < tol, (c.mean(), expected, tol)
    # the mean phase is pulled to the reference phase: its sd at one save is
    # sd(sin) / (R sqrt(n)) ~ 0.013; 0.05 is 4 of them
    assert abs(np.angle(np.mean(np.exp(1j * tail)))) < 0.05


def test_vmap_over_keys_and_grad_through_sde(x64):
    n = 16
    omega = jnp.linspace(-0.3, 0.3, n)
    y0 = kl.random_phases(jax.random.key(0), n)

    def loss(K, key):
        model = kl.Kuramoto(omega, kl.MeanField(K), noise=kl.Noise(0.05))
        tr = kl.simulate(model, y0, t1=3.0, dt=0.05, key=key, saveat=kl.SaveAt(final=True))
        return jnp.abs(kl.order_parameter(tr.final))

    keys = jax.random.split(jax.random.key(1), 3)
    batched = jax.vmap(loss, in_axes=(None, 0))(1.0, keys)
    assert len(set(np.asarray(batched).tolist())) == 3  # different paths
    np.testing.assert_allclose(batched[1], loss(1.0, keys[1]), rtol=1e-10)
    g = jax.grad(loss)(1.0, keys[0])
    eps = 1e-5
    fd = (loss(1.0 + eps, keys[0]) - loss(1.0 - eps, keys[0])) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_adaptive_sde_with_tree_path(x64):
    model = _noisy_model(dtype=jnp.float64, D=0.05)
    y0 = jnp.zeros(4)
    key = jax.random.key(4)
    fixed = kl.simulate(model, y0, t1=1.0, dt=2.0**-12, solver="heun", key=key,
                        saveat=kl.SaveAt(final=True))
    adaptive = kl.simulate(model, y0, t1=1.0, dt=2.0**-6, solver="heun", key=key,
                           stepsize_controller=dfx.PIDController(rtol=1e-4, atol=1e-4,
                                                                 dtmin=2.0**-12),
                           saveat=kl.SaveAt(final=True))
    # Budget: the controller's ~230 accepted steps average 2^-7.8, shorter than the
    # initial dt0 = 2^-6, so the error should stay within Heun's strong error at dt0.
    # Additive noise: it scales
    # with the noise amplitude, 2.5e-3 rms at D = 0.3 (_strong_errors("heun", [6], 10))
    # -> 2.5e-3 sqrt(0.05/0.3) = 1.0e-3 at D = 0.05; 4 of them. Measured 2.4e-3 (keys
    # 4-6: 1.1-2.4e-3, no better than fixed dt0 steps, 0.7-1.8e-3: the embedded error
    # estimate does not see the noise's contribution).
    assert_phase_allclose(adaptive.final, fixed.final, atol=4 * 2.5e-3 * np.sqrt(0.05 / 0.3))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: kl.Noise(-0.1), ValueError, r"`D` must be >= 0"),
        (lambda: kl.Noise(float("nan")), ValueError, "`D` must be finite"),
        (lambda: kl.Noise(jnp.ones((2, 2))), ValueError, "shape"),
        (lambda: kl.Kuramoto(jnp.zeros(3), kl.MeanField(1.0), noise=kl.Noise(jnp.ones(2))),
         ValueError, r"noise.D.*\(3,\)"),
        (lambda: kl.simulate(_noisy_model(), jnp.zeros(4), t1=1.0, dt=0.1),
         ValueError, "`key` is required"),
        (lambda: kl.simulate(_noisy_model(), jnp.zeros(4), t1=1.0, dt=0.1, solver="tsit5",
                             key=jax.random.key(0)), ValueError, "is an ODE solver, but the model has noise"),
        (lambda: kl.simulate(_noisy_model(), jnp.zeros(4), t1=1.0, dt=0.1,
                             key=jax.random.key(0), brownian="unsafe"),
         ValueError, "`brownian` must be one of"),
        (lambda: kl.simulate(
            kl.Kuramoto(jnp.zeros(2), kl.MeanField(1.0), noise=kl.Noise(kl.Linear(0.1, -0.1))),
            jnp.zeros(2), t1=2.0, dt=0.1, key=jax.random.key(0)),
         ValueError, r"D\(t\)` must be >= 0"),
    ],
)
def test_bad_noise_input(make, error, match):
    with pytest.raises(error, match=match):
        make()
