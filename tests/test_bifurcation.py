"""kl.equilibria: continuation of equilibria through the model contract, with folds,
branch points and Hopf points at analytic parameter values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl


class FitzHughNagumo(kl.AbstractModel):
    """v' = v - v^3/3 - w + I,  w' = eps (v + a - b w); the parameter is I."""

    I: jax.Array
    a: float = 0.7
    b: float = 0.8
    eps: float = 0.08

    @property
    def state_shape(self):
        return (2,)

    def drift(self, t, y, y_delayed=None):
        v, w = y[0], y[1]
        return jnp.stack([v - v**3 / 3 - w + self.I, self.eps * (v + self.a - self.b * w)])


def _fhn_hopf():
    # trace J = 1 - v^2 - eps b = 0 at the lower Hopf: v* = -sqrt(1 - eps b)
    a, b, eps = 0.7, 0.8, 0.08
    v = -np.sqrt(1 - eps * b)
    w = (v + a) / b
    return w - v + v**3 / 3, v


def test_fitzhugh_nagumo_hopf_point_at_its_analytic_current(x64):
    I_H, v_H = _fhn_hopf()
    # start on the resting state at I = 0 (v* solves v - v^3/3 - (v + a)/b = 0)
    ds = kl.equilibria(lambda I: FitzHughNagumo(I), jnp.array([-1.199, -0.624]),
                       p0=0.0, ds=0.05, bounds=(-0.5, 0.6), name="I")
    hopf = ds.where(ds.kind == kl.HOPF, drop=True)
    assert hopf.sizes["point"] >= 1
    assert abs(float(hopf.I[0]) - I_H) < 1e-6
    assert abs(float(hopf.y[0, 0]) - v_H) < 1e-6
    ev = hopf.eigenvalues.values[0]
    assert abs(ev[0].real) < 1e-6 and abs(ev[0].imag) > 0.1
    # stable before the Hopf, unstable after it
    I = ds.I.values
    assert np.all(ds.stable.values[I < I_H - 1e-3] == 1)
    assert np.all(ds.stable.values[(I > I_H + 1e-3) & (I < 0.6)] == 0)
    assert ds.attrs["n_folds"] == 0


def test_three_oscillator_pitchfork_and_fold_at_analytic_couplings(x64):
    # omega = (-a, 0, a), mean field K: the symmetric branch theta = (-phi, 0, phi) has
    # a/K = (sin phi + sin 2 phi)/3; fold where cos phi + 2 cos 2 phi = 0, and the
    # symmetry-breaking branch point (pitchfork) at phi = pi/2, K = 3a.
    a = 0.5
    omega = jnp.array([-a, 0.0, a])
    c = (-1 + np.sqrt(33)) / 8
    phi_f = np.arccos(c)
    K_fold = 3 * a / (np.sin(phi_f) + np.sin(2 * phi_f))
    K0 = 3.0
    phi0 = np.arcsin(omega / K0 * 1.0)
    ds = kl.equilibria(
        lambda K: kl.Kuramoto(omega, kl.MeanField(K)), jnp.asarray(phi0), p0=K0,
        ds=0.05, direction=-1, bounds=(0.5, 2.5 * 3 * a), frame="co-rotating",
        name="K", max_steps=300,
    )
    folds = ds.K.values[ds.kind.values == kl.FOLD]
    bps = ds.K.values[ds.kind.values == kl.BRANCH_POINT]
    assert folds.size >= 1 and abs(folds[0] - K_fold) < 1e-6
    assert bps.size >= 1 and abs(bps[0] - 3 * a) < 1e-6
    # the starting (upper) branch is stable, the branch after the fold is not
    first = ds.isel(point=slice(0, int(np.argmax(ds.kind.values == kl.FOLD))))
    assert np.all(first.stable.values == 1)
    assert np.all(np.abs(ds.Omega.values) < 1e-8)


def test_bad_input():
    with pytest.raises(ValueError, match="`frame` must be one of"):
        kl.equilibria(lambda I: FitzHughNagumo(I), jnp.zeros(2), p0=0.0, ds=0.1,
                      frame="rotating")
    with pytest.raises(ValueError, match="state shape"):
        kl.equilibria(lambda I: FitzHughNagumo(I), jnp.zeros(3), p0=0.0, ds=0.1)
    with pytest.raises(ValueError, match="`ds` must be"):
        kl.equilibria(lambda I: FitzHughNagumo(I), jnp.zeros(2), p0=0.0, ds=0.0)
