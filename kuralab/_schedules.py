"""Time-dependent coefficients: K(t), forcing strength h(t), noise D(t), ...

A schedule is an Equinox module called as `schedule(t)`. Anywhere kuralab accepts a
coefficient it accepts either a constant (scalar or per-oscillator array) or a schedule;
`evaluate(coef, t)` resolves either. Values may be scalars or arrays (e.g. one value per
oscillator); `start`/`end` broadcast against each other.

Ramps (`Linear`, `Cosine`, `Geometric`) go from `start` at `t0` to `end` at `t1` and are
held constant outside `[t0, t1]`.

Every schedule can be built inside `jax.jit` (e.g. from traced parameters being learned):
value checks run in NumPy on concrete values and raise `ValueError` at once; on traced
values they become `eqx.error_if` checks attached to the checked field.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._custom_types import ScalarLike
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


def _check(value, bad, message: str):
    """Check `bad(value)` now when `value` is concrete (NumPy, never staged into a trace)
    or at run time through `eqx.error_if`; returns `value` (guarded when traced)."""
    if is_concrete(value):
        if np.any(bad(np.asarray(value))):
            raise ValueError(f"{message}; got {value}")
        return value
    return eqx.error_if(value, jnp.any(bad(value)), message)


def _check_ramp(t0, t1):
    """`t1` (guarded when traced) after checking `t1 > t0`."""
    if is_concrete(t0, t1):
        if not np.all(np.asarray(t1) > np.asarray(t0)):
            raise ValueError(f"schedule needs `t1 > t0`; got t0={t0}, t1={t1}")
        return t1
    t1 = jnp.asarray(t1)
    return eqx.error_if(t1, jnp.any(t1 <= t0), "schedule needs `t1 > t0`")


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

    def __post_init__(self):
        check_finite("start", self.start)
        check_finite("end", self.end)
        self.t1 = _check_ramp(self.t0, self.t1)

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
    t0: ScalarLike = 0.0
    t1: ScalarLike = 1.0

    def blend(self, a, b, s):
        return a + (b - a) * s


class Cosine(AbstractRamp):
    """Half-cosine ramp $c(t) = a + (b - a)(1 - \\cos \\pi s)/2$ (zero slope at both ends)."""

    start: ArrayLike
    end: ArrayLike
    t0: ScalarLike = 0.0
    t1: ScalarLike = 1.0

    def blend(self, a, b, s):
        return a + (b - a) * 0.5 * (1.0 - jnp.cos(jnp.pi * s))


class Geometric(AbstractRamp):
    """Geometric ramp $c(t) = a (b / a)^s$; `start` and `end` must be > 0."""

    start: ArrayLike
    end: ArrayLike
    t0: ScalarLike = 0.0
    t1: ScalarLike = 1.0

    def __post_init__(self):
        super().__post_init__()
        for name in ("start", "end"):
            message = f"Geometric `{name}` must be > 0"
            setattr(self, name, _check(getattr(self, name), lambda x: x <= 0, message))

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
        ts = jnp.asarray(ts)
        if ts.ndim == 1 and ts.shape[0] > 1 and not is_concrete(ts):
            ts = eqx.error_if(
                ts, jnp.any(jnp.diff(ts) <= 0), "Table `ts` must be strictly increasing"
            )
        self.ts = ts
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
        if self.ts.shape[0] > 1 and is_concrete(self.ts):
            if not np.all(np.diff(np.asarray(self.ts)) > 0):
                raise ValueError("Table `ts` must be strictly increasing")

    def __call__(self, t) -> Array:
        ts = self.ts
        if ts.shape[0] == 1:
            return self.values[0]
        t = jnp.clip(t, ts[0], ts[-1])
        i = jnp.clip(jnp.searchsorted(ts, t, side="right") - 1, 0, ts.shape[0] - 2)
        w = (t - ts[i]) / (ts[i + 1] - ts[i])
        return self.values[i] * (1 - w) + self.values[i + 1] * w
