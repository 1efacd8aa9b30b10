r"""Observables of phase states: order parameters, cluster/splay measures, local order,
effective frequencies.

All functions are pure functions of arrays: the oscillator axis is the LAST axis and any
leading axes are batch axes (time, seeds, parameters). They work under `jax.jit`,
`jax.vmap` and `jax.grad`, and keep the input's float precision (float32 by default).
Phases are in radians and may be wrapped or not: every observable here is a function of
$e^{i\theta}$ only, except `effective_frequencies`, which unwraps.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._coupling import AbstractCoupling
from ._custom_types import (
    BatchPhasesLike,
    ComplexArray,
    CouplingMatrix,
    Labels,
    PhaseSeriesLike,
    RealArray,
    TimesLike,
)
from ._fastmath import sincos
from ._misc import TWO_PI, is_concrete, wrap_phase

if TYPE_CHECKING:
    from ._integrate import Trajectory

# ---------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------


def _as_phases(name: str, theta, min_ndim: int = 1, what: str = "(..., osc)") -> Array:
    """`theta` as a float array with at least `min_ndim` axes (osc last)."""
    theta = jnp.asarray(theta)
    if jnp.issubdtype(theta.dtype, jnp.complexfloating):
        raise ValueError(
            f"`{name}` must hold real phases in radians, shape {what}; got a complex "
            "array (pass the phases, not the phasors)"
        )
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        theta = theta.astype(jnp.result_type(float))
    if theta.ndim < min_ndim:
        raise ValueError(
            f"`{name}` must have shape {what} (oscillators on the last axis); got "
            f"shape {theta.shape}"
        )
    if theta.shape[-1] < 1:
        raise ValueError(f"`{name}` has no oscillators (last axis of size 0)")
    return theta


def _phasor(theta: Array, moment=1) -> Array:
    """$e^{i m \\theta}$ in the complex dtype matching `theta`."""
    angle = theta if moment == 1 else moment * theta
    s, c = sincos(angle)
    return jax.lax.complex(c, s)


def _safe_abs(z: Array) -> Array:
    """$|z|$ with a finite (zero) gradient at $z = 0$."""
    sq = jnp.real(z) ** 2 + jnp.imag(z) ** 2
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def _unit(z: Array) -> Array:
    """$z / |z|$, and 1 where $z = 0$ (grad-safe)."""
    r = _safe_abs(z)
    pos = r > 0
    return jnp.where(pos, z / jnp.where(pos, r, 1.0).astype(z.dtype), 1.0 + 0.0j)


def _check_moment(moment) -> int:
    if isinstance(moment, bool) or not isinstance(moment, int | np.integer):
        if isinstance(moment, float) and moment.is_integer():
            return int(moment)
        raise ValueError(
            f"`moment` must be an integer (Daido moment g; non-integer moments are not "
            f"functions on the circle); got {moment!r}"
        )
    return int(moment)


# ---------------------------------------------------------------------------------
# Global order parameters
# ---------------------------------------------------------------------------------


def order_parameter(theta: BatchPhasesLike, moment: int = 1) -> ComplexArray:
    r"""The complex (Kuramoto--Daido) order parameter.

    $$Z_g = \frac{1}{N}\sum_{j=1}^{N} e^{i g \theta_j}, \qquad R = |Z_1|,\quad
      \psi = \arg Z_1 .$$

    $g = 1$ is the Kuramoto order parameter; $g > 1$ are Daido's moments ($|Z_g| = 1$
    for $g$-cluster states with clusters $2\pi/g$ apart, and $Z_g = 0$ for $N$ equally
    spaced phases unless $N$ divides $g$).

    **Arguments:**

    - `theta`: phases in radians, shape `(..., osc)` (leading axes are batch axes).
    - `moment`: the integer $g$ (default 1). Static (a Python int).

    **Returns:** complex array of shape `theta.shape[:-1]` (complex64 for float32
    phases).

    ??? cite "Reference"

        ```bibtex
        @article{daido1992,
          author={Daido, Hiroaki},
          title={Order function and macroscopic mutual entrainment in uniformly coupled
                 limit-cycle oscillators},
          journal={Prog. Theor. Phys.}, volume={88}, pages={1213--1218}, year={1992}}
        ```
    """
    moment = _check_moment(moment)
    theta = _as_phases("theta", theta)
    return _order_parameter(theta, moment)


@functools.partial(jax.jit, static_argnames="moment")
def _order_parameter(theta, moment):
    return jnp.mean(_phasor(theta, moment), axis=-1)


@jax.jit
def _circular_variance(theta):
    return 1.0 - _safe_abs(jnp.mean(_phasor(theta), axis=-1))


def circular_variance(theta: BatchPhasesLike) -> RealArray:
    r"""Circular variance $V = 1 - R = 1 - |Z_1|$ (KuraNet's convention, not $1 - R^2$).

    $V = 0$ for perfect synchrony and $V \approx 1$ for incoherence.

    **Arguments:**

    - `theta`: phases in radians, shape `(..., osc)`.

    **Returns:** real array of shape `theta.shape[:-1]`, values in $[0, 1]$.
    """
    theta = _as_phases("theta", theta)
    return _circular_variance(theta)


# ---------------------------------------------------------------------------------
# Cluster synchrony and splay (KuraNet eqs. 5-6)
# ---------------------------------------------------------------------------------


def _check_groups(theta, labels, num_clusters):
    """Validate the arguments of `cluster_order`/`splay`; resolve `num_clusters`."""
    theta = _as_phases("theta", theta)
    n = theta.shape[-1]
    labels = jnp.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(
            f"`labels` must have shape (osc,) = ({n},), one group label per oscillator "
            f"of `theta` (shape {theta.shape}); got shape {labels.shape}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"`labels` must be an integer array; got dtype {labels.dtype}")
    concrete = is_concrete(labels)
    if num_clusters is None:
        if not concrete:
            raise ValueError(
                "`num_clusters` is required when `labels` is traced (under jit/vmap); "
                "pass it as a static Python int"
            )
        num_clusters = int(np.max(np.asarray(labels))) + 1
    if isinstance(num_clusters, bool) or not isinstance(num_clusters, int | np.integer):
        raise ValueError(
            f"`num_clusters` must be a static Python int >= 1; got {num_clusters!r}"
        )
    num_clusters = int(num_clusters)
    if num_clusters < 1:
        raise ValueError(f"`num_clusters` must be >= 1; got {num_clusters}")
    if concrete:
        lab = np.asarray(labels)
        if lab.min() < 0 or lab.max() >= num_clusters:
            raise ValueError(
                f"`labels` must lie in [0, num_clusters) = [0, {num_clusters}); got "
                f"values in [{lab.min()}, {lab.max()}]"
            )
    else:
        labels = eqx.error_if(
            labels,
            (labels < 0) | (labels >= num_clusters),
            "`labels` must lie in [0, num_clusters)",
        )
    return theta, labels, num_clusters


def _group_sums(theta, labels, num_clusters):
    """Per-group phasor sums (..., C), sizes (C,) and the presence mask (C,)."""
    onehot = jax.nn.one_hot(labels, num_clusters, dtype=theta.dtype)  # (osc, C)
    size = jnp.sum(onehot, axis=0)  # (C,)
    hp = jax.lax.Precision.HIGHEST
    s, c = sincos(theta)
    sums = jax.lax.complex(
        jnp.matmul(c, onehot, precision=hp), jnp.matmul(s, onehot, precision=hp)
    )  # (..., C)
    present = size > 0
    return sums, size, present


def _splay_sum(sums, present, num_clusters):
    r"""The splay term $S$ (unnormalised) and its maximum over the k present groups.

    $S = \sum_{g=1}^{\lfloor k/2\rfloor} \frac{1}{2 g^2 k}
    |\sum_l e^{i g \psi_l}|^2$, $S_{\max} = \frac{k}{2}\sum_{g=1}^{\lfloor k/2\rfloor}
    g^{-2}$ (all group phases equal). `k` may be traced, so the sum over `g` runs to
    the static bound `num_clusters // 2` with weights masked by `g <= k // 2`.
    """
    dtype = jnp.real(sums).dtype
    k = jnp.sum(present).astype(dtype)
    k_half = jnp.floor(k / 2)
    unit = jnp.where(present, _unit(sums), 0.0)  # e^{i psi_l}, 0 for empty groups
    S = jnp.zeros(sums.shape[:-1], dtype)
    H = jnp.zeros((), dtype)  # sum_{g <= k/2} 1/g^2
    power = jnp.ones_like(unit)
    for g in range(1, num_clusters // 2 + 1):
        power = power * unit  # e^{i g psi_l}
        active = (g <= k_half).astype(dtype)
        total = jnp.sum(power, axis=-1)
        mod2 = jnp.real(total) ** 2 + jnp.imag(total) ** 2
        S = S + active * mod2 / (2.0 * g**2 * jnp.maximum(k, 1.0))
        H = H + active / g**2
    S_max = 0.5 * k * H
    return S, S_max, k


def cluster_order(
    theta: BatchPhasesLike, labels: Labels, num_clusters: int | None = None
) -> RealArray:
    r"""Cluster-synchrony loss of KuraNet (eqs. 5--6), normalised to $[0, 1]$.

    For the $k$ non-empty groups $l$ with order parameters
    $Z_l = \frac{1}{|l|}\sum_{j \in l} e^{i\theta_j} = R_l e^{i\psi_l}$:

    $$\ell = \frac{1}{B}\Big(\frac{1}{k}\sum_{l} (1 - R_l) + S\Big),\qquad
      S = \sum_{g=1}^{\lfloor k/2 \rfloor} \frac{1}{2 g^2 k}
      \Big|\sum_{l} e^{i g \psi_l}\Big|^2,\qquad
      B = 1 + \frac{k}{2}\sum_{g=1}^{\lfloor k/2 \rfloor}\frac{1}{g^2}.$$

    The first term (mean circular variance of the groups) is 0 when every group is
    synchronous; $S \ge 0$ vanishes exactly when the group mean phases form a splay
    state (equally spaced; their first $\lfloor k/2 \rfloor$ moments vanish). $B$ is
    the sum of the two terms' maxima (1, and $S_{\max} = \frac{k}{2}\sum g^{-2}$ when
    all $\psi_l$ are equal), so $\ell \in [0, 1]$: 0 for synchronous groups in a
    splay arrangement, and $S_{\max}/B$ (1/2 for $k = 2$) for everything in one phase.
    This equals $\frac{1}{2}(\frac{1}{k}\sum_l V_l + S)$ divided by its bound $B/2$,
    and is the quantity the KuraNet reference code (`circular_moments`) reports.

    Empty groups are masked: they contribute neither a circular variance nor a mean
    phase, and $k$ counts only non-empty groups (the reference code gives them
    $R = 0$ and $\psi = 0$). With $k = 1$ the splay term is an empty sum and
    $\ell = 1 - R_1$. A group whose phasor sum is exactly 0 has no mean phase; it
    enters $S$ with $\psi_l = 0$.

    **Arguments:**

    - `theta`: phases in radians, shape `(..., osc)`.
    - `labels`: integer group labels, shape `(osc,)`, values in `[0, num_clusters)`.
      May be traced (under `jit`, out-of-range labels raise through
      `equinox.error_if`). Use `jax.vmap` for per-batch labels.
    - `num_clusters`: the number of label values $C$, a static Python int. If `None`,
      `labels.max() + 1` (needs concrete labels).

    **Returns:** real array of shape `theta.shape[:-1]`, values in $[0, 1]$.

    ??? cite "Reference"

        ```bibtex
        @article{ricci2021kuranet,
          author={Ricci, Matthew and Jung, Minju and Zhang, Yuwei and Chalvidal, Mathieu
                  and Soni, Aneri and Serre, Thomas},
          title={KuraNet: Systems of coupled oscillators that learn to synchronize},
          journal={arXiv:2105.02838}, year={2021}}
        @article{sepulchre2007,
          author={Sepulchre, Rodolphe and Paley, Derek A. and Leonard, Naomi Ehrich},
          title={Stabilization of planar collective motion: all-to-all communication},
          journal={IEEE Trans. Automat. Control}, volume={52}, pages={811--824},
          year={2007}}
        ```
    """
    return _cluster_order(*_check_groups(theta, labels, num_clusters))


@functools.partial(jax.jit, static_argnames="num_clusters")
def _cluster_order(theta, labels, num_clusters):
    sums, size, present = _group_sums(theta, labels, num_clusters)
    dtype = jnp.real(sums).dtype
    R = _safe_abs(sums) / jnp.maximum(size, 1.0).astype(dtype)
    S, S_max, k = _splay_sum(sums, present, num_clusters)
    synch = jnp.sum(jnp.where(present, 1.0 - R, 0.0), axis=-1) / jnp.maximum(k, 1.0)
    return (synch + S) / (1.0 + S_max)


def splay(
    theta: BatchPhasesLike, labels: Labels, num_clusters: int | None = None
) -> RealArray:
    r"""How far the group mean phases are from a splay state, normalised to $[0, 1]$.

    $$\frac{S}{S_{\max}},\qquad S = \sum_{g=1}^{\lfloor k/2 \rfloor}
      \frac{1}{2 g^2 k}\Big|\sum_{l} e^{i g \psi_l}\Big|^2,\qquad
      S_{\max} = \frac{k}{2}\sum_{g=1}^{\lfloor k/2 \rfloor}\frac{1}{g^2},$$

    over the $k$ non-empty groups with mean phases $\psi_l = \arg\sum_{j\in l}
    e^{i\theta_j}$ (the splay term of `kl.cluster_order`). 0 when the $\psi_l$ are
    equally spaced on the circle, 1 when they all coincide. Only the group mean phases
    matter, not how synchronous each group is. With fewer than two non-empty groups
    there is nothing to spread and the result is 0. Empty groups are masked.

    **Arguments:**

    - `theta`: phases in radians, shape `(..., osc)`.
    - `labels`: integer group labels, shape `(osc,)`, values in `[0, num_clusters)`.
    - `num_clusters`: static Python int; if `None`, `labels.max() + 1` (concrete
      labels only).

    **Returns:** real array of shape `theta.shape[:-1]`, values in $[0, 1]$.
    """
    return _splay(*_check_groups(theta, labels, num_clusters))


@functools.partial(jax.jit, static_argnames="num_clusters")
def _splay(theta, labels, num_clusters):
    sums, _, present = _group_sums(theta, labels, num_clusters)
    S, S_max, _ = _splay_sum(sums, present, num_clusters)
    pos = S_max > 0
    return jnp.where(pos, S / jnp.where(pos, S_max, 1.0), 0.0)


# ---------------------------------------------------------------------------------
# Local order
# ---------------------------------------------------------------------------------


def local_order(
    theta: BatchPhasesLike, kernel: AbstractCoupling | CouplingMatrix
) -> ComplexArray:
    r"""Local (neighbourhood) complex order parameter, weighted by a coupling kernel.

    $$Z_i = \frac{\sum_j w_{ij}\, e^{i\theta_j}}{\sum_j w_{ij}}$$

    Phasors are averaged, never raw angles (averaging angles is wrong across the
    $\pm\pi$ cut). $|Z_i| = 1$ when oscillator $i$'s neighbourhood is synchronous.

    **Arguments:**

    - `theta`: phases in radians, shape `(..., osc)`.
    - `kernel`: the weights $w_{ij}$ (row $i$ receives): a kuralab coupling
      (`kl.LatticeCoupling`, `kl.DenseCoupling`, `kl.SparseCoupling`, `kl.MeanField`),
      applied through `coupling.apply` at $t = 0$ (its `strength` cancels), or an
      `(osc, osc)` matrix. Weights should be non-negative; a row whose weights sum to
      0 (an isolated oscillator) has no neighbourhood and gives NaN.

    **Returns:** complex array of shape `theta.shape` (`(..., osc)`).
    """
    theta = _as_phases("theta", theta)
    n = theta.shape[-1]
    if isinstance(kernel, AbstractCoupling):
        if kernel.n_osc is not None and kernel.n_osc != n:
            raise ValueError(
                f"`kernel` is built for {kernel.n_osc} oscillators but `theta` has {n} "
                f"(shape {theta.shape})"
            )
    else:
        kernel = jnp.asarray(kernel)
        if kernel.shape != (n, n):
            raise ValueError(
                f"`kernel` must be a kuralab coupling or an (osc, osc) = ({n}, {n}) "
                f"weight matrix; got shape {kernel.shape}"
            )
    return _local_order(theta, kernel)


@eqx.filter_jit
def _local_order(theta, kernel):
    n = theta.shape[-1]
    batch = theta.shape[:-1]
    # Coupling operators act on (osc, *features): put the batch (and the two phasor
    # components) on a single feature axis.
    flat = jnp.moveaxis(theta.reshape((-1, n)), -1, 0)  # (osc, B)
    s, c = sincos(flat)
    u = jnp.concatenate([c, s], axis=-1)  # (osc, 2B)
    ones = jnp.ones((n, 1), theta.dtype)
    if isinstance(kernel, AbstractCoupling):
        num = kernel.apply(u)
        den = kernel.apply(ones)
    else:
        w = kernel.astype(theta.dtype)
        hp = jax.lax.Precision.HIGHEST
        num = jnp.matmul(w, u, precision=hp)
        den = jnp.sum(w, axis=1, keepdims=True)
    num = num.astype(theta.dtype) / den.astype(theta.dtype)  # (osc, 2B)
    b = flat.shape[1]
    z = jax.lax.complex(num[:, :b], num[:, b:])  # (osc, B)
    return jnp.moveaxis(z, 0, -1).reshape(batch + (n,))


# ---------------------------------------------------------------------------------
# Effective frequencies
# ---------------------------------------------------------------------------------


def effective_frequencies(
    traj_or_theta: Trajectory | PhaseSeriesLike,
    ts: TimesLike | None = None,
    *,
    window: float | None = None,
) -> RealArray:
    r"""Mean angular velocities over a final time window, from unwrapped phases.

    $$\Omega_i = \frac{\theta_i(t_b) - \theta_i(t_a)}{t_b - t_a}$$

    with $\theta$ unwrapped, $t_b$ the last save and $t_a$ the first save at or after
    $t_b - $ `window` (up to float rounding). Oscillators locked to a common rhythm
    share $\Omega_i$; drifting ones do not.

    **Arguments:**

    - `traj_or_theta`: either a `kl.Trajectory` of a phase model with saved states
      (the winding numbers `turns` make the unwrapping exact, whatever the save
      spacing; batched trajectories from `jax.vmap` work too), or an array of phases of
      shape `(..., time, osc)`. Arrays are unwrapped along the time axis by summing the
      wrapped increments (as `jnp.unwrap`), which is correct only if the saves are
      dense enough that every phase moves by less than $\pi$ between consecutive
      saves.
    - `ts`: save times, shape `(time,)`; required with an array, not allowed with a
      trajectory (it carries its own `ts`).
    - `window`: duration of the final averaging window, > 0 (keyword only). Default:
      the whole saved span. It must contain at least two saves.

    **Returns:** real array of shape `(..., osc)` (rad per unit time).
    """
    from ._integrate import Trajectory

    if window is not None:
        if not is_concrete(window) or jnp.ndim(window) != 0:
            raise ValueError(
                f"`window` must be a concrete scalar duration > 0; got {window!r}"
            )
        window = float(window)
        if not (math.isfinite(window) and window > 0):
            raise ValueError(f"`window` must be a finite duration > 0; got {window}")

    if isinstance(traj_or_theta, Trajectory):
        traj = traj_or_theta
        if ts is not None:
            raise ValueError(
                "`ts` must not be given with a kl.Trajectory: its save times `traj.ts` "
                "are used"
            )
        if traj.turns is None:
            raise ValueError(
                "effective_frequencies needs the saved phases and winding numbers of a "
                "phase model; this trajectory has `turns=None` (it saved a SaveAt `fn` "
                "output or is a vector model). Re-run `kl.simulate` without `fn` "
                "(e.g. SaveAt(every=k)), or pass an array of phases with `ts`"
            )
        theta = jnp.asarray(traj.ys)
        turns = jnp.asarray(traj.turns)
        ts = jnp.asarray(traj.ts)
    else:
        theta = _as_phases("theta", traj_or_theta, min_ndim=2, what="(..., time, osc)")
        turns = None
        if ts is None:
            raise ValueError(
                "`ts` (the save times, shape (time,)) is required when phases are "
                "given as an array"
            )
        ts = jnp.asarray(ts)
        if ts.ndim != 1 or ts.shape[0] != theta.shape[-2]:
            raise ValueError(
                f"`ts` must have shape (time,) = ({theta.shape[-2]},) to match "
                f"`theta` of shape {theta.shape} (..., time, osc); got shape "
                f"{ts.shape}"
            )
    n_time = theta.shape[-2]
    if ts.shape[-1] != n_time:
        raise ValueError(
            f"save times of shape {ts.shape} do not match {n_time} saved states"
        )
    if n_time < 2:
        raise ValueError(
            f"effective frequencies need at least two saved times; got {n_time}"
        )
    ts = ts.astype(theta.dtype)
    if is_concrete(ts):
        tsn = np.asarray(ts)
        if np.any(np.diff(tsn, axis=-1) <= 0):
            raise ValueError("`ts` must be strictly increasing")

    if window is not None:
        window = jnp.asarray(window, ts.dtype)  # traced: no recompile per value
    out, start = _effective_frequencies(theta, turns, ts, window)
    too_short = window is not None and is_concrete(start)
    if too_short and np.any(np.asarray(start) >= n_time - 1):
        spacing = float(np.max(np.asarray(ts[..., -1] - ts[..., -2])))
        raise ValueError(
            f"`window`={float(window):g} contains fewer than two saves (the last save "
            f"spacing is {spacing:g}); use a longer window"
        )
    return out


@eqx.filter_jit
def _effective_frequencies(theta, turns, ts, window):
    """Mean frequencies over the window and the index of its first save."""
    n_time = theta.shape[-2]
    t_end = ts[..., -1]
    if window is None:
        start = jnp.zeros(ts.shape[:-1], jnp.int32)
    else:
        eps = jnp.finfo(ts.dtype).eps
        tol = 16 * eps * jnp.maximum(jnp.abs(t_end), window)
        inside = ts >= (t_end - window - tol)[..., None]
        start = jnp.argmax(inside, axis=-1)  # first save in the window
    t_start = jnp.take_along_axis(ts, start[..., None], axis=-1)[..., 0]
    duration = (t_end - t_start)[..., None]  # (*ts_batch, 1)

    if turns is None:
        # Sum the wrapped increments between consecutive saves inside the window.
        idx = jnp.arange(n_time - 1)
        in_window = (idx >= start[..., None]).astype(theta.dtype)[..., None]
        steps = wrap_phase(jnp.diff(theta, axis=-2))
        delta = jnp.sum(steps * in_window, axis=-2)
    else:
        # Exact: wrapped difference plus whole turns (no large unwrapped values).
        s = jnp.broadcast_to(start, theta.shape[:-2])[..., None, None]
        first = jnp.take_along_axis(theta, s, axis=-2)[..., 0, :]
        first_turns = jnp.take_along_axis(turns, s, axis=-2)[..., 0, :]
        delta = (theta[..., -1, :] - first) + TWO_PI * (
            turns[..., -1, :] - first_turns
        ).astype(theta.dtype)
    return delta / duration, start


def _rotation_rate(Z: Array, duration) -> Array:
    """Mean rotation rate of a complex series `Z` (`(..., time)`) over `duration`, from
    its wrapped phase increments (each must be below pi in magnitude)."""
    steps = wrap_phase(jnp.angle(Z[..., 1:]) - jnp.angle(Z[..., :-1]))
    return jnp.sum(steps, axis=-1) / duration


def _locked_fraction(Omega: Array, Omega_Z: Array, tol) -> Array:
    """Fraction of oscillators whose effective frequency `Omega` (`(..., osc)`) is
    within `tol` of the mean field's rotation rate `Omega_Z` (`(...)`)."""
    return jnp.mean(jnp.abs(Omega - Omega_Z[..., None]) < tol, axis=-1)
