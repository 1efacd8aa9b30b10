"""Trajectory -> xarray.Dataset (the layout is documented in `kuralab.io`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from . import _names as names


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
    state_dims = tuple(getattr(model, "state_dims", ()))
    saved_states = (
        is_array
        and state_shape is not None
        and len(state_dims) == len(state_shape)
        and ys_arr.shape[n_batch + 1 :] == state_shape
        and (turns is not None or getattr(model, "state_name", None) is not None)
    )
    if saved_states:
        # The model's states (no SaveAt.fn): named and dimensioned by the model
        # (`AbstractModel.state_name` / `state_dims`), with the retraction's
        # bookkeeping (winding numbers of phases) beside them when it keeps any.
        check_lead("traj.ys", ys_arr)
        dims = lead + state_dims
        name = model.state_name
        var_attrs = _attrs_for(name, f"state of {type(model).__name__}")
        if name not in names.UNITS:
            var_attrs["units"] = getattr(model, "state_units", "1")
        data_vars[name] = xr.Variable(dims, ys_arr, var_attrs)
        if turns is not None and np.shape(turns) == ys_arr.shape:
            data_vars[names.TURNS] = xr.Variable(
                dims, np.asarray(turns), _attrs_for(names.TURNS)
            )
        for dim, size in zip(state_dims, state_shape, strict=True):
            if dim == names.OSC:
                n_osc = size
            elif dim not in coords:
                coords[dim] = xr.Variable(dim, np.arange(size))
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
    log = getattr(traj, "events", None)
    if log is not None:
        _add_events(log, bdims, data_vars, coords)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _add_events(log, bdims, data_vars, coords) -> None:
    """The record of `kl.simulate_events`: `event_time`, `event_fired` on an `event`
    coordinate of labels (with `event_kind` beside it) and `t_end`."""
    coords["event"] = xr.Variable("event", np.asarray(log.names, dtype=str))
    coords["event_kind"] = xr.Variable("event", np.asarray(log.kinds, dtype=str))
    dims = tuple(bdims) + ("event",)
    data_vars["event_time"] = xr.Variable(
        dims, np.asarray(log.times),
        {"units": names.UNITS[names.TIME][0],
         "long_name": "time the event fired (NaN: it never did)"},
    )
    data_vars["event_fired"] = xr.Variable(
        dims, np.asarray(log.fired).astype(np.int8),
        {"units": "1", "long_name": "1 if the event fired, else 0"},
    )
    data_vars["t_end"] = xr.Variable(
        tuple(bdims), np.asarray(log.t_end),
        {"units": names.UNITS[names.TIME][0],
         "long_name": "time the run ended (t1, or the time of a Stop event)"},
    )


