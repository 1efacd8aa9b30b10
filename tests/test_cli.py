"""The `kuralab` command line, run as a subprocess (`python -m kuralab.cli`) the way
users run it, plus in-process `main()` calls for the many error classes (fast)."""

import os
import pathlib
import subprocess
import sys

import pytest
import xarray as xr

import kuralab as kl
from kuralab.cli import main
from kuralab.study import load_spec

ROOT = pathlib.Path(__file__).parents[1]
QUICKSTART = ROOT / "studies" / "quickstart.toml"

TINY = """
[study]
name = "tiny_cli"

[model]
kind = "kuramoto"
n = 32

[model.frequencies]
distribution = "gaussian"
scale = 0.5

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.5, 2.0]
seeds = 2

[solve]
t1 = 2.0
dt = 0.1
save_every = 2
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment for subprocesses: a private compile cache, no stray output."""
    out = dict(os.environ)
    out["KURALAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    return out


def kuralab(*args, env, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "kuralab.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def assert_one_error_line(stderr: str, *needles: str):
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], stderr


# ---------------------------------------------------------------------------------
# Subprocess: what users see
# ---------------------------------------------------------------------------------


def test_help(env):
    proc = kuralab("--help", env=env)
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "validate", "plot", "info"):
        assert command in proc.stdout


def test_validate_quickstart(env):
    proc = kuralab("validate", QUICKSTART, env=env)
    assert proc.returncode == 0, proc.stderr
    points = load_spec(QUICKSTART).num_points
    assert proc.stdout.splitlines()[0] == f"ok: quickstart ({points} points)"
    assert proc.stderr == ""


BAD = {
    "unknown key": (("dt = 0.1", "dtt = 0.1"), "solve.dtt", "did you mean 'dt'"),
    "wrong type": (("n = 32", "n = true"), "model.n = true", "integer"),
    "negative dt": (("dt = 0.1", "dt = -0.1"), "solve.dt = -0.1", "> 0"),
}


@pytest.mark.parametrize("case", BAD, ids=str)
def test_run_bad_spec(case, env, tmp_path):
    (old, new), key, hint = BAD[case]
    spec = tmp_path / "bad.toml"
    spec.write_text(TINY.replace(old, new))
    out = tmp_path / "out.nc"
    proc = kuralab("run", spec, "--out", out, env=env)
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "bad.toml", key, hint)
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_missing_file(env, tmp_path):
    proc = kuralab("validate", tmp_path / "nope.toml", env=env)
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "nope.toml", "no such file")


def test_bad_arguments(env):
    proc = kuralab("run", env=env)
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "STUDY.toml")


