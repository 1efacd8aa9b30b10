r"""Vector oscillators on spheres: the AKOrN (generalised Kuramoto) model.

$$\dot x_i = \Omega_i x_i + \operatorname{Proj}_{x_i}\Big(c_i + \sum_j J_{ij} x_j\Big),\qquad
\operatorname{Proj}_x(y) = y - \langle y, x\rangle x,\qquad |x_i| = 1 .$$

State: `(osc, dim)` unit vectors (a grid of sites is flattened row-major into `osc`, as in
`kl.LatticeCoupling`). $\Omega_i$ is antisymmetric, so $\Omega_i x_i \perp x_i$ and the
flow stays on the product of spheres; `kl.simulate` also renormalises after every step.

Natural-frequency generators are parameterised so they stay antisymmetric when learned:
`SkewOmega` (a general skew matrix, $\Omega = \tfrac12(G - G^\top)$) and `BlockOmega`
(2x2 rotation blocks with one rate per plane, as in the AKOrN code).
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._coupling import (
    AbstractCoupling,
    AbstractVectorCoupling,
    coupling_blocks,
    is_autonomous,
)
from .._custom_types import Key
from .._misc import check_finite, is_concrete
from ._theorems import relative
from .base import AbstractSphereModel, LyapunovHypotheses

#: Hypotheses of the AKOrN theorems (App. F / G), in report order.
SPHERE_HYPOTHESES = {
    "linear_autonomous": "J is a fixed linear operator (not attention, no schedule)",
    "block_symmetric": "J_ij = J_ji^T (J symmetric as an (osc dim)^2 matrix)",
    "scalar_blocks": "J_ij = J_ij I (every block a multiple of the identity)",
    "omega_shared": "Omega_i = Omega for every oscillator",
    "omega_c_zero": "Omega_i c_i = 0 for every oscillator",
    "commutator_psd": "[J, Omega] = J Omega - Omega J is positive semi-definite "
    "(symmetric part; trace 0, so this means it vanishes)",
}

_HIGHEST = jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------------------------
# Omega: antisymmetric generators
# ---------------------------------------------------------------------------------


class AbstractOmega(eqx.Module):
    r"""Antisymmetric natural-frequency generators: one shared $\Omega$ (`dim x dim`) or
    one per oscillator $\Omega_i$ (`osc x dim x dim`). `matrix()` returns the
    generator(s); every parameterisation guarantees $\Omega^\top = -\Omega$ exactly."""

    @abc.abstractmethod
    def matrix(self) -> Float[Array, "*osc dim dim"]:
        """The generator, shape `(dim, dim)` (shared) or `(osc, dim, dim)`."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Vector dimension."""

    @property
    @abc.abstractmethod
    def n_osc(self) -> int | None:
        """Number of oscillators for per-oscillator generators; None when shared."""

    @property
    def shared(self) -> bool:
        """True when one generator serves every oscillator."""
        return self.n_osc is None

    def apply(self, x: Float[Array, "osc dim"]) -> Float[Array, "osc dim"]:
        r"""$(\Omega_i x_i)_i$ for a state of shape `(osc, dim)`."""
        m = self.matrix().astype(x.dtype)
        if m.ndim == 2:
            return jnp.einsum("ab,ib->ia", m, x, precision=_HIGHEST)
        return jnp.einsum("iab,ib->ia", m, x, precision=_HIGHEST)


class SkewOmega(AbstractOmega):
    r"""A general antisymmetric generator, $\Omega = \tfrac12 (G - G^\top)$.

    Given an antisymmetric `matrix`, $\Omega$ equals it exactly; the parameterisation keeps
    it antisymmetric under gradient updates of $G$.

    **Arguments:**

    - `matrix`: `(dim, dim)` (shared) or `(osc, dim, dim)` (per oscillator), rad per
      unit time. Must be antisymmetric unless `antisymmetrise=True`.
    - `antisymmetrise`: take the antisymmetric part of any `matrix` instead of
      rejecting a non-antisymmetric one (default `False`). (Keyword only.)
    """

    generator: Array

    def __init__(self, matrix: ArrayLike, *, antisymmetrise: bool = False):
        m = jnp.asarray(matrix)
        if not jnp.issubdtype(m.dtype, jnp.floating):
            m = m.astype(jnp.result_type(float))
        if m.ndim not in (2, 3) or m.shape[-1] != m.shape[-2] or m.shape[-1] < 1:
            raise ValueError(
                "`omega` must have shape (dim, dim) (shared) or (osc, dim, dim) (one per "
                f"oscillator); got shape {m.shape}"
            )
        check_finite("omega", m)
        if not antisymmetrise and is_concrete(m):
            a = np.asarray(m)
            defect = np.max(np.abs(a + np.swapaxes(a, -1, -2)), initial=0.0)
            if defect > 0:
                raise ValueError(
                    "`omega` must be antisymmetric (Omega^T = -Omega); max |Omega + "
                    f"Omega^T| = {defect:.3g}. Pass kl.SkewOmega(matrix, "
                    "antisymmetrise=True) to use its antisymmetric part"
                )
        self.generator = m

    def matrix(self):
        g = self.generator
        return 0.5 * (g - jnp.swapaxes(g, -1, -2))

    @property
    def dim(self) -> int:
        return self.generator.shape[-1]

    @property
    def n_osc(self) -> int | None:
        return self.generator.shape[0] if self.generator.ndim == 3 else None


