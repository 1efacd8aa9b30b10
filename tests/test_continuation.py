"""Locked states and their continuation (`kuralab._continuation`), on cases with a known
answer: two oscillators (saddle-node at |dw| = 2K), small mean-field networks (locking
threshold K_L from the self-consistency, computed independently here with SciPy), the
Sakaguchi identity Omega = mean(omega) - K R^2 sin(alpha), a forced oscillator (fold at
h = |omega|); stability checked against the analytic Jacobian and a simulation."""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from scipy.optimize import minimize_scalar

import kuralab as kl
from kuralab import continuation, locked_state
from kuralab.theory import locking_threshold

# ---------------------------------------------------------------------------------
# Cases (module level: one function object per case means one compilation)
# ---------------------------------------------------------------------------------

DW = 1.0  # two oscillators: omega = (+DW/2, -DW/2), K each way; fold at K = DW/2
TWO_OMEGA = np.array([DW / 2, -DW / 2])
PAIR = np.array([[0.0, 1.0], [1.0, 0.0]])


def two_oscillators(K):
    return kl.Kuramoto(TWO_OMEGA, kl.DenseCoupling(PAIR, strength=K))


class MeanFieldK(eqx.Module):
    """K -> mean-field model; arrays are traced, so equal shapes share a compile."""

    omega: jax.Array

    def __call__(self, K):
        return kl.Kuramoto(self.omega, kl.MeanField(K))


LAG_OMEGA = np.array([-0.6, 0.1, 0.5])
LAG_K = 2.0  # the locked state is lost in a fold at alpha ~ 0.9615 (K cos alpha ~ 1.15)


def with_lag(alpha):
    # = MeanField(LAG_K) as an edge list; built here, in the caller's dtype
    all_to_all = kl.SparseCoupling.from_dense(np.full((3, 3), LAG_K / 3))
    return kl.Kuramoto(LAG_OMEGA, all_to_all, lag=alpha)


def forced(h):
    return kl.Kuramoto(np.array([1.0]), kl.MeanField(0.0), forcing=kl.Forcing(h))


def frequencies(n: int) -> np.ndarray:
    return np.sort(np.random.default_rng(n).uniform(-1.0, 1.0, n))


def independent_K_L(omega) -> float:
    """min over u >= max|delta| of u / r(u), r(u) = mean sqrt(1 - delta^2/u^2), by a
    bounded scalar minimisation (not the root-finding used by the library)."""
    d = np.asarray(omega, np.float64) - np.mean(omega)
    dmax = np.max(np.abs(d))

    def K_of_u(u):
        return u / np.mean(np.sqrt(np.clip(1 - (d / u) ** 2, 0, None)))

    grid = np.linspace(dmax, 3 * dmax, 20001)
    k = int(np.argmin([K_of_u(u) for u in grid]))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = minimize_scalar(
        K_of_u, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}
    )
    return float(res.fun)


@functools.cache
def two_oscillator_branch() -> xr.Dataset:
    with jax.enable_x64(True):
        return continuation(
            two_oscillators,
            jnp.array([0.0, -0.2]),
            p0=2.0,
            ds=0.05,
            direction=-1,
            bounds=(0.1, 2.0),
            name="K",
            units="rad/time",
        )


@functools.cache
def mean_field_branch(n: int) -> xr.Dataset:
    omega = frequencies(n)
    K0 = 2.0 * independent_K_L(omega)
    with jax.enable_x64(True):
        guess = jnp.arcsin((omega - omega.mean()) / K0)
        return continuation(
            MeanFieldK(jnp.asarray(omega)),
            guess,
            p0=K0,
            ds=0.05,
            direction=-1,
            bounds=(0.0, K0),
            name="K",
        )


# ---------------------------------------------------------------------------------
# Two oscillators
# ---------------------------------------------------------------------------------


