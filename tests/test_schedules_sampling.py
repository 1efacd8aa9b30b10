"""Schedules (time-dependent coefficients) and frequency/phase sampling."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import kuralab as kl


def test_ramps_hit_endpoints_and_hold():
    for cls in (kl.Linear, kl.Cosine, kl.Geometric):
        s = cls(1.0, 4.0, t0=2.0, t1=6.0)
        np.testing.assert_allclose(s(0.0), 1.0, rtol=1e-6)
        np.testing.assert_allclose(s(2.0), 1.0, rtol=1e-6)
        np.testing.assert_allclose(s(6.0), 4.0, rtol=1e-6)
        np.testing.assert_allclose(s(9.0), 4.0, rtol=1e-6)
    np.testing.assert_allclose(kl.Linear(1.0, 4.0, t0=2.0, t1=6.0)(3.0), 1.75, rtol=1e-6)
    np.testing.assert_allclose(kl.Cosine(0.0, 2.0)(0.5), 1.0, rtol=1e-6)
    np.testing.assert_allclose(kl.Geometric(1.0, 4.0)(0.5), 2.0, rtol=1e-6)
    np.testing.assert_allclose(kl.Constant(3.0)(123.0), 3.0)


def test_table_interpolates_per_node_values():
    ts = jnp.array([0.0, 1.0, 3.0])
    values = jnp.array([[0.0, 10.0], [1.0, 20.0], [5.0, 0.0]])
    table = kl.Table(ts, values)
    np.testing.assert_allclose(table(0.5), [0.5, 15.0], rtol=1e-6)
    np.testing.assert_allclose(table(2.0), [3.0, 10.0], rtol=1e-6)
    np.testing.assert_allclose(table(-1.0), [0.0, 10.0])
    np.testing.assert_allclose(table(9.0), [5.0, 0.0])
    np.testing.assert_allclose(jax.vmap(table)(jnp.array([0.5, 2.0]))[:, 0], [0.5, 3.0])


def test_forcing_schedule_drives_the_model():
    # h(t) switches on at t = 1: before, the oscillator is free (omega = 0, stays put).
    model = kl.Kuramoto(
        jnp.zeros(1), kl.MeanField(0.0), forcing=kl.Forcing(kl.Linear(0.0, 2.0, 1.0, 1.01), 0.0)
    )
    tr = kl.simulate(model, jnp.array([1.0]), t1=20.0, dt=0.01)
    np.testing.assert_allclose(tr.ys[50], [1.0], atol=1e-6)  # t = 0.5
    # then relaxes to the reference phase: tan(theta/2) decays as exp(-h t)
    assert abs(float(tr.final[0])) < 1e-6


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: kl.Linear(0.0, 1.0, t0=1.0, t1=1.0), "t1 > t0"),
        (lambda: kl.Geometric(0.0, 1.0), "> 0"),
        (lambda: kl.Table([0.0, 0.0], [1.0, 2.0]), "strictly increasing"),
        (lambda: kl.Table([0.0, 1.0], [1.0]), "len\\(ts\\)"),
        (lambda: kl.Constant(float("nan")), "finite"),
    ],
)
def test_bad_schedules(make, match):
    with pytest.raises(ValueError, match=match):
        make()


_SCHEDULES = {
    "Constant": lambda a: kl.Constant(a),
    "Linear": lambda a: kl.Linear(a, 2.0, t0=0.0, t1=1.0),
    "Cosine": lambda a: kl.Cosine(a, 2.0, t0=0.0, t1=1.0),
    "Geometric": lambda a: kl.Geometric(a, 2.0, t0=0.0, t1=1.0),
    "Table": lambda a: kl.Table(jnp.array([0.0, 1.0]), jnp.stack([a, a + 1.0])),
}


@pytest.mark.parametrize("name", sorted(_SCHEDULES))
def test_every_schedule_is_constructible_under_jit(name):
    # A learning user builds schedules from (traced) parameters inside jit; the value
    # checks must not convert tracers to bools (Geometric used to raise
    # TracerBoolConversionError here).
    make = _SCHEDULES[name]
    eager = float(make(jnp.asarray(0.5))(0.25))
    traced = jax.jit(lambda a: make(a)(0.25))(jnp.asarray(0.5))
    constant = jax.jit(lambda t: make(0.5)(t))(0.25)  # concrete values, built in jit
    np.testing.assert_allclose(traced, eager, rtol=1e-6)
    np.testing.assert_allclose(constant, eager, rtol=1e-6)
    grad = jax.jit(jax.grad(lambda a: make(a)(0.25)))(jnp.asarray(0.5))
    assert np.isfinite(grad) and grad != 0


@pytest.mark.parametrize(
    "make",
    [
        lambda v: kl.Geometric(v, 1.0),
        lambda v: kl.Geometric(1.0, v),
        lambda v: kl.Linear(0.0, 1.0, t0=1.0, t1=v),
        lambda v: kl.Table(jnp.stack([jnp.zeros(()), v]), jnp.array([1.0, 2.0])),
    ],
)
def test_bad_traced_schedule_values_raise_at_run_time(make):
    run = eqx.filter_jit(lambda v: make(v)(0.5))
    run(jnp.asarray(2.0))  # valid
    with pytest.raises(Exception, match="must be > 0|t1 > t0|strictly increasing"):
        jax.block_until_ready(run(jnp.asarray(0.0)))


@pytest.mark.parametrize(
    "name, dist",
    [
        ("lorentzian", scipy.stats.cauchy(loc=0.2, scale=0.5)),
        ("gaussian", scipy.stats.norm(loc=0.2, scale=0.5)),
        ("uniform", scipy.stats.uniform(loc=-0.3, scale=1.0)),
    ],
)
@pytest.mark.parametrize("sampling", ["random", "quantile"])
def test_frequency_distributions(name, dist, sampling):
    omega = kl.sample_frequencies(jax.random.key(0), 4000, name, loc=0.2, scale=0.5,
                                  sampling=sampling)
    assert omega.shape == (4000,) and bool(jnp.all(jnp.isfinite(omega)))
    p = scipy.stats.kstest(np.asarray(omega, np.float64), dist.cdf).pvalue
    assert p > 1e-3, p
    if sampling == "quantile":
        # deterministic quantiles: empirical CDF within 1/N of the true one
        stat = scipy.stats.kstest(np.asarray(omega, np.float64), dist.cdf).statistic
        assert stat < 1.0 / 4000 + 1e-4


def test_sampling_reproducible_and_keyed():
    a = kl.sample_frequencies(jax.random.key(1), 10, "gaussian")
    b = kl.sample_frequencies(jax.random.key(1), 10, "gaussian")
    c = kl.sample_frequencies(jax.random.key(2), 10, "gaussian")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    q = kl.sample_frequencies(None, 5, "uniform", sampling="quantile")
    np.testing.assert_allclose(q, [-0.8, -0.4, 0.0, 0.4, 0.8], atol=1e-6)


def test_random_phases_uniform_on_torus():
    th = np.asarray(kl.random_phases(jax.random.key(0), 20000), np.float64)
    assert th.min() >= -np.pi and th.max() < np.pi
    assert scipy.stats.kstest(th, scipy.stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(distribution="lorentz"), "did you mean 'lorentzian'"),
        (dict(sampling="quantiles"), "did you mean 'quantile'"),
        (dict(scale=-1.0), "`scale` must be a finite number > 0"),
        (dict(n=0), "`n` must be a positive int"),
    ],
)
def test_bad_sampling_input(kwargs, match):
    args = dict(key=jax.random.key(0), n=10, distribution="gaussian")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        kl.sample_frequencies(args.pop("key"), args.pop("n"), args.pop("distribution"), **args)
