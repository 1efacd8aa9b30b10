"""Events (`kl.simulate_events`): crossing times against closed forms, the actions
against exact solutions of uncoupled or two-oscillator systems, the record, jit/vmap,
and one-line errors for bad input.

The closed form used throughout: two identical oscillators under `kl.MeanField(K)` have
phase difference phi = theta_0 - theta_1 with d(phi)/dt = -K sin(phi), so
tan(phi/2) = tan(phi0/2) exp(-K t) and R = |cos(phi/2)|; R reaches r at
t* = ln(tan(phi0/2) / tan(arccos r)) / K.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl

K, PHI0, R_STAR = 1.0, 2.5, 0.9


def _r_minus(t, y):
    return jnp.abs(kl.order_parameter(y)) - R_STAR


def _t_star(K=K, phi0=PHI0, r=R_STAR):
    return np.log(np.tan(phi0 / 2) / np.tan(np.arccos(r))) / K


def _pair(K=K):
    return kl.Kuramoto(jnp.zeros(2), kl.MeanField(K)), jnp.array([PHI0 / 2, -PHI0 / 2])


@pytest.mark.slow
def test_stop_when_r_crosses_float64(x64):
    # Error budget: Newton on the RK4 step's cubic Hermite interpolant to root_tol =
    # 1e-10; interpolation error O(dt^4) ~ 1e-8 at dt = 0.01 (R'' ~ 1): far below 1e-6.
    model, y0 = _pair()
    tr = kl.simulate_events(
        model, y0, t1=20.0, dt=0.01, events=[kl.When(_r_minus, kl.Stop(), direction="up")]
    )
    t_ev = float(tr.events.times[0])
    assert abs(t_ev - _t_star()) < 1e-6
    assert float(tr.events.t_end) == t_ev and bool(tr.events.fired[0])
    # the run stopped there: saves end at the last grid point before the event, and
    # the final state sits on the crossing
    assert float(tr.ts[-1]) <= t_ev < float(tr.ts[-1]) + 0.01
    assert abs(float(jnp.abs(kl.order_parameter(tr.final))) - R_STAR) < 1e-8


@pytest.mark.slow
def test_coupling_off_then_on_delays_the_crossing_float32():
    # Identical oscillators with omega = 0 do not move while the coupling is off, so
    # switching it off on [1, 3] delays the crossing by exactly 2. float32: the time
    # resolution near t = 4 is 4.8e-7 and R carries ~1e-7 rounding per step; R' ~ 0.3 at
    # the crossing, so ~1e-6 in time; tolerance 5e-6.
    model, y0 = _pair()
    tr = kl.simulate_events(
        model, y0, t1=20.0, dt=0.01,
        events=[kl.At(1.0, kl.ScaleCoupling(0.0), name="off"),
                kl.At(3.0, kl.ScaleCoupling(1.0), name="on"),
                kl.When(_r_minus, kl.Stop(), direction="up", name="resync")],
    )
    times = np.asarray(tr.events.times)
    np.testing.assert_allclose(times[:2], [1.0, 3.0], rtol=0, atol=1e-6)
    assert abs(times[2] - (2.0 + _t_star())) < 5e-6
    # the coupling strength after "on" is the original one, exactly
    assert float(tr.model.coupling.K) == K  # the returned model is the input model
    ds = tr.to_dataset()
    assert list(ds["event"].values) == ["off", "on", "resync"]
    assert list(ds["event_kind"].values) == ["at", "at", "when"]
    np.testing.assert_allclose(ds["event_time"].values, times)
    assert float(ds["t_end"]) == pytest.approx(times[2])
    # while off, the phases stand still (omega = 0): saved states on [1, 3] all equal
    ts = np.asarray(tr.ts)
    off = (ts >= 1.0) & (ts <= 3.0)
    held = np.asarray(tr.ys)[off]
    # (saves between steps come from the Hermite interpolant: 1-ulp rounding)
    np.testing.assert_allclose(held, np.broadcast_to(held[0], held.shape), rtol=0, atol=3e-7)


@pytest.mark.slow
def test_kick_and_set_parameter_on_uncoupled_oscillators(x64):
    # Uncoupled: theta(t) = theta0 + omega t, plus a kick of delta after t = 1, and
    # omega -> omega2 after t = 2: exact up to RK4 rounding (the drift is constant).
    omega = jnp.array([0.3, -0.7, 1.1])
    omega2 = jnp.array([1.0, 0.5, -0.2])
    delta = jnp.array([0.4, 0.0, -2.0])
    model = kl.Kuramoto(omega, kl.MeanField(0.0))
    y0 = jnp.array([0.1, 0.2, 0.3])
    tr = kl.simulate_events(
        model, y0, t1=3.0, dt=0.1,
        events=[kl.At(1.0, kl.Kick(delta)), kl.At(2.0, kl.SetParameter("omega", omega2))],
    )
    t = np.asarray(tr.ts)[:, None]
    expect = (
        np.asarray(y0) + np.asarray(omega) * np.minimum(t, 2.0)
        + np.asarray(omega2) * np.maximum(t - 2.0, 0.0)
        + np.where(t > 1.0, np.asarray(delta), 0.0)
    )
    np.testing.assert_allclose(np.asarray(tr.unwrapped()), expect, atol=1e-12)
    np.testing.assert_allclose(tr.events.times, [1.0, 2.0])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_remove_edges_frees_the_receiver(kind, x64):
    # Two oscillators coupled both ways; at t = 1 the edge 1 -> 0 is cut, so oscillator 0
    # then runs freely: theta_0(t) = theta_0(1) + omega_0 (t - 1). Oscillator 1 stays
    # driven (its phase is not linear in t).
    omega = jnp.array([0.5, -0.5])
    matrix = jnp.array([[0.0, 2.0], [2.0, 0.0]])
    coupling = (kl.DenseCoupling(matrix) if kind == "dense"
                else kl.SparseCoupling.from_dense(matrix))
    model = kl.Kuramoto(omega, coupling)
    tr = kl.simulate_events(
        model, jnp.array([0.0, 1.0]), t1=3.0, dt=0.01,
        events=[kl.At(1.0, kl.RemoveEdges([0], [1]))],
    )
    ts, th = np.asarray(tr.ts), np.asarray(tr.unwrapped())
    after = ts >= 1.0
    i1 = np.flatnonzero(after)[0]
    np.testing.assert_allclose(th[after, 0], th[i1, 0] + 0.5 * (ts[after] - 1.0), atol=1e-12)
    d1 = np.diff(th[after, 1]) / np.diff(ts[after])
    assert np.ptp(d1) > 0.1  # still coupled


@pytest.mark.slow
def test_jit_and_vmap_match_eager(x64):
    model, y0 = _pair()
    events = [kl.At(0.5, kl.ScaleCoupling(2.0)), kl.When(_r_minus, kl.Stop(), direction="up")]

    def times(y):
        return kl.simulate_events(model, y, t1=20.0, dt=0.01, events=events).events.times

    ys = jnp.stack([y0, 0.9 * y0])
    batched = jax.jit(jax.vmap(times))(ys)
    eager = np.stack([np.asarray(times(y)) for y in ys])
    np.testing.assert_allclose(batched, eager, rtol=0, atol=1e-12)
    # doubled coupling from t = 0.5 on: R follows the closed form with K = 2 from there
    phi_half = 2 * np.arctan(np.tan(PHI0 / 2) * np.exp(-K * 0.5))
    expected = 0.5 + _t_star(K=2.0, phi0=phi_half)
    assert abs(eager[0, 1] - expected) < 1e-6


def _vector(t, y):
    return jnp.cos(y)


@pytest.mark.parametrize(
    "events, error, match",
    [
        ([kl.At(21.0, kl.Stop())], ValueError, r"events\[0\]` time t = 21 lies outside"),
        ([kl.At(-1.0, kl.Stop())], ValueError, r"outside \[t0, t1\]"),
        ([kl.When(_vector, kl.Stop())], ValueError, r"real floating scalar .*shape \(2,\)"),
        ([kl.At(1.0, kl.RemoveEdges([0], [1]))], ValueError, "DenseCoupling or kl.SparseCoupling"),
        ([kl.At(1.0, kl.Kick(jnp.zeros(3)))], ValueError, "broadcast to the state shape"),
        ([kl.At(1.0, kl.SetParameter("omegas", 1.0))], ValueError, "does not name a parameter"),
        (["stop"], TypeError, r"events\[0\]` must be a kl.At or kl.When"),
    ],
)
def test_bad_events_one_line_errors(events, error, match):
    model, y0 = _pair()
    with pytest.raises(error, match=match) as info:
        kl.simulate_events(model, y0, t1=20.0, dt=0.01, events=events)
    assert "\n" not in str(info.value)


def test_bad_constructors_one_line_errors():
    for make, error, match in [
        (lambda: kl.At(1.0, "stop"), TypeError, "kuralab event action"),
        (lambda: kl.When(0.5, kl.Stop()), TypeError, r"cond\(t, y\)"),
        (lambda: kl.When(_r_minus, kl.Stop(), direction="sideways"), ValueError, "'up', 'down'"),
        (lambda: kl.At(float("nan"), kl.Stop()), ValueError, "finite"),
        (lambda: kl.ScaleCoupling(jnp.ones(2)), ValueError, "real scalar"),
        (lambda: kl.RemoveEdges([0, 1], [1]), ValueError, "equal length"),
    ]:
        with pytest.raises(error, match=match) as info:
            make()
        assert "\n" not in str(info.value)
    model = kl.Kuramoto(jnp.zeros(2), kl.MeanField(1.0), delays=kl.Delays(0.5))
    with pytest.raises(ValueError, match="does not support models with delays"):
        kl.simulate_events(model, jnp.zeros(2), t1=1.0, dt=0.1, events=[kl.At(0.5, kl.Stop())])


@pytest.mark.slow
def test_gradient_through_events_matches_finite_differences(x64):
    # d R(t1) / dK through three segments (coupling off on [1, 2]); central differences
    # with h = 1e-5 have truncation error O(h^2 R''') ~ 1e-10 and rounding ~1e-11.
    y0 = jnp.array([0.3, -0.4, 1.0])

    def loss(K):
        m = kl.Kuramoto(jnp.array([0.2, -0.1, 0.3]), kl.MeanField(K))
        tr = kl.simulate_events(
            m, y0, t1=4.0, dt=0.01, saveat=kl.SaveAt(final=True),
            events=[kl.At(1.0, kl.ScaleCoupling(0.0)), kl.At(2.0, kl.ScaleCoupling(1.0))],
        )
        return jnp.abs(kl.order_parameter(tr.final))

    h = 1e-5
    fd = (loss(1.5 + h) - loss(1.5 - h)) / (2 * h)
    assert abs(float(jax.grad(loss)(1.5)) - float(fd)) < 1e-8
