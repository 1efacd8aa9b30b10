"""Datasets and netCDF files: `trajectory_to_dataset`, `save`, `load`, `ds.kura`.

**Dataset layout** (DESIGN.md §4). Dimensions are `time`, `osc`, `dim` (sphere
models), `seed`, and one dimension per swept parameter, named after it. A trajectory of
a phase model holds `theta` (phases wrapped to [-pi, pi)), `turns` (winding numbers: the
unwrapped phase is `theta + 2 pi turns`) and `omega`; a sphere model holds `x`
(`time, osc, dim`). Every variable carries `units` and `long_name`; model time is
dimensionless (`units = "1"`; never a unit such as `"s"`, which xarray would decode as
a timedelta).

**Complex values.** netCDF has no portable complex type (CF has no convention, and the
netCDF4 compound type is unreadable by many tools), so `save` stores a complex variable
`Z` as two floating-point variables `Z_real` and `Z_imag` with the same dimensions and
attributes, plus the attribute `kuralab_complex_part = "real"` / `"imag"`. Any netCDF
reader can read them; `load` recombines every marked pair into the complex variable `Z`
with its original attributes (the marker is removed). `complex64` is stored as two
`float32`, `complex128` as two `float64`. A complex *dimension coordinate* cannot be
split and is rejected.

**Attributes.** netCDF stores strings, numbers and 1-D arrays/lists of numbers or of
strings. `save` rejects everything else (bool, None, dict, complex, ...) with a
`ValueError` naming the attribute; convert it first (e.g. `int(flag)`,
`json.dumps(d)`). netCDF reads a length-1 array attribute back as a scalar, and
attributes that CF reserves for encoding (`_FillValue`, `scale_factor`, `add_offset`,
`missing_value`, `calendar`, `coordinates`, time units such as `"days since ..."`) are
interpreted by the decoder; everything else round-trips exactly.

**Provenance.** `save` adds the global attributes in `PROVENANCE_KEYS` (see
`provenance`): `Conventions`, `kuralab_version`, `jax_version`, `diffrax_version`,
`equinox_version`, `git_revision` (when kuralab runs from a git checkout; `-dirty` with
uncommitted changes), `device`, `created` (UTC ISO 8601; `SOURCE_DATE_EPOCH` is
honoured for reproducible files), and `spec` / `seeds` when given. These describe the
write, so they replace any attribute of the same name already in the Dataset (e.g. from
an earlier `load`); `spec` and `seeds` already present are kept unless new ones are
given. For any Dataset `ds` without reserved attributes,
`xr.testing.assert_identical(load(p), ds.assign_attrs(provenance_of(load(p))))` holds.

**Atomic writes.** `save` writes to a hidden temporary file in the target's directory,
flushes it to disk and renames it onto the target with `os.replace`: a reader sees the
old file or the new one, never a partial one; on any error the temporary file is
removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import importlib.metadata
import math
import numbers
import os
import pathlib
import secrets
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from . import _names as names

__all__ = [
    "PROVENANCE_KEYS",
    "atomic_output",
    "load",
    "provenance",
    "provenance_of",
    "save",
    "trajectory_to_dataset",
]

#: Global attributes that `save` writes (`spec` and `seeds` only when given).
PROVENANCE_KEYS = (
    "Conventions",
    "kuralab_version",
    "jax_version",
    "diffrax_version",
    "equinox_version",
    "git_revision",
    "device",
    "created",
    "spec",
    "seeds",
)
#: The subset that always describes the current write (replaced on every save).
_WRITE_KEYS = PROVENANCE_KEYS[:8]
CONVENTIONS = "CF-1.11"
_REAL, _IMAG = "_real", "_imag"


# ---------------------------------------------------------------------------------
# Trajectory -> Dataset
# ---------------------------------------------------------------------------------


def _attrs_for(name: str, default_long_name: str | None = None) -> dict[str, str]:
    if name in names.UNITS:
        units, long_name = names.UNITS[name]
        return {"units": units, "long_name": long_name}
    return {"units": "1", "long_name": default_long_name or name}


def _batch_dim_names(batch_dims, n_batch: int) -> tuple[str, ...]:
    if batch_dims is None:
        return tuple(f"batch{i}" for i in range(n_batch))
    if isinstance(batch_dims, str):
        raise TypeError(
            "`batch_dims` must be a sequence of dimension names, e.g. "
            f"({batch_dims!r},); got the string {batch_dims!r}"
        )
    try:
        dims = tuple(batch_dims)
    except TypeError:
        raise TypeError(
            "`batch_dims` must be a sequence of dimension names (str), e.g. ('seed',); "
            f"got {batch_dims!r}"
        ) from None
    if not all(isinstance(d, str) and d for d in dims):
        raise TypeError(f"`batch_dims` must contain non-empty strings; got {dims!r}")
    if len(dims) != n_batch:
        raise ValueError(
            f"`batch_dims` names {len(dims)} dimension(s) {dims!r} but the trajectory "
            f"has {n_batch} leading batch axis/axes (ts has shape batch + (time,)); "
            f"give exactly {n_batch} name(s)"
        )
    if len(set(dims)) != len(dims):
        raise ValueError(f"`batch_dims` names must be distinct; got {dims!r}")
    reserved = {names.TIME, names.OSC, names.DIM}
    clash = reserved.intersection(dims)
    if clash:
        raise ValueError(
            f"`batch_dims` may not reuse the trajectory dimension(s) {sorted(clash)}; "
            f"got {dims!r}"
        )
    return dims


def _collapse_identical(a: np.ndarray, n_batch: int) -> np.ndarray | None:
    """`a[0, ..., 0]` if `a` is identical along its first `n_batch` axes, else None."""
    first = a[(0,) * n_batch] if n_batch else a
    if n_batch and not np.array_equal(
        a, np.broadcast_to(first, a.shape), equal_nan=a.dtype.kind in "fc"
    ):
        return None
    return first


def _result_summary(result) -> str:
    try:
        codes = np.asarray(result._value)
        messages = result._enumeration._index_to_message
    except AttributeError:  # not an equinox enumeration item: describe it as is
        return str(result)
    if codes.ndim == 0:
        code = int(codes)
        return "successful" if code == 0 else messages[code]
    failed = codes[codes != 0]
    if failed.size == 0:
        return "successful"
    kinds, counts = np.unique(failed, return_counts=True)
    detail = "; ".join(
        f"{messages[int(k)]} ({int(c)} run{'s' if c != 1 else ''})"
        for k, c in zip(kinds, counts, strict=True)
    )
    return f"{failed.size} of {codes.size} runs failed: {detail}"


def _leaf_name(path) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "_".join(parts)


def trajectory_to_dataset(traj, batch_dims: Sequence[str] | None = None) -> xr.Dataset:
    """Convert a `kl.Trajectory` (possibly `vmap`-batched) to an `xarray.Dataset`.

    **Arguments:**

    - `traj`: the result of `kl.simulate`, or of `jax.vmap` over it (then every array
      has leading batch axes). All batch entries must share the same save times.
    - `batch_dims`: names for the leading batch axes, e.g. `("seed",)`; default
      `batch0`, `batch1`, ... The count must equal the number of batch axes.

    **Returns:** a Dataset with coordinates `time` (float) and `osc` (int index)
    [and `dim`], and

    - phase models: `theta` (batch..., time, osc), wrapped to [-pi, pi), and `turns`;
    - sphere models: `x` (batch..., time, osc, dim);
    - `SaveAt(fn=...)` outputs: one variable per key of a returned dict (extra axes are
      named `<key>_dim0`, ...); a bare array becomes `observable`; other PyTrees are
      named by their key path;
    - `omega` (osc) from the model when it has one; batched only if it differs across
      the batch.

    Attributes record the model and coupling class names, the solver, `dt`, `t0`, `t1`
    and `result` (`"successful"`, the failure message, or for batches a count of failed
    runs with their messages). Complex arrays stay complex (`save` splits them).
    """
    import jax

    ts = np.asarray(traj.ts)
    if ts.ndim < 1:
        raise ValueError(f"`traj.ts` must have shape batch + (time,); got {ts.shape}")
    n_batch = ts.ndim - 1
    bdims = _batch_dim_names(batch_dims, n_batch)
    batch_shape = ts.shape[:-1]
    time = _collapse_identical(ts, n_batch)
    if time is None:
        raise ValueError(
            "the batched trajectories were saved at different times (ts differs across "
            f"the batch axes {bdims}); a Dataset needs one `time` coordinate: save at "
            "common times with kl.SaveAt(ts=...) or convert each trajectory separately"
        )
    n_time = time.shape[0]
    lead = bdims + (names.TIME,)

    model = getattr(traj, "model", None)
    manifold = getattr(model, "manifold", None)
    final = getattr(traj, "final", None)
    state_shape = (
        tuple(np.shape(final)[n_batch:])
        if final is not None and not callable(final)
        else None
    )

    def check_lead(name, arr):
        if arr.shape[: n_batch + 1] != batch_shape + (n_time,):
            raise ValueError(
                f"`{name}` has shape {arr.shape}, which does not start with the "
                f"batch + time shape {batch_shape + (n_time,)} of `ts`"
            )

    data_vars: dict[str, xr.Variable] = {}
    coords: dict[str, Any] = {
        names.TIME: xr.Variable(names.TIME, time, _attrs_for(names.TIME))
    }
    n_osc = None
    ys = traj.ys
    turns = getattr(traj, "turns", None)
    is_array = ys is not None and not isinstance(ys, dict | list | tuple)
    if is_array:
        ys_arr = np.asarray(ys)
    if manifold == "torus" and turns is not None and is_array:
        check_lead("traj.ys", ys_arr)
        if ys_arr.ndim != n_batch + 2:
            raise ValueError(
                "phase trajectories need ys of shape batch + (time, osc); got "
                f"{ys_arr.shape}"
            )
        n_osc = ys_arr.shape[-1]
        dims = lead + (names.OSC,)
        data_vars[names.THETA] = xr.Variable(dims, ys_arr, _attrs_for(names.THETA))
        data_vars[names.TURNS] = xr.Variable(
            dims, np.asarray(turns), _attrs_for(names.TURNS)
        )
    elif (
        manifold == "sphere"
        and is_array
        and state_shape is not None
        and len(state_shape) == 2
        and ys_arr.shape[n_batch + 1 :] == state_shape
    ):
        check_lead("traj.ys", ys_arr)
        n_osc, n_dim = state_shape
        dims = lead + (names.OSC, names.DIM)
        data_vars[names.STATE] = xr.Variable(dims, ys_arr, _attrs_for(names.STATE))
        coords[names.DIM] = xr.Variable(names.DIM, np.arange(n_dim))
    elif ys is not None:
        # SaveAt(fn=...) outputs.
        if is_array:
            leaves = [("observable", ys_arr)]
        elif isinstance(ys, dict):
            leaves = []
            for key, value in ys.items():
                if not isinstance(key, str):
                    raise TypeError(
                        f"SaveAt.fn returned a dict with a non-string key {key!r}; use "
                        "string keys (they become variable names)"
                    )
                if value is None:
                    continue
                if isinstance(value, dict | list | tuple):
                    sub = jax.tree_util.tree_flatten_with_path(value)[0]
                    leaves += [
                        (f"{key}_{_leaf_name(p)}", np.asarray(v)) for p, v in sub
                    ]
                else:
                    leaves.append((key, np.asarray(value)))
        else:
            flat = jax.tree_util.tree_flatten_with_path(ys)[0]
            leaves = [(f"observable_{_leaf_name(p)}", np.asarray(v)) for p, v in flat]
        reserved = {names.TIME, names.OSC, names.DIM, names.OMEGA, *bdims}
        for name, arr in leaves:
            if name in reserved or "/" in name:
                raise ValueError(
                    f"SaveAt.fn output key {name!r} cannot be a variable name "
                    f"(reserved names: {sorted(reserved)}; no '/'); rename it"
                )
            check_lead(f"SaveAt.fn output {name!r}", arr)
            extra = tuple(f"{name}_dim{i}" for i in range(arr.ndim - n_batch - 1))
            attrs = _attrs_for(name, f"saved observable {name!r} (SaveAt.fn output)")
            data_vars[name] = xr.Variable(lead + extra, arr, attrs)

    omega = getattr(model, "omega", None)
    if omega is not None and not callable(omega):
        om = np.asarray(omega)
        if om.ndim > n_batch and (n_osc is None or om.shape[n_batch] == n_osc):
            single = _collapse_identical(om, n_batch)
            om, odims = (single, ()) if single is not None else (om, bdims)
            n_osc = om.shape[len(odims)] if n_osc is None else n_osc
            extra = tuple(
                f"{names.OMEGA}_dim{i}" for i in range(om.ndim - len(odims) - 1)
            )
            data_vars[names.OMEGA] = xr.Variable(
                odims + (names.OSC,) + extra, om, _attrs_for(names.OMEGA)
            )
    if n_osc is not None:
        coords[names.OSC] = xr.Variable(names.OSC, np.arange(n_osc))

    attrs: dict[str, Any] = {}
    if model is not None:
        attrs["model"] = type(model).__name__
        coupling = getattr(model, "coupling", None)
        if coupling is not None:
            attrs["coupling"] = type(coupling).__name__
    for key in ("solver", "dt", "t0", "t1"):
        value = getattr(traj, key, None)
        if isinstance(value, str):
            attrs[key] = value
        elif value is not None and not isinstance(value, bool):
            # A number, or an array (batched by vmap): stored if it is constant.
            arr = np.asarray(value)
            if arr.dtype.kind in "fiu" and arr.size:
                single = arr.ravel()[0]
                if np.all(arr == single):
                    attrs[key] = single.item()
    if getattr(traj, "result", None) is not None:
        attrs["result"] = _result_summary(traj.result)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# ---------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(args: list[str], cwd: pathlib.Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _git_revision() -> str | None:
    """HEAD of the git checkout kuralab runs from (with `-dirty`), or None."""
    here = pathlib.Path(__file__).resolve().parent
    # Only if kuralab itself is tracked there (not an install inside someone's repo).
    if _git(["ls-files", "--error-unmatch", "__init__.py"], here) is None:
        return None
    head = _git(["rev-parse", "HEAD"], here)
    if not head or not head.strip():
        return None
    status = _git(["status", "--porcelain"], here)
    dirty = status is None or bool(status.strip())
    return head.strip() + ("-dirty" if dirty else "")


def _device() -> str | None:
    try:
        import jax

        device = jax.devices()[0]
        return f"{jax.default_backend()}: {device.device_kind}"
    except Exception:  # no backend at all: provenance must never fail a save
        return None


def _created() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip():
        try:
            seconds = int(epoch.strip())
        except ValueError:
            raise ValueError(
                f"environment variable SOURCE_DATE_EPOCH must be an integer number of "
                f"seconds since 1970-01-01 UTC; got {epoch!r}"
            ) from None
        when = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    else:
        when = datetime.datetime.now(tz=datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seeds_attr(seeds):
    if isinstance(seeds, str):
        return seeds
    if isinstance(seeds, range):
        seeds = list(seeds)
    arr = np.asarray(seeds)
    if arr.dtype.kind not in "iu" or arr.ndim > 1 or arr.size == 0:
        raise TypeError(
            "`seeds` must be an int, a non-empty 1-D sequence of ints, or a string; "
            f"got {seeds!r} (for JAX keys pass jax.random.key_data(key).ravel())"
        )
    return arr.astype(np.uint64 if arr.dtype.kind == "u" else np.int64).reshape(-1)


def provenance(*, spec: str | None = None, seeds=None) -> dict[str, Any]:
    """The provenance attributes `save` adds (DESIGN.md §4), as a dict.

    **Arguments:**

    - `spec`: the study spec as TOML text (stored as the `spec` attribute).
    - `seeds`: an int, a 1-D sequence of ints, or a string (the `seeds` attribute).

    **Returns:** `Conventions`, `kuralab_version`, `jax_version`, `diffrax_version`,
    `equinox_version`, `git_revision` (only from a git checkout), `device`, `created`
    (UTC, `YYYY-MM-DDTHH:MM:SSZ`; from `SOURCE_DATE_EPOCH` when set), plus `spec` and
    `seeds` when given. Never fails for lack of git or devices (those keys are omitted).
    """
    out: dict[str, Any] = {"Conventions": CONVENTIONS}
    for dist in ("kuralab", "jax", "diffrax", "equinox"):
        version = _version(dist)
        if version is not None:
            out[f"{dist}_version"] = version
    revision = _git_revision()
    if revision is not None:
        out["git_revision"] = revision
    device = _device()
    if device is not None:
        out["device"] = device
    out["created"] = _created()
    if spec is not None:
        if not isinstance(spec, str):
            raise TypeError(
                "`spec` must be the study spec as TOML text (str); got "
                f"{type(spec).__name__}"
            )
        out["spec"] = spec
    if seeds is not None:
        out["seeds"] = _seeds_attr(seeds)
    return out


def provenance_of(ds: xr.Dataset) -> dict[str, Any]:
    """The provenance attributes present in `ds.attrs` (keys in `PROVENANCE_KEYS`)."""
    return {k: ds.attrs[k] for k in PROVENANCE_KEYS if k in ds.attrs}


# ---------------------------------------------------------------------------------
# Attribute validation and complex splitting
# ---------------------------------------------------------------------------------


def _check_attr(where: str, key, value) -> None:
    if not isinstance(key, str) or not key:
        raise TypeError(
            f"attribute names must be non-empty strings; {where} has {key!r}"
        )
    bad = None
    if isinstance(value, bool | np.bool_):
        bad = "a bool; netCDF has no boolean attributes: store int(value) or str(value)"
    elif value is None:
        bad = "None; netCDF cannot store it: drop the attribute or store a string"
    elif isinstance(value, Mapping):
        bad = "a dict; netCDF attributes are flat: store json.dumps(value)"
    elif isinstance(value, str):
        if "\x00" in value:
            bad = "a string containing a NUL character, which netCDF cannot store"
    elif isinstance(value, bytes):
        bad = "bytes; store a str (value.decode())"
    elif isinstance(value, complex | np.complexfloating):
        bad = "complex; store the real and imaginary parts as two attributes"
    elif isinstance(value, numbers.Integral):
        if not -(2**63) <= int(value) < 2**64:
            bad = "an integer outside the 64-bit range"
    elif isinstance(value, numbers.Real):
        pass
    elif isinstance(value, np.ndarray | list | tuple):
        items = (
            list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else value
        )
        ndim = np.ndim(value) if isinstance(value, np.ndarray) else 1
        if ndim != 1 or len(items) == 0:
            bad = "an array that is not 1-D and non-empty"
        elif all(isinstance(v, str) for v in items):
            pass
        elif not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
            for v in items
        ):
            bad = "a sequence that is not all numbers (no bools) or all strings"
    else:
        bad = f"of type {type(value).__name__}"
    if bad is not None:
        raise ValueError(
            f"cannot store attribute {key!r} of {where} in netCDF: its value "
            f"{value!r} is {bad}"
        )


def _validate_attrs(ds: xr.Dataset) -> None:
    for key, value in ds.attrs.items():
        _check_attr("the Dataset", key, value)
    for name, var in ds.variables.items():
        for key, value in var.attrs.items():
            _check_attr(f"variable {name!r}", key, value)


def _split_complex(ds: xr.Dataset) -> xr.Dataset:
    complex_names = [n for n, v in ds.variables.items() if v.dtype.kind == "c"]
    if not complex_names:
        return ds
    out_vars: dict[Any, xr.Variable] = {}
    coord_names = set()
    for name, var in ds.variables.items():
        is_coord = name in ds.coords
        if var.dtype.kind != "c":
            out_vars[name] = var
            if is_coord:
                coord_names.add(name)
            continue
        if not isinstance(name, str):
            raise TypeError(f"complex variable names must be strings; got {name!r}")
        if name in ds.dims:
            raise ValueError(
                f"the dimension coordinate {name!r} is complex; netCDF cannot store a "
                "complex index: use a real coordinate (e.g. an integer index)"
            )
        if names.COMPLEX_ATTR in var.attrs:
            raise ValueError(
                f"variable {name!r} already has the reserved attribute "
                f"{names.COMPLEX_ATTR!r}; remove it before saving"
            )
        for suffix, part, values in (
            (_REAL, "real", var.real),
            (_IMAG, "imag", var.imag),
        ):
            new = name + suffix
            if new in ds.variables:
                raise ValueError(
                    f"cannot split complex variable {name!r} into {new!r}: a variable "
                    "of that name already exists; rename one of them"
                )
            attrs = {**var.attrs, names.COMPLEX_ATTR: part}
            out_vars[new] = xr.Variable(var.dims, np.asarray(values.values), attrs)
            if is_coord:
                coord_names.add(new)
    data = {n: v for n, v in out_vars.items() if n not in coord_names}
    coords = {n: v for n, v in out_vars.items() if n in coord_names}
    return xr.Dataset(data, coords=coords, attrs=ds.attrs)


def _merge_complex(ds: xr.Dataset) -> xr.Dataset:
    marked = {
        n: v.attrs.get(names.COMPLEX_ATTR)
        for n, v in ds.variables.items()
        if names.COMPLEX_ATTR in v.attrs
    }
    if not marked:
        return ds
    out_vars: dict[Any, xr.Variable] = {}
    coord_names = set()
    for name, var in ds.variables.items():
        is_coord = name in ds.coords
        part = marked.get(name)
        if part is None:
            out_vars[name] = var
        elif part == "real" and str(name).endswith(_REAL):
            base = str(name)[: -len(_REAL)]
            imag_name = base + _IMAG
            imag = ds.variables.get(imag_name)
            if (
                imag is None
                or marked.get(imag_name) != "imag"
                or imag.dims != var.dims
                or base in ds.variables
            ):
                raise ValueError(
                    f"malformed complex pair in file: {name!r} is marked "
                    f"{names.COMPLEX_ATTR}='real' but no matching {imag_name!r} (same "
                    f"dims, marked 'imag') exists, or {base!r} already exists"
                )
            dtype = np.result_type(var.dtype, imag.dtype, np.complex64)
            values = np.asarray(var.values).astype(dtype)
            values.imag = np.asarray(imag.values)
            attrs = {k: v for k, v in var.attrs.items() if k != names.COMPLEX_ATTR}
            out_vars[base] = xr.Variable(var.dims, values, attrs)
            name = base
        elif part == "imag" and str(name).endswith(_IMAG):
            real_name = str(name)[: -len(_IMAG)] + _REAL
            if marked.get(real_name) != "real":
                raise ValueError(
                    f"malformed complex pair in file: {name!r} is marked "
                    f"{names.COMPLEX_ATTR}='imag' but {real_name!r} is not marked "
                    "'real'"
                )
            continue
        else:
            raise ValueError(
                f"malformed file: variable {name!r} has {names.COMPLEX_ATTR}={part!r}; "
                "expected 'real' on '<name>_real' or 'imag' on '<name>_imag'"
            )
        if is_coord:
            coord_names.add(name)
    data = {n: v for n, v in out_vars.items() if n not in coord_names}
    coords = {n: v for n, v in out_vars.items() if n in coord_names}
    return xr.Dataset(data, coords=coords, attrs=ds.attrs)


# ---------------------------------------------------------------------------------
# Atomic files, save, load
# ---------------------------------------------------------------------------------


def _as_path(path, argname: str = "path") -> pathlib.Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"`{argname}` must be a str or os.PathLike; got {type(path).__name__}"
        )
    return pathlib.Path(path)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Context manager for writing a file atomically.

    Yields a temporary path `.<name>.tmp-<pid>-<random>` in the target's directory
    (creating parent directories). Write the file there; on normal exit it is flushed
    to disk and renamed onto `path` with `os.replace`. On any exception the temporary
    file is removed, the target is left untouched, and the exception propagates.

    !!! Example

        ```python
        with kl.io.atomic_output("out/table.csv") as tmp:
            tmp.write_text(text)
        ```
    """
    target = _as_path(path)
    if target.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, "the output path is a directory", str(target)
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(
                errno.ENOENT, "nothing was written to the temporary file", str(tmp)
            )
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # Persist the rename itself (best effort: not every platform can open a directory).
    with contextlib.suppress(OSError):
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _encoding(ds: xr.Dataset) -> dict[Any, dict[str, Any]]:
    enc = {}
    for name, var in ds.variables.items():
        if var.ndim >= 1 and var.size > 0 and var.dtype.kind in "fiu":
            enc[name] = {"zlib": True, "complevel": 4}
    return enc


