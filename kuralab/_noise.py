r"""Noise: `kl.Noise(D)` adds $\sqrt{2 D(t)}\, Z(\theta_i) \circ dW_i$ to each phase.

By default $Z \equiv 1$ (additive noise) and the $W_i$ are independent. Correlated
noise (`correlation=`, `factor=`, `common=`) mixes the Brownian motions across nodes
(`kuralab._noise_mixing`); a phase sensitivity `sensitivity=Z` makes the noise
multiplicative, read in the Stratonovich sense (the physics of a phase-reduced
oscillator driven by smooth noise).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._misc import as_float_array, check_finite, is_concrete
from ._noise_mixing import NoiseField, check_common, check_correlation, check_factor, root
from ._schedules import AbstractSchedule, Table, evaluate

#: Named phase sensitivities Z(theta) (phase response curves).
SENSITIVITIES: dict[str, Callable] = {
    "sin": jnp.sin,
    "cos": jnp.cos,
    "1-cos": lambda x: 1.0 - jnp.cos(x),
}


class Noise(eqx.Module):
    r"""White noise with diffusion coefficient $D$, optionally correlated across nodes
    and phase dependent:

    $$d\theta_i = \dots + \sqrt{2 D_i(t)}\; Z(\theta_i) \circ dW_i,\qquad
    \mathbb{E}[dW_i\, dW_j] = C_{ij}\, dt,\quad C_{ii} = 1.$$

    The convention is the seeds' (DESIGN.md §4): $D$ is a diffusion coefficient, so with
    $Z \equiv 1$ a free phase spreads as $\mathrm{Var}[\theta(t)] = 2 D t$, and the
    increments over a step have covariance $2\sqrt{D_i D_j}\, C_{ij}\, dt$.

    **Arguments:**

    - `D`: a scalar, a per-oscillator array `(osc,)`, or a schedule `D(t)`; `D >= 0`.
    - `correlation`: an `(osc, osc)` correlation matrix $C$ (symmetric, unit diagonal,
      positive semi-definite; singular is fine). O(N^2) memory and work per step.
    - `factor`: an `(osc, r)` factor $F$ with row norms <= 1:
      $C = F F^\top + \mathrm{diag}(1 - |F_i|^2)$, i.e. $C = F F^\top$ when every row has
      unit norm. O(N r).
    - `common`: the fraction $c \in [0, 1]$ (scalar or `(osc,)`) of noise shared by all
      nodes, $dW_i = \sqrt{c}\, dW_0 + \sqrt{1 - c}\, dW_i'$ (so $C_{ij} = c$, i != j).
      O(N).
    - `sensitivity`: $Z(\theta)$, `"sin"`, `"cos"`, `"1-cos"` or an elementwise callable;
      `None` (default) is $Z \equiv 1$. The SDE is then Stratonovich: `kl.simulate` adds
      the Ito drift $D_i Z(\theta_i) Z'(\theta_i)$ for solvers that converge to the Ito
      solution ("euler"; with delays "euler" and "heun") and not for the Stratonovich
      ones ("heun", "euler_heun"). "sra1"/"shark" need additive noise and refuse it.

    At most one of `correlation`, `factor`, `common`. Without them the Brownian path and
    every increment are those of independent noise (bit-for-bit the same per key).
    """

    D: Array | AbstractSchedule
    correlation_root: Float[Array, "osc osc"] | None
    factor: Float[Array, "osc r"] | None
    common: Array | None
    sensitivity: str | Callable | None = eqx.field(static=True)

    def __init__(
        self,
        D: ArrayLike | AbstractSchedule,
        *,
        correlation: ArrayLike | None = None,
        factor: ArrayLike | None = None,
        common: ArrayLike | None = None,
        sensitivity: str | Callable | None = None,
    ):
        if isinstance(D, AbstractSchedule):
            self.D = D
        else:
            check_finite("D", D)
            D = as_float_array(D)
            if D.ndim > 1:
                raise ValueError(
                    f"`D` must be a scalar, shape (osc,) or a schedule; got shape {D.shape}"
                )
            if is_concrete(D) and np.any(np.asarray(D) < 0):
                raise ValueError(f"`D` must be >= 0 (a diffusion coefficient); got {D}")
            self.D = D
        given = [n for n, v in (("correlation", correlation), ("factor", factor),
                                ("common", common)) if v is not None]
        if len(given) > 1:
            raise ValueError(
                f"give at most one of `correlation`, `factor`, `common`; got {given}"
            )
        self.correlation_root = (
            None if correlation is None else root(check_correlation(correlation))
        )
        self.factor = None if factor is None else check_factor(factor)
        self.common = None if common is None else check_common(common)
        if sensitivity is not None and not callable(sensitivity):
            if sensitivity not in SENSITIVITIES:
                raise ValueError(
                    f"`sensitivity` must be one of {sorted(SENSITIVITIES)}, a callable "
                    f"Z(theta) or None; got {sensitivity!r}"
                )
        self.sensitivity = sensitivity

    # -- structure ------------------------------------------------------------------

    @property
    def is_diagonal(self) -> bool:
        """Independent noise across nodes (no correlation, factor or common part)."""
        return self.correlation_root is None and self.factor is None and self.common is None

    @property
    def is_additive(self) -> bool:
        """No phase sensitivity: Ito and Stratonovich agree."""
        return self.sensitivity is None

    def check_size(self, n: int) -> None:
        """The mixing matches `n` oscillators (one-line errors naming the argument)."""
        for name, arr, shapes in (
            ("correlation", self.correlation_root, [(n, n)]),
            ("common", self.common, [(), (n,)]),
        ):
            if arr is not None and arr.shape not in shapes:
                raise ValueError(
                    f"`noise.{name}` must have shape {' or '.join(map(str, shapes))} "
                    f"for {n} oscillators; got {arr.shape}"
                )
        if self.factor is not None and self.factor.shape[0] != n:
            raise ValueError(
                f"`noise.factor` must have shape ({n}, r) for {n} oscillators; got "
                f"{self.factor.shape}"
            )

    def brownian_shape(self, n: int) -> tuple[int, ...]:
        """Shape of the standard Brownian motion that drives `n` nodes."""
        if self.factor is not None:
            return (n + self.factor.shape[1],)
        if self.common is not None:
            return (n + 1,)
        return (n,)

    # -- fields ---------------------------------------------------------------------

    def amplitude(self, t, shape) -> Array:
        """$g = \\sqrt{2 D(t)}$ broadcast to `shape`."""
        return jnp.broadcast_to(jnp.sqrt(2 * evaluate(self.D, t)), shape)

    def _z(self):
        s = self.sensitivity
        return SENSITIVITIES[s] if isinstance(s, str) else s

    def scale(self, t, theta: Float[Array, " osc"]) -> Float[Array, " osc"]:
        """Per-node amplitude $\\sqrt{2 D_i(t)}\\, Z(\\theta_i)$."""
        g = self.amplitude(t, theta.shape)
        return g if self.sensitivity is None else g * self._z()(theta)

    def field(self, t, theta: Float[Array, " osc"]) -> NoiseField | None:
        """The mixed noise field at `(t, theta)`, or `None` for independent noise."""
        if self.is_diagonal:
            return None
        n = theta.shape[0]
        dtype = theta.dtype
        if self.correlation_root is not None:
            mixing = NoiseField(None, self.correlation_root.astype(dtype), 0)
        else:
            if self.factor is not None:
                F = self.factor.astype(dtype)
            else:
                F = jnp.broadcast_to(jnp.sqrt(self.common.astype(dtype)), (n,))[:, None]
            idio = jnp.sqrt(jnp.clip(1.0 - jnp.sum(F**2, axis=1), 0.0, None))
            mixing = NoiseField(idio, F, n)
        return mixing.scaled(self.scale(t, theta))

    def ito_correction(self, t, theta: Float[Array, " osc"]) -> Array | None:
        r"""Ito drift of the Stratonovich noise: $D_i(t) Z(\theta_i) Z'(\theta_i)$ (the
        $\tfrac12 \sum_k b_{ik} \partial_i b_{ik}$ of $b = \mathrm{diag}(g Z) L$, with
        $\sum_k L_{ik}^2 = C_{ii} = 1$ whatever the correlation); `None` if additive."""
        if self.sensitivity is None:
            return None
        z, dz = jax.jvp(self._z(), (theta,), (jnp.ones_like(theta),))
        return jnp.broadcast_to(evaluate(self.D, t), theta.shape) * z * dz

    def check_nonnegative(self, t0: float, t1: float):
        """Best-effort check that a scheduled D(t) stays >= 0 on [t0, t1].

        Ramps are monotone between their ends and tables piecewise linear, so checking
        the ends and the table knots suffices for kuralab's schedules.
        """
        if not isinstance(self.D, AbstractSchedule):
            return
        ts = [t0, t1]
        if isinstance(self.D, Table) and is_concrete(self.D.ts):
            ts += [float(t) for t in np.asarray(self.D.ts) if t0 <= t <= t1]
        for t in ts:
            value = self.D(t)
            if is_concrete(value) and np.any(np.asarray(value) < 0):
                raise ValueError(f"noise `D(t)` must be >= 0; D({t:g}) = {value}")
