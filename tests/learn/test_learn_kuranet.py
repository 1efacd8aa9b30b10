"""kl.learn KuraNet: the pair MLP against a direct NumPy port of the reference layers,
normalisations, chunking, losses against hand-written Euler loops, gradients against
finite differences (x64), truncation, the c_x diagnostic, and bad input."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
import kuralab.learn as L


def _features(key, n, d=3):
    return jax.random.normal(key, (n, d))


def _numpy_pair_mlp(c, x, norm):
    """The reference's MLP on explicit pairs [x_i, x_j] (n^2 rows), in float64."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    pairs = np.concatenate(
        [np.repeat(x, n, axis=0), np.tile(x, (n, 1))], axis=1
    )  # row i*n + j = [x_i, x_j]
    h = pairs
    for k, (W, b) in enumerate(zip(c.weights, c.biases, strict=True)):
        z = h @ np.asarray(W, np.float64).T + np.asarray(b, np.float64)
        if norm == "batch":
            z = (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)
        elif norm == "layer":
            z = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + 1e-5)
        if norm != "none":
            z = z * np.asarray(c.norm_scales[k]) + np.asarray(c.norm_shifts[k])
        h = np.where(z > 0, z, 0.01 * z)
    return (h @ np.asarray(c.out_weight, np.float64)).reshape(n, n)


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_logits_match_explicit_pairs_and_chunking(getkey, norm):
    key = getkey()
    shifts = tuple(
        0.1 * jax.random.normal(k, (h,)) for k, h in zip(jax.random.split(getkey(), 3), (16, 8, 8), strict=True)
    )  # non-trivial affine parameters, so their use is checked too

    def build(chunk):
        c = L.PairwiseMLPCoupling(3, hidden=(16, 8, 8), hidden_norm=norm, chunk_size=chunk, key=key)
        return eqx.tree_at(lambda m: m.norm_shifts, c, shifts)

    c = build(None)
    x = _features(getkey(), 23)
    ref = _numpy_pair_mlp(c, x, norm)
    got = np.asarray(c.logits(x))
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4)
    chunked = build(5)  # 23 = 4 * 5 + 3: a padded block
    np.testing.assert_allclose(np.asarray(chunked.logits(x)), got, rtol=1e-5, atol=1e-5)


def test_normalisations(getkey):
    x = _features(getkey(), 30)
    key = getkey()
    K = L.PairwiseMLPCoupling(3, mean_degree=2.5, key=key).matrix(x)
    assert np.all(np.asarray(K) > 0)
    np.testing.assert_allclose(float(jnp.sum(K)) / 30, 2.5, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(K), np.asarray(K).T)
    G = L.PairwiseMLPCoupling(3, normalize="graph", symmetric=False, key=key).matrix(x)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(G), axis=1), 1.0, rtol=1e-5)
    assert np.any(np.asarray(G) < 0) and np.any(np.asarray(G) > 0)  # signs kept
    c = L.PairwiseMLPCoupling(3, normalize="none", symmetric=False, key=key)
    np.testing.assert_array_equal(np.asarray(c.matrix(x)), np.asarray(c.logits(x)))
    assert not np.allclose(np.asarray(c.matrix(x)), np.asarray(c.matrix(x)).T)


def test_large_network_memory_is_chunked(getkey):
    """n = 10,000: the compiled K computation's temporaries stay near the size of K
    itself (400 MB), far below one unchunked pair tensor (n^2 * hidden floats)."""
    n, hidden = 10_000, (32, 32)
    c = L.PairwiseMLPCoupling(3, hidden=hidden, key=getkey())
    x = jax.ShapeDtypeStruct((n, 3), jnp.float32)
    compiled = jax.jit(lambda m, f: m.matrix(f)).lower(c, x).compile()
    mem = compiled.memory_analysis()
    if mem is None:
        pytest.skip("this backend reports no memory analysis")
    one_pair_tensor = n * n * hidden[0] * 4
    assert mem.temp_size_in_bytes < one_pair_tensor / 4, mem.temp_size_in_bytes