def test_two_oscillators_fold_and_spectrum():
    ds = two_oscillator_branch()
    fold = ds.fold.values == 1
    assert fold.sum() == 1 and ds.attrs["n_folds"] == 1
    assert abs(float(ds.K[fold][0]) - DW / 2) < 1e-9
    # Through the fold onto the saddle branch, back up to the bound K = 2.
    assert ds.attrs["stop_reason"] == "bounds"
    assert ds.K.values[-1] == 2.0 and ds.K.values.min() == pytest.approx(DW / 2)
    np.testing.assert_array_equal(np.unique(ds.branch), [0, 1])
    # Adler: sin(dphi) = -DW / 2K; Omega = mean omega; eigenvalue -2K cos(dphi).
    K, dphi = ds.K.values, ds.phi.values[:, 1] - ds.phi.values[:, 0]
    np.testing.assert_allclose(np.sin(dphi), -DW / (2 * K), atol=1e-10, rtol=0)
    np.testing.assert_allclose(ds.Omega, TWO_OMEGA.mean(), atol=1e-12, rtol=0)
    assert ds.sizes["mode"] == 1
    np.testing.assert_allclose(
        ds.eigenvalues[:, 0].real, -2 * K * np.cos(dphi), atol=1e-9, rtol=0
    )
    np.testing.assert_allclose(ds.eigenvalues.imag, 0, atol=1e-12, rtol=0)
    regular = ~fold
    np.testing.assert_array_equal(
        ds.stable.values[regular], (np.cos(dphi[regular]) > 0).astype(np.int8)
    )
    np.testing.assert_array_equal(ds.stable.values[ds.branch.values == 0][:-1], 1)
    np.testing.assert_array_equal(ds.stable.values[ds.branch.values == 1], 0)
    assert float(ds.residual.max()) < 1e-10
    assert np.all(np.diff(ds.arclength) > 0)


def test_dataset_layout_and_round_trip(tmp_path):
    ds = two_oscillator_branch()
    assert set(ds.dims) == {"point", "osc", "mode"}
    for name, var in ds.variables.items():
        assert "long_name" in var.attrs, name
    for name in ds.data_vars:
        assert "units" in ds[name].attrs, name
    assert ds.stable.dtype == np.int8 and ds.fold.dtype == np.int8
    assert ds.K.attrs["units"] == "rad/time"
    back = kl.io.load(kl.io.save(ds, tmp_path / "branch.nc"))
    xr.testing.assert_identical(back, ds.assign_attrs(kl.io.provenance_of(back)))


# ---------------------------------------------------------------------------------
# Mean-field networks: the locking threshold
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n",
    [
        3,
        pytest.param(4, marks=pytest.mark.slow),
        5,
        pytest.param(6, marks=pytest.mark.slow),
    ],
)
def test_mean_field_fold_is_locking_threshold(n):
    omega = frequencies(n)
    K_L = independent_K_L(omega)
    assert locking_threshold(omega) == pytest.approx(K_L, abs=1e-10)
    ds = mean_field_branch(n)
    fold = ds.fold.values == 1
    assert fold.sum() >= 1
    assert abs(float(ds.K[fold][0]) - K_L) < 1e-6
    assert float(ds.K.min()) == pytest.approx(K_L, abs=1e-9)  # nothing locks below
    np.testing.assert_allclose(ds.Omega, omega.mean(), atol=1e-12, rtol=0)
    assert float(ds.residual.max()) < 1e-10
    # Stable above the fold (all cos > 0), a saddle with exactly one unstable
    # direction after it.
    before = (ds.branch.values == 0) & ~fold
    after = ds.branch.values == 1
    np.testing.assert_array_equal(ds.stable.values[before], 1)
    np.testing.assert_array_equal(ds.stable.values[after], 0)
    n_unstable = (ds.eigenvalues.real.values > 1e-9).sum(axis=1)
    np.testing.assert_array_equal(n_unstable[after], 1)
    Z = np.exp(1j * ds.phi.values).mean(axis=1, keepdims=True)
    cos = np.cos(ds.phi.values - np.angle(Z))
    assert np.all(cos[before] > 0)


