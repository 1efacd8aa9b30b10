"""Gradients through every solver path against central finite differences, in float64.

Error budget (x64, eps = machine epsilon 2.2e-16): a central difference with step h has
truncation error h^2 |L'''| / 6 and rounding error ~ eps |L| / h. With h = 1e-5 and
|L|, |L'''| = O(1..10) both are below 1e-9, three orders under the asserted relative
1e-6. Adaptive runs: the discrete solution moves by O(tol) when the accepted step sequence
changes, so the difference quotient carries an extra O(tol / h); with tol = 1e-12 and
h = 1e-4 that is 1e-8. Every derivative is a directional one along a fixed random
direction, so one finite difference checks all parameters at once.

(`kl.sweep` returns an `xarray.Dataset` of NumPy arrays and is not differentiable by
design; its gradients are those of `kl.simulate` under `jax.vmap`, checked here by
`test_grad_through_vmapped_simulate`.)
"""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab._coupling import BlockCoupling
from kuralab._models.sphere import SkewOmega, SphereKuramoto

# Each test compiles a forward and a reverse (or forward-mode) solve: ~10-100 s apiece on
# a loaded 2-core machine, so the file runs with the slow suite.
pytestmark = pytest.mark.slow

RTOL = 1e-6
N = 4


def _smooth(y):
    """A smooth, 2 pi-periodic loss of a phase state."""
    return jnp.sum(jnp.cos(y)) + jnp.sum(jnp.sin(2 * y))


def _problem():
    rng = np.random.default_rng(11)
    omega = jnp.asarray(rng.normal(0, 0.5, N))
    K = jnp.asarray(rng.uniform(0.0, 0.8, (N, N)))
    y0 = jnp.asarray(rng.uniform(-np.pi, np.pi, N))
    direction = jnp.asarray(rng.standard_normal((N, N)))
    return omega, K, y0, direction / jnp.linalg.norm(direction)


def _check(loss, K, direction, *, h=1e-5, forward=False):
    """Directional derivative of `loss` at K along `direction`: autodiff vs central FD."""
    if forward:
        _, ad = jax.jvp(loss, (K,), (direction,))
    else:
        ad = jnp.sum(jax.grad(loss)(K) * direction)
    fd = (loss(K + h * direction) - loss(K - h * direction)) / (2 * h)
    ad, fd = float(ad), float(fd)
    assert abs(fd) > 1e-3, "degenerate check: the derivative is ~0"
    assert abs(ad - fd) <= RTOL * abs(fd), (ad, fd, abs(ad - fd) / abs(fd))


@pytest.mark.parametrize("solver", ["tsit5", "dopri5"])
def test_grad_adaptive_with_controller(x64, solver):
    omega, K0, y0, v = _problem()
    ctrl = dfx.PIDController(rtol=1e-12, atol=1e-12)

    def loss(K):
        tr = kl.simulate(kl.Kuramoto(omega, kl.DenseCoupling(K)), y0, t1=2.0, dt=0.1,
                         solver=solver, stepsize_controller=ctrl, max_steps=20_000,
                         saveat=kl.SaveAt(final=True))
        return _smooth(tr.final)

    _check(loss, K0, v, h=1e-4)


def test_grad_heun(x64):
    omega, K0, y0, v = _problem()

    def loss(K):
        tr = kl.simulate(kl.Kuramoto(omega, kl.DenseCoupling(K), lag=0.2), y0, t1=2.0,
                         dt=0.05, solver="heun", saveat=kl.SaveAt(final=True))
        return _smooth(tr.final)

    _check(loss, K0, v)


def test_grad_akorn_step(x64):
    # AKOrN's projected update x <- Pi[x + gamma f(x)] through 20 steps.
    rng = np.random.default_rng(12)
    n, d = 5, 3
    x0 = kl.random_sphere(jax.random.key(1), n, dim=d)
    c = jnp.asarray(rng.standard_normal((n, d)))
    omega = jnp.asarray(rng.standard_normal((n, d, d)))
    J0 = jnp.asarray(rng.standard_normal((n, n)))
    v = jnp.asarray(rng.standard_normal((n, n)))
    v = v / jnp.linalg.norm(v)
    w = jnp.asarray(rng.standard_normal((n, d)))

    def loss(J):
        model = SphereKuramoto(SkewOmega(omega - jnp.swapaxes(omega, -1, -2)),
                               kl.DenseCoupling(J), c)
        tr = kl.simulate(model, x0, t1=2.0, dt=0.1, solver="akorn",
                         saveat=kl.SaveAt(final=True))
        return jnp.sum(w * tr.final)

    _check(loss, J0, v)


