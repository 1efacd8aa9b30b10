"""Assertions for checking oscillator models and theorems (public, like `xarray.testing`).

- `assert_phase_allclose(actual, desired)`: compare phases modulo 2 pi.
- `tree_allclose(x, y)`: compare two PyTrees of arrays.
- `check_model_contract(model, y0)`: the interface every kuralab model must satisfy
  (shapes, dtypes, `jit`/`vmap`/`grad` through `simulate`, state on its manifold, a PyTree
  with no hidden arrays). New models call it in their tests.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._integrate import simulate
from ._models.base import AbstractModel


def assert_phase_allclose(actual, desired, *, atol: float = 1e-6, err_msg: str = ""):
    """Assert `|wrap(actual - desired)| <= atol` elementwise (phases in radians).

    Phases that differ by a multiple of 2 pi are equal. Raises `AssertionError` with the
    largest wrapped difference and where it occurs.
    """
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    try:
        a, d = np.broadcast_arrays(a, d)
    except ValueError:
        raise AssertionError(
            f"phase arrays have incompatible shapes {a.shape} and {d.shape}"
        ) from None
    # In NumPy float64: `wrap_phase` on a NumPy array would run in float32 unless x64
    # is enabled, which limits the comparison to ~1e-7 |phase|.
    raw = a - d
    diff = np.abs(raw - 2 * np.pi * np.round(raw / (2 * np.pi)))
    if not np.all(np.isfinite(diff)):
        raise AssertionError(f"non-finite phases. {err_msg}")
    if diff.size and diff.max() > atol:
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        raise AssertionError(
            f"phases differ modulo 2pi by up to {diff.max():.3g} rad at index {idx} "
            f"(atol={atol:g}; {int(np.sum(diff > atol))} of {diff.size} elements "
            f"exceed it). {err_msg}"
        )


def tree_allclose(x, y, *, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """True if two PyTrees have the same structure and allclose array leaves."""
    if jax.tree_util.tree_structure(x) != jax.tree_util.tree_structure(y):
        return False
    for a, b in zip(
        jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y), strict=True
    ):
        if eqx.is_array_like(a) and eqx.is_array_like(b):
            if np.shape(a) != np.shape(b):
                return False
            if not np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol):
                return False
        elif a != b:
            return False
    return True


def _hidden_arrays(module, path: str) -> list[str]:
    """Paths of arrays stored in static fields (invisible to jit/vmap/grad)."""
    found = []
    if not isinstance(module, eqx.Module):
        return found
    for field in dataclasses.fields(module):
        value = getattr(module, field.name, None)
        sub = f"{path}.{field.name}"
        if field.metadata.get("static", False):
            leaves = jax.tree_util.tree_leaves(value)
            if any(isinstance(v, jax.Array | np.ndarray) for v in leaves):
                found.append(sub)
        else:
            for i, child in enumerate(
                jax.tree_util.tree_leaves(value, is_leaf=lambda v: isinstance(v, eqx.Module))
            ):
                if isinstance(child, eqx.Module):
                    found += _hidden_arrays(child, f"{sub}[{i}]")
    return found


def _on_manifold(model: AbstractModel, ys) -> str | None:
    """A state is on the model's manifold iff its retraction leaves it unchanged."""
    ys = jnp.asarray(ys)
    if not bool(jnp.all(jnp.isfinite(ys))):
        return "state is not finite"
    projected = jax.vmap(model.project)(ys)
    defect = float(jnp.max(jnp.abs(projected - ys)))
    tol = 1e-4 if ys.dtype == jnp.float32 else 1e-10
    if defect > tol:
        return (
            f"saved states leave the {model.manifold} manifold: max |project(y) - y| = "
            f"{defect:.3g}"
        )
    return None


def _check_layout(model: AbstractModel, y0) -> None:
    name = type(model).__name__
    y, aux = model.pack(y0)
    if jnp.shape(y) != y0.shape:
        raise AssertionError(f"{name}.pack(y0)[0] has shape {jnp.shape(y)}, not {y0.shape}")
    y2, aux2 = model.retract((y, aux))
    if not tree_allclose((y, aux), (y2, aux2), rtol=0, atol=1e-6):
        raise AssertionError(f"{name}.retract is not idempotent on a packed state")
    d = model.difference(y, y)
    if jnp.shape(d) != y0.shape or float(jnp.max(jnp.abs(d))) != 0.0:
        raise AssertionError(f"{name}.difference(y, y) is not zero of the state's shape")


def _check_energy(model: AbstractModel, y0) -> None:
    if not type(model).has_energy():
        return
    name = type(model).__name__
    y = model.project(y0)
    e = model.energy(y, 0.0)
    if jnp.shape(e) != () or not bool(jnp.isfinite(e)):
        raise AssertionError(f"{name}.energy(y) is not a finite scalar: {e!r}")
    g = jax.grad(lambda yy: model.energy(yy, 0.0))(y)
    if jnp.shape(g) != y0.shape or not bool(jnp.all(jnp.isfinite(g))):
        raise AssertionError(f"{name}.energy is not differentiable in the state")
    scale = model.energy_scale(y, 0.0)
    if jnp.shape(scale) != () or not float(scale) >= 0:
        raise AssertionError(f"{name}.energy_scale(y) is not a scalar >= 0: {scale!r}")


