r"""Phase-locked states of a finite network: the locking equations, Newton's method
and linear stability (`kl.locked_state`), and the compiled corrector that
`kl.continuation` (`kuralab/_continuation.py`) calls at every step.

A **locked state** of a phase model $\dot\theta = f(\theta; p)$ (`kl.Kuramoto` without
noise or delays) is a rigid rotation $\theta_i(t) = \phi_i + \Omega t$:

$$f_i(\phi; p) - \Omega = 0, \qquad i = 1, \dots, N.$$

**Frames.** Without forcing the drift is invariant under a common shift
$\theta \mapsto \theta + c\mathbf{1}$, so locked states come in circles; the shift is
removed by pinning $\phi_0 = 0$. The unknowns are $(\phi_1, \dots, \phi_{N-1}, \Omega)$:
$N$ equations, $N$ unknowns (the *co-rotating frame*). With `kl.Forcing` the symmetry is
broken and a locked state is an equilibrium locked to the forcing: $\Omega = 0$ and the
unknowns are all $N$ phases (the *forcing frame*).

**Stability** comes from the Jacobian $J = \partial f / \partial \phi$ (`jax.jacfwd` of
the model's own `drift`). Because $J\mathbf{1} = 0$ in the co-rotating frame, stability is
read off the *reduced* $(N-1)\times(N-1)$ Jacobian of the relative phases
$\psi_i = \phi_i - \phi_0$,

$$J^{\rm red}_{ij} = J_{ij} - J_{0j}, \qquad i, j = 1, \dots, N-1,$$

the matrix of $J$ on the quotient $\mathbb{R}^N / \operatorname{span}\mathbf{1}$. Its
spectrum is exactly that of $J$ with the rotational zero eigenvalue removed, with no
numerical guess as to which computed eigenvalue is "the zero one". A state is `stable`
when every eigenvalue of $J^{\rm red}$ (of $J$ itself in the forcing frame) has a
negative real part. Eigenvalues are computed on the host with `numpy.linalg.eigvals`.

??? cite "Reference"

    ```bibtex
    @article{mirollo2005,
      author={Mirollo, Renato E. and Strogatz, Steven H.},
      title={The spectrum of the locked state for the {K}uramoto model of coupled
             oscillators}, journal={Physica D}, volume={205}, pages={249--266},
      year={2005}}
    ```
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx

from ._custom_types import PhasesLike
from ._models.kuramoto import Kuramoto
from ._schedules import AbstractSchedule

__all__ = ["LockedState", "locked_state"]


# ---------------------------------------------------------------------------------
# Model checks and the compiled corrector
# ---------------------------------------------------------------------------------


def _check_model(model: Any, where: str) -> bool:
    """Validate a model for locked-state analysis; return True in the co-rotating frame
    (no forcing), False in the forcing frame."""
    if not isinstance(model, Kuramoto):
        raise TypeError(
            f"{where} must be a kl.Kuramoto phase model; got {type(model).__name__}"
        )
    if model.noise is not None:
        raise ValueError(
            f"{where} has noise (`noise=`): a noisy network has no locked states; "
            "build the model without noise for the deterministic skeleton"
        )
    if model.delays is not None:
        raise ValueError(
            f"{where} has transmission delays (`delays=`): locked states of delayed "
            "networks are not supported here (for identical oscillators see "
            "kl.theory.delayed_sync_frequencies); build the model without delays"
        )
    leaves = jax.tree_util.tree_leaves(
        model, is_leaf=lambda x: isinstance(x, AbstractSchedule)
    )
    if any(isinstance(x, AbstractSchedule) for x in leaves):
        raise ValueError(
            f"{where} has a time-dependent coefficient (a schedule such as "
            "kl.Linear): a locked state needs a time-independent model; pass plain "
            "numbers"
        )
    symmetric = model.forcing is None
    if symmetric and model.n_osc < 2:
        raise ValueError(
            f"{where} has a single unforced oscillator, which is trivially 'locked' at "
            "its own frequency; use at least 2 oscillators (or add kl.Forcing)"
        )
    return symmetric


class _Fixed(eqx.Module):
    """`p -> model` for a fixed model (its arrays are traced, so models that differ only
    in values share one compilation)."""

    model: Kuramoto

    def __call__(self, p):
        del p
        return self.model


def _unpack(X, symmetric: bool):
    """`X = (phi_1..phi_{N-1}, Omega, p)` (co-rotating) or `(phi_0..phi_{N-1}, p)`."""
    p = X[-1]
    if symmetric:
        phi = jnp.concatenate([jnp.zeros((1,), X.dtype), X[:-2]])
        return phi, X[-2], p
    return X[:-1], jnp.zeros((), X.dtype), p


def _residual(make_model, X, symmetric: bool):
    phi, Omega, p = _unpack(X, symmetric)
    t = jnp.zeros((), X.dtype)
    return make_model(p).drift(t, phi) - Omega


@eqx.filter_jit
def _correct(make_model, X_pred, normal, t_prev, tol, *, symmetric, max_newton):
    """Newton on `F(X) = 0, normal . (X - X_pred) = 0` from `X_pred`; then the tangent
    (oriented along `t_prev`) and the reduced Jacobian at the solution. `tol` is traced
    (models with different default tolerances share a compilation)."""

    def G(X, _):
        F = _residual(make_model, X, symmetric)
        return jnp.concatenate([F, jnp.dot(normal, X - X_pred)[None]])

    solver = optx.Newton(rtol=tol, atol=tol, linear_solver=lx.LU())
    sol = optx.root_find(G, solver, X_pred, max_steps=max_newton, throw=False)
    X = sol.value
    residual = jnp.max(jnp.abs(_residual(make_model, X, symmetric)))
    ok = (
        (sol.result == optx.RESULTS.successful)
        & jnp.all(jnp.isfinite(X))
        & (residual <= tol)
    )
    DF = jax.jacfwd(lambda Y: _residual(make_model, Y, symmetric))(X)
    A = jnp.concatenate([DF, t_prev[None]], axis=0)
    e = jnp.zeros_like(X).at[-1].set(1)
    t = lx.linear_solve(lx.MatrixLinearOperator(A), e, lx.LU(), throw=False).value
    t = t / jnp.linalg.norm(t)
    n = DF.shape[0]
    if symmetric:  # DF[:, j - 1] = J[:, j] for j >= 1; the map J induces on R^N/span(1)
        jac = DF[1:, : n - 1] - DF[:1, : n - 1]
    else:
        jac = DF[:, :n]
    return X, ok, residual, sol.stats["num_steps"], t, jac


class _Point(NamedTuple):
    """One corrected point, on the host."""

    X: np.ndarray
    ok: bool
    residual: float
    newton: int
    tangent: np.ndarray
    jac: np.ndarray  # reduced Jacobian (spectrum computed only for kept points)

    def eigenvalues(self) -> np.ndarray:
        """Spectrum of the reduced Jacobian, by decreasing real part."""
        eig = np.linalg.eigvals(np.asarray(self.jac, np.float64))
        return eig[np.argsort(-eig.real, kind="stable")]


class _Solver(NamedTuple):
    make_model: Callable
    symmetric: bool
    tol: float
    max_newton: int
    dtype: Any

    def __call__(self, X_pred, normal, t_prev) -> _Point:
        cast = lambda a: jnp.asarray(a, self.dtype)  # noqa: E731
        out = _correct(
            self.make_model,
            cast(X_pred),
            cast(normal),
            cast(t_prev),
            cast(self.tol),
            symmetric=self.symmetric,
            max_newton=self.max_newton,
        )
        X, ok, residual, newton, t, jac = jax.device_get(out)
        ok = bool(ok) and bool(np.all(np.isfinite(t)))
        return _Point(
            np.asarray(X),
            ok,
            float(residual),
            int(newton),
            np.asarray(t),
            np.asarray(jac),
        )


def _default_tol(dtype, model: Kuramoto) -> float:
    scale = max(1.0, float(np.max(np.abs(np.asarray(model.omega)))))
    return 0.01 * math.sqrt(float(jnp.finfo(dtype).eps)) * scale


def _float_dtype(x):
    dtype = jnp.asarray(x).dtype
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def _initial_X(model: Kuramoto, phi, symmetric: bool, p, dtype) -> np.ndarray:
    phi = jnp.asarray(phi, dtype)
    if symmetric:
        Omega = jnp.mean(model.drift(jnp.zeros((), dtype), phi))
        rel = phi[1:] - phi[0]
        X = jnp.concatenate([rel, Omega[None], jnp.asarray(p, dtype)[None]])
    else:
        X = jnp.concatenate([phi, jnp.asarray(p, dtype)[None]])
    return np.asarray(X)


def _check_phi(name: str, phi, n: int):
    arr = np.asarray(phi)
    if arr.shape != (n,):
        raise ValueError(
            f"`{name}` must have shape ({n},) (one phase per oscillator of the "
            f"model); got shape {arr.shape}"
        )
    if arr.dtype.kind not in "fiu" or not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must hold finite real phases; got {arr!r}")


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}")
    return int(value)


def _as_number(name: str, value) -> float:
    if isinstance(value, bool) or np.ndim(value) != 0:
        raise ValueError(f"`{name}` must be a real number; got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a real number; got {value!r}") from None


def _check_tol(tol) -> None:
    if tol is not None and not (isinstance(tol, int | float) and 0 < tol < math.inf):
        raise ValueError(f"`tol` must be a positive number or None; got {tol!r}")


def _wrap(phi: np.ndarray) -> np.ndarray:
    w = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    return np.where(w >= np.pi, w - 2 * np.pi, w)


# ---------------------------------------------------------------------------------
# One locked state
# ---------------------------------------------------------------------------------


class LockedState(NamedTuple):
    """Result of `kl.locked_state` (NumPy values on the host).

    **Attributes:**

    - `phi`: phases $\\phi$, shape `(osc,)`, wrapped to $[-\\pi, \\pi)$; $\\phi_0 = 0$ in
      the co-rotating frame (no forcing).
    - `Omega`: the common frequency $\\Omega$ (0 for a forced model).
    - `residual`: $\\max_i |f_i(\\phi) - \\Omega|$ at the returned state.
    - `converged`: whether Newton met the tolerance.
    - `eigenvalues`: spectrum of the reduced Jacobian (the rotational zero mode
      removed; see the module docstring), by decreasing real part.
    - `max_real_eig`: the largest real part of `eigenvalues`.
    - `stable`: `max_real_eig < 0` (linear stability).
    """

    phi: np.ndarray
    Omega: float
    residual: float
    converged: bool
    eigenvalues: np.ndarray
    max_real_eig: float
    stable: bool


def locked_state(
    model: Kuramoto,
    phi_guess: PhasesLike,
    *,
    tol: float | None = None,
    max_steps: int = 50,
    throw: bool = True,
) -> LockedState:
    r"""Refine a guess to a phase-locked state $\theta_i(t) = \phi_i + \Omega t$.

    Solves $f_i(\phi) = \Omega$ by Newton's method (`optimistix.Newton` with
    `lineax.LU`), with $\phi_0 = 0$ pinned in the co-rotating frame (no forcing) or
    $\Omega = 0$ for a forced model, and reports its linear stability from the reduced
    Jacobian (module docstring). Runs in the dtype of `phi_guess` (float64 under
    `jax.enable_x64`).

    **Arguments:**

    - `model`: a `kl.Kuramoto` without noise, delays or schedules (any coupling, lag,
      constant forcing).
    - `phi_guess`: initial phases, shape `(osc,)`, e.g. the end state of `kl.simulate`
      in a locked regime.
    - `tol`: absolute tolerance on the residual, in frequency units (default
      $0.01\sqrt{\epsilon}\,\max(1, \max_i|\omega_i|)$: 1.5e-10 in float64). Keyword
      only.
    - `max_steps`: Newton iterations at most (default 50). Keyword only.
    - `throw`: raise a `ValueError` when Newton does not converge (default); with
      `False` the result says `converged = False` instead. Keyword only.

    **Returns:** a `kl.LockedState(phi, Omega, residual, converged, eigenvalues,
    max_real_eig, stable)`.
    """
    symmetric = _check_model(model, "`model`")
    _check_phi("phi_guess", phi_guess, model.n_osc)
    _check_tol(tol)
    max_steps = _check_positive_int("max_steps", max_steps)
    dtype = _float_dtype(phi_guess)
    tol = _default_tol(dtype, model) if tol is None else float(tol)
    solve = _Solver(_Fixed(model), symmetric, tol, max_steps, dtype)
    X0 = _initial_X(model, phi_guess, symmetric, 0.0, dtype)
    e_p = np.zeros_like(X0)
    e_p[-1] = 1.0
    pt = solve(X0, e_p, e_p)
    if not pt.ok and throw:
        raise ValueError(
            f"Newton did not converge from `phi_guess` to a locked state (residual "
            f"{pt.residual:.3g} > tol {tol:.3g} after at most {max_steps} steps): the "
            "network may not lock at these parameters, or the guess is too far; try "
            "the end state of kl.simulate, or throw=False"
        )
    phi, Omega = _state(pt.X, symmetric)
    eig = pt.eigenvalues()
    max_re = float(eig.real.max())
    return LockedState(
        phi=_wrap(phi),
        Omega=Omega,
        residual=pt.residual,
        converged=pt.ok,
        eigenvalues=eig,
        max_real_eig=max_re,
        stable=max_re < 0,
    )


def _state(X: np.ndarray, symmetric: bool) -> tuple[np.ndarray, float]:
    if symmetric:
        return np.concatenate([[0.0], X[:-2]]), float(X[-2])
    return X[:-1].copy(), 0.0
