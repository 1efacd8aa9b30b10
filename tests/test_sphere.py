"""Vector oscillators on spheres (AKOrN): drift, reductions, invariants, AKOrN step,
couplings and input validation.

Compilation dominates the cost of these tests, so property tests keep shapes and model
structure fixed and draw values only (one compiled solve serves every example).
"""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from hypothesis import HealthCheck, given, settings, strategies as st

import kuralab as kl
from kuralab._akorn_step import AKOrNStep, reference_gamma
from kuralab._coupling import (
    AttentionCoupling,
    BlockCoupling,
    LatticeBlockCoupling,
    coupling_blocks,
)
from kuralab._models.sphere import (
    BlockOmega,
    SkewOmega,
    SphereKuramoto,
    random_sphere,
)
from kuralab.testing import assert_phase_allclose, check_model_contract

PROPERTY = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _rng(seed):
    return np.random.default_rng(seed)


def _skew(rng, *shape):
    a = rng.standard_normal(shape)
    return a - np.swapaxes(a, -1, -2)


def _unit(rng, n, d):
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=-1, keepdims=True)


def _rot(a):
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


# ---------------------------------------------------------------------------------
# Drift
# ---------------------------------------------------------------------------------


def test_drift_matches_blockwise_definition(x64):
    rng = _rng(0)
    n, d = 5, 3
    blocks = rng.standard_normal((n, n, d, d))
    omega = _skew(rng, n, d, d)
    c = rng.standard_normal((n, d))
    x = _unit(rng, n, d)
    model = SphereKuramoto(omega, BlockCoupling(blocks), c)
    expected = np.empty((n, d))
    for i in range(n):
        y = c[i] + sum(blocks[i, j] @ x[j] for j in range(n))
        expected[i] = omega[i] @ x[i] + y - (y @ x[i]) * x[i]
    np.testing.assert_allclose(model.drift(0.0, jnp.asarray(x)), expected, atol=1e-12)
    # The drift is tangent: <x_i, dx_i/dt> = 0.
    np.testing.assert_allclose(np.sum(expected * x, axis=-1), 0.0, atol=1e-12)


def test_scalar_couplings_act_as_identity_blocks(x64):
    rng = _rng(1)
    n, d = 6, 4
    K = rng.standard_normal((n, n))
    x = jnp.asarray(_unit(rng, n, d))
    dense = SphereKuramoto(None, kl.DenseCoupling(K), dim=d)
    blocks = SphereKuramoto(None, BlockCoupling(np.einsum("ij,ab->ijab", K, np.eye(d))))
    np.testing.assert_allclose(dense.drift(0.0, x), blocks.drift(0.0, x), atol=1e-12)
    mf = SphereKuramoto(None, kl.MeanField(2.0), n_osc=n, dim=d)
    dense_mf = SphereKuramoto(None, kl.DenseCoupling(np.full((n, n), 2.0 / n)), dim=d)
    np.testing.assert_allclose(mf.drift(0.0, x), dense_mf.drift(0.0, x), atol=1e-12)


def test_contract_scalar_coupling_omega_stimulus():
    rng = _rng(2)
    n, d = 5, 4
    model = SphereKuramoto(
        BlockOmega(rng.standard_normal((n, 2)).astype(np.float32)),
        kl.DenseCoupling(rng.standard_normal((n, n)).astype(np.float32)),
        rng.standard_normal((n, d)).astype(np.float32),
    )
    # Euler compiles fastest; the slow variants below use the default rk4.
    check_model_contract(
        model, random_sphere(jax.random.key(0), n, dim=d), solver="euler"
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["blocks", "lattice_blocks", "attention"])
def test_contract_vector_couplings(kind):
    rng = _rng(3)
    d = 3
    if kind == "blocks":
        n = 4
        coupling = BlockCoupling(rng.standard_normal((n, n, d, d)).astype(np.float32))
    elif kind == "lattice_blocks":
        n = 9
        kernel = rng.standard_normal((3, 3, d, d)).astype(np.float32)
        coupling = LatticeBlockCoupling(kernel, (3, 3))
    else:
        n = 4
        coupling = AttentionCoupling.init(jax.random.key(1), d, heads=2)
    model = SphereKuramoto(
        SkewOmega(_skew(rng, d, d).astype(np.float32)),
        coupling,
        rng.standard_normal((n, d)).astype(np.float32),
    )
    check_model_contract(model, random_sphere(jax.random.key(0), n, dim=d))