def test_stability_predicts_simulation():
    """A stable and an unstable locked state at the same K (refined by locked_state
    from the branch), perturbed and integrated: the first stays, the second leaves."""
    n = 5
    omega = frequencies(n)
    ds = mean_field_branch(n)
    K = 1.3 * independent_K_L(omega)
    with jax.enable_x64(True):
        model = kl.Kuramoto(jnp.asarray(omega), kl.MeanField(K))
        states = []
        for b in (0, 1):
            on = ds.where(ds.branch == b, drop=True)
            guess = on.phi.values[int(np.argmin(np.abs(on.K.values - K)))]
            states.append(locked_state(model, jnp.asarray(guess)))
        stable, saddle = states
        assert stable.converged and saddle.converged
        assert stable.stable and not saddle.stable
        assert stable.Omega == pytest.approx(omega.mean(), abs=1e-12)
        assert stable.eigenvalues.shape == (n - 1,)
        growth = saddle.max_real_eig
        t1 = float(np.ceil(12.0 / growth))
        kick = 1e-4 * np.random.default_rng(0).standard_normal(n)
        y0 = jnp.asarray(np.stack([stable.phi + kick, saddle.phi + kick]))
        ys = jax.vmap(
            lambda y: kl.simulate(
                model, y, t1=t1, dt=0.05, saveat=kl.SaveAt(final=True)
            ).ys[-1]
        )(y0)
    rel = np.asarray(ys) - np.asarray(ys)[:, :1]
    dist = np.abs(np.angle(np.exp(1j * (rel - np.stack([stable.phi, saddle.phi])))))
    assert dist[0].max() < 1e-6  # decays at rate |stable.max_real_eig|
    assert dist[1].max() > 0.1


# ---------------------------------------------------------------------------------
# Other parameters and frames
# ---------------------------------------------------------------------------------


def test_continuation_in_lag_sakaguchi_identity(x64):
    omega = LAG_OMEGA
    ds = continuation(
        with_lag,
        jnp.asarray(np.arcsin((omega - omega.mean()) / LAG_K)),
        p0=0.0,
        ds=0.1,
        bounds=(0.0, 0.9),
        name="alpha",
        units="rad",
    )
    assert ds.attrs["stop_reason"] == "bounds" and ds.alpha.values[-1] == 0.9
    assert ds.attrs["n_folds"] == 0
    # Summing the locking equations: Omega = mean(omega) - K R^2 sin(alpha), exactly.
    expect = omega.mean() - LAG_K * ds.R**2 * np.sin(ds.alpha)
    np.testing.assert_allclose(ds.Omega, expect, atol=1e-12, rtol=0)
    assert float(ds.Omega[0]) == pytest.approx(omega.mean(), abs=1e-12)
    assert float(ds.residual.max()) < 1e-10
    assert np.all(ds.stable == 1)


def test_float32_default():
    """kuralab's default dtype: the same branch, to float32 accuracy."""
    ds = continuation(
        two_oscillators,
        jnp.array([0.0, -0.2], jnp.float32),
        p0=2.0,
        ds=0.05,
        direction=-1,
        bounds=(0.1, 2.0),
        name="K",
    )
    assert ds.attrs["tol"] > 1e-7  # the float32 default tolerance
    fold = ds.fold.values == 1
    assert fold.sum() == 1 and abs(float(ds.K[fold][0]) - DW / 2) < 1e-4
    assert float(ds.residual.max()) <= ds.attrs["tol"]
    dphi = ds.phi.values[:, 1]
    np.testing.assert_allclose(np.sin(dphi), -DW / (2 * ds.K), atol=1e-5, rtol=0)


