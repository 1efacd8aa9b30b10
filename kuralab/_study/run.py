"""Running a study: in-process and Dask backends, progress, and `run_study`.

`run_study(spec)` validates the spec, builds the grid (`plan.grid`), opens the chunk
store of the output (`store.ChunkStore`: persistence, the lock, `--resume`), runs the
chunks that are not finished yet (each one `plan.run_chunk(spec, grid, where)`, the
unit of work of every backend), combines them (`plan.combine`) and writes the result
atomically with `kuralab.io.save`. This is the only module of `kuralab._study` that
imports the other three (`spec`, `plan`, `store`).

A run that fails before any chunk is finished leaves no chunk directory behind; a
simulation failure (`SimulationError`, which is deterministic: resuming would fail
again) removes it.

**Backends.** In-process (the default): chunks run one after the other. Dask
distributed: `workers=N` starts a `LocalCluster` of N single-threaded worker processes
(closed at the end), `scheduler=ADDRESS` joins an existing cluster (the connect
timeout is Dask's `distributed.comm.timeouts.connect`, e.g.
`DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s`). Tasks call `_run_chunk_task`, an
importable kuralab function, and return the arrays to the driver, which writes the
chunk file: one writer per file by construction, no shared filesystem needed, and the
store logic stays in one process. At most two tasks per worker thread are in flight;
finished chunks are persisted as they arrive (`as_completed`). A task that fails stops
the run with `ChunkError` once the chunks already in flight are in (and persisted).
Workers enable JAX's persistent compilation cache (a LocalCluster's workers share the
driver's), so a later run, or a worker that joins late, loads the compiled chunk
instead of compiling it again (workers starting together each compile it once; the
tracing is never cached). The Client
is not made Dask's default scheduler, so the run leaves `dask.config` as it was.
Chunks are deterministic in their seeds, so every backend, and a resumed run, gives
bit-for-bit the data of an uninterrupted in-process run (on the same hardware and
float dtype).

**Progress.** On a terminal, a tqdm bar on stderr shows chunks done of total, the rate
and the ETA; otherwise (logs, pipes) one line per finished chunk with the same
figures. `progress=False` (`kuralab run -q`) prints nothing.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from . import limits as lim, plan
from .parse import _read_spec
from .progress import _Progress, _say
from .spec import StudySpec
from .store import ChunkStore, _identity, _line

__all__ = [
    "ChunkError",
    "ClusterError",
    "compile_cache_dir",
    "enable_compile_cache",
    "run",
    "run_study",
]

#: Test hook, not for users: seconds to sleep before computing each chunk in-process,
#: so that a test can kill a run while a chunk is in flight (tests/test_runner.py).
DELAY_ENV = "KURALAB_TEST_CHUNK_DELAY"


class ClusterError(RuntimeError):
    """The Dask backend could not start: no `dask.distributed`, a LocalCluster that
    failed to start, or a scheduler that cannot be reached or has no workers."""


class ChunkError(RuntimeError):
    """A chunk failed on a Dask worker. Finished chunks are kept for `resume`."""


def compile_cache_dir() -> Path:
    """Where `run_study` keeps JAX's persistent compilation cache: `$KURALAB_CACHE_DIR`,
    else `$XDG_CACHE_HOME/kuralab/jax` (default `~/.cache/kuralab/jax`)."""
    env = os.environ.get("KURALAB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "kuralab" / "jax"


def enable_compile_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache (minimum compile time 0, so every
    compilation is cached). Keeps a directory the user already configured.

    **Returns:** the cache directory in use, or `None` if it could not be created.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = Path(path) if path is not None else compile_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path


# ---------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------


def _run_in_process(spec, grid, chunks, todo, on_done) -> None:
    delay = float(os.environ.get(DELAY_ENV) or 0.0)
    for i in todo:
        if delay:
            time.sleep(delay)
        on_done(i, plan.run_chunk(spec, grid, chunks[i]))


@functools.lru_cache(maxsize=4)
def _worker_grid(spec):
    return plan.grid(spec)


def _run_chunk_task(
    spec, start: int, stop: int, x64: bool, compile_cache: bool, cache_dir: str | None
) -> dict[str, np.ndarray]:
    """The Dask task: run the points `[start, stop)` of `spec`'s grid on a worker and
    return `run_chunk`'s arrays (the driver writes the chunk file)."""
    import jax

    if compile_cache:
        enable_compile_cache(cache_dir)
    with jax.enable_x64(x64):
        return plan.run_chunk(spec, _worker_grid(spec), slice(start, stop))