# ---------------------------------------------------------------------------------
# Invariants (hypothesis)
# ---------------------------------------------------------------------------------


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 5.0))
def test_norms_stay_one(seed, scale):
    # Strong, asymmetric, component-mixing coupling and large steps: the retraction
    # keeps every vector on the sphere to float32 rounding, for rk4 and the AKOrN step.
    rng = _rng(seed)
    n, d = 5, 3
    model = SphereKuramoto(
        SkewOmega((scale * _skew(rng, n, d, d)).astype(np.float32)),
        BlockCoupling((scale * rng.standard_normal((n, n, d, d))).astype(np.float32)),
        (scale * rng.standard_normal((n, d))).astype(np.float32),
    )
    x0 = jnp.asarray(_unit(rng, n, d), jnp.float32)
    for solver in ("rk4", AKOrNStep()):
        tr = kl.simulate(model, x0, t1=2.0, dt=0.1, solver=solver)
        assert tr.ys.dtype == jnp.float32
        norms = np.linalg.norm(np.asarray(tr.ys, np.float64), axis=-1)
        assert np.max(np.abs(norms - 1)) < 1e-6


def _equivariance_model(rng, n, stimulus_scale):
    K = rng.standard_normal((n, n)).astype(np.float32)
    c = (stimulus_scale * rng.standard_normal((n, 4))).astype(np.float32)
    # Distinct rates: the orthogonal maps commuting with Omega are the plane rotations.
    return SphereKuramoto(BlockOmega(jnp.array([1.3, 0.4])), kl.DenseCoupling(K), c)


@PROPERTY
@given(
    seed=st.integers(0, 2**31 - 1),
    a=st.floats(-np.pi, np.pi),
    b=st.floats(-np.pi, np.pi),
)
def test_rotation_equivariance_when_commuting_with_omega(seed, a, b):
    # R orthogonal with R Omega = Omega R, c = 0: x0 -> R x0 maps x(t) -> R x(t).
    rng = _rng(seed)
    n = 6
    model = _equivariance_model(rng, n, 0.0)
    R = scipy.linalg.block_diag(_rot(a), _rot(b)).astype(np.float32)
    omega = np.asarray(model.omega.matrix())
    np.testing.assert_allclose(R @ omega, omega @ R, atol=1e-6)
    x0 = jnp.asarray(_unit(rng, n, 4), jnp.float32)
    run = lambda y: kl.simulate(model, y, t1=2.0, dt=0.05).ys  # noqa: E731
    np.testing.assert_allclose(run(x0 @ R.T), run(x0) @ R.T, atol=2e-5)


def test_rotation_equivariance_breaks_with_stimulus():
    # The same check fails once c != 0 (the stimulus is not rotated).
    rng = _rng(5)
    n = 6
    model = _equivariance_model(rng, n, 1.0)
    R = scipy.linalg.block_diag(_rot(1.0), _rot(-2.0)).astype(np.float32)
    x0 = jnp.asarray(_unit(rng, n, 4), jnp.float32)
    run = lambda y: kl.simulate(model, y, t1=2.0, dt=0.05).ys  # noqa: E731
    assert np.max(np.abs(run(x0 @ R.T) - run(x0) @ R.T)) > 1e-2


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1))
def test_any_orthogonal_map_is_a_symmetry_without_omega(seed):
    rng = _rng(seed)
    n, d = 6, 3
    model = SphereKuramoto(None, kl.DenseCoupling(rng.standard_normal((n, n))), dim=d)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))  # orthogonal, possibly det -1
    Q = Q.astype(np.float32)
    x0 = jnp.asarray(_unit(rng, n, d), jnp.float32)
    run = lambda y: kl.simulate(model, y, t1=2.0, dt=0.05).ys  # noqa: E731
    np.testing.assert_allclose(run(x0 @ Q.T), run(x0) @ Q.T, atol=2e-5)


