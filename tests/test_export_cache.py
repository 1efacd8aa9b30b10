"""The on-disk export cache of `simulate`'s compiled solve (kuralab/_export_cache.py):
same results as the normal path, used by a new process without tracing, stale files
replaced, unstable or traced configurations left on the normal path."""

import json
import os
import subprocess
import sys
import textwrap

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab import _export_cache as ec

N = 16


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty export cache directory, with the in-process state reset around the
    test (other tests must see the cache as they found it: off unless configured)."""
    directory = tmp_path / "export"
    monkeypatch.setenv(ec.ENV_VAR, str(directory))
    _reset()
    yield directory
    _reset()


def _reset():
    ec._loaded.clear()
    ec._skipped.clear()
    ec.counts.clear()


def _forget_loaded():
    """Drop the entries held in memory: the next call reads its file again."""
    ec._loaded.clear()
    ec._skipped.clear()


def _entries(directory, suffix=".kxp"):
    return sorted(directory.glob(f"*{suffix}")) if directory.exists() else []


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    omega = jnp.asarray(rng.normal(0, 1, N), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-3, 3, N), jnp.float32)
    return omega, y0


def _configurations():
    omega, y0 = _setup()
    K = jnp.asarray(np.random.default_rng(1).uniform(0, 2 / N, (N, N)), jnp.float32)
    key = jax.random.key(3)
    return {
        "meanfield-final": (
            kl.Kuramoto(omega, kl.MeanField(2.0)),
            y0,
            dict(t1=1.0, dt=0.05, saveat=kl.SaveAt(final=True)),
        ),
        "dense-every": (
            kl.Kuramoto(omega, kl.DenseCoupling(K)),
            y0,
            dict(t1=1.0, dt=0.05, saveat=kl.SaveAt(every=4)),
        ),
        "noise-increments": (
            kl.Kuramoto(omega, kl.MeanField(2.0), noise=kl.Noise(0.1)),
            y0,
            dict(t1=1.0, dt=0.05, solver="euler", key=key, brownian="increments"),
        ),
        "delay": (
            kl.Kuramoto(omega, kl.MeanField(2.0), delays=kl.Delays(0.5)),
            y0,
            dict(t1=1.0, dt=0.05, saveat=kl.SaveAt(every=3)),
        ),
        "adaptive": (
            kl.Kuramoto(omega, kl.MeanField(2.0)),
            y0,
            dict(
                t1=1.0,
                dt=0.05,
                solver="tsit5",
                stepsize_controller=dfx.PIDController(rtol=1e-5, atol=1e-5),
                saveat=kl.SaveAt(final=True),
            ),
        ),
    }


def _assert_same(a: kl.Trajectory, b: kl.Trajectory):
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if eqx.is_array(x):
            assert np.asarray(x).dtype == np.asarray(y).dtype
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            assert x == y


@pytest.mark.parametrize("name", list(_configurations()))
def test_same_results_as_the_normal_path(cache, monkeypatch, name):
    model, y0, kwargs = _configurations()[name]
    exported = kl.simulate(model, y0, **kwargs)
    assert ec.counts["export"] == 1 and len(_entries(cache)) == 1
    again = kl.simulate(model, y0, **kwargs)
    assert ec.counts["hit"] == 1
    _forget_loaded()
    loaded = kl.simulate(model, y0, **kwargs)
    assert ec.counts["load"] == 1
    monkeypatch.setenv(ec.ENV_VAR, "0")
    normal = kl.simulate(model, y0, **kwargs)
    for tr in (exported, again, loaded):
        _assert_same(tr, normal)


def test_new_values_of_the_same_structure_share_an_entry(cache):
    omega, y0 = _setup()
    out = []
    for K in (0.5, 3.0):
        model = kl.Kuramoto(omega, kl.MeanField(K))
        out.append(
            kl.simulate(model, y0, t1=1.0, dt=0.05, saveat=kl.SaveAt(final=True))
        )
    assert ec.counts["export"] == 1 and ec.counts["hit"] == 1
    assert not np.array_equal(out[0].final, out[1].final)


def test_failure_still_raises_through_the_cache(cache):
    # omega * dt overflows float32 in the first Euler step (as in test_integrate).
    model = kl.Kuramoto(jnp.array([3e38, 1.0], dtype=jnp.float32), kl.MeanField(0.0))
    for _ in range(2):
        with pytest.raises(kl.SimulationError, match=r"non-finite.*t = 2\."):
            kl.simulate(model, jnp.zeros(2), t1=10.0, dt=2.0, solver="euler")
    assert ec.counts["export"] == 1 and ec.counts["hit"] == 1
    tr = kl.simulate(model, jnp.zeros(2), t1=10.0, dt=2.0, solver="euler", throw=False)
    assert tr.result == kl.RESULTS.nonfinite_state


def test_traced_calls_take_the_normal_path(cache, monkeypatch):
    omega, y0 = _setup()

    def final(K, y0):
        model = kl.Kuramoto(omega, kl.MeanField(K))
        return kl.simulate(
            model, y0, t1=1.0, dt=0.05, saveat=kl.SaveAt(final=True)
        ).final

    Ks = jnp.array([0.5, 1.0, 3.0])
    got = (
        jax.jit(final)(1.0, y0),
        jax.vmap(final, (0, None))(Ks, y0),
        jax.grad(lambda K: jnp.sum(jnp.sin(final(K, y0))))(1.0),
    )
    assert ec.counts["export"] == 0 and not _entries(cache)
    monkeypatch.setenv(ec.ENV_VAR, "0")
    want = (
        jax.jit(final)(1.0, y0),
        jax.vmap(final, (0, None))(Ks, y0),
        jax.grad(lambda K: jnp.sum(jnp.sin(final(K, y0))))(1.0),
    )
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def _user_fn(t, y):
    return jnp.mean(jnp.cos(y))


class _UserModel(kl.Kuramoto):
    """A user's subclass: its code is not part of any key."""


