"""`kl.sweep`: grid layout, agreement with direct `kl.simulate` runs, the adiabatic chain,
theory (Lorentzian R(K) and locked fraction), and bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab as kl
from kuralab._sweep_kernel import _jitted as _compiled

N = 64
T1, DT = 20.0, 0.1


def make_lorentzian(K, seed):
    kw, kt = jax.random.split(jax.random.key(seed))
    omega = kl.sample_frequencies(kw, N, "lorentzian", scale=0.5)
    return kl.Kuramoto(omega, kl.MeanField(K)), kl.random_phases(kt, N)


def make_small(K, lag):
    omega = jnp.linspace(-0.6, 0.6, 8)
    theta0 = jnp.linspace(-2.0, 2.5, 8)
    return kl.Kuramoto(omega, kl.MeanField(K), lag=lag), theta0


ALL = ("R", "R_std", "Omega", "Omega_std", "Omega_Z", "locked", "R_t", "final")


@pytest.fixture(scope="module")
def grid():
    Ks = np.array([0.5, 1.5, 3.0])
    return Ks, kl.sweep(
        make_lorentzian, {"K": Ks, "seed": [3, 7]}, t1=T1, dt=DT, observe=ALL
    )


def test_layout(grid):
    Ks, ds = grid
    assert ds.R.dims == ("K", "seed")
    assert ds.R_t.dims == ("K", "seed", "time")
    assert ds.final.dims == ("K", "seed", "osc")
    np.testing.assert_array_equal(ds.K, Ks)
    np.testing.assert_array_equal(ds.seed, [3, 7])
    # The window is the second half: saves every step from t1/2 to t1.
    np.testing.assert_allclose(ds.time, np.linspace(T1 / 2, T1, 101), atol=1e-9)
    assert ds.attrs["mode"] == "independent" and ds.attrs["n"] == N
    for name in ALL:
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
    assert float(ds.R.min()) >= 0 and float(ds.R.max()) <= 1
    assert float(ds.locked.min()) >= 0 and float(ds.locked.max()) <= 1


def test_point_agrees_with_direct_simulation(grid):
    """A grid point equals the same computation written with kl.simulate directly."""
    _, ds = grid
    for K, seed in [(1.5, 7), (0.5, 3)]:
        model, theta0 = make_lorentzian(jnp.float32(K), seed)
        pre = kl.simulate(model, theta0, t1=T1 / 2, dt=DT, saveat=kl.SaveAt(final=True))
        win = kl.simulate(model, pre.final, t0=T1 / 2, t1=T1, dt=DT)
        R_t = np.abs(np.mean(np.exp(1j * np.asarray(win.ys)), axis=-1))
        Omega = np.asarray(kl.effective_frequencies(win))
        point = ds.sel(K=K, seed=seed)
        np.testing.assert_allclose(point.R_t, R_t, atol=2e-5)
        np.testing.assert_allclose(point.R, R_t.mean(), atol=2e-5)
        np.testing.assert_allclose(point.R_std, R_t.std(), atol=2e-5)
        np.testing.assert_allclose(point.Omega, Omega.mean(), atol=1e-4)
        np.testing.assert_allclose(point.Omega_std, Omega.std(), atol=1e-4)
        kl.testing.assert_phase_allclose(point.final.values, win.final, atol=1e-4)
        Z = np.mean(np.exp(1j * np.asarray(win.ys)), axis=-1)
        Omega_Z = np.sum(np.angle(Z[1:] / Z[:-1])) / (T1 / 2)
        np.testing.assert_allclose(point.Omega_Z, Omega_Z, atol=1e-3)
        locked = np.mean(np.abs(Omega - Omega_Z) < 2 * np.pi / (T1 / 2))
        np.testing.assert_allclose(point.locked, locked, atol=1e-6)


def test_compiles_once_per_shape(grid):
    """New parameter values and seeds with the same shapes reuse the compilation."""
    before = _compiled("independent")._cache_size()
    ds = kl.sweep(
        make_lorentzian,
        {"K": [0.7, 2.0, 2.5], "seed": [1, 2]},
        t1=T1,
        dt=DT,
        observe=ALL,
    )
    assert _compiled("independent")._cache_size() == before
    assert ds.R.shape == (3, 2)


def test_chunks_do_not_change_data(grid):
    _, ds = grid
    chunked = kl.sweep(
        make_lorentzian,
        {"K": ds.K.values, "seed": [3, 7]},
        t1=T1,
        dt=DT,
        observe=ALL,
        chunk_size=4,  # 6 points: a full chunk and a padded one
    )
    for name in ALL:
        np.testing.assert_array_equal(chunked[name].values, ds[name].values)


def test_zip_and_array_axes():
    omegas = np.stack([np.linspace(-0.5, 0.5, 8), np.linspace(-1, 1, 8)])

    def make(K, lag, omega):
        return kl.Kuramoto(omega, kl.MeanField(K), lag=lag), jnp.zeros(8)

    ds = kl.sweep(
        make,
        {"K": [1.0, 2.0, 3.0], "lag": [0.0, 0.1, 0.2], "omega": omegas},
        zip=("K", "lag"),
        t1=10.0,
        dt=0.1,
        observe=("R", "Omega"),
    )
    assert ds.R.dims == ("K", "omega")
    np.testing.assert_array_equal(ds.lag.values, [0.0, 0.1, 0.2])
    assert ds.lag.dims == ("K",)
    np.testing.assert_array_equal(ds.omega.values, [0, 1])
    # Exact for the mean field with a lag: the population-mean phase velocity is
    # mean(omega) - K R(t)^2 sin(lag) at every instant, so the window average is
    # Omega = mean(omega) - K sin(lag) <R^2> (mean(omega) = 0 here). In the locked
    # state R is stationary (<R^2> = <R>^2 to float32 rounding); the budget 1e-4 covers
    # float32 phase rounding over the 5-unit window (~1e-6) and the transient left at
    # the window start (decay rate ~K: e^-10 at K = 2).
    for K, lag in ((1.0, 0.0), (2.0, 0.1), (3.0, 0.2)):
        R = float(ds.R.sel(K=K, omega=0))
        expected = -K * R**2 * np.sin(lag)
        assert float(ds.Omega.sel(K=K, omega=0)) == pytest.approx(expected, abs=1e-4)


def test_adiabatic_is_a_chain_of_simulations():
    """Each adiabatic step starts from the previous step's end state, up then down."""
    Ks = np.array([2.0, 1.0, 0.3])
    ds = kl.sweep(
        make_small,
        {"K": Ks, "lag": [0.0, 0.5]},
        mode="adiabatic",
        t1=6.0,
        dt=0.1,
        observe=("R", "final"),
    )
    assert ds.R.dims == ("direction", "K", "lag")
    assert list(ds.direction.values) == ["up", "down"]
    for lag in (0.0, 0.5):
        model, y = make_small(jnp.float32(Ks[0]), jnp.float32(lag))
        finals = {}
        for direction, order in (("up", Ks), ("down", Ks[::-1])):
            for K in order:
                model, _ = make_small(jnp.float32(K), jnp.float32(lag))
                pre = kl.simulate(
                    model, y, t1=3.0, dt=0.1, saveat=kl.SaveAt(final=True)
                )
                win = kl.simulate(model, pre.final, t0=3.0, t1=6.0, dt=0.1)
                y = win.final
                finals[direction, K] = win.final
        for (direction, K), final in finals.items():
            got = ds.final.sel(direction=direction, K=K, lag=lag).values
            kl.testing.assert_phase_allclose(got, final, atol=1e-4)