def test_run_tiny_study(env, tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    out = tmp_path / "sub" / "tiny.nc"
    proc = kuralab("run", spec, "--out", out, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.exists()
    assert f"wrote {out}" in proc.stdout
    import kuralab as kl

    ds = kl.io.load(out)
    assert ds["R"].dims == ("K", "seed")
    assert ds.attrs["spec"] == TINY
    assert ds.attrs["distribution"] == "gaussian"
    # No stray files: only the result (no temporaries, nothing at the default path).
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.nc"]
    assert not (tmp_path / "data").exists()

    # plot, in-process (the subprocess import cost is paid once above).
    png = tmp_path / "tiny.png"
    assert main(["plot", str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info(env):
    proc = kuralab("info", env=env)
    assert proc.returncode == 0, proc.stderr
    for name in ("kuralab", "jax", "diffrax", "equinox", "xarray", "devices", "cache"):
        assert name in proc.stdout
    assert env["KURALAB_CACHE_DIR"] in proc.stdout


# ---------------------------------------------------------------------------------
# In-process: every error class gives one line and status 2
# ---------------------------------------------------------------------------------

IN_PROCESS = {
    "missing section": (TINY.split("[solve]")[0], "solve: missing section"),
    "empty sweep": (TINY.replace("K = [0.5, 2.0]", "K = []"), "sweep.K = []"),
    "window too long": (TINY + "\n[observe]\nwindow = 5.0\n", "observe.window = 5.0"),
    "unknown solver": (
        TINY.replace("save_every", 'solver = "rk5"\nsave_every'),
        "'rk4'",
    ),
    "bool for number": (TINY.replace("t1 = 2.0", "t1 = true"), "solve.t1 = true"),
    "negative noise": (
        TINY.replace("[sweep]", "[model.noise]\nD = -0.5\n\n[sweep]"),
        "model.noise.D = -0.5",
    ),
    "ODE solver with noise": (
        TINY.replace("[sweep]", "[model.noise]\nD = 0.1\n\n[sweep]").replace(
            "save_every", 'solver = "rk4"\nsave_every'
        ),
        '"sra1" (the model has noise',
    ),
    "delay shorter than dt": (
        TINY.replace("[sweep]", "[model.delays]\ntau = 0.05\n\n[sweep]"),
        "smallest positive delay 0.05 (model.delays.tau)",
    ),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", IN_PROCESS, ids=str)
def test_error_classes_in_process(case, command, tmp_path, capsys):
    text, needle = IN_PROCESS[case]
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    args = [command, str(spec)] + (
        ["--out", str(tmp_path / "x.nc")] if command == "run" else []
    )
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_error_line(captured.err, needle)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]


@pytest.mark.parametrize(
    "name", ["noisy_critical_coupling", "delayed_frequency"], ids=str
)
def test_validate_noise_and_delay_studies(name, capsys):
    path = ROOT / "studies" / f"{name}.toml"
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == (
        f"ok: {name} ({load_spec(path).num_points} points)"
    )
    assert captured.err == ""


def test_plot_errors(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "none.nc")]) == 2
    assert_one_error_line(capsys.readouterr().err, "none.nc", "no such file")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netCDF")
    assert main(["plot", str(junk), "--out", str(tmp_path / "j.png")]) == 2
    assert_one_error_line(capsys.readouterr().err, "junk.nc")
    assert not (tmp_path / "j.png").exists()


def test_out_is_a_directory(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    assert main(["run", str(spec), "--out", str(tmp_path)]) == 2
    assert_one_error_line(capsys.readouterr().err, "--out", "directory")


def test_no_command(capsys):
    assert main([]) == 2
    assert_one_error_line(capsys.readouterr().err, "command")
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("kuralab ")


# ---------------------------------------------------------------------------------
# run: chunks, --resume, Dask backends (tests/test_runner.py covers the runner itself)
# ---------------------------------------------------------------------------------


def test_run_help_lists_the_backend_flags(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--resume", "--workers N", "--scheduler ADDRESS", "--quiet"):
        assert flag in out


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--workers", "0"], "argument --workers: expected an integer >= 1"),
        (["--workers", "-3"], "argument --workers: expected an integer >= 1"),
        (["--workers", "two"], "got 'two'"),
        (
            ["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
            "argument --scheduler: not allowed with argument --workers",
        ),
        (
            ["--scheduler", "nonsense"],
            "cannot connect to the Dask scheduler at nonsense",
        ),
    ],
    ids=["zero", "negative", "word", "both", "malformed address"],
)
def test_run_bad_backend_flags(flags, needle, tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    assert main(["run", str(spec), "--out", str(tmp_path / "x.nc"), *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_error_line(captured.err, needle)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.toml"]


def test_run_unreachable_scheduler_fails_fast(tmp_path, capsys):
    import time

    import dask

    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    start = time.monotonic()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        status = main(
            ["run", str(spec), "--out", str(tmp_path / "x.nc")]
            + ["--scheduler", "tcp://127.0.0.1:1"]
        )
    assert status == 2
    assert time.monotonic() - start < 15
    assert_one_error_line(
        capsys.readouterr().err,
        "cannot connect to the Dask scheduler at tcp://127.0.0.1:1",
    )
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.toml"]


def test_run_interrupted_then_resumed(tmp_path, monkeypatch, capsys):
    from kuralab._study import plan, run as study_run

    # Two chunks of 2 points; Ctrl-C while the second is in flight.
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY + "\n[output]\nchunk_size = 2\n")
    out = tmp_path / "out.nc"
    real = plan.run_chunk

    def interrupted(spec, grid, where):
        if where.start:
            raise KeyboardInterrupt
        return real(spec, grid, where)

    monkeypatch.setattr(study_run, "enable_compile_cache", lambda *a, **k: None)
    monkeypatch.setattr(plan, "run_chunk", interrupted)
    args = ["run", str(spec), "--out", str(out), "-q"]
    assert main(args) == 130
    assert_one_error_line(
        capsys.readouterr().err, "interrupted", "out.nc.chunks", "--resume"
    )
    assert not out.exists()

    monkeypatch.setattr(plan, "run_chunk", real)
    assert main(args) == 2  # finished chunks are never thrown away silently
    assert_one_error_line(
        capsys.readouterr().err, "1 of 2 finished chunks", "pass --resume"
    )
    changed = tmp_path / "changed.toml"
    changed.write_text(spec.read_text().replace("t1 = 2.0", "t1 = 3.0"))
    assert main(["run", str(changed), "--out", str(out), "--resume"]) == 2
    assert_one_error_line(
        capsys.readouterr().err,
        "cannot resume",
        "[solve] t1 = 3.0 here, t1 = 2.0 in the chunks",
        "remove the directory",
    )

    assert main([*args, "--resume"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "changed.toml",
        "out.nc",
        "tiny.toml",
    ]
    # the resumed file holds the data of an uninterrupted run, bit for bit
    fresh = tmp_path / "fresh.nc"
    assert main(["run", str(spec), "--out", str(fresh), "-q"]) == 0
    resumed, direct = kl.io.load(out), kl.io.load(fresh)
    resumed.attrs, direct.attrs = {}, {}  # creation times
    xr.testing.assert_identical(resumed, direct)
    assert int(resumed.sizes["K"]) == 2 and int(resumed.sizes["seed"]) == 2