def test_unstable_configurations_skip_the_cache(cache):
    omega, y0 = _setup()
    model = kl.Kuramoto(omega, kl.MeanField(2.0))
    kl.simulate(model, y0, t1=1.0, dt=0.05, saveat=kl.SaveAt(fn=lambda t, y: y[0]))
    kl.simulate(model, y0, t1=1.0, dt=0.05, saveat=kl.SaveAt(fn=_user_fn))
    kl.simulate(_UserModel(omega, kl.MeanField(2.0)), y0, t1=1.0, dt=0.05)
    assert ec.counts["skip"] == 3 and ec.counts["export"] == 0
    assert not _entries(cache)


def test_describe_rejects_what_could_differ_between_processes():
    for bad in (lambda x: x, _user_fn, object(), _UserModel, np.sin.__call__):
        with pytest.raises(ec._Unstable):
            ec._describe(bad)
    # Sets are sorted, arrays hashed by value (never a summarised repr).
    tags = frozenset({kl.symmetric_tag, kl.nonnegative_tag})
    assert ec._describe(tags) == ec._describe(frozenset(sorted(tags, key=repr)))
    big = np.zeros(5000)
    other = big.copy()
    other[2500] = 1.0
    assert ec._describe(big) != ec._describe(other)
    assert ec._describe(jnp.sin) == "function:jax.numpy.sin"


def test_key_follows_static_values_and_shapes(cache):
    omega, y0 = _setup()
    model = kl.Kuramoto(omega, kl.MeanField(2.0))
    kl.simulate(model, y0, t1=1.0, dt=0.05)
    kl.simulate(model, y0, t1=1.0, dt=0.05)  # same key
    kl.simulate(model, y0, t1=1.0, dt=0.1)  # static step count
    kl.simulate(model, y0, t1=1.0, dt=0.05, solver="heun")  # static solver
    small = kl.Kuramoto(omega[:8], kl.MeanField(2.0))
    kl.simulate(small, y0[:8], t1=1.0, dt=0.05)  # shapes
    assert ec.counts["export"] == 4 and len(_entries(cache)) == 4


