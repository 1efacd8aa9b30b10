"""XLA:CPU's vector width on AVX-512 machines: opt in with `KURALAB_XLA_FLAGS=1` (issue 18).

XLA:CPU compiles elementwise fusions for 256-bit vectors by default
(`"prefer-vector-width"="256"` in the emitted LLVM IR, `ymm` registers in the object
code) even where the CPU has AVX-512. kuralab's phase models are bound by exactly such
fusions (the polynomial `sincos` of `_fastmath.py` and the RK stage arithmetic), and
with `--xla_cpu_prefer_vector_width=512` XLA emits `<16 x float>` / `zmm` code instead
(evidence and timings: benchmarks/README.md, "Vector width").

**Off by default: the flag miscompiles `jnp.arctan`.** With jax/jaxlib of this
checkout on an AVX-512 Intel Xeon, `--xla_cpu_prefer_vector_width=512` makes
`jnp.arctan(y)` wrong by up to pi/2 for large |y| (float32, y in [-1e4, 1e4]; tan, sin,
cos, exp, log, tanh, arctan2, arcsin, arccos, erf were right), which broke a wrapped
Cauchy sample's order parameter (0.9968 instead of 0.2, tests/test_theory.py). A speed
flag that changes results is not a default; who wants the 512-bit code for kuralab's
phase models sets `KURALAB_XLA_FLAGS=1` and checks the functions they use.

The flag is added to `XLA_FLAGS` only when all of these hold:
- `KURALAB_XLA_FLAGS` is `1` (the opt-in);
- the user has not set `XLA_FLAGS` themselves (their flags are left exactly as set);
- JAX's backends are not initialised yet (XLA reads `XLA_FLAGS` once, when the CPU
  client is created; after that the variable has no effect and is left alone);
- `/proc/cpuinfo` lists `avx512f` (elsewhere the default is the right width).
"""

from __future__ import annotations

import os
import sys

__all__ = ["FLAG", "OPT_OUT_ENV", "apply_default_xla_flags"]

FLAG = "--xla_cpu_prefer_vector_width=512"
OPT_OUT_ENV = "KURALAB_XLA_FLAGS"


def _has_avx512(path: str = "/proc/cpuinfo") -> bool:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "avx512f" in line.split(":", 1)[1].split()
    except OSError:
        return False
    return False


def _backends_initialised() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except Exception:  # noqa: BLE001 - unknown JAX internals: assume it is too late
        return True


def apply_default_xla_flags(environ=os.environ) -> str | None:
    """Set `XLA_FLAGS` to `FLAG` when the conditions of the module docstring hold;
    return the reason it was not set (None when it was)."""
    if environ.get(OPT_OUT_ENV, "0").strip() != "1":
        return f"{OPT_OUT_ENV} is not 1 (the default: the flag miscompiles jnp.arctan)"
    if "XLA_FLAGS" in environ:
        return "XLA_FLAGS set by the user"
    if not _has_avx512():
        return "no avx512f"
    if _backends_initialised():
        return "JAX backends already initialised"
    environ["XLA_FLAGS"] = FLAG
    return None
