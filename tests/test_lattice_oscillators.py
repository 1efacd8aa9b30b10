"""kl.LatticeOscillators (the coRNN sheet) and the symplectic-Euler solver: the reference
update against an independent NumPy loop, the linear sheet's energy, the contract,
bad input."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl

# -- an independent NumPy implementation of the reference update -------------------------


def np_corr(kernel, u, boundary):
    """(W * u)_i = sum_d W[c + d] u[i + d], periodic or zero-padded."""
    kernel = np.asarray(kernel, np.float64)
    u = np.asarray(u, np.float64)
    out = np.zeros_like(u)
    centre = [k // 2 for k in kernel.shape]
    for idx in itertools.product(*(range(k) for k in kernel.shape)):
        d = [i - c for i, c in zip(idx, centre, strict=True)]
        if boundary == "periodic":
            shifted = np.roll(u, [-x for x in d], axis=tuple(range(u.ndim)))
        else:
            padded = np.pad(u, [(c, c) for c in centre])
            sl = tuple(
                slice(c + x, c + x + n) for c, x, n in zip(centre, d, u.shape, strict=True)
            )
            shifted = padded[sl]
        out += kernel[idx] * shifted
    return out


def np_reference(h, v, kh, kv, kz, b, gamma, alpha, frames, dt, boundary):
    """The coRNN update of reference_impls.md §4.1, one step per frame."""
    hs = []
    for z in frames:
        u = np_corr(kh, h, boundary) + np_corr(kv, v, boundary) + np_corr(kz, z, boundary)
        v = v + dt * (np.tanh(u + b) - gamma * h - alpha * v)
        h = h + dt * v
        hs.append(np.stack([h, v]))
    return np.stack(hs)


def _random_sheet(key, shape, ksize, boundary, dt):
    keys = jax.random.split(key, 6)
    kh = 0.5 * jax.random.normal(keys[0], ksize)
    kv = 0.3 * jax.random.normal(keys[1], ksize)
    kz = 0.4 * jax.random.normal(keys[2], ksize)
    b = 0.1 * jax.random.normal(keys[3], shape)
    frames = jax.random.normal(keys[4], (12, *shape))
    y0 = jax.random.normal(keys[5], (2, *shape))
    sheet = kl.LatticeOscillators(
        shape, kh, kv, gamma=1.0, alpha=0.5, boundary=boundary, bias=b,
        drive=frames, drive_dt=dt, kernel_z=kz,
    )
    ref = np_reference(
        np.asarray(y0[0]), np.asarray(y0[1]), kh, kv, kz, np.asarray(b), 1.0, 0.5,
        np.asarray(frames), dt, boundary,
    )
    return sheet, y0, frames, ref


DELTA = float(jax.nn.sigmoid(-1.95))  # the reference's Delta = sigmoid(-1.95)


def test_symplectic_euler_reproduces_reference_update(getkey):
    """`simulate(..., solver="symplectic_euler")` with one drive frame per step is the
    reference coRNN update, step for step (2-D, circular padding)."""
    sheet, y0, frames, ref = _random_sheet(getkey(), (6, 7), (3, 3), "periodic", DELTA)
    T = frames.shape[0]
    traj = kl.simulate(sheet, y0, t1=T * DELTA, dt=DELTA, solver="symplectic_euler")
    assert traj.ys.shape == (T + 1, 2, 6, 7)
    np.testing.assert_allclose(traj.ys[1:], ref, rtol=2e-5, atol=2e-5)


def test_step_reproduces_reference_update_zero_padded(getkey):
    """The pure one-step method `sheet.step` is the same update (1-D, zero padding)."""
    sheet, y0, frames, ref = _random_sheet(getkey(), (9,), (3,), "open", DELTA)
    step = jax.jit(lambda y, z: sheet.step(y, z, DELTA))
    y = y0
    for n in range(frames.shape[0]):
        y = step(y, frames[n])
        np.testing.assert_allclose(y, ref[n], rtol=2e-5, atol=2e-5)


def test_drift_is_the_sheet_equation(getkey):
    k1, k2, k3 = jax.random.split(getkey(), 3)
    kh = jax.random.normal(k1, (3, 3))
    z = jax.random.normal(k3, (5, 5))
    sheet = kl.LatticeOscillators(
        (5, 5), kh, None, gamma=2.0, alpha=0.3, drive=z[None], activation="linear"
    )
    y = jax.random.normal(k2, (2, 5, 5))
    f = sheet.drift(0.0, y)
    h, v = np.asarray(y[0]), np.asarray(y[1])
    acc = np_corr(kh, h, "periodic") + np.asarray(z) - 2.0 * h - 0.3 * v
    np.testing.assert_allclose(f[0], v)
    np.testing.assert_allclose(f[1], acc, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_model_contract():
    kh = jnp.array([[0.0, 0.2, 0.0], [0.2, -0.5, 0.2], [0.0, 0.2, 0.0]])
    sheet = kl.LatticeOscillators((4, 5), kh, 0.1 * kh, gamma=1.0, alpha=0.5, bias=0.05)
    y0 = 0.3 * jax.random.normal(jax.random.key(1), (2, 4, 5))
    kl.testing.check_model_contract(sheet, y0, solver="symplectic_euler")


# -- the linear undamped sheet: energy ---------------------------------------------------


def _linear_sheet(kappa=0.4, gamma=0.7, n=24):
    kernel = jnp.array([kappa, -2 * kappa, kappa])  # discrete Laplacian (symmetric)
    return kl.LatticeOscillators((n,), kernel, None, gamma=gamma, alpha=0.0,
                                 activation="linear")


def test_symplectic_euler_conserves_linear_sheet_energy(x64):
    sheet = _linear_sheet()
    y0 = jax.random.normal(jax.random.key(0), (2, 24))
    dt, steps = 0.2, 5000
    ys = kl.simulate(sheet, y0, t1=steps * dt, dt=dt, solver="symplectic_euler").ys
    E = jax.vmap(sheet.energy)(ys)
    # the modified energy E - (dt/2) v.(gamma h - W*h) of symplectic Euler is exact
    Ah = jax.vmap(lambda y: sheet.gamma * y[0] - sheet.conv(sheet.kernel_h, y[0]))(ys)
    modified = E - 0.5 * dt * jnp.sum(ys[:, 1] * Ah, axis=1)
    np.testing.assert_allclose(modified, modified[0], rtol=1e-10)
    # the true energy oscillates within O(dt) and does not drift
    rel = (E - E[0]) / E[0]
    assert float(jnp.max(jnp.abs(rel))) < 0.25
    early, late = jnp.mean(E[: steps // 5]), jnp.mean(E[-steps // 5 :])
    assert abs(float(late - early)) / float(E[0]) < 5e-3


@pytest.mark.slow
def test_forward_euler_does_not_conserve_linear_sheet_energy(x64):
    """The control: forward Euler at the same step, the energy grows without bound."""
    sheet = _linear_sheet()
    y0 = jax.random.normal(jax.random.key(0), (2, 24))
    ye = kl.simulate(sheet, y0, t1=1000.0, dt=0.2, solver="euler").ys
    assert float(sheet.energy(ye[-1]) / sheet.energy(y0)) > 10.0


@pytest.mark.slow
def test_energy_decays_with_damping(x64):
    sheet = _linear_sheet()
    sheet = kl.LatticeOscillators(sheet.shape, sheet.kernel_h, None, gamma=0.7,
                                  alpha=0.3, activation="linear")
    y0 = jax.random.normal(jax.random.key(2), (2, 24))
    ys = kl.simulate(sheet, y0, t1=20.0, dt=0.01, solver="rk4").ys
    E = jax.vmap(sheet.energy)(ys)
    # dE/dt = -alpha |v|^2 <= 0 exactly; with rk4 at dt = 0.01 monotone to rounding
    assert bool(jnp.all(jnp.diff(E) <= 1e-12 * E[0]))
    assert float(E[-1]) < 0.1 * float(E[0])


# -- bad input ----------------------------------------------------------------------------

K3 = jnp.ones((3, 3)) / 9


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(shape=(5, 5), kernel_h=jnp.ones(3)), "kernel_h.*rank 2"),
        (dict(shape=(5, 5), kernel_h=jnp.ones((2, 2))), "kernel_h.*odd"),
        (dict(shape=(2, 5), kernel_h=K3), "kernel_h.*larger than the grid"),
        (dict(shape=(5, 5), kernel_h=K3, kernel_v=jnp.ones((3, 3, 3))), "kernel_v"),
        (dict(shape=(5, 5), kernel_h=K3, gamma=-1.0), "gamma.*>= 0"),
        (dict(shape=(5, 5), kernel_h=K3, alpha=-0.1), "alpha.*>= 0"),
        (dict(shape=(5, 5), kernel_h=K3, drive=jnp.ones((4, 5, 6))), "drive.*frames"),
        (dict(shape=(5, 5), kernel_h=K3, bias=jnp.ones(5)), "bias"),
        (dict(shape=(5, 5, 5), kernel_h=K3), "shape"),
        (dict(shape=(5, 5), kernel_h=K3, boundary="wrap"), "boundary"),
        (dict(shape=(5, 5), kernel_h=K3, activation="relu"), "activation"),
    ],
)
def test_bad_input_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        kl.LatticeOscillators(**kwargs)
    assert "\n" not in str(e.value)


def test_state_shape_mismatch_and_wrong_model_for_solver():
    sheet = kl.LatticeOscillators((5, 5), K3)
    with pytest.raises(ValueError, match=r"state shape \(2, 5, 5\)"):
        kl.simulate(sheet, jnp.zeros((2, 5, 4)), t1=1.0, dt=0.1)
    ring = kl.Kuramoto(jnp.zeros(4), kl.MeanField(1.0))
    with pytest.raises(ValueError, match="second-order model"):
        kl.simulate(ring, jnp.zeros(4), t1=1.0, dt=0.1, solver="symplectic_euler")


@pytest.mark.slow
def test_check_lyapunov_on_the_linear_sheet():
    k = jnp.array([[0.0, 0.3, 0], [0.3, -1.2, 0.3], [0, 0.3, 0]])
    y0 = jax.random.normal(jax.random.key(0), (2, 6, 6))
    lin = kl.LatticeOscillators((6, 6), k, None, gamma=1.0, alpha=0.3, activation="linear")
    ds = kl.check_lyapunov(lin, y0, t1=10.0, dt=0.01)
    assert ds.attrs["verdict"] == "lyapunov"
    assert ds.attrs["theorem"].startswith("linear oscillator sheet")
    # a self-exciting velocity kernel (+0.6 v against damping 0.3) breaks it
    pump = jnp.zeros((3, 3)).at[1, 1].set(0.6)
    bad = kl.LatticeOscillators((6, 6), k, pump, gamma=1.0, alpha=0.3, activation="linear")
    ds = kl.check_lyapunov(bad, y0, t1=10.0, dt=0.01)
    assert ds.attrs["verdict"] == "counterexample"
    holds = dict(zip(ds.hypothesis.values, ds.holds.values, strict=True))
    assert not holds["no_velocity_kernel"] and holds["symmetric_position_kernel"]
