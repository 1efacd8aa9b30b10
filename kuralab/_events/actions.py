"""What an event does: the actions of `kl.simulate_events` (`ScaleCoupling`,
`RemoveEdges`, `Kick`, `SetParameter`, `Stop`).

An action is an Equinox module with two methods:

- `check(model, y0)`: raise a one-line `ValueError`/`TypeError` before anything runs if
  the action cannot apply to this model (no coupling strength, edge indices out of
  range, a kick of the wrong shape, ...);
- `apply(model, y, model0) -> (model, y)`: the changed model and state, as pure JAX
  (it runs inside the compiled event loop). `model0` is the model the run started with,
  so that `ScaleCoupling` scales relative to the original strength (switching the
  coupling off and on again restores it exactly).

Every action keeps the model's PyTree structure and array shapes (edges are removed by
zeroing their weights, not by shortening the edge list), which is what lets the whole
event loop be one `lax.scan` under `jit`/`vmap`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Int

from .._coupling.phase import DenseCoupling, SparseCoupling
from .._misc import is_concrete
from .._schedules import AbstractSchedule

__all__ = [
    "AbstractAction",
    "Kick",
    "RemoveEdges",
    "ScaleCoupling",
    "SetParameter",
    "Stop",
]


class AbstractAction(eqx.Module):
    """Base class of event actions (see the module docstring)."""

    stops: ClassVar[bool] = False

    def check(self, model, y0) -> None:
        """Raise a one-line error if this action cannot apply to `model`."""

    def apply(self, model, y, model0):
        """Return `(model, y)` after the action."""
        return model, y


def _coupling(model, action: str):
    fields = {f.name for f in dataclasses.fields(model)}
    if "coupling" not in fields:
        raise ValueError(
            f"{action} needs a model with a `coupling`; {type(model).__name__} has none"
        )
    return model.coupling


def _strength_name(coupling) -> str:
    fields = {f.name for f in dataclasses.fields(coupling)}
    for name in ("K", "strength"):
        if name in fields:
            value = getattr(coupling, name)
            if isinstance(value, AbstractSchedule):
                raise ValueError(
                    f"ScaleCoupling needs a constant coupling strength; "
                    f"{type(coupling).__name__}.{name} is a schedule (put the "
                    "switching into the schedule instead)"
                )
            return name
    raise ValueError(
        f"ScaleCoupling: {type(coupling).__name__} has no scalar strength (`K` or "
        "`strength`) to scale"
    )


class ScaleCoupling(AbstractAction):
    """Set the coupling strength to `factor` times the strength the run started with.

    `ScaleCoupling(0.0)` switches the coupling off, `ScaleCoupling(1.0)` back on (to
    the original value, exactly), `ScaleCoupling(2.0)` doubles it. Acts on `K` of
    `kl.MeanField` and on `strength` of the other couplings (a constant, not a
    schedule).
    """

    factor: Array

    def __init__(self, factor: float | ArrayLike):
        factor = jnp.asarray(factor)
        if factor.ndim != 0 or not jnp.issubdtype(factor.dtype, jnp.number):
            raise ValueError(
                f"ScaleCoupling `factor` must be a real scalar; got shape {factor.shape}"
            )
        if is_concrete(factor) and not np.isfinite(np.asarray(factor)):
            raise ValueError(f"ScaleCoupling `factor` must be finite; got {factor}")
        self.factor = factor

    def check(self, model, y0) -> None:
        _strength_name(_coupling(model, "ScaleCoupling"))

    def apply(self, model, y, model0):
        name = _strength_name(model.coupling)
        s0 = jnp.asarray(getattr(model0.coupling, name))
        new = (self.factor * s0).astype(s0.dtype)
        return eqx.tree_at(lambda m: getattr(m.coupling, name), model, new), y


class RemoveEdges(AbstractAction):
    """Cut edges `senders[e] -> receivers[e]` (entry `K[receiver, sender]`) of a
    `kl.DenseCoupling` (the matrix entry is set to 0) or a `kl.SparseCoupling` (every
    matching edge's weight is set to 0; the edge list keeps its length, so memory stays
    O(edges)).

    **Arguments:**

    - `receivers`, `senders`: int arrays of shape `(m,)`, oscillator indices in
      `[0, N)`. To cut both directions of an undirected edge, list both.
    """

    receivers: Int[Array, " m"]
    senders: Int[Array, " m"]

    def __init__(self, receivers: Int[ArrayLike, " m"], senders: Int[ArrayLike, " m"]):
        r, s = jnp.atleast_1d(jnp.asarray(receivers)), jnp.atleast_1d(jnp.asarray(senders))
        if (
            r.ndim != 1
            or r.shape != s.shape
            or not jnp.issubdtype(r.dtype, jnp.integer)
            or not jnp.issubdtype(s.dtype, jnp.integer)
        ):
            raise ValueError(
                "RemoveEdges `receivers` and `senders` must be 1-D int arrays of equal "
                f"length; got shapes {r.shape} and {s.shape}"
            )
        self.receivers, self.senders = r, s

    def check(self, model, y0) -> None:
        coupling = _coupling(model, "RemoveEdges")
        if not isinstance(coupling, DenseCoupling | SparseCoupling):
            raise ValueError(
                "RemoveEdges needs a kl.DenseCoupling or kl.SparseCoupling; got "
                f"{type(coupling).__name__} (which has no edges to cut)"
            )
        n = coupling.n_osc
        for name, idx in (("receivers", self.receivers), ("senders", self.senders)):
            if is_concrete(idx) and idx.size and (
                int(jnp.min(idx)) < 0 or int(jnp.max(idx)) >= n
            ):
                raise ValueError(
                    f"RemoveEdges `{name}` must be oscillator indices in [0, {n}); got "
                    f"range [{int(jnp.min(idx))}, {int(jnp.max(idx))}]"
                )

    def apply(self, model, y, model0):
        c = model.coupling
        if isinstance(c, DenseCoupling):
            m = c.matrix.at[self.receivers, self.senders].set(0)
            return eqx.tree_at(lambda mo: mo.coupling.matrix, model, m), y
        hit = jnp.any(
            (c.receivers[:, None] == self.receivers[None, :])
            & (c.senders[:, None] == self.senders[None, :]),
            axis=1,
        )
        w = jnp.where(hit, jnp.zeros_like(c.weights), c.weights)
        return eqx.tree_at(lambda mo: mo.coupling.weights, model, w), y


class Kick(AbstractAction):
    """Add `delta` to the state (a phase kick for phase models: `theta <- theta +
    delta`, then wrapped; for other models the state is retracted onto its manifold).

    **Arguments:**

    - `delta`: array broadcastable to the model's state shape (radians for phases),
      e.g. a scalar, or `(osc,)` with zeros for the oscillators left alone.
    """

    delta: Array

    def __init__(self, delta: ArrayLike):
        self.delta = jnp.asarray(delta)
        if is_concrete(self.delta) and not np.all(np.isfinite(np.asarray(self.delta))):
            raise ValueError("Kick `delta` must be finite")

    def check(self, model, y0) -> None:
        try:
            shape = np.broadcast_shapes(self.delta.shape, jnp.shape(y0))
        except ValueError:
            shape = None
        if shape != jnp.shape(y0):
            raise ValueError(
                f"Kick `delta` must broadcast to the state shape {jnp.shape(y0)}; got "
                f"shape {self.delta.shape}"
            )

    def apply(self, model, y, model0):
        return model, y + self.delta.astype(y.dtype)


def _path(where: str | Callable) -> Callable:
    if callable(where):
        return where
    parts = where.split(".")

    def get(model):
        for p in parts:
            model = getattr(model, p)
        return model

    return get


class SetParameter(AbstractAction):
    """Set one model parameter to `value`.

    **Arguments:**

    - `where`: a dotted field path such as `"omega"`, `"lag"` or `"coupling.K"`, or a
      function `model -> leaf` as for `eqx.tree_at` (e.g. `lambda m: m.forcing.strength`).
    - `value`: the new value, broadcast to the parameter's shape and cast to its dtype.
    """

    where: str | Callable = eqx.field(static=True)
    value: Array

    def __init__(self, where: str | Callable, value: ArrayLike):
        if not (callable(where) or (isinstance(where, str) and where)):
            raise TypeError(
                "SetParameter `where` must be a dotted field path such as 'omega' or a "
                f"function model -> leaf; got {where!r}"
            )
        self.where = where
        self.value = jnp.asarray(value)

    def check(self, model, y0) -> None:
        try:
            old = _path(self.where)(model)
        except AttributeError as err:
            raise ValueError(
                f"SetParameter `where`={self.where!r} does not name a parameter of "
                f"{type(model).__name__}: {err}"
            ) from None
        if isinstance(old, AbstractSchedule) or not eqx.is_array_like(old):
            raise ValueError(
                f"SetParameter `where`={self.where!r} must name an array parameter; got "
                f"{type(old).__name__}"
            )
        shape = jnp.shape(old)
        try:
            ok = np.broadcast_shapes(self.value.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"SetParameter `value` must broadcast to the shape {shape} of "
                f"{self.where!r}; got shape {self.value.shape}"
            )

    def apply(self, model, y, model0):
        get = _path(self.where)
        old = jnp.asarray(get(model))
        new = jnp.broadcast_to(self.value, old.shape).astype(old.dtype)
        return eqx.tree_at(get, model, new), y


class Stop(AbstractAction):
    """End the run at the event (the final state is the state at the event time)."""

    stops: ClassVar[bool] = True
