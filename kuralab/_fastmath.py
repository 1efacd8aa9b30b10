"""Fast, vectorisable `sin`/`cos` for the per-step phasors of phase models.

XLA's CPU `sin` and `cos` are not vectorised: measured on the 2-core benchmark machine
they cost 7--10 ns per element pair, which made a mean-field RK4 step at N = 1e5 cost
~110 ns per oscillator (NumPy float32: ~21 ns). `sincos` below is plain arithmetic
(a Cody--Waite reduction to [-pi/4, pi/4] and minimax polynomials), so XLA fuses it
with the surrounding elementwise work and vectorises it: ~0.3 ns per element pair.

Accuracy (float32, checked in `tests/test_fastmath.py` against float64 NumPy):

- |x| <= 1e6: absolute error <= 1.5e-7 in both values (measured 1.1e-7; XLA's float32
  sin/cos: 3.3e-8; float32 numbers near 1 are 6e-8 apart below 1 and 1.2e-7 above);
- beyond, the reduction loses exactness (`k * _PIO2_MID` is no longer exact): 1e-4 at
  |x| ~ 1e7, where the float32 input itself is only known to +-0.5. Phases inside
  `kl.simulate` are wrapped to [-pi, pi) every step.

Other dtypes (float64 above all, where references need full precision) use `jnp.sin`
and `jnp.cos` unchanged; float16/bfloat16 are computed in float32 and rounded.

Derivatives are exact in terms of the returned values (`custom_jvp`, for every dtype:
d sin = cos dx, d cos = -sin dx), so gradients through an integration see the same
consistent pair as the forward pass and evaluate no further sin/cos.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

__all__ = ["sincos"]

# pi/2 = _PIO2_HI + _PIO2_MID + _PIO2_LO, with few significant bits in the leading parts
# so that k * _PIO2_HI and k * _PIO2_MID are exact in float32 for moderate k.
_PIO2_HI = 1.5703125
_PIO2_MID = 4.837512969970703125e-4
_PIO2_LO = 7.54978995489188216e-8
_TWO_OVER_PI = 2.0 / math.pi

# Minimax polynomials on [-pi/4, pi/4] (the cephes `sinf`/`cosf` coefficients):
# sin r = r + r z (S1 + z (S2 + z S3)),  cos r = 1 - z/2 + z^2 (C1 + z (C2 + z C3)),  z = r^2.
_S1, _S2, _S3 = -1.6666654611e-1, 8.3321608736e-3, -1.9515295891e-4
_C1, _C2, _C3 = 4.166664568298827e-2, -1.388731625493765e-3, 2.443315711809948e-5


def sincos(x: ArrayLike) -> tuple[Array, Array]:
    """`(sin x, cos x)`, elementwise, same shape and dtype as `x` (radians).

    float32 (and float16/bfloat16, computed in float32) uses the vectorisable polynomial
    described in the module docstring; every other dtype uses `jnp.sin`/`jnp.cos`.
    Differentiable to any order, and `jit`/`vmap`-compatible.
    """
    x = jnp.asarray(x)
    if x.dtype == jnp.float32:
        return _sincos_f32(x)
    if x.dtype in (jnp.float16, jnp.bfloat16):
        s, c = _sincos_f32(x.astype(jnp.float32))
        return s.astype(x.dtype), c.astype(x.dtype)
    return _sincos_xla(x)


@jax.custom_jvp
def _sincos_xla(x: Array) -> tuple[Array, Array]:
    return jnp.sin(x), jnp.cos(x)


@_sincos_xla.defjvp
def _sincos_xla_jvp(primals, tangents):
    # JAX's own rules would evaluate cos x again for d sin and sin x again for d cos;
    # reusing the pair keeps reverse mode at two transcendentals per evaluation.
    (x,), (dx,) = primals, tangents
    s, c = _sincos_xla(x)
    return (s, c), (c * dx, -s * dx)


@jax.custom_jvp
def _sincos_f32(x: Array) -> tuple[Array, Array]:
    k = jnp.round(x * _TWO_OVER_PI)
    r = ((x - k * _PIO2_HI) - k * _PIO2_MID) - k * _PIO2_LO  # r in [-pi/4, pi/4]
    z = r * r
    s = r + r * z * (_S1 + z * (_S2 + z * _S3))
    c = 1.0 - 0.5 * z + z * z * (_C1 + z * (_C2 + z * _C3))
    # Quadrant q = k mod 4 (two's complement makes this right for negative k too):
    # q odd swaps sin and cos; sin is negated for q in {2, 3}, cos for q in {1, 2}.
    q = k.astype(jnp.int32)
    swap = (q & 1) == 1
    sin = jnp.where(swap, c, s)
    cos = jnp.where(swap, s, c)
    sin = jnp.where((q & 2) == 2, -sin, sin)
    cos = jnp.where(((q + 1) & 2) == 2, -cos, cos)
    return sin, cos


@_sincos_f32.defjvp
def _sincos_f32_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    s, c = _sincos_f32(x)
    return (s, c), (c * dx, -s * dx)