def check_backend(workers, scheduler) -> None:
    """Validate the backend arguments of `run_study` (ValueError/TypeError)."""
    if workers is not None and scheduler is not None:
        raise ValueError(
            "pass workers= (start a local Dask cluster) or scheduler= (join one), not "
            "both"
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(
            f"workers = {workers!r}: expected an integer >= 1 (Dask worker processes)"
        )
    if isinstance(scheduler, str):
        check_address(scheduler)
    if scheduler is not None and not isinstance(scheduler, str):
        try:
            from dask.distributed import Client
        except ImportError:
            Client = ()
        if not isinstance(scheduler, Client):
            raise TypeError(
                "scheduler must be a Dask scheduler address such as "
                f"'tcp://host:8786' or a dask.distributed.Client; got "
                f"{type(scheduler).__name__}"
            )


#: Address schemes of dask.distributed; `tcp`/`tls` (and no scheme) need host:port.
_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def check_address(address) -> tuple[str, int] | None:
    """Check the form of a scheduler address before any Client exists (a Client whose
    constructor fails hangs the interpreter's exit for a minute in its finaliser).

    **Returns:** `(host, port)` for a TCP/TLS address (`host:port` means TCP), `None`
    for other schemes or a `Client`. **Raises:** `ClusterError` for anything else.
    """
    from urllib.parse import urlsplit

    if not isinstance(address, str):
        return None
    bad = ClusterError(
        f"cannot connect to the Dask scheduler at {address}: expected an address like "
        "tcp://host:8786 (or host:8786)"
    )
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in _SCHEMES:
        raise bad
    if scheme not in ("tcp", "tls"):
        return None
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port or parts.path not in ("", "/"):
        raise bad
    return host, port


def _probe(address: str) -> None:
    """Fail fast, without building a Client, when a TCP scheduler does not accept
    connections (or the address is malformed)."""
    where = check_address(address)
    if where is None:
        return
    host, port = where
    try:
        with socket.create_connection((host, port), timeout=_connect_timeout()):
            pass
    except OSError as e:
        raise ClusterError(
            f"cannot connect to the Dask scheduler at {address}: {_line(e)}"
        ) from None


def _connect_timeout() -> float:
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect")))


@contextlib.contextmanager
def _client(workers: int | None, scheduler) -> Iterator[Any]:
    """A `dask.distributed.Client` for the run, closed (with its LocalCluster) after."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(
            "the Dask backend needs dask.distributed: pip install 'dask[distributed]'"
        ) from None
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if workers is not None:
        try:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
        except Exception as e:
            raise ClusterError(
                f"cannot start a local Dask cluster of {workers} workers: "
                f"{type(e).__name__}: {_line(e)}"
            ) from e
        # Not the default scheduler: dask.compute elsewhere (xarray) stays local.
        with cluster, Client(cluster, set_as_default=False) as client:
            yield client
        return
    _probe(scheduler)
    # A Client whose constructor failed is finalised by the garbage collector; if that
    # happens inside another Client's start-up, distributed deadlocks on its event-loop
    # lock (Client.__del__ -> LoopRunner.stop). Collect such leftovers first.
    gc.collect()
    try:
        client = Client(scheduler, timeout=_connect_timeout(), set_as_default=False)
    except (OSError, ValueError, TypeError) as e:
        raise ClusterError(
            f"cannot connect to the Dask scheduler at {scheduler}: {_line(e)}"
        ) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=_connect_timeout())
        except (TimeoutError, OSError):
            raise ClusterError(
                f"the Dask scheduler at {scheduler} has no workers"
            ) from None
        yield client


def _run_dask(
    client, spec, chunks, todo, on_done, *, compile_cache, cache_dir, where, say,
    summary=None,
) -> None:
    import jax.numpy as jnp
    from dask.distributed import as_completed

    x64 = np.dtype(jnp.result_type(float)) == np.float64
    nthreads = client.nthreads()
    threads = sum(nthreads.values()) or 1
    if summary:
        say(summary)
    say(
        f"Dask: {len(nthreads)} workers, {threads} threads, scheduler "
        f"{client.scheduler.address}"
    )
    queue = iter(todo)
    token = uuid.uuid4().hex[:8]
    pending: dict[str, tuple[int, Any]] = {}

    def submit(i: int):
        # Looked up at call time (a test replaces it).
        task = globals()["_run_chunk_task"]
        future = client.submit(
            task,
            spec,
            chunks[i].start,
            chunks[i].stop,
            x64,
            compile_cache,
            cache_dir,
            key=f"kuralab-{spec.study.name}-chunk-{i}-{token}",
        )
        pending[future.key] = (i, future)
        return future

    first = [submit(i) for i in itertools.islice(queue, 2 * threads)]
    running = as_completed(first, loop=client.loop)
    failure: ChunkError | None = None
    try:
        for future in running:
            i, _ = pending.pop(future.key)
            try:
                arrays = future.result()
            except Exception as e:
                if failure is None:
                    failure = _chunk_error(i, chunks, e, where)
                    failure.__cause__ = e
                    if pending:  # keep what is already running: less to redo
                        say(
                            f"chunk {i + 1} of {len(chunks)} failed; finishing the "
                            f"{len(pending)} chunks in flight before stopping"
                        )
                continue
            on_done(i, arrays)
            nxt = None if failure is not None else next(queue, None)
            if nxt is not None:
                running.add(submit(nxt))
    finally:
        if pending:
            client.cancel([f for _, f in pending.values()])
    if failure is not None:
        raise failure


def _chunk_error(i: int, chunks: list[slice], error: Exception, where) -> ChunkError:
    start, stop = chunks[i].start, chunks[i].stop
    return ChunkError(
        f"chunk {i + 1} of {len(chunks)} (points {start}..{stop - 1}) failed on a Dask "
        f"worker: {type(error).__name__}: {_line(error, 300)}; finished chunks are "
        f"kept in {where}: fix the cause and run again with --resume"
    )


# ---------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------


def run(
    spec,
    grid,
    out: Path,
    *,
    spec_text: str,
    resume: bool = False,
    workers: int | None = None,
    scheduler=None,
    progress: bool = True,
    compile_cache: bool = True,
    summary: str | None = None,
) -> Path:
    """Run `spec`'s `grid` chunk by chunk through the chunk store of `out`, then write
    `out` atomically (see the module docstring). Arguments as `run_study`'s."""
    from .._integrate import SimulationError

    check_backend(workers, scheduler)
    chunks = plan.chunks(grid, spec.output.chunk_size)
    store = ChunkStore.open(
        out, _identity(spec, grid.size, chunks), chunks, resume=resume
    )
    try:
        done = store.finished(functools.partial(_say, spec.study.name, progress))
        todo = [i for i in range(len(chunks)) if i not in done]
        meter = _Progress(spec.study.name, chunks, done, progress, summary=summary)
        if done:
            summary = None  # said on the resuming line
        meter.start_heartbeat()

        def on_done(i: int, arrays: dict[str, np.ndarray]) -> None:
            store.write(i, arrays)  # persisted before the next chunk starts
            meter.update(i)

        try:
            if todo and workers is None and scheduler is None:
                if summary:  # said once nothing can fail with a one-line error
                    meter.say(summary)
                _run_in_process(spec, grid, chunks, todo, on_done)
            elif todo:
                cache_dir = None
                if workers is not None and compile_cache:  # local workers: ours
                    import jax

                    cache_dir = jax.config.jax_compilation_cache_dir or None
                with _client(workers, scheduler) as client:
                    _run_dask(
                        client,
                        spec,
                        chunks,
                        todo,
                        on_done,
                        compile_cache=compile_cache,
                        cache_dir=cache_dir,
                        where=store.dir,
                        say=meter.say,
                        summary=summary,
                    )
        finally:
            meter.close()
        parts = [store.read(i) for i in range(len(chunks))]
        try:
            ds = plan.combine(spec, grid, parts)
        except SimulationError:
            store.remove()  # deterministic: resuming would fail the same way
            raise
        io.save(ds, out, spec=spec_text, seeds=list(spec.sweep.seeds))
        store.remove()
    except BaseException:
        if not store.any_finished():
            store.remove()  # nothing worth resuming: leave nothing behind
        raise
    finally:
        store.close()
    return out


def run_study(
    spec: StudySpec | str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    workers: int | None = None,
    scheduler=None,
    spec_text: str | None = None,
    progress: bool = True,
    compile_cache: bool = True,
    limits: lim.Limits | None = None,
) -> Path:
    """Run a study, chunk by chunk, and write its netCDF file atomically.

    The sweep grid (product of the `[sweep]` axes, times the seeds) is split into
    chunks of `output.chunk_size` points; each chunk is one `jax.vmap`-ed, jitted call
    of `kl.sweep`'s kernel (the last chunk is padded, so all chunks share one
    compilation), reduced on device to `R`, `R_std` and `R_t` (and `Omega`,
    `Omega_std` with `observe.frequency`): each point runs the transient up to the
    first save time in the window, then the window, as `kl.sweep` does. The
    same spec and seeds give identical data, whichever backend ran it and however
    often it was interrupted and resumed: a seed fixes the frequencies, the initial
    phases and, for noisy models, the Brownian path.

    Each finished chunk is persisted (one file per chunk, written atomically) in the
    directory `<out>.chunks/` before the next one starts, so a killed run loses at most
    the chunks in flight; when all are finished the result is combined, written
    atomically to `out`, and the directory is removed. See `kuralab._study.store` for the
    layout.

    **Arguments:**

    - `spec`: a `StudySpec`, or the path of a spec file.
    - `out`: output path (default `spec.output.path`, relative to the working
      directory); parent directories are created.
    - `resume`: keep the finished chunks of an earlier, interrupted run of the same
      spec and output and run only the others (nothing to resume: run normally).
      Without it, a chunk directory holding finished chunks raises `ChunkStoreError`.
    - `workers`: run the chunks on a local Dask cluster of this many worker processes
      (one thread each), started and closed by this call.
    - `scheduler`: run the chunks on an existing Dask cluster: the scheduler address
      (`"tcp://host:8786"`) or a `dask.distributed.Client`. Not with `workers`.

    **Other arguments:**

    - `spec_text`: the spec's TOML text for provenance (default: the file's text, or
      `spec.to_toml()`).
    - `progress`: show progress on stderr: a tqdm bar (chunks, rate, ETA) on a
      terminal, one line per finished chunk otherwise.
    - `compile_cache`: enable JAX's persistent compilation cache (`compile_cache_dir()`)
      for this process and the Dask workers.
    - `limits`: the size limits (`kuralab._study.limits.Limits`; default from the
      `KURALAB_MAX_*` environment variables): checked, at the run's float width, before
      anything is built; the estimate is printed with the progress.

    **Returns:** the path written. The output is untouched if anything fails.

    **Raises:** `SpecError` (invalid spec), `SimulationError` (a simulation failed; no
    chunks are kept), `ChunkStoreError` (the chunk directory belongs to another run, or
    holds finished chunks and `resume` is off), `ClusterError` (no Dask cluster could
    be started or reached), `ChunkError` (a chunk failed on a Dask worker; finished
    chunks are kept for `resume`).

    **Dataset:** dimensions are the swept parameters (named after them, e.g. `K`), then
    `seed`, `time` (and `osc` with trajectories). Variables: `R` and `R_std` (over the
    final `observe.window`), `R_t` (|Z| every `solve.save_every` steps), with
    `observe.frequency` the mean effective frequency `Omega` over the window and its
    spread across oscillators `Omega_std` (from the phases saved every
    `solve.save_every` steps and their exact winding numbers), with `observe.energy`
    the energy `kl.energy` averaged over the window, `energy`, and over time,
    `energy_t` (files written by earlier versions name them `E`, `E_t`), and
    with `observe.trajectories` also `theta` (sphere models: `x`, with a `dim`
    dimension) and `omega`.
    """
    check_backend(workers, scheduler)
    limits = lim.Limits.from_env() if limits is None else limits
    if not isinstance(spec, StudySpec):
        spec, text = _read_spec(spec, limits)
        spec_text = spec_text if spec_text is not None else text
    if spec_text is None:
        spec_text = spec.to_toml()
    path = Path(out if out is not None else spec.output.path)
    if path.suffix != ".nc" or len(path.name) <= 3:
        raise ValueError(f"out = {str(path)!r}: expected a netCDF path ending in .nc")
    import jax.numpy as jnp

    itemsize = np.dtype(jnp.result_type(float)).itemsize
    est = lim.check_sizes(spec, limits, itemsize)  # before the grid exists
    if compile_cache:
        enable_compile_cache()

    grid = plan.grid(spec)
    plan.check_representable(spec, grid)
    return run(
        spec,
        grid,
        path,
        spec_text=spec_text,
        resume=resume,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        compile_cache=compile_cache,
        summary=est.summary(),
    )
