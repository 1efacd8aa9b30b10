"""The fast fixed-step increment path: distribution, independence, determinism, and its
use by `kl.simulate(brownian="increments")`."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from scipy import stats

import kuralab as kl
from kuralab._brownian import IncrementPath, box_muller_normals, increment_path

_F32 = jax.ShapeDtypeStruct((1001,), jnp.float32)


def test_box_muller_normals_are_standard_normal_and_independent():
    z1, z2 = jax.jit(box_muller_normals, static_argnums=1)(jr.key(0), 200_000)
    for z in (z1, z2):
        z = np.asarray(z, np.float64)
        assert abs(z.mean()) < 5 / np.sqrt(z.size)
        assert abs(z.var() - 1) < 5 * np.sqrt(2 / z.size)
        assert stats.kstest(z, "norm").pvalue > 1e-3
        assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24 / z.size)
    # the two halves of each pair, and neighbours, are uncorrelated
    a, b = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
    for x, y in ((a, b), (a[1:], a[:-1]), (a**2, b**2)):
        assert abs(np.corrcoef(x, y)[0, 1]) < 5 / np.sqrt(a.size)


def test_increments_have_variance_dt_and_are_reproducible():
    path = IncrementPath(_F32, jr.key(1))
    ts = jnp.arange(400) * 0.05
    W = jax.jit(jax.vmap(lambda t: path.evaluate(t, t + 0.05)))(ts)  # (step, osc)
    assert W.shape == (400, 1001) and W.dtype == jnp.float32
    w = np.asarray(W, np.float64)
    assert abs(w.var() / 0.05 - 1) < 5 * np.sqrt(2 / w.size)
    # independent across steps and across oscillators
    assert abs(np.corrcoef(w[1:].ravel(), w[:-1].ravel())[0, 1]) < 5 / np.sqrt(w.size)
    assert abs(np.corrcoef(w[:, 1:].ravel(), w[:, :-1].ravel())[0, 1]) < 5 / np.sqrt(
        w.size
    )
    # a deterministic function of (key, t0, t1) (eager and vmapped differ by rounding)
    np.testing.assert_allclose(path.evaluate(ts[7], ts[7] + 0.05), W[7], atol=1e-6)
    assert not np.array_equal(path.evaluate(0.0, 0.1), path.evaluate(0.0, 0.05))
    other = IncrementPath(_F32, jr.key(2))
    assert not np.array_equal(other.evaluate(0.0, 0.05), W[0])
    # use_levy returns the increment with its dt
    inc = path.evaluate(0.0, 0.05, use_levy=True)
    assert isinstance(inc, dfx.BrownianIncrement)
    np.testing.assert_allclose(inc.W, W[0], atol=1e-6)


def test_space_time_levy_area_has_variance_dt_over_12():
    path = IncrementPath(
        jax.ShapeDtypeStruct((50_000,), jnp.float32), jr.key(3), dfx.SpaceTimeLevyArea
    )
    inc = path.evaluate(0.0, 0.2, use_levy=True)
    w, h = np.asarray(inc.W, np.float64), np.asarray(inc.H, np.float64)
    n = w.size
    assert abs(w.var() / 0.2 - 1) < 5 * np.sqrt(2 / n)
    assert abs(h.var() / (0.2 / 12) - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.corrcoef(w, h)[0, 1]) < 5 / np.sqrt(n)


def test_other_dtypes_and_keys_fall_back_to_diffrax(x64):
    f64 = jax.ShapeDtypeStruct((10,), jnp.float64)
    assert isinstance(increment_path(f64, jr.key(0)), dfx.UnsafeBrownianPath)
    assert isinstance(
        increment_path(_F32, jr.key(0, impl="rbg")), dfx.UnsafeBrownianPath
    )
    tt = dfx.SpaceTimeTimeLevyArea
    assert isinstance(increment_path(_F32, jr.key(0), tt), dfx.UnsafeBrownianPath)
    assert isinstance(increment_path(_F32, jr.PRNGKey(0)), IncrementPath)
    with pytest.raises(ValueError, match="float32"):
        IncrementPath(f64, jr.key(0))


def test_simulate_increments_spread_free_phases_by_2DT():
    # K = 0, omega = 0: theta(T) - theta(0) ~ N(0, 2 D T) per oscillator.
    n, D, T = 4000, 0.1, 5.0
    model = kl.Kuramoto(jnp.zeros(n), kl.MeanField(0.0), noise=kl.Noise(D))
    tr = kl.simulate(
        model,
        jnp.zeros(n),
        t1=T,
        dt=0.01,
        solver="euler",
        key=jr.key(4),
        brownian="increments",
        saveat=kl.SaveAt(final=True),
    )
    spread = np.asarray(tr.final, np.float64) + 2 * np.pi * np.asarray(tr.final_turns)
    assert abs(spread.var() / (2 * D * T) - 1) < 5 * np.sqrt(2 / n)
    assert abs(spread.mean()) < 5 * np.sqrt(2 * D * T / n)
