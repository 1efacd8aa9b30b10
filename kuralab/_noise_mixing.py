r"""How the Brownian motions of correlated noise are mixed across nodes.

Three ways to say that the noise of node $i$ is correlated with that of node $j$, all
with unit variance per node (the correlation matrix $C$ has $C_{ii} = 1$):

- `correlation=C`, an `(osc, osc)` correlation matrix: $dW = L\, dB$ with
  $L L^\top = C$ ($L = V \sqrt{\Lambda}$ from $C = V \Lambda V^\top$, which also
  serves singular $C$), $B$ a standard Brownian motion of shape `(osc,)`. O(N^2).
- `factor=F`, an `(osc, r)` factor: $dW_i = \sqrt{1 - |F_i|^2}\, dB_i +
  \sum_k F_{ik}\, dB_{N+k}$, so $C = F F^\top + \mathrm{diag}(1 - |F_i|^2)$ (exactly
  $F F^\top$ when every row has unit norm); $B$ has shape `(osc + r,)`. O(N r).
- `common=c`, a fraction shared by all nodes (scalar or `(osc,)`, in [0, 1]):
  $dW_i = \sqrt{c_i}\, dB_0 + \sqrt{1 - c_i}\, dB_i'$, the factor $F = \sqrt{c}$ with
  r = 1, so $C_{ij} = \sqrt{c_i c_j}$ for $i \ne j$.

`NoiseField` is the diffusion vector field of such noise at one time and state: the
increment is `diag * dB[:osc] + matrix @ dB[offset:]`, linear in its leaves, so that
diffrax's additive-noise solvers (SRA1, ShARK), which difference the field between
times, see a field of the right form.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._misc import as_float_array, check_finite, is_concrete

__all__ = ["NoiseField", "check_correlation", "check_factor", "check_common", "root"]

#: Absolute tolerance of the symmetry, unit-diagonal and eigenvalue checks (float32
#: inputs carry ~1e-7 relative rounding; eigenvalues of a PSD matrix computed in
#: float64 from float32 entries are >= -N * 1e-7 * max|lambda|).
TOL = 1e-6


def check_correlation(C: ArrayLike) -> Array:
    """A correlation matrix: square, finite, symmetric, unit diagonal, PSD."""
    check_finite("correlation", C)
    C = as_float_array(C)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(
            f"`correlation` must be a square (osc, osc) matrix; got shape {C.shape}"
        )
    if not is_concrete(C):
        return C
    c = np.asarray(C, dtype=np.float64)
    asym = np.max(np.abs(c - c.T), initial=0.0)
    if asym > TOL:
        raise ValueError(
            f"`correlation` must be symmetric; max |C - C^T| = {asym:.3g}"
        )
    diag = np.max(np.abs(np.diag(c) - 1.0), initial=0.0)
    if diag > TOL:
        raise ValueError(
            "`correlation` must have a unit diagonal (noise variance is set by D); "
            f"max |C_ii - 1| = {diag:.3g}"
        )
    lam = np.linalg.eigvalsh(c)
    if lam.size and lam[0] < -TOL * max(1.0, lam[-1]) * c.shape[0]:
        raise ValueError(
            "`correlation` must be positive semi-definite; smallest eigenvalue "
            f"{lam[0]:.3g}"
        )
    return C


def root(C: Array) -> Float[Array, "osc osc"]:
    """$L = V \\sqrt{\\max(\\Lambda, 0)}$ with $L L^T = C$ (works for singular C)."""
    if is_concrete(C):
        lam, V = np.linalg.eigh(np.asarray(C, dtype=np.float64))
        return jnp.asarray(V * np.sqrt(np.clip(lam, 0.0, None)), C.dtype)
    lam, V = jnp.linalg.eigh(C)
    return V * jnp.sqrt(jnp.clip(lam, 0.0, None))


def check_factor(F: ArrayLike) -> Array:
    """A factor `(osc, r)` whose rows have norm <= 1."""
    check_finite("factor", F)
    F = as_float_array(F)
    if F.ndim != 2 or F.shape[1] < 1:
        raise ValueError(f"`factor` must have shape (osc, r) with r >= 1; got {F.shape}")
    if is_concrete(F):
        norm2 = np.max(np.sum(np.asarray(F, np.float64) ** 2, axis=1), initial=0.0)
        if norm2 > 1.0 + TOL:
            raise ValueError(
                "`factor` rows must have norm <= 1 (each node's noise has unit "
                f"variance, C = F F^T + diag(1 - |F_i|^2)); max |F_i|^2 = {norm2:.3g}"
            )
    return F


def check_common(c: ArrayLike) -> Array:
    """A common fraction: scalar or `(osc,)`, in [0, 1]."""
    check_finite("common", c)
    c = as_float_array(c)
    if c.ndim > 1:
        raise ValueError(f"`common` must be a scalar or shape (osc,); got {c.shape}")
    if is_concrete(c) and (np.any(np.asarray(c) < 0) or np.any(np.asarray(c) > 1)):
        raise ValueError(f"`common` must lie in [0, 1] (a fraction); got {c}")
    return c


class NoiseField(eqx.Module):
    """Noise vector field `dy = diag * dB[:osc] + matrix @ dB[offset:]`.

    - `diag`: `(osc,)` or `None`; `matrix`: `(osc, m)` or `None`;
    - `offset`: where `matrix`'s Brownian motions start (`osc` after a diagonal part,
      else 0).
    """

    diag: Float[Array, " osc"] | None
    matrix: Float[Array, "osc m"] | None
    offset: int = eqx.field(static=True)

    def apply(self, dB: Float[Array, " m_total"]) -> Float[Array, " osc"]:
        out = 0.0
        if self.diag is not None:
            out = self.diag * dB[: self.diag.shape[0]]
        if self.matrix is not None:
            out = out + self.matrix @ dB[self.offset :]
        return out

    def scaled(self, s: Float[Array, " osc"]) -> NoiseField:
        """Rows multiplied by `s` (per-node amplitude and sensitivity)."""
        return NoiseField(
            None if self.diag is None else s * self.diag,
            None if self.matrix is None else s[:, None] * self.matrix,
            self.offset,
        )

    def covariance(self) -> Float[Array, "osc osc"]:
        """The increments' covariance per unit time, `diag^2 I + matrix matrix^T`."""
        cov = 0.0
        if self.diag is not None:
            cov = jnp.diag(self.diag**2)
        if self.matrix is not None:
            cov = cov + self.matrix @ self.matrix.T
        return cov
