"""On-disk cache of `simulate`'s compiled solve as exported StableHLO (`jax.export`).

Why: with JAX's persistent compilation cache a new process no longer pays the XLA
compile of `simulate`, but it still traces diffrax's solve to a jaxpr and lowers it to
StableHLO before it can even look the executable up (about 0.4-0.7 s on a CPU). This
module stores the lowered solve itself. A new process with the same configuration
deserializes it, skipping tracing and lowering, and its XLA compile is a hit in JAX's
persistent cache.

When it is used (everything else takes the normal `eqx.filter_jit` path, unchanged):

- it is enabled: the environment variable `KURALAB_EXPORT_CACHE` names a directory, or
  it is unset and JAX's persistent compilation cache is configured
  (`jax_compilation_cache_dir`), in which case the directory is
  `<jax_compilation_cache_dir>/kuralab-export`. `KURALAB_EXPORT_CACHE=0` (or `off`,
  `false`, `no`, empty) disables it. Without a persistent compilation cache the XLA
  compile would dominate anyway, so nothing is written unless the user opted into
  on-disk caching;
- the call is eager: no argument leaf is a tracer (not under `jax.jit`, `jax.vmap`,
  `jax.grad`, ...) and `jax_disable_jit` is off; every array sits on one device;
- the configuration has a process-independent description (the cache key, below);
- exporting works: `jax.export` refuses host callbacks, which diffrax adds for
  `SaveAt(ts=...)` (sorted, within [t0, t1]), for `brownian="tree"` (evaluation time
  within the tree's range) and for `progress=True`. A configuration that cannot be
  exported is remembered with a `.skip` file, so only the first process pays for the
  attempt (one extra trace and lowering).

Module-level functions of kuralab and its dependencies are described by import path
(a user's function is not: see below). The first process of a configuration traces and
lowers once, as before, plus about 0.1-0.3 s to serialize and to lower the call of the
exported module. Later calls in a process add about 0.3 ms each (the key is rebuilt
from the arguments on every call, because equal-comparing static values such as `1`
and `1.0` may trace differently).

The cache key describes everything that determines the traced program: the pytree
structure of the arguments with every static value (solver, step count, save policy,
model structure, static floats), the shape / dtype / weak type of every array, the
device's platform and kind, the versions of jax, jaxlib, equinox, diffrax, lineax and
optimistix, a hash of kuralab's source files, JAX's configuration and the `EQX_*`
environment variables. A static value whose description could differ between processes,
or that could change meaning without a change of key, makes the call skip the cache: a
function (e.g. `SaveAt(fn=...)`, a callable history), an object whose repr has no
custom form or contains an address (' at 0x'), or a type defined outside kuralab and
its dependencies (a user's own model subclass: its code is not part of the key).
The key is built in `kuralab/_export_key.py`.

Files are written atomically (temporary file + `os.replace`), so concurrent processes
see either no entry or a whole one. An unreadable, stale or mismatching file is
replaced; a failure to load or run an entry falls back to the normal path. Arrays come
back strongly typed: `jax.export` does not keep weak types of outputs (only the step
counts in `Trajectory.stats` are weakly typed on the normal path). Serialization needs
the `flatbuffers` package; without it the cache is off. On CPU, a loaded entry without
LAPACK calls skips JAX's LAPACK set-up (`_install_lapack_guard`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import importlib.util
import json
import logging
import os
import re
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from ._export_key import (
    _FORMAT,
    _Call,
    _describe as _describe,
    _split,
    _trusted_type,
    _Unstable as _Unstable,
)
from ._files import atomic_output
from ._native import NATIVE_TARGETS, target as native_target

logger = logging.getLogger(__name__)

#: Environment variable: a cache directory, or 0/off/false/no to disable.
ENV_VAR = "KURALAB_EXPORT_CACHE"
#: Subdirectory of `jax_compilation_cache_dir` used when `ENV_VAR` is unset.
SUBDIR = "kuralab-export"
_OFF = ("", "0", "off", "false", "no")

_MAGIC = b"KLEXPORT"
_ENTRY_SUFFIX = ".kxp"
_SKIP_SUFFIX = ".skip"

#: What happened, for tests and debugging: "export" (entry written), "load" (entry
#: read from disk), "hit" (entry already loaded in this process), "skip" (no stable key
#: or not exportable), "stale" (an unusable file, replaced), "fallback" (an entry
#: failed to run; normal path used).
counts: Counter[str] = Counter()

_loaded: dict[str, Callable[[list[Any]], Any]] = {}
_skipped: set[str] = set()


# ---------------------------------------------------------------------------------
# Where
# ---------------------------------------------------------------------------------


def cache_dir() -> Path | None:
    """The export cache directory, or None when the cache is off (see module doc)."""
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env).expanduser()
    jax_dir = jax.config.jax_compilation_cache_dir
    if not jax_dir or "://" in str(jax_dir):  # remote (gs://...) caches: not here
        return None
    return Path(jax_dir).expanduser() / SUBDIR


# ---------------------------------------------------------------------------------
# Outputs: arrays through the exported function, the rest as JSON in the file header
# ---------------------------------------------------------------------------------


def _encode_output(out: Any, arrays: list[Any]) -> Any:
    """A JSON description of `out`, appending its arrays to `arrays`."""
    if eqx.is_array(out):
        arrays.append(out)
        return {"array": len(arrays) - 1}
    if _is_enum_item(out):  # e.g. kl.RESULTS: its integer value is the array
        arrays.append(out._value)
        enum_cls = out._enumeration
        return {"enum": len(arrays) - 1, "cls": _trusted_type(enum_cls)}
    if type(out) in (type(None), bool, int, float, str):
        return {"value": out}
    if isinstance(out, dict) and all(isinstance(k, str) for k in out):
        return {"dict": {k: _encode_output(v, arrays) for k, v in out.items()}}
    if type(out) in (tuple, list):
        return {type(out).__name__: [_encode_output(v, arrays) for v in out]}
    raise _Unstable(f"output of type {type(out).__name__} cannot be described")


def _is_enum_item(x: Any) -> bool:
    """Is `x` an item of an `eqx.Enumeration` (such as `kl.RESULTS.successful`)?"""
    return isinstance(x, eqx.Module) and isinstance(
        getattr(x, "_enumeration", None), type
    )


def _decode_output(desc: Any, arrays: list[Any]) -> Any:
    """Inverse of `_encode_output`."""
    (kind, value), *_ = desc.items()
    if kind == "array":
        return arrays[value]
    if kind == "enum":
        module, _, name = desc["cls"].rpartition(".")
        enum_cls = getattr(importlib.import_module(module), name)
        template = next(iter(enum_cls._name_to_item.values()))
        return eqx.tree_at(lambda item: item._value, template, arrays[value])
    if kind == "value":
        return value
    if kind == "dict":
        return {k: _decode_output(v, arrays) for k, v in value.items()}
    if kind == "tuple":
        return tuple(_decode_output(v, arrays) for v in value)
    if kind == "list":
        return [_decode_output(v, arrays) for v in value]
    raise ValueError(f"unknown output description {kind!r}")


# ---------------------------------------------------------------------------------
# Entries: export, file format, load
# ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Entry:
    """A deserialized (or freshly exported) solve and how to rebuild its output."""

    exported: jax.export.Exported
    output: Any  # `_encode_output`'s JSON description
    needs_lapack: bool


def _export(fn: Callable[..., Any], call: _Call) -> tuple[_Entry, bytes]:
    """Trace and lower `fn` for `call`'s configuration; return the entry and the
    bytes of its file. Raises whatever `jax.export` raises for what it cannot
    serialize (host callbacks, custom calls without stability guarantees, effects)."""
    description: dict[str, Any] = {}

    def flat(*arrays: Any) -> list[Any]:
        args, kwargs = call.rebuild(list(arrays))
        out_arrays: list[Any] = []
        description["output"] = _encode_output(fn(*args, **kwargs), out_arrays)
        return out_arrays

    specs = [
        jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=jax.typeof(x).weak_type)
        for x in call.arrays
    ]
    # kuralab's own FFI kernels (kuralab/_native) are not on jax.export's list of
    # stable custom calls; a loaded entry registers them first (`_read`).
    exported = jax.export.export(
        jax.jit(flat),
        platforms=(call.platform,),
        disabled_checks=[
            jax.export.DisabledSafetyCheck.custom_call(name) for name in NATIVE_TARGETS
        ],
    )(*specs)
    payload = bytes(exported.serialize())
    targets = sorted(set(_CUSTOM_CALL.findall(exported.mlir_module())))
    entry = _Entry(exported, description["output"], any("lapack" in t for t in targets))
    header = dict(
        key=call.key,
        output=entry.output,
        needs_lapack=entry.needs_lapack,
        custom_calls=targets,
    )
    return entry, _pack(header, payload)


_CUSTOM_CALL = re.compile(r"custom_call\s*@([\w.$-]+)")


def _pack(header: dict[str, Any], payload: bytes) -> bytes:
    head = json.dumps(header).encode()
    return _MAGIC + struct.pack("<II", _FORMAT, len(head)) + head + payload


def _unpack(data: bytes, key: str) -> tuple[dict[str, Any], bytes]:
    """Header and payload of an entry file; ValueError unless it is an entry of this
    format for exactly `key`."""
    if data[: len(_MAGIC)] != _MAGIC:
        raise ValueError("not a kuralab export cache entry")
    start = len(_MAGIC) + 8
    fmt, size = struct.unpack_from("<II", data, len(_MAGIC))
    if fmt != _FORMAT:
        raise ValueError(f"entry format {fmt}, expected {_FORMAT}")
    header = json.loads(data[start : start + size])
    if header.get("key") != key:
        raise ValueError("entry is for another configuration")
    return header, data[start + size :]


def _read(path: Path, key: str) -> _Entry | None:
    """The entry at `path`, or None if there is none or it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        logger.info("kuralab export cache: cannot read %s (%s)", path, e)
        return None
    try:
        header, payload = _unpack(data, key)
        native = set(header.get("custom_calls", ())) & set(NATIVE_TARGETS)
        if any(native_target(name) is None for name in native):
            raise ValueError("it calls kuralab's native kernels, unavailable here")
        exported = jax.export.deserialize(bytearray(payload))
        return _Entry(exported, header["output"], bool(header["needs_lapack"]))
    except Exception as e:  # noqa: BLE001 -- any damage means: export again
        counts["stale"] += 1
        logger.info("kuralab export cache: replacing unusable entry %s (%s)", path, e)
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see no file or the whole file."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


