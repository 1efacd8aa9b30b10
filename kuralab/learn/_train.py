"""`fit`: the training loop shared by every learning line, with resumable checkpoints.

One jitted step (`eqx.filter_value_and_grad` of the loss, optional global-norm clipping,
the optax update) per iteration; the key of step `s` is `jax.random.fold_in(key, s)`, so
a run resumed at step `s` draws exactly the keys an uninterrupted run would. A
checkpoint is ONE file written atomically (a temporary file in the same directory, then
`os.replace`, via `kuralab.io.atomic_output`):

    b"KURALAB-CKPT1\\n" | header length (8 bytes, little endian) | JSON header | leaves

The JSON header holds the step, the key's data and implementation, the history so far
and a fingerprint of the parameter/optimiser structure; the leaves are
`eqx.tree_serialise_leaves((params, opt_state))`. A process killed at any moment leaves
either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import functools
import hashlib
import io as _io
import json
import math
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

_MAGIC = b"KURALAB-CKPT1\n"


class NonFiniteLossError(FloatingPointError):
    """`fit` met a non-finite loss or gradient. Attributes: `step` (0-based index of the
    failing step), `params` (the last good parameters), `history` (the steps done)."""

    def __init__(self, message: str, *, step: int, params, history: xr.Dataset):
        super().__init__(message)
        self.step = step
        self.params = params
        self.history = history


def _split_loss(out):
    """`loss_fn` may return a scalar or `(scalar, aux dict)`."""
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], dict):
            raise TypeError(
                "`loss_fn` must return a scalar or (scalar, dict of scalars); got a "
                f"tuple of {len(out)}"
            )
        return out
    return out, {}


def _check_scalar(loss):
    if jnp.ndim(loss) != 0:
        raise ValueError(f"`loss_fn` must return a scalar loss; got shape {jnp.shape(loss)}")


@functools.lru_cache(maxsize=64)
def _with_clipping(optimizer: optax.GradientTransformation, max_grad_norm: float):
    """`optimizer` after global-norm clipping. Cached: `_step` takes the optimiser as a
    static argument, so a new chain per `fit` call would compile the step again for
    every call (every seed of a seed search); the same pair gives the same object."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optimizer)


@eqx.filter_jit
def _step(loss_fn, optimizer, params, opt_state, batch, key):
    def wrapped(p):
        loss, aux = _split_loss(loss_fn(p, batch, key))
        _check_scalar(loss)
        return loss, aux

    (loss, aux), grads = eqx.filter_value_and_grad(wrapped, has_aux=True)(params)
    grad_norm = optax.tree.norm(grads)
    updates, new_state = optimizer.update(
        grads, opt_state, eqx.filter(params, eqx.is_inexact_array)
    )
    new_params = eqx.apply_updates(params, updates)
    return new_params, new_state, loss, aux, grad_norm


def _structure_fingerprint(tree) -> str:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    desc = str(treedef) + "|" + ";".join(
        f"{np.shape(x)}:{getattr(x, 'dtype', type(x).__name__)}" for x in leaves
    )
    return hashlib.sha256(desc.encode()).hexdigest()[:16]


def _key_record(key) -> dict:
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(key))
        data = np.asarray(jax.random.key_data(key))
        return {"typed": True, "impl": impl, "data": data.tolist(), "shape": list(data.shape)}
    data = np.asarray(key)
    return {"typed": False, "impl": None, "data": data.tolist(), "shape": list(data.shape)}


def _key_from_record(rec: dict):
    data = np.asarray(rec["data"], np.uint32).reshape(rec["shape"])
    if rec["typed"]:
        return jax.random.wrap_key_data(data, impl=rec["impl"])
    return jnp.asarray(data)


def _write_checkpoint(path: Path, header: dict, leaves) -> None:
    from kuralab.io import atomic_output

    buf = _io.BytesIO()
    eqx.tree_serialise_leaves(buf, leaves)
    head = json.dumps(header, allow_nan=True).encode()
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(_MAGIC)
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        f.write(buf.getvalue())