def save(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    spec: str | None = None,
    seeds=None,
    extra_attrs: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Write `ds` to a netCDF4 file atomically, with provenance attributes.

    **Arguments:**

    - `ds`: the Dataset. It is not modified.
    - `path`: the target file; parent directories are created.
    - `spec`: the study spec as TOML text (keyword only).
    - `seeds`: an int, a 1-D sequence of ints, or a string (keyword only).
    - `extra_attrs`: further global attributes (keyword only); they override `ds.attrs`
      but may not use a name in `PROVENANCE_KEYS`.

    **Returns:** the path written, as a `pathlib.Path`.

    Complex variables are stored as `<name>_real` / `<name>_imag` pairs and numeric
    variables are zlib-compressed (level 4). Attributes netCDF cannot store (bool, None,
    dict, ...) raise a `ValueError` naming the attribute. See the module docstring for
    the provenance keys and the atomic-write guarantee.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(
            f"`ds` must be an xarray.Dataset; got {type(ds).__name__} (for a DataArray "
            "use da.to_dataset())"
        )
    target = _as_path(path)
    if extra_attrs is not None:
        if not isinstance(extra_attrs, Mapping):
            raise TypeError(
                f"`extra_attrs` must be a mapping of attribute names to values; got "
                f"{type(extra_attrs).__name__}"
            )
        reserved = set(PROVENANCE_KEYS).intersection(extra_attrs)
        if reserved:
            raise ValueError(
                "`extra_attrs` may not set provenance attribute(s) "
                f"{sorted(reserved)}; "
                "pass spec=/seeds= to save, the others are set automatically"
            )
    attrs = {k: v for k, v in ds.attrs.items() if k not in _WRITE_KEYS}
    attrs.update(extra_attrs or {})
    attrs.update(provenance(spec=spec, seeds=seeds))
    out = ds.drop_encoding().copy(deep=False)
    out.attrs = attrs
    _validate_attrs(out)
    out = _split_complex(out)
    encoding = _encoding(out)
    with atomic_output(target) as tmp:
        out.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return target


def load(path: str | os.PathLike) -> xr.Dataset:
    """Read a netCDF file written by `save` (or any netCDF file) fully into memory.

    `<name>_real` / `<name>_imag` pairs marked by `save` are recombined into the complex
    variable `<name>` with its original attributes. The file is closed before returning,
    so it can be replaced or deleted afterwards.

    **Raises:** `FileNotFoundError` naming the path if it does not exist.
    """
    p = _as_path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "no such netCDF file", str(p))
    if p.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, "expected a netCDF file, got a directory", str(p)
        )
    with xr.open_dataset(p, engine="netcdf4") as opened:
        ds = opened.load()
    return _merge_complex(ds)


