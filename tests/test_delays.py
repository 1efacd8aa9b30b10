"""Delays: synchronised frequency under delay, RK4 order with non-grid delays, KuraNet's
step convention, an independent NumPy method-of-steps cross-check, SDDEs, gradients."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import kuralab as kl
from kuralab.testing import assert_phase_allclose


def _sync_frequency(omega, K, tau):
    # Yeung & Strogatz 1999: in-phase synchrony at Omega = omega - K sin(Omega tau).
    return scipy.optimize.brentq(lambda w: w - omega + K * np.sin(w * tau), -5, 5)


@pytest.mark.parametrize("tau, solver, dt", [(0.5, "rk4", 0.05), (0.537, "rk4", 0.05),
                                             (0.537, "heun", 0.02), (1.3, "euler", 0.005)])
def test_delayed_identical_oscillators_sync_frequency(tau, solver, dt):
    n, omega, K = 10, 1.0, 1.0
    model = kl.Kuramoto(jnp.full(n, omega), kl.MeanField(K), delays=kl.Delays(tau))
    y0 = 0.1 * jax.random.normal(jax.random.key(0), (n,))
    tr = kl.simulate(model, y0, t1=60.0, dt=dt, solver=solver, saveat=kl.SaveAt(every=round(10 / dt)))
    freq = kl.effective_frequencies(tr, window=20.0)
    expected = _sync_frequency(omega, K, tau)
    tol = {"rk4": 1e-5, "heun": 1e-4, "euler": 2e-3}[solver]
    np.testing.assert_allclose(freq, expected, atol=tol)


def _smooth_restart_problem():
    """A delayed network restarted at t_a = 3 with, as history, a degree-12 polynomial fit
    of its own accurate solution on [t_a - 0.9, t_a]. The history is then the solution
    itself, so the derivative jumps that a DDE inherits from an arbitrary history (and
    that cap any fixed-step method's order near t0 + tau) are absent, and the measured
    order is the solver's and the history interpolation's."""
    n = 5
    rng = np.random.default_rng(0)
    y0 = jnp.asarray(rng.uniform(-1, 1, n))
    omega = jnp.asarray(rng.uniform(0.5, 1.5, n))
    coupling = kl.DenseCoupling(jnp.asarray(rng.uniform(0, 1, (n, n))))
    tau = jnp.asarray([0.537, 0.31, 0.0, 0.77, 0.45])  # not multiples of any dt used
    model = kl.Kuramoto(omega, coupling, delays=kl.Delays(tau))
    t_a, dt = 3.0, 3.0 / 3072
    tr = kl.simulate(model, y0, t1=t_a, dt=dt, solver="rk4")
    window = np.asarray(tr.ts) >= t_a - 0.9
    ts, ys = np.asarray(tr.ts)[window] - t_a, np.asarray(tr.unwrapped())[window]
    coeffs = jnp.asarray(np.polyfit(ts, ys, 12))  # (13, n), highest power first

    def history(t):
        x, out = t - t_a, jnp.zeros(n)
        for c in coeffs:  # Horner
            out = out * x + c
        return out

    restarted = kl.Kuramoto(omega, coupling, delays=kl.Delays(tau, history=history))
    return restarted, history(t_a), t_a


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_delay_convergence_order_non_grid_delays(x64, solver, order):
    model, y_a, t_a = _smooth_restart_problem()

    def final(dt, s):
        tr = kl.simulate(model, y_a, t0=t_a, t1=t_a + 2.0, dt=dt, solver=s,
                         saveat=kl.SaveAt(final=True))
        return np.asarray(tr.final + 2 * np.pi * tr.final_turns)

    ref = final(2.0 / 4096, "rk4")
    dts = np.array([0.2, 0.1, 0.05, 0.025])
    errors = [np.max(np.abs(final(dt, solver) - ref)) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.3, (solver, slope, errors)


def _numpy_method_of_steps(omega, K, tau, y0, t1, dt):
    """Independent reference: RK4 in NumPy (float64) over a stored full history with
    piecewise-cubic Hermite interpolation via np.searchsorted; constant pre-history."""
    n = y0.size
    steps = round(t1 / dt)
    ts = np.arange(steps + 1) * dt
    ys = np.zeros((steps + 1, n))
    ds = np.zeros((steps + 1, n))
    ys[0] = y0

    def past(t, k_known):
        out = np.empty(n)
        for j in range(n):
            s = t - tau[j]
            if tau[j] == 0:
                out[j] = np.nan  # filled by caller
            elif s <= 0:
                out[j] = y0[j]
            else:
                i = min(np.searchsorted(ts[: k_known + 1], s) - 1, k_known - 1)
                h = dt
                u = (s - ts[i]) / h
                a, b, da, db = ys[i, j], ys[i + 1, j], ds[i, j], ds[i + 1, j]
                out[j] = ((2 * u**3 - 3 * u**2 + 1) * a + (u**3 - 2 * u**2 + u) * h * da
                          + (-2 * u**3 + 3 * u**2) * b + (u**3 - u**2) * h * db)
        return out

    def f(t, y, k_known):
        d = past(t, k_known)
        d = np.where(tau == 0, y, d)
        return omega + np.cos(y) * (K @ np.sin(d)) - np.sin(y) * (K @ np.cos(d))

    for k in range(steps):
        t, y = ts[k], ys[k]
        k1 = f(t, y, k - 1 if k > 0 else 0)
        ds[k] = k1
        k2 = f(t + dt / 2, y + dt / 2 * k1, k)
        k3 = f(t + dt / 2, y + dt / 2 * k2, k)
        k4 = f(t + dt, y + dt * k3, k)
        ys[k + 1] = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return ts, ys


@pytest.mark.slow
def test_cross_check_against_numpy_method_of_steps(x64):
    rng = np.random.default_rng(1)
    n = 6
    omega = rng.normal(size=n)
    K = rng.uniform(0, 0.5, (n, n))
    tau = np.array([0.0, 0.2, 0.35, 0.5, 0.73, 1.1])
    y0 = rng.uniform(-np.pi, np.pi, n)
    dt, t1 = 0.01, 6.0
    ts, ys = _numpy_method_of_steps(omega, K, tau, y0, t1, dt)
    model = kl.Kuramoto(jnp.asarray(omega), kl.DenseCoupling(jnp.asarray(K)),
                        delays=kl.Delays(jnp.asarray(tau)))
    tr = kl.simulate(model, jnp.asarray(y0), t1=t1, dt=dt, solver="rk4")
    np.testing.assert_allclose(tr.unwrapped(), ys, atol=1e-9)


def _kuranet_reference(omega, K, tau_steps, y0, steps, dt):
    """NumPy port of the KuraNet reference scheme (serre-lab/KuraNet models.py): Euler,
    a buffer of the last T_neg = max(tau) + 1 phases filled by a warm-up of T_neg steps
    without delays, sender j read tau_j entries back (0 = the current phase)."""
    t_neg = int(tau_steps.max()) + 1
    theta = y0.astype(np.float64).copy()
    buffer = []
    for _ in range(t_neg):  # warm-up: delays off
        buffer.append(theta.copy())
        theta = theta + dt * (omega + np.sum(K * np.sin(theta[None, :] - theta[:, None]), 1))
    out = [theta.copy()]
    for _ in range(steps):
        buffer.append(theta.copy())
        buffer = buffer[-(t_neg + 1):]
        delayed = np.array([buffer[-1 - tau_steps[j]][j] for j in range(theta.size)])
        theta = theta + dt * (omega + np.sum(K * np.sin(delayed[None, :] - theta[:, None]), 1))
        out.append(theta.copy())
    return np.array(out)


def test_kuranet_step_convention_matches_reference(x64):
    rng = np.random.default_rng(2)
    n, dt, steps = 8, 0.1, 60
    omega = rng.uniform(2, 4, n)
    K = rng.uniform(0, 2, (n, n)) / n
    tau_steps = np.array([3, 0, 7, 15, 2, 5, 1, 45])  # 45 is clipped to 40
    y0 = np.zeros(n)
    ref = _kuranet_reference(omega, K, np.minimum(tau_steps, 40), y0, steps, dt)
    model = kl.Kuramoto(jnp.asarray(omega), kl.DenseCoupling(jnp.asarray(K)),
                        delays=kl.Delays(jnp.asarray(tau_steps), convention="kuranet"))
    tr = kl.simulate(model, jnp.asarray(y0), t1=steps * dt, dt=dt, solver="euler")
    assert_phase_allclose(tr.ys, ref, atol=1e-9)


def test_kuranet_step_delays_traced_warm_up_as_reference(x64):
    # Under jit/vmap the delays are traced, so the buffer has the clip's static length;
    # the warm-up must still be the reference's max(tau) + 1 steps, not clip + 1.
    rng = np.random.default_rng(3)
    n, dt, steps = 6, 0.1, 30
    omega = rng.uniform(2, 4, n)
    K = rng.uniform(0, 2, (n, n)) / n
    taus = np.array([[3, 0, 7, 2, 5, 1], [0, 0, 0, 0, 0, 0], [12, 40, 1, 0, 3, 9]])

    def run(tau):
        model = kl.Kuramoto(jnp.asarray(omega), kl.DenseCoupling(jnp.asarray(K)),
                            delays=kl.Delays(tau, convention="kuranet"))
        return kl.simulate(model, jnp.zeros(n), t1=steps * dt, dt=dt, solver="euler").ys

    got = jax.jit(jax.vmap(run))(jnp.asarray(taus))
    for tau, ys in zip(taus, got, strict=True):
        ref = _kuranet_reference(omega, K, tau, np.zeros(n), steps, dt)
        assert_phase_allclose(ys, ref, atol=1e-9)


def _delayed_euler_reference(omega, K, tau_steps, y0, steps, dt):
    """NumPy Euler for dtheta_i = omega_i + sum_j K_ij sin(theta_j(t - tau_j) - theta_i)
    with the constant history theta(t <= 0) = y0; tau_j = tau_steps[j] * dt lies on the
    step grid, so the delayed value is a stored step (0 = the current phase)."""
    theta = y0.astype(np.float64).copy()
    hist = [theta.copy()]
    for k in range(steps):
        delayed = np.array([hist[max(k - tau_steps[j], 0)][j] for j in range(theta.size)])
        theta = theta + dt * (omega + np.sum(K * np.sin(delayed[None, :] - theta[:, None]), 1))
        hist.append(theta.copy())
    return np.array(hist)


def test_zero_and_positive_delays_mix_and_no_delay_limit(x64, getkey):
    n, dt, steps = 6, 0.05, 60
    omega = jax.random.normal(getkey(), (n,))
    K = jax.random.uniform(getkey(), (n, n)) / n
    y0 = kl.random_phases(getkey(), n)
    # A genuine mix: three senders without delay, three with 0.1, 0.25, 0.5, against an
    # independent NumPy Euler (delays on the step grid: the library's history
    # interpolation is exact there; only rounding differs).
    tau_steps = np.array([0, 2, 0, 5, 10, 0])
    mixed = kl.Kuramoto(omega, kl.DenseCoupling(K), delays=kl.Delays(jnp.asarray(tau_steps * dt)))
    got = kl.simulate(mixed, y0, t1=steps * dt, dt=dt, solver="euler")
    ref = _delayed_euler_reference(np.asarray(omega), np.asarray(K), tau_steps,
                                   np.asarray(y0), steps, dt)
    assert_phase_allclose(got.ys, ref, atol=1e-9)
    undelayed = _delayed_euler_reference(np.asarray(omega), np.asarray(K), 0 * tau_steps,
                                         np.asarray(y0), steps, dt)
    assert np.max(np.abs(ref - undelayed)) > 1e-3  # the delays matter at this size
    # the no-delay limit: all-zero delays are the plain (undelayed) Euler scheme
    zero = kl.Kuramoto(omega, kl.DenseCoupling(K), delays=kl.Delays(jnp.zeros(n)))
    b = kl.simulate(zero, y0, t1=steps * dt, dt=dt, solver="euler")
    assert_phase_allclose(b.ys, undelayed, atol=1e-9)


def test_sdde_same_path_and_small_noise_limit():
    n, omega, K, tau = 20, 1.0, 1.0, 0.5
    y0 = 0.1 * jax.random.normal(jax.random.key(0), (n,))
    dde = kl.Kuramoto(jnp.full(n, omega), kl.MeanField(K), delays=kl.Delays(tau))
    sdde = kl.Kuramoto(jnp.full(n, omega), kl.MeanField(K), delays=kl.Delays(tau),
                       noise=kl.Noise(1e-8))
    key = jax.random.key(1)
    det = kl.simulate(dde, y0, t1=10.0, dt=0.05, solver="heun")
    sto = kl.simulate(sdde, y0, t1=10.0, dt=0.05, solver="heun", key=key)
    assert_phase_allclose(sto.ys, det.ys, atol=1e-3)
    big, D, window = 400, 0.05, 5.0
    y0_big = 0.1 * jax.random.normal(jax.random.key(0), (big,))
    noisy = kl.Kuramoto(jnp.full(big, omega), kl.MeanField(K), delays=kl.Delays(tau),
                        noise=kl.Noise(D))
    a = kl.simulate(noisy, y0_big, t1=10.0, dt=0.05, solver="euler", key=key)
    b = kl.simulate(noisy, y0_big, t1=10.0, dt=0.05, solver="euler", key=key,
                    saveat=kl.SaveAt(every=5))
    np.testing.assert_array_equal(a.final, b.final)
    # Noisy delayed synchrony still rotates at about the delayed frequency. Budget: the
    # mean phase diffuses with D/N (sd of the window's mean frequency
    # sqrt(2 D W / N) / W = 0.007: 4 of them) and noise lowers R to ~1 - D/(2K), which
    # moves Omega = omega - K R sin(Omega tau) by at most K (1 - R).
    freq = kl.effective_frequencies(a, window=window)
    R = float(kl.theory.noisy_order_parameter(K, D))
    tol = 4 * np.sqrt(2 * D * window / big) / window + K * (1 - R)
    assert abs(float(jnp.mean(freq)) - _sync_frequency(omega, K, tau)) < tol, tol


def test_grad_through_delayed_model_matches_finite_difference(x64):
    n = 6
    omega = jnp.linspace(-0.4, 0.4, n)
    y0 = kl.random_phases(jax.random.key(0), n)

    def loss(K):
        model = kl.Kuramoto(omega, kl.MeanField(K), delays=kl.Delays(0.37))
        tr = kl.simulate(model, y0, t1=4.0, dt=0.05, saveat=kl.SaveAt(final=True))
        return jnp.abs(kl.order_parameter(tr.final))

    g = jax.grad(loss)(1.5)
    eps = 1e-5
    fd = (loss(1.5 + eps) - loss(1.5 - eps)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


@pytest.mark.slow
def test_vmap_over_coupling_and_delays(x64):
    n = 6
    omega = jnp.linspace(-0.4, 0.4, n)
    y0 = kl.random_phases(jax.random.key(0), n)

    def loss(K):
        model = kl.Kuramoto(omega, kl.MeanField(K), delays=kl.Delays(0.37))
        tr = kl.simulate(model, y0, t1=4.0, dt=0.05, saveat=kl.SaveAt(final=True))
        return jnp.abs(kl.order_parameter(tr.final))

    Ks = jnp.array([0.5, 1.5])
    np.testing.assert_allclose(jax.vmap(loss)(Ks)[1], loss(1.5), rtol=1e-10)

    def by_tau(tau):
        model = kl.Kuramoto(omega, kl.MeanField(1.5), delays=kl.Delays(tau, max_delay=1.0))
        return kl.simulate(model, y0, t1=4.0, dt=0.05, saveat=kl.SaveAt(final=True)).final

    out = jax.vmap(by_tau)(jnp.array([0.2, 0.9]))
    direct = kl.simulate(kl.Kuramoto(omega, kl.MeanField(1.5), delays=kl.Delays(0.9)), y0,
                         t1=4.0, dt=0.05, saveat=kl.SaveAt(final=True)).final
    assert_phase_allclose(out[1], direct, atol=1e-10)


def _delayed(tau=0.5, **kw):
    return kl.Kuramoto(jnp.zeros(3), kl.MeanField(1.0), delays=kl.Delays(tau, **kw))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: kl.Delays(-0.1), ValueError, r"`tau` must be >= 0"),
        (lambda: kl.Delays(jnp.array([0.1, jnp.inf])), ValueError, "`tau` must be finite"),
        (lambda: kl.Delays(1.5, convention="kuranet"), ValueError, "whole numbers"),
        (lambda: kl.Delays(1.0, convention="kuramet"), ValueError, "did you mean 'kuranet'"),
        (lambda: kl.Kuramoto(jnp.zeros(3), kl.MeanField(1.0), delays=kl.Delays(jnp.ones(2))),
         ValueError, r"`delays.tau`.*\(3,\)"),
        (lambda: kl.simulate(_delayed(0.05), jnp.zeros(3), t1=1.0, dt=0.1),
         ValueError, "shorter than the step"),
        (lambda: kl.simulate(_delayed(), jnp.zeros(3), t1=1.0, dt=0.1, solver="tsit5",
                             stepsize_controller=dfx.PIDController(rtol=1e-3, atol=1e-3)),
         ValueError, "need a fixed step"),
        (lambda: kl.simulate(_delayed(), jnp.zeros(3), t1=1.0, dt=0.1, solver="dopri5"),
         ValueError, r"need solver in \('euler', 'heun', 'rk4'\)"),
        (lambda: kl.simulate(_delayed(3.0, convention="kuranet"), jnp.zeros(3), t1=1.0,
                             dt=0.1, solver="rk4"), ValueError, "use solver='euler'"),
    ],
)
def test_bad_delay_input(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_traced_delays_need_a_bound():
    def run(tau):
        model = kl.Kuramoto(jnp.zeros(3), kl.MeanField(1.0), delays=kl.Delays(tau))
        return kl.simulate(model, jnp.zeros(3), t1=1.0, dt=0.1).final

    with pytest.raises(ValueError, match="max_delay"):
        jax.vmap(run)(jnp.array([0.2, 0.3]))


def _split_run(model, y0, t_split, t1, dt, solver):
    """One run over [0, t1] and the same run as two segments joined by the carried
    delay buffer (the second segment renumbered to start at t0 = 0 again)."""
    from kuralab._integrate.simulate import initial_history, simulate_carrying

    full = kl.simulate(model, y0, t1=t1, dt=dt, solver=solver)
    kw = dict(dt=dt, solver=solver)
    y, hist = initial_history(model, y0, t1=t_split, **kw)
    a, hist = simulate_carrying(model, y, hist, t1=t_split, **kw)
    b, _ = simulate_carrying(model, a.final, hist, t0=0.0, t1=t1 - t_split, **kw)
    return full, a, b


@pytest.mark.slow
@pytest.mark.parametrize("history, convention, solver", [
    ("constant", "physical", "rk4"),
    (lambda t: 0.4 * jnp.sin(1.3 * t) * jnp.arange(5.0), "physical", "heun"),
    ("constant", "kuranet", "euler"),
])
def test_carried_history_continues_the_run_exactly(x64, history, convention, solver):
    """Segment 1, then segment 2 from its carried buffer, equals one run over both (the
    same arithmetic up to the buffer's renumbering: x64 rounding, 1e-10). Delays off the
    grid, a zero delay, and a first segment (3.0) longer than the longest delay (1.3)."""
    tau = jnp.array([1.0, 0.73, 1.3, 0.0, 0.55])
    if convention == "kuranet":
        tau = jnp.array([20.0, 7.0, 26.0, 0.0, 11.0])  # steps of dt = 0.05
    delays = kl.Delays(tau, history=history, convention=convention)
    model = kl.Kuramoto(jnp.linspace(-1.0, 1.0, 5), kl.MeanField(1.5), delays=delays)
    full, a, b = _split_run(model, jnp.linspace(-2.0, 2.0, 5), 3.0, 6.0, 0.05, solver)
    n = a.ys.shape[0] - 1
    assert_phase_allclose(a.ys, full.ys[: n + 1], atol=1e-10)
    assert_phase_allclose(b.ys, full.ys[n:], atol=1e-10)
    np.testing.assert_allclose(b.ts, full.ts[n:] - full.ts[n], atol=1e-12)


def test_carried_history_rejects_a_foreign_buffer():
    from kuralab._integrate.simulate import initial_history, simulate_carrying

    y0 = jnp.zeros(4)
    short = kl.Kuramoto(jnp.ones(4), kl.MeanField(1.0), delays=kl.Delays(0.5))
    long = kl.Kuramoto(jnp.ones(4), kl.MeanField(1.0), delays=kl.Delays(1.5))
    _, hist = initial_history(short, y0, t1=1.0, dt=0.1)
    with pytest.raises(ValueError, match="`history` must be a buffer of shape"):
        simulate_carrying(long, y0, hist, t1=1.0, dt=0.1)
    with pytest.raises(ValueError, match="segments must share the step grid"):
        simulate_carrying(short, y0, hist, t1=1.1, dt=0.11)  # same length, other grid
    with pytest.raises(ValueError, match="`model` must have delays"):
        simulate_carrying(kl.Kuramoto(jnp.ones(4), kl.MeanField(1.0)), y0, hist,
                          t1=1.0, dt=0.1)
