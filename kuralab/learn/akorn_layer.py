r"""`AKOrNLayer`: T discrete Kuramoto steps of AKOrN on ONE example (batch with vmap).

State and stimulus are channel maps `(C, *grid)`. Consecutive channels `(g n, ...,
g n + n - 1)` form oscillator `g` of a site, a unit vector on $S^{n-1}$ (`C / n`
oscillators per site). Per call (reference `klayer.py`, SCIENCE.md §2):

1. $c \leftarrow \mathrm{norm}(c)$ once (`c_norm`: `"group"` = GroupNorm with `C / n`
   groups over `(n, *grid)` plus a per-channel affine, the reference default;
   `"scale_bias"` = per-channel scale and bias; `"none"`), then $x \leftarrow \Pi(x_0)$;
2. T times: $x \leftarrow \Pi\big[x + \gamma\,(\Omega x + \operatorname{Proj}_x(Jx + b
   + c))\big]$, $\operatorname{Proj}_x(y) = y - \langle y, x\rangle x$ per oscillator,
   $\Pi$ normalises every oscillator.

$J$ is a channel-mixing convolution (`connectivity="conv"`, any kernel size and padding
mode, weight `(*k, C, C)`, bias $b$) or multi-head attention over the positions
(`"attn"`, `kuralab.learn.akorn_attn.PositionAttention`, optionally with GTA rotations;
its biases stay inside $J$). $\Omega$ acts on channel pairs `(2k, 2k+1)` inside each
oscillator as the reference's `OmegaLayer`, $(a, b) \mapsto (\omega_k b, -\omega_k a)$,
$\omega_k = \|p_k\|_2 \ge 0$ with $p_k$ initialised to $(\omega/\sqrt2)(1, 1)$; one shared
$p$ (`global_omega=True`, default) or one per pair of every oscillator of a site. An odd
`n` leaves its last component unrotated (the reference would pair channels across
oscillators).

Energies, at every state $x_0, \dots, x_T$ (shape `(T + 1,)`), with $\tilde c = c + b$:

- `energy` (AKOrN eq. 3): $E = -\tfrac12\sum\langle x, Jx\rangle - \sum\langle\tilde c,
  x\rangle$, the Lyapunov candidate of the theorems (`kl.energy` of `layer.model(c)`);
- `energy_logged` (reference `es`): $-\sum\langle x, Jx + \tilde c\rangle$; the reference
  logs it at the pre-update states $x_0..x_{T-1}$ after a dummy 0.

Equivalence (tested): `layer(x0, c)[0]` equals the final state of
`kl.simulate(layer.model(c), to_state(x0), t1=T * gamma, dt=gamma, solver="akorn")`.

Reference gotcha, reproduced only when asked: the reference's `use_omega=False` replaces
$\Omega x$ by $x$, which after normalisation is the Ω-free step $\gamma/(1+\gamma)$
(`identity_omega_quirk=True` with `omega=None`; `kl.reference_gamma`).

Performance (benchmarks/l2_akorn.py, workload L2): inside the scan the state is
channels-last and component-major (`kuralab.learn._akorn_layout`: component `k` of every
oscillator is one contiguous slice, so norms, projections and rotations are elementwise;
the kernel's channels are permuted to match), the conv is one im2col matrix product
(`kuralab._coupling.conv.conv_im2col`; XLA's CPU convolution, its backward pass above
all, was ~18x slower) and, for zero or circular padding, the step's backward pass is
written out (`conv_step`: per step only the state and `Jx` are kept, the data gradient
is the adjoint convolution). Other paddings and attention use JAX autodiff of the same
update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from .._akorn_step import AKOrNStep
from .._coupling.conv import (
    ChannelConvCoupling,
    check_conv,
    conv_im2col,
    im2col_weight,
    to_state,
)
from .._custom_types import Key
from .._models.sphere import BlockOmega, SphereKuramoto
from ._akorn_layout import (
    ADJOINT_PADDINGS,
    components,
    conv_step,
    from_cm,
    kernel_cm,
    normalise,
    rotate,
    to_cm,
)
from ._checks import check_choice, check_steps
from .akorn_attn import GridMapCoupling, PositionAttention, torch_uniform

CONNECTIVITIES = ("conv", "attn")
C_NORMS = ("group", "scale_bias", "none")
_HIGHEST = jax.lax.Precision.HIGHEST


def _positive_int(name: str, v, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {v!r}")
    return v


def normalise_groups(u: Float[Array, "*grid c"], n: int) -> Float[Array, "*grid c"]:
    """Normalise every group of `n` consecutive channels (channels-last) to unit length."""
    g = u.reshape(u.shape[:-1] + (-1, n))
    g = g / jnp.linalg.norm(g, axis=-1, keepdims=True)
    return g.reshape(u.shape)


class AKOrNLayer(eqx.Module):
    r"""An AKOrN Kuramoto layer on ONE example; see the module documentation.

    **Arguments:**

    - `channels`: `C`, divisible by `n`.
    - `n`: oscillator dimension (>= 2; default 4).
    - `connectivity`: `"conv"` (default) or `"attn"`.
    - `kernel_size`: conv kernel size, an int or one per spatial axis (default 3).
    - `steps`: T (default 8).
    - `gamma`: step size $\gamma > 0$ (default 1).
    - `omega`: initial rate $\omega$ (rad per step of unit $\gamma$; default 1), or
      `None` for no $\Omega$.

    Keyword only:

    - `grid`: the spatial shape; required for `"attn"` (positions, GTA, mask), optional
      for `"conv"` (then the kernel is checked against it at once).
    - `ndim`: spatial rank for `"conv"` without `grid` (default 2).
    - `padding`: conv padding, `"zeros"` (default), `"circular"`, `"reflect"`,
      `"replicate"`.
    - `heads`, `gta`, `mask`: attention options (default 8 heads, no GTA, no mask).
    - `global_omega` (default True), `learn_omega` (default True), `learn_gamma`
      (default False: the classification/object models; the Sudoku model learns it).
    - `c_norm`: `"group"` (default), `"scale_bias"` or `"none"`.
    - `identity_omega_quirk`: replace $\Omega x$ by $x$ as the reference's
      `use_omega=False` does (needs `omega=None`; default False).
    - `key`: PRNG key.

    Call: `x_T, energies = layer(x0, c, steps=None)` with `x0`, `c` of shape `(C,
    *grid)`; `energies` is `(T + 1,)` of the AKOrN energy. A batch `(*batch, C, *grid)`
    gives `(*batch, C, *grid)` and `(*batch, T + 1)`, as `jax.vmap` would, and for the
    conv coupling with zero or circular padding runs faster than vmapping (the weight
    gradient is one product over the batch). `layer.run(...)` also returns
    the logged energy and, on request, every state.
    """

    kernel: Float[Array, "*k c c"] | None
    bias: Float[Array, " c"] | None
    attn: PositionAttention | None
    omega_param: Float[Array, "*pairs 2"] | None
    gamma: Float[Array, ""]
    norm_scale: Float[Array, " c"] | None
    norm_bias: Float[Array, " c"] | None
    channels: int = eqx.field(static=True)
    n: int = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    connectivity: str = eqx.field(static=True)
    padding: str = eqx.field(static=True)
    grid: tuple[int, ...] | None = eqx.field(static=True)
    c_norm: str = eqx.field(static=True)
    learn_omega: bool = eqx.field(static=True)
    learn_gamma: bool = eqx.field(static=True)
    identity_omega_quirk: bool = eqx.field(static=True)

    def __init__(
        self,
        channels: int,
        n: int = 4,
        connectivity: str = "conv",
        kernel_size: int | Sequence[int] = 3,
        steps: int = 8,
        gamma: float = 1.0,
        omega: float | None = 1.0,
        *,
        grid: Sequence[int] | None = None,
        ndim: int = 2,
        padding: str = "zeros",
        heads: int = 8,
        gta: bool = False,
        mask: Bool[ArrayLike, "pos pos"] | None = None,
        global_omega: bool = True,
        learn_omega: bool = True,
        learn_gamma: bool = False,
        c_norm: str = "group",
        identity_omega_quirk: bool = False,
        key: Key,
    ):
        n = _positive_int("n", n, 2)
        channels = _positive_int("channels", channels)
        if channels % n:
            raise ValueError(
                f"`channels` ({channels}) must be divisible by `n` ({n}): each "
                "oscillator is n consecutive channels"
            )
        check_choice("connectivity", connectivity, CONNECTIVITIES)
        check_choice("c_norm", c_norm, C_NORMS)
        steps = check_steps("steps", steps, 1)
        if not (isinstance(gamma, int | float) and math.isfinite(gamma) and gamma > 0):
            raise ValueError(f"`gamma` must be a finite float > 0; got {gamma!r}")
        if omega is not None and not (isinstance(omega, int | float) and math.isfinite(omega)):
            raise ValueError(f"`omega` must be a finite float or None; got {omega!r}")
        if identity_omega_quirk and omega is not None:
            raise ValueError(
                "`identity_omega_quirk=True` reproduces the reference's use_omega=False; "
                "it needs `omega=None`"
            )
        if grid is not None:
            grid = tuple(_positive_int("grid", int(s)) for s in grid)
            ndim = len(grid)
        kc, kb, ka = jax.random.split(key, 3)
        self.kernel = self.bias = self.attn = None
        if connectivity == "conv":
            ndim = _positive_int("ndim", ndim)
            ks = (kernel_size,) * ndim if isinstance(kernel_size, int) else tuple(kernel_size)
            if len(ks) != ndim or not all(isinstance(k, int) for k in ks):
                raise ValueError(
                    f"`kernel_size` must be an int or {ndim} ints; got {kernel_size!r}"
                )
            check_conv(ks, grid if grid is not None else ks, padding)
            fan_in = channels * math.prod(ks)
            self.kernel = torch_uniform(kc, ks + (channels, channels), fan_in)
            self.bias = torch_uniform(kb, (channels,), fan_in)
        else:
            if grid is None:
                raise ValueError("`grid` (the spatial shape) is required for connectivity='attn'")
            self.attn = PositionAttention(channels, grid, heads=heads, gta=gta, mask=mask, key=ka)
        if omega is None:
            self.omega_param = None
        else:
            shape = (2,) if global_omega else (channels // n, n // 2, 2)
            self.omega_param = jnp.full(shape, omega / math.sqrt(2.0), jnp.result_type(float))
        self.gamma = jnp.asarray(gamma, jnp.result_type(float))
        if c_norm == "none":
            self.norm_scale = self.norm_bias = None
        else:
            self.norm_scale = jnp.ones((channels,))
            self.norm_bias = jnp.zeros((channels,))
        self.channels, self.n, self.steps = channels, n, steps
        self.connectivity, self.padding, self.grid = connectivity, padding, grid
        self.c_norm = c_norm
        self.learn_omega, self.learn_gamma = bool(learn_omega), bool(learn_gamma)
        self.identity_omega_quirk = bool(identity_omega_quirk)

    # -- pieces (channels-last) --------------------------------------------------------

    def step_size(self) -> Float[Array, ""]:
        """$\\gamma$ (gradient stopped unless `learn_gamma`)."""
        return self.gamma if self.learn_gamma else jax.lax.stop_gradient(self.gamma)

    def omega_rates(self) -> Float[Array, "*pairs"] | None:
        r"""$\omega_k = \|p_k\|$: `()` (global) or `(C / n, n // 2)`; None without Ω."""
        if self.omega_param is None:
            return None
        p = self.omega_param if self.learn_omega else jax.lax.stop_gradient(self.omega_param)
        return jnp.sqrt(jnp.sum(p * p, axis=-1))

    def _omega_cm(self, v):
        r"""$\Omega x$ on a component-major `(*grid, n, G)` state; None without Ω."""
        if self.identity_omega_quirk:
            return v
        w = self.omega_rates()
        if w is None:
            return None
        return rotate(v, w.astype(v.dtype))

    def _J_cm(self, wmat):
        """$J$ on a component-major channels-last state `(*grid, C)`; `wmat`: the
        component-major im2col weight (conv) or None (attention)."""
        if self.kernel is not None:
            ks = self.kernel.shape[:-2]
            return lambda u: conv_im2col(u, wmat, ks, self.padding)
        assert self.attn is not None
        n = self.n

        def attn(u):
            nd = u.ndim - 1
            x = jnp.moveaxis(from_cm(u, n, nd), 0, -1)
            return to_cm(jnp.moveaxis(self.attn(x), -1, 0), n)

        return attn

    def normalise_stimulus(self, c: Float[Array, "c *grid"]) -> Float[Array, "c *grid"]:
        """`c_norm` applied to a `(C, *grid)` stimulus (channels first)."""
        if self.c_norm == "none":
            return c
        assert self.norm_scale is not None and self.norm_bias is not None
        bshape = (self.channels,) + (1,) * (c.ndim - 1)
        if self.c_norm == "group":
            g = c.reshape((self.channels // self.n, -1))
            mean = g.mean(-1, keepdims=True)
            var = g.var(-1, keepdims=True)
            c = ((g - mean) * jax.lax.rsqrt(var + 1e-5)).reshape(c.shape)
        return c * self.norm_scale.reshape(bshape) + self.norm_bias.reshape(bshape)

    def _check(self, x, c, nb: int = 0):
        x, c = jnp.asarray(x), jnp.asarray(c)
        if c.ndim < 2 + nb or c.shape[nb] != self.channels:
            raise ValueError(
                f"`c` must have shape (channels={self.channels}, *grid); got shape {c.shape}"
            )
        if x.shape != c.shape:
            raise ValueError(
                f"`x` and the stimulus `c` must have the same shape (channels, *grid); got "
                f"x {x.shape} and c {c.shape}"
            )
        grid = c.shape[nb + 1 :]
        if self.grid is not None and grid != self.grid:
            raise ValueError(f"the layer was built for grid {self.grid}; got inputs on {grid}")
        if self.kernel is not None:
            nd = self.kernel.ndim - 2
            if len(grid) != nd:
                raise ValueError(
                    f"`c` must have {nd} spatial axes (the kernel's rank); got shape {c.shape}"
                )
            check_conv(self.kernel.shape[:nd], grid, self.padding)
        return x, c

    def _spatial_rank(self) -> int | None:
        if self.kernel is not None:
            return self.kernel.ndim - 2
        return None if self.grid is None else len(self.grid)

    def _batch_ndim(self, c) -> int:
        """Leading batch axes of a stimulus `(*batch, C, *grid)` (0 for one example)."""
        nd = self._spatial_rank()
        return 0 if nd is None else max(jnp.ndim(c) - 1 - nd, 0)

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        x: Float[ArrayLike, "c *grid"],
        c: Float[ArrayLike, "c *grid"],
        *,
        steps: int | None = None,
        states: bool = False,
    ) -> dict[str, Array]:
        """T steps from `x` (normalised first) with stimulus `c`.

        `x` and `c` are one example `(C, *grid)` or a batch `(*batch, C, *grid)` (the
        same as `jax.vmap` over the batch; with the conv coupling and zero or circular
        padding the batch runs as one state, so the weight gradient is one product over
        batch and pixels instead of one per example).

        **Returns:** a dict with `x` (final state, `(*batch, C, *grid)`), `energy` and
        `energy_logged` (both `(*batch, T + 1)`, at $x_0..x_T$) and, with `states=True`,
        `states` `(*batch, T + 1, C, *grid)`. `steps` overrides T (e.g. more steps at test
        time).
        """
        nb = self._batch_ndim(c)
        fast = self.kernel is not None and self.padding in ADJOINT_PADDINGS
        if nb and not fast:  # attention, reflect/replicate padding: vmap one example
            f = lambda a, b: self.run(a, b, steps=steps, states=states)  # noqa: E731
            for _ in range(nb):
                f = jax.vmap(f)
            return f(jnp.asarray(x), jnp.asarray(c))
        x, c = self._check(x, c, nb)
        T = self.steps if steps is None else check_steps("steps", steps, 1)
        n, nd = self.n, x.ndim - 1 - nb
        norm_c = self.normalise_stimulus
        for _ in range(nb):
            norm_c = jax.vmap(norm_c)
        c_eff = norm_c(c.astype(x.dtype))
        if self.bias is not None:
            c_eff = c_eff + self.bias.astype(x.dtype).reshape((-1,) + (1,) * nd)
        cl = to_cm(c_eff, n, nb)
        u0 = normalise(components(to_cm(x, n, nb), n)).reshape(cl.shape)
        gamma = self.step_size().astype(x.dtype)
        wmat = None
        if self.kernel is not None:
            wmat = im2col_weight(kernel_cm(self.kernel.astype(x.dtype), n))
        J = self._J_cm(wmat)

        site_axes = tuple(range(nb, nb + nd + 1))

        def energies(u, ju):
            xjx, cx = jnp.sum(u * ju, site_axes), jnp.sum(u * cl, site_axes)
            return -0.5 * xjx - cx, -xjx - cx

        if fast:
            w = self.omega_rates()
            mode = ("identity" if self.identity_omega_quirk
                    else "none" if w is None else "omega")
            w = None if mode != "omega" else w.astype(x.dtype)
            ks = self.kernel.shape[:-2]

        def body(u, _):
            if fast:
                u_new, xjx, cx = conv_step(u, cl, wmat, gamma, w, n, ks, self.padding, mode)
                return u_new, ((-0.5 * xjx - cx, -xjx - cx), u if states else None)
            ju = J(u)
            e = energies(u, ju)
            v, y = components(u, n), components(ju + cl, n)
            drift = y - jnp.sum(y * v, axis=-2, keepdims=True) * v
            rot = self._omega_cm(v)
            if rot is not None:
                drift = drift + rot
            u_new = normalise(v + gamma * drift).reshape(u.shape)
            return u_new, (e, u if states else None)

        uT, ((es, els), us) = jax.lax.scan(body, u0, None, length=T)
        eT, elT = energies(uT, J(uT))
        last = lambda e, eT: jnp.moveaxis(jnp.concatenate([e, eT[None]], 0), 0, -1)  # noqa: E731
        out = {
            "x": from_cm(uT, n, nd),
            "energy": last(es, eT),
            "energy_logged": last(els, elT),
        }
        if states:
            allu = from_cm(jnp.concatenate([us, uT[None]], 0), n, nd)
            out["states"] = jnp.moveaxis(allu, 0, nb)
        return out

    def __call__(
        self,
        x: Float[ArrayLike, "c *grid"],
        c: Float[ArrayLike, "c *grid"],
        *,
        steps: int | None = None,
    ) -> tuple[Float[Array, "c *grid"], Float[Array, " steps1"]]:
        """`(x_T, energies)`: the final state `(C, *grid)` and the AKOrN energy at every
        state, `(T + 1,)`."""
        out = self.run(x, c, steps=steps)
        return out["x"], out["energy"]

    # -- the same system in the core ---------------------------------------------------

    def model(self, c: Float[ArrayLike, "c *grid"]) -> SphereKuramoto:
        """This layer's system for stimulus `c` as a `kl.SphereKuramoto` on the `(osc,
        n)` layout of `kl.ChannelConvCoupling` (`to_state`), with the normalised stimulus
        plus the conv bias as its stimulus. Simulate it with `solver="akorn"`, `dt =
        gamma` (with `identity_omega_quirk`, `dt = gamma / (1 + gamma)`, Ω off)."""
        c = jnp.asarray(c)
        self._check(c, c)
        grid = c.shape[1:]
        c_eff = self.normalise_stimulus(c)
        if self.bias is not None:
            c_eff = c_eff + self.bias.reshape((-1,) + (1,) * len(grid))
        if self.kernel is not None:
            coupling = ChannelConvCoupling(self.kernel, grid, self.n, self.padding)
        else:
            coupling = GridMapCoupling(self.attn, self.channels, grid, self.n)
        w = self.omega_rates()
        omega = None
        if w is not None and not self.identity_omega_quirk:
            k, g, P = self.n // 2, self.channels // self.n, math.prod(grid)
            rates = jnp.broadcast_to(w, (g, k)) if w.ndim == 2 else jnp.full((g, k), w)
            omega = BlockOmega(-jnp.repeat(rates, P, axis=0), dim=self.n)
        return SphereKuramoto(omega, coupling, to_state(c_eff, self.n))

    def model_step(self) -> float:
        """The `dt` that makes `kl.simulate(self.model(c), ..., solver="akorn")` this
        layer: $\\gamma$, or $\\gamma/(1+\\gamma)$ with `identity_omega_quirk`."""
        g = float(self.gamma)
        return g / (1.0 + g) if self.identity_omega_quirk else g

    def check_lyapunov(self, x0, c, *, steps: int | None = None, **kwargs):
        """`kl.check_lyapunov` of `self.model(c)` from `x0` over T AKOrN steps: which
        theorem hypotheses hold (a conv J is generally not block-symmetric) and whether
        the energy fell. Extra keywords go to `kl.check_lyapunov`."""
        from .._energy import check_lyapunov

        x0, c = self._check(x0, c)
        T = self.steps if steps is None else check_steps("steps", steps, 1)
        dt = self.model_step()
        y0 = to_state(jnp.moveaxis(normalise_groups(jnp.moveaxis(x0, 0, -1), self.n), -1, 0), self.n)
        return check_lyapunov(self.model(c), y0, t1=T * dt, dt=dt, solver=AKOrNStep(), **kwargs)