def make_quantile(K):
    omega = kl.sample_frequencies(
        jax.random.key(0), 1500, "lorentzian", scale=0.5, sampling="quantile"
    )
    return kl.Kuramoto(omega, kl.MeanField(K)), kl.random_phases(
        jax.random.key(1), 1500
    )


def test_lorentzian_theory():
    """R(K) = sqrt(1 - 2 gamma / K) and the locked fraction (2/pi) arctan(K R / gamma)
    (oscillators with |omega| <= K R lock) of a large network."""
    gamma, Ks = 0.5, np.array([1.5, 2.5, 4.0])
    ds = kl.sweep(
        make_quantile, {"K": Ks}, t1=60.0, dt=0.1, window=30.0, observe=("R", "locked")
    )
    R = np.sqrt(1 - 2 * gamma / Ks)
    np.testing.assert_allclose(ds.R, R, atol=0.01)
    np.testing.assert_allclose(
        ds.locked, 2 / np.pi * np.arctan(Ks * R / gamma), atol=0.02
    )


def make_sphere(J, seed):
    x0 = kl.random_sphere(jax.random.key(seed), (6,), dim=3)
    return kl.SphereKuramoto(
        None, kl.MeanField(J), jnp.array([0.0, 0.0, 0.3]), n_osc=6
    ), x0


