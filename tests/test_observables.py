"""Observables: known values, invariants (hypothesis), reference implementations,
batching, jit/vmap/grad, errors."""

import math

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import kuralab as kl

# Phase arrays (osc last) with leading batch axes; float32 like the library default.
# A few fixed shapes: every new shape costs a compilation.
_phase = st.floats(-10.0, 10.0, width=32)
_phases = hnp.arrays(
    np.float32,
    st.sampled_from([(3,), (2, 1), (2, 5), (2, 3, 8)]),
    elements=_phase,
)
_settings = settings(max_examples=30, deadline=None)


# ---------------------------------------------------------------------------------
# order_parameter, circular_variance
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", [-3.0, 0.0, 1.234, 100.0])
def test_identical_phases_are_synchronous(phase):
    theta = jnp.full((17,), phase)
    Z = kl.order_parameter(theta)
    assert Z.dtype == jnp.complex64
    np.testing.assert_allclose(abs(Z), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        np.angle(Z), math.remainder(phase, 2 * math.pi), atol=1e-4
    )
    np.testing.assert_allclose(kl.circular_variance(theta), 0.0, atol=1e-6)


@pytest.mark.parametrize("n", [2, 5, 12])
def test_equally_spaced_phases_and_daido_moments(n):
    theta = jnp.asarray(
        np.linspace(-np.pi, np.pi, n, endpoint=False) + 0.3, jnp.float32
    )
    for g in range(1, n):
        np.testing.assert_allclose(
            abs(kl.order_parameter(theta, moment=g)), 0.0, atol=1e-5
        )
    # g = N (and its multiples): every phasor e^{i N theta_j} is the same.
    np.testing.assert_allclose(abs(kl.order_parameter(theta, moment=n)), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        abs(kl.order_parameter(theta, moment=2 * n)), 1.0, atol=1e-5
    )
    np.testing.assert_allclose(kl.circular_variance(theta), 1.0, atol=1e-5)


def test_two_cluster_state_daido():
    # Two antipodal clusters: Z_1 = 0 but Z_2 = 1 (a 2-cluster state).
    theta = jnp.array([0.4, 0.4, 0.4 + np.pi, 0.4 + np.pi], jnp.float32)
    np.testing.assert_allclose(abs(kl.order_parameter(theta)), 0.0, atol=1e-6)
    np.testing.assert_allclose(abs(kl.order_parameter(theta, 2)), 1.0, atol=1e-6)


@_settings
@given(theta=_phases)
def test_order_parameter_bounds_and_circular_variance(theta):
    Z = kl.order_parameter(theta)
    assert Z.shape == theta.shape[:-1]
    R = np.abs(np.asarray(Z))
    assert np.all(R <= 1.0 + 1e-6) and np.all(R >= 0.0)
    np.testing.assert_allclose(kl.circular_variance(theta), 1.0 - R, atol=1e-6)
    # Against NumPy in float64.
    ref = np.mean(np.exp(1j * theta.astype(np.float64)), axis=-1)
    np.testing.assert_allclose(np.asarray(Z), ref, atol=2e-5)


@_settings
@given(
    theta=_phases,
    shift=st.floats(-10.0, 10.0),
    moment=st.integers(-3, 4),
    seed=st.integers(0, 2**16),
)
def test_order_parameter_shift_and_permutation(theta, shift, moment, seed):
    Z = np.asarray(kl.order_parameter(theta, moment))
    shifted = np.asarray(kl.order_parameter(theta + np.float32(shift), moment))
    # Z_g rotates by e^{i g phi}; |Z_g| is invariant.
    expected = Z * np.exp(1j * moment * np.float32(shift))
    np.testing.assert_allclose(shifted, expected, atol=5e-5)
    np.testing.assert_allclose(np.abs(shifted), np.abs(Z), atol=5e-5)
    perm = np.random.default_rng(seed).permutation(theta.shape[-1])
    np.testing.assert_allclose(
        np.asarray(kl.order_parameter(theta[..., perm], moment)), Z, atol=5e-6
    )