# ---------------------------------------------------------------------------------
# The `ds.kura` accessor
# ---------------------------------------------------------------------------------


@xr.register_dataset_accessor("kura")
class KuraAccessor:
    """kuralab methods on any Dataset: `ds.kura.R()`, `ds.kura.plot()`, ...

    Registered when `kuralab` is imported.
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def _theta(self) -> xr.DataArray | None:
        ds = self._ds
        if names.THETA in ds.variables:
            theta = ds[names.THETA]
            if names.OSC not in theta.dims:
                raise ValueError(
                    f"`{names.THETA}` must have an {names.OSC!r} dimension; got dims "
                    f"{theta.dims}"
                )
            return theta
        return None

    def order_parameter(self, moment: int = 1) -> xr.DataArray:
        """The complex order parameter `Z = mean_osc exp(i moment theta)`.

        **Arguments:**

        - `moment`: the (Daido) moment, a nonzero integer (default 1).

        **Returns:** a complex DataArray with the dims of `theta` without `osc`, named
        `Z` (`Z<moment>` for moment != 1). Without `theta`, a stored `Z` is returned for
        moment 1.
        """
        if (
            isinstance(moment, bool)
            or not isinstance(moment, numbers.Integral)
            or moment == 0
        ):
            raise TypeError(f"`moment` must be a nonzero integer; got {moment!r}")
        theta = self._theta()
        if theta is None:
            if moment == 1 and names.Z in self._ds.variables:
                return self._ds[names.Z]
            raise ValueError(
                f"order_parameter needs a {names.THETA!r} variable (or a stored "
                f"{names.Z!r} for moment 1); the Dataset has {list(self._ds.data_vars)}"
            )
        values = np.asarray(theta.values)
        ctype = np.complex64 if values.dtype == np.float32 else np.complex128
        axis = theta.dims.index(names.OSC)
        z = np.exp(1j * int(moment) * values.astype(np.float64)).mean(axis=axis)
        dims = tuple(d for d in theta.dims if d != names.OSC)
        coords = {k: v for k, v in theta.coords.items() if names.OSC not in v.dims}
        name = names.Z if moment == 1 else f"{names.Z}{int(moment)}"
        long_name = (
            "complex order parameter mean(exp(i theta))"
            if moment == 1
            else (f"complex order parameter mean(exp({int(moment)} i theta))")
        )
        return xr.DataArray(
            z.astype(ctype),
            dims=dims,
            coords=coords,
            name=name,
            attrs={"units": "1", "long_name": long_name},
        )

    def R(self) -> xr.DataArray:
        """The order parameter magnitude `R = |Z|`.

        Computed from `theta`; without it, a stored `R` (or `|Z|` of a stored `Z`).
        """
        theta = self._theta()
        if theta is None:
            if names.R in self._ds.variables:
                return self._ds[names.R]
            if names.Z in self._ds.variables:
                r = np.abs(self._ds[names.Z])
            else:
                raise ValueError(
                    f"R needs a {names.THETA!r}, {names.R!r} or {names.Z!r} variable; "
                    f"the Dataset has {list(self._ds.data_vars)}"
                )
        else:
            r = np.abs(self.order_parameter(1))
        units, long_name = names.UNITS[names.R]
        return r.rename(names.R).assign_attrs(units=units, long_name=long_name)

    def unwrapped(self) -> xr.DataArray:
        """Unwrapped phases `theta + 2 pi turns`, computed in float64."""
        ds = self._ds
        if names.THETA not in ds.variables or names.TURNS not in ds.variables:
            raise ValueError(
                f"unwrapped() needs {names.THETA!r} and {names.TURNS!r} variables; the "
                f"Dataset has {list(ds.data_vars)}"
            )
        out = ds[names.THETA].astype(np.float64) + 2 * math.pi * ds[names.TURNS].astype(
            np.float64
        )
        return out.rename("theta_unwrapped").assign_attrs(
            units="rad", long_name="unwrapped oscillator phase theta + 2 pi turns"
        )

    def plot(self, ax=None, **kwargs):
        """Plot the Dataset and return the matplotlib Axes.

        Trajectories (a `time` dimension): R(t), one line per batch element
        (`kuralab.plot.plot_order_parameter`). Sweep results (an `R` variable, no
        `time`): R against the swept coordinate, mean ± std over `seed`
        (`kuralab.plot.plot_sweep`). `kwargs` go to that function.
        """
        from . import plot as _plot

        ds = self._ds
        # A sweep result (R without time, possibly beside an R(t) series) first.
        if names.R in ds.variables and names.TIME not in ds[names.R].dims:
            return _plot.plot_sweep(ds, ax=ax, **kwargs)
        if names.TIME in ds.dims and (
            names.THETA in ds.variables
            or names.R in ds.variables
            or names.Z in ds.variables
        ):
            return _plot.plot_order_parameter(ds, ax=ax, **kwargs)
        raise ValueError(
            "ds.kura.plot() needs a trajectory (a `time` dimension with `theta`, `R` "
            "or `Z`) or a sweep result (an `R` variable without `time`); the Dataset "
            f"has dims {dict(ds.sizes)} and variables {list(ds.data_vars)}"
        )
