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

import datetime
import errno
import importlib.metadata
import numbers
import os
import pathlib
import subprocess
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from . import _names as names
from ._dataset import trajectory_to_dataset as trajectory_to_dataset
from ._files import as_path as _as_path, atomic_output as atomic_output

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
# save, load (atomic writes: kuralab/_files.py)
# ---------------------------------------------------------------------------------


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

    The `seeds` attribute is always a 1-D array (or the string it was saved as).

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
    seeds = ds.attrs.get("seeds")
    if seeds is not None and not isinstance(seeds, str):
        # netCDF returns a one-element attribute as a scalar: one form, a 1-D array.
        ds.attrs["seeds"] = np.atleast_1d(np.asarray(seeds))
    return _merge_complex(ds)