def test_forced_oscillator_fold(x64):
    """theta' = omega + h sin(-theta): locked (Omega = 0) iff h >= |omega|; the
    eigenvalue is -h cos(phi)."""
    ds = continuation(
        forced,
        jnp.array([0.3]),
        p0=3.0,
        ds=0.1,
        direction=-1,
        bounds=(0.0, 3.0),
        name="h",
    )
    assert ds.attrs["frame"].startswith("forcing")
    fold = ds.fold.values == 1
    assert fold.sum() == 1 and abs(float(ds.h[fold][0]) - 1.0) < 1e-9
    np.testing.assert_array_equal(ds.Omega, 0.0)
    phi = ds.phi.values[:, 0]
    np.testing.assert_allclose(np.sin(phi), 1.0 / ds.h, atol=1e-10, rtol=0)
    np.testing.assert_allclose(ds.max_real_eig, -ds.h * np.cos(phi), atol=1e-9, rtol=0)


# ---------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------


def _call(**overrides):
    kwargs = dict(p0=2.0, ds=0.05, direction=-1, bounds=(0.1, 2.0))
    kwargs.update(overrides)
    make = kwargs.pop("make", two_oscillators)
    phi0 = kwargs.pop("phi0", jnp.array([0.0, -0.2]))
    return continuation(make, phi0, **kwargs)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(phi0=jnp.zeros(3)), "`phi0` must have shape \\(2,\\)"),
        (dict(phi0=jnp.array([0.0, jnp.nan])), "`phi0` must hold finite"),
        (dict(ds=0.0), "`ds` must be a finite number > 0"),
        (dict(ds=-0.1), "`ds`"),
        (dict(direction=0), "`direction` must be \\+1 or -1"),
        (dict(bounds=(3.0, 4.0)), "`bounds` must satisfy"),
        (dict(bounds=(1.0,)), "`bounds` must be a pair"),
        (dict(p0=math.inf, bounds=(0.0, math.inf)), "`p0` must be finite"),
        (dict(name="phi"), "`name` must be an identifier"),
        (dict(max_steps=0), "`max_steps` must be a positive int"),
        (dict(tol=-1.0), "`tol`"),
        (
            dict(
                make=lambda K: kl.Kuramoto(
                    TWO_OMEGA, kl.MeanField(K), noise=kl.Noise(0.1)
                )
            ),
            "has noise",
        ),
        (
            dict(
                make=lambda K: kl.Kuramoto(
                    TWO_OMEGA, kl.MeanField(K), delays=kl.Delays(0.5)
                )
            ),
            "delays",
        ),
        (
            dict(
                make=lambda K: kl.Kuramoto(TWO_OMEGA, kl.MeanField(kl.Linear(0.0, 1.0)))
            ),
            "time-dependent",
        ),
        (
            dict(
                make=lambda K: kl.Kuramoto(np.array([1.0]), kl.MeanField(K)),
                phi0=jnp.zeros(1),
            ),
            "single unforced oscillator",
        ),
    ],
)
def test_bad_arguments(overrides, match):
    with pytest.raises(ValueError, match=match):
        _call(**overrides)


def test_bad_model_type():
    with pytest.raises(TypeError, match="must be a kl.Kuramoto"):
        _call(make=lambda K: "not a model")


def test_unlocked_start_is_rejected(x64):
    # |dw| = 1 > 2K = 0.6: no locked state exists at p0 = 0.3.
    with pytest.raises(ValueError, match="did not converge from `phi0`.*p0 = 0.3"):
        _call(p0=0.3, bounds=(0.1, 2.0))
    # Below K_L (the same shape as in test_stability_predicts_simulation: one compile).
    omega = frequencies(5)
    model = kl.Kuramoto(
        jnp.asarray(omega), kl.MeanField(0.5 * locking_threshold(omega))
    )
    guess = jnp.asarray(np.arcsin(omega - omega.mean()))
    with pytest.raises(ValueError, match="from `phi_guess`"):
        locked_state(model, guess)
    out = locked_state(model, guess, throw=False)
    assert not out.converged and out.residual > 1e-3


def test_start_at_fold_is_rejected(x64):
    with pytest.raises(ValueError, match="at a fold"):
        _call(p0=DW / 2, phi0=jnp.array([0.0, -np.pi / 2]))
