"""Frequency densities for `kl.theory`: the named ones, tabulated and callable
densities (validated: symmetric, unimodal, normalised), argument checks, and the
bracketed root solve on [0, 1] shared by the self-consistency equations."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, TypeAlias

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike

from ._custom_types import GridLike
from ._misc import is_concrete, nearest

_SQRT_2PI = math.sqrt(2.0 * math.pi)


class _Density(NamedTuple):
    """A unit-width density as a pytree: a table's arrays are leaves (traced by
    `eqx.filter_jit`, so one compilation serves every table of a shape), while
    functions and Python numbers are static."""

    pdf: Callable  # g(omega) for scale 1 (jax-traceable; a function or a _TablePDF)
    g0: ArrayLike  # g(0) for scale 1
    support: ArrayLike | None  # half-width of the support for scale 1; None: unbounded


class _TablePDF(eqx.Module):
    """Linear interpolation of a table, 0 outside it."""

    omega: Array
    g: Array

    def __call__(self, w):
        w = jnp.asarray(w)
        omega, g = self.omega.astype(w.dtype), self.g.astype(w.dtype)
        return jnp.interp(w, omega, g, left=0.0, right=0.0)


_DENSITIES: dict[str, _Density] = {
    "lorentzian": _Density(
        lambda w: 1.0 / (math.pi * (w * w + 1.0)), 1 / math.pi, None
    ),
    "gaussian": _Density(
        lambda w: jnp.exp(-0.5 * w * w) / _SQRT_2PI, 1 / _SQRT_2PI, None
    ),
    "uniform": _Density(lambda w: jnp.where(jnp.abs(w) <= 1.0, 0.5, 0.0), 0.5, 1.0),
}

#: Names of the frequency densities known to `kl.theory`.
DISTRIBUTIONS = tuple(_DENSITIES)


class Tabulated(NamedTuple):
    r"""A frequency density $g(\omega)$ given by its values on a grid.

    `kl.theory.Tabulated(omega, density)` can be passed as the `distribution` of
    `critical_coupling`, `order_parameter` and `noisy_critical_coupling`. Between grid
    points $g$ is interpolated linearly; outside the grid it is 0. The table is taken
    at unit width (`scale` stretches it).

    The theory in this module assumes a **symmetric, unimodal** $g$ (peak at
    $\omega = 0$), and the table is checked for it: it must be finite and
    non-negative, symmetric ($|g(\omega) - g(-\omega)| \le 2\%$ of $g(0)$), non-increasing
    in $|\omega|$ (within the same tolerance) and integrate to 1 within 2% (trapezoid
    rule); it is then divided by its integral. Each failure raises a `ValueError`
    saying which. A bimodal or asymmetric $g$ is rejected rather than approximated:
    its transition need not be the stationary, supercritical one computed here
    (a bimodal $g$ can synchronise through standing waves or a first-order jump; an
    asymmetric one has a drifting, rotating locked state). Centre a shifted density
    first (go to the rotating frame, $\omega \to \omega - \omega_0$), and symmetrise a
    histogram as $[g(\omega) + g(-\omega)]/2$.

    **Attributes:**

    - `omega`: strictly increasing 1-D grid of at least 3 frequencies. Either spanning
      both signs, or starting at $\omega = 0$ (then it is the right half of an even
      density, mirrored to $\omega < 0$).
    - `density`: $g$ at the grid points, same shape.

    Both must be concrete (the checks run in NumPy when the table is used), so a table
    cannot be traced or differentiated through; $K$ and `scale` can.
    """

    omega: GridLike
    density: GridLike


#: What `kl.theory` accepts as a frequency density: a name of `DISTRIBUTIONS` (or
#: `"identical"` where noise is named), a `Tabulated` table or a callable `g(omega)`.
Distribution: TypeAlias = str | Tabulated | Callable[[Array], Array]

#: Relative tolerance of the symmetry, monotonicity and normalisation checks on a
#: tabulated or callable density.
_SHAPE_RTOL = 0.02


def _named_density(distribution: str) -> _Density:
    if distribution not in _DENSITIES:
        raise ValueError(
            f"`distribution` must be one of {DISTRIBUTIONS}, a "
            f"kl.theory.Tabulated(omega, density) or a callable g(omega); got "
            f"{distribution!r}" + nearest(distribution, DISTRIBUTIONS)
        )
    return _DENSITIES[distribution]


def _tabulated_density(table: Tabulated) -> _Density:
    omega = np.asarray(table.omega, dtype=np.float64)
    g = np.asarray(table.density, dtype=np.float64)
    if omega.ndim != 1 or g.shape != omega.shape or omega.size < 3:
        raise ValueError(
            "Tabulated `omega` and `density` must be 1-D of the same length >= 3; got "
            f"shapes {omega.shape} and {g.shape}"
        )
    if not (np.all(np.isfinite(omega)) and np.all(np.isfinite(g))):
        raise ValueError("Tabulated `omega` and `density` must be finite")
    if np.any(np.diff(omega) <= 0):
        raise ValueError("Tabulated `omega` must be strictly increasing")
    if np.any(g < 0):
        raise ValueError(
            f"Tabulated `density` must be >= 0; its minimum is {g.min():.3g}"
        )
    if omega[0] == 0.0:  # the right half of an even density
        omega = np.concatenate([-omega[:0:-1], omega])
        g = np.concatenate([g[:0:-1], g])
    elif omega[0] > 0:
        raise ValueError(
            "Tabulated `omega` must span both signs or start at 0 (one-sided, mirrored); "
            f"it starts at {omega[0]:g}. The theory assumes g symmetric about 0: shift "
            "the frequencies to the rotating frame first"
        )
    mass = float(np.trapezoid(g, omega))
    if not abs(mass - 1.0) <= _SHAPE_RTOL:
        raise ValueError(
            f"Tabulated `density` must integrate to 1 (within {_SHAPE_RTOL:.0%}); its "
            f"trapezoid integral over the grid is {mass:.4g}. Normalise it, or extend "
            "the grid if it cuts off the tails"
        )
    g = g / mass
    g0 = float(np.interp(0.0, omega, g))
    if not g0 > 0:
        raise ValueError("Tabulated `density` must be > 0 at omega = 0 (its peak)")
    tol = _SHAPE_RTOL * g0
    both = np.concatenate([omega, -omega])
    mirror_gap = np.abs(
        np.interp(both, omega, g, left=0.0, right=0.0)
        - np.interp(-both, omega, g, left=0.0, right=0.0)
    ).max()
    if mirror_gap > tol:
        raise ValueError(
            "Tabulated `density` must be symmetric, g(omega) = g(-omega) (the theory "
            f"assumes it); |g(omega) - g(-omega)| reaches {mirror_gap / g0:.1%} of g(0). "
            "Shift to the frame of the centre frequency, or symmetrise a histogram as "
            "(g(omega) + g(-omega)) / 2"
        )
    right = np.concatenate([[g0], g[omega > 0]])
    rise = np.maximum.accumulate(right[::-1])[::-1] - right  # later peak above a value
    if rise.max() > tol:
        raise ValueError(
            "Tabulated `density` must be unimodal with its peak at omega = 0 (the "
            "self-consistency theory here assumes it); g rises again by "
            f"{rise.max() / g0:.1%} of g(0) away from 0. A bimodal g can synchronise "
            "through standing waves or a first-order jump, which kl.theory does not "
            "compute"
        )
    support = max(-omega[0], omega[-1])
    pdf = _TablePDF(jnp.asarray(omega), jnp.asarray(g))
    return _Density(pdf, jnp.asarray(g0), jnp.asarray(support))


def _callable_density(pdf: Callable) -> _Density:
    # Light checks at a few points, and the mass by a tan-substitution quadrature
    # (loose: a compact density with a jump is integrated only to ~1/nodes).
    with jax.ensure_compile_time_eval():
        probe = np.asarray([0.0, 0.1, 0.3, 0.7, 1.0, 1.5, 2.5, 4.0])
        try:
            values = np.asarray(pdf(jnp.asarray(np.concatenate([probe, -probe]))))
        except Exception as err:
            raise ValueError(
                "a callable `distribution` must map an array of frequencies to an "
                f"array of densities g(omega) (jax-traceable); calling it failed: {err}"
            ) from err
        if values.shape != (2 * probe.size,) or not np.all(np.isfinite(values)):
            raise ValueError(
                "a callable `distribution` must return finite values of the same shape "
                "as its argument"
            )
        plus, minus = values[: probe.size], values[probe.size :]
        g0 = float(plus[0])
        if not g0 > 0 or np.any(values < 0):
            raise ValueError(
                "a callable `distribution` must be a density >= 0 with g(0) > 0"
            )
        if np.abs(plus - minus).max() > _SHAPE_RTOL * g0 or np.any(
            np.diff(plus) > _SHAPE_RTOL * g0
        ):
            raise ValueError(
                "a callable `distribution` must be symmetric and unimodal about 0 "
                "(g(omega) = g(-omega), non-increasing in |omega|); it is not at the "
                f"probe points {probe.tolist()}"
            )
        x, w = np.polynomial.legendre.leggauss(512)
        phi = 0.5 * math.pi * x
        mass = float(
            np.sum(
                0.5
                * math.pi
                * w
                * np.asarray(pdf(jnp.asarray(np.tan(phi))))
                / np.cos(phi) ** 2
            )
        )
        if not abs(mass - 1.0) <= 5 * _SHAPE_RTOL:  # 10%
            raise ValueError(
                "a callable `distribution` must be normalised (integrate to 1); its "
                f"integral is about {mass:.3g}"
            )
    return _Density(pdf, g0, None)


def _density(distribution) -> _Density:
    if isinstance(distribution, _Density):
        return distribution
    if isinstance(distribution, str):
        return _named_density(distribution)
    if isinstance(distribution, Tabulated):
        return _tabulated_density(distribution)
    if isinstance(distribution, tuple) and len(distribution) == 2:
        return _tabulated_density(Tabulated(*distribution))
    if callable(distribution):
        return _callable_density(distribution)
    raise ValueError(
        f"`distribution` must be one of {DISTRIBUTIONS}, a "
        "kl.theory.Tabulated(omega, density) or a callable g(omega); got "
        f"{type(distribution).__name__} {distribution!r}"
    )


def _as_float(name: str, x) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"`{name}` must be finite; got {x}")
    return x


def _check_positive(name: str, x, what: str) -> Array:
    x = _as_float(name, x)
    if is_concrete(x) and np.any(np.asarray(x) <= 0):
        raise ValueError(f"`{name}` must be > 0 ({what}); got {x}")
    return x


def _check_scale(scale) -> Array:
    return _check_positive("scale", scale, "the width of g")


def _root_in_unit_interval(residual: Callable, args) -> Array:
    r"""The root in $(0, 1)$ of a scalar residual that decreases through 0 there.

    `optimistix.Bisection` on the bracket $[0, 1]$ (the callers guarantee
    `residual(0) > 0 > residual(1)`), to a few float eps of the dtype of `args`;
    derivatives with respect to `args` come from the implicit function theorem
    (`optimistix.ImplicitAdjoint`), so they are exact, not unrolled.
    """
    dtype = jax.tree_util.tree_leaves(args)[0].dtype
    eps = float(jnp.finfo(dtype).eps)
    tol = 8 * eps
    solver = optx.Bisection(rtol=tol, atol=tol, flip=True)
    # A bracketed bisection cannot fail. Should float noise keep |residual| above
    # `atol` once the bracket has shrunk to float resolution, it stops at `max_steps`
    # with that bracket's midpoint, which is then the answer: hence `throw=False`.
    sol = optx.root_find(
        residual,
        solver,
        jnp.asarray(0.5, dtype),
        args,
        options=dict(lower=0.0, upper=1.0),
        max_steps=256,
        throw=False,
    )
    return sol.value