def test_sphere_model_order_parameter_and_energy():
    ds = kl.sweep(
        make_sphere,
        {"J": [0.5, 2.0], "seed": [0]},
        t1=4.0,
        dt=0.05,
        observe=("R", "energy", "final", "trajectory"),
    )
    assert ds.final.dims == ("J", "seed", "osc", "dim")
    assert ds.trajectory.dims == ("J", "seed", "time", "osc", "dim")
    np.testing.assert_allclose(np.linalg.norm(ds.final, axis=-1), 1.0, atol=1e-5)
    x = ds.trajectory.values
    R = np.linalg.norm(x.mean(axis=-2), axis=-1).mean(axis=-1)
    np.testing.assert_allclose(ds.R, R, atol=1e-5)
    for J in (0.5, 2.0):
        model, _ = make_sphere(jnp.float32(J), 0)
        xs = ds.trajectory.sel(J=J, seed=0).values
        E = np.mean([float(kl.energy(model, xi)) for xi in xs])
        np.testing.assert_allclose(ds.energy.sel(J=J, seed=0), E, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="phase model"):
        kl.sweep(
            make_sphere, {"J": [1.0], "seed": [0]}, t1=1.0, dt=0.1, observe="locked"
        )


def make_noisy(D, seed):
    omega = jnp.zeros(400)
    model = kl.Kuramoto(omega, kl.MeanField(1.0), noise=kl.Noise(D))
    return model, jnp.zeros(400)


def test_noisy_sweep_is_reproducible_seeded_and_matches_theory():
    axes = {"D": [0.1, 0.3], "seed": [0, 1]}
    kw = dict(t1=15.0, dt=0.05, window=10.0, observe=("R", "final"))
    a = kl.sweep(make_noisy, axes, **kw)
    b = kl.sweep(make_noisy, axes, **kw)
    np.testing.assert_array_equal(a.final.values, b.final.values)
    f = a.final.values
    assert not np.allclose(f[:, 0], f[:, 1])  # seeds draw different noise paths
    # Stationary R of identical noisy oscillators: R = I1(KR/D)/I0(KR/D) (N -> inf).
    # Error budget: finite N = 400 makes R fluctuate with variance Var(cos phi)/N
    # under the von Mises density (kappa = KR/D), Var(cos) = (1 + I2/I0)/2 - R^2; the
    # window (10 time units, correlation time <= 2 measured) and 2 seeds give >= 10
    # independent samples: 4 standard errors, plus an O(1/N) finite-size bias and the
    # Euler-Maruyama O(D dt) stationary bias (1.5e-2 * 0.1). Measured deviations:
    # 4e-4 (D = 0.1) and 1.4e-3 (D = 0.3); the tolerances are 7e-3 and 2.2e-2, and
    # noise of variance D instead of 2D (R = 0.88 at D = 0.3) fails.
    from scipy.special import iv

    n = 400
    for D in (0.1, 0.3):
        R = float(kl.theory.noisy_order_parameter(1.0, D))
        kappa = R / D
        var_cos = 0.5 * (1 + iv(2, kappa) / iv(0, kappa)) - R**2
        tol = 4 * np.sqrt(var_cos / n) / np.sqrt(10) + 1 / n + 0.1 * D * 0.05
        got = float(a.R.sel(D=D).mean())
        assert abs(got - R) < tol, (D, got, R, tol)


def make_failing(K):
    y0 = jnp.where(K > 1.0, jnp.nan, 0.0) * jnp.ones(4)
    return kl.Kuramoto(jnp.zeros(4), kl.MeanField(K)), y0


def test_failed_point_is_named():
    with pytest.raises(
        kl.SimulationError, match=r"1 of 2 sweep points failed \(first at K = 2"
    ):
        kl.sweep(make_failing, {"K": [0.5, 2.0]}, t1=1.0, dt=0.1, observe="R")
    ds = kl.sweep(
        make_failing, {"K": [0.5, 2.0]}, t1=1.0, dt=0.1, observe="R", throw=False
    )
    assert ds.result.sel(K=0.5) == kl.RESULTS.successful._value
    assert ds.result.sel(K=2.0) != kl.RESULTS.successful._value