class BlockOmega(AbstractOmega):
    r"""Rotation in coordinate planes: $\Omega = \operatorname{blockdiag}_k\,
    \omega_k \begin{pmatrix}0 & -1\\ 1 & 0\end{pmatrix}$ on the pairs `(2k, 2k + 1)`.

    With `dim = 2` and $x = (\cos\theta, \sin\theta)$ this is $\dot\theta = \omega$, the
    phase model's natural frequency. An odd `dim` leaves the last coordinate fixed.

    The AKOrN `OmegaLayer` acts on a channel pair $(a, b)$ as $(\omega b, -\omega a)$
    with $\omega = \|p\| \ge 0$: that is `BlockOmega(-omega)` (the opposite sense).

    **Arguments:**

    - `rates`: $\omega_k$ in rad per unit time, shape `(dim // 2,)` (shared) or
      `(osc, dim // 2)` (per oscillator).
    - `dim`: the vector dimension, `2 * rates.shape[-1]` (default) or one more.
    """

    rates: Array
    _dim: int = eqx.field(static=True)

    def __init__(self, rates: ArrayLike, dim: int | None = None):
        r = jnp.asarray(rates)
        if not jnp.issubdtype(r.dtype, jnp.floating):
            r = r.astype(jnp.result_type(float))
        if r.ndim not in (1, 2) or r.shape[-1] < 1:
            raise ValueError(
                "`rates` must have shape (dim // 2,) (shared) or (osc, dim // 2) (per "
                f"oscillator); got shape {r.shape}"
            )
        check_finite("rates", r)
        k = r.shape[-1]
        dim = 2 * k if dim is None else dim
        if not isinstance(dim, int) or dim not in (2 * k, 2 * k + 1):
            raise ValueError(
                f"`dim` must be {2 * k} or {2 * k + 1} for {k} rotation plane(s); got "
                f"{dim!r}"
            )
        self.rates = r
        self._dim = dim

    def matrix(self):
        r = self.rates
        k = r.shape[-1]
        gen = jnp.zeros((k, self._dim, self._dim), r.dtype)
        idx = jnp.arange(k)
        gen = gen.at[idx, 2 * idx + 1, 2 * idx].set(1.0)
        gen = gen.at[idx, 2 * idx, 2 * idx + 1].set(-1.0)
        return jnp.tensordot(r, gen, axes=1, precision=_HIGHEST)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def n_osc(self) -> int | None:
        return self.rates.shape[0] if self.rates.ndim == 2 else None


def _as_omega(omega) -> AbstractOmega | None:
    if omega is None or isinstance(omega, AbstractOmega):
        return omega
    if isinstance(omega, eqx.Module):
        raise TypeError(
            "`omega` must be None, an antisymmetric array or a kl.AbstractOmega "
            f"(kl.SkewOmega, kl.BlockOmega); got {type(omega).__name__}"
        )
    return SkewOmega(omega)


# ---------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------


