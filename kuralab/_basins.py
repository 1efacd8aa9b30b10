r"""Basins of attraction by sampling: `kl.basin_fractions` and phase-state classifiers.

`basin_fractions` draws `n` initial states from `sample_initial(key)`, integrates each
with `kl.simulate` to `t1` (final state only), labels each final state with
`classify(y) -> int`, and reports the fraction of initial states in each label with its
binomial standard error $\sqrt{f(1 - f)/n}$ (the samples are independent). The states are
integrated `batch` at a time in ONE compiled call (`jax.vmap` over keys); the last batch
is padded, so every batch reuses the same compilation.

Classifiers for phase models (all map phases `(osc,)` to an int32 scalar and can be
passed as `classify`):

- `classify_synchrony(theta, tol)`: `SYNCHRONISED` (1) when $R \ge 1 - $ `tol`, else
  `UNSETTLED` (the state is not (yet) in-phase).
- `classify_twisted(theta, tol)`: the twist number $q$ of a $q$-twisted state on a ring,
  $\theta_j = \theta_0 + 2\pi q j / N$ (modulo $2\pi$; $q = 0$ is the synchronised state),
  recognised when every neighbour difference $\mathrm{wrap}(\theta_{j+1} - \theta_j)$ is
  within `tol` rad of $2\pi q / N$; else `UNSETTLED` (incoherent, or not yet converged).
  $q$ is reported in $(-N/2, N/2]$.
- `classify_phase_state(theta, tol)`: the same labels as `classify_twisted` plus
  `INCOHERENT` for states with $R \le$ `tol` that are not twisted.

`UNSETTLED` and `INCOHERENT` are large negative sentinels, so they never collide with a
twist number; the Dataset names them in its `label_name` coordinate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ._custom_types import Key
from ._integrate import RESULTS, SaveAt, simulate
from ._integrate.options import check_state
from ._lyapunov import _check_int
from ._misc import TWO_PI, wrap_phase
from ._models.base import AbstractModel

__all__ = [
    "INCOHERENT",
    "SYNCHRONISED",
    "UNSETTLED",
    "basin_fractions",
    "classify_phase_state",
    "classify_synchrony",
    "classify_twisted",
]

#: Label of a state that no classifier rule recognised (not converged, or no attractor
#: the classifier knows).
UNSETTLED = -(2**30)
#: Label of an incoherent phase state (order parameter near 0, not twisted).
INCOHERENT = -(2**30) + 1
#: Label of the in-phase (synchronised) state in `classify_synchrony`.
SYNCHRONISED = 1

_NAMES = {UNSETTLED: "unsettled", INCOHERENT: "incoherent"}


@functools.partial(jax.jit, static_argnames="tol")
def classify_synchrony(theta, tol: float = 1e-3):
    """`SYNCHRONISED` if the order parameter $R \\ge 1 -$ `tol`, else `UNSETTLED`."""
    R = jnp.abs(jnp.mean(jnp.exp(1j * theta)))
    return jnp.where(R >= 1 - tol, SYNCHRONISED, UNSETTLED).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames="tol")
def classify_twisted(theta, tol: float = 0.05):
    """The twist number q of a q-twisted ring state (phases in ring order), or
    `UNSETTLED` (see the module docstring)."""
    n = theta.shape[-1]
    d = wrap_phase(jnp.roll(theta, -1) - theta)  # theta_{j+1} - theta_j, j cyclic
    # the twist from the circular mean of the differences (robust at q = N/2, where
    # the differences are +-pi)
    mean_d = jnp.angle(jnp.mean(jnp.exp(1j * d)))
    q = jnp.round(mean_d * n / TWO_PI).astype(jnp.int32)
    twisted = jnp.all(jnp.abs(wrap_phase(d - TWO_PI * q / n)) <= tol)
    q = jnp.mod(q, n)
    q = jnp.where(q > n // 2, q - n, q)
    return jnp.where(twisted, q, UNSETTLED).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames="tol")
def classify_phase_state(theta, tol: float = 0.05):
    """`classify_twisted`, with `INCOHERENT` for untwisted states of $R \\le$ `tol`."""
    label = classify_twisted(theta, tol)
    R = jnp.abs(jnp.mean(jnp.exp(1j * theta)))
    return jnp.where(
        (label == UNSETTLED) & (R <= tol), INCOHERENT, label
    ).astype(jnp.int32)


def _check_classify(classify, model, y0):
    if not callable(classify):
        raise TypeError(f"`classify` must be a function y -> int label; got {classify!r}")
    try:
        out = jax.eval_shape(classify, y0)
    except Exception as e:  # noqa: BLE001 (report what the classifier did)
        raise TypeError(f"`classify` failed on a state of shape {y0.shape}: {e}") from e
    if not (
        isinstance(out, jax.ShapeDtypeStruct)
        and out.shape == ()
        and jnp.issubdtype(out.dtype, jnp.integer)
    ):
        got = (f"shape {out.shape}, dtype {out.dtype}"
               if isinstance(out, jax.ShapeDtypeStruct) else type(out).__name__)
        raise TypeError(
            "`classify` must return an integer scalar label (e.g. jnp.int32); got "
            + got
        )


@eqx.filter_jit
def _run_batch(model, keys, sample_initial, classify, t1, dt, solver):
    def one(key):
        k_init, k_noise = jax.random.split(key)
        y0 = sample_initial(k_init)
        traj = simulate(model, y0, t1=t1, dt=dt, solver=solver, key=k_noise,
                        saveat=SaveAt(final=True), throw=False)
        return classify(traj.final), traj.result == RESULTS.successful

    return jax.vmap(one)(keys)


def basin_fractions(
    model: AbstractModel,
    sample_initial: Callable,
    *,
    n: int,
    t1: float,
    dt: float,
    classify: Callable,
    key: Key,
    batch: int = 1024,
    solver: str | None = None,
    keep_labels: bool = False,
) -> xr.Dataset:
    r"""Fractions of initial states that end in each attractor.

    **Arguments:**

    - `model`: any kuralab model (noisy models get an independent noise path per
      sample).
    - `sample_initial`: `sample_initial(key) -> y0`, one initial state of
      `model.state_shape` (e.g. `lambda k: kl.random_phases(k, n)`); pure JAX.
    - `n`: number of initial states (>= 1).
    - `t1`, `dt`, `solver`: the integration `[0, t1]`, as `kl.simulate`.
    - `classify`: `classify(y_final) -> int` label (an integer scalar, pure JAX), e.g.
      `kl.classify_twisted`, `kl.classify_synchrony` or `functools.partial` of them.
    - `key`: PRNG key; sample `i` uses `fold_in(key, i)` (split into its initial state
      and noise keys), so results do not depend on `batch`.
    - `batch`: initial states per compiled call (default 1024).
    - `keep_labels`: also return each sample's label (`labels`, dim `sample`).

    **Returns:** an `xarray.Dataset` on dim `label` (the labels found, ascending):
    `count`, `fraction`, `fraction_stderr` (binomial, $\sqrt{f(1-f)/n}$), a
    `label_name` coordinate (`"unsettled"`, `"incoherent"` or the label as text), and
    `n_failed` (integrations that failed, labelled from their last state).
    """
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"`model` must be a kuralab model (e.g. kl.Kuramoto); got {type(model).__name__}"
        )
    n = _check_int("n", n, 1)
    batch = _check_int("batch", batch, 1)
    if not callable(sample_initial):
        raise TypeError(
            f"`sample_initial` must be a function key -> y0; got {sample_initial!r}"
        )
    if key is None:
        raise ValueError("`key` is required (it draws the initial states)")
    y_probe = jax.eval_shape(sample_initial, jax.random.key(0))
    check_state(model, jnp.zeros(y_probe.shape, y_probe.dtype), "sample_initial(key)")
    _check_classify(classify, model, jnp.zeros(y_probe.shape, y_probe.dtype))
    batch = min(batch, n)
    n_batches = math.ceil(n / batch)
    labels, ok = [], []
    for b in range(n_batches):
        idx = jnp.arange(b * batch, (b + 1) * batch)
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)
        lab, good = _run_batch(model, keys, sample_initial, classify, float(t1),
                               float(dt), solver)
        labels.append(np.asarray(lab))
        ok.append(np.asarray(good))
    labels = np.concatenate(labels)[:n]
    ok = np.concatenate(ok)[:n]
    found, count = np.unique(labels, return_counts=True)
    frac = count / n
    ds = xr.Dataset(
        {
            "count": ("label", count, dict(units="1", long_name="initial states")),
            "fraction": ("label", frac,
                         dict(units="1", long_name="basin fraction")),
            "fraction_stderr": ("label", np.sqrt(frac * (1 - frac) / n),
                                dict(units="1", long_name="binomial standard error "
                                     "of the basin fraction")),
        },
        coords={
            "label": found,
            "label_name": ("label", [_NAMES.get(int(v), str(int(v))) for v in found]),
        },
        attrs=dict(n=n, t1=float(t1), dt=float(dt), solver=str(solver or "default"),
                   n_failed=int(np.sum(~ok)),
                   classify=getattr(classify, "__name__", type(classify).__name__)),
    )
    if keep_labels:
        ds["labels"] = ("sample", labels, dict(units="1", long_name="label per sample"))
    return ds