def test_order_parameter_batch_jit_vmap_grad(getkey):
    theta = jax.random.uniform(getkey(), (4, 3, 10), minval=-np.pi, maxval=np.pi)
    Z = kl.order_parameter(theta)
    assert Z.shape == (4, 3)
    np.testing.assert_allclose(jax.jit(kl.order_parameter)(theta), Z, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(kl.order_parameter)(theta), Z, atol=1e-6)
    g = jax.grad(lambda t: jnp.sum(kl.circular_variance(t)))(theta)
    assert g.shape == theta.shape and np.all(np.isfinite(g))
    # dR/dtheta_j = (1/N) sin(psi - theta_j); so sum_j d(1-R)/dtheta_j = 0.
    np.testing.assert_allclose(jnp.sum(g, axis=-1), 0.0, atol=1e-6)


def test_order_parameter_float64(x64):
    # float64 phases give complex128 Z and float64 1 - R, computed in double precision:
    # against the closed form for equally spaced phases theta_j = j h, j = 0..n-1,
    # Z = exp(i (n-1) h / 2) sin(n h / 2) / (n sin(h / 2)), to 1e-15 (float32 would
    # be ~1e-7 off). Near R = 1 (phases 1e-5 apart) 1 - R ~ 1e-10 survives only in
    # float64: circular_variance ~ (1/2) Var(theta).
    n, h = 5, 0.25
    theta = jnp.arange(n, dtype=jnp.float64) * h
    Z = kl.order_parameter(theta)
    assert Z.dtype == jnp.complex128
    exact = np.exp(1j * (n - 1) * h / 2) * np.sin(n * h / 2) / (n * np.sin(h / 2))
    np.testing.assert_allclose(complex(Z), exact, rtol=0, atol=1e-15)
    tight = jnp.linspace(0.0, 1e-5, 11, dtype=jnp.float64) + 0.3
    V = kl.circular_variance(tight)
    assert V.dtype == jnp.float64
    var = float(np.var(np.asarray(tight)))
    np.testing.assert_allclose(float(V), var / 2, rtol=1e-4)


def test_order_parameter_errors():
    with pytest.raises(ValueError, match="theta.*shape"):
        kl.order_parameter(jnp.float32(1.0))
    with pytest.raises(ValueError, match="moment"):
        kl.order_parameter(jnp.zeros(3), moment=1.5)
    with pytest.raises(ValueError, match="complex"):
        kl.order_parameter(jnp.zeros(3, jnp.complex64))


# ---------------------------------------------------------------------------------
# cluster_order, splay
# ---------------------------------------------------------------------------------


