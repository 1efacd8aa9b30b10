"""The chunk store of a study: chunk files, the manifest, the lock, resume.

Next to the output file `<out>` lives the directory `<out>.chunks/`:

```
quickstart.nc.chunks/
    manifest.json                 what the chunks belong to: spec hash, sizes, the spec
    chunk-00000-of-00007.nc       the raw per-point arrays of plan.run_chunk
    chunk-00001-of-00007.nc
    lock                          flock-ed by the run using the directory
```

Every chunk file has exactly one writer, the driver process (netCDF has no safe
concurrent writers, and `to_netcdf(mode="a")` does not append). It is written to a
temporary file that is flushed and renamed into place (`atomic_output`), so a chunk
file exists only once it is complete: killing the process at any moment loses at most
the chunks in flight and never a finished one. A chunk is finished iff its file
exists, loads, and belongs to the manifest. When every chunk is finished the run
(`kuralab._study.run`) combines them, writes the result atomically and removes the
directory.

**Resume.** With `resume=True` (`--resume`) the finished chunks of an earlier,
interrupted run of the same output are kept and only the others run. The manifest
holds a SHA-256 of the spec's canonical TOML (`spec.to_toml()`), the kuralab version
and the float dtype; resuming with anything different fails with `ChunkStoreError`
naming the first difference. Without `resume`, a chunk directory that holds finished
chunks is also an error (pass `--resume`, or remove the directory to start over), so
no work is ever thrown away silently; one without finished chunks is reused.
`resume=True` with nothing to resume runs normally.
"""

from __future__ import annotations

import difflib
import errno
import fnmatch
import hashlib
import importlib.metadata
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._files import atomic_output

__all__ = ["ChunkStore", "ChunkStoreError", "chunk_dir"]

#: Version of the chunk-directory layout (part of the manifest's identity). 2: the
#: chunks come from `kl.sweep`'s kernel (variables `energy`, `energy_t`, no `E`).
#: 3: `psi_t` with the order parameter, `Omega_Z` with frequencies, `turns` with
#: trajectories.
FORMAT = 3
MANIFEST = "manifest.json"
LOCK = "lock"


class ChunkStoreError(ValueError):
    """The chunk directory of an output cannot be used: it holds finished chunks of
    another spec, or of this one without `resume`, or it is in use by another run."""


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
    with atomic_output(path) as tmp:
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


class ChunkStore:
    """The chunk directory of one output; open it with `ChunkStore.open`."""

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
    ) -> ChunkStore:
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
        # Temporary files (`atomic_output`) of writers that died: we hold the lock,
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
            with atomic_output(self.dir / MANIFEST) as tmp:
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
