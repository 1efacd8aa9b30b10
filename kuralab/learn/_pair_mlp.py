r"""The pair MLP's all-pairs pass with BatchNorm, with a hand-written backward pass.

`PairwiseMLPCoupling` (kuranet.py) with `hidden_norm="batch"` spends nearly all of a
KuraNet training step here: every hidden layer after the first acts on all $P = n^2$
pairs. JAX's automatic derivative of the BatchNorm-LeakyReLU chain is correct, but XLA's
CPU backend turns it into about 30 separate passes over $(P, h)$ tensors (each
BatchNorm's mean, variance, centring and scaling are materialised for the backward pass;
the weight gradient's operand is transposed). The passes, not the matmuls, were two
thirds of the L1 benchmark's step. This module computes the same function with a
`jax.custom_vjp` whose backward pass is the standard fused BatchNorm backward:

$$dz = \frac{g}{\sigma}\Big(dy - \overline{dy} - \hat z\,\overline{dy\,\hat z}\Big),
  \qquad \hat z = \frac{z - \mu}{\sigma},\quad \sigma = \sqrt{\mathrm{var}\,z + \epsilon},$$

with the bars means over the $P$ pairs, so each layer costs one reduction pass and one
elementwise pass besides its two matmuls, and the normalised activations are recomputed
from the saved pre-activations instead of stored.

How it is written follows what XLA:CPU fuses (measured with jax 0.10.2, issue 12's L1
item): an elementwise result read by two reductions is materialised, and the library
(YNNPACK) reductions take products and differences but not `select` (a LeakyReLU
derivative inside one costs a materialised tensor; `sign` inside one ran 40x slower).
So the backward pass materialises $u\,\mathrm{LeakyReLU}'(y)$ once and reduces it twice,
and every other pass reads only saved tensors. The compiled value-and-gradient at the
L1 size holds 7 arrays of $n^2 \times h$ (tests/learn/test_pair_mlp.py); processing the
pairs in row blocks so they stay in cache was slower (a `lax.scan` over 5-20 rows:
+10-35 %).

The function (`pair_logits`) takes the first layer already folded into per-node terms:
$y^{(0)}_{ij} = A_i + B_j$ (the caller computes $A$ and $B$ from the features, the first
layer's weights and its closed-form pair statistics, all O(n) work that ordinary
autodiff handles). Then, for hidden layers $k = 1 \dots D-1$,

$$h^{(k-1)} = \mathrm{LeakyReLU}(y^{(k-1)}),\quad z^{(k)} = h^{(k-1)} W_k^\top + b_k,\quad
  y^{(k)} = g_k \hat z^{(k)} + s_k ,$$

and the logits are $L = \mathrm{LeakyReLU}(y^{(D-1)})\, w$. The bias $b_k$ of a
batch-normalised layer cancels in $\hat z$, so its gradient is exactly 0 (returned as
zeros). Tested against autodiff of the plain expression (tests/learn/test_pair_mlp.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

_EPS_BN = 1e-5  # torch.nn.BatchNorm1d's default, as kuranet._EPS_BN


def _leaky(y, slope):
    return jnp.where(y >= 0, y, slope * y)


def _leaky_grad(y, slope):
    return jnp.where(y >= 0, 1.0, slope).astype(y.dtype)


def _forward(A, B, Ws, gs, ss, w, slope):
    """Logits and residuals: each layer's matmul input h and output z = h W^T (the
    bias is left out: it cancels in the normalisation), its mean and 1/sigma."""
    n = A.shape[0]
    h = _leaky(A[:, None, :] + B[None, :, :], slope).reshape(n * n, -1)
    inputs, zs, stats = [], [], []
    for W, g, s in zip(Ws, gs, ss, strict=True):
        inputs.append(h)
        z = h @ W.T
        mean = jnp.mean(z, axis=0)
        rstd = jax.lax.rsqrt(jnp.mean(jnp.square(z - mean), axis=0) + _EPS_BN)
        a = rstd * g  # y = z a + c: the normalisation as one per-unit affine map of z
        h = _leaky(z * a + (s - mean * a), slope)
        zs.append(z)
        stats.append((mean, rstd))
    logits = (h @ w).reshape(n, n)
    return logits, (inputs, zs, stats)


@functools.partial(jax.custom_vjp, nondiff_argnums=(7,))
def pair_logits(
    A: Float[Array, "n h0"],
    B: Float[Array, "n h0"],
    Ws: tuple[Array, ...],
    bs: tuple[Array, ...],
    gs: tuple[Array, ...],
    ss: tuple[Array, ...],
    w: Float[Array, " hlast"],
    slope: float,
) -> Float[Array, "n n"]:
    r"""The logits $L_{ij}$ `(n, n)` of the BatchNorm pair MLP (equations above).

    - `A`, `B`: receiver and sender parts of the first layer's normalised
      pre-activation, `(n, h_0)`; pair $(i, j)$ gets $A_i + B_j$.
    - `Ws`, `bs`, `gs`, `ss`: per deeper hidden layer $k \ge 1$: weight
      `(h_k, h_{k-1})`, bias, BatchNorm scale and shift `(h_k,)` (tuples, possibly
      empty).
    - `w`: output weights `(h_{D-1},)`; `slope`: the LeakyReLU's negative slope.
    """
    return _forward(A, B, Ws, gs, ss, w, slope)[0]


def _fwd(A, B, Ws, bs, gs, ss, w, slope):
    logits, (inputs, zs, stats) = _forward(A, B, Ws, gs, ss, w, slope)
    return logits, (A, B, Ws, gs, ss, w, inputs, zs, stats)


def _bwd(slope, res, G):
    """The fused BatchNorm backward pass, layer by layer from the output. With
    y = z a + c (a = g/sigma) and the upstream gradient dy = u * LeakyReLU'(y) (u = G w
    at the last layer, the next layer's dh before it), it needs two per-unit sums over
    the pairs, T1 = sum dy / v and T2 = sum dy (z - mean) / v (v = w at the last layer,
    1 before it): d shift = v T1, d scale = v T2 / sigma, and for the last layer
    dw = sum G LeakyReLU(y) = a T2 + s T1 (LeakyReLU(y) = y LeakyReLU'(y)); then
    dz = a dy + beta z + gamma with per-unit beta, gamma: one pass writes dz.

    Passes over the (P, h) tensors (XLA:CPU materialises an elementwise result read by
    more than one reduction, and its library reductions take no select): one writes
    u LeakyReLU'(y), two reduce it (alone and times z - mean), one writes dz; the
    last layer reads neither LeakyReLU(y) nor a (P, h) broadcast of G."""
    A, B, Ws, gs, ss, w, inputs, zs, stats = res
    n = A.shape[0]
    P = n * n
    G = G.reshape(P, 1)
    depth = len(Ws)
    dWs, dgs, dss = [None] * depth, [None] * depth, [None] * depth
    dh = None  # gradient of the current layer's output, (P, h_k); None: G w^T, lazily
    if depth == 0:
        dw = jnp.sum(G * _leaky(A[:, None, :] + B[None, :, :], slope).reshape(P, -1), axis=0)
    for k in reversed(range(depth)):
        z, (mean, rstd), g, s = zs[k], stats[k], gs[k], ss[k]
        a = rstd * g
        y = z * a + (s - mean * a)
        last = dh is None
        um = (G if last else dh) * _leaky_grad(y, slope)  # dy / v, materialised once
        T1 = jnp.sum(um, axis=0)
        # sum um (z - mean) as sum um z - mean T1: a (z - mean) tensor would be shared
        # with the forward's variance reduction and so materialised (one more pass)
        T2 = jnp.sum(um * z, axis=0) - mean * T1
        v = w if last else 1.0
        if last:
            dw = a * T2 + s * T1
        dss[k] = v * T1
        dgs[k] = v * T2 * rstd
        beta = -a * rstd * dgs[k] / P
        gamma = -a * dss[k] / P - beta * mean
        dz = (a * v) * um + (beta * z + gamma)
        dWs[k] = dz.T @ inputs[k]
        dh = dz @ Ws[k]
    if dh is None:
        dh = G * w
    dy0 = dh.reshape(n, n, -1) * _leaky_grad(A[:, None, :] + B[None, :, :], slope)
    dA = jnp.sum(dy0, axis=1)
    dB = jnp.sum(dy0, axis=0)
    dbs = tuple(jnp.zeros_like(g) for g in gs)  # b_k cancels in the normalisation
    return dA, dB, tuple(dWs), dbs, tuple(dgs), tuple(dss), dw


pair_logits.defvjp(_fwd, _bwd)