def read_checkpoint(path: str | os.PathLike, like) -> tuple[dict, Any]:
    """Read a `fit` checkpoint: `(header, (params, opt_state))`, with `like` a PyTree
    of the same structure (e.g. `(params, optimizer.init(...))`)."""
    p = Path(path)
    with open(p, "rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise ValueError(f"`checkpoint` {p} is not a kuralab.learn checkpoint")
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size).decode())
        if header["structure"] != _structure_fingerprint(like):
            raise ValueError(
                f"`checkpoint` {p} holds parameters/optimiser state of a different "
                "structure than this call's; use a new checkpoint path"
            )
        leaves = eqx.tree_deserialise_leaves(f, like)
    return header, leaves


def _history_dataset(rows: dict[str, list], steps_done: list[int]) -> xr.Dataset:
    attrs = {
        "loss": ("training loss", "1"),
        "grad_norm": ("global norm of the gradient before clipping", "1"),
        "time": ("wall-clock seconds since the start of this process's run", "s"),
    }
    data_vars = {}
    for name, values in rows.items():
        long_name, units = attrs.get(name, (name, "1"))
        if name.startswith("eval_"):
            long_name = f"evaluation metric {name[5:]} (NaN where not evaluated)"
        data_vars[name] = xr.DataArray(
            np.asarray(values, np.float64), dims=("step",),
            attrs={"long_name": long_name, "units": units},
        )
    ds = xr.Dataset(data_vars, coords={"step": ("step", np.asarray(steps_done, np.int64))})
    ds["step"].attrs.update(long_name="optimisation step (0-based)", units="1")
    return ds


def _as_metrics(out, where: str) -> dict[str, float]:
    if isinstance(out, dict):
        items = out.items()
    else:
        items = [("value", out)]
    metrics = {}
    for k, v in items:
        arr = np.asarray(v)
        if arr.size != 1:
            raise ValueError(f"`{where}` must give scalars; {k!r} has shape {arr.shape}")
        metrics[str(k)] = float(arr.reshape(()))
    return metrics


