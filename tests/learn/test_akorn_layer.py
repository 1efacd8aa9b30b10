"""AKOrNLayer and ChannelConvCoupling: the update against NumPy, the core equivalence
(kl.simulate with solver="akorn"), the reference step-size quirk, norms, equivariance,
energies, gradients, theorem checks and bad input."""

from __future__ import annotations

import equinox as eqx
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import kuralab as kl
import kuralab.learn as L
from kuralab._coupling import coupling_blocks
from kuralab._coupling.conv import from_state, to_state


@eqx.filter_jit
def run(layer, x, c, steps=None, states=False):
    return layer.run(x, c, steps=steps, states=states)


# ---------------------------------------------------------------------------------
# an independent NumPy implementation of the reference update (channels first)
# ---------------------------------------------------------------------------------


def np_conv(u, w, b, pad_mode):
    """Cross-correlation of (C, H, W) with torch weight (O, I, kh, kw), 'same' size."""
    O, I, kh, kw = w.shape
    pt, pl = (kh - 1) // 2, (kw - 1) // 2
    mode = {"zeros": "constant", "circular": "wrap"}[pad_mode]
    up = np.pad(u, ((0, 0), (pt, kh - 1 - pt), (pl, kw - 1 - pl)), mode=mode)
    H, W = u.shape[1:]
    out = np.zeros((O, H, W))
    for i in range(H):
        for j in range(W):
            patch = up[:, i:i + kh, j:j + kw]
            out[:, i, j] = np.einsum("oikl,ikl->o", w, patch)
    return out + b[:, None, None]


