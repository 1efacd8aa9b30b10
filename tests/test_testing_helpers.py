"""The test helpers themselves (`kuralab.testing`) must fail on bad input: a helper that
always passes would make every test that relies on it vacuous."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab.testing import assert_phase_allclose, check_model_contract, tree_allclose


def test_assert_phase_allclose_accepts_multiples_of_two_pi_only():
    a = np.array([0.1, -3.0, 3.1])
    assert_phase_allclose(a + 2 * np.pi * np.array([1, -3, 7]), a, atol=1e-12)
    # Wrapping across the branch cut: pi - 1e-9 and -pi + 1e-9 are 2e-9 apart.
    assert_phase_allclose(np.pi - 1e-9, -np.pi + 1e-9, atol=3e-9)
    with pytest.raises(AssertionError, match=r"up to 2e-09 rad at index \(\)"):
        assert_phase_allclose(np.pi - 1e-9, -np.pi + 1e-9, atol=1e-9)
    # An offset of pi (the largest possible) and a small one both fail, with the index.
    with pytest.raises(AssertionError, match=r"at index \(1,\).*1 of 3"):
        assert_phase_allclose(a + np.array([0, np.pi, 0]), a)
    with pytest.raises(AssertionError, match=r"at index \(2,\)"):
        assert_phase_allclose(a + np.array([0, 0, 1e-5]), a, atol=1e-6)
    with pytest.raises(AssertionError, match="non-finite"):
        assert_phase_allclose(np.array([0.0, np.nan]), np.zeros(2))
    with pytest.raises(AssertionError, match="incompatible shapes"):
        assert_phase_allclose(np.zeros(3), np.zeros(2))


def test_tree_allclose_rejects_structure_shape_and_value_changes():
    x = {"a": jnp.ones(3), "b": (jnp.zeros(2), 1)}
    assert tree_allclose(x, {"a": jnp.ones(3), "b": (jnp.zeros(2), 1)})
    assert not tree_allclose(x, {"a": jnp.ones(3), "b": (jnp.zeros(2), 2)})
    assert not tree_allclose(x, {"a": jnp.ones(4), "b": (jnp.zeros(2), 1)})
    assert not tree_allclose(x, {"a": jnp.ones(3) + 1e-3, "b": (jnp.zeros(2), 1)})
    assert not tree_allclose(x, {"a": jnp.ones(3), "b": [jnp.zeros(2), 1]})


def test_check_model_contract_rejects_bad_input_early():
    model = kl.Kuramoto(jnp.ones(3), kl.MeanField(1.0))
    with pytest.raises(AssertionError, match=r"state_shape \(3,\) != y0.shape \(4,\)"):
        check_model_contract(model, jnp.zeros(4))
    with pytest.raises(AssertionError, match="not a kuralab AbstractModel"):
        check_model_contract(object(), jnp.zeros(3))


@jax.custom_vjp
def _shrink(tree):
    return tree


def _shrink_fwd(tree):
    return tree, None


def _shrink_bwd(_, cotangent):
    # The gradient of everything downstream, 10% too small.
    return (jax.tree_util.tree_map(lambda c: 0.9 * c, cotangent),)


_shrink.defvjp(_shrink_fwd, _shrink_bwd)


class _TenPercentWrongGradient(kl.Kuramoto):
    """Exact forward dynamics; reverse-mode parameter gradients scaled by 0.9."""

    def drift(self, t, y, y_delayed=None):
        params, static = eqx.partition(self, eqx.is_inexact_array)
        model = eqx.combine(_shrink(params), static)
        return kl.Kuramoto.drift(model, t, y, y_delayed)


@pytest.mark.slow
def test_check_model_contract_catches_a_ten_percent_wrong_float32_gradient():
    # The float32 budget (kuralab/testing.py) must be far below 10% of the derivative:
    # the same model with exact gradients passes, the 10% wrong one fails on the
    # gradient (all earlier checks pass: forward values are exact).
    n = 9
    omega = jax.random.normal(jax.random.key(0), (n,))
    y0 = kl.random_phases(jax.random.key(1), n)
    args = (omega, kl.MeanField(1.0))
    kw = dict(lag=0.2, forcing=kl.Forcing(0.3, 1.0))
    check_model_contract(kl.Kuramoto(*args, **kw), y0)
    with pytest.raises(AssertionError, match="disagrees with finite differences"):
        check_model_contract(_TenPercentWrongGradient(*args, **kw), y0)
