"""AKOrNReadout, AKOrNNet and energy_vote: readout values against NumPy, network shapes
and wiring, the Sudoku initial state, and that voting keeps the lowest energy."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab.learn as L
from kuralab.learn.akorn_net import total_energy


@eqx.filter_jit
def call(net, inputs, key, steps=None, x0=None):
    return net(inputs, key=key, steps=steps, x0=x0)


@eqx.filter_jit
def vote(net, inputs, key, votes, score, energy):
    return L.energy_vote(net, inputs, key=key, votes=votes, score=score, energy=energy)


def test_readout_is_norms_of_projections_plus_bias():
    ro = L.AKOrNReadout(8, 3, n_proj=2, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (8, 4, 5))
    U = np.asarray(ro.kernel[0, 0])  # (3 * 2, 8)
    z = np.einsum("ki,ihw->khw", U, np.asarray(x)).reshape(3, 2, 4, 5)
    ref = np.linalg.norm(z, axis=1) + np.asarray(ro.bias)[:, None, None]
    np.testing.assert_allclose(ro(x), ref, rtol=1e-5, atol=1e-5)
    # phase invariance: rotating each projection pair's input does not matter for n_proj
    # outputs computed from orthogonal rows -- here simply: sign flip of x keeps norms
    np.testing.assert_allclose(ro(-x), ro(x), rtol=1e-6)
    with pytest.raises(ValueError, match="channels=8"):
        ro(jnp.ones((4, 4, 5)))


@pytest.mark.slow
def test_net_classify_with_strided_transition_and_energies():
    net = L.AKOrNNet(3, (8, 16), n=4, steps=(3, 2), strides=(2,), head="classify",
                     n_out=10, key=jax.random.key(0))
    out, info = call(net, jnp.ones((3, 8, 8)), jax.random.key(1))
    assert out.shape == (10,)
    assert [e.shape for e in info["energy"]] == [(4,), (3,)]
    out2, info2 = call(net, jnp.ones((3, 8, 8)), jax.random.key(1), steps=5)
    assert [e.shape for e in info2["energy"]] == [(6,), (6,)]
    feats = L.AKOrNNet(3, (8,), head=None, key=jax.random.key(0))
    f, _ = call(feats, jnp.ones((3, 6, 6)), jax.random.key(1))
    assert f.shape == (8, 6, 6)
    with pytest.raises(ValueError, match="in_channels=3"):
        net(jnp.ones((2, 8, 8)), key=jax.random.key(1))
    with pytest.raises(ValueError, match="`strides` must have 1"):
        L.AKOrNNet(3, (8, 16), strides=(2, 2), key=jax.random.key(0))


@pytest.mark.slow
def test_sudoku_net_clamps_givens_and_outputs_cell_logits():
    net = L.AKOrNNet(5, (16,), n=4, steps=2, connectivity="attn", grid=(4, 4), heads=2,
                     gta=True, c_norm="none", head="cells", n_out=4, encoder="embed",
                     x_init="clamp_given", key=jax.random.key(0))
    puzzle = jnp.array([[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [0, 0, 0, 4]])
    logits, _ = call(net, puzzle, jax.random.key(1))
    assert logits.shape == (4, 4, 4)
    # the given cells start at their stimulus: a different noise key changes only blanks
    c = net.encode(puzzle)
    x_a = jnp.where((puzzle != 0)[None], c, jax.random.normal(jax.random.key(1), c.shape))
    la, _ = call(net, puzzle, jax.random.key(1), x0=x_a)
    np.testing.assert_allclose(la, logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="clamp_given"):
        L.AKOrNNet(5, (16,), x_init="clamp_given", key=jax.random.key(0))


@pytest.mark.slow
def test_energy_vote_picks_the_lowest_energy():
    net = L.AKOrNNet(5, (8,), n=4, steps=3, connectivity="attn", grid=(4, 4), heads=2,
                     c_norm="none", head="cells", n_out=4, encoder="embed",
                     key=jax.random.key(0))
    puzzle = jnp.zeros((4, 4), int)
    for score in ("last", "sum"):
        ans, info = vote(net, puzzle, jax.random.key(2), 6, score, "energy_logged")
        s = np.asarray(info["scores"])
        assert s.shape == (6,) and len(np.unique(s)) == 6
        best = int(np.argmin(s))
        assert int(info["best"]) == best
        np.testing.assert_array_equal(ans, info["outputs"][best])
        # vote k is the net run with the k-th split key
        k = jax.random.split(jax.random.key(2), 6)[best]
        out, inf = call(net, puzzle, k)
        np.testing.assert_allclose(out, ans, rtol=1e-5, atol=1e-5)
        ref = inf["energy_logged"][0][-1] if score == "last" else inf["energy_logged"][0].sum()
        assert float(ref) == pytest.approx(float(s[best]), rel=1e-5)


def test_energy_vote_with_a_stub_net():
    """A net whose energy is known: the vote must return the output of the minimum."""

    def stub(inputs, *, key, steps=None):
        e = jax.random.uniform(key, (4,))
        return e[-1] * 10.0, {"energy": (e,), "energy_logged": (-e,)}

    ans, info = L.energy_vote(stub, None, key=jax.random.key(0), votes=20)
    assert float(ans) == pytest.approx(10 * float(jnp.min(info["scores"])))
    ans_l, info_l = L.energy_vote(stub, None, key=jax.random.key(0), votes=20,
                                  energy="energy_logged")
    assert float(ans_l) == pytest.approx(-10 * float(jnp.min(info_l["scores"])))
    with pytest.raises(ValueError, match="`score` must be one of"):
        L.energy_vote(stub, None, key=jax.random.key(0), score="mean")
    with pytest.raises(ValueError, match="`votes`"):
        L.energy_vote(stub, None, key=jax.random.key(0), votes=0)
    assert float(total_energy({"energy": (jnp.ones(3), jnp.ones(2))}, score="sum")) == 5.0
