"""Optional compiled CPU kernels, called through `jax.ffi` (issue 18).

`kernels.cc` holds two kernels. `PHASOR_MEAN`: for float32 phases `x` of shape
`(..., n)` it returns `sin x`, `cos x` and their means over the last axis in one pass, with the
polynomial `sincos` of `kuralab/_fastmath.py` evaluated once per element. XLA:CPU
evaluates that polynomial once per consumer (a loop fusion has one output, so the
`sin` and the `cos` arrays are two fusions, each computing the whole polynomial) and
adds one reduction pass per mean: four passes and twice the flops per mean-field
evaluation where one pass does (benchmarks/README.md, "Issue 18").
`MEANFIELD_RK4`: a whole classical RK4 step of the mean-field Kuramoto--Sakaguchi
model (`kuralab/_meanfield_step.py`), five passes over the state per step with the
state, the phasor and the running increment in cache.

Nothing here is required: the kernel is built lazily, the first time a float32
mean-field drift is traced, with the C++ compiler found on the machine, and cached on
disk (`build.py`); where it cannot be built (no compiler, no `jax.ffi` headers, a
build error) or is switched off with `KURALAB_NATIVE=0`, callers use the pure-JAX
path, which computes the same values (tests/test_native.py).
"""

from __future__ import annotations

from .build import (
    MEANFIELD_RK4,
    NATIVE_ENV,
    NATIVE_TARGETS,
    PHASOR_MEAN,
    native_enabled,
    target,
)

__all__ = [
    "MEANFIELD_RK4",
    "NATIVE_ENV",
    "NATIVE_TARGETS",
    "PHASOR_MEAN",
    "native_enabled",
    "target",
]
