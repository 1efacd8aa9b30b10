"""The float32 polynomial sincos against float64 NumPy, and the fast phase-model path
against the plain one (XLA `sin`/`cos` written directly in a diffrax solve)."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kuralab as kl
from kuralab._fastmath import sincos

_f32 = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@pytest.mark.parametrize("scale", [np.pi / 4, 4.0, 1e2, 1e4, 1e6])
def test_error_against_float64(scale):
    x = np.random.default_rng(0).uniform(-scale, scale, 200_000).astype(np.float32)
    s, c = jax.jit(sincos)(x)
    assert s.dtype == c.dtype == jnp.float32
    x64 = x.astype(np.float64)
    assert np.max(np.abs(np.asarray(s, np.float64) - np.sin(x64))) <= 1.5e-7
    assert np.max(np.abs(np.asarray(c, np.float64) - np.cos(x64))) <= 1.5e-7


def test_quadrant_boundaries_and_special_values():
    # Near every multiple of pi/4 in [-4 pi, 4 pi], where the quadrant logic switches.
    k = np.arange(-16, 17)
    x = (
        (k[:, None] * np.pi / 4 + np.array([-1e-6, 0.0, 1e-6]))
        .astype(np.float32)
        .ravel()
    )
    s, c = sincos(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(
        np.asarray(s, np.float64), np.sin(x64), atol=1.5e-7, rtol=0
    )
    np.testing.assert_allclose(
        np.asarray(c, np.float64), np.cos(x64), atol=1.5e-7, rtol=0
    )
    s, c = sincos(jnp.array([0.0, np.nan, np.inf, -np.inf], jnp.float32))
    assert (float(s[0]), float(c[0])) == (0.0, 1.0)
    assert np.all(np.isnan(s[1:])) and np.all(np.isnan(c[1:]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_f32, min_size=1, max_size=64))
def test_odd_even_symmetry_and_unit_norm(xs):
    x = jnp.asarray(xs, jnp.float32)
    s, c = sincos(x)
    sm, cm = sincos(-x)
    np.testing.assert_array_equal(sm, -s)
    np.testing.assert_array_equal(cm, c)
    norm = np.asarray(s, np.float64) ** 2 + np.asarray(c, np.float64) ** 2
    np.testing.assert_allclose(norm, 1.0, atol=4e-7, rtol=0)


def test_other_dtypes(x64):
    x = jnp.linspace(-10, 10, 101)
    assert x.dtype == jnp.float64
    s, c = sincos(x)  # float64: exactly XLA's sin and cos
    np.testing.assert_array_equal(s, jnp.sin(x))
    np.testing.assert_array_equal(c, jnp.cos(x))
    for dtype in (jnp.float16, jnp.bfloat16):
        s, c = sincos(x.astype(dtype))
        assert s.dtype == c.dtype == dtype
        np.testing.assert_allclose(
            np.asarray(s, np.float64),
            np.sin(np.asarray(x.astype(dtype), np.float64)),
            atol=1e-2,
        )


def test_derivatives_are_the_consistent_pair():
    x = jnp.linspace(-7.0, 7.0, 57, dtype=jnp.float32)
    s, c = sincos(x)
    ds = jax.vmap(jax.grad(lambda v: sincos(v)[0]))(x)
    dc = jax.vmap(jax.grad(lambda v: sincos(v)[1]))(x)
    np.testing.assert_array_equal(ds, c)
    np.testing.assert_array_equal(dc, -s)
    d2s = jax.vmap(jax.grad(jax.grad(lambda v: sincos(v)[0])))(x)
    np.testing.assert_array_equal(d2s, -s)
    _, tangent = jax.jvp(sincos, (x,), (jnp.full_like(x, 2.0),))
    np.testing.assert_array_equal(tangent[0], 2.0 * c)


def _plain_solve(omega, K, lag, h, psi, y0, t1, dt):
    """The plain path: diffrax's Heun with XLA's sin written per pair (N x N)."""

    def f(t, th, args):
        pair = jnp.sin(th[None, :] - th[:, None] - lag)
        return omega + jnp.sum(K * pair, axis=1) + h * jnp.sin(psi - th)

    sol = dfx.diffeqsolve(
        dfx.ODETerm(f),
        dfx.Heun(),
        0.0,
        t1,
        dt,
        y0,
        saveat=dfx.SaveAt(t1=True),
        max_steps=None,
    )
    return sol.ys[0]


@pytest.mark.parametrize("coupling", ["dense", "meanfield", "sparse"])
def test_fast_path_agrees_with_plain_diffrax(coupling):
    n, t1, dt = 40, 4.0, 0.01
    rng = np.random.default_rng(3)
    omega = jnp.asarray(rng.normal(0, 0.5, n), jnp.float32)
    Kd = rng.uniform(0, 2.0 / n, (n, n)) * (rng.uniform(size=(n, n)) < 0.5)
    if coupling == "meanfield":
        Kd = np.full((n, n), 1.5 / n)
        cpl = kl.MeanField(1.5)
    elif coupling == "dense":
        cpl = kl.DenseCoupling(jnp.asarray(Kd, jnp.float32))
    else:
        cpl = kl.SparseCoupling.from_dense(Kd.astype(np.float32))
    K = jnp.asarray(Kd, jnp.float32)
    lag, h = 0.3, jnp.asarray(rng.uniform(0, 0.5, n), jnp.float32)
    psi = jnp.asarray(rng.uniform(-np.pi, np.pi, n), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-np.pi, np.pi, n), jnp.float32)
    model = kl.Kuramoto(omega, cpl, lag=lag, forcing=kl.Forcing(h, psi))
    fast = kl.simulate(
        model, y0, t1=t1, dt=dt, solver="heun", saveat=kl.SaveAt(final=True)
    ).final
    plain = _plain_solve(omega, K, lag, h, psi, y0, t1, dt)
    kl.testing.assert_phase_allclose(fast, plain, atol=5e-5)
    # and the drift itself, point by point
    np.testing.assert_allclose(
        model.drift(0.0, y0),
        omega
        + jnp.sum(K * jnp.sin(y0[None, :] - y0[:, None] - lag), 1)
        + h * jnp.sin(psi - y0),
        atol=3e-6,
    )
