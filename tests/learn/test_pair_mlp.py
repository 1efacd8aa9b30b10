"""The BatchNorm pair MLP's hand-written backward pass (kuralab/learn/_pair_mlp.py):
value and every parameter gradient equal JAX's autodiff of the plain explicit-pairs
expression (x64), for one and three hidden layers (two: the benchmark and
test_learn_kuranet), with non-trivial BatchNorm
scales and shifts and pre-activations on both sides of the LeakyReLU kink."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab.learn as L


def _plain_logits(c, x):
    """The reference layers on explicit pairs [x_i, x_j], BatchNorm over the n^2 rows,
    written directly (no per-node split, no custom derivative)."""
    n = x.shape[0]
    h = jnp.concatenate([jnp.repeat(x, n, axis=0), jnp.tile(x, (n, 1))], axis=1)
    for k, (W, b) in enumerate(zip(c.weights, c.biases, strict=True)):
        z = h @ W.T + b
        z = (z - z.mean(0)) / jnp.sqrt(z.var(0) + 1e-5)
        z = z * c.norm_scales[k] + c.norm_shifts[k]
        h = jax.nn.leaky_relu(z, c.negative_slope)
    return (h @ c.out_weight).reshape(n, n)


def _perturbed(c, key):
    """Scales around 1 and shifts around 0 (so both are used and checked)."""
    k1, k2 = jax.random.split(key)
    scales = tuple(1.0 + 0.3 * jax.random.normal(k, s.shape, s.dtype)
                   for k, s in zip(jax.random.split(k1, len(c.norm_scales)), c.norm_scales, strict=True))
    shifts = tuple(0.3 * jax.random.normal(k, s.shape, s.dtype)
                   for k, s in zip(jax.random.split(k2, len(c.norm_shifts)), c.norm_shifts, strict=True))
    return eqx.tree_at(lambda m: (m.norm_scales, m.norm_shifts), c, (scales, shifts))


@pytest.mark.parametrize("hidden", [(7,), (16, 8, 12)])
def test_custom_backward_equals_autodiff_of_explicit_pairs(getkey, x64, hidden):
    n = 9
    c = L.PairwiseMLPCoupling(3, hidden=hidden, key=getkey())
    c = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64) if eqx.is_inexact_array(a) else a, c)
    c = _perturbed(c, getkey())
    x = jax.random.normal(getkey(), (n, 3), jnp.float64)
    G = jax.random.normal(getkey(), (n, n), jnp.float64)  # a generic cotangent

    def loss(m, f):
        return jnp.sum(f(m, x) * G)

    def run(m, f):
        return eqx.filter_jit(eqx.filter_value_and_grad(loss))(m, f)

    got_v, got_g = run(c, lambda m, x: m.logits(x))
    ref_v, ref_g = run(c, _plain_logits)
    np.testing.assert_allclose(float(got_v), float(ref_v), rtol=1e-12)
    flat_got = jax.tree_util.tree_leaves(eqx.filter(got_g, eqx.is_inexact_array))
    flat_ref = jax.tree_util.tree_leaves(eqx.filter(ref_g, eqx.is_inexact_array))
    assert len(flat_got) == len(flat_ref) == 4 * len(hidden) + 1
    scale = max(float(jnp.max(jnp.abs(r))) for r in flat_ref)
    for a, b in zip(flat_got, flat_ref, strict=True):
        # float64 round-off through a few reductions over n^2 = 81 pairs: ~1e-13 of the
        # largest gradient; the biases of normalised layers are exactly 0 in the
        # custom pass and ~1e-16 in autodiff
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-11 * scale)
    # the first layer's normalised pre-activations straddle the LeakyReLU kink, so
    # both branches of its derivative were exercised
    pairs = np.concatenate([np.repeat(x, n, 0), np.tile(x, (n, 1))], 1) @ np.asarray(c.weights[0]).T
    frac = np.mean((pairs - pairs.mean(0)) * np.asarray(c.norm_scales[0]) / pairs.std(0)
                   + np.asarray(c.norm_shifts[0]) < 0)
    assert 0.2 < frac < 0.8


def test_gradient_pass_count_over_pair_tensors():
    """Performance guard (issue 12, L1): the compiled value-and-gradient of the pair MLP
    at the benchmark's size (n = 100, 128 -> 128 -> 1) materialises at most 7 arrays of
    n^2 x 128 (h0, z, the last hidden activations, u LeakyReLU'(y), dz, dh, and the
    first layer's dy), the 3 n^2 x 128 x 128 matmuls included; the backward pass with
    separate dy, S1, S2 and dw reductions had 8. Compile only, nothing runs."""
    import re

    from kuralab.learn._pair_mlp import pair_logits

    if jax.default_backend() != "cpu":
        pytest.skip("the count is of XLA:CPU's fusions (GPU fuses differently)")

    n, h = 100, 128
    f32 = jax.ShapeDtypeStruct
    args = [f32((n, h), jnp.float32)] * 2 + [f32((h, h), jnp.float32)] + [f32((h,), jnp.float32)] * 4

    def loss(A, B, W, b, g, s, w):
        return jnp.sum(jnp.sin(pair_logits(A, B, (W,), (b,), (g,), (s,), w, 0.01)))

    txt = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 4, 5, 6))).lower(*args).compile().as_text()
    entry = txt[txt.index("ENTRY"):]
    big = re.findall(rf"= f32\[(?:{n * n},{h}|{n},{n},{h})\]\S* (fusion|dot|concatenate|copy|broadcast)\(", entry)
    assert 3 <= len(big) <= 7, f"{len(big)} n^2 x h arrays materialised: {big}"