def test_free_oscillators_rotate_at_their_omega(x64):
    # J = 0, c = 0: x_i(t) = expm(Omega_i t) x_i(0) exactly; rk4 at dt = 0.01 with
    # |Omega| ~ 4 has a global error ~ (|Omega| dt)^4 |Omega| t / 100 ~ 1e-8.
    rng = _rng(6)
    n, d = 4, 5
    omega = _skew(rng, n, d, d)
    model = SphereKuramoto(omega, None)
    x0 = _unit(rng, n, d)
    tr = kl.simulate(
        model, jnp.asarray(x0), t1=3.0, dt=0.01, saveat=kl.SaveAt(every=50)
    )
    for t, x in zip(np.asarray(tr.ts), np.asarray(tr.ys), strict=True):
        exact = np.stack([scipy.linalg.expm(omega[i] * t) @ x0[i] for i in range(n)])
        np.testing.assert_allclose(x, exact, atol=1e-7)


# ---------------------------------------------------------------------------------
# N = 2 reduction to the phase model
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("general", [False, True])
def test_two_dim_reduces_to_kuramoto(x64, general):
    # dim = 2, x = (cos theta, sin theta), J_ij = K_ij I. The case is Omega = 0,
    # c = 0 (general=False); the general case adds omega_i (BlockOmega) and a forcing
    # c_i = h_i (cos psi_i, sin psi_i) <-> kl.Forcing(h, psi). Same model structure.
    rng = _rng(7)
    n = 7
    K = rng.standard_normal((n, n)) / n
    omega = rng.standard_normal(n) if general else np.zeros(n)
    h = rng.uniform(0, 1, n) if general else np.zeros(n)
    psi = rng.uniform(-np.pi, np.pi, n)
    theta0 = rng.uniform(-np.pi, np.pi, n)
    c = h[:, None] * np.stack([np.cos(psi), np.sin(psi)], -1)
    sphere = SphereKuramoto(BlockOmega(omega[:, None]), kl.DenseCoupling(K), c)
    phase = kl.Kuramoto(omega, kl.DenseCoupling(K), forcing=kl.Forcing(h, psi))
    x0 = np.stack([np.cos(theta0), np.sin(theta0)], -1)
    kw = dict(t1=10.0, dt=0.01, saveat=kl.SaveAt(every=100))
    xs = np.asarray(kl.simulate(sphere, jnp.asarray(x0), **kw).ys)
    thetas = np.asarray(kl.simulate(phase, jnp.asarray(theta0), **kw).ys)
    # Both are rk4 solutions of the same ODE in different coordinates: they agree to the
    # solvers' global error, O(dt^4) ~ 1e-8 here.
    assert_phase_allclose(np.arctan2(xs[..., 1], xs[..., 0]), thetas, atol=1e-7)


# ---------------------------------------------------------------------------------
# The AKOrN discrete step
# ---------------------------------------------------------------------------------


def _reference_akorn(x, omega, J, c, gamma, steps, identity_omega=False):
    """AKOrN klayer.py's update, written out in numpy (float64)."""
    out = [x]
    for _ in range(steps):
        y = np.einsum("ijab,jb->ia", J, x) + c
        proj = y - np.sum(y * x, -1, keepdims=True) * x
        rot = x if identity_omega else np.einsum("ab,ib->ia", omega, x)
        x = x + gamma * (rot + proj)
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
        out.append(x)
    return np.stack(out)