# ---------------------------------------------------------------------------------
# Running an entry
# ---------------------------------------------------------------------------------

_lapack = threading.local()


@functools.lru_cache(maxsize=1)
def _install_lapack_guard() -> bool:
    """Let this thread skip JAX's LAPACK initialisation when it lowers a call of an
    exported function that has no LAPACK custom call.

    `Exported.call` initialises jaxlib's LAPACK kernels on CPU whatever the module
    contains, which imports `scipy.linalg` (about 0.2 s in a new process: most of what
    is left of a cached `simulate`). A solve without LAPACK calls does not need them.
    This wraps the private `jax._src.export._export._ensure_backends_initialized`; if
    it is not there (another JAX), nothing is skipped. The skip is thread-local, so a
    concurrent lowering elsewhere still initialises LAPACK.
    """
    try:
        from jax._src.export import _export as export_impl
    except ImportError:
        return False
    original = getattr(export_impl, "_ensure_backends_initialized", None)
    if not callable(original):
        return False

    def ensure_backends_initialized(platforms: tuple[str, ...]) -> None:
        if not getattr(_lapack, "skip", False):
            original(platforms)

    export_impl._ensure_backends_initialized = ensure_backends_initialized
    return True


@contextmanager
def _lapack_init_skipped() -> Iterator[None]:
    _install_lapack_guard()
    previous = getattr(_lapack, "skip", False)
    _lapack.skip = True
    try:
        yield
    finally:
        _lapack.skip = previous


