"""kl.basin_fractions and the phase-state classifiers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl


class Bistable(kl.AbstractModel):
    """dx = x - x^3 on R: attractors +1 (basin x > 0) and -1 (basin x < 0)."""

    @property
    def state_shape(self):
        return (1,)

    def drift(self, t, y, y_delayed=None):
        return y - y**3


def _sign(y):
    return jnp.sign(y[0]).astype(jnp.int32)


def _uniform(key):
    return jax.random.uniform(key, (1,), minval=-1.0, maxval=3.0)


@pytest.mark.slow
def test_bistable_basin_fraction_is_the_interval_share():
    # uniform x0 in [-1, 3]: the basin of +1 is 3/4 of it.
    ds = kl.basin_fractions(Bistable(), _uniform, n=3000, t1=20.0, dt=0.1,
                            classify=_sign, key=jax.random.key(0), batch=3000)
    assert list(ds.label.values) == [-1, 1]
    f, se = float(ds.fraction.sel(label=1)), float(ds.fraction_stderr.sel(label=1))
    assert se == pytest.approx(np.sqrt(0.75 * 0.25 / 3000), rel=0.05)
    assert abs(f - 0.75) < 4 * se
    assert int(ds["count"].sum()) == 3000 and ds.attrs["n_failed"] == 0


@pytest.mark.slow
def test_basin_fractions_do_not_depend_on_the_batch_size():
    # sample i uses fold_in(key, i); the last batch is padded
    kw = dict(n=700, t1=20.0, dt=0.1, classify=_sign, key=jax.random.key(0),
              keep_labels=True)
    a = kl.basin_fractions(Bistable(), _uniform, batch=256, **kw)
    b = kl.basin_fractions(Bistable(), _uniform, batch=700, **kw)
    np.testing.assert_array_equal(a["labels"].values, b["labels"].values)


def test_classify_twisted_finds_q_and_rejects_other_states():
    n = 12
    j = jnp.arange(n)
    for q in (-3, -1, 0, 1, 2, 6):
        theta = kl.wrap_phase(0.7 + 2 * jnp.pi * q * j / n)
        assert int(kl.classify_twisted(theta)) == (q if q != -6 else 6)
    noisy = kl.wrap_phase(2 * jnp.pi * j / n + 0.3 * jnp.sin(j))
    assert int(kl.classify_twisted(noisy)) == kl.UNSETTLED
    assert int(kl.classify_synchrony(jnp.full(n, 0.4))) == kl.SYNCHRONISED
    assert int(kl.classify_synchrony(noisy)) == kl.UNSETTLED
    incoherent = jnp.array([0.0, jnp.pi, 0.5, 0.5 + jnp.pi])
    assert int(kl.classify_phase_state(incoherent)) == kl.INCOHERENT


@pytest.mark.slow
def test_ring_basins_are_symmetric_in_q():
    # identical oscillators on a ring, 1 neighbour each side (N = 8): stable twisted
    # states |q| < N/4 (q = 0, +-1); reflection theta -> -theta maps q to -q.
    n = 8
    model = kl.Kuramoto(jnp.zeros(n), kl.LatticeCoupling(jnp.array([1.0, 0.0, 1.0]), (n,)))
    ds = kl.basin_fractions(
        model, lambda k: kl.random_phases(k, n), n=512, t1=60.0, dt=0.1,
        classify=kl.classify_twisted, key=jax.random.key(1),
    )
    labels = set(int(v) for v in ds.label.values)
    assert labels <= {-1, 0, 1, kl.UNSETTLED} and 0 in labels
    f = ds.fraction.to_series()
    assert f.get(kl.UNSETTLED, 0.0) < 0.02
    se = float(ds.fraction_stderr.sel(label=1))
    assert abs(f.get(1, 0.0) - f.get(-1, 0.0)) < 4 * np.sqrt(2) * se + 1e-9
    assert list(ds.label_name.values).count("unsettled") <= 1


def test_bad_input_errors():
    kw = dict(n=4, t1=1.0, dt=0.1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="`classify` must return an integer scalar"):
        kl.basin_fractions(Bistable(), _uniform, classify=lambda y: y[0], **kw)
    with pytest.raises(TypeError, match="`classify` must return an integer scalar"):
        kl.basin_fractions(Bistable(), _uniform, classify=lambda y: y.astype(int), **kw)
    with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
        kl.basin_fractions(Bistable(), _uniform, classify=_sign, **{**kw, "n": 0})
    with pytest.raises(ValueError, match="state shape"):
        kl.basin_fractions(Bistable(), lambda k: jnp.zeros(2), classify=_sign, **kw)
    with pytest.raises(ValueError, match="`key` is required"):
        kl.basin_fractions(Bistable(), _uniform, classify=_sign,
                           **{**kw, "key": None})
    tight = functools.partial(kl.classify_twisted, tol=0.01)
    assert int(tight(jnp.zeros(3))) == 0


@pytest.mark.slow
def test_twisted_basins_study_and_figure_run_end_to_end(tmp_path):
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).parents[1]
    out = tmp_path / "tb.nc"
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, str(root / "studies/twisted_basins.py"), "--n", "12",
                    "--samples", "64", "--t1", "40", "--out", str(out)],
                   check=True, env=env, capture_output=True)
    ds = kl.io.load(out)
    assert int(ds["count"].sum()) == 64 and 0 in ds.label.values
    res = subprocess.run([sys.executable, str(root / "analysis/twisted_basins.py"),
                          str(out)], check=True, env=env, capture_output=True, text=True)
    assert "sigma =" in res.stdout and (tmp_path / "tb.png").exists()