class SphereKuramoto(AbstractSphereModel):
    r"""Vector oscillators on spheres (AKOrN, the generalised Kuramoto model).

    $$\dot x_i = \Omega_i x_i + \operatorname{Proj}_{x_i}\Big(c_i + \sum_j J_{ij} x_j\Big),
      \qquad \operatorname{Proj}_x(y) = y - \langle y, x\rangle x,\quad x_i\in S^{d-1}$$

    with antisymmetric $\Omega_i$ (natural frequencies), stimulus $c_i$ (the AKOrN
    "conditional stimuli", a symmetry-breaking field) and coupling blocks $J_{ij}$
    (row i receives).

    The coupling is either a phase-model coupling (`kl.MeanField`, `kl.DenseCoupling`,
    `kl.SparseCoupling`, `kl.LatticeCoupling`), which gives scalar blocks
    $J_{ij} = K_{ij} I$, or a vector coupling (`kl.BlockCoupling`,
    `kl.LatticeBlockCoupling`, the state-dependent `kl.AttentionCoupling`).

    Energy (AKOrN eq. 3): $E = -\tfrac12 \sum_{ij} x_i^\top J_{ij} x_j - \sum_i c_i^\top x_i$,
    see `kl.energy` and `kl.check_lyapunov` for when it is a Lyapunov function.

    Reductions (tested): with `dim = 2`, $x = (\cos\theta, \sin\theta)$, scalar blocks
    $K_{ij} I$, `BlockOmega(omega[:, None])` and $c_i = h_i(\cos\psi_i, \sin\psi_i)$ the
    model is `kl.Kuramoto(omega, K, forcing=kl.Forcing(h, psi))` with $\theta = \arg x$.
    The AKOrN discrete update is `simulate(..., solver=kl.AKOrNStep(), dt=gamma)`.

    **Arguments:**

    - `omega`: `None` (no rotation), an antisymmetric array `(dim, dim)` (shared) or
      `(osc, dim, dim)` (per oscillator), or a `kl.SkewOmega` / `kl.BlockOmega`;
      rad per unit time.
    - `coupling`: a coupling (see above), or `None` for $J = 0$.
    - `stimulus`: $c$, shape `(osc, dim)` or `(dim,)` (the same for every oscillator;
      broadcast), or `None` for $c = 0$.
    - `n_osc`, `dim`: only needed when no other argument fixes them (e.g. `omega` shared
      or `None`, a `kl.MeanField` coupling and no stimulus). (Keyword only.)

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

    omega: AbstractOmega | None
    coupling: AbstractCoupling | AbstractVectorCoupling | None
    stimulus: Array | None
    n: int = eqx.field(static=True)
    d: int = eqx.field(static=True)

    def __init__(
        self,
        omega,
        coupling,
        stimulus: ArrayLike | None = None,
        *,
        n_osc: int | None = None,
        dim: int | None = None,
    ):
        omega = _as_omega(omega)
        if coupling is not None and not isinstance(
            coupling, AbstractCoupling | AbstractVectorCoupling
        ):
            raise TypeError(
                "`coupling` must be a kuralab coupling (kl.MeanField, kl.DenseCoupling, "
                "kl.SparseCoupling, kl.LatticeCoupling, kl.BlockCoupling, "
                "kl.LatticeBlockCoupling, kl.AttentionCoupling) or None; got "
                f"{type(coupling).__name__}"
            )
        for name, v in (("n_osc", n_osc), ("dim", dim)):
            if v is not None and (not isinstance(v, int | np.integer) or v < 1):
                raise ValueError(f"`{name}` must be a positive int; got {v!r}")
        if stimulus is not None:
            stimulus = jnp.asarray(stimulus)
            if not jnp.issubdtype(stimulus.dtype, jnp.floating):
                stimulus = stimulus.astype(jnp.result_type(float))
            if stimulus.ndim not in (1, 2):
                raise ValueError(
                    "`stimulus` must have shape (osc, dim) or (dim,); got shape "
                    f"{stimulus.shape}"
                )
            check_finite("stimulus", stimulus)
        # Every source that fixes the number of oscillators / the dimension must agree.
        osc_src, dim_src = {}, {}
        if n_osc is not None:
            osc_src["n_osc"] = int(n_osc)
        if dim is not None:
            dim_src["dim"] = int(dim)
        if omega is not None:
            dim_src["omega"] = omega.dim
            if omega.n_osc is not None:
                osc_src["omega"] = omega.n_osc
        if coupling is not None:
            if coupling.n_osc is not None:
                osc_src["coupling"] = coupling.n_osc
            cdim = getattr(coupling, "dim", None)
            if isinstance(coupling, AbstractVectorCoupling) and cdim is not None:
                dim_src["coupling"] = cdim
        if stimulus is not None:
            dim_src["stimulus"] = stimulus.shape[-1]
            if stimulus.ndim == 2:
                osc_src["stimulus"] = stimulus.shape[0]
        n = _agree(
            "number of oscillators",
            osc_src,
            "give `n_osc=`, a stimulus of shape (osc, dim), a per-oscillator omega or a "
            "coupling built for a size",
        )
        d = _agree(
            "dimension",
            dim_src,
            "give `dim=`, `omega`, a stimulus or a vector coupling (kl.BlockCoupling, "
            "...)",
        )
        if stimulus is not None and stimulus.ndim == 1:
            stimulus = jnp.broadcast_to(stimulus, (n, d))
        self.omega = omega
        self.coupling = coupling
        self.stimulus = stimulus
        self.n = n
        self.d = d

    @property
    def n_osc(self) -> int:
        return self.n

    @property
    def dim(self) -> int:
        return self.d

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (self.n, self.d)

    @property
    def sender_delays(self):
        return None

    def diffusion(self, t, y):
        return None

    def omega_matrices(self, dtype=None) -> Float[Array, "osc dim dim"]:
        """$\\Omega_i$ for every oscillator, shape `(osc, dim, dim)` (zeros if none)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        if self.omega is None:
            return jnp.zeros((self.n, self.d, self.d), dtype)
        m = self.omega.matrix().astype(dtype)
        return jnp.broadcast_to(m, (self.n, self.d, self.d))

    def stimulus_or_zeros(self, dtype=None) -> Float[Array, "osc dim"]:
        dtype = jnp.result_type(float) if dtype is None else dtype
        if self.stimulus is None:
            return jnp.zeros((self.n, self.d), dtype)
        return self.stimulus.astype(dtype)

    def field(self, t, x) -> Float[Array, "osc dim"]:
        """The AKOrN input $y_i = c_i + \\sum_j J_{ij} x_j$ (before projection)."""
        y = jnp.zeros_like(x) if self.coupling is None else self.coupling.apply(x, t)
        if self.stimulus is not None:
            y = y + self.stimulus.astype(x.dtype)
        return y

    def drift(self, t, y, y_delayed=None):
        x = y
        f = self.field(t, x)
        d = f - jnp.sum(f * x, axis=-1, keepdims=True) * x
        if self.omega is not None:
            d = d + self.omega.apply(x)
        return d

    # -- energy (AKOrN eq. 3) and its theorems (App. F / G) --------------------------

    energy_description: ClassVar[str] = (
        "AKOrN energy E = -1/2 sum_ij x_i.J_ij x_j - sum_i c_i.x_i"
    )

    def _energy_terms(self, x, t):
        """Per-oscillator `<x_i, (Jx)_i>` and `<c_i, x_i>`."""
        jx = jnp.zeros_like(x) if self.coupling is None else self.coupling.apply(x, t)
        cx = jnp.sum(self.stimulus_or_zeros(x.dtype) * x, axis=-1)
        return jnp.sum(x * jx, axis=-1), cx

    def energy(self, y, t=0.0):
        r"""$E = -\tfrac12\sum_{ij} x_i^\top J_{ij} x_j - \sum_i c_i^\top x_i$ (for
        attention, $J$ evaluated at `y`)."""
        xjx, cx = self._energy_terms(y, t)
        return -0.5 * jnp.sum(xjx) - jnp.sum(cx)

    def energy_scale(self, y, t=0.0):
        xjx, cx = self._energy_terms(y, t)
        return 0.5 * jnp.sum(jnp.abs(xjx)) + jnp.sum(jnp.abs(cx))

    def logged_energy(self, y, t=0.0):
        r"""The AKOrN reference code's logged energy $-\sum_i\langle x_i, (Jx)_i +
        c_i\rangle$ (no ½, no Ω term); see `kl.akorn_logged_energy`."""
        xjx, cx = self._energy_terms(y, t)
        return -jnp.sum(xjx) - jnp.sum(cx)

    logged_energy_descriptions: ClassVar[dict[str, str]] = {
        "E_logged": "AKOrN reference code's logged energy -sum_i x_i.((Jx)_i + c_i) "
        "(no 1/2)"
    }

    def logged_energies(self, y, t=0.0):
        return {"E_logged": self.logged_energy(y, t)}

    def lyapunov_hypotheses(self, *, max_dense: int) -> LyapunovHypotheses:
        """The hypotheses of AKOrN App. F and G (`SPHERE_HYPOTHESES`), measured.

        $J$ is materialised at `t = 0` (O((osc dim)^2) memory, at most `max_dense`)."""
        return LyapunovHypotheses(
            _sphere_defects(self, max_dense), SPHERE_HYPOTHESES, _akorn_theorem
        )


