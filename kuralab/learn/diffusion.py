r"""Kuramoto orientation diffusion (KODM): the forward chain, local score matching and
the reverse sampler (SCIENCE.md §3; research/reference_impls.md §3).

**The forward chain.** A state $\theta$ of one example (any shape: `(d,)` points on the
torus $T^d$, `(C, H, W)` fields) runs $T$ = `steps` Euler--Maruyama transitions with the
time step absorbed into the schedules, $i = 0, \dots, T-1$:

$$\theta_{i+1} = \mathrm{wrap}\big(\theta_i + K_i\,\mathrm{Im}(e^{-i\theta_i} Z_i)
   + K^{\mathrm{ref}}_i \sin(\psi_{\mathrm{ref}} - \theta_i) + \sigma_i z_i\big),
   \qquad z_i \sim \mathcal N(0, I),$$

with $Z_i = R e^{i\psi}$ the order parameter: the mean of $e^{i\theta}$ over every phase
of the example (`coupling="global"`; the reference's per-image mean over channels and
pixels) or a phasor convolution $Z_p = \sum_q w_{pq} e^{i\theta_q}$ over the last one or
two axes with a `kl.LatticeCoupling` (per channel). $\mathrm{Im}(e^{-i\theta} Z) =
R\sin(\psi - \theta)$. The continuous-time view is $d\theta = [K(t)R\sin(\psi - \theta)
+ K_{\mathrm{ref}}(t)\sin(\psi_{\mathrm{ref}} - \theta)]\,dt + \sqrt{2D(t)}\,dW$ with
$D_i = \sigma_i^2 / 2$ per unit step (`sde`). Defaults are the reference's: $T = 100$,
$K$ = linspace(3e-5, 0.03), $K_{\mathrm{ref}} = 1.5 K$, $\psi_{\mathrm{ref}} = 0$,
$\sigma^2$ = linspace(1e-4, 0.1).

**Indexing (and how it differs from the reference).** Schedules have length $T$;
entry $i$ drives the transition $\theta_i \to \theta_{i+1}$. `forward` returns
$\theta_1, \dots, \theta_T$ (shape `(T, *shape)`) from one scan. Score matching pairs
$(\theta_i, \theta_{i+1})$ with the target the one-step score at $\theta_{i+1}$ with
$\sigma_i$, the network's time label $i + 1$ and the weight $\sigma_i^4 / 4$. The reverse
step from $\theta_i$ uses the same entry $i - 1$ as the forward transition it undoes:

$$\theta_{i-1} = \mathrm{wrap}\big(\theta_i - K_{i-1} f(\theta_i) + \sigma_{i-1}^2\,
   \hat s(\theta_i, i) + \sigma_{i-1} z\big),\quad i = T, \dots, 1.$$

The reference instead runs 99 transitions from 100 schedule entries, weights the loss
with $\sigma_{i+1}$ while the target uses $\sigma_i$, and reverses with $K_i, \sigma_i$
at state $i$ (one index late); here all three use the transition's own entry.

**The prior** is the stationary law of the last transition with the field frozen,
$\mathrm{VM}(\psi_{\mathrm{ref}}, \kappa)$, $\kappa = 2(K_{T-1}\bar R + K^{\mathrm{ref}}_{T-1})
/ \sigma_{T-1}^2$ (= 1.2 for the defaults with the reference's $\bar R = 0.5$; the
isotropic chain's prior is uniform).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._brownian import box_muller_normals
from .._coupling import LatticeCoupling, MeanField
from .._fastmath import sincos
from .._misc import wrap_phase
from .._models.kuramoto import Forcing, Kuramoto
from .._noise import Noise
from .._schedules import Table
from .diffusion_nets import score_of, time_embedding
from .diffusion_score import von_mises_sample, wrapped_normal_score

__all__ = ["OrientationDiffusion", "IMAGE_SCALE", "to_phase", "from_phase"]

#: The reference's image map: pixels x in [-1, 1] -> theta = 0.9 pi x.
IMAGE_SCALE = 0.9 * math.pi


def to_phase(x: Float[ArrayLike, "*shape"], scale: float = IMAGE_SCALE) -> Array:
    """Pixels in [-1, 1] to phases `scale * x` (default 0.9 pi: a margin against the
    +-pi alias). Concrete input outside [-1, 1] is a ValueError."""
    x = jnp.asarray(x)
    if not isinstance(x, jax.core.Tracer):
        lo, hi = float(jnp.min(x)), float(jnp.max(x))
        if lo < -1.0 or hi > 1.0:
            raise ValueError(f"`x` must lie in [-1, 1] (image data); got range [{lo:.4g}, {hi:.4g}]")
    return scale * x


def from_phase(theta: Float[ArrayLike, "*shape"], scale: float = IMAGE_SCALE) -> Array:
    """Phases back to pixels: `clip(wrap(theta) / scale, -1, 1)`."""
    return jnp.clip(wrap_phase(jnp.asarray(theta)) / scale, -1.0, 1.0)


def _schedule(name: str, value, steps: int, positive: bool) -> np.ndarray:
    """A `(start, end)` pair -> linspace of length `steps`, or an array of that length."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == (2,) and steps != 2:
        arr = np.linspace(arr[0], arr[1], steps)
    if arr.shape != (steps,):
        raise ValueError(
            f"`{name}` must be a (start, end) pair or an array of length steps={steps}; "
            f"got shape {np.shape(value)}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite; got {arr}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"`{name}` must be > 0 at every step; min is {arr.min():.3g}")
    if not positive and np.any(arr < 0):
        raise ValueError(f"`{name}` must be >= 0 at every step; min is {arr.min():.3g}")
    return arr


class OrientationDiffusion(eqx.Module):
    r"""The Kuramoto orientation-diffusion process (module docstring for the equations).

    **Arguments:**

    - `steps`: number of forward transitions $T$ (default 100).
    - `coupling`: `"global"` (mean field per example), a `kl.LatticeCoupling` (phasor
      convolution over the state's last `len(coupling.shape)` axes, per leading index;
      its own `strength` multiplies $K_i$; normalise the kernel to sum 1 so $R \le 1$)
      or `"none"` (no synchronising coupling).
    - `k_schedule`: $K_i$, a `(start, end)` pair (linspace) or an array `(steps,)`, >= 0.
    - `noise_schedule`: $\sigma_i^2$ (variances per step), pair or array, > 0.
    - `ref_strength`: $K^{\mathrm{ref}}_i$ = `ref_strength` $\cdot K_i$ (default 1.5), or an
      array `(steps,)` of $K^{\mathrm{ref}}_i$ themselves.
    - `ref_phase`: $\psi_{\mathrm{ref}}$ (default 0).
    - `terms`: wrapping terms of the score target, $|k| \le$ `terms` (default 3).
    - `embed_dim`: size of the time embedding handed to score networks (default 64).
    """

    k: Float[Array, " steps"]
    k_ref: Float[Array, " steps"]
    sigma2: Float[Array, " steps"]
    ref_phase: float = eqx.field(static=True)
    lattice: LatticeCoupling | None
    kind: str = eqx.field(static=True)
    terms: int = eqx.field(static=True)
    embed_dim: int = eqx.field(static=True)

    def __init__(self, steps: int = 100, coupling="global", k_schedule=(3e-5, 0.03),
                 noise_schedule=(1e-4, 0.1), ref_strength=1.5, ref_phase: float = 0.0,
                 terms: int = 3, embed_dim: int = 64):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"`steps` must be an int >= 1; got {steps!r}")
        if isinstance(coupling, LatticeCoupling):
            self.kind, self.lattice = "local", coupling
        elif coupling in ("global", "none"):
            self.kind, self.lattice = coupling, None
        else:
            raise ValueError(
                f"`coupling` must be 'global', 'none' or a kl.LatticeCoupling; got {coupling!r}"
            )
        k = _schedule("k_schedule", k_schedule, steps, positive=False)
        s2 = _schedule("noise_schedule", noise_schedule, steps, positive=True)
        if np.ndim(ref_strength) == 0:
            if not np.isfinite(ref_strength) or ref_strength < 0:
                raise ValueError(f"`ref_strength` must be a finite number >= 0; got {ref_strength}")
            kr = float(ref_strength) * k
        else:
            kr = _schedule("ref_strength", ref_strength, steps, positive=False)
        if not np.isfinite(ref_phase):
            raise ValueError(f"`ref_phase` must be finite; got {ref_phase}")
        if isinstance(terms, bool) or not isinstance(terms, int) or terms < 0:
            raise ValueError(f"`terms` must be an int >= 0; got {terms!r}")
        dtype = jnp.result_type(float)
        self.k = jnp.asarray(k if self.kind != "none" else np.zeros_like(k), dtype)
        self.k_ref = jnp.asarray(kr, dtype)
        self.sigma2 = jnp.asarray(s2, dtype)
        self.ref_phase = float(ref_phase)
        self.terms = terms
        self.embed_dim = int(embed_dim)

    @classmethod
    def isotropic(cls, steps: int = 100, noise_schedule=(1e-4, 0.1), terms: int = 3,
                  embed_dim: int = 64) -> OrientationDiffusion:
        """The same noise with no coupling and no reference: a wrapped-Gaussian random
        walk (the isotropic SGM baseline); its prior is uniform."""
        return cls(steps, "none", k_schedule=np.zeros(steps), noise_schedule=noise_schedule,
                   ref_strength=0.0, terms=terms, embed_dim=embed_dim)

    @property
    def steps(self) -> int:
        return self.sigma2.shape[0]

    # -- drift ----------------------------------------------------------------------

    def order_parameter(self, theta: Array) -> Array:
        """$Z$ (complex): the example's mean phasor (global, a scalar) or the local phasor
        average (same shape as `theta`); 0 without coupling."""
        s, c = sincos(theta)
        C, S = self._field(theta, c, s)
        return C + 1j * S

    def _field(self, theta, c, s):
        if self.kind == "global":
            return jnp.mean(c), jnp.mean(s)
        if self.kind == "none":
            return jnp.zeros((), theta.dtype), jnp.zeros((), theta.dtype)
        grid = self.lattice.shape
        if theta.shape[theta.ndim - len(grid):] != grid:
            raise ValueError(
                f"local coupling is built for grids {grid}; the state's trailing axes are "
                f"{theta.shape}"
            )
        def conv(u):
            lead = u.shape[: u.ndim - len(grid)]
            flat = u.reshape((-1, math.prod(grid))).T  # (osc, lead)
            return self.lattice.apply(flat).T.reshape(lead + grid)
        return conv(c), conv(s)

    def _drift_parts(self, theta):
        """`(coupling part Im(e^{-i theta} Z), reference part sin(psi_ref - theta))`."""
        s, c = sincos(theta)
        C, S = self._field(theta, c, s)
        sp, cp = math.sin(self.ref_phase), math.cos(self.ref_phase)
        return S * c - C * s, sp * c - cp * s

    def drift(self, theta: Array, k, k_ref) -> Array:
        """The step's drift $K f_c(\\theta) + K_{\\mathrm{ref}} f_r(\\theta)$ (radians)."""
        fc, fr = self._drift_parts(theta)
        return k * fc + k_ref * fr

    # -- forward --------------------------------------------------------------------

    def forward(self, theta0: Float[ArrayLike, "*shape"], *, key: PRNGKeyArray) -> Array:
        """Every state $\\theta_1..\\theta_T$ of one chain from `theta0` (radians), one
        `lax.scan`: shape `(steps, *shape)`. Float32 noise by Box--Muller."""
        theta0 = wrap_phase(jnp.asarray(theta0, self.sigma2.dtype))
        keys = jax.random.split(key, self.steps)

        def step(theta, xs):
            k, kr, s2, kk = xs
            theta = wrap_phase(theta + self.drift(theta, k, kr) + jnp.sqrt(s2) * _normal(kk, theta))
            return theta, theta

        _, chain = jax.lax.scan(step, theta0, (self.k, self.k_ref, self.sigma2, keys))
        return chain

    # -- score matching -------------------------------------------------------------

    def score_matching_loss(self, net, theta0: Float[ArrayLike, "*shape"], *,
                            key: PRNGKeyArray, samples: int = 5,
                            pairs: int | None = None) -> Array:
        r"""Local (one-step) denoising score matching on ONE example (vmap for batches).

        One forward chain from `theta0` gives every pair $(\theta_i, \theta_{i+1})$; for
        `pairs` of the $T$ transitions (drawn uniformly without replacement; None: all)
        and `samples` Monte-Carlo draws each, $y = \mathrm{wrap}(F_i + \sigma_i z)$ with
        $F_i = \mathrm{wrap}(\theta_i + K_i f(\theta_i))$ and

        $$L = \mathrm{mean}_{i, m, p}\ \frac{\sigma_i^4}{4}\,\big(\hat s(y, i + 1)
              - \partial_y\log\mathrm{WN}(y; F_i, \sigma_i^2)\big)^2 .$$

        `net` is a score network (`diffusion_nets` contract). The chain carries no
        gradient. Returns a scalar.
        """
        T = self.steps
        if pairs is not None and not (isinstance(pairs, int) and 1 <= pairs <= T):
            raise ValueError(f"`pairs` must be None or an int in [1, {T}]; got {pairs!r}")
        if not (isinstance(samples, int) and samples >= 1):
            raise ValueError(f"`samples` must be an int >= 1; got {samples!r}")
        theta0 = wrap_phase(jnp.asarray(theta0, self.sigma2.dtype))
        k_chain, k_pick, k_mc = jax.random.split(key, 3)
        chain = jax.lax.stop_gradient(self.forward(theta0, key=k_chain))
        starts = jnp.concatenate([theta0[None], chain[:-1]])  # theta_0 .. theta_{T-1}
        idx = jnp.arange(T) if pairs is None else jax.random.choice(k_pick, T, (pairs,), replace=False)
        start = starts[idx]
        k, kr, s2 = self.k[idx], self.k_ref[idx], self.sigma2[idx]
        F = jax.vmap(lambda th, a, b: wrap_phase(th + self.drift(th, a, b)))(start, k, kr)
        sig = jnp.sqrt(s2).reshape((-1,) + (1,) * theta0.ndim)
        z = jax.random.normal(k_mc, (samples,) + F.shape, F.dtype)
        y = wrap_phase(F + sig * z)  # (samples, pairs, *shape)
        target = wrapped_normal_score(y, F, sig, self.terms)
        score = self.score_fn(net)
        pred = jax.vmap(jax.vmap(score))(y, jnp.broadcast_to(idx + 1, y.shape[:2]))
        w = (s2**2 / 4).reshape((1, -1) + (1,) * theta0.ndim)
        return jnp.mean(w * (pred - target) ** 2)

    def score_fn(self, net) -> Callable[[Array, Array], Array]:
        """`score(theta, t)` of a network (contract in `diffusion_nets`: called with
        `(cos, sin, time_embedding(t, dim))`, `dim` the net's `embed_dim` if it has one,
        else the process's) or of a plain function
        `score(theta, t)` (e.g. an exact score), passed through unchanged."""
        if isinstance(net, eqx.Module):
            dim = getattr(net, "embed_dim", self.embed_dim)  # the net's own size, if it declares one
            return lambda theta, t: score_of(net, theta, time_embedding(t, dim))
        if callable(net):
            return net
        raise TypeError(f"`net` must be a score network (an Equinox module) or a function; got {net!r}")

    # -- prior and reverse ----------------------------------------------------------

    def prior_kappa(self, order: float | None = None) -> Array:
        r"""$\kappa = 2(K_{T-1}\bar R + K^{\mathrm{ref}}_{T-1})/\sigma_{T-1}^2$; `order` =
        $\bar R$ (default 0.5, the reference's assumption; see `terminal_order`)."""
        R = 0.5 if order is None else order
        return 2 * (self.k[-1] * R + self.k_ref[-1]) / self.sigma2[-1]

    def terminal_order(self, theta0: Float[ArrayLike, "n *shape"], *, key: PRNGKeyArray) -> Array:
        """$\\bar R$ estimated from data: the mean $|Z|$ at $\\theta_T$ over a batch
        `theta0` of shape `(n, *shape)` (per element for local coupling)."""
        keys = jax.random.split(key, theta0.shape[0])
        final = jax.vmap(lambda th, k: self.forward(th, key=k)[-1])(jnp.asarray(theta0), keys)
        return jnp.mean(jnp.abs(jax.vmap(self.order_parameter)(final)))

    def sample_prior(self, shape: tuple[int, ...], *, key: PRNGKeyArray, order=None) -> Array:
        """One draw of $\\theta_T$ from the prior (uniform for the isotropic chain)."""
        kappa = self.prior_kappa(order)
        return von_mises_sample(key, self.ref_phase, kappa, tuple(shape))

    def blocks(self, steps: int | None = None) -> np.ndarray:
        """Reverse-step boundaries $T = b_0 > b_1 > \\dots > b_n = 0$ for `steps` = n
        reverse steps (None: n = T, one per transition); block j merges the transitions
        $[b_{j+1}, b_j)$ (their $K$ and $\\sigma^2$ are summed)."""
        T = self.steps
        n = T if steps is None else steps
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= T:
            raise ValueError(f"`steps` must be None or an int in [1, {T}]; got {steps!r}")
        return np.round(np.linspace(T, 0, n + 1)).astype(int)

    def sample(self, net, shape: tuple[int, ...], *, key: PRNGKeyArray,
               steps: int | None = None, order: float | None = None,
               return_chain: bool = False) -> Array:
        r"""Reverse chain from the von Mises prior to $\theta_0$ for ONE example.

        With `steps` = n < T, block j of `blocks(n)` is one Euler--Maruyama step of
        the reverse SDE over $[b_{j+1}, b_j]$: $\theta \leftarrow \mathrm{wrap}(\theta
        - \bar K f_c(\theta) - \bar K^{\mathrm{ref}} f_r(\theta) + \bar\sigma^2 \hat s(\theta,
        b_j) + \bar\sigma z)$ with the block sums $\bar K, \bar K^{\mathrm{ref}},
        \bar\sigma^2$ (n = T is the step-by-step chain of the module docstring).

        **Arguments:** `net` (score network or function `score(theta, t)`), `shape`
        (one example), `key`, `steps`, `order` ($\bar R$ of the prior), `return_chain`.

        **Returns:** `(*shape)` samples in $[-\pi, \pi)$, or with `return_chain` the
        states after each reverse step, `(n + 1, *shape)`, prior draw first.
        """
        b = self.blocks(steps)
        ck = np.concatenate([[0.0], np.cumsum(np.asarray(self.k, np.float64))])
        cr = np.concatenate([[0.0], np.cumsum(np.asarray(self.k_ref, np.float64))])
        cs = np.concatenate([[0.0], np.cumsum(np.asarray(self.sigma2, np.float64))])
        hi, lo = b[:-1], b[1:]
        dtype = self.sigma2.dtype
        xs = tuple(jnp.asarray(a, dtype) for a in (ck[hi] - ck[lo], cr[hi] - cr[lo], cs[hi] - cs[lo], hi))
        score = self.score_fn(net)
        k_prior, k_steps = jax.random.split(key)
        theta = self.sample_prior(shape, key=k_prior, order=order).astype(dtype)
        keys = jax.random.split(k_steps, len(hi))

        def step(theta, x):
            (k, kr, s2, t), kk = x
            fc, fr = self._drift_parts(theta)
            theta = theta - k * fc - kr * fr + s2 * score(theta, t) + jnp.sqrt(s2) * _normal(kk, theta)
            theta = wrap_phase(theta)
            return theta, theta

        final, chain = jax.lax.scan(step, theta, (xs, keys))
        if return_chain:
            return jnp.concatenate([theta[None], chain])
        return final

    # -- continuous time --------------------------------------------------------------

    def schedules(self) -> tuple[Table, Table, Table]:
        """$K(t)$, $K_{\\mathrm{ref}}(t)$, $D(t) = \\sigma^2(t)/2$ on $t \\in [0, T]$ (one unit
        per transition): piecewise-linear through $(i, K_i)$, held after $T - 1$, so an
        Euler step of size 1 at $t = i$ uses exactly entry $i$."""
        ts = jnp.arange(self.steps, dtype=self.sigma2.dtype)
        return Table(ts, self.k), Table(ts, self.k_ref), Table(ts, self.sigma2 / 2)

    def sde(self, shape: tuple[int, ...]) -> Kuramoto:
        """The forward process as a `kl.Kuramoto` SDE on the flattened state
        (`prod(shape)` oscillators): `MeanField(K(t))` (or the lattice, one channel:
        `shape` must be its grid), `Forcing(K_ref(t), psi_ref)`, `Noise(D(t))`.
        `kl.simulate(..., t1=steps, dt=1, solver="euler")` is the discrete chain."""
        K, Kr, D = self.schedules()
        n = math.prod(shape)
        if self.kind == "local":
            if tuple(shape) != self.lattice.shape:
                raise ValueError(
                    f"the SDE view of local coupling takes one grid {self.lattice.shape}; got {shape}"
                )
            coupling = LatticeCoupling(self.lattice.kernel, self.lattice.shape,
                                       self.lattice.boundary, strength=K)
        else:
            coupling = MeanField(K if self.kind == "global" else 0.0)
        forcing = None if self.kind == "none" else Forcing(Kr, self.ref_phase)
        return Kuramoto(jnp.zeros(n, self.sigma2.dtype), coupling, forcing=forcing, noise=Noise(D))


def _normal(key, like: Array) -> Array:
    """Standard normals of `like`'s shape: Box--Muller from threefry bits for float32."""
    n = like.size
    if like.dtype == jnp.float32 and n > 1:
        z1, z2 = box_muller_normals(key, (n + 1) // 2)
        return jnp.concatenate([z1, z2])[:n].reshape(like.shape)
    return jax.random.normal(key, like.shape, like.dtype)
