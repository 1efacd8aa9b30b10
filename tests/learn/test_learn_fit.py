"""kl.learn.fit: history, evaluation, clipping, checkpoint resume after SIGKILL (bit
identical to an uninterrupted run), non-finite losses, and a KuraNet toy that trains."""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import kuralab as kl
import kuralab.learn as L

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _fit_child  # noqa: E402


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))]


def test_history_eval_and_netcdf(tmp_path):
    def loss_fn(p, batch, key):
        return jnp.sum((p["w"] - batch) ** 2), {"w0": p["w"][0]}

    calls = []

    def eval_fn(p, key):
        calls.append(1)
        return {"dist": jnp.linalg.norm(p["w"] - 3.0)}

    params, hist = L.fit(
        loss_fn, {"w": jnp.zeros(2)}, lambda s, k: jnp.full(2, 3.0), optax.sgd(0.1),
        steps=20, key=jax.random.key(0), eval_fn=eval_fn, eval_every=5,
        history_path=tmp_path / "h.nc", progress=False,
    )
    assert hist.sizes["step"] == 20 and len(calls) == 4
    assert np.all(np.diff(hist["loss"].values) < 0)
    ev = hist["eval_dist"].values
    assert np.isnan(ev[0]) and np.isfinite(ev[4]) and ev[19] < ev[4]
    # aux is evaluated at the parameters before the step's update: w <- 0.8 w + 0.6
    np.testing.assert_allclose(0.8 * hist["w0"].values[-1] + 0.6, float(params["w"][0]), rtol=1e-6)
    back = kl.io.load(tmp_path / "h.nc")
    np.testing.assert_array_equal(back["loss"].values, hist["loss"].values)
    assert "kuralab_version" in back.attrs


def test_clipping_bounds_the_update():
    def loss_fn(p, batch, key):
        return 1e3 * jnp.sum(p)

    params, hist = L.fit(loss_fn, jnp.zeros(4), iter([None] * 3), optax.sgd(1.0),
                         steps=1, key=jax.random.key(0), max_grad_norm=0.5, progress=False)
    np.testing.assert_allclose(float(jnp.linalg.norm(params)), 0.5, rtol=1e-5)
    np.testing.assert_allclose(float(hist["grad_norm"][0]), 2e3, rtol=1e-5)


def test_checkpoint_resume_after_sigkill_is_identical(tmp_path):
    """Killed with SIGKILL during step 7 and restarted with the same call, the run ends
    with parameters bit-identical to an uninterrupted run."""
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "final.eqx"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    child = [sys.executable, str(HERE / "_fit_child.py"), str(ckpt), str(out)]
    killed = subprocess.run([*child, "7"], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert ckpt.exists() and not out.exists()
    assert not list(tmp_path.glob(".run.ckpt.tmp-*"))  # no torn temporary left behind
    head = ckpt.read_bytes()
    size = int.from_bytes(head[14:22], "little")
    assert json.loads(head[22 : 22 + size])["step"] == 7
    # the same call again (here, in a new process from the killed one's point of view)
    got, _ = _fit_child.run(ckpt)
    straight, hist = _fit_child.run(None)
    model, *_ = _fit_child.problem()
    for a, b in zip(_leaves(got), _leaves(straight), strict=True):
        np.testing.assert_array_equal(a, b)
    # and the resumed history (restored from the checkpoint, then continued) agrees
    header, _ = L.read_checkpoint(ckpt, (model, optax.chain(
        optax.clip_by_global_norm(1.0), optax.adam(1e-2)).init(eqx.filter(model, eqx.is_inexact_array))))
    assert header["step"] == _fit_child.STEPS
    np.testing.assert_array_equal(np.asarray(header["history"]["loss"]), hist["loss"].values)


def test_non_finite_loss_stops_with_step_and_keeps_checkpoint(tmp_path):
    ckpt = tmp_path / "c.ckpt"

    def loss_fn(p, batch, key):
        return jnp.sum(p**2) + jnp.log(batch)  # log(-1) = nan at step 3

    def batches(step, key):
        return jnp.asarray(-1.0 if step == 3 else 1.0)

    with pytest.raises(L.NonFiniteLossError, match=r"non-finite loss at step 3") as info:
        L.fit(loss_fn, jnp.ones(2), batches, optax.sgd(0.1), steps=10, key=jax.random.key(0),
              checkpoint=ckpt, checkpoint_every=1, progress=False)
    err = info.value
    assert err.step == 3 and err.history.sizes["step"] == 3
    assert "\n" not in str(err) and str(ckpt) in str(err)
    np.testing.assert_allclose(np.asarray(err.params), 0.8**3, rtol=1e-6)  # p <- 0.8 p
    like = (jnp.ones(2), optax.sgd(0.1).init(jnp.ones(2)))
    header, (p, _) = L.read_checkpoint(ckpt, like)
    assert header["step"] == 3 and np.all(np.isfinite(np.asarray(p)))
    np.testing.assert_array_equal(np.asarray(p), np.asarray(err.params))


def test_bad_arguments():
    with pytest.raises(ValueError, match="`steps` must be an int >= 0"):
        L.fit(lambda p, b, k: 0.0, jnp.ones(1), iter([]), optax.sgd(0.1), steps=-1,
              key=jax.random.key(0))
    with pytest.raises(TypeError, match="`optimizer` must be an optax"):
        L.fit(lambda p, b, k: 0.0, jnp.ones(1), iter([]), "adam", steps=1,
              key=jax.random.key(0))


def test_trained_kuranet_beats_its_control():
    """Case I on small networks: a few Adam steps of the pair MLP lower the test loss
    of new networks well below the untrained coupling's (same mean degree)."""
    n, kw = 24, dict(burn_in=40, window=20, dt=0.1)
    coupling = L.PairwiseMLPCoupling(3, hidden=(16, 16), key=jax.random.key(0))

    def batches(step, key):
        return L.data.kuranet_disorder(key, n, "I")

    def loss_fn(c, d, key):
        return L.kuranet_loss(c, d, **kw)

    test = [L.data.kuranet_disorder(jax.random.key(100 + i), n, "I") for i in range(4)]
    evaluate = eqx.filter_jit(lambda c, d: L.kuranet_loss(c, d, **kw))

    def test_loss(c):
        return float(np.mean([evaluate(c, d) for d in test]))

    trained, hist = L.fit(loss_fn, coupling, batches, optax.adam(3e-2), steps=25,
                          key=jax.random.key(1), max_grad_norm=1.0, progress=False)
    before, after = test_loss(coupling), test_loss(trained)
    assert after < 0.6 * before, (before, after)
    K = trained.matrix(L.node_features(test[0]))
    np.testing.assert_allclose(float(jnp.sum(K)) / n, 1.0, rtol=1e-4)  # same mean degree
    assert math.isfinite(float(hist["loss"][-1]))
