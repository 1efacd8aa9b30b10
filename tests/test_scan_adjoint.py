"""The default fixed-step adjoint (`kl.ScanAdjoint`) and the written-out RK4 step.

Error budgets (float64, eps = 2.2e-16):
- ScanAdjoint and diffrax's RecursiveCheckpointAdjoint differentiate the same discrete
  solution, so their gradients differ only by rounding in a different summation order:
  ~ steps * eps * |g| = 40 * 2e-16, asserted at 1e-10 relative.
- Central finite differences with h = 1e-5: truncation h^2 |L'''| / 6 ~ 1e-10 and
  rounding eps |L| / h ~ 1e-10 for |L|, |L'''| = O(1..10): asserted at 1e-6 relative.
- RK4 against an independent NumPy RK4 (same step, same tableau, float64): rounding
  only, ~ steps * eps = 1e-14; asserted at 1e-12.
"""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl

N, STEPS, DT = 4, 40, 0.05


def _problem():
    rng = np.random.default_rng(5)
    omega = rng.normal(0, 0.5, N)
    K = rng.uniform(0.0, 0.8, (N, N))
    y0 = rng.uniform(-np.pi, np.pi, N)
    direction = rng.standard_normal((N, N))
    return omega, K, y0, direction / np.linalg.norm(direction)


def _loss(omega, y0, adjoint=None, saveat=None):
    def loss(K):
        tr = kl.simulate(
            kl.Kuramoto(omega, kl.DenseCoupling(K)), y0, t1=STEPS * DT, dt=DT,
            saveat=saveat or kl.SaveAt(final=True), adjoint=adjoint,
        )
        y = tr.final if saveat is None else tr.ys
        return jnp.sum(jnp.cos(y)) + jnp.sum(jnp.sin(2 * y))

    return loss


def test_default_adjoint_is_scan_for_fixed_step_only():
    from kuralab._integrate.options import check_adjoint

    assert isinstance(check_adjoint(None, True), kl.ScanAdjoint)
    assert isinstance(check_adjoint(None, False), dfx.RecursiveCheckpointAdjoint)
    mine = dfx.DirectAdjoint()
    assert check_adjoint(mine, True) is mine  # the user's explicit choice is kept


def test_long_runs_fall_back_to_bounded_memory(monkeypatch):
    """Residuals above $KURALAB_SCAN_ADJOINT_MAX (default 2GB) -> checkpointing."""
    from kuralab._integrate.options import check_adjoint

    monkeypatch.delenv("KURALAB_SCAN_ADJOINT_MAX", raising=False)
    assert isinstance(check_adjoint(None, True, 2 * 1024**3), kl.ScanAdjoint)
    big = check_adjoint(None, True, 2 * 1024**3 + 1)
    assert isinstance(big, dfx.RecursiveCheckpointAdjoint)
    monkeypatch.setenv("KURALAB_SCAN_ADJOINT_MAX", "8GB")
    assert isinstance(check_adjoint(None, True, 3 * 1024**3), kl.ScanAdjoint)


@pytest.mark.slow  # two reverse-mode compilations: ~10-25 s on 2 shared cores
def test_scan_adjoint_matches_checkpoint_adjoint_and_fd(x64):
    omega, K, y0, d = _problem()
    omega, K, y0, d = map(jnp.asarray, (omega, K, y0, d))
    g_scan = jax.grad(_loss(omega, y0))(K)  # default: ScanAdjoint
    g_rca = jax.grad(_loss(omega, y0, dfx.RecursiveCheckpointAdjoint()))(K)
    scale = float(jnp.max(jnp.abs(g_rca)))
    assert scale > 1e-3
    assert float(jnp.max(jnp.abs(g_scan - g_rca))) <= 1e-10 * scale
    h, loss = 1e-5, _loss(omega, y0)
    fd = float((loss(K + h * d) - loss(K - h * d)) / (2 * h))
    ad = float(jnp.sum(g_scan * d))
    assert abs(fd) > 1e-3
    assert abs(ad - fd) <= 1e-6 * abs(fd), (ad, fd)


@pytest.mark.slow  # three compilations
def test_scan_adjoint_with_saved_steps_and_forward_mode(x64):
    """Saving every step (the loop's in-place buffer) and jax.jvp through the scan."""
    omega, K, y0, d = map(jnp.asarray, _problem())
    every = kl.SaveAt(every=1)
    g_scan = jax.grad(_loss(omega, y0, saveat=every))(K)
    g_rca = jax.grad(_loss(omega, y0, dfx.RecursiveCheckpointAdjoint(), saveat=every))(K)
    scale = float(jnp.max(jnp.abs(g_rca)))
    assert float(jnp.max(jnp.abs(g_scan - g_rca))) <= 1e-10 * scale
    _, jvp = jax.jvp(_loss(omega, y0, kl.ScanAdjoint(), saveat=every), (K,), (d,))
    assert abs(float(jvp) - float(jnp.sum(g_rca * d))) <= 1e-10 * scale * N


def test_rk4_step_matches_numpy_rk4(x64):
    omega, K, y0, _ = _problem()

    def f(y):
        return omega + np.sum(K * np.sin(y[None, :] - y[:, None]), axis=1)

    y = y0.copy()
    for _ in range(STEPS):
        k1 = f(y)
        k2 = f(y + DT / 2 * k1)
        k3 = f(y + DT / 2 * k2)
        k4 = f(y + DT * k3)
        y = y + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    tr = kl.simulate(
        kl.Kuramoto(jnp.asarray(omega), kl.DenseCoupling(jnp.asarray(K))),
        jnp.asarray(y0), t1=STEPS * DT, dt=DT, saveat=kl.SaveAt(final=True),
    )
    err = np.abs(np.angle(np.exp(1j * (np.asarray(tr.final) - y))))
    assert tr.solver == "rk4"
    assert np.max(err) <= 1e-12


def test_scan_adjoint_rejects_unbounded_solve():
    with pytest.raises(ValueError, match="max_steps"):
        dfx.diffeqsolve(
            dfx.ODETerm(lambda t, y, a: -y), dfx.Euler(), 0.0, 1.0, 0.1, jnp.ones(2),
            adjoint=kl.ScanAdjoint(), max_steps=None,
        )