def _runner(entry: _Entry) -> Callable[[list[Any]], Any]:
    """A function of the call's arrays that runs the entry and rebuilds the output."""
    call = jax.jit(entry.exported.call)

    def run(arrays: list[Any]) -> Any:
        if entry.needs_lapack:
            out = call(*arrays)
        else:
            with _lapack_init_skipped():
                out = call(*arrays)
        return _decode_output(entry.output, list(out))

    return run


# ---------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _serialization_available() -> bool:
    """`Exported.serialize` needs the optional `flatbuffers` package."""
    if importlib.util.find_spec("flatbuffers") is None:
        logger.info("kuralab export cache: off (install `flatbuffers` to enable it)")
        return False
    return True


def cached_call(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """`fn(*args, **kwargs)`, through the export cache when it applies (module doc).

    `fn` is an `eqx.filter_jit`-compiled function whose output is a pytree of arrays,
    Python scalars, dicts, lists, tuples, None and `eqx.Enumeration` items (as
    `_integrate._solve`). The result equals the normal call's.
    """
    directory = cache_dir()
    if (
        directory is None
        or jax.config.jax_disable_jit
        or not _serialization_available()
    ):
        return fn(*args, **kwargs)
    try:
        call = _split(args, kwargs)
    except _Unstable as e:
        counts["skip"] += 1
        logger.debug("kuralab export cache: skipped (%s)", e)
        return fn(*args, **kwargs)
    runner = _loaded.get(call.digest)
    if runner is not None:
        counts["hit"] += 1
    elif call.digest in _skipped:
        counts["skip"] += 1
        return fn(*args, **kwargs)
    else:
        runner = _load_or_export(fn, call, directory)
        if runner is None:
            return fn(*args, **kwargs)
    try:
        return runner(call.arrays)
    except Exception as e:  # noqa: BLE001 -- the normal path raises its own errors
        counts["fallback"] += 1
        logger.warning(
            "kuralab export cache: entry %s failed (%s); not used again", call.digest, e
        )
        _loaded.pop(call.digest, None)
        _skipped.add(call.digest)
        return fn(*args, **kwargs)


def _load_or_export(
    fn: Callable[..., Any], call: _Call, directory: Path
) -> Callable[[list[Any]], Any] | None:
    """Load `call`'s entry from `directory`, or export and store it; None when this
    configuration cannot be exported (then a `.skip` file records why)."""
    entry_path = directory / f"{call.digest}{_ENTRY_SUFFIX}"
    skip_path = directory / f"{call.digest}{_SKIP_SUFFIX}"
    if skip_path.exists():
        counts["skip"] += 1
        _skipped.add(call.digest)
        return None
    entry = _read(entry_path, call.key)
    if entry is not None:
        counts["load"] += 1
    else:
        try:
            entry, data = _export(fn, call)
        except Exception as e:  # noqa: BLE001 -- not exportable: use the normal path
            counts["skip"] += 1
            _skipped.add(call.digest)
            logger.info("kuralab export cache: cannot export this solve (%s)", e)
            with contextlib.suppress(OSError):
                _write_atomic(
                    skip_path, f"{type(e).__name__}: {e}\n\n{call.key}\n".encode()
                )
            return None
        counts["export"] += 1
        try:
            _write_atomic(entry_path, data)
        except OSError as e:
            logger.warning("kuralab export cache: cannot write %s (%s)", entry_path, e)
    runner = _runner(entry)
    _loaded[call.digest] = runner
    return runner