@pytest.mark.slow
def test_key_follows_dtypes(cache):
    omega, y0 = _setup()
    model = kl.Kuramoto(omega, kl.MeanField(2.0))
    kl.simulate(model, y0, t1=1.0, dt=0.05)
    assert ec.counts["export"] == 1
    # dtypes: float16 phases with float32 frequencies promote differently from float32
    # ones (another program), so they are another key; float32 again is a load
    half = kl.simulate(model, y0.astype(jnp.float16), t1=1.0, dt=0.05)
    assert ec.counts["export"] == 2 and len(_entries(cache)) == 2
    with jax.enable_x64(True):  # float64 frequencies and phases: another key
        model64 = kl.Kuramoto(omega.astype(jnp.float64), kl.MeanField(2.0))
        tr64 = kl.simulate(model64, y0.astype(jnp.float64), t1=1.0, dt=0.05)
    assert ec.counts["export"] == 3 and len(_entries(cache)) == 3
    assert tr64.ys.dtype == jnp.float64
    _forget_loaded()
    again = kl.simulate(model, y0.astype(jnp.float16), t1=1.0, dt=0.05)
    assert ec.counts["export"] == 3 and ec.counts["load"] >= 1
    np.testing.assert_array_equal(np.asarray(again.ys), np.asarray(half.ys))


@pytest.mark.slow
def test_entries_are_invalidated_by_sources_versions_and_jax_config(cache, monkeypatch):
    """A change of kuralab's sources (without a version bump), of a dependency's
    version or of JAX's configuration is a new key: the old entry is never loaded."""
    from kuralab import _export_key as ek

    omega, y0 = _setup()
    model = kl.Kuramoto(omega, kl.MeanField(2.0))
    kwargs = dict(t1=1.0, dt=0.05, saveat=kl.SaveAt(final=True))
    first = kl.simulate(model, y0, **kwargs)
    _forget_loaded()
    kl.simulate(model, y0, **kwargs)
    assert dict(ec.counts) == {"export": 1, "load": 1}
    changes = [
        ("_source_fingerprint", lambda: "0" * 64),
        ("_versions", lambda: "jax=0.0.0;jaxlib=0.0.0"),
    ]
    for i, (name, fake) in enumerate(changes, start=2):
        with monkeypatch.context() as m:
            m.setattr(ek, name, fake)
            _forget_loaded()
            ec.counts.clear()
            tr = kl.simulate(model, y0, **kwargs)
        assert dict(ec.counts) == {"export": 1}, name
        assert len(_entries(cache)) == i, name
        _assert_same(tr, first)
    previous = jax.config.jax_default_matmul_precision
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        _forget_loaded()
        ec.counts.clear()
        tr = kl.simulate(model, y0, **kwargs)
    finally:
        jax.config.update("jax_default_matmul_precision", previous)
    assert dict(ec.counts) == {"export": 1} and len(_entries(cache)) == 4
    _assert_same(tr, first)
    # back to the original environment: the first entry loads again
    _forget_loaded()
    ec.counts.clear()
    kl.simulate(model, y0, **kwargs)
    assert dict(ec.counts) == {"load": 1}


