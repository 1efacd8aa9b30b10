"""Couplings: the four operators agree on the complete graph, tags, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import sparse

import kuralab as kl
from kuralab._coupling import coupling_blocks


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


def test_tags_are_facts_of_the_current_values_after_an_optimiser_step():
    # A symmetric, non-negative coupling trained by optax: the tags must follow the new
    # matrix, not the one it was built with.
    import optax

    sym = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    c = kl.DenseCoupling(sym, tags=(kl.symmetric_tag, kl.nonnegative_tag))
    assert c.tags == {kl.symmetric_tag, kl.nonnegative_tag}

    def loss(c):  # pulls K_01 up and K_10 below zero: asymmetric, negative
        return -c.matrix[0, 1] + 3.0 * c.matrix[1, 0]

    opt = optax.sgd(1.0)
    grads = eqx.filter_grad(loss)(c)
    updates, _ = opt.update(grads, opt.init(eqx.filter(c, eqx.is_array)))
    trained = eqx.apply_updates(c, updates)
    assert not trained.symmetric and not trained.is_symmetric(rtol=0.1)
    assert not trained.nonnegative
    assert trained.tags == frozenset()
    # K = [[0, 2], [-2, 0]]: max|K - K^T| / max|K| = 4 / 2.
    np.testing.assert_allclose(trained.symmetry_defect(), 2.0, rtol=1e-6)
    # The theorem check measures the same fact.
    model = kl.Kuramoto(jnp.zeros(2), trained)
    hyp = kl.lyapunov_hypotheses(model)
    assert not bool(hyp["holds"].sel(hypothesis="symmetric_coupling"))


def test_symmetry_checks_per_coupling():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(7, 7))
    sym, asym = a + a.T, a
    assert kl.DenseCoupling(sym).is_symmetric()
    assert not kl.DenseCoupling(asym).is_symmetric()
    near = sym + 1e-4 * asym  # float32: visible, but small
    assert not kl.DenseCoupling(near).is_symmetric()
    assert kl.DenseCoupling(near).is_symmetric(rtol=1e-3)
    assert kl.DenseCoupling(near).is_symmetric(atol=1e-3)
    # Sparse: edges against their reverses (repeated edges add up), no dense matrix.
    assert kl.SparseCoupling.from_dense(sym).is_symmetric()
    assert not kl.SparseCoupling.from_dense(asym).is_symmetric()
    dup = kl.SparseCoupling([0, 0, 1], [1, 1, 0], [1.0, 2.0, 3.0], n=2)
    assert dup.is_symmetric()
    one_way = kl.SparseCoupling([0], [1], [1.0], n=2)
    assert not one_way.is_symmetric() and one_way.is_nonnegative()
    big = kl.SparseCoupling([0, 9999], [9999, 0], [2.0, 2.0], n=10_000)
    assert big.is_symmetric()  # used to be trusted, not checked, above n = 4096
    assert not kl.SparseCoupling([0, 9999], [9999, 0], [2.0, 1.0], n=10_000).symmetric
    # Mean field: symmetric by construction, non-negative iff K >= 0; schedules unproved.
    assert kl.MeanField(-1.0).is_symmetric()
    assert not kl.MeanField(kl.Linear(0.0, 1.0)).is_nonnegative()
    # Under jit the defect is a JAX scalar; the bool checks ask for concrete values.
    defect = jax.jit(lambda m: kl.DenseCoupling(m).symmetry_defect())(asym)
    np.testing.assert_allclose(defect, kl.DenseCoupling(asym).symmetry_defect())
    with pytest.raises(TypeError, match="concrete values.*symmetry_defect"):
        jax.jit(lambda m: kl.DenseCoupling(m).is_symmetric())(sym)


def test_declared_tags_are_checked_under_jit():
    build = eqx.filter_jit(
        lambda m: kl.DenseCoupling(m, tags=kl.symmetric_tag).apply(jnp.ones(2))
    )
    np.testing.assert_allclose(build(jnp.eye(2)), [1.0, 1.0])
    with pytest.raises(Exception, match="declared"):
        jax.block_until_ready(build(jnp.array([[0.0, 1.0], [2.0, 0.0]])))


class _Ring(kl.AbstractCoupling):
    """A user coupling: nothing but `apply` and `n_osc` (no `linear`, no tags)."""

    k: jax.Array

    @property
    def n_osc(self):
        return None

    def apply(self, u, t=0.0):
        return self.k * (jnp.roll(u, 1, axis=0) + jnp.roll(u, -1, axis=0))


class _Rotate(kl.AbstractVectorCoupling):
    """A user vector coupling: a fixed rotation of each neighbour's vector."""

    w: jax.Array

    @property
    def n_osc(self):
        return 4

    @property
    def dim(self):
        return 2

    def apply(self, x, t=0.0):
        return jnp.roll(x, 1, axis=0) @ self.w.T


def test_user_couplings_need_no_linear_classvar():
    ring = _Ring(jnp.asarray(0.5))
    assert ring.linear and isinstance(ring, kl.AbstractOperator)
    np.testing.assert_allclose(ring.as_matrix(4).sum(axis=1), np.ones(4))
    rot = _Rotate(jnp.array([[0.0, -1.0], [1.0, 0.0]]))
    assert rot.linear and isinstance(rot, kl.AbstractOperator)
    assert not isinstance(rot, kl.AbstractCoupling)  # families stay apart
    assert kl.AttentionCoupling.linear is False
    blocks = coupling_blocks(rot, 4, 2)
    assert blocks.shape == (4, 4, 2, 2)
    assert not rot.is_symmetric()
    model = kl.SphereKuramoto(None, rot)
    hyp = kl.lyapunov_hypotheses(model)
    assert bool(hyp["holds"].sel(hypothesis="linear_autonomous"))


class _OldStyle(kl.AbstractCoupling):
    """Written against the former API: stores its own `tags`, spells out `linear`."""

    k: jax.Array
    tags: frozenset = eqx.field(static=True)
    linear = True

    def __init__(self, k):
        self.k = jnp.asarray(k)
        self.tags = frozenset({kl.symmetric_tag})

    @property
    def n_osc(self):
        return 3

    def apply(self, u, t=0.0):
        return self.k * jnp.roll(u, 1, axis=0)


def test_couplings_written_against_the_former_tag_api_still_work():
    c = _OldStyle(1.0)
    assert c.tags == {kl.symmetric_tag}  # its own field, as before
    assert not c.is_symmetric()  # the check measures the operator (a one-way ring)
    hyp = kl.lyapunov_hypotheses(kl.Kuramoto(jnp.zeros(3), c))
    assert not bool(hyp["holds"].sel(hypothesis="symmetric_coupling"))
