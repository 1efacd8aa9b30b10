"""The abstract model contract.

A model describes ONE system: the manifold its state lives on, its drift, and optionally
its noise, per-sender delays and energy. Batches, seeds and parameter grids come from
`jax.vmap` around `kl.simulate`, never from a hidden batch axis.

Integration (`kl.simulate`) relies only on this contract:

- `manifold`: `"torus"` (phases, wrapped to [-pi, pi) after every step, winding numbers
  kept separately) or `"sphere"` (unit vectors, renormalised after every step).
- `state_shape`: the shape of one state, e.g. `(osc,)` or `(osc, dim)`.
- `drift(t, y, y_delayed)`: the deterministic vector field. `y_delayed` is `None` for a
  model without delays, else the per-sender delayed state `y_j(t - tau_j)`.
- `diffusion(t, y)`: `None` for a deterministic model, else the diagonal noise amplitude
  `g(t, y)` with `dy = drift dt + g dW` (same shape as `y`).
- `sender_delays`: `None`, or a `kl.Delays` (per-sender delays `tau_j >= 0`).
- `project(y)`: the retraction onto the manifold.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from .._misc import wrap_phase


class AbstractModel(eqx.Module):
    """One oscillator system: state manifold, drift, optional noise and delays."""

    manifold: eqx.AbstractClassVar[str]

    @property
    @abc.abstractmethod
    def state_shape(self) -> tuple[int, ...]:
        """Shape of one state of this system."""

    @abc.abstractmethod
    def drift(self, t, y, y_delayed=None):
        """Deterministic vector field `dy/dt` at time `t` (same shape as `y`)."""

    @abc.abstractmethod
    def diffusion(self, t, y):
        """Diagonal noise amplitude `g(t, y)` (same shape as `y`), or `None`."""

    @property
    @abc.abstractmethod
    def sender_delays(self):
        """The model's `kl.Delays` (per-sender delays), or `None`."""

    @abc.abstractmethod
    def project(self, y):
        """Map `y` onto the state manifold (wrap phases, normalise vectors)."""


class AbstractPhaseModel(AbstractModel):
    """A model whose state is N phases on the torus, shape `(osc,)`."""

    manifold: ClassVar[str] = "torus"

    def project(self, y):
        return wrap_phase(y)


class AbstractSphereModel(AbstractModel):
    """A model whose state is N unit vectors, shape `(osc, dim)`."""

    manifold: ClassVar[str] = "sphere"

    def project(self, y):
        return y / jnp.linalg.norm(y, axis=-1, keepdims=True)
