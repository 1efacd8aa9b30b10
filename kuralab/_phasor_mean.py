r"""`sincos_mean`: the phasors of phases and their means over the oscillator axis.

For phases $\theta$ of shape `(..., n)` (radians) it returns $\sin\theta$,
$\cos\theta$ (shape `(..., n)`) and $\frac1n\sum_j \sin\theta_j$,
$\frac1n\sum_j \cos\theta_j$ (shape `(...)`): what a mean-field phase model needs per
drift evaluation (`kl.MeanField`).

For float32 on a CPU it calls the compiled kernel of `kuralab/_native/kernels.cc`
when it is available (one pass; the polynomial of `kuralab._fastmath.sincos` evaluated
once per element); everywhere else, and whenever the kernel cannot be built or
`KURALAB_NATIVE=0`, it is `kuralab._fastmath.sincos` followed by two `jnp.mean`. Both
give the same values to float32 rounding (each sincos value within a few units in the
last place of the other's, tests/test_native.py). Batching: `jax.vmap` adds leading
axes (the kernel sees `(batch, n)`, oscillators innermost). Derivatives are defined
from the returned values ($d\sin = \cos\,d\theta$, $d\cos = -\sin\,d\theta$), so
`jax.grad` never differentiates the kernel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._fastmath import sincos
from ._native import PHASOR_MEAN, target

__all__ = ["sincos_mean", "sincos_mean_reference"]


def sincos_mean_reference(
    x: Float[ArrayLike, "*batch osc"],
) -> tuple[Array, Array, Array, Array]:
    """The pure-JAX `(sin x, cos x, mean sin x, mean cos x)` (means over the last
    axis); what `sincos_mean` computes without the native kernel."""
    s, c = sincos(jnp.asarray(x))
    return s, c, jnp.mean(s, axis=-1), jnp.mean(c, axis=-1)


def sincos_mean(
    x: Float[ArrayLike, "*batch osc"],
) -> tuple[
    Float[Array, "*batch osc"], Float[Array, "*batch osc"],
    Float[Array, "*batch"], Float[Array, "*batch"],
]:
    """`(sin x, cos x, mean(sin x, -1), mean(cos x, -1))` for phases `x` of shape
    `(..., osc)` in radians (module docstring); same dtype as `x`."""
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(
            f"`x` must have an oscillator axis, shape (..., osc); got shape {x.shape}"
        )
    if x.dtype == jnp.float32 and x.shape[-1] > 0 and target(PHASOR_MEAN) is not None:
        return _sincos_mean_native(x)
    return sincos_mean_reference(x)


def _kernel(x: Array) -> tuple[Array, Array, Array, Array]:
    full = jax.ShapeDtypeStruct(x.shape, x.dtype)
    mean = jax.ShapeDtypeStruct(x.shape[:-1], x.dtype)
    call = jax.ffi.ffi_call(
        PHASOR_MEAN, (full, full, mean, mean), vmap_method="broadcast_all"
    )
    return tuple(call(x))


@jax.custom_jvp
def _sincos_mean_native(x: Array) -> tuple[Array, Array, Array, Array]:
    # The kernel is registered for the CPU only; other platforms lower the reference.
    return jax.lax.platform_dependent(x, cpu=_kernel, default=sincos_mean_reference)


@_sincos_mean_native.defjvp
def _sincos_mean_native_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    s, c, ms, mc = _sincos_mean_native(x)
    ds, dc = c * dx, -s * dx
    return (s, c, ms, mc), (ds, dc, jnp.mean(ds, axis=-1), jnp.mean(dc, axis=-1))
