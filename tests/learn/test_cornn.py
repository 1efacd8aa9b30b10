"""kl.learn.CoRNNCell / CoRNNSequence / CoRNNAutoencoder: the step against an explicit
NumPy loop, the two coupling methods against each other, the symplectic invariant of the
linear undamped cell, gradients against finite differences (x64), the reference
initialisation, frozen parameters, and one-line errors for bad input."""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab.learn as L
from kuralab.learn.cornn import lattice_correlate, lattice_matrix


def numpy_step(cell, h, v, z):
    """The cell's step as an explicit loop over sites and kernel taps (float64)."""
    h, v, z = (np.asarray(a, np.float64) for a in (h, v, z))
    shape = cell.shape

    def corr(K, x):
        K = np.asarray(K, np.float64)
        c = [s // 2 for s in K.shape]
        out = np.zeros(shape)
        for i in itertools.product(*(range(s) for s in shape)):
            acc = 0.0
            for a in itertools.product(*(range(s) for s in K.shape)):
                j = [ii + aa - cc for ii, aa, cc in zip(i, a, c, strict=True)]
                if cell.boundary == "periodic":
                    j = [jj % n for jj, n in zip(j, shape, strict=True)]
                elif any(jj < 0 or jj >= n for jj, n in zip(j, shape, strict=True)):
                    continue
                acc += K[a] * x[tuple(j)]
            out[i] = acc
        return out

    pre = np.asarray(cell.bias, np.float64).copy()
    if cell.coupled:
        pre += corr(cell.kernel_h, h) + corr(cell.kernel_v, v)
    if cell.input_size is None:
        pre += corr(cell.input_weight, z)
    else:
        pre += (np.asarray(cell.input_weight, np.float64) @ z
                + np.asarray(cell.input_bias, np.float64)).reshape(shape)
    dt = 1.0 / (1.0 + math.exp(-float(cell.dt_raw)))
    gamma, alpha = max(float(cell.gamma_raw), 0.0), max(float(cell.alpha_raw), 0.0)
    v_new = v + dt * (np.tanh(pre) - gamma * h - alpha * v)
    return h + dt * v_new, v_new


def _randomise(cell, key):
    """Random kernels and bias (the reference init is constant: too easy a test)."""
    k1, k2, k3 = jax.random.split(key, 3)
    new = [0.4 * jax.random.normal(k1, cell.kernel_h.shape),
           0.4 * jax.random.normal(k2, cell.kernel_v.shape),
           0.3 * jax.random.normal(k3, cell.bias.shape)]
    return eqx.tree_at(lambda c: (c.kernel_h, c.kernel_v, c.bias), cell, new)


SLOW = pytest.mark.slow
CASES = [
    ((5, 4), 3, "periodic", 2, "dense"),
    ((7,), 5, "zero", 2, "kernel"),
    pytest.param((5, 4), 3, "periodic", 2, "kernel", marks=SLOW),
    pytest.param((5, 6), 3, "zero", 3, "dense", marks=SLOW),
    pytest.param((9,), 3, "periodic", None, "kernel", marks=SLOW),
    pytest.param((5, 5), 5, "periodic", None, "dense", marks=SLOW),
]


@pytest.mark.parametrize("shape, ksize, boundary, input_size, method", CASES)
def test_step_matches_numpy_loop(getkey, x64, shape, ksize, boundary, input_size, method):
    cell = L.CoRNNCell(shape, input_size, dt=0.3, gamma=1.7, alpha=0.4, kernel_size=ksize,
                       boundary=boundary, method=method, key=getkey())
    cell = _randomise(cell, getkey())
    h, v = (jax.random.normal(getkey(), shape) for _ in range(2))
    z = jax.random.normal(getkey(), shape if input_size is None else (input_size,))
    h1, v1 = cell((h, v), z)
    rh, rv = numpy_step(cell, h, v, z)
    np.testing.assert_allclose(np.asarray(h1), rh, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(v1), rv, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("boundary", ["periodic", pytest.param("zero", marks=SLOW)])
def test_step_equals_the_core_lattice_oscillators_step(getkey, boundary):
    """The trained cell as the physics model kl.LatticeOscillators: one reference step
    of the core model (drive through kernel_z) is the cell's step."""
    import kuralab as kl

    cell = _randomise(L.CoRNNCell((5, 6), None, dt=0.2, gamma=1.5, alpha=0.3,
                                  boundary=boundary, key=getkey()), getkey())
    sheet = cell.to_model()
    assert isinstance(sheet, kl.LatticeOscillators)
    h, v, z = (jax.random.normal(getkey(), (5, 6)) for _ in range(3))
    y1 = sheet.step(jnp.stack([h, v]), z, dt=cell.dt)
    h1, v1 = cell((h, v), z)
    np.testing.assert_allclose(y1[0], h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y1[1], v1, rtol=1e-5, atol=1e-6)


def test_scan_is_repeated_steps_and_methods_agree(getkey):
    shape = (6, 6)
    dense = L.CoRNNCell(shape, 3, method="dense", key=getkey())
    dense = _randomise(dense, getkey())
    kern = L.CoRNNCell(shape, 3, method="kernel", key=getkey())
    kern = eqx.tree_at(lambda c: (c.kernel_h, c.kernel_v, c.bias, c.input_weight, c.input_bias),
                       kern, (dense.kernel_h, dense.kernel_v, dense.bias, dense.input_weight,
                              dense.input_bias))
    zs = jax.random.normal(getkey(), (12, 3))
    final_d, (hs_d, vs_d) = dense.scan(zs)
    final_k, (hs_k, _) = kern.scan(zs)
    np.testing.assert_allclose(hs_d, hs_k, rtol=1e-5, atol=1e-6)
    s = dense.init_state()
    for t in range(zs.shape[0]):
        s = dense(s, zs[t])
        np.testing.assert_allclose(s[0], hs_d[t], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final_d[1], vs_d[-1])
    # the dense matrix is the correlation
    x = jax.random.normal(getkey(), shape)
    M = lattice_matrix(dense.kernel_h, shape)
    np.testing.assert_allclose(M @ x.ravel(), lattice_correlate(dense.kernel_h, x).ravel(),
                               rtol=1e-5, atol=1e-6)


def test_linear_undamped_cell_conserves_the_symplectic_invariant(getkey, x64):
    """Kernels, bias and input zero, alpha = 0: each site is the symplectic-Euler map of
    a harmonic oscillator, v' = v - D g h, h' = h + D v', which conserves
    Q = v^2 + g h^2 - D g h v exactly (and explicit Euler would not)."""
    shape = (4, 4)
    cell = L.CoRNNCell(shape, 1, dt=0.2, gamma=2.0, alpha=0.0, key=getkey())
    cell = eqx.tree_at(lambda c: (c.kernel_h, c.kernel_v, c.input_weight, c.input_bias),
                       cell, [jnp.zeros((3, 3)), jnp.zeros((3, 3)), jnp.zeros((16, 1)),
                              jnp.zeros(16)])
    h0, v0 = jax.random.normal(getkey(), shape), jax.random.normal(getkey(), shape)
    _, (hs, vs) = cell.scan(jnp.zeros((200, 1)), (h0, v0))
    D, g = float(cell.dt), 2.0

    def Q(h, v):
        return v**2 + g * h**2 - D * g * h * v

    q = Q(hs, vs)
    np.testing.assert_allclose(q, np.broadcast_to(Q(h0, v0), q.shape), rtol=1e-10)
    assert float(jnp.std(hs)) > 0.3  # it oscillates


def _fd_check(f, params, key, eps=1e-6, rtol=1e-5):
    """Directional derivative along a random direction of every trainable leaf."""
    f = eqx.filter_jit(f)
    grads = eqx.filter_jit(eqx.filter_grad(f))(params)
    leaves = jax.tree_util.tree_leaves(eqx.filter(params, eqx.is_inexact_array))
    dirs = [jax.random.normal(k, x.shape, x.dtype)
            for k, x in zip(jax.random.split(key, len(leaves)), leaves, strict=True)]
    gleaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    arr, static = eqx.partition(params, eqx.is_inexact_array)
    treedef = jax.tree_util.tree_structure(arr)

    def shifted(s):
        new = jax.tree_util.tree_unflatten(
            treedef, [x + s * d for x, d in zip(leaves, dirs, strict=True)])
        return f(eqx.combine(new, static))

    for i, (g, d) in enumerate(zip(gleaves, dirs, strict=True)):
        def only(s, i=i):
            ls = [x + (s * dd if j == i else 0.0) for j, (x, dd) in enumerate(zip(leaves, dirs, strict=True))]
            return f(eqx.combine(jax.tree_util.tree_unflatten(treedef, ls), static))

        fd = (only(eps) - only(-eps)) / (2 * eps)
        an = float(jnp.sum(g * d))
        assert abs(fd - an) <= rtol * max(1.0, abs(an)) + 1e-8, (i, fd, an)
    total = (shifted(eps) - shifted(-eps)) / (2 * eps)
    assert abs(float(total) - sum(float(jnp.sum(g * d)) for g, d in zip(gleaves, dirs, strict=True))) < 1e-5


def test_sequence_gradient_matches_finite_differences(getkey, x64):
    model = L.CoRNNSequence((3, 3), 2, 1, dt=0.2, gamma=1.3, alpha=0.3, key=getkey())
    model = eqx.tree_at(lambda m: m.cell, model, _randomise(model.cell, getkey()))
    x, y = L.data.adding_task(getkey(), 2, 6)

    def loss(m):
        return jnp.mean((jax.vmap(m)(x)[:, 0] - y) ** 2)

    n_trained = len(jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
    assert n_trained == 10  # kernels 2, input map 2, bias, dt/gamma/alpha, readout 2
    _fd_check(loss, model, getkey())


@pytest.mark.slow
def test_autoencoder_gradient_matches_finite_differences(getkey, x64):
    frames = L.data.rotating_shapes(getkey(), 2, frames=5, size=8)
    ae = L.CoRNNAutoencoder(64, (3, 3), variational=True, key=getkey())
    ae = eqx.tree_at(lambda m: m.cell, ae, _randomise(ae.cell, getkey()))
    k = getkey()
    _fd_check(lambda m: L.autoencoder_loss(m, frames, k)[0], ae, getkey(), rtol=1e-5)


def test_reference_initialisation_and_frozen_parameters(getkey):
    cell = L.CoRNNCell((6, 6), None, init="reference", key=getkey())
    assert float(cell.dt) == pytest.approx(1 / (1 + math.exp(1.95)), rel=1e-6)  # 0.1246
    assert float(cell.gamma) == 1.0 and float(cell.alpha) == 0.5
    np.testing.assert_allclose(cell.kernel_h, np.full((3, 3), 1 / 36))
    np.testing.assert_allclose(cell.input_weight, np.full((3, 3), 1 / 36))
    assert float(jnp.abs(cell.bias).max()) == 0.0
    frozen = L.CoRNNCell((6, 6), 2, dt=0.016, gamma=94.5, alpha=9.5, trainable=(), key=getkey())
    assert isinstance(frozen.gamma_raw, float) and isinstance(frozen.dt_raw, float)
    assert float(frozen.dt) == pytest.approx(0.016) and float(frozen.gamma) == pytest.approx(94.5)
    # ReLU clamps: a negative raw gamma acts as 0
    neg = eqx.tree_at(lambda c: c.gamma_raw, cell, jnp.asarray(-3.0))
    assert float(neg.gamma) == 0.0
    off = L.CoRNNCell((6, 6), 2, coupled=False, key=getkey())
    assert off.kernel_h is None and off.kernel_v is None
    h = jax.random.normal(getkey(), (6, 6))
    assert float(jnp.abs(off.coupling_term(h, h)).max()) == 0.0


@pytest.mark.slow
def test_autoencoder_shapes_and_next_frame_target(getkey):
    frames = L.data.rotating_shapes(getkey(), 3, frames=6, size=10)
    ae = L.CoRNNAutoencoder(100, (4, 4), key=getkey())
    pred, hs, kl = eqx.filter_jit(lambda m, f: m.rollout(f))(ae, frames[0])
    assert pred.shape == (6, 100) and hs.shape == (6, 4, 4) and float(jnp.abs(kl).max()) == 0.0
    assert float(pred.min()) > 0 and float(pred.max()) < 1
    total, aux = L.autoencoder_loss(ae, frames)
    # the loss is the BCE of prediction t against frame (t + 1) mod T
    x = frames[0].reshape(6, -1)
    p = jnp.clip(pred, 1e-6, 1 - 1e-6)
    bce = -jnp.sum(jnp.roll(x, -1, 0) * jnp.log(p) + (1 - jnp.roll(x, -1, 0)) * jnp.log1p(-p), 1)
    assert float(ae.loss(frames[0])[1]) == pytest.approx(float(bce.mean()), rel=1e-5)
    assert float(total) == pytest.approx(float(aux["nll"]), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape=(4, 4, 4), input_size=2), "`shape` must be a tuple of 1 or 2"),
        (dict(shape=(6, 6), input_size=2, kernel_size=4), "`kernel_size` must be an odd int"),
        (dict(shape=(6, 6), input_size=2, kernel_size=9), "`kernel_size` must be an odd int"),
        (dict(shape=(6, 6), input_size=2, kernel_h=np.ones(3)), "`kernel_h` must have rank 2"),
        (dict(shape=(6, 6), input_size=2, kernel_v=np.ones((3, 4))), "`kernel_v` must have odd sizes"),
        (dict(shape=(4,), input_size=2, kernel_h=np.ones(5)), "`kernel_h` must have odd sizes"),
        (dict(shape=(6, 6), input_size=0), "`input_size` must be a positive int"),
        (dict(shape=(6, 6), input_size=2, dt=1.5), "`dt` must lie in"),
        (dict(shape=(6, 6), input_size=2, gamma=-1.0), "`gamma` and `alpha` must be >= 0"),
        (dict(shape=(6, 6), input_size=2, boundary="wrap"), "`boundary` must be one of"),
        (dict(shape=(6, 6), input_size=2, trainable=("beta",)), "`trainable` must be one of"),
        (dict(shape=(6, 6), input_size=2, init="xavier"), "`init` must be one of"),
    ],
)
def test_bad_cell_arguments(getkey, kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        L.CoRNNCell(**kwargs, key=getkey())
    assert "\n" not in str(e.value)


def test_bad_sequences(getkey):
    model = L.CoRNNSequence((4, 4), 2, length=10, key=getkey())
    x = jnp.zeros((1, 10, 2))
    for bad, match in [
        (x[0, :9], "must have length T = 10"),
        (x[0, :, :1], r"must have shape \(T, 2\)"),
        (x, r"must have shape \(T, 2\)"),
    ]:
        with pytest.raises(ValueError, match=match) as e:
            model(bad)
        assert "\n" not in str(e.value)
    cell = model.cell
    with pytest.raises(ValueError, match=r"`zs` must have shape \(T, 2\)"):
        cell.scan(jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="`state` must be"):
        cell((jnp.zeros((4, 5)), jnp.zeros((4, 4))), jnp.zeros(2))
    ae = L.CoRNNAutoencoder(64, (3, 3), key=getkey())
    with pytest.raises(ValueError, match="`frames` must be"):
        ae.rollout(jnp.zeros((5, 7, 7)))
    with pytest.raises(ValueError, match="`frames` must be"):
        ae.rollout(jnp.zeros((1, 8, 8)))
