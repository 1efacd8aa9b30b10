"""The fast paths of AKOrNLayer: the conv methods of `conv_channels_last` agree with each
other and with `lax.conv` (values and gradients), the component-major layout round-trips,
and the hand-written backward of `conv_step` equals autodiff of the same step.

Error budget: float64, O(10^2) terms per output; every path sums the same products in a
different order, so agreement is at rounding level (~1e-15 relative); 1e-12 leaves
three orders of margin. The compiled comparisons take 3-5 s each on 2 loaded cores
(compilation), hence `slow` (`make test-slow`); the layer tests of test_akorn_layer.py
run the fast step in the default suite."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kuralab._coupling.conv import METHODS, conv_channels_last, im2col_weight
from kuralab.learn._akorn_layout import (
    _step_forward,
    components,
    conv_step,
    from_cm,
    kernel_cm,
    to_cm,
)

TOL = 1e-12


def _lax_conv(u, kernel, padding):
    """Independent reference: `lax.conv_general_dilated` (NCHW, OIHW) on a padded map."""
    ks = kernel.shape[:2]
    pads = [((k - 1) // 2, k // 2) for k in ks]
    mode = {"zeros": "constant", "circular": "wrap", "reflect": "reflect",
            "replicate": "edge"}[padding]
    x = jnp.pad(jnp.moveaxis(u, -1, 1), [(0, 0), (0, 0), *pads], mode=mode)
    w = jnp.moveaxis(kernel, (-2, -1), (0, 1))
    out = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                       precision=jax.lax.Precision.HIGHEST)
    return jnp.moveaxis(out, 1, -1)


@pytest.mark.parametrize("ks, padding", [
    pytest.param((2, 1), "zeros", marks=pytest.mark.slow),
    pytest.param((2, 3), "circular", marks=pytest.mark.slow),
    pytest.param((3, 3), "zeros", marks=pytest.mark.slow),
    pytest.param((3, 2), "reflect", marks=pytest.mark.slow),
    pytest.param((1, 1), "replicate", marks=pytest.mark.slow),
])
def test_conv_methods_agree_with_lax_conv_values_and_gradients(x64, ks, padding):
    u = jax.random.normal(jax.random.key(0), (2, 4, 5, 6))
    kernel = jax.random.normal(jax.random.key(1), ks + (3, 6))
    g = jax.random.normal(jax.random.key(2), (2, 4, 5, 3))

    @jax.jit
    def value_and_vjp(u, kernel, g):
        res = {}
        for m, f in [("lax", _lax_conv)] + [(m, conv_channels_last) for m in METHODS]:
            kw = {} if m == "lax" else {"method": m}
            out, vjp = jax.vjp(lambda a, k, f=f, kw=kw: f(a, k, padding, **kw), u, kernel)
            res[m] = (out, *vjp(g))
        return res

    res = value_and_vjp(u, kernel, g)
    ref, ref_du, ref_dk = res["lax"]
    for method in METHODS:
        out, du, dk = res[method]
        scale = float(jnp.max(jnp.abs(ref)))
        np.testing.assert_allclose(out, ref, atol=TOL * scale, err_msg=method)
        np.testing.assert_allclose(du, ref_du, atol=TOL * float(jnp.max(jnp.abs(ref_du))),
                                   err_msg=method)
        np.testing.assert_allclose(dk, ref_dk, atol=TOL * float(jnp.max(jnp.abs(ref_dk))),
                                   err_msg=method)


def test_conv_method_bad_name():
    with pytest.raises(ValueError, match="`method` must be one of"):
        conv_channels_last(jnp.zeros((3, 3, 2)), jnp.zeros((3, 3, 2, 2)), method="fft")


def test_component_major_layout_round_trip_and_permuted_conv(x64):
    n, C, grid = 4, 8, (3, 5)
    x = np.asarray(jax.random.normal(jax.random.key(0), (C, *grid)))
    u = to_cm(x, n)
    # component k of oscillator g is channel g n + k
    v = components(u, n)
    np.testing.assert_array_equal(v[1, 2, 3, 1], x[1 * n + 3, 1, 2])
    np.testing.assert_array_equal(from_cm(u, n, 2), x)
    # the permuted kernel is the same convolution on the permuted map
    kernel = jax.random.normal(jax.random.key(1), (3, 3, C, C))
    both = jax.jit(lambda x, k: (
        jnp.moveaxis(conv_channels_last(jnp.moveaxis(x, 0, -1), k), -1, 0),
        from_cm(conv_channels_last(to_cm(x, n), kernel_cm(k, n)), n, 2)))
    direct, via_cm = both(x, kernel)
    np.testing.assert_allclose(via_cm, direct, atol=TOL * float(jnp.max(jnp.abs(direct))))


@pytest.mark.parametrize(
    "mode, padding, ks, n, per_pair",
    [pytest.param("omega", "zeros", (3, 3), 3, True, marks=pytest.mark.slow),
     pytest.param("omega", "circular", (2, 3), 4, True, marks=pytest.mark.slow),
     pytest.param("omega", "zeros", (3, 3), 4, False, marks=pytest.mark.slow),
     pytest.param("identity", "zeros", (3, 3), 2, False, marks=pytest.mark.slow),
     pytest.param("none", "circular", (3, 3), 3, False, marks=pytest.mark.slow)],
)
def test_conv_step_backward_equals_autodiff(x64, mode, padding, ks, n, per_pair):
    """The hand-written VJP of one step, energy sums included, against JAX autodiff of the
    same forward (`_step_forward`), for every input."""
    G, grid = 2, (4, 3)
    C = n * G
    keys = jax.random.split(jax.random.key(7), 8)
    u = components(jax.random.normal(keys[0], (*grid, C)), n)
    u = (u / jnp.linalg.norm(u, axis=-2, keepdims=True)).reshape(*grid, C)
    cl = jax.random.normal(keys[1], (*grid, C))
    wmat = im2col_weight(0.3 * jax.random.normal(keys[2], ks + (C, C)))
    gamma = jnp.asarray(0.7)
    w = None
    if mode == "omega":
        w = jax.random.uniform(keys[3], (G, n // 2)) if per_pair else jnp.asarray(0.4)
    cts = (jax.random.normal(keys[4], (*grid, C)), jnp.asarray(0.3), jnp.asarray(-1.1))

    def fast(u, cl, wmat, gamma, w):
        return conv_step(u, cl, wmat, gamma, w, n, ks, padding, mode)

    def plain(u, cl, wmat, gamma, w):
        return _step_forward(u, cl, wmat, gamma, w, n, ks, padding, mode)[0]

    @jax.jit
    def both(args, cts):
        (out_f, vjp_f), (out_p, vjp_p) = jax.vjp(fast, *args), jax.vjp(plain, *args)
        return out_f, out_p, vjp_f(cts), vjp_p(cts)

    out_f, out_p, ct_f, ct_p = both((u, cl, wmat, gamma, w), cts)
    for a, b in zip(out_f, out_p, strict=True):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL)
    for name, a, b in zip(("u", "cl", "wmat", "gamma", "w"), ct_f, ct_p, strict=True):
        if b is None:
            assert a is None, name
            continue
        scale = max(float(jnp.max(jnp.abs(b))), 1e-300)
        np.testing.assert_allclose(a, b, atol=TOL * scale, err_msg=name)


@pytest.mark.parametrize("kw", [
    pytest.param(dict(connectivity="conv", padding="circular", global_omega=False),
                 marks=pytest.mark.slow),
    pytest.param(dict(connectivity="conv", padding="reflect"), marks=pytest.mark.slow),
    pytest.param(dict(connectivity="attn", heads=2), marks=pytest.mark.slow),
])
def test_batched_call_equals_vmap_values_and_gradients(x64, kw):
    """A batch `(B, C, *grid)` through the layer is jax.vmap of one example: states,
    energies, states=True output and the gradient of every parameter."""
    import equinox as eqx

    import kuralab.learn as L

    C, n, grid = 4, 2, (3, 3)
    layer = L.AKOrNLayer(C, n, steps=3, gamma=0.6, omega=0.5, grid=grid, learn_gamma=True,
                         key=jax.random.key(0), **kw)
    x0, c, target = jax.random.normal(jax.random.key(1), (3, 2, C, *grid))

    def loss(lay, batched):
        run = (lambda a, b: lay.run(a, b, states=True)) if batched else jax.vmap(
            lambda a, b: lay.run(a, b, states=True))
        out = run(x0, c)
        return (jnp.sum(out["x"] * target) + 0.1 * jnp.sum(out["energy"])
                + 0.01 * jnp.sum(out["energy_logged"] ** 2)), out

    @jax.jit
    def both(lay):
        f = eqx.filter_value_and_grad(loss, has_aux=True)
        return f(lay, True), f(lay, False)

    ((lb, ob), gb), ((lv, ov), gv) = both(layer)
    assert ob["energy"].shape == (2, 4) and ob["states"].shape == (2, 4, C, *grid)
    for key in ob:
        np.testing.assert_allclose(ob[key], ov[key], rtol=TOL, atol=TOL, err_msg=key)
    for a, b in zip(jax.tree_util.tree_leaves(gb), jax.tree_util.tree_leaves(gv), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=TOL * float(jnp.max(jnp.abs(b))))
