r"""KuraNet's diagnostic of a coupling against node features: $c_x$ (KuraNet eq. 7).

Kept apart from `kuranet.py` (the coupling network, model and loss): it reads any
coupling matrix, learned or not.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["feature_correlation"]


def feature_correlation(K: Float[ArrayLike, "n n"], features: Float[ArrayLike, "n d"]) -> Array:
    r"""The graph-induced feature correlation $c_x$ (KuraNet eq. 7; Brede 2008).

    $$c_x = \frac{\sum_{ij} K_{ij}\,\langle x_i - \bar x,\ x_j - \bar x\rangle}
                 {\sum_{ij} K_{ij}\,\lVert x_i - \bar x\rVert^2},
      \qquad \bar x = \frac1n\sum_i x_i .$$

    Positive when strongly coupled nodes have similar features (assortative coupling),
    negative when coupling joins dissimilar ones (e.g. large $K_{ij}$ between
    oscillators of opposite frequency, which is how a trained global-synchrony network
    pulls the tails of $g(\omega)$ together), about 0 for coupling unrelated to the
    features. A 1-D feature array is taken as one feature per node.

    **Arguments:**

    - `K`: coupling matrix `(n, n)`.
    - `features`: node features `(n, d)` or `(n,)`.

    **Returns:** a scalar.
    """
    K = jnp.asarray(K)
    x = jnp.asarray(features)
    if x.ndim == 1:
        x = x[:, None]
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"`K` must be a square (n, n) matrix; got shape {K.shape}")
    if x.ndim != 2 or x.shape[0] != K.shape[0]:
        raise ValueError(
            f"`features` must have shape ({K.shape[0]}, d) or ({K.shape[0]},) to match "
            f"`K`; got shape {x.shape}"
        )
    x = x.astype(jnp.result_type(K.dtype, x.dtype, float))
    xc = x - jnp.mean(x, axis=0)
    gram = xc @ xc.T
    num = jnp.sum(K * gram)
    den = jnp.sum(K * jnp.diag(gram)[:, None])
    return num / den
