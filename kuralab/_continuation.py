r"""Continuation of phase-locked states in a parameter, through folds.

Locked states, their frames (co-rotating, or locked to a forcing) and the reduced
Jacobian that decides their stability are described in `kuralab/_locked_state.py`
(`kl.locked_state`); this module follows them along a parameter.

**Continuation** (`continuation`) follows a branch of locked states through folds with
Keller's pseudo-arclength method. With $X = (\text{unknowns}, p) \in \mathbb{R}^{N+1}$
and $F(X) = 0$ the $N$ locking equations, each step

1. predicts $X^{\rm pred} = X_k + \Delta s\, t_k$ along the unit tangent $t_k$
   ($DF(X_k)\, t_k = 0$, oriented so that $t_{k-1} \cdot t_k > 0$);
2. corrects with Newton (`optimistix.Newton`, `lineax.LU`) on $F(X) = 0$,
   $t_k \cdot (X - X^{\rm pred}) = 0$;
3. computes the new tangent from $[DF(X_{k+1});\, t_k^\top]\, t = e_{N+1}$ (`lineax`).

A step is accepted when Newton converges within `max_newton` iterations to a residual
$\max_i |F_i| \le$ `tol` and the tangent turned by less than 0.5 rad; otherwise
$\Delta s$ is halved (and the run stops once it falls below `ds_min`). After an easy step
(at most 4 Newton iterations) $\Delta s$ grows by 1.5, up to `ds_max`. The corrector,
tangent and Jacobian are one `eqx.filter_jit`-ed function, compiled once per shape and
`make_model`; the outer loop is Python.

**Folds** (saddle-nodes) are where the parameter component $dp/ds$ of the tangent changes
sign between two accepted points. The fold is then located by the Illinois (modified
regula falsi) method on $\sigma \mapsto dp/ds$ at the corrected point
$t_k \cdot (X - X_k) = \sigma$, $\sigma \in (0, \Delta s)$: near a regular fold $dp/ds$
is linear in $\sigma$, so this converges superlinearly, and the error in $p$ is quadratic
in the remaining $dp/ds$ (below $10^{-12}$ in float64). The located fold is inserted as a
point of the branch with `fold = 1`.

A branch may leave the parameter interval `bounds`; its last point is then put exactly on
the bound (a Newton solve at fixed $p$).

??? cite "References"

    ```bibtex
    @incollection{keller1977,
      author={Keller, Herbert B.},
      title={Numerical solution of bifurcation and nonlinear eigenvalue problems},
      booktitle={Applications of Bifurcation Theory}, editor={Rabinowitz, P. H.},
      publisher={Academic Press}, pages={359--384}, year={1977}}
    @article{verwoerd2008,
      author={Verwoerd, Mark and Mason, Oliver},
      title={Global phase-locking in finite populations of phase-coupled oscillators},
      journal={SIAM J. Appl. Dyn. Syst.}, volume={7}, number={1}, pages={134--160},
      year={2008}}
    ```
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
import xarray as xr

from . import _names as names
from ._custom_types import PhasesLike, Scalar
from ._locked_state import (
    LockedState as LockedState,
    _as_number,
    _check_model,
    _check_phi,
    _check_positive_int,
    _check_tol,
    _default_tol,
    _float_dtype,
    _initial_X,
    _Point,
    _Solver,
    _wrap,
    locked_state as locked_state,
)
from ._models.kuramoto import Kuramoto

__all__ = ["LockedState", "continuation", "locked_state"]

#: Dimension names of a continuation Dataset.
POINT, MODE = "point", "mode"
_VARS = "Omega phi stable max_real_eig eigenvalues fold branch arclength residual"
_RESERVED = {POINT, MODE, names.OSC, names.R, *_VARS.split()}
_MAX_TURN = 0.5  # radians the tangent may turn in one accepted step
_EASY_NEWTON = 4  # Newton iterations at or below which the step grows
_GROW, _SHRINK = 1.5, 0.5


# ---------------------------------------------------------------------------------
# Continuation
# ---------------------------------------------------------------------------------


def _locate_fold(solve: _Solver, X, t, s, g_end) -> _Point | None:
    """The fold between `X` (tangent `t`) and the accepted point `s` along `t`, where
    the tangent's p-component changes sign: Illinois on sigma -> dp/ds."""
    eps = float(jnp.finfo(solve.dtype).eps)
    g_tol = eps**0.75
    a, ga = 0.0, float(t[-1])
    b, gb = s, float(g_end)
    best = None
    for _ in range(60):
        c = b - gb * (b - a) / (gb - ga)
        if not (min(a, b) < c < max(a, b)):
            c = 0.5 * (a + b)
        pt = solve(X + c * t, t, t)
        if not pt.ok:
            c = 0.5 * (a + b)
            pt = solve(X + c * t, t, t)
            if not pt.ok:
                break
        gc = float(pt.tangent[-1])
        if best is None or abs(gc) < abs(float(best.tangent[-1])):
            best = pt
        if abs(gc) <= g_tol or abs(b - a) <= 4 * eps * s:
            break
        if gc * gb < 0:
            a, ga = b, gb
        else:
            ga = 0.5 * ga
        b, gb = c, gc
    return best