def test_akorn_step_matches_reference_update(x64):
    rng = _rng(8)
    n, d, gamma, T = 6, 4, 0.5, 8
    J = rng.standard_normal((n, n, d, d)) / n
    omega = _skew(rng, d, d)
    c = rng.standard_normal((n, d))
    x0 = _unit(rng, n, d)
    model = SphereKuramoto(omega, BlockCoupling(J), c)
    tr = kl.simulate(model, jnp.asarray(x0), t1=T * gamma, dt=gamma, solver=AKOrNStep())
    np.testing.assert_allclose(
        tr.ys, _reference_akorn(x0, omega, J, c, gamma, T), atol=1e-12
    )
    assert tr.solver in ("AKOrNStep", "akorn")  # "akorn" once registered by name
    # The same as Euler followed by kuralab's sphere retraction.
    euler = kl.simulate(model, jnp.asarray(x0), t1=T * gamma, dt=gamma, solver="euler")
    np.testing.assert_allclose(tr.ys, euler.ys, atol=1e-13)
    # The reference with use_omega=False replaces Omega x by x: that is the Omega-free
    # step with gamma / (1 + gamma).
    ref = _reference_akorn(x0, omega, J, c, gamma, T, identity_omega=True)
    g2 = reference_gamma(gamma, use_omega=False)
    assert g2 == pytest.approx(gamma / (1 + gamma))
    no_omega = SphereKuramoto(np.zeros((d, d)), BlockCoupling(J), c)
    tr2 = kl.simulate(no_omega, jnp.asarray(x0), t1=T * g2, dt=g2, solver=AKOrNStep())
    np.testing.assert_allclose(tr2.ys, ref, atol=1e-12)
    assert reference_gamma(gamma) == gamma


def test_akorn_step_rejects_phase_models():
    model = kl.Kuramoto(jnp.zeros(3), kl.MeanField(1.0))
    with pytest.raises(ValueError, match="AKOrNStep"):
        kl.simulate(model, jnp.zeros(3), t1=1.0, dt=0.1, solver=AKOrNStep())
    with pytest.raises(ValueError, match="gamma"):
        reference_gamma(0.0)


# ---------------------------------------------------------------------------------
# Couplings and Omega parameterisations
# ---------------------------------------------------------------------------------


def test_lattice_block_coupling_matches_explicit_blocks(x64):
    rng = _rng(10)
    d, shape = 2, (4, 5)
    kernel = rng.standard_normal((3, 3, d, d))
    for boundary in ("periodic", "open"):
        lat = LatticeBlockCoupling(kernel, shape, boundary=boundary)
        blocks = np.zeros((20, 20, d, d))
        for r in range(4):
            for col in range(5):
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        rr, cc = r + dr, col + dc
                        if boundary == "open" and not (0 <= rr < 4 and 0 <= cc < 5):
                            continue
                        j = (rr % 4) * 5 + cc % 5
                        blocks[r * 5 + col, j] += kernel[1 + dr, 1 + dc]
        x = rng.standard_normal((20, d))
        np.testing.assert_allclose(
            lat.apply(jnp.asarray(x)), np.einsum("ijab,jb->ia", blocks, x), atol=1e-12
        )
        np.testing.assert_allclose(
            coupling_blocks(lat, 20, d, dtype=jnp.float64), blocks, atol=1e-12
        )
    # W_{-d} = W_d^T  <=>  block-symmetric.
    sym = 0.5 * (kernel + np.swapaxes(kernel[::-1, ::-1], -1, -2))
    assert LatticeBlockCoupling(sym, shape).symmetric
    assert not LatticeBlockCoupling(kernel, shape).symmetric
    # A scalar kernel times I is kl.LatticeCoupling.
    k = rng.standard_normal((3, 3))
    x = jnp.asarray(rng.standard_normal((20, 3)))
    np.testing.assert_allclose(
        LatticeBlockCoupling(np.einsum("uv,ab->uvab", k, np.eye(3)), shape).apply(x),
        kl.LatticeCoupling(k, shape).apply(x),
        atol=1e-12,
    )


