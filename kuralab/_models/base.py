r"""The abstract model contract: everything `kl.simulate` needs, as methods.

A model describes ONE system: its state space, its drift, and optionally its noise,
per-sender delays and energy. Batches, seeds and parameter grids come from `jax.vmap`
around `kl.simulate`, never from a hidden batch axis.

`kl.simulate`, `kl.energy`, `kl.lyapunov_hypotheses`, the save path and
`kl.testing.check_model_contract` use only the methods below; none of them asks what
kind of model it has. A new state space is a new subclass, with no library change.

**The state and its layout.** `state_shape` is the shape of one state `y` (e.g. `(osc,)`
for phases, `(osc, dim)` for unit vectors, `(2, osc)` for a sheet of second-order units
`(h, v)`). Inside the solver the state travels as the pair `Y = (y, aux)`:

- `pack(y) -> (y, aux)` builds it from a user's state (projected onto the manifold);
- `retract((y, aux)) -> (y, aux)` maps the end-of-step state back onto the manifold;
  `aux` is the retraction's bookkeeping (the winding numbers of wrapped phases), `None`
  for a model that needs none. `aux` has zero drift and zero noise.
- `project(y)` is the retraction on the state alone (wrap phases, normalise vectors,
  identity on a vector space); a state is on the manifold iff `project(y) == y`.
- `difference(y1, y0)` is the displacement from `y0` to `y1` (`y1 - y0` on a vector
  space, wrapped on the torus); the delay history interpolates along it.

**The dynamics.** `drift(t, y, y_delayed)` is the deterministic vector field
(`y_delayed` is `None` for an undelayed model, else the per-sender delayed state
$y_j(t - \tau_j)$, same shape as `y`, or with per-edge delays the `(edges, ...)` states
$y_{s_e}(t - \tau_e)$ of the senders `delay_sources()`); `diffusion(t, y)` the diagonal
noise amplitude `g` in $dy = f\,dt + g\,dW$ (or `None`); `sender_delays` a `kl.Delays`
or `kl.EdgeDelays` (or `None`).
Correlated noise: `noise_field(t, y)` (a `NoiseField`, else `None`) driven by a Brownian
motion of shape `noise_shape`; multiplicative (Stratonovich) noise: `ito_correction(t, y)`
(else `None`), added to the drift by solvers that converge to the Ito solution.

**Optional.** `energy(y, t)` (a scalar; override it and `kl.energy` works),
`energy_scale(y, t)` (the size of the energy's rounding error), `logged_energies(y, t)`
(extra energy-like series `kl.check_lyapunov` reports, described by the class's
`logged_energy_descriptions`), and `lyapunov_hypotheses(...)`
(the hypotheses of the theorem that makes `energy` a Lyapunov function).

**Metadata for datasets.** `state_dims` (dimension names of one state, from
`kuralab._names`), `state_name`, `state_units`, `manifold` (a descriptive name).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _names as names
from .._custom_types import RealLike, Scalar, ScalarLike
from .._misc import _wrap_and_turns, wrap_phase


@dataclasses.dataclass(frozen=True)
class LyapunovHypotheses:
    """What a model reports about its energy theorem (`AbstractModel.lyapunov_hypotheses`).

    - `defects`: hypothesis name -> relative size of its violation (0 = holds exactly,
      NaN = not applicable), in report order.
    - `descriptions`: hypothesis name -> one-line statement.
    - `theorem`: given `{name: holds}`, the theorem whose hypotheses all hold, or
      `"none"`.
    """

    defects: dict[str, float]
    descriptions: dict[str, str]
    theorem: Callable[[dict[str, bool]], str]


class AbstractModel(eqx.Module):
    """One dynamical system: state space, drift, optional noise, delays and energy.

    Subclasses implement `state_shape` and `drift`; everything else has a default for
    a deterministic, undelayed system on a vector space with no energy.
    """

    #: Descriptive name of the state space (provenance only; nothing branches on it).
    manifold: ClassVar[str] = "euclidean"
    #: Dimension names of one state, for `Trajectory.to_dataset`.
    state_dims: ClassVar[tuple[str, ...]] = (names.OSC,)
    #: Variable name and units of the state in datasets.
    state_name: ClassVar[str] = "y"
    state_units: ClassVar[str] = "1"

    # -- state and layout -----------------------------------------------------------

    @property
    @abc.abstractmethod
    def state_shape(self) -> tuple[int, ...]:
        """Shape of one state of this system."""

    def project(self, y):
        """Map `y` onto the state space (identity on a vector space)."""
        return y

    def pack(self, y) -> tuple[Any, Any]:
        """The solver's internal state `(y, aux)` for a state `y` (projected)."""
        return (self.project(y), None)

    def retract(self, Y) -> tuple[Any, Any]:
        """Retract the end-of-step internal state `(y, aux)` onto the state space."""
        y, aux = Y
        return (self.project(y), aux)

    def difference(self, y1, y0):
        """Displacement from `y0` to `y1` (used to interpolate delayed states)."""
        return y1 - y0

    # -- dynamics -------------------------------------------------------------------

    @abc.abstractmethod
    def drift(self, t: ScalarLike, y, y_delayed=None):
        """Deterministic vector field `dy/dt` at time `t` (same shape as `y`)."""

    def diffusion(self, t, y):
        """Diagonal noise amplitude `g(t, y)` (same shape as `y`), or `None`. With
        correlated noise (`noise_field`) it is each node's amplitude."""
        return None

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape of the standard Brownian motion driving the noise (default: the
        state's; correlated noise may use more, e.g. `(osc + r,)` for r factors)."""
        return tuple(self.state_shape)

    def noise_field(self, t, y):
        """Correlated noise: a `NoiseField` mapping the Brownian increment (shape
        `noise_shape`) to the state's increment, or `None` (default) for diagonal
        noise `diffusion(t, y) * dW`."""
        return None

    def ito_correction(self, t, y):
        r"""Multiplicative noise read in the Stratonovich sense: the drift
        $\tfrac12 \sum_{jk} b_{jk} \partial_j b_{ik}$ that Ito solvers add, or
        `None` (default: additive noise, Ito = Stratonovich)."""
        return None

    @property
    def sender_delays(self):
        """The model's delays (`kl.Delays` per sender, `kl.EdgeDelays` per edge), or
        `None`."""
        return None

    def delay_sources(self):
        """For per-edge delays: the `(edges,)` int array of the oscillator each delayed
        read comes from (then `drift` gets `y_delayed` of shape `(edges, ...)`).
        `None` (default): one read per oscillator, `y_delayed` shaped like `y`."""
        return None

    def validate(self, t0: float, t1: float) -> None:
        """Checks that need the time span (e.g. a noise schedule non-negative on
        `[t0, t1]`); called eagerly by `kl.simulate`. Default: none."""

    # -- optional energy ------------------------------------------------------------

    def energy(self, y: RealLike, t: ScalarLike = 0.0) -> Scalar:
        """The model's energy at `y` (a 0-d array). Override to define one."""
        raise TypeError(f"no energy is defined for {type(self).__name__}")

    def energy_scale(self, y, t=0.0):
        """The size of the energy's terms (sets `kl.check_lyapunov`'s tolerance)."""
        return jnp.abs(self.energy(y, t))

    #: Long name of the energy in `kl.check_lyapunov`'s Dataset.
    energy_description: ClassVar[str] = "energy"

    #: Long names of the `logged_energies`, keyed by variable name (static metadata).
    logged_energy_descriptions: ClassVar[dict[str, str]] = {}

    def logged_energies(self, y, t=0.0) -> dict[str, Any]:
        """Extra energy-like quantities reported by `kl.check_lyapunov`:
        `{variable name: 0-d value}`, the names those of
        `logged_energy_descriptions`. Default none."""
        return {}

    def lyapunov_hypotheses(self, *, max_dense: int) -> LyapunovHypotheses:
        """The hypotheses under which `energy` is a Lyapunov function."""
        raise TypeError(f"no energy theorem is known for {type(self).__name__}")

    @classmethod
    def has_energy(cls) -> bool:
        """Whether this model class defines `energy`."""
        return cls.energy is not AbstractModel.energy


class AbstractPhaseModel(AbstractModel):
    """A model whose state is N phases on the torus, shape `(osc,)`, wrapped to
    [-pi, pi) after every step; the winding numbers travel as `aux` (so the unwrapped
    phase `y + 2 pi aux` is exact)."""

    manifold: ClassVar[str] = "torus"
    state_dims: ClassVar[tuple[str, ...]] = (names.OSC,)
    state_name: ClassVar[str] = "theta"
    state_units: ClassVar[str] = "rad"

    def project(self, y):
        return wrap_phase(y)

    def pack(self, y):
        return _wrap_and_turns(y)

    def retract(self, Y):
        theta, turns = Y
        wrapped, k = _wrap_and_turns(theta)
        return (wrapped, turns + jax.lax.stop_gradient(k))

    def difference(self, y1, y0):
        return wrap_phase(y1 - y0)


class AbstractSphereModel(AbstractModel):
    """A model whose state is N unit vectors, shape `(osc, dim)`, renormalised after
    every step."""

    manifold: ClassVar[str] = "sphere"
    state_dims: ClassVar[tuple[str, ...]] = (names.OSC, names.DIM)
    state_name: ClassVar[str] = "x"
    state_units: ClassVar[str] = "1"

    def project(self, y):
        return y / jnp.linalg.norm(y, axis=-1, keepdims=True)
