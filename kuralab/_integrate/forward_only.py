"""`forward_only`: identity on values and tangents whose *transpose* raises a kuralab
error, so reverse-mode differentiation through a forward-mode-only solve
(`brownian="increments"`, `diffrax.ForwardMode`) fails with a one-line message instead
of JAX's "Reverse-mode differentiation does not work for lax.while_loop ...".

Placed on the solve's outputs, it is the first primitive that `jax.grad`/`jax.vjp`
transposes, so its message is the one the user sees; `jax.jvp`, `jax.jacfwd`, `vmap`
and `jit` pass through it unchanged.
"""

from __future__ import annotations

import equinox as eqx
import jax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

__all__ = ["forward_only"]

MESSAGE = (
    "reverse-mode differentiation (jax.grad, jax.vjp) through kl.simulate with "
    "brownian='increments' is not supported: its solve is forward-mode only. Use "
    "brownian='tree' for jax.grad, or forward mode (jax.jvp, jax.jacfwd)"
)

_forward_only_p = Primitive("kuralab_forward_only")
_forward_only_p.def_impl(lambda x: x)
_forward_only_p.def_abstract_eval(lambda x: x)
mlir.register_lowering(
    _forward_only_p, mlir.lower_fun(lambda x: x, multiple_results=False)
)


def _batch(args, dims):
    return _forward_only_p.bind(*args), dims[0]


def _jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _forward_only_p.bind(x), _forward_only_p.bind(ad.instantiate_zeros(t))


def _transpose(ct, x):
    raise ValueError(MESSAGE)


batching.primitive_batchers[_forward_only_p] = _batch
ad.primitive_jvps[_forward_only_p] = _jvp
ad.primitive_transposes[_forward_only_p] = _transpose


def forward_only(tree):
    """Apply the guard to every floating array leaf of `tree`."""
    return jax.tree_util.tree_map(
        lambda a: _forward_only_p.bind(a) if eqx.is_inexact_array(a) else a, tree
    )