def test_block_coupling_tags_and_blocks(x64):
    rng = _rng(11)
    B = rng.standard_normal((4, 4, 3, 3))
    sym = B + np.transpose(B, (1, 0, 3, 2))
    assert BlockCoupling(sym).symmetric
    assert not BlockCoupling(B).symmetric
    with pytest.raises(ValueError, match="symmetric"):
        BlockCoupling(B, tags=kl.symmetric_tag)
    np.testing.assert_array_equal(
        coupling_blocks(BlockCoupling(B), 4, 3, dtype=jnp.float64), B
    )
    K = rng.standard_normal((4, 4))
    np.testing.assert_array_equal(
        coupling_blocks(kl.DenseCoupling(K), 4, 3, dtype=jnp.float64),
        np.einsum("ij,ab->ijab", K, np.eye(3)),
    )


def test_attention_coupling(x64):
    rng = _rng(12)
    n, d = 6, 4
    att = AttentionCoupling.init(
        jax.random.key(0), d, heads=3, head_dim=2, dtype=jnp.float64
    )
    x = jnp.asarray(_unit(rng, n, d))
    a = np.asarray(att.weights(x))
    assert a.shape == (3, n, n)
    np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-12)
    # Independent reference: per head softmax(q k^T / sqrt(dh)) v, then W_O.
    xs = np.asarray(x)
    out = np.zeros((n, d))
    for h in range(3):
        q, k, v = (xs @ np.asarray(w[h]) for w in (att.wq, att.wk, att.wv))
        logits = q @ k.T / np.sqrt(2)
        w = np.exp(logits - logits.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        out += (w @ v) @ np.asarray(att.wo[h])
    np.testing.assert_allclose(att.apply(x), out, atol=1e-12)
    np.testing.assert_allclose(
        np.einsum("ijab,jb->ia", att.blocks(x), xs), out, atol=1e-12
    )
    # Permutation equivariance (no mask): J(P x) = P J(x).
    perm = rng.permutation(n)
    np.testing.assert_allclose(att.apply(x[perm]), out[perm], atol=1e-12)
    # A mask forbids attention: weights vanish off the mask.
    mask = np.eye(n, dtype=bool) | np.roll(np.eye(n, dtype=bool), 1, axis=1)
    masked = AttentionCoupling(att.wq, att.wk, att.wv, att.wo, mask=mask)
    np.testing.assert_array_equal(np.asarray(masked.weights(x))[:, ~mask], 0.0)
    with pytest.raises(ValueError, match="mask"):
        AttentionCoupling(att.wq, att.wk, att.wv, att.wo, mask=np.zeros((n, n), bool))
    with pytest.raises(ValueError, match="wo"):
        AttentionCoupling(att.wq, att.wk, att.wv, att.wq)
    assert not att.linear and not att.symmetric


def test_omega_parameterisations():
    rng = _rng(13)
    g = rng.standard_normal((3, 5, 5))
    skew = SkewOmega(g, antisymmetrise=True).matrix()
    np.testing.assert_allclose(skew, -np.swapaxes(skew, -1, -2), atol=0)
    np.testing.assert_allclose(skew, 0.5 * (g - np.swapaxes(g, -1, -2)), atol=1e-6)
    a = _skew(rng, 4, 4).astype(np.float32)
    np.testing.assert_array_equal(SkewOmega(a).matrix(), a)  # exact for skew input
    m = np.asarray(BlockOmega(np.array([2.0, -1.0]), dim=5).matrix())
    expected = np.zeros((5, 5))
    expected[1, 0], expected[0, 1] = 2.0, -2.0
    expected[3, 2], expected[2, 3] = -1.0, 1.0
    np.testing.assert_array_equal(m, expected)
    assert BlockOmega(np.ones((7, 2))).n_osc == 7 and BlockOmega(np.ones(2)).shared
    # Gradients flow to the parameters and the matrix stays antisymmetric.
    grad = jax.grad(lambda r: jnp.sum(BlockOmega(r).matrix() ** 2))(
        jnp.array([1.0, 2.0])
    )
    np.testing.assert_allclose(grad, [4.0, 8.0])


def test_random_sphere(getkey):
    x = random_sphere(getkey(), (3, 4), dim=5)
    assert x.shape == (3, 4, 5) and x.dtype == jnp.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, rtol=1e-6)
    big = np.asarray(random_sphere(getkey(), 20000, dim=3), np.float64)
    assert np.max(np.abs(big.mean(0))) < 0.03  # uniform: mean 0
    np.testing.assert_allclose(np.cov(big.T), np.eye(3) / 3, atol=0.01)  # isotropic
    with pytest.raises(ValueError, match="dim"):
        random_sphere(getkey(), 3, dim=0)


