r"""One classical RK4 step of the mean-field Kuramoto--Sakaguchi model in one pass group.

$$f(\theta)_i = \omega_i + K(t)\big[\cos\alpha\,(c_i S - s_i C) - \sin\alpha\,(s_i S + c_i C)\big],
\qquad (S, C) = \tfrac1N \textstyle\sum_j (\sin\theta_j, \cos\theta_j),$$

with $s_i = \sin\theta_i$, $c_i = \cos\theta_i$: the drift of
`kl.Kuramoto(omega, kl.MeanField(K), lag=alpha)` (no forcing, delays or noise). With
increments $k = h f$ the step is that of `kl.RK4` (kuralab/_integrate/solvers.py):
$k_1 = h f(y_0; K(t_0))$, $k_2 = h f(y_0 + k_1/2; K(t_m))$, $k_3 = h f(y_0 + k_2/2;
K(t_m))$, $k_4 = h f(y_0 + k_3; K(t_1))$, $y_1 = y_0 + k_1/6 + k_2/3 + k_3/3 + k_4/6$.

`meanfield_rk4` computes it with the native kernel of `kuralab/_native/kernels.cc`
(float32, CPU): five passes over the state per step, each evaluating the polynomial
sincos of `kuralab._fastmath` once, with the state, the phasor and the running increment
cache-resident. XLA:CPU compiles the same step to one `sin` and one `cos` fusion per
stage (each evaluating the whole polynomial) and two reduction passes. It returns
`None` where the kernel does not apply (another dtype or shape, no kernel built, or
`KURALAB_NATIVE=0`); the caller then takes its pure-JAX path.
`meanfield_rk4_reference` is that pure-JAX step; the two agree to float32 rounding
(tests/test_native.py). Derivatives (`jax.jvp`, `jax.grad`) are those of the reference
(a `custom_jvp`), so reverse mode never differentiates the kernel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._native import MEANFIELD_RK4, target
from ._phasor_mean import sincos_mean_reference

__all__ = ["meanfield_rk4", "meanfield_rk4_reference"]

#: Layout of `coef`: K(t0), K(t0 + h/2), K(t0 + h), h, cos(alpha), sin(alpha).
N_COEF = 6


def meanfield_rk4_reference(
    y0: Float[Array, " osc"], omega: Float[Array, " osc"], coef: Float[Array, " 6"]
) -> tuple[Float[Array, " osc"], Float[Array, " osc"], Float[Array, " osc"]]:
    """`(y1, k1, k4)` of one RK4 step of the mean-field drift (module docstring), in
    pure JAX; phases in radians, `coef` laid out as `N_COEF` says."""
    k0, km, k1_, h, cos_a, sin_a = (coef[i] for i in range(N_COEF))

    def inc(y, K):
        s, c, ms, mc = sincos_mean_reference(y)
        S, C = K * ms, K * mc
        return h * (omega + (cos_a * (c * S - s * C) - sin_a * (s * S + c * C)))

    k1 = inc(y0, k0)
    k2 = inc(y0 + 0.5 * k1, km)
    k3 = inc(y0 + 0.5 * k2, km)
    k4 = inc(y0 + 1.0 * k3, k1_)
    sixth, third = 1.0 / 6.0, 1.0 / 3.0
    y1 = y0 + sixth * k1 + third * k2 + third * k3 + sixth * k4
    return y1, k1, k4


def meanfield_rk4(
    y0: Float[Array, " osc"], omega: Float[Array, " osc"], coef: Float[Array, " 6"]
) -> tuple[Array, Array, Array] | None:
    """`(y1, k1, k4)` from the native kernel, or `None` where it does not apply
    (module docstring). `y0`, `omega`: shape `(osc,)`; `coef`: shape `(6,)`."""
    if not (
        y0.dtype == omega.dtype == coef.dtype == jnp.float32
        and y0.ndim == 1
        and y0.shape == omega.shape
        and y0.shape[0] > 0
        and coef.shape == (N_COEF,)
    ):
        return None
    if target(MEANFIELD_RK4) is None:
        return None
    return _native(y0, omega, coef)


def _kernel(y0, omega, coef):
    full = jax.ShapeDtypeStruct(y0.shape, y0.dtype)
    # "expand_dims": an input not batched by jax.vmap (omega in a sweep over K) is
    # passed once with size-1 batch axes and shared by the kernel, not broadcast.
    call = jax.ffi.ffi_call(MEANFIELD_RK4, (full,) * 5, vmap_method="expand_dims")
    y1, k1, k4, _, _ = call(y0, omega, coef)
    return y1, k1, k4


@jax.custom_jvp
def _native(y0, omega, coef):
    # Registered for the CPU only; other platforms lower the reference.
    return jax.lax.platform_dependent(
        y0, omega, coef, cpu=_kernel, default=meanfield_rk4_reference
    )


@_native.defjvp
def _native_jvp(primals, tangents):
    _, out_dot = jax.jvp(meanfield_rk4_reference, primals, tangents)
    return _native(*primals), out_dot