def continuation(
    make_model: Callable[[Scalar], Kuramoto],
    phi0: PhasesLike,
    *,
    p0: float,
    ds: float,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    direction: int = 1,
    max_steps: int = 500,
    name: str = "p",
    units: str = "1",
    long_name: str | None = None,
    ds_min: float | None = None,
    ds_max: float | None = None,
    tol: float | None = None,
    max_newton: int = 10,
) -> xr.Dataset:
    r"""Follow a branch of phase-locked states in a parameter $p$, through folds.

    Pseudo-arclength continuation with fold detection and linear stability at every
    point (method in the module docstring). Runs in the dtype of `phi0`: use float64
    (`jax.enable_x64`) for accurate folds.

    ```python
    omega = jnp.array([-0.9, -0.3, 0.2, 1.0])
    ds = kl.continuation(lambda K: kl.Kuramoto(omega, kl.MeanField(K)),
                         jnp.arcsin(omega / 4), p0=4.0, ds=0.05, direction=-1,
                         bounds=(0.0, 4.0), name="K")
    ds.K.where(ds.fold == 1, drop=True)   # the locking threshold K_L
    ```

    **Main arguments:**

    - `make_model`: `make_model(p) -> kl.Kuramoto` (no noise, delays or schedules),
      called with a traced scalar $p$, e.g. `lambda K: kl.Kuramoto(omega,
      kl.MeanField(K))` or `lambda a: kl.Kuramoto(omega, coupling, lag=a)`. The
      corrector is compiled once per function object (keep one, e.g. at module level)
      and shape; an `eqx.Module` with `__call__` also works, and its arrays are traced,
      so instances that differ only in values share one compilation.
    - `phi0`: phases of (or near) a locked state at `p0`, shape `(osc,)`; refined by
      Newton first.
    - `p0`: the starting parameter. Keyword only, like everything below.
    - `ds`: the initial arclength step (> 0), in the joint units of phases (rad),
      frequency and $p$.
    - `bounds`: `(low, high)`: stop when the branch leaves this interval (the last
      point lies on the bound). Default unbounded.
    - `direction`: `+1` or `-1`, the sign of $dp/ds$ at the start (default `+1`).
    - `max_steps`: accepted steps at most (default 500).
    - `name`, `units`, `long_name`: the parameter's variable name in the Dataset
      (default `"p"`) and its attributes.

    **Other arguments:**

    - `ds_min`, `ds_max`: step limits (default `1e-5 ds` and `4 ds`). The run stops
      when a failed step would need a step below `ds_min`.
    - `tol`: absolute tolerance on the residual in frequency units (as
      `kl.locked_state`).
    - `max_newton`: Newton iterations per corrector (default 10).

    **Returns:** an `xarray.Dataset` with dimensions `point` (along the branch),
    `osc` and `mode` (eigenvalues), holding

    - `<name>` (point): the parameter;
    - `Omega` (point): the locked frequency (0 in the forcing frame);
    - `phi` (point, osc): phases in the co-rotating frame ($\phi_0 = 0$), wrapped to
      $[-\pi, \pi)$; `R` (point): $|\langle e^{i\phi}\rangle|$;
    - `stable` (point, int8): 1 where every eigenvalue of the reduced Jacobian has a
      negative real part, else 0 (at a fold one eigenvalue is 0 up to round-off, so the
      flag there is not meaningful);
    - `max_real_eig` (point) and `eigenvalues` (point, mode; complex, saved by
      `kl.io.save` as a real/imaginary pair): the reduced spectrum, by decreasing real
      part;
    - `fold` (point, int8): 1 at located folds (saddle-nodes);
    - `branch` (point): index of the smooth segment between folds (a fold point ends its
      segment);
    - `arclength` (point): cumulative chord length; `residual` (point).

    Attributes record `parameter`, `frame`, `model`, `coupling`, `n_folds`,
    `stop_reason` (`"bounds"`, `"max_steps"` or `"min_step"`) and the settings.
    """
    # --- argument checks -------------------------------------------------------
    if not callable(make_model):
        raise TypeError(
            f"`make_model` must be a function p -> kl.Kuramoto; got {make_model!r}"
        )
    if not isinstance(name, str) or not name.isidentifier() or name in _RESERVED:
        raise ValueError(
            f"`name` must be an identifier naming the parameter, not one of "
            f"{sorted(_RESERVED)}; got {name!r}"
        )
    p0, ds = _as_number("p0", p0), _as_number("ds", ds)
    if not math.isfinite(p0):
        raise ValueError(f"`p0` must be finite; got {p0!r}")
    if not (math.isfinite(ds) and ds > 0):
        raise ValueError(f"`ds` must be a finite number > 0; got {ds!r}")
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"`bounds` must be a pair (low, high); got {bounds!r}"
        ) from None
    if not lo < hi or not lo <= p0 <= hi:
        raise ValueError(
            f"`bounds` must satisfy low < high and contain p0 = {p0}; got {bounds!r}"
        )
    if direction not in (1, -1) or isinstance(direction, bool):
        raise ValueError(f"`direction` must be +1 or -1; got {direction!r}")
    max_steps = _check_positive_int("max_steps", max_steps)
    max_newton = _check_positive_int("max_newton", max_newton)
    _check_tol(tol)
    ds_min = 1e-5 * ds if ds_min is None else float(ds_min)
    ds_max = 4.0 * ds if ds_max is None else float(ds_max)
    if not 0 < ds_min <= ds <= ds_max:
        raise ValueError(
            f"need 0 < ds_min <= ds <= ds_max; got ds_min={ds_min}, ds={ds}, "
            f"ds_max={ds_max}"
        )

    dtype = _float_dtype(phi0)
    model0 = make_model(jnp.asarray(p0, dtype))
    symmetric = _check_model(model0, "`make_model(p0)`")
    _check_phi("phi0", phi0, model0.n_osc)
    tol = _default_tol(dtype, model0) if tol is None else float(tol)
    solve = _Solver(make_model, symmetric, tol, max_newton, dtype)

    # --- the starting point ------------------------------------------------------
    X0 = _initial_X(model0, phi0, symmetric, p0, dtype)
    e_p = np.zeros_like(X0)
    e_p[-1] = 1.0
    start = solve(X0, e_p, e_p)
    if not start.ok:
        start = _Solver(make_model, symmetric, tol, max(50, max_newton), dtype)(
            X0, e_p, e_p
        )
    if not start.ok:
        raise ValueError(
            f"Newton did not converge from `phi0` to a locked state at p0 = {p0} "
            f"(residual {start.residual:.3g} > tol {tol:.3g}): the network may not lock "
            "there, or the guess is too far; start from the end state of kl.simulate or "
            "from kl.locked_state"
        )
    if abs(start.tangent[-1]) < math.sqrt(float(jnp.finfo(dtype).eps)):
        raise ValueError(
            f"`p0` = {p0} is (numerically) at a fold of the branch, where the direction "
            "of continuation is undefined; start a little away from it"
        )

    points: list[_Point] = [start._replace(tangent=direction * start.tangent)]
    folds: list[bool] = [False]
    X, t = points[0].X, points[0].tangent
    s = float(ds)
    stop_reason = "max_steps"
    for _ in range(max_steps):
        while True:
            new = solve(X + s * t, t, t)
            accepted = new.ok and float(np.dot(new.tangent, t)) >= math.cos(_MAX_TURN)
            fold_here = accepted and t[-1] * new.tangent[-1] < 0
            fold = _locate_fold(solve, X, t, s, new.tangent[-1]) if fold_here else None
            p_new = new.X[-1]
            outside = accepted and not lo <= p_new <= hi
            if fold_here and (fold is None or outside or not lo <= fold.X[-1] <= hi):
                accepted = False  # keep a fold and a bound out of one step
            if accepted:
                break
            s *= _SHRINK
            if s < ds_min:
                stop_reason = "min_step"
                break
        if stop_reason == "min_step":
            break
        if outside:
            bound = hi if p_new > hi else lo
            frac = (bound - X[-1]) / (p_new - X[-1])
            landed = solve(X + frac * (new.X - X), e_p, t)
            if landed.ok:
                points.append(landed)
                folds.append(False)
                stop_reason = "bounds"
                break
            s *= _SHRINK
            if s < ds_min:
                stop_reason = "min_step"
                break
            continue
        if fold is not None:
            points.append(fold)
            folds.append(True)
        points.append(new)
        folds.append(False)
        X, t = new.X, new.tangent
        if new.newton <= _EASY_NEWTON:
            s = min(_GROW * s, ds_max)

    return _to_dataset(
        points,
        folds,
        model0,
        symmetric,
        name=name,
        units=units,
        long_name=long_name,
        settings=dict(
            ds=float(ds),
            ds_min=ds_min,
            ds_max=ds_max,
            tol=tol,
            direction=int(direction),
            p0=float(p0),
            bound_low=lo,
            bound_high=hi,
            stop_reason=stop_reason,
        ),
    )


