"""jaxtyping aliases used across kuralab (shapes are documented in one place)."""

from typing import TypeAlias

from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

#: Phases of N oscillators, radians, wrapped to [-pi, pi).
Phases: TypeAlias = Float[Array, " osc"]
#: Anything convertible to a phase vector.
PhasesLike: TypeAlias = Real[ArrayLike, " osc"]
#: Unit vectors of N oscillators on S^{dim-1}.
SphereState: TypeAlias = Float[Array, "osc dim"]
#: A real scalar: Python number, NumPy scalar or 0-d array.
ScalarLike: TypeAlias = Real[ArrayLike, ""]
#: A node signal for a coupling operator: leading axis is the oscillator axis.
NodeSignal: TypeAlias = Float[Array, "osc *features"]  # noqa: F821
#: A JAX PRNG key (`jax.random.key` or `jax.random.PRNGKey`).
Key: TypeAlias = PRNGKeyArray