def np_layer(x, c, w, b, omega_rates, gamma, n, T, pad_mode):
    """The reference loop: GroupNorm-free stimulus, T steps, logged energies."""
    C = x.shape[0]

    def norm(v):
        g = v.reshape(C // n, n, *v.shape[1:])
        return (g / np.linalg.norm(g, axis=1, keepdims=True)).reshape(v.shape)

    x = norm(x)
    logged = []
    for _ in range(T):
        y = np_conv(x, w, 0 * b, pad_mode) + b[:, None, None] + c
        logged.append(-np.sum(x * y))
        g, gy = x.reshape(C // n, n, -1), y.reshape(C // n, n, -1)
        proj = gy - np.sum(gy * g, 1, keepdims=True) * g
        rot = np.zeros_like(g)
        for p in range(n // 2):  # (a, b) -> (w b, -w a) on pairs inside an oscillator
            wk = omega_rates[:, p][:, None]
            rot[:, 2 * p] = wk * g[:, 2 * p + 1]
            rot[:, 2 * p + 1] = -wk * g[:, 2 * p]
        x = norm((g + gamma * (rot + proj)).reshape(x.shape))
    return x, np.array(logged)


@pytest.mark.parametrize("pad", ["zeros", pytest.param("circular", marks=pytest.mark.slow)])
def test_layer_matches_numpy_reference_update(x64, pad):
    C, n, H, W, T = 8, 4, 3, 4, 3
    layer = L.AKOrNLayer(C, n, "conv", kernel_size=3, steps=T, gamma=0.7, omega=0.4,
                         grid=(H, W), padding=pad, global_omega=False, c_norm="none",
                         key=jax.random.key(0))
    # distinct learnable rates per pair
    layer = eqx_set(layer, "omega_param", jax.random.normal(jax.random.key(5), (C // n, n // 2, 2)))
    x0 = np.asarray(jax.random.normal(jax.random.key(1), (C, H, W)))
    c = np.asarray(jax.random.normal(jax.random.key(2), (C, H, W)))
    out = run(layer, x0, c)
    w = np.moveaxis(np.asarray(layer.kernel), (-2, -1), (0, 1))  # (*k, O, I) -> (O, I, *k)
    rates = np.asarray(layer.omega_rates())
    xr, logged = np_layer(x0, c, w, np.asarray(layer.bias), rates, 0.7, n, T, pad)
    np.testing.assert_allclose(out["x"], xr, atol=1e-12)
    np.testing.assert_allclose(out["energy_logged"][:T], logged, rtol=1e-12)


def eqx_set(module, name, value):
    return eqx.tree_at(lambda m: getattr(m, name), module, value)


@pytest.mark.parametrize(
    "kw",
    [
        dict(connectivity="conv", kernel_size=3, padding="circular"),
        pytest.param(dict(connectivity="conv", kernel_size=(2, 3), global_omega=False,
                          c_norm="group"), marks=pytest.mark.slow),
        pytest.param(dict(connectivity="attn", heads=2, gta=True, c_norm="scale_bias"),
                     marks=pytest.mark.slow),
    ],
)
def test_layer_equals_simulate_of_its_model(x64, kw):
    C, n, grid, T, gamma = 8, 4, (3, 4), 4, 0.5
    layer = L.AKOrNLayer(C, n, steps=T, gamma=gamma, omega=0.7, grid=grid,
                         key=jax.random.key(3), **kw)
    x0 = jax.random.normal(jax.random.key(1), (C, *grid))
    c = jax.random.normal(jax.random.key(2), (C, *grid))
    out = run(layer, x0, c)
    model = layer.model(c)
    y0 = to_state(x0, n)
    y0 = y0 / jnp.linalg.norm(y0, axis=-1, keepdims=True)
    traj = kl.simulate(model, y0, t1=T * gamma, dt=gamma, solver="akorn")
    np.testing.assert_allclose(from_state(traj.ys[-1], C, grid), out["x"], atol=1e-12)
    E = jax.vmap(lambda y: kl.energy(model, y))(traj.ys)
    El = jax.vmap(lambda y: kl.akorn_logged_energy(model, y))(traj.ys)
    np.testing.assert_allclose(E, out["energy"], rtol=1e-10)
    np.testing.assert_allclose(El, out["energy_logged"], rtol=1e-10)


def test_identity_omega_quirk_is_the_halved_step(x64):
    kw = dict(kernel_size=3, steps=5, grid=(4, 4), c_norm="none", key=jax.random.key(0))
    quirk = L.AKOrNLayer(8, 4, omega=None, gamma=1.0, identity_omega_quirk=True, **kw)
    plain = L.AKOrNLayer(8, 4, omega=None, gamma=0.5, **kw)
    x0, c = jax.random.normal(jax.random.key(1), (2, 8, 4, 4))
    np.testing.assert_allclose(run(quirk, x0, c)["x"], run(plain, x0, c)["x"], atol=1e-12)
    assert quirk.model_step() == pytest.approx(kl.reference_gamma(1.0, use_omega=False))
    # without the quirk, omega=None and gamma=1 is a different (full) step
    full = L.AKOrNLayer(8, 4, omega=None, gamma=1.0, **kw)
    assert float(jnp.max(jnp.abs(run(full, x0, c)["x"] - run(plain, x0, c)["x"]))) > 1e-3
    with pytest.raises(ValueError, match="omega=None"):
        L.AKOrNLayer(8, 4, omega=1.0, identity_omega_quirk=True, **kw)


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), gamma=st.floats(0.05, 3.0), conn=st.sampled_from(["conv", "attn"]))
def test_norms_stay_one(seed, gamma, conn):
    layer = L.AKOrNLayer(8, 4, conn, steps=3, gamma=gamma, grid=(3, 3), heads=2,
                         key=jax.random.key(seed))
    x0, c = 3.0 * jax.random.normal(jax.random.key(seed + 1), (2, 8, 3, 3))
    out = run(layer, x0, c, states=True)
    norms = jnp.linalg.norm(out["states"].reshape(4, 2, 4, 3, 3), axis=2)
    np.testing.assert_allclose(norms, 1.0, atol=2e-6)
    assert out["energy"].shape == out["energy_logged"].shape == (4,)


@pytest.mark.slow
def test_energy_invariant_under_shared_rotation_commuting_with_omega(x64):
    """J = A (x) I (scalar blocks), no bias, no c_norm: rotating every oscillator and
    the stimulus by R = rotations in Omega's planes leaves every energy unchanged."""
    C, n, grid = 8, 4, (4, 4)
    layer = L.AKOrNLayer(C, n, "conv", kernel_size=3, steps=6, gamma=0.3, omega=0.8,
                         grid=grid, c_norm="none", key=jax.random.key(0))
    A = jax.random.normal(jax.random.key(4), (3, 3, C // n, C // n))
    kernel = jnp.einsum("xygh,ab->xygahb", A, jnp.eye(n)).reshape(3, 3, C, C)
    layer = eqx_set(eqx_set(layer, "kernel", kernel), "bias", jnp.zeros(C))
    a1, a2 = 0.9, -2.1
    r = lambda a: jnp.array([[jnp.cos(a), -jnp.sin(a)], [jnp.sin(a), jnp.cos(a)]])
    R = jax.scipy.linalg.block_diag(r(a1), r(a2))
    rot = lambda u: jnp.einsum("ab,gbhw->gahw", R, u.reshape(C // n, n, *grid)).reshape(u.shape)
    x0, c = jax.random.normal(jax.random.key(1), (2, C, *grid))
    o1, o2 = run(layer, x0, c), run(layer, rot(x0), rot(c))
    np.testing.assert_allclose(o2["energy"], o1["energy"], rtol=1e-10)
    np.testing.assert_allclose(o2["energy_logged"], o1["energy_logged"], rtol=1e-10)
    np.testing.assert_allclose(o2["x"], rot(o1["x"]), atol=1e-10)
    # a rotation that does not commute with J (mixing only some oscillators) changes E
    layer2 = L.AKOrNLayer(C, n, "conv", kernel_size=3, steps=6, gamma=0.3, omega=0.8,
                          grid=grid, c_norm="none", key=jax.random.key(0))
    assert not np.allclose(run(layer2, rot(x0), rot(c))["energy"], run(layer2, x0, c)["energy"])


@pytest.mark.slow
def test_more_steps_override_and_energy_trace_length():
    layer = L.AKOrNLayer(8, 4, steps=4, grid=(4, 4), key=jax.random.key(0))
    x0, c = jax.random.normal(jax.random.key(1), (2, 8, 4, 4))
    out = run(layer, x0, c, states=True)
    E = out["energy"]
    assert E.shape == (5,)
    norms = jnp.linalg.norm(out["states"].reshape(5, 2, 4, 4, 4), axis=2)
    np.testing.assert_allclose(norms, 1.0, atol=2e-6)
    E8 = run(layer, x0, c, steps=8)["energy"]
    assert E8.shape == (9,)
    np.testing.assert_allclose(E8[:5], E, rtol=1e-5)


@pytest.mark.slow
def test_gradients_match_finite_differences(x64):
    layer = L.AKOrNLayer(4, 2, "conv", kernel_size=3, steps=3, gamma=0.6, omega=0.5,
                         grid=(3, 3), learn_gamma=True, c_norm="group", key=jax.random.key(0))
    x0, c = jax.random.normal(jax.random.key(1), (2, 4, 3, 3))
    target = jax.random.normal(jax.random.key(2), (4, 3, 3))

    def loss(lay):
        x, E = lay(x0, c)
        return jnp.sum(x * target) + 0.1 * E[-1]

    params, static = eqx.partition(layer, eqx.is_inexact_array)
    g = jax.grad(lambda p: loss(eqx.combine(p, static)))(params)
    direction = jax.tree_util.tree_map(lambda a: jax.random.normal(jax.random.key(a.size), a.shape), params)
    h = 1e-6
    plus = jax.tree_util.tree_map(lambda p, d: p + h * d, params, direction)
    minus = jax.tree_util.tree_map(lambda p, d: p - h * d, params, direction)
    fd = (loss(eqx.combine(plus, static)) - loss(eqx.combine(minus, static))) / (2 * h)
    an = sum(jnp.sum(a * d) for a, d in zip(jax.tree_util.tree_leaves(g),
                                            jax.tree_util.tree_leaves(direction), strict=True))
    assert float(an) == pytest.approx(float(fd), rel=1e-6)
    assert float(g.gamma) != 0.0 and float(jnp.abs(g.omega_param).sum()) != 0.0
    # frozen gamma (the default) gets no gradient
    frozen = L.AKOrNLayer(4, 2, "conv", steps=3, grid=(3, 3), key=jax.random.key(0))
    pf, sf = eqx.partition(frozen, eqx.is_inexact_array)
    gf = jax.grad(lambda p: loss(eqx.combine(p, sf)))(pf)
    assert float(gf.gamma) == 0.0


@pytest.mark.slow
def test_check_lyapunov_on_trained_conv_layer_names_the_failing_hypothesis():
    import optax

    layer = L.AKOrNLayer(8, 4, "conv", kernel_size=3, steps=4, gamma=0.5, omega=0.3,
                         grid=(3, 3), c_norm="none", key=jax.random.key(0))
    x0, c = jax.random.normal(jax.random.key(1), (2, 8, 3, 3))
    target = jax.random.normal(jax.random.key(2), (8, 3, 3))
    loss = lambda lay, b, k: jnp.mean((lay(x0, c)[0] - target) ** 2)
    trained, hist = L.fit(loss, layer, lambda s, k: None, optax.adam(1e-2), steps=15,
                          key=jax.random.key(3), progress=False)
    assert float(hist.loss[-1]) < float(hist.loss[0])
    ds = trained.check_lyapunov(x0, c)
    holds = dict(zip(ds.hypothesis.values, ds.holds.values, strict=True))
    assert not holds["block_symmetric"]  # conv J is not symmetric
    assert not holds["omega_c_zero"]
    assert ds.attrs["theorem"] == "none"
    assert ds.attrs["verdict"] in ("counterexample", "inconclusive")
    assert ds.E.size == 5
    # a symmetric kernel (W_{-d} = W_d^T), no Omega, no bias, small gamma: Lyapunov
    k = trained.kernel
    sym = 0.5 * (k + jnp.swapaxes(k[::-1, ::-1], -1, -2))
    lay = eqx.tree_at(lambda m: (m.kernel, m.bias, m.omega_param), trained,
                      (sym, jnp.zeros(8), None), is_leaf=lambda v: v is None)
    ds2 = lay.check_lyapunov(x0, c, steps=20)
    h2 = dict(zip(ds2.hypothesis.values, ds2.holds.values, strict=True))
    assert h2["block_symmetric"] and h2["omega_c_zero"]
    assert ds2.attrs["verdict"] in ("lyapunov", "violation")
    assert float(ds2.E[-1]) < float(ds2.E[0])


# ---------------------------------------------------------------------------------
# the core coupling
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pad, boundary", [("zeros", "open"), ("circular", "periodic")])
def test_channel_conv_with_one_oscillator_per_site_is_lattice_block(pad, boundary):
    kernel = jax.random.normal(jax.random.key(0), (3, 3, 4, 4))
    a = kl.ChannelConvCoupling(kernel, (5, 4), 4, padding=pad)
    b = kl.LatticeBlockCoupling(kernel, (5, 4), boundary=boundary)
    x = jax.random.normal(jax.random.key(1), (20, 4))
    np.testing.assert_allclose(a.apply(x), b.apply(x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_channel_conv_symmetry_check_matches_materialised_blocks():
    k = jax.random.normal(jax.random.key(0), (3, 3, 8, 8))
    sym = 0.5 * (k + jnp.swapaxes(k[::-1, ::-1], -1, -2))
    for pad in ("zeros", "circular"):
        c = kl.ChannelConvCoupling(sym, (4, 4), 4, padding=pad)
        assert c.is_symmetric(rtol=1e-6)
        J = coupling_blocks(c, c.n_osc, 4)
        full = np.asarray(J).transpose(0, 2, 1, 3).reshape(c.n_osc * 4, -1)
        np.testing.assert_allclose(full, full.T, atol=1e-5)
        assert not kl.ChannelConvCoupling(k, (4, 4), 4, padding=pad).is_symmetric(rtol=1e-3)
    kl.ChannelConvCoupling(sym, (4, 4), 4, tags=(kl.symmetric_tag,))
    with pytest.raises(ValueError, match="declared"):
        kl.ChannelConvCoupling(k, (4, 4), 4, tags=(kl.symmetric_tag,))


# ---------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------


def test_bad_input_one_line_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="divisible by `n`"):
        L.AKOrNLayer(10, 4, key=key)
    with pytest.raises(ValueError, match="`n` must be an int >= 2"):
        L.AKOrNLayer(8, 1, key=key)
    with pytest.raises(ValueError, match="larger than the grid"):
        L.AKOrNLayer(8, 4, kernel_size=5, grid=(3, 3), padding="circular", key=key)
    with pytest.raises(ValueError, match="`connectivity` must be one of"):
        L.AKOrNLayer(8, 4, connectivity="atn", key=key)
    with pytest.raises(ValueError, match="`grid`"):
        L.AKOrNLayer(8, 4, connectivity="attn", key=key)
    layer = L.AKOrNLayer(8, 4, kernel_size=5, padding="reflect", key=key)
    with pytest.raises(ValueError, match="larger than the grid"):
        layer(jnp.ones((8, 3, 3)), jnp.ones((8, 3, 3)))
    with pytest.raises(ValueError, match="same shape"):
        layer(jnp.ones((8, 6, 6)), jnp.ones((8, 6, 5)))
    with pytest.raises(ValueError, match="channels=8"):
        layer(jnp.ones((4, 6, 6)), jnp.ones((4, 6, 6)))
    with pytest.raises(ValueError, match="not divisible by dim"):
        kl.ChannelConvCoupling(jnp.ones((3, 3, 6, 6)), (4, 4), 4)
    # zero padding allows a kernel larger than the grid (the extra weights see zeros)
    L.AKOrNLayer(8, 4, kernel_size=5, grid=(3, 3), key=key)
