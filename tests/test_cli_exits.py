"""The command line's failure exits and defaults, in-process (`kuralab.cli.main`) where
possible: every failure is a non-zero exit with one clean `error:` line on stderr (no
traceback) and no output file; the wording is not pinned here (tests/test_cli.py pins
the messages it owns). Dask cases use a real LocalCluster of worker processes."""

import os
import pathlib

import pytest

from kuralab.cli import main

SPEC = """
[study]
name = "exits"

[model]
kind = "kuramoto"
n = 8

[model.frequencies]
distribution = "gaussian"
scale = 0.5

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.5, 2.0]
seeds = 2

[solve]
t1 = 1.0
dt = 0.1
save_every = 2

[output]
path = "results/exits.nc"
chunk_size = 2
"""


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if not line.startswith("[runner]")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def write(tmp_path, text=SPEC) -> pathlib.Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    return spec


def test_run_without_out_writes_the_spec_path_and_plot_defaults(tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path)
    assert main(["run", str(spec), "-q"]) == 0
    out = tmp_path / "results" / "exits.nc"
    assert out.is_file()
    assert f"wrote {pathlib.Path('results/exits.nc')}" in capsys.readouterr().out
    # plot without --out: RESULT.plot.png next to the result, a real PNG.
    assert main(["plot", str(out)]) == 0
    png = out.with_suffix(".plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["exits.nc", "exits.plot.png"]


def test_plot_of_a_netcdf_it_cannot_plot(tmp_path, capsys):
    import numpy as np
    import xarray as xr

    alien = tmp_path / "alien.nc"
    xr.Dataset({"v": ("x", np.arange(3.0))}).to_netcdf(alien)
    code = main(["plot", str(alien), "--out", str(tmp_path / "a.png")])
    assert code != 0
    one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "a.png").exists()


def test_failed_simulation_exits_nonzero(tmp_path, capsys):
    # omega ~ 1e38 in float32 with dt = 4: omega * dt overflows in the first step, so
    # every simulation reports a non-finite state (a valid spec, a failed run).
    text = SPEC.replace("scale = 0.5", "scale = 1e38").replace(
        "save_every = 2", "save_every = 1"
    ).replace("dt = 0.1", "dt = 4.0").replace("t1 = 1.0", "t1 = 16.0")
    spec = write(tmp_path, text)
    out = tmp_path / "r.nc"
    code = main(["run", str(spec), "--out", str(out), "-q"])
    assert code == 1  # a failed run (2 is bad input: the spec itself is valid)
    one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_cannot_write_the_result(tmp_path, capsys):
    # The output's parent is a regular file: no directory can be made there.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    out = blocker / "r.nc"
    code = main(["run", str(write(tmp_path)), "--out", str(out), "-q"])
    assert code == 1
    one_error_line(capsys.readouterr().err)
    assert blocker.read_text() == "" and not out.exists()


# ---------------------------------------------------------------------------------
# Dask: --scheduler ADDRESS end to end, a chunk raising on a worker, a killed worker
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    distributed = pytest.importorskip("distributed")
    import dask

    cache = tmp_path_factory.mktemp("jax_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KURALAB_CACHE_DIR", str(cache))
        # A killed worker fails its task at once instead of being retried 3 times.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            with distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True,
                dashboard_address=None,
            ) as c:
                yield c


def _raising_task(spec, start, stop, *args):
    if stop == 4:
        raise RuntimeError("chunk blew up\nsecond line")
    return _real_task(spec, start, stop, *args)


def _killing_task(spec, start, stop, *args):
    if stop == 4:
        os._exit(9)  # the worker process dies mid-task (no exception to report)
    return _real_task(spec, start, stop, *args)


from kuralab._study import run as _study_run  # noqa: E402

_real_task = _study_run._run_chunk_task


@pytest.mark.slow
def test_scheduler_address_end_to_end_equals_in_process(tmp_path, cluster, capsys):
    import kuralab as kl

    spec = write(tmp_path)
    local, remote = tmp_path / "local.nc", tmp_path / "remote.nc"
    assert main(["run", str(spec), "--out", str(local), "-q"]) == 0
    assert main(["run", str(spec), "--out", str(remote), "-q",
                 "--scheduler", cluster.scheduler_address]) == 0
    a, b = kl.io.load(local), kl.io.load(remote)
    a.attrs, b.attrs = {}, {}
    import xarray as xr

    xr.testing.assert_identical(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("task", [_raising_task, _killing_task], ids=["raises", "killed"])
def test_chunk_failing_on_a_worker(task, tmp_path, cluster, monkeypatch, capsys):
    monkeypatch.setattr(_study_run, "_run_chunk_task", task)
    out = tmp_path / "r.nc"
    code = main(["run", str(write(tmp_path)), "--out", str(out), "-q",
                 "--scheduler", cluster.scheduler_address])
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert "--resume" in line  # the finished chunk is kept for a resumed run
    assert not out.exists()
