r"""The one base of every coupling, and the structure facts checked on it.

A coupling maps a node signal `u` of shape `(osc, *features)` to `(K u)_i = sum_j K_ij u_j`
(row i receives). Two families share the base `AbstractOperator`:

```
AbstractOperator            apply(u, t), n_osc, linear, symmetry / nonnegativity checks
├── AbstractCoupling        scalar weights K_ij (phase models; on vector states K_ij I)
│   MeanField, DenseCoupling, SparseCoupling, LatticeCoupling            (phase.py)
└── AbstractVectorCoupling  dim x dim blocks J_ij mixing vector components (sphere models)
    BlockCoupling, LatticeBlockCoupling (vector.py), AttentionCoupling (attention.py)
```

Why the common base is not called `AbstractCoupling`: DESIGN.md asks for one base for phase
and vector couplings, and `kl.AbstractCoupling` has long meant "a scalar-weight coupling".
`Kuramoto` accepts exactly those, and the energy checks read `isinstance(c,
AbstractCoupling)` as "its blocks are K_ij I". Renaming the phase family would silently widen
these checks (an attention coupling would pass as a phase coupling) and break subclasses
users wrote against `kl.AbstractCoupling`. So the common base is new (`AbstractOperator`) and
both public families keep their names and meaning.

**Structure tags are facts, not stored claims.** `kl.symmetric_tag` and `kl.nonnegative_tag`
used to be stored (static) on the coupling when it was built. A trained coupling (an optax
step on a `DenseCoupling`'s matrix) kept claiming a symmetry its new values no longer had.
Now nothing is stored:

- `c.symmetry_defect()` is a JAX scalar, $\max|K - K^\top| / \max|K|$ (0 exactly when
  symmetric; for vector couplings $J_{ij} = J_{ji}^\top$, block symmetry). It works under
  `jit` and on the current values. Each coupling computes it cheaply: mean-field is
  symmetric by construction, dense compares the matrix, sparse compares the edges with their
  reverses (no dense matrix), and lattices compare the kernel with its mirror image.
- `c.is_symmetric(rtol=..., atol=...)` and `c.is_nonnegative()` return Python bools for the
  values the coupling has *now* (concrete values needed; inside `jit` use the defect).
- `c.tags`, `c.symmetric` and `c.nonnegative` (the old names) are these checks at exact
  tolerance, evaluated on each access.
- `tags=` passed to a constructor is an assertion: it is checked at once (a `ValueError`
  when the values are concrete, `eqx.error_if` when they are traced) and not kept.

The theorem checks (`kl.lyapunov_hypotheses`) never trusted tags: they measure the defects
on the model's current coupling.

**`linear`.** A class attribute, `True` by default: `apply` is a fixed linear map of `u`
(then `as_matrix`/`coupling_blocks` materialise it). Only state-dependent couplings such as
attention set `linear: ClassVar[bool] = False`; a new linear coupling says nothing.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool

from .._custom_types import NodeSignal, Scalar, ScalarLike
from .._misc import (
    _KNOWN_TAGS,
    as_float_array,
    check_finite,
    is_concrete,
    nonnegative_tag,
    symmetric_tag,
)
from .._schedules import AbstractSchedule

HIGHEST = jax.lax.Precision.HIGHEST

#: A coupling multiplier: a real scalar or a schedule `s(t)`.
Strength = ScalarLike | AbstractSchedule


def check_strength(strength):
    """Validate a strength multiplier; return it as a float array (or the schedule)."""
    if isinstance(strength, AbstractSchedule):
        return strength
    check_finite("strength", strength)
    if eqx.is_array_like(strength) and jnp.ndim(strength) != 0:
        raise ValueError(
            f"`strength` must be a scalar or a schedule; got shape {jnp.shape(strength)}"
        )
    return as_float_array(strength)


def strength_nonnegative(strength) -> Bool[Array, ""]:
    """`strength >= 0` (a JAX bool). A schedule is not proved non-negative: False."""
    if isinstance(strength, AbstractSchedule):
        return jnp.asarray(False)
    return jnp.all(jnp.asarray(strength) >= 0)


def relative_defect(num, den) -> Scalar:
    """`num / den` as a relative defect: 0 when `num == 0`, inf when only `den` is 0."""
    num = jnp.asarray(num)
    den = jnp.asarray(den, num.dtype)
    safe = jnp.where(den > 0, den, 1)
    return jnp.where(num == 0, 0, jnp.where(den > 0, num / safe, jnp.inf))


class _VerifiedTags:
    """`coupling.tags`: the structure facts that hold for the current values.

    A non-data descriptor, so a subclass written against the old API that stores its own
    `tags` field still works (its field shadows this).
    """

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return frozenset(t for t in _KNOWN_TAGS if obj.has_tag(t))


class AbstractOperator(eqx.Module):
    """The common base of phase (`kl.AbstractCoupling`) and vector
    (`kl.AbstractVectorCoupling`) couplings. See the module documentation.

    Subclasses implement `apply` and `n_osc`, and may override `_asymmetry` and
    `_all_weights_nonnegative` with fast exact checks (the defaults materialise the
    operator, O(n^2) memory).
    """

    #: `True` when `apply` is a fixed linear map of its input (the default).
    linear: ClassVar[bool] = True

    tags = _VerifiedTags()

    @abc.abstractmethod
    def apply(self, u: NodeSignal, t: ScalarLike = 0.0) -> NodeSignal:
        """Apply the coupling to `u` of shape `(osc, *features)` at time `t` (used by
        schedules). Returns the same shape."""

    @property
    @abc.abstractmethod
    def n_osc(self) -> int | None:
        """Number of oscillators this operator is built for (None: any)."""

    # -- structure checks (hooks) ------------------------------------------------------

    def _asymmetry(self) -> tuple[Array, Array]:
        """`(max |K - K^T|, max |K|)` as JAX scalars; NaN when not applicable."""
        nan = jnp.asarray(jnp.nan)
        return nan, nan

    def _all_weights_nonnegative(self) -> Bool[Array, ""]:
        """Every weight `K_ij >= 0`, the strength included (a JAX bool)."""
        return jnp.asarray(False)

    # -- structure checks (public) -----------------------------------------------------

    def symmetry_defect(self) -> Scalar:
        r"""Relative asymmetry of the current values, $\max|K - K^\top| / \max|K|$ (for
        vector couplings $J_{ij}$ against $J_{ji}^\top$): 0 exactly when symmetric, NaN
        for a state-dependent coupling. A JAX scalar: usable inside `jit`."""
        num, den = self._asymmetry()
        return jnp.where(jnp.isnan(num), jnp.nan, relative_defect(num, den))

    def is_symmetric(self, *, rtol: float = 0.0, atol: float = 0.0) -> bool:
        """Whether `max |K - K^T| <= atol + rtol * max |K|` for the current values.

        **Raises:** `TypeError` if the values are traced (inside `jit` use
        `symmetry_defect()`).
        """
        num, den = _concrete(self, self._asymmetry, "is_symmetric", "symmetry_defect()")
        if np.isnan(num):
            return False
        return bool(num <= atol + rtol * den)

    def is_nonnegative(self) -> bool:
        """Whether every effective weight (strength times entry) is `>= 0` now.

        A schedule strength counts as not proved non-negative.

        **Raises:** `TypeError` if the values are traced.
        """
        return bool(
            _concrete(self, self._all_weights_nonnegative, "is_nonnegative", None)
        )

    def has_tag(self, tag) -> bool:
        """Whether the structure fact `tag` (`kl.symmetric_tag`, `kl.nonnegative_tag`)
        holds exactly for the current values."""
        if tag is symmetric_tag:
            return self.is_symmetric()
        if tag is nonnegative_tag:
            return self.is_nonnegative()
        raise ValueError(f"unknown tag {tag!r}; expected one of {list(_KNOWN_TAGS)}")

    @property
    def symmetric(self) -> bool:
        """`is_symmetric()` at exact tolerance (kept from the tag API)."""
        return self.is_symmetric()

    @property
    def nonnegative(self) -> bool:
        """`is_nonnegative()` (kept from the tag API)."""
        return self.is_nonnegative()


def _concrete(coupling, fn, what: str, inside_jit: str | None):
    """Evaluate `fn()` eagerly (also when called while tracing an unrelated function)."""
    if not is_concrete(coupling):
        hint = f"; inside jax.jit use `{inside_jit}`" if inside_jit else ""
        raise TypeError(
            f"{type(coupling).__name__}.{what}() needs concrete values, but the "
            f"coupling holds traced arrays{hint}"
        )
    with jax.ensure_compile_time_eval():
        out = fn()
    if isinstance(out, tuple):
        return tuple(np.asarray(v) for v in out)
    return np.asarray(out)


def check_declared(coupling: AbstractOperator, tags: frozenset, name: str):
    """Check the tags a user declared against the coupling's values.

    Concrete values: raise `ValueError` naming the tags that do not hold. Traced values:
    return a JAX bool that is True when a declared tag fails (for `eqx.error_if`), or
    None when nothing was declared.
    """
    if not tags:
        return None
    if is_concrete(coupling):
        missing = {t for t in tags if not coupling.has_tag(t)}
        if missing:
            raise ValueError(
                f"{name} was declared {sorted(map(repr, missing))} but its values are "
                "not; drop the tag or fix the values"
            )
        return None
    bad = jnp.asarray(False)
    if symmetric_tag in tags:
        bad = bad | ~(coupling.symmetry_defect() == 0)
    if nonnegative_tag in tags:
        bad = bad | ~coupling._all_weights_nonnegative()
    return bad


def guard_declared(coupling: AbstractOperator, tags: frozenset, name: str, x: Array):
    """`x`, guarded by `eqx.error_if` when traced values break a declared tag."""
    bad = check_declared(coupling, tags, name)
    if bad is None:
        return x
    return eqx.error_if(
        x, bad, f"{name} was declared {sorted(map(repr, tags))} but its values are not"
    )