# ---------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------


def test_bad_inputs_raise_naming_the_argument():
    n, d = 3, 2
    K = kl.DenseCoupling(np.ones((n, n)))
    with pytest.raises(ValueError, match="`omega` must be antisymmetric"):
        SphereKuramoto(np.ones((d, d)), K)
    with pytest.raises(ValueError, match="`omega` must have shape"):
        SphereKuramoto(np.zeros((2, 3)), K)
    with pytest.raises(ValueError, match="`omega` must be finite"):
        SphereKuramoto(np.array([[0.0, np.nan], [-np.nan, 0.0]]), K)
    with pytest.raises(ValueError, match="`stimulus` must be finite"):
        SphereKuramoto(None, K, np.full((n, d), np.inf))
    with pytest.raises(ValueError, match="`stimulus` must have shape"):
        SphereKuramoto(None, K, np.zeros((1, n, d)))
    with pytest.raises(ValueError, match="disagree on the number of oscillators"):
        SphereKuramoto(None, K, np.zeros((n + 1, d)))
    with pytest.raises(ValueError, match="disagree on the dimension"):
        SphereKuramoto(np.zeros((3, 3)), BlockCoupling(np.zeros((n, n, d, d))))
    with pytest.raises(ValueError, match="cannot tell the dimension"):
        SphereKuramoto(None, K)
    with pytest.raises(TypeError, match="`coupling`"):
        SphereKuramoto(None, np.ones((n, n)), dim=d)
    with pytest.raises(TypeError, match="`omega`"):
        SphereKuramoto(K, K, dim=d)
    with pytest.raises(ValueError, match="`blocks` must have shape"):
        BlockCoupling(np.zeros((n, n, d)))
    with pytest.raises(ValueError, match="`blocks` must be finite"):
        BlockCoupling(np.full((n, n, d, d), np.nan))
    with pytest.raises(ValueError, match="odd"):
        LatticeBlockCoupling(np.zeros((2, 2, d, d)), (4, 4))
    with pytest.raises(ValueError, match="`rates`"):
        BlockOmega(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="`dim`"):
        BlockOmega(np.zeros(2), dim=6)
    model = SphereKuramoto(None, K, dim=d)
    with pytest.raises(ValueError, match="state shape"):
        kl.simulate(model, jnp.ones((n, d + 1)), t1=1.0, dt=0.1)


def test_vmap_over_stimulus_is_the_batch():
    # One system per model: a batch of stimuli is a vmap over the model.
    n, d = 4, 2
    x0 = random_sphere(jax.random.key(0), n, dim=d)
    cs = jnp.stack([jnp.zeros((n, d)), jnp.ones((n, d))])

    def final(c):
        model = SphereKuramoto(None, kl.MeanField(1.0), c)
        return kl.simulate(
            model, x0, t1=1.0, dt=0.1, saveat=kl.SaveAt(final=True)
        ).final

    batched = jax.vmap(final)(cs)
    np.testing.assert_allclose(batched[1], final(cs[1]), atol=1e-6)
    np.testing.assert_allclose(batched[0], final(cs[0]), atol=1e-6)
    model = SphereKuramoto(None, kl.MeanField(1.0), cs[1])
    ds = kl.simulate(
        model, x0, t1=1.0, dt=0.1, saveat=kl.SaveAt(final=True)
    ).to_dataset()
    assert ds["x"].dims == ("time", "osc", "dim")


