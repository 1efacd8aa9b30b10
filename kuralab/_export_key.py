"""The cache key of `kuralab._export_cache`: a process-independent description of one
call of `simulate`'s compiled solve.

A call is split as `eqx.filter_jit` splits it (arrays are traced, everything else is
baked into the program) and described by text that is equal in two processes iff they
would trace the same program: the pytree structure with every static value, every
array's shape / dtype / weak type, the device, the versions of the packages that shape
the trace, a hash of kuralab's sources, JAX's configuration and the `EQX_*` variables.
Values without such a description raise `_Unstable` and the call skips the cache (the
rules are in `kuralab/_export_cache.py`'s docstring).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib
import importlib.metadata
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ._native import NATIVE_ENV

#: Version of the entry file format; part of every key, so a new format is a new key.
_FORMAT = 1

#: Packages whose types may appear in a key: their code is covered by the versions
#: (or, for kuralab, the source hash) in the key.
_TRUSTED_MODULES = (
    "builtins",
    "kuralab",
    "diffrax",
    "equinox",
    "lineax",
    "optimistix",
    "jax",
    "jaxlib",
    "numpy",
    "ml_dtypes",
)
_VERSIONED = ("jax", "jaxlib", "equinox", "diffrax", "lineax", "optimistix", "numpy")

#: JAX configuration that does not change a traced program (caching, logging, dumps).
_CONFIG_IGNORED = frozenset(
    {
        "jax_compilation_cache_dir",
        "jax_enable_compilation_cache",
        "jax_compilation_cache_max_size",
        "jax_compilation_cache_check_contents",
        "jax_compilation_cache_expect_pgle",
        "jax_compilation_cache_include_metadata_in_key",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
        "jax_persistent_cache_enable_xla_caches",
        "jax_raise_persistent_cache_errors",
        "jax_log_compiles",
        "jax_explain_cache_misses",
        "jax_logging_level",
        "jax_debug_log_modules",
        "jax_dump_ir_to",
        "jax_dump_ir_modes",
        "jax_include_debug_info_in_dumps",
        "jax_traceback_filtering",
        "jax_pprint_use_color",
    }
)

_PRIMITIVES = (type(None), bool, int, float, complex, str, bytes)


class _Unstable(Exception):
    """The call has no process-independent description: skip the cache."""


# ---------------------------------------------------------------------------------
# The key
# ---------------------------------------------------------------------------------


def _trusted_type(tp: type) -> str:
    """`module.qualname` of a type defined in kuralab or one of its dependencies."""
    module = getattr(tp, "__module__", "") or ""
    if module.split(".")[0] not in _TRUSTED_MODULES or "<locals>" in tp.__qualname__:
        raise _Unstable(
            f"type {module}.{tp.__qualname__} is not kuralab's or a dependency's"
        )
    return f"{module}.{tp.__qualname__}"


def _describe(obj: Any) -> str:
    """A text that is equal in two processes iff the static value `obj` is equal.

    Raises `_Unstable` for values without such a description (functions, objects with
    the default repr, types from outside kuralab and its dependencies, tracers).
    """
    if type(obj) in _PRIMITIVES:  # exact types: subclasses may behave differently
        return f"{type(obj).__name__}:{obj!r}"  # float repr round-trips exactly
    if isinstance(obj, tuple | list):
        inner = ",".join(_describe(x) for x in obj)
        return f"{_trusted_type(type(obj))}({inner})"
    if isinstance(obj, dict):
        items = sorted(f"{_describe(k)}:{_describe(v)}" for k, v in obj.items())
        return f"{_trusted_type(type(obj))}{{{','.join(items)}}}"
    if isinstance(obj, set | frozenset):
        return f"{type(obj).__name__}{{{','.join(sorted(_describe(x) for x in obj))}}}"
    if isinstance(obj, type):
        return f"type:{_trusted_type(obj)}"
    if isinstance(obj, enum.Enum):
        return f"{_trusted_type(type(obj))}.{obj.name}"
    if isinstance(obj, jax.core.Tracer):
        raise _Unstable("a static value is traced")
    if isinstance(obj, np.ndarray | np.generic | jax.Array):  # by value, never repr
        arr = np.asarray(obj)
        digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
        return f"ndarray:{arr.dtype.str}{arr.shape}:{digest}"
    if isinstance(obj, np.dtype):
        return f"dtype:{obj.str}"
    if isinstance(obj, jax.ShapeDtypeStruct):
        return f"ShapeDtypeStruct:{obj.shape}:{obj.dtype}:{obj.weak_type}"
    if callable(obj) and not isinstance(obj, eqx.Module):
        return _describe_function(obj)
    if isinstance(obj, eqx.Module):
        leaves, treedef = jax.tree_util.tree_flatten(obj)
        return f"{_describe_treedef(treedef)}[{','.join(_describe(x) for x in leaves)}]"
    name = _trusted_type(type(obj))
    text = repr(obj)
    if type(obj).__repr__ is object.__repr__ or " at 0x" in text:
        raise _Unstable(f"{name} has no stable repr")
    return f"{name}:{text}"


def _describe_function(fn: Any) -> str:
    """A module-level function of kuralab or a dependency, by its import path (its code
    is covered by the versions and source hash in the key). Anything else -- lambdas,
    closures, bound methods, partials, user functions -- raises `_Unstable`."""
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", None) or ""
    if (
        module.split(".")[0] not in _TRUSTED_MODULES
        or not qualname
        or "<" in qualname
        or isinstance(fn, types.MethodType | functools.partial)
    ):
        raise _Unstable(f"static callable {fn!r}")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if target is not fn:
        raise _Unstable(
            f"static callable {fn!r} is not importable as {module}.{qualname}"
        )
    return f"function:{module}.{qualname}"


def _describe_treedef(treedef: Any) -> str:
    """`_describe` for a pytree structure: node types and their static (aux) data.

    Not memoised by treedef on purpose: treedefs compare their aux data with `==`,
    which equates e.g. `1`, `1.0` and `True`, values that can trace differently."""
    if jax.tree_util.treedef_is_leaf(treedef):
        return "*"
    node_type, aux = treedef.node_data()
    children = ",".join(_describe_treedef(c) for c in treedef.children())
    return f"{_trusted_type(node_type)}<{_describe(aux)}>({children})"


def _aval(leaf: Any) -> str:
    aval = jax.typeof(leaf)
    return f"{aval.dtype}{tuple(aval.shape)}{'w' if aval.weak_type else ''}"


@functools.lru_cache(maxsize=1)
def _source_fingerprint() -> str:
    """sha256 of kuralab's Python sources: a code change is a new key without a new
    version number."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(
            str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0"
        )
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _versions() -> str:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    return ";".join(f"{name}={version(name)}" for name in _VERSIONED)


