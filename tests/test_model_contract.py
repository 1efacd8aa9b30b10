"""The model contract is enough: brand-new models defined HERE, with no library change,
run through `kl.simulate`, `kl.sweep`, `kl.energy`, `kl.check_lyapunov`, the save path
and `kl.testing.check_model_contract`.

- `PendulumChain`: a damped chain of pendula with (h, v) state of shape (2, osc) on a
  vector space (identity retraction), with an energy that the damping dissipates:
  dh_i = v_i, dv_i = -gamma v_i - sin h_i + k (h_{i+1} - 2 h_i + h_{i-1}) (periodic),
  E = sum_i [v_i^2 / 2 + 1 - cos h_i] + k/2 sum_i (h_{i+1} - h_i)^2,
  dE/dt = -gamma sum_i v_i^2 <= 0 (exact: checked by autodiff along the flow).
- `WinfreeRing`: a phase model with a custom drift on the torus (inherits wrapping and
  turn counting from `AbstractPhaseModel`): dtheta_i = omega_i + (K/N) sum_j (1 + cos
  theta_j) (-sin theta_i).
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab._models.base import (
    AbstractModel,
    AbstractPhaseModel,
    LyapunovHypotheses,
)

N = 6


def _laplacian(h):
    return jnp.roll(h, 1) - 2 * h + jnp.roll(h, -1)


class PendulumChain(AbstractModel):
    gamma: jax.Array
    k: jax.Array
    n: int = eqx.field(static=True)

    state_dims: ClassVar[tuple[str, ...]] = ("component", "osc")
    state_name: ClassVar[str] = "hv"
    energy_description: ClassVar[str] = "pendulum chain energy"

    def __init__(self, gamma, k, n=N):
        self.gamma = jnp.asarray(gamma, float)
        self.k = jnp.asarray(k, float)
        self.n = n

    @property
    def state_shape(self):
        return (2, self.n)

    def drift(self, t, y, y_delayed=None):
        h, v = y
        dv = -self.gamma * v - jnp.sin(h) + self.k * _laplacian(h)
        return jnp.stack([v, dv])

    def energy(self, y, t=0.0):
        h, v = y
        bonds = jnp.roll(h, -1) - h
        return jnp.sum(0.5 * v**2 + 1 - jnp.cos(h)) + 0.5 * self.k * jnp.sum(bonds**2)

    def lyapunov_hypotheses(self, *, max_dense):
        defects = {"damping_nonnegative": max(0.0, -float(self.gamma))}
        return LyapunovHypotheses(
            defects,
            {"damping_nonnegative": "gamma >= 0"},
            lambda holds: "dissipation" if all(holds.values()) else "none",
        )


class WinfreeRing(AbstractPhaseModel):
    omega: jax.Array
    K: jax.Array

    def __init__(self, omega, K):
        self.omega = jnp.asarray(omega, float)
        self.K = jnp.asarray(K, float)

    @property
    def state_shape(self):
        return self.omega.shape

    def drift(self, t, y, y_delayed=None):
        influence = jnp.mean(1 + jnp.cos(y))
        return self.omega - self.K * influence * jnp.sin(y)


def _pendulum_y0(key):
    return jnp.stack([jax.random.uniform(key, (N,), minval=-2, maxval=2), jnp.zeros(N)])


def test_check_model_contract_accepts_both_new_models():
    key = jax.random.key(0)
    kl.testing.check_model_contract(PendulumChain(0.3, 0.5), _pendulum_y0(key))
    omega = jnp.linspace(0.5, 1.5, N)
    kl.testing.check_model_contract(WinfreeRing(omega, 0.8), kl.random_phases(key, N))


def test_check_model_contract_rejects_a_broken_layout():
    class Leaky(PendulumChain):
        def retract(self, Y):  # not idempotent: a broken retraction
            y, aux = Y
            return (0.5 * y, aux)

    with pytest.raises(AssertionError, match="retract is not idempotent"):
        kl.testing.check_model_contract(Leaky(0.3, 0.5), _pendulum_y0(jax.random.key(0)))


def test_pendulum_energy_and_lyapunov_check():
    model = PendulumChain(0.3, 0.5)
    y = _pendulum_y0(jax.random.key(1)).at[1].set(jnp.linspace(-1, 1, N))
    h, v = np.asarray(y, np.float64)
    by_hand = np.sum(0.5 * v**2 + 1 - np.cos(h)) + 0.25 * np.sum((np.roll(h, -1) - h) ** 2)
    np.testing.assert_allclose(float(kl.energy(model, y)), by_hand, rtol=1e-6)
    ds = kl.check_lyapunov(model, y, t1=5.0, dt=0.01)
    assert ds.attrs["theorem"] == "dissipation"
    assert ds.attrs["verdict"] == "lyapunov"
    # dE/dt = -gamma sum v^2 along the flow, exactly (autodiff of E along the drift)
    traj = kl.simulate(model, y, t1=5.0, dt=0.01)
    expected = -0.3 * np.sum(np.asarray(traj.ys[:, 1]) ** 2, axis=-1)
    np.testing.assert_allclose(ds.dEdt.values, expected, rtol=1e-4, atol=1e-6)
    # an undamped-but-driven (gamma < 0) chain breaks the hypothesis and gains energy
    bad = kl.check_lyapunov(PendulumChain(-0.3, 0.5), y, t1=5.0, dt=0.01)
    assert bad.attrs["verdict"] == "counterexample"


def test_pendulum_is_saved_with_its_own_dims():
    model = PendulumChain(0.3, 0.5)
    traj = kl.simulate(model, _pendulum_y0(jax.random.key(2)), t1=1.0, dt=0.1)
    assert traj.turns is None  # a vector space keeps no bookkeeping
    ds = traj.to_dataset()
    assert ds["hv"].dims == ("time", "component", "osc")
    assert ds.sizes == {"time": 11, "component": 2, "osc": N}
    np.testing.assert_array_equal(ds["hv"].values, np.asarray(traj.ys))


def test_winfree_turns_and_wrapping():
    # K = 0: free rotation, unwrapped phase = theta0 + omega t exactly (RK4 of a constant)
    omega = jnp.linspace(0.5, 1.5, N)
    theta0 = kl.random_phases(jax.random.key(3), N)
    traj = kl.simulate(WinfreeRing(omega, 0.0), theta0, t1=20.0, dt=0.05)
    assert float(jnp.max(traj.ys)) < math.pi and float(jnp.min(traj.ys)) >= -math.pi
    np.testing.assert_allclose(
        traj.unwrapped()[-1], theta0 + 20.0 * omega, rtol=0, atol=2e-4
    )
    assert traj.to_dataset()["theta"].dims == ("time", "osc")


def test_new_models_run_through_sweep():
    def make_pendulum(gamma):
        return PendulumChain(gamma, 0.5), _pendulum_y0(jax.random.key(4))

    gammas = jnp.array([0.1, 0.5, 1.0])
    ds = kl.sweep(make_pendulum, {"gamma": gammas}, t1=4.0, dt=0.02, observe=["energy"])
    assert ds["energy"].dims == ("gamma",)
    # stronger damping dissipates more: the window-mean energy falls with gamma
    e = ds["energy"].values
    assert e[0] > e[1] > e[2]
    # the same point by hand: mean of kl.energy over the saved window
    one = kl.sweep(make_pendulum, {"gamma": gammas[:1]}, t1=4.0, dt=0.02,
                   observe=["energy"])
    np.testing.assert_allclose(one["energy"].values[0], e[0], rtol=1e-6)

    def make_winfree(K):
        return WinfreeRing(jnp.linspace(0.9, 1.1, N), K), jnp.linspace(-2.0, 2.0, N)

    ds = kl.sweep(make_winfree, {"K": jnp.array([0.0, 3.0])}, t1=30.0, dt=0.05,
                  observe=["R", "Omega"])
    R = ds["R"].values
    assert 0 <= R[0] <= 1 and 0 <= R[1] <= 1
    assert R[1] > R[0]  # strong Winfree coupling synchronises the ring
    np.testing.assert_allclose(ds["Omega"].values[0], 1.0, atol=1e-3)  # free: mean omega
