"""Small shared helpers: phase wrapping, structure tags, input validation."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

TWO_PI = 2.0 * math.pi


def wrap_phase(theta):
    """Wrap phases to the half-open interval [-pi, pi).

    Idempotent: `wrap_phase(wrap_phase(x)) == wrap_phase(x)` exactly, in float32 and
    float64 (it subtracts `2 pi round(x / 2 pi)`, which is exactly 0 for values already
    in range, then fixes the two closed ends).
    """
    theta = jnp.asarray(theta)
    return _wrap_and_turns(theta)[0]


@jax.custom_jvp
def _wrap_and_turns(theta):
    """Return `(wrapped, k)` with `theta ~= wrapped + 2 pi k`, wrapped in [-pi, pi).

    Derivative (`custom_jvp`): d wrapped = d theta, d k = 0 (the wrap is a translation
    by a locally constant multiple of 2 pi), so reverse mode stores no masks."""
    pi = jnp.asarray(math.pi, theta.dtype)
    two_pi = jnp.asarray(TWO_PI, theta.dtype)
    k = jnp.round(theta / two_pi)
    w = theta - two_pi * k
    hi = w >= pi
    lo = w < -pi
    w = jnp.where(hi, w - two_pi, jnp.where(lo, w + two_pi, w))
    k = k + hi.astype(k.dtype) - lo.astype(k.dtype)
    return w, k


@_wrap_and_turns.defjvp
def _wrap_and_turns_jvp(primals, tangents):
    (theta,), (dtheta,) = primals, tangents
    w, k = _wrap_and_turns(theta)
    return (w, k), (dtheta, jnp.zeros_like(k))


class _Tag:
    """A named structure tag (lineax style): a sentinel with a readable repr."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"kuralab.{self.name}_tag"


#: The coupling is symmetric: K_ij = K_ji.
symmetric_tag = _Tag("symmetric")
#: Every coupling weight is >= 0.
nonnegative_tag = _Tag("nonnegative")

_KNOWN_TAGS = (symmetric_tag, nonnegative_tag)


def as_tags(tags: object) -> frozenset:
    """Normalise a tag or an iterable of tags to a frozenset, rejecting strangers."""
    if isinstance(tags, _Tag):
        tags = (tags,)
    if not isinstance(tags, Iterable):
        raise TypeError(
            f"`tags` must be a kuralab tag or an iterable of them, got {tags!r}"
        )
    out = frozenset(tags)
    for tag in out:
        if tag not in _KNOWN_TAGS:
            raise ValueError(
                f"unknown tag {tag!r}; expected one of {list(_KNOWN_TAGS)}"
            )
    return out


def is_concrete(*xs) -> bool:
    """True if no leaf of `xs` is a JAX tracer (so values can be checked in Python)."""
    leaves = jax.tree_util.tree_leaves(xs)
    return not any(isinstance(x, jax.core.Tracer) for x in leaves)


def check_finite(name: str, x):
    """Raise ValueError naming `name` if a concrete `x` holds NaN or inf.

    Traced values are returned unchanged (they are checked at run time by `simulate`).
    """
    if x is None or not is_concrete(x) or not eqx.is_array_like(x):
        return
    arr = np.asarray(x)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"`{name}` must be finite; it has {bad} NaN/inf value(s) (shape {arr.shape})"
        )


def check_shape(name: str, x, allowed: Iterable[tuple[int, ...]], what: str):
    """Raise ValueError naming `name` unless `jnp.shape(x)` is one of `allowed`."""
    shape = tuple(jnp.shape(x))
    allowed = tuple(allowed)
    if shape not in allowed:
        raise ValueError(f"`{name}` must have shape {what}; got shape {shape}")


def nearest(word: str, options: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint, or '' if nothing is close."""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def as_float_array(x):
    """`jnp.asarray(x)` with integer/bool values promoted to the default float dtype.

    Numeric coefficients are stored as arrays (not Python floats) so that a new value
    does not trigger a recompile under `eqx.filter_jit` and can be `vmap`-ed/differentiated.
    """
    arr = jnp.asarray(x)
    if not jnp.issubdtype(arr.dtype, jnp.inexact):
        arr = arr.astype(jnp.result_type(float))
    return arr