def _environment() -> str:
    """Versions, kuralab's source hash, JAX's configuration, `EQX_*` variables and
    `KURALAB_NATIVE` (which decides whether the native kernels are traced in)."""
    config = sorted(
        f"{k}={_describe(v)}"
        for k, v in jax.config.values.items()
        if k not in _CONFIG_IGNORED
    )
    eqx_env = sorted(
        f"{k}={v}"
        for k, v in os.environ.items()
        if k.startswith("EQX_") or k == NATIVE_ENV
    )
    return "\n".join([_versions(), _source_fingerprint(), *config, *eqx_env])


def _device(leaves: list[Any]) -> jax.Device:
    """The one device every array argument lives on (default device if none)."""
    devices: set = set()
    for leaf in leaves:
        if isinstance(leaf, jax.Array):
            devices |= set(leaf.sharding.device_set)
    if len(devices) > 1:
        raise _Unstable("arguments on several devices")
    if devices:
        return devices.pop()
    default = jax.config.jax_default_device
    return default if isinstance(default, jax.Device) else jax.devices()[0]


# ---------------------------------------------------------------------------------
# One call
# ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Call:
    """A call split into its arrays (traced) and everything else (baked in)."""

    key: str
    digest: str
    platform: str
    arrays: list[Any]
    rebuild: Callable[[list[Any]], tuple[tuple, dict]]


def _split(args: tuple, kwargs: dict) -> _Call:
    """Split `(args, kwargs)` as `eqx.filter_jit` does (arrays are traced, the rest is
    static) and describe the call. Raises `_Unstable`."""
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    if any(isinstance(x, jax.core.Tracer) for x in leaves):
        raise _Unstable("traced arguments")
    if not jax.sharding.get_abstract_mesh().empty:
        raise _Unstable("inside a mesh context")  # it would shape the traced program
    where = [i for i, x in enumerate(leaves) if eqx.is_array(x)]
    arrays = [leaves[i] for i in where]
    device = _device(arrays)
    parts = [
        f"kuralab export cache format {_FORMAT}",
        _describe_treedef(treedef),
        ";".join(_aval(x) if eqx.is_array(x) else _describe(x) for x in leaves),
        f"{device.platform}:{device.device_kind}:{device.client.platform_version}",
        _environment(),
    ]
    key = "\n".join(parts)

    def rebuild(new_arrays: list[Any]) -> tuple[tuple, dict]:
        full = list(leaves)
        for i, x in zip(where, new_arrays, strict=True):
            full[i] = x
        return jax.tree_util.tree_unflatten(treedef, full)

    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return _Call(key, digest, device.platform, arrays, rebuild)