@pytest.mark.slow
def test_adaptive_solver_keeps_sphere(x64):
    rng = _rng(14)
    n, d = 4, 3
    omega = _skew(rng, d, d)
    K = rng.standard_normal((n, n))
    x0 = _unit(rng, n, d)
    model = SphereKuramoto(omega, kl.DenseCoupling(K), dim=d)
    tr = kl.simulate(
        model,
        jnp.asarray(x0),
        t1=3.0,
        dt=0.1,
        solver="tsit5",
        stepsize_controller=dfx.PIDController(rtol=1e-8, atol=1e-10),
    )
    np.testing.assert_allclose(np.linalg.norm(tr.ys, axis=-1), 1.0, atol=1e-12)
    # Accuracy, not only norms: against SciPy's DOP853 (rtol 1e-12) on an independent
    # NumPy drift. Budget: the controller's local tolerance 1e-8 accumulated over its
    # steps, amplified by the flow's growth over t = 3: 1e-6.
    blocks = np.einsum("ij,ab->ijab", K, np.eye(d))
    ref = _scipy_sphere_reference(np.broadcast_to(omega, (n, d, d)), blocks,
                                  np.zeros((n, d)), x0, np.asarray(tr.ts))
    np.testing.assert_allclose(np.asarray(tr.ys), ref, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_rk4_on_the_sphere_is_fourth_order_accurate(x64):
    """General sphere model (per-oscillator Omega, component-mixing blocks, stimulus)
    against SciPy DOP853 on an independent NumPy drift: the rk4 + retraction error at
    t = 2 falls by 2^4 when dt halves (order 4 +- 0.5), and is < 1e-6 at dt = 0.02."""
    rng = _rng(15)
    n, d = 4, 3
    omega = _skew(rng, n, d, d)
    blocks = rng.standard_normal((n, n, d, d)) / n
    c = 0.5 * rng.standard_normal((n, d))
    x0 = _unit(rng, n, d)
    model = SphereKuramoto(SkewOmega(omega), BlockCoupling(blocks), c)
    ref = _scipy_sphere_reference(omega, blocks, c, x0, np.array([0.0, 2.0]))[-1]
    errors = []
    for dt in (0.04, 0.02):
        tr = kl.simulate(model, jnp.asarray(x0), t1=2.0, dt=dt, saveat=kl.SaveAt(final=True))
        errors.append(np.max(np.abs(np.asarray(tr.final) - ref)))
    order = np.log2(errors[0] / errors[1])
    assert abs(order - 4) < 0.5 and errors[1] < 1e-6, (errors, order)


def _sphere_drift_numpy(omega, J, c):
    """dx_i/dt = Omega_i x_i + P_{x_i}(sum_j J_ij x_j + c_i), P_x = I - x x^T: the
    model equation written out independently of kuralab."""

    def f(t, flat):
        x = flat.reshape(c.shape)
        y = np.einsum("ijab,jb->ia", J, x) + c
        proj = y - np.sum(y * x, -1, keepdims=True) * x
        return (np.einsum("iab,ib->ia", omega, x) + proj).reshape(-1)

    return f


def _scipy_sphere_reference(omega, blocks, c, x0, ts):
    n, d = x0.shape
    sol = scipy.integrate.solve_ivp(
        _sphere_drift_numpy(np.asarray(omega), blocks, c), (ts[0], ts[-1]),
        x0.reshape(-1), method="DOP853", t_eval=ts, rtol=1e-12, atol=1e-13,
    )
    return sol.y.T.reshape(len(ts), n, d)
