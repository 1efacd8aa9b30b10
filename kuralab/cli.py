"""The `kuralab` command line: a thin layer over `kuralab.study` and `kuralab.io`.

```
kuralab run STUDY.toml [--out PATH]    # run a study, write one netCDF file atomically
    [--resume]                         #   keep the finished chunks of a killed run
    [--workers N | --scheduler ADDR]   #   run chunks on a local / existing Dask cluster
kuralab validate STUDY.toml            # check a spec; print its sizes
    [--max-points N] [--max-output SIZE] [--max-memory SIZE]   # (run takes them too)
kuralab plot RESULT.nc [--out IMAGE]   # kl.plot.plot_study, .png/.pdf/.svg, atomic
    [--var V] [--x DIM] [--hue DIM] [--no-theory]
kuralab info                           # versions, devices, compile-cache location
```

`run` persists every finished chunk in `<out>.chunks/` (removed on success), so a killed
run continues with `--resume`; without it, an existing chunk directory with finished
chunks is an error rather than thrown away.

Bad input (an invalid spec, a missing file, bad arguments, a chunk directory that
belongs to another run, an unreachable Dask scheduler) prints exactly one line,
`error: <message>`, on stderr and exits with status 2, writing nothing. A simulation
that fails (non-finite state) or a chunk that fails on a Dask worker exits with status
1, an interrupted run (Ctrl-C) with 130; the last two keep the finished chunks for
`--resume`. JAX, xarray and matplotlib are imported only by the commands that need
them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Exit status for bad input (as argparse uses).
EXIT_USAGE = 2
#: Exit status for a run that failed (e.g. a diverging simulation).
EXIT_FAILURE = 1
#: Exit status for a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """An error reported as one `error: ...` line and an exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE):
        super().__init__(" ".join(str(message).split()))
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `error: ...` line (no usage dump)."""

    def error(self, message):
        raise CLIError(message)


def _existing_file(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{path}: no such file ({what})")
    if p.is_dir():
        raise CLIError(f"{path}: is a directory; expected {what}")
    return p


def _workers(text: str) -> int:
    """argparse type of `--workers`: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1 (Dask worker processes); got {text!r}"
        )
    return value


