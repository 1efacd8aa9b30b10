"""Time-dependent coefficients: K(t), forcing strength h(t), noise D(t), ...

A schedule is an Equinox module called as `schedule(t)`. Anywhere kuralab accepts a
coefficient it accepts either a constant (scalar or per-oscillator array) or a schedule;
`evaluate(coef, t)` resolves either. Values may be scalars or arrays (e.g. one value per
oscillator); `start`/`end` broadcast against each other.

Ramps (`Linear`, `Cosine`, `Geometric`) go from `start` at `t0` to `end` at `t1` and are
held constant outside `[t0, t1]`.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from ._misc import check_finite, is_concrete


class AbstractSchedule(eqx.Module):
    """A coefficient that depends on time: `value = schedule(t)`."""

    @abc.abstractmethod
    def __call__(self, t) -> Array:
        """Value at time `t` (a scalar time; batch with `jax.vmap`)."""


def evaluate(coef, t):
    """Resolve a coefficient at time `t`: call it if it is a schedule, else return it."""
    if isinstance(coef, AbstractSchedule):
        return coef(t)
    return coef


def _ramp_fraction(t, t0, t1):
    return jnp.clip((t - t0) / (t1 - t0), 0.0, 1.0)


def _check_ramp(t0, t1):
    if isinstance(t0, int | float) and isinstance(t1, int | float) and not t1 > t0:
        raise ValueError(f"schedule needs `t1 > t0`; got t0={t0}, t1={t1}")


class Constant(AbstractSchedule):
    """$c(t) = \\text{value}$."""

    value: ArrayLike

    def __check_init__(self):
        check_finite("value", self.value)

    def __call__(self, t) -> Array:
        return jnp.asarray(self.value)


class AbstractRamp(AbstractSchedule):
    """A ramp from `start` at `t0` to `end` at `t1`, held constant outside."""

    start: eqx.AbstractVar[ArrayLike]
    end: eqx.AbstractVar[ArrayLike]
    t0: eqx.AbstractVar[float]
    t1: eqx.AbstractVar[float]

    def __check_init__(self):
        check_finite("start", self.start)
        check_finite("end", self.end)
        _check_ramp(self.t0, self.t1)

    @abc.abstractmethod
    def blend(self, a: Array, b: Array, s: Array) -> Array:
        """The value at ramp fraction `s` in [0, 1] between `a` and `b`."""

    def __call__(self, t) -> Array:
        s = _ramp_fraction(t, self.t0, self.t1)
        return self.blend(jnp.asarray(self.start), jnp.asarray(self.end), s)


class Linear(AbstractRamp):
    """Linear ramp $c(t) = a + (b - a) s$, $s = \\mathrm{clip}((t - t_0)/(t_1 - t_0), 0, 1)$."""

    start: ArrayLike
    end: ArrayLike
    t0: float = 0.0
    t1: float = 1.0

    def blend(self, a, b, s):
        return a + (b - a) * s


class Cosine(AbstractRamp):
    """Half-cosine ramp $c(t) = a + (b - a)(1 - \\cos \\pi s)/2$ (zero slope at both ends)."""

    start: ArrayLike
    end: ArrayLike
    t0: float = 0.0
    t1: float = 1.0

    def blend(self, a, b, s):
        return a + (b - a) * 0.5 * (1.0 - jnp.cos(jnp.pi * s))


class Geometric(AbstractRamp):
    """Geometric ramp $c(t) = a (b / a)^s$; `start` and `end` must be > 0."""

    start: ArrayLike
    end: ArrayLike
    t0: float = 0.0
    t1: float = 1.0

    def __check_init__(self):
        for name in ("start", "end"):
            v = getattr(self, name)
            if eqx.is_array_like(v) and not _is_traced(v) and jnp.any(jnp.asarray(v) <= 0):
                raise ValueError(f"Geometric `{name}` must be > 0; got {v}")

    def blend(self, a, b, s):
        return a * (b / a) ** s


class Table(AbstractSchedule):
    """Piecewise-linear interpolation of tabulated values (held constant outside).

    **Arguments:**

    - `ts`: strictly increasing times, shape `(T,)`.
    - `values`: shape `(T, *value_shape)`, e.g. `(T,)` or `(T, osc)`.
    """

    ts: Array
    values: Array

    def __init__(self, ts: ArrayLike, values: ArrayLike):
        self.ts = jnp.asarray(ts)
        self.values = jnp.asarray(values)

    def __check_init__(self):
        if self.ts.ndim != 1 or self.ts.shape[0] < 1:
            raise ValueError(f"Table `ts` must be 1-D and non-empty; got {self.ts.shape}")
        if self.values.shape[:1] != self.ts.shape:
            raise ValueError(
                "Table `values` must have shape (len(ts), ...); got "
                f"{self.values.shape} for {self.ts.shape[0]} times"
            )
        check_finite("ts", self.ts)
        check_finite("values", self.values)
        if not _is_traced(self.ts) and self.ts.shape[0] > 1:
            if not bool(jnp.all(jnp.diff(self.ts) > 0)):
                raise ValueError("Table `ts` must be strictly increasing")

    def __call__(self, t) -> Array:
        ts = self.ts
        if ts.shape[0] == 1:
            return self.values[0]
        t = jnp.clip(t, ts[0], ts[-1])
        i = jnp.clip(jnp.searchsorted(ts, t, side="right") - 1, 0, ts.shape[0] - 2)
        w = (t - ts[i]) / (ts[i + 1] - ts[i])
        return self.values[i] * (1 - w) + self.values[i + 1] * w


def _is_traced(x) -> bool:
    return not is_concrete(x)