def test_stale_or_foreign_files_are_replaced(cache, monkeypatch):
    omega, y0 = _setup()
    model = kl.Kuramoto(omega, kl.MeanField(2.0))
    kwargs = dict(t1=1.0, dt=0.05, saveat=kl.SaveAt(final=True))
    first = kl.simulate(model, y0, **kwargs)
    (path,) = _entries(cache)
    good = path.read_bytes()
    header = good[len(ec._MAGIC) + 8 :]
    foreign = good.replace(b'"key": "', b'"key": "another ', 1)
    for damaged in (b"garbage", good[: len(good) // 2], foreign, header):
        path.write_bytes(damaged)
        _forget_loaded()
        ec.counts.clear()
        tr = kl.simulate(model, y0, **kwargs)
        assert ec.counts["stale"] == 1 and ec.counts["export"] == 1
        _assert_same(tr, first)
        assert path.read_bytes()[: len(ec._MAGIC)] == ec._MAGIC
    _forget_loaded()
    kl.simulate(model, y0, **kwargs)
    assert ec.counts["load"] == 1


def test_entry_that_fails_to_run_falls_back(cache, monkeypatch):
    omega, y0 = _setup()
    model = kl.Kuramoto(omega, kl.MeanField(2.0))
    first = kl.simulate(model, y0, t1=1.0, dt=0.05)
    (digest,) = ec._loaded

    def broken(arrays):
        raise RuntimeError("cannot run")

    ec._loaded[digest] = broken
    tr = kl.simulate(model, y0, t1=1.0, dt=0.05)
    assert ec.counts["fallback"] == 1 and digest in ec._skipped
    _assert_same(tr, first)


def test_configurations_that_cannot_be_exported_are_remembered(cache, monkeypatch):
    omega, y0 = _setup()
    model = kl.Kuramoto(omega, kl.MeanField(2.0))

    def refuse(fn, call):
        raise ValueError("cannot serialize a host callback")

    monkeypatch.setattr(ec, "_export", refuse)
    tr = kl.simulate(model, y0, t1=1.0, dt=0.05)
    (skip,) = _entries(cache, ".skip")
    assert "host callback" in skip.read_text()
    _forget_loaded()
    ec.counts.clear()
    kl.simulate(model, y0, t1=1.0, dt=0.05)
    assert ec.counts["skip"] == 1 and not _entries(cache)
    monkeypatch.setenv(ec.ENV_VAR, "0")
    _assert_same(tr, kl.simulate(model, y0, t1=1.0, dt=0.05))


def _with_host_callbacks():
    """Configurations whose compiled solve has a host callback (an `eqx.error_if` on
    traced values inside diffrax, or a progress meter): `jax.export` refuses them."""
    omega, y0 = _setup()
    plain = kl.Kuramoto(omega, kl.MeanField(2.0))
    noisy = kl.Kuramoto(omega, kl.MeanField(2.0), noise=kl.Noise(0.1))
    return {
        # diffrax's VirtualBrownianTree checks every evaluation time is in range.
        "noise-tree": (noisy, y0, dict(t1=1.0, dt=0.05, key=jax.random.key(3))),
        # diffrax checks that SaveAt ts are sorted and within [t0, t1].
        "saveat-ts": (
            plain,
            y0,
            dict(t1=1.0, dt=0.05, saveat=kl.SaveAt(ts=jnp.linspace(0, 1, 5))),
        ),
        "progress": (plain, y0, dict(t1=1.0, dt=0.05, progress=True)),
    }


@pytest.mark.parametrize("name", list(_with_host_callbacks()))
def test_host_callbacks_are_not_exported(cache, monkeypatch, name):
    model, y0, kwargs = _with_host_callbacks()[name]
    tr = kl.simulate(model, y0, **kwargs)
    assert ec.counts["skip"] == 1 and not _entries(cache)
    (skip,) = _entries(cache, ".skip")
    assert "callback" in skip.read_text()
    monkeypatch.setenv(ec.ENV_VAR, "0")
    _assert_same(tr, kl.simulate(model, y0, **kwargs))


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.delenv(ec.ENV_VAR, raising=False)
    previous = jax.config.jax_compilation_cache_dir
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        assert ec.cache_dir() is None  # off unless on-disk caching was asked for
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        assert ec.cache_dir() == tmp_path / ec.SUBDIR
        for off in ("0", "off", "", "No"):
            monkeypatch.setenv(ec.ENV_VAR, off)
            assert ec.cache_dir() is None
        monkeypatch.setenv(ec.ENV_VAR, str(tmp_path / "mine"))
        assert ec.cache_dir() == tmp_path / "mine"
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)


_CHILD = textwrap.dedent(
    """
    import json
    import sys

    import diffrax
    import jax
    import jax.numpy as jnp
    import numpy as np

    calls = []
    original = diffrax.diffeqsolve

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    diffrax.diffeqsolve = counting  # kuralab looks it up at call time
    import kuralab as kl
    from kuralab import _export_cache as ec

    rng = np.random.default_rng(0)
    omega = jnp.asarray(rng.normal(0, 1, 16), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-3, 3, 16), jnp.float32)
    model = kl.Kuramoto(omega, kl.MeanField(2.0), noise=kl.Noise(0.1))
    tr = kl.simulate(
        model, y0, t1=1.0, dt=0.05, key=jax.random.key(1), brownian="increments",
        saveat=kl.SaveAt(every=5),
    )
    out = dict(counts=dict(ec.counts), traced=len(calls))
    out.update(lapack_initialised="scipy.linalg" in sys.modules)
    out.update(ys=np.asarray(tr.ys).tolist(), turns=np.asarray(tr.turns).tolist())
    print(json.dumps(out))
    """
)


def _child(env, script=_CHILD):
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_new_process_uses_the_cache_without_tracing(tmp_path):
    env = {ec.ENV_VAR: str(tmp_path / "export")}
    cold = _child(env)
    warm = _child(env)
    normal = _child({ec.ENV_VAR: "0"})
    assert cold["counts"] == {"export": 1} and cold["traced"] == 1
    assert warm["counts"] == {"load": 1} and warm["traced"] == 0
    # No LAPACK call in this solve: the warm process skips JAX's LAPACK set-up (which
    # imports scipy.linalg).
    assert not warm["lapack_initialised"]
    assert normal["counts"] == {} and normal["traced"] == 1
    for out in (cold, warm):
        assert out["ys"] == normal["ys"] and out["turns"] == normal["turns"]


@pytest.mark.slow
def test_two_concurrent_writers_leave_one_whole_entry(tmp_path):
    """Two processes exporting the same configuration at once: both succeed with the
    normal path's data, one whole entry remains (atomic replace), and a third process
    loads it."""
    env = {**os.environ, ec.ENV_VAR: str(tmp_path / "export")}
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert all(out["counts"].get("export", 0) + out["counts"].get("load", 0) == 1
               for out in outs), outs
    assert len(_entries(tmp_path / "export")) == 1
    assert not list((tmp_path / "export").glob(".*tmp*"))  # no temporary left
    warm = _child({ec.ENV_VAR: str(tmp_path / "export")})
    assert warm["counts"] == {"load": 1} and warm["traced"] == 0
    normal = _child({ec.ENV_VAR: "0"})
    for out in (*outs, warm):
        assert out["ys"] == normal["ys"] and out["turns"] == normal["turns"]


_LAPACK_CHILD = textwrap.dedent(
    """
    import json
    import sys

    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    from kuralab import _export_cache as ec

    solve = eqx.filter_jit(lambda A, b: {"x": jnp.linalg.solve(A, b), "n": 3})
    A = jnp.array([[2.0, 1.0], [1.0, 3.0]])
    out = ec.cached_call(solve, (A, jnp.array([1.0, 2.0])), {})
    x = np.asarray(out["x"]).tolist()
    lapack = "scipy.linalg" in sys.modules
    print(json.dumps(dict(counts=dict(ec.counts), x=x, n=out["n"], lapack=lapack)))
    """
)


def test_entries_with_lapack_calls_initialise_lapack(tmp_path):
    env = {ec.ENV_VAR: str(tmp_path / "export")}
    cold = _child(env, _LAPACK_CHILD)
    warm = _child(env, _LAPACK_CHILD)
    assert cold["counts"] == {"export": 1} and warm["counts"] == {"load": 1}
    assert warm["lapack"] and warm["n"] == 3
    np.testing.assert_allclose(warm["x"], [0.2, 0.6], rtol=1e-6)
    assert warm["x"] == cold["x"]
