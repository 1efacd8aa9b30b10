"""The study runner at scale: chunks persisted one file each, resume after SIGKILL,
an atomic final write, and a Dask backend (a real LocalCluster of 2 workers) that gives
bit-for-bit the data of the in-process run."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import kuralab as kl
from kuralab._study import plan, run as study_run, store
from kuralab.cli import main
from kuralab.study import (
    ChunkError,
    ChunkStoreError,
    ClusterError,
    parse_spec,
    run_study,
)

ROOT = pathlib.Path(__file__).parents[1]

#: 8 points in chunks of 3: three chunks, the last one padded.
SPEC = """
[study]
name = "runner"

[model]
kind = "kuramoto"
n = 32

[model.frequencies]
distribution = "lorentzian"
scale = 0.5
sampling = "random"

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.5, 1.0, 2.0, 3.0]
seeds = 2

[solve]
t1 = 2.0
dt = 0.1
solver = "rk4"
save_every = 2

[observe]
window = 1.0

[output]
chunk_size = 3
"""
CHUNKS = 3


def run(path, text=SPEC, **kwargs) -> xr.Dataset:
    kwargs.setdefault("progress", False)
    kwargs.setdefault("compile_cache", False)
    out = run_study(parse_spec(text), path, spec_text=text, **kwargs)
    assert out == path
    return kl.io.load(path)


def data(ds: xr.Dataset) -> xr.Dataset:
    """`ds` without global attributes (they hold the creation time)."""
    out = ds.copy()
    out.attrs = {}
    return out


def chunk_files(out: pathlib.Path) -> list[str]:
    return sorted(p.name for p in store.chunk_dir(out).glob("chunk-*.nc"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A persistent compilation cache shared by the subprocesses and Dask workers of
    this module (the first compile writes it, the others load it)."""
    return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """The uninterrupted in-process run, by the command line in a subprocess (so it
    fills the compilation cache without pointing this process's JAX at it)."""
    tmp = tmp_path_factory.mktemp("reference")
    spec, out = write_spec(tmp), tmp / "ref.nc"
    env = {**os.environ, "KURALAB_CACHE_DIR": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-m", "kuralab.cli", "run", spec, "--out", out, "-q"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return kl.io.load(out)


@pytest.fixture
def no_cache(monkeypatch, cache):
    """In-process `main(["run", ...])` must not point this test process's JAX at a
    persistent cache; Dask workers and subprocesses (inheriting the environment) use
    the module's."""
    monkeypatch.setattr(study_run, "enable_compile_cache", lambda *a, **k: None)
    monkeypatch.setenv("KURALAB_CACHE_DIR", str(cache))


def write_spec(tmp_path, text=SPEC) -> pathlib.Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def assert_one_error_line(stderr: str, *needles: str):
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], stderr


# ---------------------------------------------------------------------------------
# Chunk files
# ---------------------------------------------------------------------------------


def test_chunk_file_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "R": rng.random(5).astype(np.float32),
        "R_t": rng.random((5, 7)),
        "result": np.arange(5, dtype=np.int32),
        "flag": np.array([True, False, True, True, False]),
        "Z": (rng.random((5, 2)) + 1j * rng.random((5, 2))).astype(np.complex64),
        "nan": np.array([np.nan, -np.inf, 0.0, -0.0, 1e-45], dtype=np.float32),
    }
    path = tmp_path / "c.nc"
    store._write_chunk(path, arrays, {"kuralab_chunk": 0})
    back, attrs = store._read_chunk(path)
    assert attrs["kuralab_chunk"] == 0
    assert back.keys() == arrays.keys()
    for name, value in arrays.items():
        assert back[name].dtype == value.dtype, name
        assert back[name].tobytes() == value.tobytes(), name
    assert [p.name for p in tmp_path.iterdir()] == ["c.nc"]


# ---------------------------------------------------------------------------------
# In-process runs: persisted chunks, atomic final write
# ---------------------------------------------------------------------------------


def test_each_chunk_is_persisted_before_the_next(tmp_path, monkeypatch, reference):
    out = tmp_path / "out.nc"
    real = plan.run_chunk
    seen = []

    def spy(spec, grid, where):
        seen.append(chunk_files(out))
        return real(spec, grid, where)

    monkeypatch.setattr(plan, "run_chunk", spy)
    ds = run(out)
    assert [len(files) for files in seen] == list(range(CHUNKS))
    assert seen[-1] == [f"chunk-0000{i}-of-00003.nc" for i in range(CHUNKS - 1)]
    xr.testing.assert_identical(data(ds), data(reference))
    # Success removes the chunk directory: only the result is left.
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]


