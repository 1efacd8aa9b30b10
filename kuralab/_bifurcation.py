r"""Continuation of equilibria of ANY model, with folds, branch points and Hopf points.

`kl.equilibria(make_model, y0, p0=, ds=, ...)` follows a branch of equilibria of
`make_model(p).drift(t0, y)` in a scalar parameter $p$ through the model contract (the
drift only; no kind-specific code). Two frames:

- `frame="rest"`: equilibria $f(y; p) = 0$ (vector-space models, e.g. a Stuart--Landau
  or FitzHugh--Nagumo unit); unknowns $X = (y, p)$.
- `frame="co-rotating"`: relative equilibria of a model with a global phase-shift
  symmetry (phase models), $f(y; p) = \Omega\,\mathbf 1$ with the phase condition
  $y_0 = $ `y0[0]`; unknowns $X = (y, \Omega, p)$. Stability is decided on the quotient
  by the shift: the eigenvalues of $U^\top J U$, $U$ an orthonormal basis of
  $\mathbf 1^\perp$ (the shift's zero mode removed).

**Method.** Keller's pseudo-arclength continuation as in `kl.continuation`: predictor
along the unit tangent $\tau$ ($G_X \tau = 0$, oriented), Newton corrector on
$G(X) = 0$, $\tau\cdot(X - X^{\rm pred}) = 0$ (dense `numpy.linalg.solve`, Jacobians by
`jax.jacfwd` of the drift, one compilation per `make_model`), step halving on failure
or a tangent turn over 0.5 rad, growth by 1.5 after easy steps.

**Test functions** between consecutive points (the standard ones, e.g. Kuznetsov,
*Elements of Applied Bifurcation Theory*, §10.2):

- fold: $\psi_F = \tau_p$, the parameter component of the tangent;
- branch point: $\psi_B = \det\begin{pmatrix} G_X \\ \tau^\top\end{pmatrix}$ (changes
  sign at a simple branch point, not at a fold);
- Hopf: $\psi_H = \prod_{i<j} (\lambda_i + \lambda_j)$ over the (quotient) Jacobian's
  eigenvalues, real; a sign change is a Hopf point when the crossing pair is complex
  ($|\mathrm{Im}\,\lambda| >$ 1e-8), else a neutral saddle (not reported).

A sign change is located by the Illinois method on $\sigma \mapsto \psi$ at the corrected
point $\tau_k\cdot(X - X_k) = \sigma$ (to $|\psi| \le \epsilon^{3/4}$ scaled, or the
bracket at round-off): in float64 the parameter is located to ~1e-10. Located points
are inserted into the branch with `kind` = 1 (fold), 2 (branch point), 3 (Hopf).

Runs in float64 (`jax.enable_x64`) when `y0` is float64; use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ._lyapunov import _check_int
from ._models.base import AbstractModel

__all__ = ["FOLD", "BRANCH_POINT", "HOPF", "equilibria"]

REGULAR, FOLD, BRANCH_POINT, HOPF = 0, 1, 2, 3
KINDS = {REGULAR: "regular", FOLD: "fold", BRANCH_POINT: "branch point", HOPF: "Hopf"}
FRAMES = ("rest", "co-rotating")
_MAX_TURN, _EASY, _GROW, _SHRINK = 0.5, 4, 1.5, 0.5


def _residual(make_model, frame: str, pin: float, t0: float, X):
    if frame == "rest":
        y, p = X[:-1], X[-1]
        return make_model(p).drift(t0, y)
    y, Omega, p = X[:-2], X[-2], X[-1]
    f = make_model(p).drift(t0, y) - Omega
    return jnp.concatenate([f, (y[:1] - pin)])


@eqx.filter_jit
def _system(make_model, frame, pin, t0, X):
    """G(X), G_X(X) and the state Jacobian J = d drift / dy."""
    G = _residual(make_model, frame, pin, t0, X)
    GX = jax.jacfwd(lambda X: _residual(make_model, frame, pin, t0, X))(X)
    n = X.shape[0] - (1 if frame == "rest" else 2)
    J = GX[:n, :n]
    return G, GX, J


class _Eval:
    def __init__(self, make_model, frame, pin, t0, n, tol, max_newton):
        self.args = (make_model, frame, pin, t0)
        self.n, self.frame, self.tol, self.max_newton = n, frame, tol, max_newton
        if frame == "co-rotating":
            q, _ = np.linalg.qr(np.concatenate(
                [np.ones((n, 1)), np.eye(n)[:, : n - 1]], axis=1))
            self.U = q[:, 1:]

    def system(self, X):
        G, GX, J = _system(*self.args, jnp.asarray(X))
        return np.asarray(G), np.asarray(GX), np.asarray(J)

    def eigenvalues(self, J):
        if self.frame == "co-rotating":
            J = self.U.T @ J @ self.U
        ev = np.linalg.eigvals(J)
        return ev[np.argsort(-ev.real)]

    def correct(self, Xpred, t):
        """Newton on G = 0, t.(X - Xpred) = 0; returns a point dict or None."""
        X = np.array(Xpred, np.float64)
        for it in range(1, self.max_newton + 1):
            G, GX, _ = self.system(X)
            A = np.vstack([GX, t[None]])
            rhs = -np.concatenate([G, [t @ (X - Xpred)]])
            try:
                X = X + np.linalg.solve(A, rhs)
            except np.linalg.LinAlgError:
                return None
            if not np.all(np.isfinite(X)):
                return None
            G, GX, J = self.system(X)
            if np.max(np.abs(G)) <= self.tol:
                return self._point(X, GX, J, t, it)
        return None

    def _point(self, X, GX, J, t_prev, newton):
        A = np.vstack([GX, t_prev[None]])
        e = np.zeros(X.size)
        e[-1] = 1.0
        tau = np.linalg.solve(A, e)
        tau = tau / np.linalg.norm(tau)
        if tau @ t_prev < 0:
            tau = -tau
        ev = self.eigenvalues(J)
        G = self.system(X)[0]
        return dict(X=X, tau=tau, ev=ev, newton=newton, residual=float(np.abs(G).max()),
                    psi={FOLD: tau[-1],
                         BRANCH_POINT: float(np.linalg.det(np.vstack([GX, tau[None]]))),
                         HOPF: _hopf_test(ev)})


def _hopf_test(ev) -> float:
    s = ev[:, None] + ev[None, :]
    iu = np.triu_indices(ev.size, 1)
    prod = np.prod(s[iu])
    return float(np.real(prod))


def _locate(ev: _Eval, a_pt, b_pt, kind: int, s: float):
    """Illinois on sigma in (0, s) for the sign change of psi[kind] between a_pt
    (tangent t) and b_pt."""
    X, t = a_pt["X"], a_pt["tau"]
    a, fa = 0.0, a_pt["psi"][kind]
    b, fb = s, b_pt["psi"][kind]
    best, eps = None, np.finfo(np.float64).eps
    scale = max(abs(fa), abs(fb), 1e-300)
    for _ in range(80):
        c = b - fb * (b - a) / (fb - fa)
        if not (min(a, b) < c < max(a, b)):
            c = 0.5 * (a + b)
        pt = ev.correct(X + c * t, t)
        if pt is None:
            break
        fc = pt["psi"][kind]
        best = pt
        if abs(fc) <= eps**0.75 * scale or abs(b - a) <= 8 * eps * s:
            break
        if fc * fb < 0:
            a, fa = b, fb
        else:
            fa = 0.5 * fa
        b, fb = c, fc
    return best


def equilibria(
    make_model: Callable,
    y0,
    *,
    p0: float,
    ds: float,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    direction: int = 1,
    frame: str = "rest",
    Omega0: float = 0.0,
    max_steps: int = 400,
    t0: float = 0.0,
    tol: float | None = None,
    max_newton: int = 12,
    name: str = "p",
) -> xr.Dataset:
    r"""Follow a branch of equilibria of `make_model(p)` in $p$; detect and locate folds,
    branch points and Hopf points; report each point's stability.

    **Arguments:**

    - `make_model`: `p -> model` (any kuralab model; called with a traced scalar).
    - `y0`: a state at or near an equilibrium at `p0`, shape `model.state_shape`
      (flattened internally); float64 recommended.
    - `p0`, `ds`: starting parameter and initial arclength step (> 0).
    - `bounds`: the parameter interval; the run stops on leaving it.
    - `direction`: +1 / -1, the initial direction in $p$.
    - `frame`: `"rest"` or `"co-rotating"` (see the module docstring); `Omega0` the
      initial guess of the rotation frequency there.
    - `max_steps`, `tol` (max |residual|, default 1e-10 in float64, 1e-5 in float32),
      `max_newton`, `t0` (the time at which the drift is evaluated), `name` (of the
      parameter variable).

    **Returns:** an `xarray.Dataset` on dim `point`: `<name>`, `y` (point, state),
    `Omega` (co-rotating frame), `kind` (0 regular, 1 fold, 2 branch point, 3 Hopf),
    `stable` (1 where every (quotient) eigenvalue has negative real part),
    `max_real_eig`, `eigenvalues` (point, mode; complex), `segment` (index of the
    stretch between consecutive special points), `residual`; attributes `n_folds`,
    `n_branch_points`, `n_hopf`, `stop_reason`.
    """
    if not callable(make_model):
        raise TypeError(f"`make_model` must be a function p -> model; got {make_model!r}")
    if frame not in FRAMES:
        raise ValueError(f"`frame` must be one of {FRAMES}; got {frame!r}")
    if direction not in (1, -1) or isinstance(direction, bool):
        raise ValueError(f"`direction` must be +1 or -1; got {direction!r}")
    if not (math.isfinite(ds) and ds > 0):
        raise ValueError(f"`ds` must be a finite number > 0; got {ds!r}")
    lo, hi = (float(b) for b in bounds)
    if not lo <= p0 <= hi:
        raise ValueError(f"`bounds` must contain p0 = {p0}; got {bounds!r}")
    max_steps = _check_int("max_steps", max_steps, 1)
    model0 = make_model(jnp.asarray(p0, jnp.asarray(y0).dtype))
    if not isinstance(model0, AbstractModel):
        raise TypeError(
            f"`make_model(p0)` must return a kuralab model; got {type(model0).__name__}"
        )
    y0 = np.asarray(y0)
    if tuple(y0.shape) != tuple(model0.state_shape):
        raise ValueError(
            f"`y0` must have the model's state shape {tuple(model0.state_shape)}; got "
            f"{y0.shape}"
        )
    shape = y0.shape
    x64 = y0.dtype == np.float64
    tol = (1e-10 if x64 else 1e-5) if tol is None else float(tol)
    flat = y0.reshape(-1).astype(np.float64)
    n = flat.size
    mk = _MakeFlat(make_model, shape)
    ev = _Eval(mk, frame, float(flat[0]), float(t0), n, tol, max_newton)
    X0 = np.concatenate([flat, [Omega0] if frame == "co-rotating" else [], [p0]])
    e_p = np.zeros(X0.size)
    e_p[-1] = 1.0
    start = ev.correct(X0, e_p)
    if start is None:
        raise ValueError(
            f"Newton did not converge from `y0` to an equilibrium at p0 = {p0}; start "
            "nearer (e.g. from the end state of kl.simulate)"
        )
    if start["tau"][-1] * direction < 0:
        start["tau"] = -start["tau"]
        for kind in (FOLD, BRANCH_POINT):  # both change sign with the tangent
            start["psi"][kind] = -start["psi"][kind]
    points, kinds = [start], [REGULAR]
    s, stop = float(ds), "max_steps"
    cur = start
    for _ in range(max_steps):
        new = None
        while s >= 1e-6 * ds:
            cand = ev.correct(cur["X"] + s * cur["tau"], cur["tau"])
            if cand is not None and cand["tau"] @ cur["tau"] >= math.cos(_MAX_TURN):
                new = cand
                break
            s *= _SHRINK
        if new is None:
            stop = "min_step"
            break
        found = []
        for kind in (FOLD, BRANCH_POINT, HOPF):
            if cur["psi"][kind] * new["psi"][kind] < 0:
                pt = _locate(ev, cur, new, kind, s)
                if pt is None:
                    continue
                if kind == HOPF and not _complex_crossing(pt["ev"]):
                    continue
                found.append((float(pt["tau"] @ (pt["X"] - cur["X"])), kind, pt))
        for _, kind, pt in sorted(found, key=lambda f: f[0]):
            points.append(pt)
            kinds.append(kind)
        points.append(new)
        kinds.append(REGULAR)
        cur = new
        if not lo <= new["X"][-1] <= hi:
            stop = "bounds"
            break
        if new["newton"] <= _EASY:
            s = min(_GROW * s, 4 * ds)
    return _dataset(points, kinds, shape, frame, name, model0, stop)


def _complex_crossing(ev) -> bool:
    i = np.argmin(np.abs(ev.real))
    return abs(ev[i].imag) > 1e-8


class _MakeFlat(eqx.Module):
    """`make_model` on flattened states (the residual works on vectors)."""

    make: Callable = eqx.field(static=True)
    shape: tuple = eqx.field(static=True)

    def __call__(self, p):
        return _Flat(self.make(p), self.shape)


class _Flat(eqx.Module):
    model: AbstractModel
    shape: tuple = eqx.field(static=True)

    def drift(self, t, y):
        return self.model.drift(t, y.reshape(self.shape), None).reshape(-1)


def _dataset(points, kinds, shape, frame, name, model0, stop) -> xr.Dataset:
    X = np.stack([p["X"] for p in points])
    n = int(np.prod(shape))
    eig = np.stack([p["ev"] for p in points]).astype(np.complex128)
    max_re = eig.real.max(axis=1)
    kind = np.asarray(kinds, np.int8)
    segment = np.concatenate([[0], np.cumsum(kind[:-1] > 0)]).astype(np.int32)
    state_dims = tuple(f"state_{i}" for i in range(len(shape)))
    data = {
        name: ("point", X[:, -1], dict(units="1", long_name=f"parameter {name}")),
        "y": (("point", *state_dims), X[:, :n].reshape(len(points), *shape),
              dict(units=model0.state_units, long_name="equilibrium state")),
        "kind": ("point", kind, dict(units="1", long_name="0 regular, 1 fold, 2 branch "
                                                        "point, 3 Hopf")),
        "stable": ("point", (max_re < 0).astype(np.int8),
                   dict(units="1", long_name="1 if every eigenvalue has Re < 0")),
        "max_real_eig": ("point", max_re, dict(units="1/time",
                                               long_name="largest real eigenvalue part")),
        "eigenvalues": (("point", "mode"), eig,
                        dict(units="1/time", long_name="Jacobian eigenvalues"
                             + (" on the quotient by the phase shift"
                                if frame == "co-rotating" else ""))),
        "segment": ("point", segment, dict(units="1", long_name="segment between "
                                                              "special points")),
        "residual": ("point", [p["residual"] for p in points],
                     dict(units="1", long_name="max |G|")),
    }
    if frame == "co-rotating":
        data["Omega"] = ("point", X[:, -2], dict(units="rad/time",
                                                 long_name="rotation frequency"))
    return xr.Dataset(
        data, coords={"point": np.arange(len(points))},
        attrs=dict(frame=frame, parameter=name, model=type(model0).__name__,
                   n_folds=int((kind == FOLD).sum()),
                   n_branch_points=int((kind == BRANCH_POINT).sum()),
                   n_hopf=int((kind == HOPF).sum()), stop_reason=stop),
    )