@pytest.mark.parametrize("solver", ["sra1", "shark"])
def test_grad_levy_area_sde_solvers(x64, solver):
    # The virtual Brownian tree fixes the path for a fixed key: L(K) is smooth.
    omega, K0, y0, v = _problem()

    def loss(K):
        model = kl.Kuramoto(omega, kl.DenseCoupling(K), noise=kl.Noise(0.05))
        tr = kl.simulate(model, y0, t1=2.0, dt=0.05, solver=solver,
                         key=jax.random.key(3), saveat=kl.SaveAt(final=True))
        return _smooth(tr.final)

    _check(loss, K0, v)


def test_forward_mode_with_brownian_increments(x64):
    # "increments" draws the same path for the same key and step grid; forward mode only.
    omega, K0, y0, v = _problem()

    def loss(K):
        model = kl.Kuramoto(omega, kl.DenseCoupling(K), noise=kl.Noise(0.05))
        tr = kl.simulate(model, y0, t1=2.0, dt=0.05, solver="euler", brownian="increments",
                         key=jax.random.key(4), saveat=kl.SaveAt(final=True))
        return _smooth(tr.final)

    _check(loss, K0, v, forward=True)


def test_grad_kuranet_delay_convention(x64):
    omega, K0, y0, v = _problem()
    tau = jnp.array([0, 3, 1, 5])  # Euler steps

    def loss(K):
        model = kl.Kuramoto(omega, kl.DenseCoupling(K),
                            delays=kl.Delays(tau, convention="kuranet"))
        tr = kl.simulate(model, y0, t1=2.0, dt=0.05, solver="euler",
                         saveat=kl.SaveAt(final=True))
        return _smooth(tr.final)

    _check(loss, K0, v)


def test_grad_with_respect_to_delay(x64):
    # d/dtau of a physically delayed model. The history is interpolated between grid
    # points, so L(tau) is smooth while every t_k - tau stays inside one grid cell:
    # tau = 0.537 with dt = 0.05 sits 0.013 from the cell edges, far beyond h = 1e-6.
    omega, K, y0, _ = _problem()
    v = jnp.asarray([1.0, -0.5, 0.3, 0.8]) / np.sqrt(1 + 0.25 + 0.09 + 0.64)

    def loss(tau):
        model = kl.Kuramoto(omega, kl.DenseCoupling(K),
                            delays=kl.Delays(tau, max_delay=1.0))
        tr = kl.simulate(model, y0, t1=2.0, dt=0.05, solver="rk4",
                         saveat=kl.SaveAt(final=True))
        return _smooth(tr.final)

    _check(loss, jnp.full(N, 0.537), v, h=1e-6)


def test_grad_through_vmapped_simulate(x64):
    # What kl.sweep runs: simulate under vmap over a parameter axis, reduced to R.
    omega, K0, y0, v = _problem()
    scales = jnp.array([0.5, 1.0, 2.0])

    def loss(K):
        def one(s):
            tr = kl.simulate(kl.Kuramoto(omega, kl.DenseCoupling(s * K)), y0, t1=2.0,
                             dt=0.05, saveat=kl.SaveAt(final=True))
            return jnp.abs(kl.order_parameter(tr.final))

        return jnp.sum(jax.vmap(one)(scales) ** 2)

    _check(loss, K0, v)


def test_grad_block_coupling_sphere(x64):
    # A non-scalar BlockCoupling on the sphere under rk4 + retraction.
    rng = np.random.default_rng(13)
    n, d = 3, 3
    x0 = kl.random_sphere(jax.random.key(2), n, dim=d)
    B0 = jnp.asarray(rng.standard_normal((n, n, d, d)))
    v = jnp.asarray(rng.standard_normal((n, n, d, d)))
    v = v / jnp.linalg.norm(v)
    w = jnp.asarray(rng.standard_normal((n, d)))

    def loss(B):
        model = SphereKuramoto(None, BlockCoupling(B), jnp.zeros((n, d)))
        tr = kl.simulate(model, x0, t1=1.0, dt=0.05, saveat=kl.SaveAt(final=True))
        return jnp.sum(w * tr.final)

    _check(loss, B0, v)
