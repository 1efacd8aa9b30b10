r"""Attentive connectivity for vector oscillators (AKOrN's `J="attn"`).

Multi-head self-attention over the oscillators of ONE system. Each oscillator is a token
whose features are its unit vector $x_i \in S^{\mathrm{dim}-1}$:

$$q^h_i = W^{h\top}_Q x_i,\quad k^h_i = W^{h\top}_K x_i,\quad v^h_i = W^{h\top}_V x_i,\qquad
A^h_{ij}(x) = \operatorname{softmax}_j\!\Big(\frac{\langle q^h_i, k^h_j\rangle}{\sqrt{d_h}}\Big),$$

$$(J(x))_i = s \sum_h W^{h\top}_O \sum_j A^h_{ij}(x)\, v^h_j
          = \sum_j \underbrace{s\sum_h A^h_{ij}(x)\, W^{h\top}_O W^{h\top}_V}_{J_{ij}(x)} x_j .$$

So attention is a block coupling whose blocks $J_{ij}(x)$ depend on the state: it is not a
fixed linear operator, and `SphereKuramoto` simply evaluates `apply(x, t)` inside the
drift. Because $J$ depends on $x$ (and is not block-symmetric in general), the AKOrN
energy is not a Lyapunov function here; `kl.check_lyapunov` reports the hypothesis
"linear, autonomous coupling" as failed.

Differences from the reference (`common_layers.Attention`): tokens are oscillators, not
image positions holding several oscillators; no biases on the projections; no GTA
rotations or position embeddings (add them by pre-rotating `x` in a custom coupling). An
optional boolean `mask` restricts who attends to whom (e.g. Sudoku constraints).
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Real

from .._custom_types import Key, ScalarLike, SphereState
from .._misc import check_finite, is_concrete
from .._schedules import AbstractSchedule, evaluate
from .base import HIGHEST as _HIGHEST, Strength, check_strength
from .vector import AbstractVectorCoupling


class AttentionCoupling(AbstractVectorCoupling):
    r"""Multi-head self-attention over oscillators: a state-dependent coupling
    $(J(x))_i = s\sum_h W^{h\top}_O \sum_j \operatorname{softmax}_j(\langle W^{h\top}_Q x_i,
    W^{h\top}_K x_j\rangle / \sqrt{d_h})\, W^{h\top}_V x_j$.

    **Arguments:**

    - `wq`, `wk`, `wv`: query/key/value projections, shape `(heads, dim, head_dim)`.
    - `wo`: output projection, shape `(heads, head_dim, dim)`.
    - `mask`: optional boolean `(osc, osc)`; `mask[i, j]` allows receiver `i` to attend
      to sender `j`. Every row needs at least one `True`. (Keyword only.)
    - `strength`: scalar multiplier or schedule `s(t)` (default 1). (Keyword only.)

    Random weights: `AttentionCoupling.init(key, dim, heads=..., head_dim=...)`.

    ??? cite "Reference"

        ```bibtex
        @inproceedings{miyato2025akorn,
          title={Artificial Kuramoto Oscillatory Neurons},
          author={Miyato, Takeru and L{\"o}we, Sindy and Geiger, Andreas and
                  Welling, Max},
          booktitle={International Conference on Learning Representations},
          year={2025}}
        ```
    """

    wq: Array
    wk: Array
    wv: Array
    wo: Array
    mask: Bool[Array, "osc osc"] | None
    strength: ScalarLike | AbstractSchedule
    #: State-dependent blocks J_ij(x): not a fixed linear operator.
    linear: ClassVar[bool] = False

    def __init__(
        self,
        wq: Real[ArrayLike, "heads dim head_dim"],
        wk: Real[ArrayLike, "heads dim head_dim"],
        wv: Real[ArrayLike, "heads dim head_dim"],
        wo: Real[ArrayLike, "heads head_dim dim"],
        *,
        mask: Bool[ArrayLike, "osc osc"] | None = None,
        strength: Strength = 1.0,
    ):
        arrays = {}
        for name, w in (("wq", wq), ("wk", wk), ("wv", wv)):
            w = jnp.asarray(w)
            if w.ndim != 3:
                raise ValueError(
                    f"`{name}` must have shape (heads, dim, head_dim); got shape {w.shape}"
                )
            arrays[name] = w
        wo = jnp.asarray(wo)
        heads, dim, head_dim = arrays["wq"].shape
        for name in ("wk", "wv"):
            if arrays[name].shape != (heads, dim, head_dim):
                raise ValueError(
                    f"`{name}` must have the shape of `wq` {(heads, dim, head_dim)}; got "
                    f"{arrays[name].shape}"
                )
        if wo.shape != (heads, head_dim, dim):
            raise ValueError(
                f"`wo` must have shape (heads, head_dim, dim) = {(heads, head_dim, dim)}; "
                f"got {wo.shape}"
            )
        arrays["wo"] = wo
        for name, w in arrays.items():
            if not jnp.issubdtype(w.dtype, jnp.floating):
                arrays[name] = w.astype(jnp.result_type(float))
            check_finite(name, arrays[name])
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
                raise ValueError(
                    f"`mask` must be a square (osc, osc) boolean array; got shape "
                    f"{mask.shape}"
                )
            if mask.dtype != jnp.bool_:
                raise ValueError(f"`mask` must be boolean; got dtype {mask.dtype}")
            if is_concrete(mask) and not np.all(np.asarray(mask).any(axis=1)):
                empty = int(np.sum(~np.asarray(mask).any(axis=1)))
                raise ValueError(
                    f"`mask` has {empty} row(s) with no True entry: every receiver must "
                    "attend to at least one sender"
                )
        self.wq, self.wk, self.wv, self.wo = (
            arrays["wq"],
            arrays["wk"],
            arrays["wv"],
            arrays["wo"],
        )
        self.mask = mask
        self.strength = check_strength(strength)

    @classmethod
    def init(
        cls,
        key: Key,
        dim: int,
        *,
        heads: int = 1,
        head_dim: int | None = None,
        mask: Bool[ArrayLike, "osc osc"] | None = None,
        strength: Strength = 1.0,
        dtype=None,
    ) -> AttentionCoupling:
        """Random weights, i.i.d. normal with variance 1/fan-in (LeCun).

        **Arguments:**

        - `key`: PRNG key.
        - `dim`: oscillator dimension.
        - `heads`: number of heads (default 1). (Keyword only, as are the rest.)
        - `head_dim`: per-head width (default `dim`).
        - `mask`, `strength`: as in the constructor.
        """
        for name, v in (("dim", dim), ("heads", heads)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be a positive int; got {v!r}")
        head_dim = dim if head_dim is None else head_dim
        if not isinstance(head_dim, int) or head_dim < 1:
            raise ValueError(f"`head_dim` must be a positive int; got {head_dim!r}")
        dtype = jnp.result_type(float) if dtype is None else dtype
        kq, kk, kv, ko = jax.random.split(key, 4)
        s_in = 1.0 / math.sqrt(dim)
        s_out = 1.0 / math.sqrt(heads * head_dim)
        shape = (heads, dim, head_dim)
        return cls(
            s_in * jax.random.normal(kq, shape, dtype),
            s_in * jax.random.normal(kk, shape, dtype),
            s_in * jax.random.normal(kv, shape, dtype),
            s_out * jax.random.normal(ko, (heads, head_dim, dim), dtype),
            mask=mask,
            strength=strength,
        )

    @property
    def n_osc(self) -> int | None:
        return None if self.mask is None else self.mask.shape[0]

    @property
    def dim(self) -> int:
        return self.wq.shape[1]

    @property
    def heads(self) -> int:
        return self.wq.shape[0]

    def weights(self, x: SphereState) -> Float[Array, "heads osc osc"]:
        """Attention weights $A^h_{ij}(x)$, shape `(heads, osc, osc)`; rows sum to 1."""
        x = jnp.asarray(x)
        q = jnp.einsum("ia,had->hid", x, self.wq.astype(x.dtype), precision=_HIGHEST)
        k = jnp.einsum("ja,had->hjd", x, self.wk.astype(x.dtype), precision=_HIGHEST)
        logits = jnp.einsum("hid,hjd->hij", q, k, precision=_HIGHEST)
        logits = logits / jnp.sqrt(jnp.asarray(self.wq.shape[2], x.dtype))
        if self.mask is not None:
            m: Bool[Array, "osc osc"] = self.mask
            logits = jnp.where(m[None], logits, -jnp.inf)
        return jax.nn.softmax(logits, axis=-1)

    def apply(self, x: SphereState, t: ScalarLike = 0.0) -> SphereState:
        x = jnp.asarray(x)
        a = self.weights(x)
        v = jnp.einsum("ja,had->hjd", x, self.wv.astype(x.dtype), precision=_HIGHEST)
        mixed = jnp.einsum("hij,hjd->hid", a, v, precision=_HIGHEST)
        out = jnp.einsum(
            "hid,hda->ia", mixed, self.wo.astype(x.dtype), precision=_HIGHEST
        )
        return evaluate(self.strength, t) * out

    def blocks(self, x: SphereState) -> Float[Array, "osc osc dim dim"]:
        r"""The state-dependent blocks $J_{ij}(x) = s\sum_h A^h_{ij}(x) W^{h\top}_O
        W^{h\top}_V$ at time 0, shape `(osc, osc, dim, dim)`, so that
        `apply(x) == einsum("ijab,jb->ia", blocks(x), x)`."""
        x = jnp.asarray(x)
        a = self.weights(x)
        m = jnp.einsum(
            "hbd,hda->hab",
            self.wv.astype(x.dtype),
            self.wo.astype(x.dtype),
            precision=_HIGHEST,
        )
        return evaluate(self.strength, 0.0) * jnp.einsum(
            "hij,hab->ijab", a, m, precision=_HIGHEST
        )
