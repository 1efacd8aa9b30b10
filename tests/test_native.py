"""The optional native kernels (kuralab/_native) against float64 NumPy and against the
pure-JAX paths they replace, and the fallbacks when they are off or cannot be built.

Error budget. Native and pure-JAX code evaluate the same float32 operation sequence;
they may differ by FMA contraction and summation order, so elementwise values agree to
a few units in the last place: sin/cos within 4 ulp(1) = 4.8e-7, an RK4 step's phases
(|y| < 8) within 4 ulp(8) = 3.8e-6. Against float64 NumPy, sin/cos carry the
polynomial's 1.5e-7 (tests/test_fastmath.py) and a mean of n float32 values the
rounding of its partial sums, ~sqrt(n/16) eps ~ 1e-6 for n = 4096 (16 SIMD lanes).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab._meanfield_step import meanfield_rk4, meanfield_rk4_reference
from kuralab._native import MEANFIELD_RK4, PHASOR_MEAN, build, target
from kuralab._phasor_mean import sincos_mean, sincos_mean_reference

ULP1, ULP8 = 4 * 2.0**-23, 4 * 2.0**-20


@pytest.fixture
def native():
    if target(PHASOR_MEAN) is None or target(MEANFIELD_RK4) is None:
        pytest.skip("native kernels unavailable here (no C++ compiler or headers)")


def _np_rk4_step(y0, om, coef):
    """float64 NumPy RK4 step of the mean-field drift (kuralab/_meanfield_step.py)."""
    k0, km, k1_, h, ca, sa = (float(v) for v in coef)

    def inc(y, K):
        s, c = np.sin(y), np.cos(y)
        S, C = K * s.mean(-1, keepdims=True), K * c.mean(-1, keepdims=True)
        return h * (om + ca * (c * S - s * C) - sa * (s * S + c * C))

    a = inc(y0, k0)
    b = inc(y0 + a / 2, km)
    c = inc(y0 + b / 2, km)
    d = inc(y0 + c, k1_)
    return y0 + a / 6 + b / 3 + c / 3 + d / 6


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("KURALAB_NATIVE", "0")
    assert target(PHASOR_MEAN) is None and target(MEANFIELD_RK4) is None
    x = jnp.linspace(-3.0, 3.0, 64, dtype=jnp.float32)
    assert "custom_call" not in jax.jit(sincos_mean).lower(x).as_text()
    assert meanfield_rk4(x, x, jnp.ones(6, jnp.float32)) is None


def test_no_compiler_means_pure_jax(monkeypatch):
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setattr(build, "_compiler", lambda: None)
    assert target(MEANFIELD_RK4) is None
    x = jnp.linspace(-3.0, 3.0, 64, dtype=jnp.float32)
    for a, b in zip(sincos_mean(x), sincos_mean_reference(x), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("shape", [(1,), (17,), (4096,), (3, 4096), (2, 50_000)])
def test_sincos_mean_against_float64(native, shape):
    x = np.random.default_rng(0).uniform(-20, 20, shape).astype(np.float32)
    s, c, ms, mc = jax.jit(sincos_mean)(x)
    assert "kuralab_phasor_mean" in jax.jit(sincos_mean).lower(x).as_text()
    x64 = x.astype(np.float64)
    assert np.max(np.abs(np.asarray(s, np.float64) - np.sin(x64))) <= 1.5e-7
    assert np.max(np.abs(np.asarray(c, np.float64) - np.cos(x64))) <= 1.5e-7
    assert ms.shape == mc.shape == shape[:-1]
    np.testing.assert_allclose(ms, np.sin(x64).mean(-1), rtol=0, atol=2e-6)
    np.testing.assert_allclose(mc, np.cos(x64).mean(-1), rtol=0, atol=2e-6)
    ref = sincos_mean_reference(x)
    for a, b in zip((s, c), ref[:2], strict=True):
        assert np.max(np.abs(np.asarray(a) - np.asarray(b))) <= ULP1


def test_sincos_mean_vmap_and_grad(native):
    x = jnp.asarray(np.random.default_rng(1).uniform(-4, 4, (5, 300)), jnp.float32)
    batched = jax.vmap(sincos_mean)(x)
    for i in (0, 4):
        for a, b in zip(batched, sincos_mean(x[i]), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=0, atol=ULP1)

    def loss(f, x):
        s, c, ms, mc = f(x)
        return jnp.sum(s * c) + 3.0 * ms - 2.0 * mc

    g = jax.grad(lambda x: loss(sincos_mean, x))(x[0])
    g_ref = jax.grad(lambda x: loss(sincos_mean_reference, x))(x[0])
    # d/dx of sum(s c) = cos 2x, so |g| <= 1 + 5/n: a few ulp of 1
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=4 * ULP1)


@pytest.mark.parametrize("n", [1, 1000, 40_000])  # 40_000: the threaded long-row path
def test_meanfield_rk4_against_float64(native, n):
    rng = np.random.default_rng(2)
    y0 = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
    om = rng.normal(0, 1, n).astype(np.float32)
    coef = np.array([1.0, 1.5, 2.0, 0.05, np.cos(0.3), np.sin(0.3)], np.float32)
    y1, k1, k4 = jax.jit(meanfield_rk4)(y0, om, coef)
    r1, rk1, rk4 = meanfield_rk4_reference(jnp.asarray(y0), jnp.asarray(om), jnp.asarray(coef))
    np.testing.assert_allclose(y1, r1, rtol=0, atol=ULP8)
    np.testing.assert_allclose(k1, rk1, rtol=0, atol=ULP8)
    np.testing.assert_allclose(k4, rk4, rtol=0, atol=ULP8)
    want = _np_rk4_step(y0.astype(np.float64), om.astype(np.float64), coef)
    # float32 inputs are exact in float64; the step adds ~ulp(pi) rounding per stage
    np.testing.assert_allclose(np.asarray(y1, np.float64), want, rtol=0, atol=2e-6)


def test_meanfield_rk4_under_vmap_shares_unbatched_inputs(native):
    rng = np.random.default_rng(3)
    B, n = 4, 257
    y = jnp.asarray(rng.uniform(-3, 3, (B, n)), jnp.float32)
    om = jnp.asarray(rng.normal(0, 1, n), jnp.float32)
    Ks = np.linspace(0.0, 3.0, B)
    coef = jnp.asarray(
        np.c_[Ks, Ks, Ks, np.full(B, 0.05), np.ones(B), np.zeros(B)], jnp.float32
    )
    for axes, y_in in (((0, None, 0), y), ((None, None, 0), y[0])):
        got = jax.jit(jax.vmap(meanfield_rk4, in_axes=axes))(y_in, om, coef)[0]
        for b in range(B):
            yb = y_in[b] if axes[0] == 0 else y_in
            want = _np_rk4_step(np.asarray(yb, np.float64), np.asarray(om, np.float64),
                                np.asarray(coef[b]))
            np.testing.assert_allclose(np.asarray(got[b], np.float64), want, atol=2e-6)


def _ramped_case():
    # Mean field with a lag and a ramped K: simulate (kernel) against a hand scan of
    # the pure-JAX step (same float32 arithmetic: ~ulp per step, 100 steps).
    rng = np.random.default_rng(4)
    n, steps, dt = 300, 100, 0.01
    om = jnp.asarray(rng.normal(0, 1, n), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-np.pi, np.pi, n), jnp.float32)

    def run(K):
        m = kl.Kuramoto(om, kl.MeanField(kl.Linear(K, 2.0 * K, 0.0, 1.0)), lag=0.3)
        return kl.simulate(m, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final

    def hand(K):
        def body(y, i):
            t0 = i * dt
            ks = [K * (1.0 + jnp.clip(t, 0.0, 1.0)) for t in (t0, t0 + dt / 2, t0 + dt)]
            coef = jnp.stack(ks + [jnp.float32(dt), jnp.cos(0.3), jnp.sin(0.3)])
            return meanfield_rk4_reference(y, om, coef.astype(jnp.float32))[0], None

        return jax.lax.scan(body, y0, jnp.arange(steps, dtype=jnp.float32))[0]

    return run, hand


def test_simulate_takes_the_kernel(native):
    run, hand = _ramped_case()
    K = jnp.float32(1.2)
    assert "kuralab_meanfield_rk4" in jax.jit(run).lower(K).as_text()
    diff = np.asarray(kl.wrap_phase(run(K) - hand(K)))
    assert np.max(np.abs(diff)) <= 1e-5  # 100 steps x a few ulp(pi)


@pytest.mark.slow
def test_gradient_through_the_kernel(native):
    # reverse mode differentiates the pure-JAX step (custom_jvp): same gradient
    run, hand = _ramped_case()
    K = jnp.float32(1.2)
    g = jax.grad(lambda K: jnp.sum(jnp.sin(run(K))))(K)
    g_ref = jax.grad(lambda K: jnp.sum(jnp.sin(hand(K))))(K)
    np.testing.assert_allclose(g, g_ref, rtol=1e-4)