def fit(
    loss_fn: Callable,
    params,
    batches: Iterator | Callable,
    optimizer: optax.GradientTransformation,
    *,
    steps: int,
    key,
    eval_fn: Callable | None = None,
    eval_every: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    max_grad_norm: float | None = None,
    history_path: str | os.PathLike | None = None,
    progress: bool = True,
):
    r"""Train `params` with `optimizer` for `steps` steps; resumable from `checkpoint`.

    Each step $s = 0, 1, \dots$ draws the key $k_s$ = `fold_in(key, s)`, splits it into a
    batch key and a loss key, takes the batch, evaluates `loss_fn(params, batch,
    loss_key)` and its gradient (`eqx.filter_value_and_grad`: every inexact array leaf
    of `params` is trained), clips the gradient's global norm to `max_grad_norm` (if
    given) and applies the optax update.

    **Arguments:**

    - `loss_fn`: `loss_fn(params, batch, key) -> scalar` or `(scalar, dict of
      scalars)`; the dict's entries are recorded in the history.
    - `params`: a PyTree (e.g. an Equinox module) of parameters.
    - `batches`: a function `batches(step, key) -> batch` (deterministic in its
      arguments: the resumable choice), or an iterator of batches (on resume, the
      first `step` batches are drawn and discarded so the sequence lines up).
    - `optimizer`: an `optax.GradientTransformation`.
    - `steps`: the total number of steps (a resumed run continues up to it).
    - `key`: PRNG key of the run. (Keyword only argument, as all below.)
    - `eval_fn`: `eval_fn(params, key) -> scalar or dict of scalars`, called after
      every `eval_every`-th step and after the last one; recorded as `eval_<name>`.
    - `checkpoint`: a file path. If the file exists, training resumes from it (its
      parameters, optimiser state, step, key and history); a checkpoint is written
      atomically every `checkpoint_every` steps and at the end.
    - `max_grad_norm`: clip the gradient's global norm to this (optax's
      `clip_by_global_norm`, chained before `optimizer`); None: no clipping.
    - `history_path`: also write the history to this netCDF file (`kl.io.save`).
    - `progress`: show a tqdm progress bar (default True).

    **Returns:** `(params, history)`: the trained parameters and an `xarray.Dataset`
    with dimension `step` and variables `loss`, `grad_norm`, `time`, each aux entry
    and each evaluation metric `eval_<name>` (NaN on steps without evaluation).

    **Raises:** `NonFiniteLossError` (a `FloatingPointError`) at the first step whose
    loss or gradient is not finite, naming the step; the update of that step is
    discarded, the last checkpoint written (a finite state) is kept, and the error
    carries the last good parameters and the history so far.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"`steps` must be an int >= 0; got {steps!r}")
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise ValueError(f"`eval_every` must be a positive int or None; got {eval_every!r}")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"`checkpoint_every` must be a positive int; got {checkpoint_every!r}")
    if max_grad_norm is not None and not (
        isinstance(max_grad_norm, int | float) and max_grad_norm > 0
    ):
        raise ValueError(f"`max_grad_norm` must be a number > 0 or None; got {max_grad_norm!r}")
    if not callable(loss_fn):
        raise TypeError("`loss_fn` must be callable as loss_fn(params, batch, key)")
    if not (callable(batches) or hasattr(batches, "__next__")):
        raise TypeError(
            "`batches` must be a function batches(step, key) -> batch or an iterator"
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"`optimizer` must be an optax.GradientTransformation; got {type(optimizer).__name__}"
        )
    if max_grad_norm is not None:
        optimizer = _with_clipping(optimizer, max_grad_norm)
    opt_state = optimizer.init(eqx.filter(params, eqx.is_inexact_array))
    start = 0
    rows: dict[str, list] = {"loss": [], "grad_norm": [], "time": []}
    steps_done: list[int] = []
    ckpt = None if checkpoint is None else Path(checkpoint)
    structure = _structure_fingerprint((params, opt_state))
    if ckpt is not None and ckpt.exists():
        header, (params, opt_state) = read_checkpoint(ckpt, (params, opt_state))
        start = int(header["step"])
        key = _key_from_record(header["key"])
        rows = {k: list(v) for k, v in header["history"].items()}
        steps_done = list(range(start))
    if eval_fn is not None and eval_every is None:
        eval_every = max(steps, 1)

    def save_checkpoint(step_next: int):
        if ckpt is None:
            return
        header = {
            "step": step_next,
            "key": _key_record(key),
            "history": rows,
            "structure": structure,
        }
        _write_checkpoint(ckpt, header, (params, opt_state))

    def history():
        return _history_dataset(rows, steps_done)

    iterator = None if callable(batches) else batches
    if iterator is not None:
        for _ in range(start):
            next(iterator)
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, initial=start, disable=not progress, desc="fit", leave=False)
    t_start = time.perf_counter()
    try:
        for s in range(start, steps):
            k_batch, k_loss, k_eval = jax.random.split(jax.random.fold_in(key, s), 3)
            batch = batches(s, k_batch) if iterator is None else next(iterator)
            new_params, new_state, loss, aux, gnorm = _step(
                loss_fn, optimizer, params, opt_state, batch, k_loss
            )
            loss_v, gnorm_v = float(loss), float(gnorm)
            if not (math.isfinite(loss_v) and math.isfinite(gnorm_v)):
                what = "loss" if not math.isfinite(loss_v) else "gradient norm"
                kept = f"; the last good checkpoint ({ckpt}) is kept" if ckpt else ""
                raise NonFiniteLossError(
                    f"non-finite {what} at step {s} (loss={loss_v}, grad_norm={gnorm_v}); "
                    f"training stopped before applying that update{kept}",
                    step=s, params=params, history=history(),
                )
            params, opt_state = new_params, new_state
            metrics = {"loss": loss_v, "grad_norm": gnorm_v,
                       "time": time.perf_counter() - t_start}
            metrics.update({k: float(v) for k, v in _as_metrics(aux, "loss_fn aux").items()})
            if eval_fn is not None and ((s + 1) % eval_every == 0 or s + 1 == steps):
                ev = _as_metrics(eval_fn(params, k_eval), "eval_fn")
                metrics.update({f"eval_{k}": v for k, v in ev.items()})
            for name in set(rows) | set(metrics):
                rows.setdefault(name, [math.nan] * len(steps_done))
                rows[name].append(metrics.get(name, math.nan))
            steps_done.append(s)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_v:.4g}", refresh=False)
            if (s + 1) % checkpoint_every == 0 or s + 1 == steps:
                save_checkpoint(s + 1)
    finally:
        bar.close()
    hist = history()
    if history_path is not None:
        from kuralab.io import save

        save(hist, history_path)
    return params, hist