def _reference_cluster_loss(theta, labels, num_clusters):
    """KuraNet's `circular_moments` (utils.py) for one time step, in float64, with
    empty groups removed (the toolkit masks them)."""
    theta = np.asarray(theta, np.float64)
    groups = [theta[labels == c] for c in range(num_clusters) if np.any(labels == c)]
    G = len(groups)
    phasors = [np.exp(1j * g).sum() for g in groups]
    synch = 1.0 - np.mean(
        [abs(p) / len(g) for p, g in zip(phasors, groups, strict=True)]
    )
    psi = np.angle(phasors)
    desynch = sum(
        abs(np.exp(1j * m * psi).sum()) ** 2 / (2 * G * m**2)
        for m in range(1, G // 2 + 1)
    )
    bound = 1 + (G / 2) * sum(1 / m**2 for m in range(1, G // 2 + 1))
    S_max = (G / 2) * sum(1 / m**2 for m in range(1, G // 2 + 1))
    splay_value = desynch / S_max if S_max > 0 else 0.0
    return (synch + desynch) / bound, splay_value


def _one_phase_value(k):
    """Analytic cluster loss when every oscillator has the same phase (k groups)."""
    S_max = (k / 2) * sum(1 / g**2 for g in range(1, k // 2 + 1))
    return S_max / (1 + S_max)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 7])
def test_cluster_order_known_values(k):
    per = 3
    labels = jnp.repeat(jnp.arange(k), per)
    # Synchronous groups at splay positions: loss 0, splay 0.
    centres = np.linspace(-np.pi, np.pi, k, endpoint=False) + 0.2
    theta = jnp.asarray(np.repeat(centres, per), jnp.float32)
    np.testing.assert_allclose(kl.cluster_order(theta, labels), 0.0, atol=1e-5)
    np.testing.assert_allclose(kl.splay(theta, labels), 0.0, atol=1e-5)
    # Everything in one phase: groups synchronous, splay term maximal.
    same = jnp.full(k * per, 0.7, jnp.float32)
    np.testing.assert_allclose(
        kl.cluster_order(same, labels), _one_phase_value(k), rtol=1e-5
    )
    np.testing.assert_allclose(kl.splay(same, labels), 1.0, rtol=1e-5)


def test_cluster_order_two_groups_value():
    # k = 2: loss = (mean V + |e^{i psi_1} + e^{i psi_2}|^2 / 4) / 2.
    assert _one_phase_value(2) == 0.5
    theta = jnp.array([0.0, 0.0, 0.5 * np.pi, 0.5 * np.pi], jnp.float32)
    labels = jnp.array([0, 0, 1, 1])
    np.testing.assert_allclose(kl.cluster_order(theta, labels), (2 / 4) / 2, rtol=1e-5)
    np.testing.assert_allclose(kl.splay(theta, labels), 0.5, rtol=1e-5)


def test_single_group_is_circular_variance():
    theta = jnp.array([0.1, 0.9, -1.3, 2.0], jnp.float32)
    labels = jnp.zeros(4, jnp.int32)
    np.testing.assert_allclose(
        kl.cluster_order(theta, labels), kl.circular_variance(theta), atol=1e-6
    )
    assert float(kl.splay(theta, labels)) == 0.0


def test_empty_clusters_are_masked(getkey):
    theta = jax.random.uniform(getkey(), (5, 9), minval=-np.pi, maxval=np.pi)
    labels = jnp.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    # The same partition with unused labels 1 and 4 (num_clusters = 6).
    gappy = jnp.array([0, 0, 0, 2, 2, 2, 3, 3, 3])
    ref = kl.cluster_order(theta, labels, 3)
    np.testing.assert_allclose(kl.cluster_order(theta, gappy, 6), ref, atol=1e-6)
    np.testing.assert_allclose(kl.cluster_order(theta, gappy, 4), ref, atol=1e-6)
    np.testing.assert_allclose(
        kl.splay(theta, gappy, 6), kl.splay(theta, labels, 3), atol=1e-6
    )


@_settings
@given(
    theta=hnp.arrays(np.float32, (2, 9), elements=_phase),
    num_clusters=st.sampled_from([1, 2, 3, 5]),
    seed=st.integers(0, 2**16),
)
def test_cluster_order_matches_reference_and_is_bounded(theta, num_clusters, seed):
    labels = np.random.default_rng(seed).integers(0, num_clusters, theta.shape[-1])
    loss = np.asarray(kl.cluster_order(theta, jnp.asarray(labels), num_clusters))
    spl = np.asarray(kl.splay(theta, jnp.asarray(labels), num_clusters))
    assert loss.shape == spl.shape == theta.shape[:-1]
    assert np.all((loss >= -1e-6) & (loss <= 1 + 1e-6))
    assert np.all((spl >= -1e-6) & (spl <= 1 + 1e-6))
    for b in range(theta.shape[0]):
        ref_loss, ref_splay = _reference_cluster_loss(theta[b], labels, num_clusters)
        # A group whose phasors cancel has no mean phase; skip such degenerate draws.
        sums = [np.exp(1j * theta[b][labels == c]).sum() for c in np.unique(labels)]
        if min(abs(s) for s in sums) < 1e-3:
            continue
        np.testing.assert_allclose(loss[b], ref_loss, atol=2e-5)
        np.testing.assert_allclose(spl[b], ref_splay, atol=2e-5)


def test_cluster_order_jit_vmap_grad(getkey):
    theta = jax.random.uniform(getkey(), (3, 8), minval=-np.pi, maxval=np.pi)
    labels = jnp.array([0, 1, 2, 3, 0, 1, 2, 3])
    eager = kl.cluster_order(theta, labels)
    # Labels traced under jit; num_clusters static.
    jitted = jax.jit(kl.cluster_order, static_argnums=2)(theta, labels, 4)
    np.testing.assert_allclose(jitted, eager, atol=1e-6)
    # Per-example labels through vmap.
    many = jnp.stack([labels, labels[::-1], jnp.zeros(8, jnp.int32)])
    vm = jax.vmap(lambda t, lab: kl.cluster_order(t, lab, 4))(theta, many)
    for b in range(3):
        np.testing.assert_allclose(
            vm[b], kl.cluster_order(theta[b], many[b], 4), atol=1e-6
        )
    grad = jax.grad(lambda t: jnp.sum(kl.cluster_order(t, labels, 4)))(theta)
    assert np.all(np.isfinite(grad))
    # Gradient finite even at a splay of synchronous groups (the splay sum cancels).
    splayed = jnp.asarray(np.repeat(np.linspace(0, 2 * np.pi, 4, endpoint=False), 2))
    lab2 = jnp.repeat(jnp.arange(4), 2)
    assert np.all(
        np.isfinite(jax.grad(lambda t: kl.cluster_order(t, lab2, 4))(splayed))
    )


def test_cluster_order_errors():
    theta = jnp.zeros(4)
    with pytest.raises(ValueError, match=r"labels.*\(osc,\) = \(4,\)"):
        kl.cluster_order(theta, jnp.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"labels.*\[0, 2\)"):
        kl.cluster_order(theta, jnp.array([0, 1, 2, 1]), 2)
    with pytest.raises(ValueError, match="integer"):
        kl.splay(theta, jnp.array([0.0, 1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="num_clusters.*static"):
        jax.jit(kl.cluster_order)(theta, jnp.array([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="num_clusters"):
        kl.cluster_order(theta, jnp.array([0, 1, 1, 0]), 0)


# ---------------------------------------------------------------------------------
# local_order
# ---------------------------------------------------------------------------------


def _brute_local_order(theta, kernel, shape):
    """Z_i = sum_d k_d e^{i theta_{i+d}} / sum_d k_d on a periodic 2-D grid (NumPy)."""
    theta = np.asarray(theta, np.float64)
    kernel = np.asarray(kernel, np.float64)
    rows, cols = shape
    ch, cw = kernel.shape[0] // 2, kernel.shape[1] // 2
    grid = np.exp(1j * theta).reshape(theta.shape[:-1] + shape)
    out = np.zeros_like(grid)
    for r in range(rows):
        for c in range(cols):
            acc = 0.0
            for a in range(kernel.shape[0]):
                for b in range(kernel.shape[1]):
                    acc = (
                        acc
                        + kernel[a, b]
                        * grid[..., (r + a - ch) % rows, (c + b - cw) % cols]
                    )
            out[..., r, c] = acc / kernel.sum()
    return out.reshape(theta.shape)


def test_local_order_lattice_against_brute_force(getkey):
    shape = (4, 5)
    kernel = jnp.array([[0.0, 1.0, 0.5], [1.0, 0.0, 2.0], [0.5, 1.0, 0.0]])
    coupling = kl.LatticeCoupling(kernel, shape)
    theta = jax.random.uniform(getkey(), (2, 3, 20), minval=-np.pi, maxval=np.pi)
    Z = kl.local_order(theta, coupling)
    assert Z.shape == theta.shape and Z.dtype == jnp.complex64
    np.testing.assert_allclose(
        np.asarray(Z), _brute_local_order(theta, kernel, shape), atol=1e-5
    )
    # The same weights as an explicit matrix, and as a sparse graph.
    matrix = coupling.as_matrix()
    np.testing.assert_allclose(kl.local_order(theta, matrix), Z, atol=1e-5)
    sparse = kl.SparseCoupling.from_dense(np.asarray(matrix))
    np.testing.assert_allclose(kl.local_order(theta, sparse), Z, atol=1e-5)
    # jit and vmap agree with the batched call.
    np.testing.assert_allclose(jax.jit(kl.local_order)(theta, coupling), Z, atol=1e-6)
    np.testing.assert_allclose(
        jax.vmap(jax.vmap(lambda t: kl.local_order(t, coupling)))(theta), Z, atol=1e-6
    )


def test_local_order_mean_field_and_dense_is_global(getkey):
    theta = jax.random.uniform(getkey(), (3, 7), minval=-np.pi, maxval=np.pi)
    Z = kl.order_parameter(theta)[..., None]
    np.testing.assert_allclose(
        kl.local_order(theta, kl.MeanField(2.5)),
        jnp.broadcast_to(Z, theta.shape),
        atol=1e-6,
    )
    dense = kl.DenseCoupling(0.3 * jnp.ones((7, 7)))
    np.testing.assert_allclose(
        kl.local_order(theta, dense), jnp.broadcast_to(Z, theta.shape), atol=1e-6
    )


def test_local_order_averages_phasors_not_angles():
    # Neighbours at +-(pi - 0.1) straddle the cut: their mean angle would be 0,
    # but their phasor mean points to pi.
    coupling = kl.LatticeCoupling(jnp.array([1.0, 0.0, 1.0]), (3,))
    theta = jnp.array([np.pi - 0.1, 0.0, -np.pi + 0.1], jnp.float32)
    Z = kl.local_order(theta, coupling)
    np.testing.assert_allclose(np.angle(Z[1]), np.pi, atol=1e-5)
    np.testing.assert_allclose(abs(Z[1]), np.cos(0.1), atol=1e-6)


def test_local_order_errors():
    theta = jnp.zeros(6)
    with pytest.raises(ValueError, match=r"kernel.*\(6, 6\)"):
        kl.local_order(theta, jnp.ones((5, 5)))
    with pytest.raises(ValueError, match="built for 4"):
        kl.local_order(theta, kl.LatticeCoupling(jnp.ones((3,)), (4,)))


# ---------------------------------------------------------------------------------
# effective_frequencies
# ---------------------------------------------------------------------------------


def test_effective_frequencies_linear_phases():
    ts = jnp.linspace(0.0, 20.0, 401)
    omega = jnp.array([-2.0, 0.0, 0.5, 3.1])
    c = jnp.array([0.3, -1.0, 2.0, 3.0])
    theta = kl.wrap_phase(ts[:, None] * omega + c)  # (time, osc), spacing 0.05
    np.testing.assert_allclose(kl.effective_frequencies(theta, ts), omega, atol=1e-4)
    np.testing.assert_allclose(
        kl.effective_frequencies(theta, ts, window=5.0), omega, atol=2e-4
    )
    # Batch axes and jit/vmap.
    batch = jnp.stack([theta, kl.wrap_phase(theta + 1.0), kl.wrap_phase(-theta)])
    out = kl.effective_frequencies(batch, ts, window=5.0)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, jnp.stack([omega, omega, -omega]), atol=2e-4)
    jitted = jax.jit(lambda th: kl.effective_frequencies(th, ts, window=5.0))(batch)
    np.testing.assert_allclose(jitted, out, atol=1e-6)
    vm = jax.vmap(lambda th: kl.effective_frequencies(th, ts, window=5.0))(batch)
    np.testing.assert_allclose(vm, out, atol=1e-6)


def test_effective_frequencies_window_uses_the_final_span():
    # Frequency 1 until t = 10, then 3: the last-5 window sees only 3.
    ts = jnp.linspace(0.0, 20.0, 201)
    unwrapped = jnp.where(ts < 10, ts, 10 + 3 * (ts - 10))[:, None]
    theta = kl.wrap_phase(unwrapped)
    np.testing.assert_allclose(
        kl.effective_frequencies(theta, ts, window=5.0), [3.0], rtol=1e-4
    )
    np.testing.assert_allclose(kl.effective_frequencies(theta, ts), [2.0], rtol=1e-4)


# Two unlocked oscillators: dphi/dt = dw - 2K sin(phi); the run is shared with
# tests/test_theory.py (same structure and save policy: one compilation).
_DW, _K = 2.0, 0.5
_T1, _DT, _EVERY = 200.0, 0.05, 100  # saves every 5 time units (> pi of phase motion)


def _pair(dw, K):
    omega = jnp.array([-0.5, 0.5]) * dw
    return kl.Kuramoto(omega, kl.DenseCoupling(K * (1 - jnp.eye(2))))


def test_effective_frequencies_from_simulation():
    traj = kl.simulate(
        _pair(_DW, _K), jnp.zeros(2), t1=_T1, dt=_DT, saveat=kl.SaveAt(every=_EVERY)
    )
    drift = math.sqrt(_DW**2 - 4 * _K**2)
    Omega = kl.effective_frequencies(traj)
    # The bounded oscillating part of phi contributes at most ~2 pi / T1.
    np.testing.assert_allclose(Omega, [-drift / 2, drift / 2], atol=3e-2)
    # Saves are 5 time units apart (|dtheta| > pi between saves): only the winding
    # numbers make this right; array unwrapping would alias.
    assert np.max(np.abs(np.diff(np.asarray(traj.unwrapped()), axis=0))) > np.pi
    np.testing.assert_allclose(
        kl.effective_frequencies(traj, window=150.0), [-drift / 2, drift / 2], atol=3e-2
    )
    with pytest.raises(ValueError, match="ts"):
        kl.effective_frequencies(traj, traj.ts)


def test_effective_frequencies_batched_trajectory():
    dws = jnp.array([1.0, 2.0, 3.0])
    trajs = jax.vmap(
        lambda dw: kl.simulate(
            _pair(dw, _K), jnp.zeros(2), t1=_T1, dt=_DT, saveat=kl.SaveAt(every=_EVERY)
        )
    )(dws)
    Omega = kl.effective_frequencies(trajs)
    assert Omega.shape == (3, 2)
    drift = np.sqrt(np.asarray(dws) ** 2 - 4 * _K**2)
    np.testing.assert_allclose(Omega[:, 1] - Omega[:, 0], drift, atol=5e-2)


def _trajectory_without_turns():
    model = _pair(_DW, _K)
    ts = jnp.linspace(0, 1, 3)
    return kl.Trajectory(
        ts=ts,
        ys=jnp.zeros(3),
        turns=None,
        final=jnp.zeros(2),
        final_turns=None,
        result=kl.RESULTS.successful,
        stats={},
        model=model,
        solver="rk4",
        dt=0.5,
        t0=0.0,
        t1=1.0,
    )


def test_effective_frequencies_errors():
    ts = jnp.linspace(0.0, 1.0, 11)
    theta = jnp.zeros((11, 3))
    with pytest.raises(ValueError, match="window"):
        kl.effective_frequencies(theta, ts, window=0.0)
    with pytest.raises(ValueError, match="window"):
        kl.effective_frequencies(theta, ts, window=-1.0)
    with pytest.raises(ValueError, match="fewer than two saves"):
        kl.effective_frequencies(theta, ts, window=0.01)
    with pytest.raises(ValueError, match=r"ts.*\(11,\)"):
        kl.effective_frequencies(theta, ts[:-1])
    with pytest.raises(ValueError, match="ts.*required"):
        kl.effective_frequencies(theta)
    with pytest.raises(ValueError, match=r"\(\.\.\., time, osc\)"):
        kl.effective_frequencies(jnp.zeros(3), jnp.zeros(3))
    with pytest.raises(ValueError, match="increasing"):
        kl.effective_frequencies(theta, ts[::-1])
    with pytest.raises(ValueError, match="turns=None"):
        kl.effective_frequencies(_trajectory_without_turns())
