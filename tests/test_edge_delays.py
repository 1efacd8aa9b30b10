"""Per-edge delays (`kl.EdgeDelays`): agreement with per-sender delays when tau_ij = tau_j,
an independent NumPy per-edge method of steps, RK4's fourth order with delays off the
grid, distance-over-speed delays, SDDEs, grad (incl. d/dspeed) and vmap, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab.testing import assert_phase_allclose


def _graph(n, k, seed=0):
    """A random directed graph, k in-edges per node, weights U(0.2, 1)/k."""
    rng = np.random.default_rng(seed)
    r = np.repeat(np.arange(n), k)
    s = rng.integers(0, n, n * k)
    w = rng.uniform(0.2, 1.0, n * k) / k
    return r, s, w


def _final(model, y0, **kw):
    tr = kl.simulate(model, y0, saveat=kl.SaveAt(final=True), **kw)
    return np.asarray(tr.final + 2 * np.pi * tr.final_turns)


def _per_sender_case(n=12):
    r, s, w = _graph(n, 3)
    rng = np.random.default_rng(1)
    tau_j = rng.uniform(0.1, 0.9, n)
    tau_j[[2, 7]] = 0.0  # zero delays read the present
    omega = jnp.asarray(rng.normal(0, 1, n))
    y0 = jnp.asarray(rng.uniform(-3, 3, n))
    return r, s, w, tau_j, omega, y0, rng


@pytest.mark.slow
def test_edge_delays_equal_per_sender_when_tau_ij_is_tau_j_rk4(x64):
    # Same equation, same Hermite reads: only the summation order differs (x64 rounding).
    r, s, w, tau_j, omega, y0, _ = _per_sender_case()
    sparse = kl.SparseCoupling(r, s, w, n=omega.shape[0], strength=1.7)
    kw = dict(t1=3.0, dt=0.05)
    a = _final(kl.Kuramoto(omega, sparse, lag=0.3, delays=kl.Delays(tau_j)), y0, **kw)
    b = _final(kl.Kuramoto(omega, sparse, lag=0.3, delays=kl.EdgeDelays(tau_j[s])), y0, **kw)
    np.testing.assert_allclose(b, a, atol=1e-10)


@pytest.mark.slow
def test_edge_delays_equal_per_sender_when_tau_ij_is_tau_j(x64):
    n = 12
    r, s, w, tau_j, omega, y0, rng = _per_sender_case(n)
    sparse = kl.SparseCoupling(r, s, w, n=n, strength=1.7)
    kw = dict(t1=6.0, dt=0.05)
    for solver in ("heun", "euler"):
        a = _final(kl.Kuramoto(omega, sparse, lag=0.3, delays=kl.Delays(tau_j)), y0,
                   solver=solver, **kw)
        b = _final(kl.Kuramoto(omega, sparse, lag=0.3, delays=kl.EdgeDelays(tau_j[s])), y0,
                   solver=solver, **kw)
        np.testing.assert_allclose(b, a, atol=1e-10, err_msg=solver)
    dense = kl.DenseCoupling(jnp.asarray(rng.uniform(0, 1, (n, n)) / n))
    a = _final(kl.Kuramoto(omega, dense, delays=kl.Delays(tau_j)), y0, **kw)
    b = _final(kl.Kuramoto(omega, dense, delays=kl.EdgeDelays(np.tile(tau_j, (n, 1)))),
               y0, **kw)
    np.testing.assert_allclose(b, a, atol=1e-10)


@pytest.mark.slow
def test_dense_mean_field_and_sparse_edge_delays_agree(x64):
    n = 8
    rng = np.random.default_rng(2)
    tau = rng.uniform(0.1, 0.8, (n, n))
    omega = jnp.asarray(rng.normal(0, 0.5, n))
    y0 = jnp.asarray(rng.uniform(-3, 3, n))
    kw = dict(t1=5.0, dt=0.05)
    mf = _final(kl.Kuramoto(omega, kl.MeanField(1.3), delays=kl.EdgeDelays(tau)), y0, **kw)
    dense = _final(kl.Kuramoto(omega, kl.DenseCoupling(jnp.full((n, n), 1.3 / n)),
                               delays=kl.EdgeDelays(tau)), y0, **kw)
    K = rng.uniform(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.5)
    sp = kl.SparseCoupling.from_dense(K)
    r, s = np.asarray(sp.receivers), np.asarray(sp.senders)
    a = _final(kl.Kuramoto(omega, kl.DenseCoupling(K), delays=kl.EdgeDelays(tau)), y0, **kw)
    b = _final(kl.Kuramoto(omega, sp, delays=kl.EdgeDelays(tau[r, s])), y0, **kw)
    np.testing.assert_allclose(dense, mf, atol=1e-10)
    np.testing.assert_allclose(b, a, atol=1e-10)


def _numpy_edge_rk4(omega, r, s, w, tau, lag, y0, t1, dt):
    """Independent reference: float64 RK4 over a stored full history, each edge's past
    read by cubic Hermite interpolation (np.searchsorted), constant pre-history."""
    n, steps = y0.size, round(t1 / dt)
    ts = np.arange(steps + 1) * dt
    ys, ds = np.zeros((steps + 1, n)), np.zeros((steps + 1, n))

    def f(t, y, known):
        past = np.empty(r.size)
        for e in range(r.size):
            q, j = t - tau[e], s[e]
            if tau[e] == 0:
                past[e] = y[j]
            elif q <= 0:
                past[e] = y0[j]
            else:
                i = min(np.searchsorted(ts[: known + 1], q) - 1, known - 1)
                u = (q - ts[i]) / dt
                a, b, da, db = ys[i, j], ys[i + 1, j], ds[i, j], ds[i + 1, j]
                past[e] = ((2 * u**3 - 3 * u**2 + 1) * a + (u**3 - 2 * u**2 + u) * dt * da
                           + (-2 * u**3 + 3 * u**2) * b + (u**3 - u**2) * dt * db)
        return omega + np.bincount(r, w * np.sin(past - y[r] - lag), minlength=n)

    ys[0] = y0
    for k in range(steps):
        t, y = ts[k], ys[k]
        k1 = f(t, y, max(k - 1, 0))
        ds[k] = k1
        k2 = f(t + dt / 2, y + dt / 2 * k1, k)
        k3 = f(t + dt / 2, y + dt / 2 * k2, k)
        k4 = f(t + dt, y + dt * k3, k)
        ys[k + 1] = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return ys[-1]


def test_edge_delays_match_numpy_per_edge_method_of_steps(x64):
    n = 5
    r, s, w = _graph(n, 3, seed=3)
    rng = np.random.default_rng(4)
    tau = rng.uniform(0.12, 0.7, r.size)  # off the grid, several per sender
    tau[4] = 0.0
    omega, y0 = rng.normal(0, 1, n), rng.uniform(-3, 3, n)
    # same scheme, float64: only rounding differs (~1e-15 per step)
    ref = _numpy_edge_rk4(omega, r, s, w, tau, 0.2, y0, 1.0, 0.05)
    model = kl.Kuramoto(jnp.asarray(omega), kl.SparseCoupling(r, s, w, n=n), lag=0.2,
                        delays=kl.EdgeDelays(tau))
    got = _final(model, jnp.asarray(y0), t1=1.0, dt=0.05)
    np.testing.assert_allclose(got, ref, atol=1e-11)


@pytest.mark.slow
def test_edge_delay_rk4_fourth_order_off_grid(x64):
    # The restart trick of test_delays: the history is a degree-12 fit of the network's own
    # accurate solution, so no derivative jumps at t0 + tau_e cap the order.
    n = 5
    r, s, w = _graph(n, 3, seed=5)
    rng = np.random.default_rng(6)
    tau = rng.uniform(0.21, 0.83, r.size)  # not multiples of any dt used, >= dt
    omega = jnp.asarray(rng.uniform(0.5, 1.5, n))
    coupling = kl.SparseCoupling(r, s, 3 * w, n=n)
    model = kl.Kuramoto(omega, coupling, delays=kl.EdgeDelays(tau))
    t_a, dt = 3.0, 3.0 / 3072
    tr = kl.simulate(model, jnp.asarray(rng.uniform(-1, 1, n)), t1=t_a, dt=dt)
    keep = np.asarray(tr.ts) >= t_a - 0.9
    coeffs = jnp.asarray(np.polyfit(np.asarray(tr.ts)[keep] - t_a,
                                    np.asarray(tr.unwrapped())[keep], 12))

    def history(t):
        out = jnp.zeros(n)
        for c in coeffs:
            out = out * (t - t_a) + c
        return out

    restarted = kl.Kuramoto(omega, coupling, delays=kl.EdgeDelays(tau, history=history))
    ya = history(t_a)
    ref = _final(restarted, ya, t0=t_a, t1=t_a + 2.0, dt=2.0 / 4096)
    dts = np.array([0.2, 0.1, 0.05, 0.025])
    errors = [np.max(np.abs(_final(restarted, ya, t0=t_a, t1=t_a + 2.0, dt=h) - ref))
              for h in dts]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - 4) < 0.3, (slope, errors)


def test_from_positions_distance_over_speed():
    n = 7
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 2, (n, 2))
    r, s, _ = _graph(n, 2, seed=8)
    sp = kl.SparseCoupling(r, s, n=n)
    d = kl.EdgeDelays.from_positions(x, 4.0, sp)
    np.testing.assert_allclose(d.tau, np.linalg.norm(x[r] - x[s], axis=1) / 4.0, rtol=1e-6)
    full = kl.EdgeDelays.from_positions(x, 4.0, kl.MeanField(1.0))
    np.testing.assert_allclose(
        full.tau, np.linalg.norm(x[:, None] - x[None], axis=-1) / 4.0, rtol=1e-6)
    # a ring of circumference 10 in a periodic box: arc length min(|d|, 10 - |d|)
    a = np.linspace(0, 10, n, endpoint=False)
    ring = kl.EdgeDelays.from_positions(a, 2.0, kl.DenseCoupling(np.ones((n, n))), box=10.0)
    gap = np.abs(a[:, None] - a[None])
    np.testing.assert_allclose(ring.tau, np.minimum(gap, 10 - gap) / 2.0, atol=1e-6)


@pytest.mark.slow
def test_grad_through_edge_delays_and_speed_matches_finite_difference(x64):
    n = 6
    r, s, w = _graph(n, 2, seed=9)
    omega = jnp.linspace(-0.4, 0.4, n)
    y0 = kl.random_phases(jax.random.key(0), n)
    x = jnp.asarray(np.random.default_rng(10).uniform(0, 1, (n, 2)))

    def loss(K, speed):
        coupling = kl.SparseCoupling(r, s, w, n=n, strength=K)
        d = kl.EdgeDelays.from_positions(x, speed, coupling, max_delay=2.0)
        model = kl.Kuramoto(omega, coupling, delays=d)
        tr = kl.simulate(model, y0, t1=4.0, dt=0.05, saveat=kl.SaveAt(final=True))
        return jnp.abs(kl.order_parameter(tr.final))

    g = jax.grad(loss, argnums=(0, 1))(1.5, 1.2)
    eps = 1e-5
    fd_K = (loss(1.5 + eps, 1.2) - loss(1.5 - eps, 1.2)) / (2 * eps)
    fd_v = (loss(1.5, 1.2 + eps) - loss(1.5, 1.2 - eps)) / (2 * eps)
    # central differences: truncation ~eps^2 * f''' and rounding ~1e-16 / eps ~ 1e-11
    np.testing.assert_allclose(g, (fd_K, fd_v), rtol=1e-5)
    assert abs(float(g[1])) > 1e-4  # the delay derivative is not trivially zero

    # d/dtau_e directly: the gradient along a direction in edge-delay space
    tau0 = jnp.asarray(np.random.default_rng(12).uniform(0.2, 0.9, r.size))
    direction = jnp.asarray(np.random.default_rng(13).normal(size=r.size))

    def by_tau(tau):
        model = kl.Kuramoto(omega, kl.SparseCoupling(r, s, w, n=n, strength=1.5),
                            delays=kl.EdgeDelays(tau, max_delay=1.0))
        tr = kl.simulate(model, y0, t1=4.0, dt=0.05, saveat=kl.SaveAt(final=True))
        return jnp.abs(kl.order_parameter(tr.final))

    g_tau = jnp.dot(jax.grad(by_tau)(tau0), direction)
    fd_tau = (by_tau(tau0 + eps * direction) - by_tau(tau0 - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(g_tau, fd_tau, rtol=1e-5)


@pytest.mark.slow
def test_vmap_over_conduction_speed():
    n = 10
    r = np.repeat(np.arange(n), 2)
    s = np.stack([(np.arange(n) + 1) % n, (np.arange(n) - 1) % n], 1).ravel()
    coupling = kl.SparseCoupling(r, s, jnp.full(2 * n, 0.5), n=n)
    x = np.linspace(0, n, n, endpoint=False)
    omega = jnp.ones(n)
    y0 = 0.1 * jax.random.normal(jax.random.key(1), (n,))

    def run(speed, max_delay=None):
        d = kl.EdgeDelays.from_positions(x, speed, coupling, box=float(n), max_delay=max_delay)
        return kl.simulate(kl.Kuramoto(omega, coupling, delays=d), y0, t1=3.0, dt=0.05,
                           saveat=kl.SaveAt(final=True)).final

    out = jax.jit(jax.vmap(lambda v: run(v, 1.0)))(jnp.array([2.0, 4.0]))
    assert_phase_allclose(out[0], run(2.0), atol=2e-6)
    assert_phase_allclose(out[1], run(4.0), atol=2e-6)
    assert float(jnp.max(jnp.abs(out[0] - out[1]))) > 1e-3  # the speed matters


@pytest.mark.slow
def test_sdde_with_edge_delays():
    n, tau = 16, 0.5
    r, s, w = _graph(n, 4, seed=11)
    coupling = kl.SparseCoupling(r, s, np.full(r.size, 0.25), n=n)
    y0 = 0.1 * jax.random.normal(jax.random.key(0), (n,))
    omega = jnp.ones(n)
    det = kl.Kuramoto(omega, coupling, delays=kl.EdgeDelays(np.full(r.size, tau)))
    sto = kl.Kuramoto(omega, coupling, delays=kl.EdgeDelays(np.full(r.size, tau)),
                      noise=kl.Noise(1e-8))
    key = jax.random.key(2)
    a = kl.simulate(det, y0, t1=10.0, dt=0.05, solver="heun")
    b = kl.simulate(sto, y0, t1=10.0, dt=0.05, solver="heun", key=key)
    # sqrt(2 D T) ~ 4e-4 of diffusion, damped by the coupling
    assert_phase_allclose(b.ys, a.ys, atol=1e-3)
    per_sender = kl.Kuramoto(omega, coupling, delays=kl.Delays(tau), noise=kl.Noise(0.05))
    per_edge = kl.Kuramoto(omega, coupling, delays=kl.EdgeDelays(np.full(r.size, tau)),
                           noise=kl.Noise(0.05))
    c = kl.simulate(per_sender, y0, t1=10.0, dt=0.05, solver="euler", key=key)
    d = kl.simulate(per_edge, y0, t1=10.0, dt=0.05, solver="euler", key=key)
    assert_phase_allclose(d.final, c.final, atol=1e-4)  # same path, same equation


def _ring_model(tau, n=4):
    r = np.arange(n)
    coupling = kl.SparseCoupling(r, (r + 1) % n, n=n)
    return kl.Kuramoto(jnp.zeros(n), coupling, delays=kl.EdgeDelays(tau))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: kl.EdgeDelays(jnp.array([0.1, -0.2])), ValueError, r"`tau` must be >= 0"),
        (lambda: kl.EdgeDelays(jnp.array([0.1, jnp.nan])), ValueError, "`tau` must be finite"),
        (lambda: kl.EdgeDelays(jnp.ones((2, 3))), ValueError, r"\(edges,\).*\(osc, osc\)"),
        (lambda: _ring_model(np.ones(3)), ValueError, r"`delays.tau` must have shape \(4,\)"),
        (lambda: kl.Kuramoto(jnp.zeros(3), kl.MeanField(1.0), delays=kl.EdgeDelays(np.ones(3))),
         ValueError, r"`delays.tau` must have shape \(3, 3\)"),
        (lambda: kl.Kuramoto(jnp.zeros(3), kl.LatticeCoupling(jnp.ones(3), (3,)),
                             delays=kl.EdgeDelays(np.ones(3))), TypeError, "coupling with edges"),
        (lambda: kl.simulate(_ring_model(np.array([0.5, 0.05, 0.5, 0.0])), jnp.zeros(4),
                             t1=1.0, dt=0.1), ValueError, "shorter than the step"),
        (lambda: kl.EdgeDelays.from_positions(np.zeros((3, 2)), 0.0, kl.MeanField(1.0)),
         ValueError, r"`speed` must be > 0"),
        (lambda: kl.EdgeDelays.from_positions(np.zeros((3, 2)), 1.0,
                                              kl.DenseCoupling(np.ones((4, 4)))),
         ValueError, "`positions` has 3 oscillators"),
        (lambda: kl.EdgeDelays.from_positions(np.zeros((3, 2)), 1.0, kl.MeanField(1.0),
                                              box=[1.0, 1.0, 1.0]),
         ValueError, r"`box` must be a scalar or shape \(2,\)"),
    ],
)
def test_bad_edge_delay_input(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_traced_edge_delays_need_a_bound():
    def run(v):
        coupling = kl.MeanField(1.0)
        d = kl.EdgeDelays.from_positions(np.arange(3.0), v, coupling)
        return kl.simulate(kl.Kuramoto(jnp.zeros(3), coupling, delays=d), jnp.zeros(3),
                           t1=1.0, dt=0.1).final

    with pytest.raises(ValueError, match="max_delay"):
        jax.vmap(run)(jnp.array([20.0, 30.0]))


@pytest.mark.slow
def test_carried_edge_delay_history_continues_the_run_exactly(x64):
    """Per-edge delays share the `(slots, osc)` buffer: segment 1 then segment 2 from the
    carried buffer equals one run (x64 rounding, 1e-10)."""
    from kuralab._integrate.simulate import initial_history, simulate_carrying

    r, s, w, tau_j, omega, y0, rng = _per_sender_case(n=8)
    tau = rng.uniform(0.1, 0.9, s.shape[0])
    tau[3] = 0.0
    model = kl.Kuramoto(omega, kl.SparseCoupling(r, s, w, n=8, strength=1.7),
                        delays=kl.EdgeDelays(tau))
    kw = dict(dt=0.05, solver="rk4")
    full = kl.simulate(model, y0, t1=4.0, **kw)
    y, hist = initial_history(model, y0, t1=2.0, **kw)
    a, hist = simulate_carrying(model, y, hist, t1=2.0, **kw)
    b, _ = simulate_carrying(model, a.final, hist, t1=2.0, **kw)
    assert_phase_allclose(b.ys, full.ys[40:], atol=1e-10)