def test_chunking_does_not_change_data(tmp_path, reference):
    whole = run(tmp_path / "whole.nc", SPEC.replace("chunk_size = 3", "chunk_size = 8"))
    xr.testing.assert_identical(data(whole), data(reference))


def test_manifest(tmp_path, monkeypatch):
    out = tmp_path / "out.nc"

    def stop(spec, grid, where):
        raise KeyboardInterrupt

    monkeypatch.setattr(plan, "run_chunk", stop)
    with pytest.raises(KeyboardInterrupt):
        run(out)
    # Nothing finished: nothing left behind.
    assert list(tmp_path.iterdir()) == []

    spec = parse_spec(SPEC)
    identity = store._identity(spec, 8, plan.chunks(plan.grid(spec), 3))
    assert identity["points"] == 8 and identity["chunks"] == 3
    assert identity["chunk_size"] == 3 and identity["dtype"] == "float32"
    assert identity["spec"] == spec.to_toml()
    json.dumps(identity)  # the manifest is JSON
    changed = parse_spec(SPEC.replace("t1 = 2.0", "t1 = 3.0"))
    other = store._identity(changed, 8, plan.chunks(plan.grid(changed), 3))
    assert other["spec_sha256"] != identity["spec_sha256"]
    why = store._difference(identity, other)
    assert why == "a different spec: [solve] t1 = 3.0 here, t1 = 2.0 in the chunks"
    assert store._difference(identity, dict(identity)) is None


def test_final_write_is_atomic_and_resume_reuses_every_chunk(
    tmp_path, monkeypatch, reference
):
    out = tmp_path / "out.nc"
    real = xr.Dataset.to_netcdf

    def broken(self, path=None, *args, **kwargs):
        if pathlib.Path(path).name.startswith(".out.nc.tmp-"):
            pathlib.Path(path).write_bytes(b"CDF\x01 half a file")
            raise OSError(28, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(OSError, match="No space left"):
        run(out)
    # No final file, no temporary; every chunk is kept.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc.chunks"]
    assert len(chunk_files(out)) == CHUNKS
    monkeypatch.undo()

    # Without resume the finished chunks are an error, not thrown away.
    with pytest.raises(ChunkStoreError, match=r"3 of 3 finished chunks.*--resume"):
        run(out)
    assert len(chunk_files(out)) == CHUNKS

    # Resuming computes nothing again.
    def never(*args):
        raise AssertionError("a finished chunk ran again")

    monkeypatch.setattr(plan, "run_chunk", never)
    ds = run(out, resume=True)
    xr.testing.assert_identical(data(ds), data(reference))
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]


def test_resume_repairs_and_cleans(tmp_path, monkeypatch, reference, capsys):
    out = tmp_path / "out.nc"
    real = plan.run_chunk
    calls = []

    def third_fails(spec, grid, where):
        calls.append(where.start)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while chunk 3 is in flight
        return real(spec, grid, where)

    monkeypatch.setattr(plan, "run_chunk", third_fails)
    with pytest.raises(KeyboardInterrupt):
        run(out)
    directory = store.chunk_dir(out)
    assert chunk_files(out) == ["chunk-00000-of-00003.nc", "chunk-00001-of-00003.nc"]
    # What a SIGKILL during a write would leave, and a damaged chunk file.
    (directory / ".chunk-00002-of-00003.nc.tmp-1-abcd").write_bytes(b"CDF")
    (tmp_path / ".out.nc.tmp-1-abcd").write_bytes(b"CDF")
    (directory / "chunk-00001-of-00003.nc").write_bytes(b"not netCDF")

    calls.clear()
    monkeypatch.setattr(plan, "run_chunk", real)
    ds = run(out, resume=True, progress=True)
    xr.testing.assert_identical(data(ds), data(reference))
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]
    err = capsys.readouterr().err.splitlines()
    assert "chunk-00001-of-00003.nc: unreadable" in err[0]
    assert "resuming: 1 of 3 chunks (3 of 8 points) already finished" in err[1]
    assert err[2].startswith("[runner] chunk 2/3 (6/8 points)")
    assert "points/s, ETA" in err[2]
    assert err[3].startswith("[runner] chunk 3/3 (8/8 points)")


def _interrupted_after_the_first_chunk(out, monkeypatch):
    """Run the spec to `out`, interrupted (KeyboardInterrupt) once chunk 0 is written;
    `plan.run_chunk` is restored afterwards."""
    real = plan.run_chunk

    def first_only(spec, grid, where):
        if where.start:
            raise KeyboardInterrupt
        return real(spec, grid, where)

    with monkeypatch.context() as m:
        m.setattr(plan, "run_chunk", first_only)
        with pytest.raises(KeyboardInterrupt):
            run(out)


