"""kl.waves: phases, wave vectors, speeds and topological charges against fields whose
answer is known in closed form; hypothesis properties (shift and offset invariance)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kuralab as kl

W = kl.waves
PROPERTY = settings(max_examples=15, deadline=None)


def plane_wave(T, shape, modes, periods, dt=0.1, phi0=0.3):
    """cos(omega t - k.x + phi0) with whole numbers of wavelengths and periods."""
    k = np.array([2 * np.pi * m / n for m, n in zip(modes, shape, strict=True)])
    omega = 2 * np.pi * periods / (T * dt)
    t = np.arange(T) * dt
    grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    kx = sum(ki * g for ki, g in zip(k, grids, strict=True))
    field = np.cos(omega * t[:, *(None,) * len(shape)] - kx[None] + phi0)
    return field, k, omega


def test_plane_wave_2d_measured_within_one_percent():
    dt = 0.1
    h, k, omega = plane_wave(80, (16, 20), modes=(2, -3), periods=5, dt=dt)
    phase = W.instantaneous_phase(h, dt=dt)
    fit = W.plane_wave_fit(phase, ndim=2, dt=dt)
    np.testing.assert_allclose(fit.wave_vector, k, rtol=1e-2)
    np.testing.assert_allclose(fit.frequency, omega, rtol=1e-2)
    np.testing.assert_allclose(fit.speed, omega / np.linalg.norm(k), rtol=1e-2)
    np.testing.assert_allclose(fit.direction, np.arctan2(k[0], k[1]), atol=1e-2)
    assert float(fit.coherence) > 0.999
    assert float(fit.speed_se) < 1e-2 * float(fit.speed)
    # the local phase velocity is omega k / |k|^2 everywhere
    c = W.phase_velocity(phase, ndim=2, dt=dt)
    np.testing.assert_allclose(
        jnp.mean(c, axis=(0, 1, 2)), omega * k / np.sum(k**2), rtol=1e-2
    )
    dom = W.dominant_wave_vector(W.analytic_signal(h), ndim=2)
    np.testing.assert_allclose(dom.wave_vector, k, rtol=1e-5)
    assert float(dom.power_fraction) > 0.99


def test_phase_of_a_cosine_and_band_pass():
    dt, T = 0.05, 400
    t = np.arange(T) * dt
    slow = 2 * np.pi * 1.0  # 1 cycle per unit time (20 cycles in the record)
    fast = 2 * np.pi * 6.0
    x = np.cos(slow * t + 0.4) + 0.8 * np.cos(fast * t)
    phi = W.instantaneous_phase(x, dt=dt, band=(0.5, 2.0))
    err = np.angle(np.exp(1j * (np.asarray(phi) - (slow * t + 0.4))))
    assert np.max(np.abs(err)) < 0.05
    unfiltered = W.instantaneous_phase(x, dt=dt)
    assert np.max(np.abs(np.angle(np.exp(1j * (unfiltered - slow * t - 0.4))))) > 0.3


def test_twisted_state_wave_vector_and_winding():
    n, q, omega, dt = 50, 4, 1.2, 0.1
    t = np.arange(60)[:, None] * dt
    theta = np.angle(np.exp(1j * (2 * np.pi * q * np.arange(n) / n + omega * t)))
    fit = W.plane_wave_fit(theta, ndim=1, dt=dt)
    np.testing.assert_allclose(fit.wave_vector[0], -2 * np.pi * q / n, rtol=1e-2)
    np.testing.assert_allclose(fit.speed, omega * n / (2 * np.pi * q), rtol=1e-2)
    assert np.all(np.asarray(W.winding_number(theta)) == q)


@pytest.mark.slow
def test_twisted_state_of_a_phase_ring():
    """A twisted state of the nearest-neighbour Kuramoto ring, simulated: wave vector
    -2 pi q / N (phases advance in time), winding number q, speed omega / |k|."""
    n, q, omega = 40, 3, 1.5
    ring = kl.Kuramoto(
        jnp.full(n, omega), kl.LatticeCoupling(jnp.array([1.0, 0.0, 1.0]), (n,))
    )
    theta0 = 2 * np.pi * q * np.arange(n) / n
    theta0 = theta0 + 0.05 * np.random.default_rng(0).normal(size=n)  # relaxes back
    traj = kl.simulate(ring, theta0, t1=20.0, dt=0.05, saveat=kl.SaveAt(every=4))
    phase = traj.ys[-50:]
    assert np.all(np.asarray(W.winding_number(phase)) == q)
    fit = W.plane_wave_fit(phase, ndim=1, dt=0.2)
    k_true = -2 * np.pi * q / n
    np.testing.assert_allclose(fit.wave_vector[0], k_true, rtol=1e-2)
    np.testing.assert_allclose(fit.frequency, omega, rtol=1e-2)
    np.testing.assert_allclose(fit.speed, omega / abs(k_true), rtol=1e-2)
    assert float(fit.direction) == -1.0  # towards decreasing index
    dom = W.dominant_wave_vector(jnp.exp(1j * phase), ndim=1)
    np.testing.assert_allclose(dom.wave_vector[0], k_true, rtol=1e-5)


@pytest.mark.parametrize("sign", [1, -1])
def test_spiral_charge(sign):
    rows, cols = 12, 14
    y, x = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    y0, x0 = 5.4, 7.6  # core inside plaquette (5, 7)
    t = np.arange(30)[:, None, None] * 0.2
    phase = np.angle(np.exp(1j * (sign * np.arctan2(y - y0, x - x0) + 2.0 * t)))
    q = np.asarray(W.topological_charge(phase, boundary="open"))
    assert q.shape == (30, rows - 1, cols - 1)
    assert np.all(q[:, 5, 7] == sign)
    assert np.all(np.sum(np.abs(q), axis=(1, 2)) == 1)
    # a rotating spiral is not a plane wave
    assert float(W.plane_wave_fit(phase, ndim=2, dt=0.2, boundary="open").coherence) < 0.3


def test_spiral_pair_on_a_torus_has_zero_total_charge():
    n = 16
    y, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    # a +1 and a -1 vortex: the phase is smooth on the torus when built from wrapped
    # angles of a pair (sum of charges must vanish on a closed surface)
    phase = np.arctan2(y - 4.5, x - 4.5) - np.arctan2(y - 11.5, x - 11.5)
    q = np.asarray(W.topological_charge(phase))
    assert q.shape == (n, n)
    assert q.sum() == 0
    assert q[4, 4] == 1 and q[11, 11] == -1


# -- properties ---------------------------------------------------------------------------


@PROPERTY
@given(
    seed=st.integers(0, 2**31 - 1),
    shift=st.tuples(st.integers(-8, 8), st.integers(-8, 8)),
    offset=st.floats(-10, 10),
)
def test_shift_and_offset_invariance(seed, shift, offset):
    rng = np.random.default_rng(seed)
    phase = rng.uniform(-np.pi, np.pi, size=(3, 8, 9))
    k = W.wave_vector(phase, ndim=2)
    k_shift = W.wave_vector(np.roll(phase, shift, axis=(1, 2)), ndim=2)
    np.testing.assert_allclose(k_shift, np.roll(k, shift, axis=(1, 2)), atol=1e-5)
    k_off = W.wave_vector(phase + offset, ndim=2)
    # an offset is invisible unless it moves a difference across the wrap at +-pi
    close = np.abs(np.abs(np.asarray(k_off - k)) - np.pi) > 1e-3
    np.testing.assert_allclose(np.asarray(k_off)[close], np.asarray(k)[close], atol=1e-4)
    q = W.topological_charge(phase)
    np.testing.assert_array_equal(
        W.topological_charge(np.roll(phase, shift, axis=(1, 2))), np.roll(q, shift, (1, 2))
    )
    assert int(jnp.sum(q)) % 1 == 0 and np.all(np.asarray(jnp.sum(q, axis=(1, 2))) == 0)


@PROPERTY
@given(q=st.integers(-12, 12), seed=st.integers(0, 2**31 - 1))
def test_winding_number_of_noisy_twisted_states(q, seed):
    n = 60  # one shape: one compilation
    rng = np.random.default_rng(seed)
    theta = 2 * np.pi * q * np.arange(n) / n + rng.uniform(-0.3, 0.3, n) + rng.uniform(-9, 9)
    assert int(W.winding_number(theta)) == q
    assert int(W.winding_number(-theta)) == -q


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1))
def test_analytic_signal_real_part(seed):
    x = np.random.default_rng(seed).normal(size=(32, 5))
    np.testing.assert_allclose(jnp.real(W.analytic_signal(x)), x, atol=1e-5)


def test_time_reversal_reverses_propagation():
    """The analytic signal always gives phases advancing in time, so a reversed movie
    has the same frequency and the opposite wave vector and direction."""
    h, k, omega = plane_wave(32, (6,), modes=(1,), periods=2)
    fwd = W.plane_wave_fit(W.instantaneous_phase(h, dt=0.1), ndim=1, dt=0.1)
    rev = W.plane_wave_fit(W.instantaneous_phase(h[::-1], dt=0.1), ndim=1, dt=0.1)
    np.testing.assert_allclose(fwd.frequency, omega, rtol=1e-2)
    np.testing.assert_allclose(fwd.wave_vector, k, rtol=1e-2)
    np.testing.assert_allclose(rev.frequency, fwd.frequency, rtol=1e-3)
    np.testing.assert_allclose(rev.wave_vector, -fwd.wave_vector, rtol=1e-3)
    assert float(rev.direction) == -float(fwd.direction) == -1.0


def test_phase_locking():
    t = np.linspace(0, 20, 400)
    ref = 2 * t
    locked = ref[:, None] + np.array([0.0, 1.0])  # constant lags
    other = 3.1 * t[:, None] + np.zeros(2)
    assert np.allclose(W.phase_locking(locked, ref[:, None]), 1.0)
    assert np.all(np.asarray(W.phase_locking(other, ref[:, None])) < 0.2)


def test_jit_and_vmap():
    h, k, _ = plane_wave(40, (10,), modes=(2,), periods=4)
    f = jax.jit(lambda x: W.plane_wave_fit(W.instantaneous_phase(x), ndim=1).wave_vector)
    batch = jax.vmap(f)(jnp.stack([h, h[:, ::-1]]))
    np.testing.assert_allclose(batch[:, 0], [k[0], -k[0]], rtol=1e-3)


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: W.wave_vector(np.zeros((4, 4)), ndim=3), ValueError, "ndim"),
        (lambda: W.wave_vector(np.zeros(4), ndim=2), ValueError, "at least 2 axes"),
        (lambda: W.wave_vector(np.zeros((4, 4)) + 0j, ndim=2), TypeError, "real"),
        (lambda: W.wave_vector(np.zeros((4, 4)), ndim=2, spacing=-1), ValueError, "spacing"),
        (lambda: W.wave_vector(np.zeros((4, 4)), ndim=1, boundary="x"), ValueError, "boundary"),
        (lambda: W.instantaneous_phase(np.zeros(8), band=(3, 1)), ValueError, "band"),
        (lambda: W.instantaneous_phase(np.zeros(8), axis=2), ValueError, "axis"),
        (lambda: W.instantaneous_phase(np.zeros(8), dt=0), ValueError, "dt"),
        (lambda: W.phase_velocity(np.zeros((5, 4)), ndim=1, time_axis=1), ValueError,
         "time_axis"),
        (lambda: W.plane_wave_fit(np.zeros((1, 4)), ndim=1), ValueError, "time >= 2"),
        (lambda: W.topological_charge(np.zeros(4)), ValueError, "2 \\(grid\\) axes"),
    ],
)
def test_bad_input_one_line(call, exc, match):
    with pytest.raises(exc, match=match) as e:
        call()
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_vortex_of_a_kuramoto_lattice_keeps_its_charge():
    """A phase vortex on a 2-D nearest-neighbour Kuramoto lattice (open boundary) is
    topologically protected: simulated, its charge stays +1 at the core."""
    n = 16
    ring = kl.LatticeCoupling(jnp.array([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]), (n, n),
                              boundary="open")
    model = kl.Kuramoto(jnp.full(n * n, 0.7), ring)
    y, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    theta0 = np.arctan2(y - 7.5, x - 7.5).reshape(-1)
    traj = kl.simulate(model, theta0, t1=10.0, dt=0.05, saveat=kl.SaveAt(every=20))
    q = np.asarray(W.topological_charge(traj.ys.reshape(-1, n, n), boundary="open"))
    assert np.all(q.sum(axis=(1, 2)) == 1)
    assert np.all(q[:, 7, 7] == 1)