#: Image formats `kuralab plot` writes, by file extension (matplotlib format names).
PLOT_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def _output_path(path: str | None, suffixes=(".nc",), what="a netCDF file") -> Path | None:
    """`--out` as a Path: not a directory, ending in one of `suffixes`."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"--out {path}: is a directory; expected a file path")
    if p.suffix.lower() not in suffixes or len(p.name) <= len(p.suffix):
        raise CLIError(
            f"--out {path}: expected {what} path ending in " + " or ".join(suffixes)
        )
    return p


def _limits(args):
    """The size limits of `validate` / `run` (flags, then KURALAB_MAX_* variables)."""
    from ._study.limits import Limits

    try:
        return Limits.from_env(
            max_points=args.max_points,
            max_output=args.max_output,
            max_chunk_memory=args.max_memory,
        )
    except ValueError as e:
        raise CLIError(str(e)) from None


def _estimate_line(spec, itemsize: int = 4) -> str:
    from ._study.limits import estimate

    return "  " + estimate(spec, itemsize).summary()


# ---------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------


def _cmd_validate(args) -> int:
    from ._study.parse import load_spec
    from ._study.spec import SpecError

    try:
        spec = load_spec(args.study, limits=_limits(args))
    except SpecError as e:
        raise CLIError(str(e)) from None
    print(f"ok: {spec.study.name} ({spec.num_points} points)")
    print(_estimate_line(spec))
    return 0


def _cmd_run(args) -> int:
    import time

    from ._study.parse import _read_spec
    from ._study.spec import SpecError

    limits = _limits(args)
    try:
        spec, text = _read_spec(args.study, limits)
    except SpecError as e:
        raise CLIError(str(e)) from None
    out = _output_path(args.out)
    if args.scheduler is not None:
        from ._study.run import ClusterError, check_address

        try:
            check_address(args.scheduler)
        except ClusterError as e:
            raise CLIError(str(e)) from None

    from ._integrate import SimulationError
    from ._study.run import ChunkError, ClusterError, run_study
    from ._study.store import ChunkStoreError, chunk_dir

    start = time.perf_counter()
    try:
        path = run_study(
            spec,
            out,
            spec_text=text,
            progress=not args.quiet,
            resume=args.resume,
            workers=args.workers,
            scheduler=args.scheduler,
            limits=limits,
        )
    except SpecError as e:
        raise CLIError(f"{args.study}: {e}") from None
    except (ChunkStoreError, ClusterError) as e:
        raise CLIError(str(e)) from None
    except ChunkError as e:
        raise CLIError(str(e), EXIT_FAILURE) from None
    except SimulationError as e:
        raise CLIError(f"{args.study}: {e}", EXIT_FAILURE) from None
    except OSError as e:
        raise CLIError(f"cannot write the result: {e}", EXIT_FAILURE) from None
    except KeyboardInterrupt:
        chunks = chunk_dir(out if out is not None else spec.output.path)
        kept = (
            f"; finished chunks are kept in {chunks}: run again with --resume"
            if chunks.is_dir()
            else ""
        )
        raise CLIError(f"interrupted{kept}", EXIT_INTERRUPTED) from None
    elapsed = time.perf_counter() - start
    print(f"wrote {path} ({spec.num_points} simulations, {elapsed:.1f} s)")
    return 0


def _cmd_plot(args) -> int:
    result = _existing_file(args.result, "a netCDF result file")
    # Not RESULT.png: analysis scripts conventionally own that name.
    out = _output_path(args.out, tuple(PLOT_FORMATS), "an image")
    out = out or result.with_suffix(".plot.png")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import io
    from .plot import plot_study, save_figure

    try:
        ds = io.load(result)
    except (OSError, ValueError) as e:
        raise CLIError(f"{result}: cannot read as netCDF: {e}") from None
    try:
        if args.x or args.var or args.hue or "study" in ds.attrs:
            ax = plot_study(
                ds, var=args.var, x=args.x, hue=args.hue, theory=not args.no_theory
            )
        else:  # not a study result: a trajectory or a kl.sweep Dataset
            ax = ds.kura.plot()
    except ValueError as e:
        raise CLIError(f"{result}: cannot plot: {e}") from None
    fig = ax if hasattr(ax, "savefig") else getattr(ax, "figure", None) or plt.gcf()
    try:
        save_figure(fig, out)
    except OSError as e:
        raise CLIError(
            f"--out {out}: cannot write: {e.strerror or e}"
            + (f": {e.filename}" if e.filename else ""),
            EXIT_FAILURE,
        ) from None
    finally:
        plt.close(fig)
    print(f"wrote {out}")
    return 0


def _versions() -> list[tuple[str, str]]:
    import importlib.metadata as md

    rows = [("python", sys.version.split()[0])]
    for dist in (
        "kuralab",
        "jax",
        "jaxlib",
        "diffrax",
        "equinox",
        "xarray",
        "numpy",
        "netCDF4",
        "matplotlib",
    ):
        try:
            rows.append((dist, md.version(dist)))
        except md.PackageNotFoundError:
            rows.append((dist, "not installed"))
    return rows


def _cmd_info(args) -> int:
    from ._study.run import compile_cache_dir

    for name, version in _versions():
        print(f"{name:<12}{version}")
    import jax

    devices = ", ".join(f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices())
    print(f"{'devices':<12}{devices}")
    print(f"{'backend':<12}{jax.default_backend()}")
    cache = jax.config.jax_compilation_cache_dir or compile_cache_dir()
    state = "exists" if Path(cache).is_dir() else "not created yet"
    print(f"{'jax cache':<12}{cache} ({state}; set KURALAB_CACHE_DIR to move it)")
    return 0


# ---------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------


def _limit_flags(p) -> None:
    p.add_argument(
        "--max-points",
        metavar="N",
        help="refuse specs with more simulations (default 1e7; KURALAB_MAX_POINTS)",
    )
    p.add_argument(
        "--max-output",
        metavar="SIZE",
        help="refuse specs whose estimated output is larger (default 50GB; "
        "KURALAB_MAX_OUTPUT)",
    )
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="refuse specs whose estimated peak memory per chunk is larger (default "
        "16GB; KURALAB_MAX_CHUNK_MEMORY)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kuralab",
        description="kuralab: Kuramoto-family oscillator studies on JAX.",
        epilog="Study specs are TOML files; see studies/README.md for every key.",
    )
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a study spec and write its netCDF result")
    p.add_argument("study", metavar="STUDY.toml", help="the study spec")
    p.add_argument(
        "--out", metavar="PATH", help="output file (default: the spec's output.path)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the finished chunks of an interrupted run of this spec and output "
        "(in OUT.chunks/) and run only the others",
    )
    backend = p.add_mutually_exclusive_group()
    backend.add_argument(
        "--workers",
        metavar="N",
        type=_workers,
        help="run the chunks on a local Dask cluster of N worker processes",
    )
    backend.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the chunks on an existing Dask cluster (e.g. tcp://host:8786)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar or progress lines on stderr",
    )
    _limit_flags(p)
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("validate", help="check a study spec without running it")
    p.add_argument("study", metavar="STUDY.toml", help="the study spec")
    _limit_flags(p)
    p.set_defaults(handler=_cmd_validate)

    p = sub.add_parser("plot", help="plot a result file (ds.kura.plot())")
    p.add_argument(
        "result", metavar="RESULT.nc", help="a netCDF file written by kuralab"
    )
    p.add_argument(
        "--out",
        metavar="IMAGE",
        help="output image, .png, .pdf or .svg (default: RESULT.plot.png)",
    )
    p.add_argument("--var", help="variable to plot (default per study kind, e.g. R)")
    p.add_argument("--x", help="swept dimension on the horizontal axis")
    p.add_argument("--hue", help="dimension giving one labelled line per value")
    p.add_argument(
        "--no-theory", action="store_true", help="no kl.theory overlay"
    )
    p.set_defaults(handler=_cmd_plot)

    p = sub.add_parser("info", help="versions, devices and the compile-cache location")
    p.set_defaults(handler=_cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `kuralab` command line with `argv` (default `sys.argv[1:]`).

    **Returns:** the exit status: 0 on success, 2 for bad input (one `error:` line on
    stderr), 1 for a failed run. Unexpected exceptions propagate with their traceback.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            from importlib.metadata import version

            print(f"kuralab {version('kuralab')}")
            return 0
        if args.command is None:
            raise CLIError("a command is required: run, validate, plot or info")
        return args.handler(args)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