def _bad(**kw):
    args = dict(make=make_small, axes={"K": [1.0], "lag": [0.0]}, t1=2.0, dt=0.1)
    args.update(kw)
    return args


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(axes={}), "non-empty dict"),
        (dict(axes={"K": [], "lag": [0.0]}), r"axes\['K'\].*non-empty"),
        (dict(axes={"K": [1.0, math.nan], "lag": [0.0]}), r"axes\['K'\]\[1\].*finite"),
        (dict(axes={"K": ["a"], "lag": [0.0]}), r"axes\['K'\].*numbers"),
        (dict(axes={"K": [1.0], "time": [0.0]}), "reserved"),
        (dict(axes={"K": [1.0], "seed": [0.5]}), "integers"),
        (dict(observe=("R", "Rr")), "unknown observable 'Rr'.*did you mean"),
        (dict(zip=("K", "lag"), axes={"K": [1.0, 2.0], "lag": [0.0]}), "equal lengths"),
        (dict(zip=("K", "lg")), "unknown axis 'lg'"),
        (dict(mode="adiabatic", along="KK"), "`along` = 'KK'"),
        (dict(along="K"), "only used with mode='adiabatic'"),
        (dict(mode="sideways"), "`mode` must be one of"),
        (dict(window=5.0), "`window` must be a duration"),
        (dict(dt=-0.1), "`dt` must be > 0"),
        (dict(t1=0.0), "`t1` must be > t0"),
        (dict(chunk_size=0), "`chunk_size` must be a positive int"),
    ],
)
def test_bad_input(kw, match):
    args = _bad(**kw)
    with pytest.raises(ValueError, match=match):
        kl.sweep(args.pop("make"), args.pop("axes"), **args)


def test_make_must_return_model_and_state():
    with pytest.raises(TypeError, match=r"must return a tuple \(model, y0\)"):
        kl.sweep(lambda K: make_small(K, 0.0)[0], {"K": [1.0]}, t1=1.0, dt=0.1)


def make_delayed(tau, seed):
    """Identical oscillators (omega = 1) with one delay for every sender, started
    near in-phase synchrony."""
    theta0 = 0.25 * kl.random_phases(jax.random.key(seed), 8)
    omega = jnp.ones(8)
    return kl.Kuramoto(
        omega, kl.MeanField(1.0), delays=kl.Delays(tau, max_delay=1.0)
    ), theta0


def test_delayed_sweep_keeps_the_history_into_the_window():
    """A model with delays runs [t0, t1] as one simulation, so the window does not
    restart from a constant history: the in-phase frequency is the root of
    Omega = 1 - sin(Omega tau), as a direct kl.simulate measures it. The window
    starts on the save grid (`R_t` has its times)."""
    from scipy.optimize import brentq

    ds = kl.sweep(
        make_delayed,
        {"tau": [0.5, 1.0], "seed": [0]},
        t1=40.0,
        dt=0.05,
        window=20.0,
        save_every=10,
        observe=("Omega", "R_t", "locked"),
    )
    assert ds.R_t.dims == ("tau", "seed", "time")
    np.testing.assert_allclose(ds.time[[0, -1]], [20.0, 40.0])
    for tau in (0.5, 1.0):
        root = brentq(lambda w, tau=tau: w - 1.0 + np.sin(w * tau), 0.0, 1.0)
        got = float(ds.Omega.sel(tau=tau, seed=0))
        np.testing.assert_allclose(got, root, atol=1e-3)
        model, theta0 = make_delayed(tau, 0)
        traj = kl.simulate(model, theta0, t1=40.0, dt=0.05, saveat=kl.SaveAt(every=10))
        direct = float(np.mean(kl.effective_frequencies(traj, window=20.0)))
        np.testing.assert_allclose(got, direct, rtol=1e-5)
    assert float(ds.locked.min()) == 1.0