@eqx.filter_jit
def _sphere_matrices(model: SphereKuramoto, linear: bool):
    """Omega_i (n, d, d), c (n, d) and, for a linear coupling, J's blocks (n, n, d, d);
    compiled once per model structure (eager, these are many small compilations)."""
    n, d = model.state_shape
    dtype = jnp.result_type(float)
    J = coupling_blocks(model.coupling, n, d, 0.0, dtype) if linear else None
    return model.omega_matrices(dtype), model.stimulus_or_zeros(dtype), J


def _sphere_defects(model: SphereKuramoto, max_dense: int) -> dict[str, float]:
    """Relative defect of each hypothesis (0 = holds exactly; NaN = not applicable)."""
    n, d = model.state_shape
    linear = model.coupling is None or model.coupling.linear
    if linear and n * d > max_dense:
        raise ValueError(
            f"the hypotheses need J materialised as a ({n * d})^2 matrix (osc * dim = "
            f"{n * d} > max_dense = {max_dense}); raise `max_dense` or check a smaller "
            "system"
        )
    omega, c, J = (
        None if a is None else np.asarray(a, np.float64)
        for a in _sphere_matrices(model, linear)
    )  # (n, d, d), (n, d), (n, n, d, d)
    w_scale = float(np.max(np.abs(omega), initial=0.0))
    c_scale = float(np.max(np.abs(c), initial=0.0))
    out = {}
    auto = linear and is_autonomous(model.coupling)
    out["linear_autonomous"] = 0.0 if auto else 1.0
    out["block_symmetric"] = out["scalar_blocks"] = math.nan
    out["omega_shared"] = relative(
        float(np.max(np.abs(omega - omega[:1]), initial=0.0)), w_scale
    )
    wc = np.einsum("iab,ib->ia", omega, c)
    out["omega_c_zero"] = relative(
        float(np.max(np.abs(wc), initial=0.0)), w_scale * c_scale
    )
    out["commutator_psd"] = math.nan
    if not linear:
        return out
    j_scale = float(np.max(np.abs(J), initial=0.0))
    Jt = np.transpose(J, (1, 0, 3, 2))
    out["block_symmetric"] = relative(float(np.max(np.abs(J - Jt), initial=0.0)), j_scale)
    tr = np.trace(J, axis1=2, axis2=3) / d
    scalar = tr[:, :, None, None] * np.eye(d)
    out["scalar_blocks"] = relative(
        float(np.max(np.abs(J - scalar), initial=0.0)), j_scale
    )
    # [J, Omega~]_ij = J_ij Omega_j - Omega_i J_ij ; its symmetric part S.
    comm = np.einsum("ijab,jbc->ijac", J, omega) - np.einsum("iab,ijbc->ijac", omega, J)
    sym = 0.5 * (comm + np.transpose(comm, (1, 0, 3, 2)))
    out["commutator_psd"] = relative(
        float(np.max(np.abs(sym), initial=0.0)), j_scale * w_scale
    )
    return out


