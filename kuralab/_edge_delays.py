r"""Per-edge transmission delays: `kl.EdgeDelays`.

Oscillator $i$ receives $\theta_j(t - \tau_{ij})$ from sender $j$: one delay per edge of
the coupling (a `kl.SparseCoupling`'s edge list, or every entry of a dense or mean-field
coupling). The history is the same Hermite ring buffer as for per-sender delays
(`kuralab/_delays.py`), read at one point per edge: the buffer's node axis is gathered
at each edge's sender, so memory is O(edges + slots x osc), never O(osc^2) for a sparse
graph.

`EdgeDelays.from_positions` builds the delays of a spatially embedded network,
$\tau_{ij} = |x_i - x_j| / v$ (conduction speed $v$), optionally in a periodic box.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._coupling import DenseCoupling, MeanField, SparseCoupling
from ._fastmath import sincos
from ._misc import check_finite, is_concrete
from ._schedules import evaluate

EDGE_COUPLINGS = "kl.SparseCoupling, kl.DenseCoupling or kl.MeanField"


def _edge_shape(coupling, n: int) -> tuple[int, ...]:
    """The shape `tau` must have for `coupling` on `n` oscillators."""
    if isinstance(coupling, SparseCoupling):
        return (coupling.receivers.shape[0],)
    if isinstance(coupling, DenseCoupling | MeanField):
        return (n, n)
    raise TypeError(
        f"per-edge delays need a coupling with edges ({EDGE_COUPLINGS}); got "
        f"{type(coupling).__name__}"
    )


class EdgeDelays(eqx.Module):
    r"""Per-edge transmission delays: oscillator i receives $\theta_j(t - \tau_{ij})$.

    $$\dot\theta_i = \omega_i + \sum_j K_{ij}\sin(\theta_j(t - \tau_{ij}) - \theta_i
      - \alpha) + \dots$$

    **Arguments:**

    - `tau`: delays in time units, one per edge of the model's coupling: shape
      `(edges,)` aligned with a `kl.SparseCoupling`'s `receivers`/`senders`, or
      `(osc, osc)` (row i receives, like the matrix) for `kl.DenseCoupling` and
      `kl.MeanField`. Each positive delay must be at least the solver step `dt`
      (`tau = 0` reads the present).
    - `history`: the phases before `t0`: `"constant"` (default: equal to `y0`) or a
      function `history(t) -> (osc,)` for `t <= t0`.
    - `max_delay`: an upper bound on `tau` in time units; required only when `tau` is
      traced (`vmap`/`jit` over delays or speeds), since it sets the static buffer
      length.

    The shape is checked against the coupling by `kl.Kuramoto`. Use
    `EdgeDelays.from_positions` for distance-over-speed delays.
    """

    tau: Array
    history: str | Callable = eqx.field(static=True)
    max_delay: float | None = eqx.field(static=True)

    def __init__(
        self,
        tau: Float[ArrayLike, "..."],
        history: str | Callable = "constant",
        *,
        max_delay: float | None = None,
    ):
        tau = jnp.asarray(tau)
        if not jnp.issubdtype(tau.dtype, jnp.floating):
            tau = tau.astype(jnp.result_type(float))
        if tau.ndim not in (1, 2) or (tau.ndim == 2 and tau.shape[0] != tau.shape[1]):
            raise ValueError(
                "`tau` must have shape (edges,) (sparse coupling) or (osc, osc) (dense "
                f"or mean-field coupling); got shape {tau.shape}"
            )
        check_finite("tau", tau)
        if is_concrete(tau) and tau.size and float(np.min(np.asarray(tau))) < 0:
            raise ValueError(f"`tau` must be >= 0; got min {float(np.min(tau)):g}")
        if not (history == "constant" or callable(history)):
            raise ValueError(
                f"`history` must be 'constant' or a function of t; got {history!r}"
            )
        if max_delay is not None and not (
            isinstance(max_delay, int | float) and np.isfinite(max_delay) and max_delay >= 0
        ):
            raise ValueError(f"`max_delay` must be a number >= 0; got {max_delay!r}")
        self.tau = tau
        self.history = history
        self.max_delay = max_delay

    #: Per-edge delays are always in physical time (no KuraNet step convention).
    convention: ClassVar[str] = "physical"

    @classmethod
    def from_positions(
        cls,
        positions: Float[ArrayLike, "osc dim"],
        speed: float | Array,
        coupling,
        *,
        box: float | ArrayLike | None = None,
        history: str | Callable = "constant",
        max_delay: float | None = None,
    ) -> EdgeDelays:
        r"""Distance-over-speed delays $\tau_{ij} = |x_i - x_j| / v$.

        **Arguments:**

        - `positions`: `(osc, dim)` (or `(osc,)` for a line) positions $x_i$ in length
          units.
        - `speed`: conduction speed $v > 0$ (length per time unit); may be traced
          (then give `max_delay`).
        - `coupling`: the model's coupling, which fixes the edges: a
          `kl.SparseCoupling` gives `(edges,)` delays (O(edges) memory), a
          `kl.DenseCoupling` or `kl.MeanField` an `(osc, osc)` matrix.
        - `box`: optional periodic box side(s), a scalar or `(dim,)`: distances use the
          minimum image, e.g. `box = 2 pi R` for arc length on a ring of radius R with
          `positions = R * angle`.
        - `history`, `max_delay`: as for `EdgeDelays`.
        """
        x = jnp.asarray(positions)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(
                f"`positions` must have shape (osc, dim) or (osc,); got {x.shape}"
            )
        check_finite("positions", x)
        check_finite("speed", speed)
        if jnp.ndim(speed) != 0:
            raise ValueError(f"`speed` must be a scalar; got shape {jnp.shape(speed)}")
        if is_concrete(speed) and not float(speed) > 0:
            raise ValueError(f"`speed` must be > 0 (length per time); got {float(speed)}")
        n = x.shape[0]
        if getattr(coupling, "n_osc", None) not in (None, n):
            raise ValueError(
                f"`positions` has {n} oscillators but `coupling` is built for "
                f"{coupling.n_osc}"
            )
        if isinstance(coupling, SparseCoupling):
            diff = x[coupling.receivers] - x[coupling.senders]
        else:
            _edge_shape(coupling, n)  # TypeError for couplings without edges
            diff = x[:, None, :] - x[None, :, :]
        if box is not None:
            b = jnp.asarray(box, x.dtype)
            if b.ndim > 1 or (b.ndim == 1 and b.shape[0] != x.shape[1]):
                raise ValueError(
                    f"`box` must be a scalar or shape ({x.shape[1]},); got {b.shape}"
                )
            if is_concrete(b) and not bool(np.all(np.asarray(b) > 0)):
                raise ValueError(f"`box` sides must be > 0; got {np.asarray(b)}")
            diff = diff - b * jnp.round(diff / b)
        dist = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
        return cls(dist / speed, history, max_delay=max_delay)

    # -- what the integrator asks of a delay object ---------------------------------

    def check_coupling(self, coupling, n: int) -> None:
        """Raise if `tau`'s shape does not match `coupling`'s edges."""
        shape = _edge_shape(coupling, n)
        if self.tau.shape != shape:
            what = "one per edge" if len(shape) == 1 else "row i receives"
            raise ValueError(
                f"`delays.tau` must have shape {shape} ({what}) for this "
                f"{type(coupling).__name__}; got {self.tau.shape}"
            )

    def per_read(self, n: int, dt: float | None = None) -> Array:
        """The delays of the history reads (one per edge, flattened), time units."""
        del n, dt
        return self.tau.reshape(-1)

    def bound(self, dt: float) -> float:
        """A static upper bound on the delays in time units."""
        del dt
        if is_concrete(self.tau):
            return float(np.max(np.asarray(self.tau))) if self.tau.size else 0.0
        if self.max_delay is None:
            raise ValueError(
                "`tau` is traced (vmap/jit over delays): give EdgeDelays(..., "
                "max_delay=...) so the history buffer has a static length"
            )
        return float(self.max_delay)


def edge_sources(coupling, n: int) -> Int[Array, " edges"]:
    """The sender of each edge, in the order of `EdgeDelays.per_read`."""
    if isinstance(coupling, SparseCoupling):
        return coupling.senders
    return jnp.tile(jnp.arange(n, dtype=jnp.int32), n)


def edge_coupling_term(coupling, t, theta, theta_edges, lag):
    r"""$\sum_j K_{ij}\sin(\theta^{e}_{ij} - \theta_i - \alpha)$ from per-edge sender
    phases `theta_edges` (shape `(edges,)`, the order of `EdgeDelays.per_read`)."""
    n = theta.shape[0]
    if isinstance(coupling, SparseCoupling):
        w = coupling.weights.astype(theta.dtype)
        arg = theta_edges - theta[coupling.receivers] - lag
        out = jax.ops.segment_sum(w * _sin(arg), coupling.receivers, num_segments=n)
        return evaluate(coupling.strength, t) * out
    arg = theta_edges.reshape(n, n) - theta[:, None] - lag
    if isinstance(coupling, MeanField):
        return evaluate(coupling.K, t) * jnp.mean(_sin(arg), axis=1)
    w = coupling.matrix.astype(theta.dtype)
    return evaluate(coupling.strength, t) * jnp.sum(w * _sin(arg), axis=1)


def _sin(x):
    # kuralab's vectorised polynomial sine (XLA's CPU sin is scalar; see _fastmath)
    return sincos(x)[0]