def test_resume_with_a_changed_spec_fails(tmp_path, monkeypatch):
    out = tmp_path / "out.nc"
    _interrupted_after_the_first_chunk(out, monkeypatch)
    changed = SPEC.replace("dt = 0.1", "dt = 0.05")
    for resume in (True, False):
        with pytest.raises(ChunkStoreError) as info:
            run(out, changed, resume=resume)
        message = str(info.value)
        assert "\n" not in message
        assert "holds 1 finished chunks of another run" in message
        assert "[solve] dt = 0.05 here, dt = 0.1 in the chunks" in message
        assert "remove the directory to start over" in message
    assert chunk_files(out) == ["chunk-00000-of-00003.nc"]  # untouched


@pytest.mark.slow
def test_resume_refused_on_changed_dtype_version_or_format(tmp_path, monkeypatch):
    """The manifest's identity beyond the spec: the float dtype, the kuralab version
    and the chunk-directory format each refuse a resume in one line naming both
    values, and leave the finished chunk alone."""
    import jax

    out = tmp_path / "out.nc"
    _interrupted_after_the_first_chunk(out, monkeypatch)

    def refused(*needles):
        with pytest.raises(ChunkStoreError) as info:
            run(out, resume=True)
        message = str(info.value)
        assert "\n" not in message and "holds 1 finished chunks" in message, message
        for needle in needles:
            assert needle in message, message

    with jax.enable_x64(True):
        refused("computed in float32, this run computes in float64")
    with monkeypatch.context() as m:
        m.setattr(store, "_version", lambda: "999.0")
        refused("written by kuralab", "this is kuralab 999.0")
    fmt = store.FORMAT
    with monkeypatch.context() as m:
        m.setattr(store, "FORMAT", fmt + 1)
        refused(f"chunk-directory format {fmt}, this kuralab writes {fmt + 1}")
    assert chunk_files(out) == ["chunk-00000-of-00003.nc"]  # untouched


def test_resume_with_nothing_to_resume_runs(tmp_path, reference):
    ds = run(tmp_path / "out.nc", resume=True)
    xr.testing.assert_identical(data(ds), data(reference))
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]


def test_a_foreign_directory_is_left_alone(tmp_path):
    out = tmp_path / "out.nc"
    directory = store.chunk_dir(out)
    directory.mkdir()
    (directory / "notes.txt").write_text("mine")
    with pytest.raises(ChunkStoreError, match="not a kuralab chunk directory"):
        run(out, resume=True)
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]  # untouched