def _akorn_theorem(holds: dict[str, bool]) -> str:
    base = holds["linear_autonomous"] and holds["block_symmetric"]
    base = base and holds["omega_c_zero"]
    if base and holds["scalar_blocks"] and holds["omega_shared"]:
        return "AKOrN App. F"
    if base and holds["commutator_psd"]:
        return "AKOrN App. G"
    return "none"


def _agree(what: str, sources: dict, hint: str) -> int:
    values = set(sources.values())
    if not values:
        raise ValueError(f"cannot tell the {what}: no argument fixes it ({hint})")
    if len(values) > 1:
        detail = ", ".join(f"`{k}` {v}" for k, v in sources.items())
        raise ValueError(f"the arguments disagree on the {what}: {detail}")
    return int(values.pop())


# ---------------------------------------------------------------------------------
# Initial states
# ---------------------------------------------------------------------------------


def random_sphere(key: Key, shape, *, dim: int, dtype=None) -> Array:
    r"""Unit vectors i.i.d. uniform on $S^{\mathrm{dim}-1}$ (normalised Gaussians).

    **Arguments:**

    - `key`: PRNG key.
    - `shape`: leading shape, e.g. `n` or `(n,)` for one system of `n` oscillators.
    - `dim`: vector dimension, >= 1. (Keyword only.)

    **Returns:** array of shape `(*shape, dim)`.
    """
    if isinstance(shape, int | np.integer):
        shape = (int(shape),)
    shape = tuple(shape)
    if not all(isinstance(s, int | np.integer) and s >= 1 for s in shape):
        raise ValueError(f"`shape` must be positive ints; got {shape!r}")
    if not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"`dim` must be a positive int; got {dim!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    g = jax.random.normal(key, shape + (int(dim),), dtype)
    return g / jnp.linalg.norm(g, axis=-1, keepdims=True)
