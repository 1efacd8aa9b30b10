"""Additive noise: `kl.Noise(D)` adds `sqrt(2 D(t)) dW_i` to each phase."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._misc import as_float_array, check_finite, is_concrete
from ._schedules import AbstractSchedule, Table, evaluate


class Noise(eqx.Module):
    r"""Additive white noise with diffusion coefficient $D$: $\sqrt{2 D(t)}\, dW_i$.

    The convention is the seeds' (DESIGN.md §4): $D$ is a diffusion coefficient, so a free
    phase spreads as $\mathrm{Var}[\theta(t)] = 2 D t$.

    **Arguments:**

    - `D`: a scalar, a per-oscillator array `(osc,)`, or a schedule `D(t)`; `D >= 0`.
    """

    D: Array | AbstractSchedule

    def __init__(self, D: ArrayLike | AbstractSchedule):
        if isinstance(D, AbstractSchedule):
            self.D = D
            return
        check_finite("D", D)
        D = as_float_array(D)
        if D.ndim > 1:
            raise ValueError(
                f"`D` must be a scalar, shape (osc,) or a schedule; got shape {D.shape}"
            )
        if is_concrete(D) and np.any(np.asarray(D) < 0):
            raise ValueError(f"`D` must be >= 0 (a diffusion coefficient); got {D}")
        self.D = D

    def amplitude(self, t, shape) -> Array:
        """$g = \\sqrt{2 D(t)}$ broadcast to `shape`."""
        return jnp.broadcast_to(jnp.sqrt(2 * evaluate(self.D, t)), shape)

    def check_nonnegative(self, t0: float, t1: float):
        """Best-effort check that a scheduled D(t) stays >= 0 on [t0, t1].

        Ramps are monotone between their ends and tables piecewise linear, so checking
        the ends and the table knots suffices for kuralab's schedules.
        """
        if not isinstance(self.D, AbstractSchedule):
            return
        ts = [t0, t1]
        if isinstance(self.D, Table) and is_concrete(self.D.ts):
            ts += [float(t) for t in np.asarray(self.D.ts) if t0 <= t <= t1]
        for t in ts:
            value = self.D(t)
            if is_concrete(value) and np.any(np.asarray(value) < 0):
                raise ValueError(f"noise `D(t)` must be >= 0; D({t:g}) = {value}")