def test_a_directory_in_use_is_refused(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out.nc"
    directory = store.chunk_dir(out)
    directory.mkdir()
    with open(directory / "lock", "w") as f:
        f.write("12345")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(ChunkStoreError, match=r"in use by another.*pid 12345"):
            run(out, resume=True)


# ---------------------------------------------------------------------------------
# SIGKILL and resume, through the command line
# ---------------------------------------------------------------------------------


def test_sigkill_then_resume_gives_the_uninterrupted_result(
    tmp_path, reference, no_cache
):
    spec = write_spec(tmp_path)
    out = tmp_path / "out.nc"
    env = dict(os.environ)
    # Test hook: sleep 1 s before each chunk, so the kill lands mid-run.
    env[study_run.DELAY_ENV] = "1.0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuralab.cli", "run", str(spec), "--out", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = store.chunk_dir(out) / "chunk-00000-of-00003.nc"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()

    # The finished chunk is intact and is what an uninterrupted run computes; the
    # chunk in flight is lost; there is no final file.
    finished = chunk_files(out)
    assert finished and len(finished) < CHUNKS, finished
    assert not out.exists()
    spec_ = parse_spec(SPEC)
    grid = plan.grid(spec_)
    chunks = plan.chunks(grid, 3)
    for name in finished:
        i = int(name.split("-")[1])
        arrays, _ = store._read_chunk(store.chunk_dir(out) / name)
        expected = plan.run_chunk(spec_, grid, chunks[i])
        assert arrays.keys() == expected.keys()
        for key in arrays:
            assert arrays[key].tobytes() == expected[key].tobytes(), key

    assert main(["run", str(spec), "--out", str(out), "--resume", "-q"]) == 0
    xr.testing.assert_identical(data(kl.io.load(out)), data(reference))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc", "spec.toml"]


# ---------------------------------------------------------------------------------
# Dask: a real LocalCluster of 2 workers
# ---------------------------------------------------------------------------------


def test_dask_workers_give_identical_data(tmp_path, reference, no_cache, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "dask.nc"
    assert main(["run", str(spec), "--out", str(out), "--workers", "2"]) == 0
    xr.testing.assert_identical(data(kl.io.load(out)), data(reference))
    assert not store.chunk_dir(out).exists()
    err = capsys.readouterr().err
    assert err.count("[runner] chunk ") == CHUNKS, err


@pytest.fixture(scope="module")
def cluster(cache):
    distributed = pytest.importorskip("distributed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KURALAB_CACHE_DIR", str(cache))
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            yield cluster


def _failing_task(spec, start, stop, *args):
    """A Dask task that fails on the last chunk (workers import it from here)."""
    if stop == 8:
        raise MemoryError("worker ran out of memory\nsecond line")
    return _real_task(spec, start, stop, *args)


_real_task = study_run._run_chunk_task


def test_dask_scheduler_failure_and_resume(tmp_path, reference, cluster, monkeypatch):
    out = tmp_path / "out.nc"
    ds = run(out, scheduler=cluster.scheduler_address, compile_cache=True)
    xr.testing.assert_identical(data(ds), data(reference))

    # A chunk failing on a worker: one line, the finished chunks kept.
    other = tmp_path / "other.nc"
    monkeypatch.setattr(study_run, "_run_chunk_task", _failing_task)
    with pytest.raises(ChunkError) as info:
        run(other, scheduler=cluster.scheduler_address)
    message = str(info.value)
    assert "\n" not in message
    assert "chunk 3 of 3 (points 6..7) failed on a Dask worker" in message
    assert "MemoryError: worker ran out of memory second line" in message
    assert "--resume" in message
    assert chunk_files(other) == [
        "chunk-00000-of-00003.nc",
        "chunk-00001-of-00003.nc",
    ]
    assert not other.exists()
    monkeypatch.undo()
    import dask

    assert dask.config.get("scheduler", None) is None  # no default client left
    ds = run(other, resume=True)  # in-process: the backends are interchangeable
    xr.testing.assert_identical(data(ds), data(reference))


def test_bad_backend_arguments(tmp_path):
    for workers in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="workers"):
            run(tmp_path / "x.nc", workers=workers)
    with pytest.raises(ValueError, match="not both"):
        run(tmp_path / "x.nc", workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(TypeError, match="scheduler"):
        run(tmp_path / "x.nc", scheduler=8786)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_scheduler(tmp_path):
    dask = pytest.importorskip("dask")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        start = time.monotonic()
        with pytest.raises(ClusterError, match="cannot connect to the Dask scheduler"):
            run(tmp_path / "x.nc", scheduler="tcp://127.0.0.1:1")
        assert time.monotonic() - start < 10
    assert list(tmp_path.iterdir()) == []
    # A failed connection leaves no Dask client configured as the default scheduler
    # (xarray would then send its own computations there).
    assert dask.config.get("scheduler", None) is None


@pytest.mark.slow
def test_float64_through_the_runner_and_the_cli(tmp_path, cache):
    """Under x64 a study computes and stores float64, every point equals a direct
    float64 kl.simulate of the spec's model (mean R over the window's saves, to 1e-12:
    only summation order differs), and the CLI under JAX_ENABLE_X64=1 writes the same
    file bit for bit. (A seed's frequencies and phases are drawn in the run's dtype,
    so float64 and float32 runs of one spec are different samples.)"""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        ds = run(tmp_path / "x64.nc")
        floating = [v for v in ds.data_vars if ds[v].dtype.kind == "f"]
        assert floating and all(ds[v].dtype == np.float64 for v in floating), {
            v: ds[v].dtype for v in ds.data_vars
        }
        make = plan.point_model(parse_spec(SPEC))
        for K in (0.5, 3.0):
            for seed in (0, 1):
                model, y0 = make(seed=seed, K=jnp.float64(K), lag=jnp.float64(0.0))
                tr = kl.simulate(model, y0, t1=2.0, dt=0.1, solver="rk4",
                                 saveat=kl.SaveAt(every=2))
                assert tr.ys.dtype == jnp.float64
                R_t = np.abs(np.mean(np.exp(1j * np.asarray(tr.ys)), axis=-1))
                window = np.asarray(tr.ts) >= 1.0 - 1e-9  # [observe] window = 1.0
                point = ds.sel(K=K, seed=seed)
                np.testing.assert_allclose(point.R_t, R_t, rtol=0, atol=1e-12)
                np.testing.assert_allclose(point.R, R_t[window].mean(), rtol=0, atol=1e-12)
    spec = write_spec(tmp_path)
    out = tmp_path / "cli.nc"
    env = {**os.environ, "KURALAB_CACHE_DIR": str(cache), "JAX_ENABLE_X64": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "kuralab.cli", "run", spec, "--out", out, "-q"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    xr.testing.assert_identical(data(kl.io.load(out)), data(ds))
