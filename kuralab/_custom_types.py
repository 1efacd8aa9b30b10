"""jaxtyping aliases for kuralab's public signatures: the shapes are documented once, here.

Annotations only: kuralab does not run a runtime type checker on them, so the dimension
names are documentation (they follow the netCDF dimension names of `_names.py`: `osc`,
`dim`, `time`). `*Like` aliases are what a function accepts (NumPy arrays, JAX arrays,
Python numbers, nested sequences); the others are what it returns. `...` stands for any
shape that broadcasts (theory functions) or for an axis given by an `axis=` argument
(spectra); `*batch` for leading batch axes (time, seeds, parameters).

`tests/test_custom_types.py` checks that every alias here is used in a signature.
"""

from typing import TypeAlias

from jaxtyping import Array, ArrayLike, Complex, Float, Int, Num, PRNGKeyArray, Real

# --- states ------------------------------------------------------------------------

#: Phases of N oscillators, radians, wrapped to [-pi, pi).
Phases: TypeAlias = Float[Array, " osc"]
#: Anything convertible to a phase vector (one state; need not be wrapped).
PhasesLike: TypeAlias = Real[ArrayLike, " osc"]
#: Phases with any leading batch axes, oscillators last (what observables take).
BatchPhasesLike: TypeAlias = Real[ArrayLike, "*batch osc"]
#: Phases saved over time, `(..., time, osc)` (e.g. `traj.ys` of a phase model).
PhaseSeriesLike: TypeAlias = Real[ArrayLike, "*batch time osc"]
#: Unit vectors of N oscillators on S^{dim-1}.
SphereState: TypeAlias = Float[Array, "osc dim"]
#: A node signal for a coupling operator: leading axis is the oscillator axis.
NodeSignal: TypeAlias = Float[Array, "osc *features"]  # noqa: F821

# --- parameters --------------------------------------------------------------------

#: Natural frequencies of N oscillators (rad per unit time).
Frequencies: TypeAlias = Float[Array, " osc"]
#: Anything convertible to a vector of natural frequencies.
FrequenciesLike: TypeAlias = Real[ArrayLike, " osc"]
#: A coupling (weight) matrix; row i receives, column j sends.
CouplingMatrix: TypeAlias = Real[ArrayLike, "osc osc"]
#: Integer group labels, one per oscillator.
Labels: TypeAlias = Int[ArrayLike, " osc"]
#: Save times of a trajectory, strictly increasing.
TimesLike: TypeAlias = Real[ArrayLike, " time"]
#: A 1-D grid of values: a table's abscissae or values, band edges, swept couplings.
GridLike: TypeAlias = Real[ArrayLike, " grid"]
#: Samples of a sweep over a parameter (rows) and seeds (columns), e.g. R(K, seed).
SeedSweepLike: TypeAlias = Real[ArrayLike, "param seed"]

# --- numbers and generic arrays ----------------------------------------------------

#: A real scalar: Python number, NumPy scalar or 0-d array.
ScalarLike: TypeAlias = Real[ArrayLike, ""]
#: A real 0-d array (e.g. a traced parameter).
Scalar: TypeAlias = Float[Array, ""]
#: Real numbers or arrays of any shape that broadcast together.
RealLike: TypeAlias = Real[ArrayLike, "..."]
#: Real or complex signals of any shape (int input is promoted to float).
SignalLike: TypeAlias = Num[ArrayLike, "..."]
#: A real floating-point array of any shape.
RealArray: TypeAlias = Float[Array, "..."]
#: A complex array of any shape (order parameters, phasors).
ComplexArray: TypeAlias = Complex[Array, "..."]
#: A JAX PRNG key (`jax.random.key` or `jax.random.PRNGKey`).
Key: TypeAlias = PRNGKeyArray
