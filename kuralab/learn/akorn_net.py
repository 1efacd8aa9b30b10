r"""`AKOrNReadout` and `AKOrNNet`: AKOrN layers stacked, readouts as the next stimulus.

Readout (reference `ReadOutConv`): a convolution $U$ maps the oscillators `(C, *grid)` to
`out * n_proj` channels, read as `(out, n_proj)`, and

$$m_k(p) = \Big\|\big(U x\big)_{k, \cdot}(p)\Big\|_2 + b_k ,$$

norms of linear projections (phase-invariant, complex-cell-like features) plus a bias.

Network (one example; `jax.vmap` for batches): an encoder turns the input into the first
stimulus $c_0$ (`"conv"`: a convolution of `(in_channels, *grid)` images; `"embed"`: an
embedding table of integer tokens `(*grid)`, e.g. Sudoku digits with 0 = blank). Then
for each layer $l$: $x \leftarrow$ `AKOrNLayer`$_l(x, c)$, $m = $ readout$_l(x)$ followed
by a residual ReLU 1x1 MLP (`ff=True`; the reference uses a BatchNorm ResBlock, left out
to keep every module per-example); between layers one strided convolution (`strides`)
maps both $x$ and $m$ to the next width, with shared weights as in the reference
classification model, and $m$ becomes the next stimulus. Heads: `"classify"` (mean over
positions, ReLU, linear), `"cells"` (ReLU, 1x1 conv to per-cell logits, the Sudoku
head) or `None` (the last readout's features).

Initial state of the first layer: i.i.d. N(0, 1) (`x_init="noise"`, normalised by the
layer) or, for `"embed"` inputs, the stimulus on the given cells (token != 0) and noise
on the blanks (`x_init="clamp_given"`, the reference Sudoku model).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from .._coupling.conv import PADDINGS, conv_channels_last
from .._custom_types import Key
from ._checks import check_choice
from .akorn_attn import torch_uniform
from .akorn_layer import AKOrNLayer, _positive_int

HEADS = ("classify", "cells", None)
ENCODERS = ("conv", "embed")
X_INITS = ("noise", "clamp_given")
_HIGHEST = jax.lax.Precision.HIGHEST
_SP = "DHW"


class AKOrNReadout(eqx.Module):
    r"""Norms of linear projections plus a bias: `(C_in, *grid) -> (C_out, *grid)`,
    $m_k = \|(U x)_{k,\cdot}\| + b_k$ (see the module documentation).

    **Arguments:** `in_channels`, `out_channels`, `n_proj` (projections per output,
    the reference's `ro_N`; default 2), `kernel_size` (default 1); keyword only:
    `ndim` (spatial rank, default 2), `padding` (default `"zeros"`), `key`.
    """

    kernel: Float[Array, "*k cout cin"]
    bias: Float[Array, " out"]
    n_proj: int = eqx.field(static=True)
    padding: str = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_proj: int = 2,
        kernel_size: int = 1,
        *,
        ndim: int = 2,
        padding: str = "zeros",
        key: Key,
    ):
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("n_proj", n_proj), ("kernel_size", kernel_size), ("ndim", ndim)):
            _positive_int(name, v)
        if padding not in PADDINGS:
            raise ValueError(f"`padding` must be one of {tuple(PADDINGS)}; got {padding!r}")
        fan_in = in_channels * kernel_size**ndim
        self.kernel = torch_uniform(
            key, (kernel_size,) * ndim + (out_channels * n_proj, in_channels), fan_in
        )
        self.bias = jnp.zeros((out_channels,))
        self.n_proj = n_proj
        self.padding = padding

    def __call__(self, x: Float[Array, "cin *grid"]) -> Float[Array, "cout *grid"]:
        nd = self.kernel.ndim - 2
        if x.ndim != nd + 1 or x.shape[0] != self.kernel.shape[-1]:
            raise ValueError(
                f"`x` must have shape (channels={self.kernel.shape[-1]}, *grid) with {nd} "
                f"spatial axes; got shape {x.shape}"
            )
        z = conv_channels_last(jnp.moveaxis(x, 0, -1), self.kernel, self.padding)
        z = z.reshape(z.shape[:-1] + (-1, self.n_proj))
        m = jnp.sqrt(jnp.sum(z * z, -1) + 1e-12) + self.bias.astype(x.dtype)
        return jnp.moveaxis(m, -1, 0)


class _FF(eqx.Module):
    """Residual ReLU MLP over channels at every position: m + W2 relu(W1 m + b1) + b2."""

    w1: Array
    b1: Array
    w2: Array
    b2: Array

    def __init__(self, c: int, *, key: Key):
        k = jax.random.split(key, 4)
        self.w1, self.b1 = torch_uniform(k[0], (c, c), c), torch_uniform(k[1], (c,), c)
        self.w2, self.b2 = torch_uniform(k[2], (c, c), c), torch_uniform(k[3], (c,), c)

    def __call__(self, m):  # (C, *grid)
        u = jnp.moveaxis(m, 0, -1)
        h = jax.nn.relu(jnp.dot(u, self.w1.T, precision=_HIGHEST) + self.b1)
        return m + jnp.moveaxis(jnp.dot(h, self.w2.T, precision=_HIGHEST) + self.b2, -1, 0)


def _strided(u, kernel, stride: int):
    """Channels-last `(*grid, C_in)` conv with `kernel` `(*k, C_out, C_in)`, 'same'
    padding, stride `stride` (output grid `ceil(grid / stride)`)."""
    nd = kernel.ndim - 2
    sp = _SP[-nd:]
    out = jax.lax.conv_general_dilated(
        u[None], kernel.astype(u.dtype), (stride,) * nd, "SAME",
        dimension_numbers=("N" + sp + "C", sp + "OI", "N" + sp + "C"), precision=_HIGHEST,
    )
    return out[0]


def _per_layer(name: str, v, L: int) -> tuple:
    out = tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else (v,) * L
    if len(out) != L:
        raise ValueError(f"`{name}` must be one value or {L} (one per layer); got {v!r}")
    return out


class AKOrNNet(eqx.Module):
    """Stacked AKOrN layers with readouts, strided transitions and a head, on ONE
    example; see the module documentation.

    **Arguments:**

    - `in_channels`: input channels (`encoder="conv"`) or vocabulary size
      (`encoder="embed"`, tokens `0..in_channels - 1`).
    - `channels`: width of each layer, e.g. `(64, 128)` (divisible by `n`).

    Keyword only: `n` (default 4); `steps`, `kernel_size`, `connectivity` (`"conv"` /
    `"attn"`): one value or one per layer; `strides` (one per transition, default 1);
    `grid` (input spatial shape; required for attention); `heads`, `gta`, `mask`,
    `gamma`, `omega`, `global_omega`, `learn_omega`, `learn_gamma`, `c_norm`, `padding`
    (as `AKOrNLayer`); `readout_n` (projections per readout feature, default `n`),
    `readout_kernel` (default 1), `ff` (default True), `head` (`"classify"`, `"cells"`,
    None), `n_out` (classes or per-cell logits), `encoder` (`"conv"` / `"embed"`),
    `encoder_kernel` (default 3), `x_init` (`"noise"` / `"clamp_given"`), `ndim`
    (spatial rank without `grid`, default 2), `key`.

    Call: `out, info = net(inputs, key=key, steps=None, x0=None)`; `info` holds
    `energy` and `energy_logged`, one `(T_l + 1,)` array per layer.
    """

    encoder_weight: Array
    encoder_bias: Array | None
    layers: tuple[AKOrNLayer, ...]
    readouts: tuple[AKOrNReadout, ...]
    ffs: tuple[_FF, ...] | None
    transitions: tuple[Array, ...]
    head_weight: Array | None
    head_bias: Array | None
    strides: tuple[int, ...] = eqx.field(static=True)
    head: str | None = eqx.field(static=True)
    encoder: str = eqx.field(static=True)
    x_init: str = eqx.field(static=True)
    ndim: int = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int] = (64,),
        *,
        n: int = 4,
        steps: int | Sequence[int] = 8,
        kernel_size: int | Sequence[int] = 3,
        connectivity: str | Sequence[str] = "conv",
        strides: Sequence[int] | None = None,
        grid: Sequence[int] | None = None,
        heads: int = 8,
        gta: bool = False,
        mask: Bool[ArrayLike, "pos pos"] | None = None,
        gamma: float = 1.0,
        omega: float | None = 1.0,
        global_omega: bool = True,
        learn_omega: bool = True,
        learn_gamma: bool = False,
        c_norm: str = "group",
        padding: str = "zeros",
        readout_n: int | None = None,
        readout_kernel: int = 1,
        ff: bool = True,
        head: str | None = "classify",
        n_out: int = 10,
        encoder: str = "conv",
        encoder_kernel: int = 3,
        x_init: str = "noise",
        ndim: int = 2,
        key: Key,
    ):
        _positive_int("in_channels", in_channels)
        channels = tuple(channels)
        if not channels:
            raise ValueError("`channels` must list at least one layer width")
        L = len(channels)
        for c in channels:
            _positive_int("channels", c)
        check_choice("encoder", encoder, ENCODERS)
        check_choice("x_init", x_init, X_INITS)
        if head not in HEADS:
            raise ValueError(f"`head` must be one of {HEADS}; got {head!r}")
        if x_init == "clamp_given" and encoder != "embed":
            raise ValueError("`x_init='clamp_given'` needs `encoder='embed'` (token 0 = blank)")
        strides = (1,) * (L - 1) if strides is None else tuple(strides)
        if len(strides) != L - 1:
            raise ValueError(f"`strides` must have {L - 1} entries (one per transition); got {strides}")
        for s in strides:
            _positive_int("strides", s)
        steps_l = _per_layer("steps", steps, L)
        ks_l = _per_layer("kernel_size", kernel_size, L)
        conn_l = _per_layer("connectivity", connectivity, L)
        if grid is not None:
            grid = tuple(int(s) for s in grid)
            ndim = len(grid)
        readout_n = n if readout_n is None else readout_n
        keys = iter(jax.random.split(key, 4 * L + 4))
        c0 = channels[0]
        if encoder == "conv":
            fan = in_channels * encoder_kernel**ndim
            self.encoder_weight = torch_uniform(
                next(keys), (encoder_kernel,) * ndim + (c0, in_channels), fan
            )
            self.encoder_bias = torch_uniform(next(keys), (c0,), fan)
        else:
            self.encoder_weight = jax.random.normal(next(keys), (in_channels, c0))
            self.encoder_bias = None
        layers, readouts, ffs, trans = [], [], [], []
        g = grid
        for i, C in enumerate(channels):
            layers.append(AKOrNLayer(
                C, n, conn_l[i], ks_l[i], steps_l[i], gamma, omega, grid=g, ndim=ndim,
                padding=padding, heads=heads, gta=gta, mask=mask if i == 0 else None,
                global_omega=global_omega, learn_omega=learn_omega,
                learn_gamma=learn_gamma, c_norm=c_norm, key=next(keys),
            ))
            readouts.append(AKOrNReadout(C, C, readout_n, readout_kernel, ndim=ndim,
                                         padding=padding, key=next(keys)))
            ffs.append(_FF(C, key=next(keys)))
            if i < L - 1:
                s = strides[i]
                k = 3 if s > 1 else 1
                trans.append(torch_uniform(next(keys), (k,) * ndim + (channels[i + 1], C), C * k**ndim))
                if g is not None:
                    g = tuple(-(-d // s) for d in g)
        self.layers, self.readouts, self.transitions = tuple(layers), tuple(readouts), tuple(trans)
        self.ffs = tuple(ffs) if ff else None
        CL = channels[-1]
        if head is None:
            self.head_weight = self.head_bias = None
        else:
            _positive_int("n_out", n_out)
            self.head_weight = torch_uniform(next(keys), (n_out, CL), CL)
            self.head_bias = torch_uniform(next(keys), (n_out,), CL)
        self.strides, self.head, self.encoder, self.x_init, self.ndim = (
            strides, head, encoder, x_init, ndim)

    def encode(self, inputs) -> Float[Array, "c *grid"]:
        """The first stimulus $c_0$ `(channels[0], *grid)` from the input."""
        inputs = jnp.asarray(inputs)
        if self.encoder == "embed":
            if inputs.ndim != self.ndim or not jnp.issubdtype(inputs.dtype, jnp.integer):
                raise ValueError(
                    f"`inputs` must be an int array of tokens with shape (*grid) ({self.ndim} "
                    f"axes) for encoder='embed'; got {inputs.dtype} {inputs.shape}"
                )
            return jnp.moveaxis(self.encoder_weight[inputs], -1, 0)
        cin = self.encoder_weight.shape[-1]
        if inputs.ndim != self.ndim + 1 or inputs.shape[0] != cin:
            raise ValueError(
                f"`inputs` must have shape (in_channels={cin}, *grid) with {self.ndim} "
                f"spatial axes; got shape {inputs.shape}"
            )
        u = conv_channels_last(jnp.moveaxis(inputs, 0, -1).astype(self.encoder_weight.dtype),
                               self.encoder_weight)
        assert self.encoder_bias is not None
        return jnp.moveaxis(u + self.encoder_bias, -1, 0)

    def __call__(
        self,
        inputs,
        *,
        key: Key,
        steps: int | Sequence[int] | None = None,
        x0: Float[ArrayLike, "c *grid"] | None = None,
    ) -> tuple[Array, dict[str, tuple[Array, ...]]]:
        """`(output, info)` for ONE input. `steps` overrides each layer's T (one value or
        one per layer); `x0` replaces the random initial state of the first layer."""
        L = len(self.layers)
        steps_l = _per_layer("steps", steps, L)
        c = self.encode(inputs)
        if x0 is None:
            x = jax.random.normal(key, c.shape, c.dtype)
            if self.x_init == "clamp_given":
                given = (jnp.asarray(inputs) != 0)[None]
                x = jnp.where(given, c, x)
        else:
            x = jnp.asarray(x0, c.dtype)
        es, els = [], []
        for i, layer in enumerate(self.layers):
            out = layer.run(x, c, steps=steps_l[i])
            es.append(out["energy"])
            els.append(out["energy_logged"])
            x = out["x"]
            m = self.readouts[i](x)
            if self.ffs is not None:
                m = self.ffs[i](m)
            if i < L - 1:
                w, s = self.transitions[i], self.strides[i]
                x = jnp.moveaxis(_strided(jnp.moveaxis(x, 0, -1), w, s), -1, 0)
                m = jnp.moveaxis(_strided(jnp.moveaxis(m, 0, -1), w, s), -1, 0)
            c = m
        info = {"energy": tuple(es), "energy_logged": tuple(els)}
        if self.head is None:
            return c, info
        assert self.head_weight is not None and self.head_bias is not None
        if self.head == "classify":
            feat = jax.nn.relu(jnp.mean(c.reshape(c.shape[0], -1), -1))
            return jnp.dot(self.head_weight, feat, precision=_HIGHEST) + self.head_bias, info
        u = jax.nn.relu(jnp.moveaxis(c, 0, -1))
        logits = jnp.dot(u, self.head_weight.T, precision=_HIGHEST) + self.head_bias
        return jnp.moveaxis(logits, -1, 0), info


def total_energy(info: dict, *, score: str = "last", energy: str = "energy") -> Array:
    """One scalar per run from `info` of `AKOrNNet`: the sum over layers of the last
    energy (`score="last"`) or of every step's (`"sum"`). `energy`: `"energy"` or
    `"energy_logged"`."""
    check_choice("score", score, ("last", "sum"))
    check_choice("energy", energy, ("energy", "energy_logged"))
    traces = info[energy]
    if score == "last":
        return sum(e[..., -1] for e in traces)
    return sum(jnp.sum(e, -1) for e in traces)