def _to_dataset(points, folds, model0, symmetric, *, name, units, long_name, settings):
    X = np.stack([pt.X for pt in points]).astype(np.float64)
    n = model0.n_osc
    if symmetric:
        phi = np.concatenate([np.zeros((len(points), 1)), X[:, :-2]], axis=1)
        Omega = X[:, -2]
    else:
        phi, Omega = X[:, :-1], np.zeros(len(points))
    eig = np.stack([pt.eigenvalues() for pt in points]).astype(np.complex128)
    max_re = eig.real.max(axis=1)
    fold = np.asarray(folds, np.int8)
    branch = np.concatenate([[0], np.cumsum(fold[:-1])]).astype(np.int32)
    arclength = np.concatenate(
        [[0.0], np.cumsum(np.linalg.norm(np.diff(X, axis=0), axis=1))]
    )
    R = np.abs(np.mean(np.exp(1j * phi), axis=1))

    def var(dims, data, units_, long):
        return xr.Variable(dims, data, {"units": units_, "long_name": long})

    P = (POINT,)
    data_vars = {
        name: var(P, X[:, -1], units, long_name or f"continuation parameter {name}"),
        "Omega": var(
            P,
            Omega,
            "rad/time",
            "frequency of the locked state"
            + ("" if symmetric else "; 0: locked to the forcing"),
        ),
        "phi": var(
            (POINT, names.OSC),
            _wrap(phi),
            "rad",
            "locked phases in the co-rotating frame (phi_0 = 0), wrapped to [-pi, pi)"
            if symmetric
            else "locked phases (forcing frame), wrapped to [-pi, pi)",
        ),
        names.R: var(P, R, *names.UNITS[names.R]),
        "stable": var(
            P,
            (max_re < 0).astype(np.int8),
            "1",
            "1 if linearly stable (every reduced Jacobian eigenvalue has Re < 0)",
        ),
        "max_real_eig": var(
            P,
            max_re,
            "1",
            "largest real part of the reduced Jacobian spectrum (rate per unit time)",
        ),
        "eigenvalues": var(
            (POINT, MODE),
            eig,
            "1",
            "reduced Jacobian eigenvalues, rotational zero mode removed, by "
            "decreasing real part",
        ),
        "fold": var(P, fold, "1", "1 at a located fold (saddle-node) of the branch"),
        "branch": var(P, branch, "1", "index of the smooth segment between folds"),
        "arclength": var(
            P, arclength, "1", "cumulative chord length in (phases, Omega, parameter)"
        ),
        "residual": var(
            P, [pt.residual for pt in points], "rad/time", "max |f(phi) - Omega|"
        ),
    }
    coords = {
        POINT: xr.Variable(POINT, np.arange(len(points)), {"long_name": "point index"}),
        names.OSC: xr.Variable(names.OSC, np.arange(n), {"long_name": "oscillator"}),
        MODE: xr.Variable(MODE, np.arange(eig.shape[1]), {"long_name": "eigenmode"}),
    }
    coupling = model0.coupling
    attrs = dict(
        parameter=name,
        frame="co-rotating (phi_0 = 0)" if symmetric else "forcing (Omega = 0)",
        stability="reduced Jacobian J_ij - J_0j (i, j >= 1)"
        if symmetric
        else "full Jacobian",
        model=type(model0).__name__,
        coupling=type(coupling).__name__,
        n_osc=n,
        n_folds=int(fold.sum()),
        **settings,
    )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