def _numpy_kuranet(K, omega, field, delay, dt, burn_in, window, theta0):
    """Euler steps of the full KuraNet model; returns the window's phases."""
    n = K.shape[0]
    steps = burn_in + window
    tau = np.zeros(n, int) if delay is None else np.clip(np.asarray(delay), 0, 40)
    h = np.zeros(n) if field is None else np.asarray(field, np.float64)

    def f(th, th_del):
        coup = np.sum(K * np.sin(th_del[None, :] - th[:, None]), axis=1)
        return omega + coup + h * np.sin(th)

    W = int(tau.max()) + 1 if delay is not None else 0
    hist = []  # states at grid indices -W .. -1, then 0, 1, ...
    th = np.asarray(theta0, np.float64).copy()
    for _ in range(W):  # the reference's delay-free warm-up (negative time)
        hist.append(th.copy())
        th = th + dt * f(th, th)
    out = []
    for k in range(steps):
        hist.append(th.copy())
        idx = W + k - tau  # grid index k - tau_j, stored at W + k - tau_j
        th_del = np.asarray(hist)[idx, np.arange(n)]
        th = th + dt * f(th, th_del)
        if k >= burn_in:
            out.append(th.copy())
    return np.asarray(out)


def _numpy_cluster(theta, labels):
    """KuraNet eqs. 5-6 with the reference's bound, non-empty groups only."""
    groups = [g for g in np.unique(labels)]
    k = len(groups)
    z = np.stack([np.exp(1j * theta[:, labels == g]).mean(1) for g in groups], 1)
    synch = 1 - np.abs(z).mean(1)
    psi = np.angle(z)
    S = sum(np.abs(np.exp(1j * g * psi).sum(1)) ** 2 / (2 * g * g * k) for g in range(1, k // 2 + 1))
    B = 1 + k / 2 * sum(1 / g**2 for g in range(1, k // 2 + 1))
    return (synch + S) / B


def test_losses_match_hand_computation(getkey, x64):
    """All three objectives on one network with frequencies, a field and step delays
    (the reference's scheme, including its delay-free warm-up), against NumPy."""
    n = 12
    d = {
        "omega": L.data.kuranet_disorder(getkey(), n, "III")["omega"],
        "field": L.data.kuranet_disorder(getkey(), n, "II")["field"],
        "delay": L.data.kuranet_disorder(getkey(), n, "III")["delay"] // 3,
    }
    c = L.PairwiseMLPCoupling(3, hidden=(8, 8), key=getkey())
    K = np.asarray(c.matrix(L.node_features(d)), np.float64)
    burn_in, window, dt = 30, 10, 0.1
    th = _numpy_kuranet(K, np.asarray(d["omega"]), d["field"], d["delay"], dt, burn_in,
                        window, np.zeros(n))
    assert int(np.max(d["delay"])) > 1
    R = np.abs(np.exp(1j * th).mean(1))
    kw = dict(burn_in=burn_in, window=window, dt=dt)
    got = float(L.kuranet_loss(c, d, **kw))
    np.testing.assert_allclose(got, np.mean(1 - R), rtol=1e-9)
    got2 = float(L.kuranet_loss(c, d, objective="one_minus_r2", **kw))
    np.testing.assert_allclose(got2, np.mean(1 - R**2), rtol=1e-9)
    labels = np.array([0, 0, 0, 1, 1, 1, 3, 3, 3, 3, 0, 1])  # group 2 is empty
    got3 = float(L.kuranet_loss(c, d, objective="cluster", labels=labels, num_clusters=4, **kw))
    np.testing.assert_allclose(got3, np.mean(_numpy_cluster(th, labels)), rtol=1e-9)
    assert not np.isclose(got, got2) and not np.isclose(got, got3)


def _small_problem(getkey, n=6):
    d = L.data.kuranet_disorder(getkey(), n, "II")
    d = {k: None if v is None else jnp.asarray(v, jnp.float64) for k, v in d.items()}
    c = L.PairwiseMLPCoupling(3, hidden=(8, 8), key=getkey())
    c = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64) if eqx.is_inexact_array(a) else a, c)
    return c, d


def _fd_check(loss, c, key, eps=1e-6):
    params, static = eqx.partition(c, eqx.is_inexact_array)
    # one compilation serves the gradient and the three loss values
    vg = jax.jit(jax.value_and_grad(lambda p: loss(eqx.combine(p, static))))
    _, g = vg(params)
    v = jax.tree_util.tree_map(lambda a, k: jax.random.normal(k, a.shape, a.dtype), params,
                               _keys_like(params, key))
    directional = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(g),
                                                      jax.tree_util.tree_leaves(v), strict=True))
    plus, _ = vg(jax.tree_util.tree_map(lambda a, b: a + eps * b, params, v))
    minus, _ = vg(jax.tree_util.tree_map(lambda a, b: a - eps * b, params, v))
    fd = (plus - minus) / (2 * eps)
    assert abs(float(directional)) > 1e-6  # the check is not vacuous
    np.testing.assert_allclose(float(directional), float(fd), rtol=1e-5)


