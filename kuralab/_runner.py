"""Running a study at scale: a chunk store on disk, resume, progress and backends.

`kuralab.study.run_study` validates the spec, builds the sweep grid and hands it to
`run` here. The grid is split into chunks of `output.chunk_size` points; each chunk is
one `kuralab.study.run_chunk(spec, grid, where)` call, the unit of work of every
backend.

**Chunk store.** Next to the output file `<out>` lives the directory `<out>.chunks/`:

```
quickstart.nc.chunks/
    manifest.json                 what the chunks belong to: spec hash, sizes, the spec
    chunk-00000-of-00007.nc       the raw per-point arrays run_chunk returned
    chunk-00001-of-00007.nc
    lock                          flock-ed by the run using the directory
```

Every chunk file has exactly one writer, the driver process (netCDF has no safe
concurrent writers, and `to_netcdf(mode="a")` does not append). It is written to a
temporary file that is flushed and renamed into place (`kuralab.io.atomic_output`), so
a chunk file exists only once it is complete: killing the process at any moment loses
at most the chunks in flight and never a finished one. A chunk is finished iff its
file exists, loads, and belongs to the manifest. When every chunk is finished they are
combined (`study._combine`), the result is written atomically with `kuralab.io.save`,
and the directory is removed.

**Resume.** With `resume=True` (`--resume`) the finished chunks of an earlier,
interrupted run of the same output are kept and only the others run. The manifest
holds a SHA-256 of the spec's canonical TOML (`spec.to_toml()`), the kuralab version
and the float dtype; resuming with anything different fails with `ChunkStoreError`
naming the first difference. Without `resume`, a chunk directory that holds finished
chunks is also an error (pass `--resume`, or remove the directory to start over), so
no work is ever thrown away silently; one without finished chunks is reused.
`resume=True` with nothing to resume runs normally. A run that fails before any chunk
is finished leaves no directory behind; a simulation failure (`SimulationError`, which
is deterministic: resuming would fail again) removes it.

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
import difflib
import errno
import fnmatch
import functools
import gc
import hashlib
import importlib.metadata
import itertools
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from . import io

__all__ = ["ChunkError", "ChunkStoreError", "ClusterError", "chunk_dir", "run"]

#: Version of the chunk-directory layout (part of the manifest's identity).
FORMAT = 1
MANIFEST = "manifest.json"
LOCK = "lock"
#: Test hook, not for users: seconds to sleep before computing each chunk in-process,
#: so that a test can kill a run while a chunk is in flight (tests/test_runner.py).
DELAY_ENV = "KURALAB_TEST_CHUNK_DELAY"


class ChunkStoreError(ValueError):
    """The chunk directory of an output cannot be used: it holds finished chunks of
    another spec, or of this one without `resume`, or it is in use by another run."""


class ClusterError(RuntimeError):
    """The Dask backend could not start: no `dask.distributed`, a LocalCluster that
    failed to start, or a scheduler that cannot be reached or has no workers."""


class ChunkError(RuntimeError):
    """A chunk failed on a Dask worker. Finished chunks are kept for `resume`."""


def _line(text: object, limit: int = 400) -> str:
    """`text` on one line, shortened to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------
# Chunk files: raw per-point arrays, bit for bit
# ---------------------------------------------------------------------------------

_POINT = "point"
_DTYPE_ATTR = "kuralab_dtype"


def _encode(arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> xr.Dataset:
    """The arrays as netCDF-storable variables: bool as uint8 and complex as a
    trailing (real, imag) axis, both marked with their original dtype."""
    data = {}
    for name, value in arrays.items():
        a = np.ascontiguousarray(value)
        var_attrs = {}
        if a.dtype.kind == "b":
            a, var_attrs = a.view(np.uint8), {_DTYPE_ATTR: "bool"}
        elif a.dtype.kind == "c":
            var_attrs = {_DTYPE_ATTR: a.dtype.name}
            a = a.view(a.real.dtype).reshape(*a.shape, 2)
        dims = (_POINT, *(f"{name}_dim{k}" for k in range(1, a.ndim)))
        data[name] = xr.Variable(dims, a, var_attrs)
    return xr.Dataset(data, attrs=attrs)


def _decode(ds: xr.Dataset) -> dict[str, np.ndarray]:
    out = {}
    for name, var in ds.data_vars.items():
        a = np.asarray(var.values)
        kind = var.attrs.get(_DTYPE_ATTR)
        if kind == "bool":
            a = a.view(np.bool_)
        elif kind is not None:
            a = np.ascontiguousarray(a).view(np.dtype(kind))[..., 0]
        out[str(name)] = a
    return out


def _write_chunk(path: Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any]):
    ds = _encode(arrays, attrs)
    encoding = {name: {"_FillValue": None} for name in ds.data_vars}
    with io.atomic_output(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)