@pytest.mark.slow
def test_sweep_under_x64_is_float64_and_agrees_with_direct_simulation(x64):
    """Under x64 every floating output of kl.sweep is float64 and a point equals the
    same float64 computation with kl.simulate to rounding (1e-12), far below float32's
    2e-5 (the float32 grid's budget above)."""
    ds = kl.sweep(make_small, {"K": [0.5, 2.0], "lag": [0.1]}, t1=4.0, dt=0.1,
                  observe=("R", "R_t", "Omega", "final"))
    for name in ("R", "R_t", "Omega", "final"):
        assert ds[name].dtype == np.float64, (name, ds[name].dtype)
    for K in (0.5, 2.0):
        model, theta0 = make_small(jnp.float64(K), jnp.float64(0.1))
        pre = kl.simulate(model, theta0, t1=2.0, dt=0.1, saveat=kl.SaveAt(final=True))
        win = kl.simulate(model, pre.final, t0=2.0, t1=4.0, dt=0.1)
        assert win.ys.dtype == jnp.float64
        R_t = np.abs(np.mean(np.exp(1j * np.asarray(win.ys)), axis=-1))
        point = ds.sel(K=K, lag=0.1)
        np.testing.assert_allclose(point.R_t, R_t, rtol=0, atol=1e-12)
        np.testing.assert_allclose(point.Omega, np.mean(kl.effective_frequencies(win)),
                                   rtol=0, atol=1e-12)
        kl.testing.assert_phase_allclose(point.final.values, win.final, atol=1e-12)


# Hysteresis with exact theory: identical delayed oscillators (K = 2, tau = 1) lock in
# phase at the roots of Omega = w - K sin(Omega tau), stable where K cos(Omega tau) > 0
# (Yeung & Strogatz 1999). As w rises the lower branch loses stability at
# Omega tau = pi/2 (w = pi/2 + K = 3.57); the next stable branch exists from
# Omega tau = 3 pi/2 (w = 3 pi/2 - K = 2.71): both are stable for 2.71 < w < 3.57.
K_BI, TAU_BI, N_BI = 2.0, 1.0, 8


def make_bistable(w, seed):
    theta0 = 0.05 * kl.random_phases(jax.random.key(seed), N_BI)
    delays = kl.Delays(TAU_BI, max_delay=1.0)
    return kl.Kuramoto(jnp.full(N_BI, 1.0) * w, kl.MeanField(K_BI), delays=delays), theta0


@pytest.mark.slow
def test_delayed_sync_is_bistable_with_exact_branches():
    """The two stable roots at w = 3 are both reached by kl.simulate: a constant
    history falls to the lower one, the upper branch's own rotating history stays on
    it (frequencies to 1e-3: the 20-time-unit window's transient)."""
    w = 3.0
    roots, stable = kl.theory.delayed_sync_frequencies(w, K_BI, TAU_BI)
    low, high = roots[stable]
    for history, y0, expected in (
        ("constant", make_bistable(w, 0)[1], low),
        (lambda t: high * t * jnp.ones(N_BI), jnp.zeros(N_BI), high),
    ):
        delays = kl.Delays(TAU_BI, max_delay=1.0, history=history)
        model = kl.Kuramoto(jnp.full(N_BI, w), kl.MeanField(K_BI), delays=delays)
        tr = kl.simulate(model, y0, t1=40.0, dt=0.05, saveat=kl.SaveAt(every=10))
        got = float(jnp.mean(kl.effective_frequencies(tr, window=20.0)))
        np.testing.assert_allclose(got, expected, atol=1e-3)


def test_adiabatic_ramp_exposes_delayed_hysteresis():
    """README: adiabatic ramps run up then down to expose hysteresis. In the bistable
    window the up ramp must stay on the lower branch and the down ramp on the upper
    one (each to 1e-3 of its root)."""
    ws = np.round(np.arange(1.0, 5.61, 0.2), 3)
    ds = kl.sweep(make_bistable, {"w": ws, "seed": [0]}, t1=40.0, dt=0.05,
                  mode="adiabatic", along="w", observe=("Omega", "R"), window=20.0)
    for w in (2.8, 3.0, 3.2, 3.4):
        roots, stable = kl.theory.delayed_sync_frequencies(w, K_BI, TAU_BI)
        low, high = roots[stable]
        up = float(ds.Omega.sel(w=w, direction="up", seed=0))
        down = float(ds.Omega.sel(w=w, direction="down", seed=0))
        np.testing.assert_allclose(up, low, atol=1e-3)
        np.testing.assert_allclose(down, high, atol=1e-3)
