"""simulate: convergence orders, save policies, adaptive vs fixed, jit/vmap/grad, errors."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab.testing import assert_phase_allclose, check_model_contract

N = 8


def _model(key, n=N, K=1.5, lag=0.3, dtype=None):
    k1, k2 = jax.random.split(key)
    omega = jax.random.normal(k1, (n,), dtype=dtype)
    K_ij = K * jax.random.uniform(k2, (n, n), dtype=dtype) / n
    return kl.Kuramoto(omega, kl.DenseCoupling(K_ij), lag=lag)


# Convergence orders of every named solver: tests/test_solver_order.py (one compile
# per solver instead of five).


def test_adaptive_agrees_with_fixed_step(x64, getkey):
    model = _model(getkey(), dtype=jnp.float64)
    y0 = kl.random_phases(getkey(), N)
    fixed = kl.simulate(model, y0, t1=5.0, dt=0.01)
    adaptive = kl.simulate(
        model, y0, t1=5.0, dt=0.01, solver="tsit5",
        stepsize_controller=dfx.PIDController(rtol=1e-9, atol=1e-9),
    )
    # Same default save grid (every dt), interpolated by the adaptive solver.
    np.testing.assert_allclose(adaptive.ts, fixed.ts, atol=1e-12)
    assert_phase_allclose(adaptive.ys, fixed.ys, atol=1e-6)
    np.testing.assert_array_equal(adaptive.final_turns, fixed.final_turns)
    assert adaptive.stats["num_steps"] < 500  # it really adapted


def test_implicit_solver_agrees_with_fixed_step(x64, getkey):
    # Implicit (stiff) diffrax solvers run through the retracting wrapper too; with an
    # adaptive controller diffrax sets their root finder's tolerances through it.
    model = _model(getkey(), dtype=jnp.float64)
    y0 = kl.random_phases(getkey(), N)
    fixed = kl.simulate(model, y0, t1=2.0, dt=0.005, saveat=kl.SaveAt(final=True))
    implicit = kl.simulate(
        model, y0, t1=2.0, dt=0.01, solver=dfx.Kvaerno3(),
        stepsize_controller=dfx.PIDController(rtol=1e-8, atol=1e-8),
        saveat=kl.SaveAt(final=True),
    )
    assert_phase_allclose(implicit.final, fixed.final, atol=1e-5)


def test_save_policies(getkey):
    model = _model(getkey())
    y0 = kl.random_phases(getkey(), N)
    every = kl.simulate(model, y0, t1=1.0, dt=0.1)
    assert every.ys.shape == (11, N)
    np.testing.assert_allclose(every.ts, np.linspace(0, 1, 11), atol=1e-6)
    third = kl.simulate(model, y0, t1=1.0, dt=0.1, saveat=kl.SaveAt(every=3))
    np.testing.assert_allclose(third.ts, [0.0, 0.3, 0.6, 0.9, 1.0], atol=1e-6)
    assert_phase_allclose(third.ys, every.ys[jnp.array([0, 3, 6, 9, 10])], atol=1e-6)
    final = kl.simulate(model, y0, t1=1.0, dt=0.1, saveat=kl.SaveAt(final=True))
    assert final.ys.shape == (1, N)
    assert_phase_allclose(final.final, every.ys[-1], atol=1e-6)
    ts = jnp.array([0.0, 0.25, 0.5])
    at_ts = kl.simulate(model, y0, t1=1.0, dt=0.05, saveat=kl.SaveAt(ts=ts))
    fine = kl.simulate(model, y0, t1=1.0, dt=0.05)
    assert_phase_allclose(at_ts.ys[2], fine.ys[10], atol=1e-6)
    # dense output between steps: compare to a run whose grid hits 0.25
    # 0.25 lies on the dt = 0.05 grid: the saved state is that step's (one compile less
    # than a separate run to t1 = 0.25)
    assert_phase_allclose(at_ts.ys[1], fine.ys[5], atol=1e-6)


def test_saveat_fn_saves_observable(getkey):
    model = _model(getkey())
    y0 = kl.random_phases(getkey(), N)
    tr = kl.simulate(model, y0, t1=1.0, dt=0.1, saveat=kl.SaveAt(fn=_order))
    full = kl.simulate(model, y0, t1=1.0, dt=0.1)
    assert tr.turns is None and tr.ys.shape == (11,)
    np.testing.assert_allclose(tr.ys, np.abs(np.mean(np.exp(1j * full.ys), -1)), atol=1e-5)


def _order(t, theta):
    return jnp.abs(jnp.mean(jnp.exp(1j * theta)))


def test_phases_stay_wrapped_and_unwrap_exactly():
    # Fast uncoupled rotation: theta(t) = theta0 + omega t, far beyond 2 pi.
    omega = jnp.array([3.0, -7.0, 0.5])
    model = kl.Kuramoto(omega, kl.MeanField(0.0))
    y0 = jnp.array([0.1, -0.2, 3.0])
    tr = kl.simulate(model, y0, t1=20.0, dt=0.01)
    assert bool(jnp.all((tr.ys >= -jnp.pi) & (tr.ys < jnp.pi)))
    expected = y0 + omega * tr.ts[:, None]
    np.testing.assert_allclose(tr.unwrapped(), expected, rtol=1e-5, atol=2e-4)
    assert_phase_allclose(tr.ys, expected, atol=2e-4)


def test_float32_wrapping_keeps_precision():
    # DESIGN §4: unwrapped float32 phases lose precision; wrapped ones do not.
    omega = jnp.array([5.3, 4.1], dtype=jnp.float32)
    model = kl.Kuramoto(omega, kl.MeanField(0.0))
    tr = kl.simulate(model, jnp.zeros(2), t1=2000.0, dt=0.05, saveat=kl.SaveAt(final=True))
    w = np.asarray(omega, dtype=np.float64)  # the float32 frequencies, exactly
    exact = np.mod(w * 2000.0 + np.pi, 2 * np.pi) - np.pi
    # Error budget (n = 40000 steps, u = 2**-24): the float32 increment of a step is
    # rounded identically every step: dt's representation, omega * dt, the RK4 weight's
    # representation (1/6, 1/3) and its product each round once, so the increment is off
    # by <= 4 u |omega dt| per step, systematically (n times); adding the four weighted
    # stages to a wrapped phase (|theta| <= pi) rounds by <= ulp(pi)/2 each, a random
    # walk that 3 sqrt(n) ulp(pi) covers. Measured 1.7e-3 and 3.9e-4 rad (budget 2.5e-3,
    # 2.0e-3). Unwrapped float32 phases (|theta| ~ 1e4, ulp ~ 1e-3) would drift ~0.1 rad.
    n, u = 40000, 2.0**-24
    budget = 4 * n * u * np.abs(w * 0.05) + 3 * np.sqrt(n) * np.spacing(np.float32(np.pi))
    err = np.abs(np.angle(np.exp(1j * (np.asarray(tr.final, np.float64) - exact))))
    assert np.all(err <= budget), (err, budget)


def _contract_couplings(n):
    key = jax.random.key(7)
    dense = np.asarray(jax.random.uniform(key, (n, n))) / n
    kernel = jnp.array([[0.1, 0.2, 0.1], [0.2, 0.0, 0.2], [0.1, 0.2, 0.1]])
    return {
        "mean_field": kl.MeanField(1.0),
        "dense": kl.DenseCoupling(dense),
        "sparse": kl.SparseCoupling.from_dense(dense),
        "lattice": kl.LatticeCoupling(kernel, (3, 3)),
    }


@pytest.mark.parametrize(
    "coupling",
    [
        "mean_field",
        # dense: the same contract path as mean_field with a matrix coupling (~70 s of
        # compilation on a loaded machine); DenseCoupling's jit/vmap/grad stay in the
        # default suite through test_model_contract.py and the sphere contract tests.
        pytest.param("dense", marks=pytest.mark.slow),
        pytest.param("sparse", marks=pytest.mark.slow),
        pytest.param("lattice", marks=pytest.mark.slow),
    ],
)
def test_model_contract(coupling):
    n = 9
    omega = jax.random.normal(jax.random.key(0), (n,))
    y0 = kl.random_phases(jax.random.key(1), n)
    c = _contract_couplings(n)[coupling]
    check_model_contract(kl.Kuramoto(omega, c, lag=0.2, forcing=kl.Forcing(0.3, 1.0)), y0)


def test_contract_check_catches_hidden_arrays(getkey):
    import equinox as eqx

    class Leaky(kl.AbstractPhaseModel):
        omega: jax.Array = eqx.field(static=True)

        @property
        def state_shape(self):
            return self.omega.shape

        @property
        def sender_delays(self):
            return None

        def diffusion(self, t, y):
            return None

        def drift(self, t, y, y_delayed=None):
            return self.omega + 0 * y

    with pytest.warns(UserWarning, match="static"):
        leaky = Leaky(jnp.ones(3))
    with pytest.raises(AssertionError, match="hidden in static fields"):
        check_model_contract(leaky, jnp.zeros(3))


def _backend_compiles(fn, *args):
    """Run fn(*args); return (result, number of XLA backend compilations it caused)."""
    events = []

    def listen(name, duration, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            events.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        out = jax.block_until_ready(fn(*args))
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return out, len(events)


def test_vmap_over_parameters_compiles_once(getkey):
    omega = jax.random.normal(getkey(), (N,))
    y0 = kl.random_phases(getkey(), N)

    def final_R(K):
        tr = kl.simulate(kl.Kuramoto(omega, kl.MeanField(K)), y0, t1=2.0, dt=0.1,
                         saveat=kl.SaveAt(final=True))
        return jnp.abs(kl.order_parameter(tr.final))

    batched_R = jax.vmap(final_R)
    Ks = jnp.array([0.0, 1.0, 4.0, 2.5])
    batched, first = _backend_compiles(batched_R, Ks)
    # New parameter values of the same shape reuse every compilation.
    _, again = _backend_compiles(batched_R, Ks + 0.25)
    assert first > 0 and again == 0, (first, again)
    for K, r in zip(Ks, batched, strict=True):
        np.testing.assert_allclose(r, final_R(K), rtol=1e-5)
    assert batched[2] > batched[0]


def test_grad_through_simulate_matches_finite_difference(x64, getkey):
    omega = jax.random.normal(getkey(), (N,), dtype=jnp.float64)
    y0 = kl.random_phases(getkey(), N)

    def loss(K):
        tr = kl.simulate(kl.Kuramoto(omega, kl.MeanField(K)), y0, t1=3.0, dt=0.05,
                         saveat=kl.SaveAt(final=True))
        return jnp.abs(kl.order_parameter(tr.final))

    g = jax.grad(loss)(1.3)
    eps = 1e-5
    fd = (loss(1.3 + eps) - loss(1.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_failure_is_reported():
    # omega * dt overflows float32 in the first Euler step.
    model = kl.Kuramoto(jnp.array([3e38, 1.0], dtype=jnp.float32), kl.MeanField(0.0))
    with pytest.raises(kl.SimulationError, match=r"non-finite.*t = 2\."):
        kl.simulate(model, jnp.zeros(2), t1=10.0, dt=2.0, solver="euler")
    tr = kl.simulate(model, jnp.zeros(2), t1=10.0, dt=2.0, solver="euler", throw=False)
    assert tr.result == kl.RESULTS.nonfinite_state
    assert not bool(tr.succeeded)


def test_failure_under_jit_raises():
    model = kl.Kuramoto(jnp.array([3e38, 1.0], dtype=jnp.float32), kl.MeanField(0.0))

    @jax.jit
    def run(y0):
        return kl.simulate(model, y0, t1=10.0, dt=2.0, solver="euler").final

    with pytest.raises(Exception, match="non-finite"):
        jax.block_until_ready(run(jnp.zeros(2)))


def test_max_steps_reported(getkey):
    model = _model(getkey())
    y0 = kl.random_phases(getkey(), N)
    tr = kl.simulate(model, y0, t1=50.0, dt=0.1, solver="tsit5", max_steps=5,
                     stepsize_controller=dfx.PIDController(rtol=1e-8, atol=1e-8),
                     throw=False)
    assert tr.result == kl.RESULTS.max_steps_reached


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(dt=0.0), ValueError, r"`dt` must be > 0"),
        (dict(dt=-0.1), ValueError, r"`dt` must be > 0"),
        (dict(t1=0.0), ValueError, r"`t1` must be > `t0`"),
        (dict(t1=float("nan")), ValueError, r"`t1` must be finite"),
        (dict(solver="rk5"), ValueError, r"unknown solver 'rk5'.*did you mean 'rk4'"),
        (dict(y0=jnp.zeros(3)), ValueError, r"`y0` must have the model's state shape \(8,\)"),
        (dict(y0=jnp.full(N, jnp.nan)), ValueError, r"`y0` must be finite"),
        (dict(stepsize_controller=dfx.PIDController(rtol=1e-3, atol=1e-3)), ValueError,
         r"'rk4' has no error estimate"),
        (dict(saveat=kl.SaveAt(ts=jnp.array([0.5, 2.0]))), ValueError, r"within \[t0, t1\]"),
        (dict(saveat=kl.SaveAt(ts=jnp.array([0.5, 0.2]))), ValueError, "strictly increasing"),
        (dict(model="kuramoto"), TypeError, r"`model` must be a kuralab model"),
    ],
)
def test_bad_simulate_input(kwargs, error, match):
    args = dict(model=_model(jax.random.key(0)), y0=jnp.zeros(N), t1=1.0, dt=0.1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        kl.simulate(args.pop("model"), args.pop("y0"), **args)


def test_bad_saveat():
    with pytest.raises(ValueError, match="at most one"):
        kl.SaveAt(every=2, final=True)
    with pytest.raises(ValueError, match="positive int"):
        kl.SaveAt(every=0)


# ---------------------------------------------------------------------------------
# burn_in (truncated backpropagation, window-only saves) and adjoints
# ---------------------------------------------------------------------------------


def _burn_model(K=1.5, delays=None, noise=None, n=8):
    omega = jnp.linspace(-0.5, 0.5, n)
    return kl.Kuramoto(omega, kl.MeanField(K), delays=delays, noise=noise)


@pytest.mark.parametrize(
    "kind", ["plain", "kuranet_delays", "physical_delays", "noise_tree"]
)
def test_burn_in_saves_the_window_of_the_full_run(kind):
    extra, kw = {}, dict(solver="euler")
    if kind == "kuranet_delays":
        extra["delays"] = kl.Delays(jnp.arange(8) % 4, convention="kuranet")
    elif kind == "physical_delays":
        extra["delays"] = kl.Delays(0.35)
        kw = dict(solver="rk4")
    elif kind == "noise_tree":
        extra["noise"] = kl.Noise(0.05)
        kw = dict(solver="euler", key=jax.random.key(3))
    model = _burn_model(**extra)
    y0 = jnp.linspace(-3.0, 3.0, 8)
    full = kl.simulate(model, y0, t1=3.0, dt=0.1, **kw)
    win = kl.simulate(model, y0, t1=3.0, dt=0.1, burn_in=2.0, **kw)
    # saves start one step after the burn-in: no duplicate of its end state
    np.testing.assert_allclose(win.ts, full.ts[21:], rtol=0, atol=1e-5)
    np.testing.assert_allclose(win.ys, full.ys[21:], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(win.turns, full.turns[21:])
    assert win.burn_in == 2.0 and win.t0 == 0.0


def test_burn_in_truncates_the_gradient():
    y0 = jnp.linspace(-3.0, 3.0, 8)
    R = lambda t, th: jnp.abs(kl.order_parameter(th))  # noqa: E731

    def window_loss(K):
        traj = kl.simulate(_burn_model(K), y0, t1=3.0, dt=0.1, solver="euler",
                           burn_in=2.0, saveat=kl.SaveAt(every=1, fn=R))
        return jnp.mean(1 - traj.ys)

    def by_hand(K):  # two calls with an explicit stop_gradient in between
        warm = kl.simulate(_burn_model(K), y0, t1=2.0, dt=0.1, solver="euler",
                           saveat=kl.SaveAt(final=True))
        th = jax.lax.stop_gradient(warm.final + 2 * jnp.pi * warm.final_turns)
        traj = kl.simulate(_burn_model(K), th, t0=2.0, t1=3.0, dt=0.1, solver="euler",
                           saveat=kl.SaveAt(every=1, fn=R))
        return jnp.mean(1 - traj.ys[1:])  # drop the duplicate of t = 2

    assert window_loss(1.5).shape == ()
    np.testing.assert_allclose(window_loss(1.5), by_hand(1.5), rtol=1e-5)
    np.testing.assert_allclose(jax.grad(window_loss)(1.5), jax.grad(by_hand)(1.5),
                               rtol=1e-4)

    def untruncated(K):
        traj = kl.simulate(_burn_model(K), y0, t1=3.0, dt=0.1, solver="euler",
                           saveat=kl.SaveAt(every=1, fn=R))
        return jnp.mean(1 - traj.ys[21:])

    # the untruncated gradient differs: the burn-in's dependence on K is cut
    assert abs(float(jax.grad(untruncated)(1.5) - jax.grad(window_loss)(1.5))) > 1e-4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(burn_in=-1.0), r"`burn_in` must be in \[0, t1 - t0\)"),
        (dict(burn_in=1.0), r"`burn_in` must be in \[0, t1 - t0\)"),
        (dict(burn_in=0.25), r"`burn_in` must be a whole number of steps"),
        (dict(burn_in=0.5, saveat=kl.SaveAt(ts=jnp.array([0.2, 0.8]))),
         r"within \[t0 \+ burn_in, t1\]"),
        (dict(burn_in=0.5, solver="dopri5",
              stepsize_controller=dfx.PIDController(rtol=1e-3, atol=1e-3)),
         r"`burn_in` needs a fixed step"),
        (dict(adjoint=dfx.BacksolveAdjoint()),
         r"adjoint=BacksolveAdjoint\(\) is not supported.*RecursiveCheckpointAdjoint"),
    ],
)
def test_bad_burn_in_and_adjoint(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kl.simulate(_burn_model(), jnp.zeros(8), t1=1.0, dt=0.1, **kwargs)


def test_direct_adjoint_matches_the_default_gradient():
    def loss(K, adjoint):
        traj = kl.simulate(_burn_model(K), jnp.linspace(-1, 1, 8), t1=2.0, dt=0.1,
                           saveat=kl.SaveAt(final=True), adjoint=adjoint)
        return jnp.sum(jnp.cos(traj.final))

    g_default = jax.grad(lambda K: loss(K, None))(1.5)
    g_direct = jax.grad(lambda K: loss(K, dfx.DirectAdjoint()))(1.5)
    np.testing.assert_allclose(g_direct, g_default, rtol=1e-5)
    assert abs(float(g_default)) > 1e-3


def test_reverse_mode_through_increments_names_the_problem():
    def loss(K):
        model = _burn_model(K, noise=kl.Noise(0.05))
        traj = kl.simulate(model, jnp.linspace(-1, 1, 8), t1=1.0, dt=0.1,
                           key=jax.random.key(0), brownian="increments",
                           saveat=kl.SaveAt(final=True))
        return jnp.sum(jnp.cos(traj.final))

    with pytest.raises(ValueError, match=r"reverse-mode .*brownian='increments'.*"
                       r"brownian='tree'"):
        jax.grad(loss)(1.5)
    # forward mode still works and agrees with a central difference
    _, tangent = jax.jvp(loss, (1.5,), (1.0,))
    fd = (loss(1.5 + 1e-2) - loss(1.5 - 1e-2)) / 2e-2
    np.testing.assert_allclose(tangent, fd, rtol=2e-2, atol=1e-3)