def check_model_contract(
    model: AbstractModel,
    y0,
    *,
    t1: float = 0.5,
    dt: float = 0.05,
    solver: str = "rk4",
    key=None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Check the interface every kuralab model must pass; raise `AssertionError` if not.

    Checks, in order:

    1. `model` is an `AbstractModel` and an Equinox PyTree with no arrays hidden in
       static fields (so `jit`, `vmap` and `grad` see every parameter).
    2. `drift(t0, y0)` has the state's shape and floating dtype; `state_shape` matches `y0`.
    3. the layout: `pack(y0)` keeps the state's shape, `retract` is idempotent on a
       packed state, `difference(y, y) == 0`; where the model defines `energy`, it is a
       finite scalar, differentiable in the state, with a scalar `energy_scale >= 0`.
    4. `simulate` returns `ys` of shape `(time, *state_shape)`, finite, on the manifold
       (`project(y) == y`: phases in [-pi, pi), unit vectors of norm 1, ...).
    5. `jax.jit` of `simulate` equals the eager call.
    6. `jax.vmap` over a batch of two initial states equals two separate calls.
    7. `jax.grad` of a smooth loss of the final state with respect to the model's
       floating parameters is finite, and agrees with a central finite difference along a
       random direction.
    """
    name = type(model).__name__
    if not isinstance(model, AbstractModel):
        raise AssertionError(f"{name} is not a kuralab AbstractModel")
    hidden = _hidden_arrays(model, name)
    if hidden:
        raise AssertionError(f"arrays hidden in static fields: {hidden}")
    y0 = jnp.asarray(y0)
    if tuple(model.state_shape) != tuple(y0.shape):
        raise AssertionError(
            f"{name}.state_shape {model.state_shape} != y0.shape {y0.shape}"
        )
    d = model.drift(0.0, model.project(y0))
    if jnp.shape(d) != y0.shape or not jnp.issubdtype(jnp.asarray(d).dtype, jnp.floating):
        raise AssertionError(
            f"drift has shape {jnp.shape(d)} / dtype {jnp.asarray(d).dtype}; expected "
            f"{y0.shape} floating"
        )
    _check_layout(model, y0)
    _check_energy(model, y0)

    kwargs = dict(t1=t1, dt=dt, solver=solver, key=key)
    traj = simulate(model, y0, **kwargs)
    n_steps = round(t1 / dt)
    expected = (n_steps + 1, *y0.shape)
    if tuple(traj.ys.shape) != expected:
        raise AssertionError(f"ys has shape {traj.ys.shape}; expected {expected}")
    problem = _on_manifold(model, traj.ys)
    if problem:
        raise AssertionError(f"{name}: {problem}")

    def final(m, y):
        # Same save policy as above: one compiled solve serves eager calls.
        return simulate(m, y, **kwargs).final

    eager = traj.final
    jitted = eqx.filter_jit(final)(model, y0)
    if not tree_allclose(eager, jitted, rtol=rtol, atol=atol):
        raise AssertionError(f"{name}: jit(simulate) differs from eager simulate")

    y_other = model.project(y0 + 0.3)
    batched = jax.vmap(final, in_axes=(None, 0))(model, jnp.stack([y0, y_other]))
    single = jnp.stack([eager, final(model, y_other)])
    if not tree_allclose(batched, single, rtol=rtol, atol=atol):
        raise AssertionError(f"{name}: vmap(simulate) differs from separate calls")

    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(p):
        y = final(eqx.combine(p, static), y0)
        return jnp.sum(jnp.cos(y)) + jnp.sum(jnp.sin(2 * y))

    grads = eqx.filter_grad(loss)(params)
    leaves = jax.tree_util.tree_leaves(grads)
    if not leaves:
        raise AssertionError(f"{name} has no floating parameters to differentiate")
    if not all(bool(jnp.all(jnp.isfinite(g))) for g in leaves):
        raise AssertionError(f"{name}: grad through simulate is not finite")
    rng = np.random.default_rng(0)
    direction = jax.tree_util.tree_map(
        lambda p: jnp.asarray(rng.standard_normal(p.shape), p.dtype), params
    )
    norm = math.sqrt(sum(float(jnp.sum(v**2)) for v in jax.tree_util.tree_leaves(direction)))
    eps = 1e-3 if y0.dtype == jnp.float32 else 1e-6

    def central(h):
        step = jax.tree_util.tree_map(lambda v: v * (h / norm), direction)
        plus = jax.tree_util.tree_map(jnp.add, params, step)
        minus = jax.tree_util.tree_map(jnp.subtract, params, step)
        return (float(loss(plus)) - float(loss(minus))) / (2 * h)

    fd = central(eps)
    ad = sum(
        float(jnp.sum(g * v))
        for g, v in zip(leaves, jax.tree_util.tree_leaves(direction), strict=True)
    ) / norm
    if y0.dtype == jnp.float32:
        # Error budget of the central difference in float32: each loss is a sum of
        # 2 * size terms of magnitude <= 1, each rounded (unit roundoff u), so the
        # quotient carries up to 4 u (2 size) / (2 eps); the truncation error
        # (~eps^2) is bounded by Richardson: |fd(eps) - fd(2 eps)| = 3 x its size. A
        # gradient wrong by 10% exceeds this by one to two orders at the sizes here.
        u = float(jnp.finfo(jnp.float32).eps) / 2
        tol = 4 * u * 2 * y0.size / eps + 3 * abs(fd - central(2 * eps))
    else:
        tol = 1e-5 * max(1.0, abs(fd))
    if abs(fd - ad) > tol:
        raise AssertionError(
            f"{name}: grad through simulate disagrees with finite differences "
            f"(autodiff {ad:.6g}, central difference {fd:.6g}, |difference| "
            f"{abs(fd - ad):.3g} > error budget {tol:.3g})"
        )
