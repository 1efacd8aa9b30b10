"""Couplings: the four operators agree on the complete graph, tags, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import sparse

import kuralab as kl


def _complete_graph_couplings(K, side):
    n = side * side
    dense = np.full((n, n), K / n)
    return {
        "mean_field": kl.MeanField(K),
        "dense": kl.DenseCoupling(dense),
        "sparse": kl.SparseCoupling.from_dense(dense),
        "bcoo": kl.SparseCoupling.from_bcoo(sparse.BCOO.fromdense(jnp.asarray(dense))),
        # A full kernel on an odd periodic grid sees every site exactly once.
        "lattice": kl.LatticeCoupling(jnp.full((side, side), K / n), (side, side)),
    }


@pytest.mark.parametrize("features", [(), (3,)])
def test_complete_graph_operators_agree(getkey, features):
    couplings = _complete_graph_couplings(1.7, 5)
    u = jax.random.normal(getkey(), (25, *features))
    ref = np.asarray(couplings["dense"].apply(u))
    for name, c in couplings.items():
        np.testing.assert_allclose(c.apply(u), ref, rtol=1e-5, atol=1e-6, err_msg=name)


def test_as_matrix_matches_definition(getkey):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 6))
    np.testing.assert_allclose(kl.DenseCoupling(m).as_matrix(), m, rtol=1e-6)
    np.testing.assert_allclose(kl.SparseCoupling.from_dense(m).as_matrix(), m, rtol=1e-6)
    np.testing.assert_allclose(kl.MeanField(3.0).as_matrix(4), np.full((4, 4), 0.75))


def test_lattice_kernel_convention_and_boundaries():
    # 1-D ring of 7 sites, kernel weights the neighbour at displacement d by kernel[1 + d].
    kernel = jnp.array([1.0, 0.0, 2.0])  # left neighbour x1, right neighbour x2
    periodic = kl.LatticeCoupling(kernel, (7,)).as_matrix()
    expected = np.zeros((7, 7))
    for i in range(7):
        expected[i, (i - 1) % 7] += 1.0
        expected[i, (i + 1) % 7] += 2.0
    np.testing.assert_allclose(periodic, expected)
    open_ = kl.LatticeCoupling(kernel, (7,), boundary="open").as_matrix()
    expected[0, 6] = 0.0
    expected[6, 0] = 0.0
    np.testing.assert_allclose(open_, expected)


def test_lattice_2d_matches_explicit_stencil(getkey):
    rows, cols = 4, 6
    kernel = jax.random.normal(getkey(), (3, 3))
    m = np.asarray(kl.LatticeCoupling(kernel, (rows, cols)).as_matrix())
    k = np.asarray(kernel)
    expected = np.zeros((rows * cols, rows * cols))
    for r in range(rows):
        for c in range(cols):
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    j = ((r + dr) % rows) * cols + (c + dc) % cols
                    expected[r * cols + c, j] += k[1 + dr, 1 + dc]
    np.testing.assert_allclose(m, expected, rtol=1e-5, atol=1e-6)


def test_tags_are_proved_and_checked():
    sym = np.array([[0.0, 1.0], [1.0, 0.0]])
    asym = np.array([[0.0, 1.0], [-2.0, 0.0]])
    assert kl.DenseCoupling(sym).symmetric and kl.DenseCoupling(sym).nonnegative
    assert not kl.DenseCoupling(asym).symmetric
    assert not kl.DenseCoupling(sym, strength=-1.0).nonnegative
    assert kl.MeanField(2.0).symmetric
    assert not kl.MeanField(-2.0).nonnegative
    with pytest.raises(ValueError, match="declared.*symmetric"):
        kl.DenseCoupling(asym, tags=kl.symmetric_tag)
    assert kl.LatticeCoupling(jnp.array([1.0, 0.0, 1.0]), (5,)).symmetric
    assert not kl.LatticeCoupling(jnp.array([1.0, 0.0, 2.0]), (5,)).symmetric


def test_schedule_strength_scales_in_time():
    c = kl.MeanField(kl.Linear(0.0, 2.0, t0=0.0, t1=1.0))
    u = jnp.ones(4)
    np.testing.assert_allclose(c.apply(u, 0.5), np.ones(4))
    np.testing.assert_allclose(c.apply(u, 5.0), 2 * np.ones(4))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: kl.DenseCoupling(np.ones((3, 4))), "square"),
        (lambda: kl.DenseCoupling(np.array([[np.nan]])), "finite"),
        (lambda: kl.MeanField(np.inf), "finite"),
        (lambda: kl.MeanField(np.ones(3)), "scalar"),
        (lambda: kl.SparseCoupling([0, 1], [1], n=2), "equal length"),
        (lambda: kl.SparseCoupling([0, 5], [1, 0], n=2), r"\[0, 2\)"),
        (lambda: kl.LatticeCoupling(jnp.ones((2, 2)), (4, 4)), "odd"),
        (lambda: kl.LatticeCoupling(jnp.ones(3), (4, 4)), "rank 1"),
        (lambda: kl.LatticeCoupling(jnp.ones(3), (5,), boundary="reflect"), "boundary"),
        (lambda: kl.LatticeCoupling(jnp.ones(7), (5,)), "larger than the grid"),
    ],
)
def test_bad_coupling_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()