def _keys_like(tree, key):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return jax.tree_util.tree_unflatten(treedef, list(jax.random.split(key, len(leaves))))


def test_gradient_matches_finite_differences(getkey, x64):
    """burn_in = 0: the gradient is the full derivative of the loss (x64)."""
    c, d = _small_problem(getkey)
    labels = jnp.array([0, 1, 2, 0, 1, 2])

    def loss(m):
        return L.kuranet_loss(m, d, burn_in=0, window=8, objective="cluster",
                              labels=labels, num_clusters=3, init="normal", key=jax.random.key(3))

    _fd_check(loss, c, getkey())


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["circular_variance", "one_minus_r2"])
@pytest.mark.parametrize("normalize,norm", [("node", "batch"), ("graph", "layer"), ("none", "none")])
def test_gradient_matches_finite_differences_all(getkey, x64, objective, normalize, norm):
    c, d = _small_problem(getkey)
    c = L.PairwiseMLPCoupling(3, hidden=(8, 8), normalize=normalize, hidden_norm=norm, key=getkey())
    c = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64) if eqx.is_inexact_array(a) else a, c)

    def loss(m):
        return L.kuranet_loss(m, d, burn_in=0, window=10, objective=objective, strength=0.5)

    _fd_check(loss, c, getkey())


@pytest.mark.slow
def test_burn_in_truncates_the_gradient(getkey, x64):
    """With a burn-in, the gradient is that of the window alone, started from the
    burn-in's end state held constant (truncated backpropagation)."""
    c, d = _small_problem(getkey)
    burn_in, window, dt = 7, 5, 0.1
    params, static = eqx.partition(c, eqx.is_inexact_array)

    def two_calls(p):
        m = eqx.combine(p, static)
        model = L.kuranet_model(m, d)
        head = kl.simulate(model, jnp.zeros(6), t1=burn_in * dt, dt=dt, solver="euler",
                           saveat=kl.SaveAt(final=True))
        y = jax.lax.stop_gradient(head.final)
        tail = kl.simulate(model, y, t0=burn_in * dt, t1=(burn_in + window) * dt, dt=dt,
                           solver="euler", saveat=kl.SaveAt(every=1))
        R = jnp.abs(kl.order_parameter(tail.ys[1:]))
        return jnp.mean(1 - R)

    def ours(p):
        return L.kuranet_loss(eqx.combine(p, static), d, burn_in=burn_in, window=window, dt=dt)

    v1, g1 = jax.jit(jax.value_and_grad(ours))(params)
    v2, g2 = jax.jit(jax.value_and_grad(two_calls))(params)
    np.testing.assert_allclose(float(v1), float(v2), rtol=1e-12)
    g1, g2 = jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)
    assert max(float(jnp.max(jnp.abs(a))) for a in g1) > 1e-6
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-14)


def test_feature_correlation_hand_values():
    x = np.array([[1.0], [-1.0], [2.0], [-2.0]])
    # couple only like-signed pairs: positive correlation
    K = np.zeros((4, 4))
    K[0, 2] = K[2, 0] = K[1, 3] = K[3, 1] = 1.0
    xc = x[:, 0] - x.mean()
    expect = np.sum(K * np.outer(xc, xc)) / np.sum(K * (xc**2)[:, None])
    assert float(L.feature_correlation(K, x)) == pytest.approx(expect)
    assert expect > 0.7
    K2 = np.zeros((4, 4))
    K2[0, 1] = K2[1, 0] = K2[2, 3] = K2[3, 2] = 1.0  # opposite signs only
    assert float(L.feature_correlation(K2, x[:, 0])) == pytest.approx(-1.0)