def _read_chunk(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with xr.open_dataset(path, engine="netcdf4", decode_cf=False) as ds:
        ds.load()
        return _decode(ds), dict(ds.attrs)


# ---------------------------------------------------------------------------------
# The chunk store
# ---------------------------------------------------------------------------------


def chunk_dir(out: str | os.PathLike) -> Path:
    """The chunk directory of the output file `out`: `<out>.chunks`."""
    out = Path(out)
    return out.with_name(out.name + ".chunks")


def _version() -> str:
    try:
        return importlib.metadata.version("kuralab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _identity(spec, grid_size: int, chunks: list[slice]) -> dict[str, Any]:
    """What finished chunks belong to. Equal identities give identical chunk data."""
    import jax.numpy as jnp

    canonical = spec.to_toml()
    version = _version()
    dtype = np.dtype(jnp.result_type(float)).name
    digest = hashlib.sha256(
        "\0".join([str(FORMAT), version, dtype, canonical]).encode()
    ).hexdigest()
    return {
        "format": FORMAT,
        "study": spec.study.name,
        "spec_sha256": digest,
        "kuralab_version": version,
        "dtype": dtype,
        "points": grid_size,
        "chunk_size": spec.output.chunk_size,
        "chunks": len(chunks),
        "spec": canonical,
    }


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why the chunks of manifest `old` cannot serve identity `new` (None if they can)."""
    if old.get("spec_sha256") == new["spec_sha256"] and all(
        old.get(k) == new[k] for k in ("format", "points", "chunks", "chunk_size")
    ):
        return None
    if old.get("format") != new["format"]:
        return f"chunk-directory format {old.get('format')!r}, this kuralab writes {new['format']}"
    if old.get("kuralab_version") != new["kuralab_version"]:
        return (
            f"written by kuralab {old.get('kuralab_version')}, this is kuralab "
            f"{new['kuralab_version']}"
        )
    if old.get("dtype") != new["dtype"]:
        return (
            f"computed in {old.get('dtype')}, this run computes in {new['dtype']} "
            "(jax_enable_x64)"
        )
    a = str(old.get("spec", "")).splitlines()
    b = new["spec"].splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag == "equal":
            continue
        section = next((x + " " for x in reversed(b[:j1]) if x.startswith("[")), "")
        here = "; ".join(b[j1:j2]) or "nothing"
        there = "; ".join(a[i1:i2]) or "nothing"
        return f"a different spec: {section}{here} here, {there} in the chunks"
    return "a different spec"


class _ChunkStore:
    """The chunk directory of one output; open it with `_ChunkStore.open`."""

    def __init__(self, out: Path, identity: dict[str, Any], chunks: list[slice]):
        self.out = out
        self.dir = chunk_dir(out)
        self.identity = identity
        self.chunks = chunks
        self._lock_fd: int | None = None
        width = max(5, len(str(len(chunks))))
        self._names = [
            f"chunk-{i:0{width}d}-of-{len(chunks):0{width}d}.nc"
            for i in range(len(chunks))
        ]

    # -- opening ------------------------------------------------------------------

    @classmethod
    def open(
        cls, out: Path, identity: dict[str, Any], chunks: list[slice], *, resume: bool
    ) -> _ChunkStore:
        directory = chunk_dir(out)
        if directory.exists() and not directory.is_dir():
            raise ChunkStoreError(
                f"{directory}: exists and is not a directory; kuralab keeps the "
                "finished chunks of this output there: remove it or choose another "
                "output path"
            )
        if directory.is_dir():
            foreign = sorted(
                p.name
                for p in directory.iterdir()
                if p.name not in (MANIFEST, LOCK)
                and not fnmatch.fnmatch(p.name, "chunk-*.nc")
                and not fnmatch.fnmatch(p.name, ".*.tmp-*")
            )
            if foreign:
                raise ChunkStoreError(
                    f"{directory}: not a kuralab chunk directory (it holds "
                    f"{', '.join(foreign[:3])}); remove it or choose another output "
                    "path"
                )
        store = cls(out, identity, chunks)
        directory.mkdir(parents=True, exist_ok=True)
        store._lock()
        try:
            store._check(resume)
        except BaseException:
            store.close()
            raise
        return store

    def _lock(self) -> None:
        """Hold an exclusive lock on the directory for the whole run (released by the
        kernel if the process dies), so that every file keeps exactly one writer."""
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking
            self._lock_fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ChunkStoreError(
                f"{self.dir}: in use by another kuralab run (pid {owner}) writing the "
                "same output; wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _check(self, resume: bool) -> None:
        # Temporary files (`io.atomic_output`) of writers that died: we hold the lock,
        # so none of them is alive.
        for tmp in [
            *self.dir.glob(".chunk-*.tmp-*"),
            *self.dir.glob(f".{MANIFEST}.tmp-*"),
            *self.out.parent.glob(f".{self.out.name}.tmp-*"),
        ]:
            tmp.unlink(missing_ok=True)
        files = sorted(self.dir.glob("chunk-*.nc"))
        if files:
            manifest = self._manifest()
            if manifest is None:
                raise ChunkStoreError(
                    f"{self.dir}: holds {len(files)} chunk files but no readable "
                    f"{MANIFEST}; remove the directory to start over"
                )
            why = _difference(manifest, self.identity)
            if why is not None:
                raise ChunkStoreError(
                    f"cannot {'resume' if resume else 'run'}: {self.dir} holds "
                    f"{len(files)} finished chunks of another run ({why}); remove the "
                    "directory to start over"
                )
            if not resume:
                raise ChunkStoreError(
                    f"{self.dir} holds {len(files)} of {len(self.chunks)} finished "
                    "chunks of an interrupted run of this spec; pass --resume to "
                    "continue it, or remove the directory to start over"
                )
        if self._manifest() != self.identity:
            with io.atomic_output(self.dir / MANIFEST) as tmp:
                tmp.write_text(json.dumps(self.identity, indent=1) + "\n")

    def _manifest(self) -> dict[str, Any] | None:
        try:
            manifest = json.loads((self.dir / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) else None

    # -- chunks -------------------------------------------------------------------

    def path(self, i: int) -> Path:
        return self.dir / self._names[i]

    def _attrs(self, i: int) -> dict[str, Any]:
        where = self.chunks[i]
        return {
            "kuralab_chunk": i,
            "start": where.start,
            "stop": where.stop,
            "spec_sha256": self.identity["spec_sha256"],
        }

    def write(self, i: int, arrays: dict[str, np.ndarray]) -> None:
        count = self.chunks[i].stop - self.chunks[i].start
        for name, value in arrays.items():
            if np.shape(value)[:1] != (count,):
                raise AssertionError(
                    f"kuralab bug: chunk {i} variable {name!r} has shape "
                    f"{np.shape(value)}; expected a leading point axis of {count}"
                )
        _write_chunk(self.path(i), arrays, self._attrs(i))

    def read(self, i: int) -> dict[str, np.ndarray]:
        """The arrays of chunk `i`; raises `ValueError` if its file does not belong."""
        arrays, attrs = _read_chunk(self.path(i))
        expected = self._attrs(i)
        count = self.chunks[i].stop - self.chunks[i].start
        if any(attrs.get(k) != v for k, v in expected.items()):
            raise ValueError(f"{self.path(i)}: belongs to another chunk or spec")
        if not arrays or any(a.shape[:1] != (count,) for a in arrays.values()):
            raise ValueError(f"{self.path(i)}: expected {count} points per variable")
        return arrays

    def finished(self, say: Callable[[str], None]) -> set[int]:
        """The chunks whose files exist and load; unreadable ones are removed."""
        done = set()
        for i in range(len(self.chunks)):
            path = self.path(i)
            if not path.exists():
                continue
            try:
                self.read(i)
            except Exception as e:  # whatever the damage: not finished
                say(f"{path.name}: unreadable ({_line(e, 120)}); recomputing it")
                path.unlink(missing_ok=True)
                continue
            done.add(i)
        return done

    def any_finished(self) -> bool:
        return any(self.dir.glob("chunk-*.nc"))

    # -- closing ------------------------------------------------------------------

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


# ---------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------


def _say(name: str, enabled: bool, message: str) -> None:
    if enabled:
        print(f"[{name}] {message}", file=sys.stderr, flush=True)


class _Progress:
    """A tqdm bar on a terminal, one log line per chunk otherwise, or nothing."""

    def __init__(self, name: str, chunks: list[slice], done: set[int], enabled: bool):
        self.name = name
        self.chunks = chunks
        self.size = chunks[-1].stop
        self.enabled = enabled
        self.done = len(done)
        self.points = sum(chunks[i].stop - chunks[i].start for i in done)
        self.computed = 0  # points computed by this run (for the rate)
        self.start = time.perf_counter()
        self.bar = None
        if not enabled:
            return
        if self.done:
            self.say(
                f"resuming: {self.done} of {len(chunks)} chunks ({self.points} of "
                f"{self.size} points) already finished"
            )
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=len(chunks),
                initial=self.done,
                desc=name,
                unit="chunk",
                file=sys.stderr,
                dynamic_ncols=True,
                postfix=self._points(),
            )

    def _points(self) -> str:
        return f"{self.points}/{self.size} points"

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(f"[{self.name}] {message}", file=sys.stderr)
        else:
            _say(self.name, self.enabled, message)

    def update(self, i: int) -> None:
        count = self.chunks[i].stop - self.chunks[i].start
        self.done += 1
        self.points += count
        self.computed += count
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(self._points(), refresh=False)
            self.bar.update(1)
            return
        elapsed = time.perf_counter() - self.start
        rate = self.computed / elapsed if elapsed > 0 else float("inf")
        eta = (self.size - self.points) / rate if rate > 0 else float("inf")
        self.say(
            f"chunk {self.done}/{len(self.chunks)} ({self._points()}) {elapsed:.1f} s "
            f"elapsed, {rate:.2f} points/s, ETA {eta:.0f} s"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------


def _run_in_process(spec, grid, chunks, todo, on_done) -> None:
    from . import study

    delay = float(os.environ.get(DELAY_ENV) or 0.0)
    for i in todo:
        if delay:
            time.sleep(delay)
        on_done(i, study.run_chunk(spec, grid, chunks[i]))


@functools.lru_cache(maxsize=4)
def _worker_grid(spec):
    from . import study

    return study._grid(spec)


def _run_chunk_task(
    spec, start: int, stop: int, x64: bool, compile_cache: bool, cache_dir: str | None
) -> dict[str, np.ndarray]:
    """The Dask task: run the points `[start, stop)` of `spec`'s grid on a worker and
    return `run_chunk`'s arrays (the driver writes the chunk file)."""
    import jax

    from . import study

    if compile_cache:
        study.enable_compile_cache(cache_dir)
    with jax.enable_x64(x64):
        return study.run_chunk(spec, _worker_grid(spec), slice(start, stop))


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


def _probe(address: str) -> None:
    """Fail fast, without building a Client, when a `tcp://host:port` scheduler does
    not accept connections."""
    from urllib.parse import urlsplit

    if not isinstance(address, str) or not address.startswith("tcp://"):
        return
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise ClusterError(
            f"cannot connect to the Dask scheduler at {address}: expected an address "
            "like tcp://host:8786"
        )
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
    client, spec, chunks, todo, on_done, *, compile_cache, cache_dir, where, say
) -> None:
    import jax.numpy as jnp
    from dask.distributed import as_completed

    x64 = np.dtype(jnp.result_type(float)) == np.float64
    nthreads = client.nthreads()
    threads = sum(nthreads.values()) or 1
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
) -> Path:
    """Run `spec`'s `grid` chunk by chunk through the chunk store of `out`, then write
    `out` atomically (see the module docstring). Arguments as `run_study`'s."""
    from . import study
    from ._integrate import SimulationError

    check_backend(workers, scheduler)
    chunks = study._chunks(grid, spec.output.chunk_size)
    store = _ChunkStore.open(
        out, _identity(spec, grid.size, chunks), chunks, resume=resume
    )
    try:
        done = store.finished(functools.partial(_say, spec.study.name, progress))
        todo = [i for i in range(len(chunks)) if i not in done]
        meter = _Progress(spec.study.name, chunks, done, progress)

        def on_done(i: int, arrays: dict[str, np.ndarray]) -> None:
            store.write(i, arrays)  # persisted before the next chunk starts
            meter.update(i)

        try:
            if todo and workers is None and scheduler is None:
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
                    )
        finally:
            meter.close()
        parts = [store.read(i) for i in range(len(chunks))]
        try:
            ds = study._combine(spec, grid, parts)
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