def test_bad_input_messages(getkey):
    c = L.PairwiseMLPCoupling(3, hidden=(4,), key=getkey())
    d = L.data.kuranet_disorder(getkey(), 8, "I")
    with pytest.raises(ValueError, match=r"`features` must have shape \(n, 3\).*\(8, 2\)"):
        c.matrix(jnp.zeros((8, 2)))
    with pytest.raises(ValueError, match=r"`objective` must be one of .*did you mean 'cluster'"):
        L.kuranet_loss(c, d, objective="clusters")
    with pytest.raises(ValueError, match=r"`labels` must be integer group labels of shape \(8,\).*\(7,\)"):
        L.kuranet_loss(c, d, objective="cluster", labels=jnp.zeros(7, jnp.int32))
    with pytest.raises(ValueError, match=r"`labels` are required"):
        L.kuranet_loss(c, d, objective="cluster")
    with pytest.raises(ValueError, match=r"`features` must have one row per node"):
        L.kuranet_model(c, d, features=jnp.zeros((9, 3)))
    with pytest.raises(ValueError, match=r"`disorder\['field'\]` must have shape \(8,\)"):
        L.kuranet_model(c, {**d, "field": jnp.zeros(5)})
    with pytest.raises(ValueError, match=r"`normalize` must be one of"):
        L.PairwiseMLPCoupling(3, normalize="row", key=getkey())
    with pytest.raises(ValueError, match=r"`case` must be one of"):
        L.data.kuranet_disorder(getkey(), 8, "IV")
    for bad in (0.0, -1.0, "torch", True):
        with pytest.raises(ValueError, match=r"`gain` must be a number > 0 .* or None"):
            L.PairwiseMLPCoupling(3, gain=bad, key=getkey())


def test_initialisations(getkey):
    """Xavier-normal (std = gain sqrt(2 / (fan_in + fan_out)), zero biases) and, with
    gain=None, torch.nn.Linear's default: weights and biases U(+-1/sqrt(fan_in)),
    hence std 1/sqrt(3 fan_in). Widths large enough for 3 % on each std."""
    hidden = (256, 256)
    x = L.PairwiseMLPCoupling(3, hidden=hidden, gain=0.5, key=getkey())
    for W, fan_in in zip(x.weights, (6, 256), strict=True):
        np.testing.assert_allclose(float(jnp.std(W)), 0.5 * np.sqrt(2 / (fan_in + 256)), rtol=0.03)
    assert all(float(jnp.max(jnp.abs(b))) == 0.0 for b in x.biases)
    t = L.PairwiseMLPCoupling(3, hidden=hidden, gain=None, key=getkey())
    for W, b, fan_in in zip(t.weights, t.biases, (6, 256), strict=True):
        bound = 1 / np.sqrt(fan_in)
        assert float(jnp.max(jnp.abs(W))) <= bound and float(jnp.max(jnp.abs(b))) <= bound
        np.testing.assert_allclose(float(jnp.std(W)), bound / np.sqrt(3), rtol=0.03)
        assert float(jnp.std(b)) > 0.4 * bound  # not zero: torch draws the biases too
    w = t.out_weight
    assert w.shape == (256,) and float(jnp.max(jnp.abs(w))) <= 1 / 16
    np.testing.assert_allclose(float(jnp.std(w)), 1 / 16 / np.sqrt(3), rtol=0.15)


def test_public_names():
    assert kl.learn.PairwiseMLPCoupling is L.PairwiseMLPCoupling
    assert kl.PairwiseMLPCoupling is L.PairwiseMLPCoupling
    assert "learn" in dir(kl)
    assert math.isclose(float(jnp.sum(L.node_features({"omega": jnp.ones(3)}))), 3.0)


def test_untrained_unnormalised_mlp_is_nearly_uniform(getkey):
    """Why the paper's control equals uniform coupling (studies/kuranet_global.py,
    `control_eval`): torch's initialisation without BatchNorm (what an untrained
    BatchNorm1d computes in eval mode, running statistics 0 and 1) gives logits that
    vary little over case-I features, so the node softmax is nearly flat (measured
    coefficient of variation 0.006-0.035), while the same weights normalised over the
    pairs spread K by ~0.2."""
    d = L.data.kuranet_disorder(getkey(), 100, "I")
    x = L.node_features(d)
    bn = L.PairwiseMLPCoupling(3, gain=None, key=getkey())
    plain = L.PairwiseMLPCoupling(3, gain=None, hidden_norm="none", key=getkey())
    plain = eqx.tree_at(lambda m: (m.weights, m.biases, m.out_weight), plain,
                        (bn.weights, bn.biases, bn.out_weight))
    cv = lambda K: float(jnp.std(K) / jnp.mean(K))  # noqa: E731
    assert cv(plain.matrix(x)) < 0.1 < cv(bn.matrix(x))
