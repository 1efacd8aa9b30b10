"""kl.lyapunov_spectrum / kl.lyapunov_exponents against known answers (SCIENCE.md §5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp

import kuralab as kl
from kuralab._lyapunov import LyapunovPlan, tangent_dim


def _mean_field(omega, K):
    return kl.Kuramoto(jnp.asarray(omega), kl.MeanField(K))


def test_free_phase_has_exponent_zero():
    ds = kl.lyapunov_spectrum(_mean_field([1.3], 0.0), jnp.array([0.2]), t1=10.0, dt=0.1)
    assert ds["lambda"].shape == (1,)
    assert abs(float(ds["lambda"][0])) < 1e-6
    assert ds["lambda_running"].dims == ("time", "exponent")


@pytest.mark.slow
def test_locked_state_exponents_are_jacobian_eigenvalues(x64):
    # N = 3 mean field, locked: the spectrum is {0 (phase shift)} and the eigenvalues
    # of the reduced Jacobian that kl.locked_state (and kl.continuation) report.
    omega = jnp.array([-0.3, 0.1, 0.2])
    model = _mean_field(omega, 1.5)
    fixed = kl.locked_state(model, jnp.arcsin(omega / 1.5))
    ds = kl.lyapunov_spectrum(model, fixed.phi + 0.05, t1=200.0, dt=0.05, transient=50.0)
    expected = np.sort(np.concatenate([[0.0], np.real(fixed.eigenvalues)]))
    np.testing.assert_allclose(np.sort(ds["lambda"].values), expected, atol=1e-3)


@pytest.mark.slow
def test_two_oscillators_exponents_float32():
    # phi' = dw - K sin phi: exponents 0 and -K cos phi*, sin phi* = dw / K.
    K, dw = 1.0, 0.5
    ds = kl.lyapunov_spectrum(
        _mean_field([-dw / 2, dw / 2], K), jnp.array([0.0, 0.3]), t1=200.0, dt=0.05,
        transient=50.0,
    )
    lam = ds["lambda"].values
    assert lam.dtype == np.float32
    np.testing.assert_allclose(lam, [0.0, -K * np.sqrt(1 - (dw / K) ** 2)], atol=1e-3)
    # the running estimate ends at the exponent; block means give a small error
    np.testing.assert_allclose(ds["lambda_running"].values[-1], lam, rtol=1e-6)
    assert np.all(ds["lambda_stderr"].values < 1e-3)


@pytest.mark.slow
def test_sum_of_exponents_is_mean_divergence():
    # Liouville: sum_i lambda_i = <tr J>, for the mean field tr J = K - K N R^2.
    N, K = 5, 1.5
    omega = jax.random.normal(jax.random.key(1), (N,)) * 0.3
    model = _mean_field(omega, K)
    y0 = jnp.arange(N) * 0.5
    ds = kl.lyapunov_spectrum(model, y0, t1=100.0, dt=0.05)
    traj = kl.simulate(model, y0, t1=100.0, dt=0.05)
    R = jnp.abs(kl.order_parameter(traj.ys))
    # the step's tangent map averages tr J over the step: trapezoid over saves
    trace = K - K * N * R**2
    mean_trace = float(jnp.mean(0.5 * (trace[1:] + trace[:-1])))
    assert float(ds["lambda_sum"]) == pytest.approx(mean_trace, rel=2e-3)
    # the state is kl.simulate's
    np.testing.assert_allclose(ds["final"].values, traj.final, atol=5e-4)


@pytest.mark.slow
def test_sphere_vectors_use_the_tangent_plane():
    # one unit vector in R^3 pulled to c: dx = c - (x.c) x; at x* = c/|c| the tangent
    # plane's Jacobian is -|c| I (2 exponents, the normal direction does not count).
    c = jnp.array([[0.0, 0.0, 2.0]])
    model = kl.SphereKuramoto(None, kl.MeanField(0.0), c)
    assert tangent_dim(model) == 2
    x0 = jnp.array([[0.3, 0.2, 1.0]])
    ds = kl.lyapunov_spectrum(model, x0, t1=30.0, dt=0.02, transient=10.0)
    np.testing.assert_allclose(ds["lambda"].values, [-2.0, -2.0], atol=2e-3)


@pytest.mark.slow
def test_exponents_are_sorted_with_every_per_exponent_array():
    # three locked oscillators whose two negative exponents are close (-1.43, -1.48):
    # over a short window the QR order need not be descending; the output is, and the
    # running estimate at the window's end, the block means and the errors follow the
    # same permutation
    out = kl.lyapunov_exponents(_mean_field([-0.3, 0.05, 0.25], 1.0),
                                jnp.array([0.0, 0.3, -0.2]), t1=6.0, dt=0.05,
                                transient=1.0, blocks=4, records=5)
    lam = np.asarray(out["exponents"])
    assert np.all(np.diff(lam) <= 0)
    np.testing.assert_allclose(out["running"][-1], lam, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.mean(out["block_means"], axis=0), lam, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.slow
def test_sweep_observable_on_sphere_vectors():
    # kl.sweep's "lyapunov" for a sphere model is kl.lyapunov_exponents' leading
    # exponent (k = 1) on the tangent planes from the window's first state
    c = jnp.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    x0 = jnp.array([[0.3, 0.2, 1.0], [0.1, 1.0, -0.4], [1.0, 0.5, 0.2]])
    x0 = x0 / jnp.linalg.norm(x0, axis=-1, keepdims=True)

    def build(K):
        return kl.SphereKuramoto(None, kl.MeanField(K), c), x0

    ds = kl.sweep(build, {"K": [0.5, 3.0]}, t1=20.0, dt=0.05, observe=["lyapunov"])
    for K in (0.5, 3.0):
        model = build(K)[0]
        start = kl.simulate(model, x0, t1=10.0, dt=0.05,
                            saveat=kl.SaveAt(final=True)).final
        direct = kl.lyapunov_exponents(model, start, t0=10.0, t1=20.0, dt=0.05, k=1,
                                       records=1)
        np.testing.assert_allclose(float(ds["lyapunov"].sel(K=K)),
                                   float(direct["exponents"][0]), rtol=1e-4, atol=1e-6)
    # unit vectors pulled to fields: the leading exponent is negative (a stable state)
    assert float(ds["lyapunov"].max()) < 0


@pytest.mark.slow
def test_vmap_and_jit_over_parameters_match_single_calls():
    omega = jnp.array([-0.3, -0.1, 0.15, 0.35])
    Ks = jnp.array([0.2, 2.0])

    def f(K):
        return kl.lyapunov_exponents(
            _mean_field(omega, K), jnp.zeros(4), t1=40.0, dt=0.05, k=2
        )["exponents"]

    batched = jax.jit(jax.vmap(f))(Ks)
    assert batched.shape == (2, 2)
    for i, K in enumerate(Ks):
        np.testing.assert_allclose(batched[i], f(K), rtol=1e-5, atol=1e-6)
    # strong coupling: locked, so the second exponent is clearly negative
    assert batched[1, 1] < -0.5 < batched[0, 1]


@pytest.mark.slow
def test_renormalisation_interval_does_not_change_the_answer():
    model = _mean_field([-0.25, 0.25], 1.0)
    a = kl.lyapunov_spectrum(model, jnp.array([0.0, 0.3]), t1=100.0, dt=0.05,
                             transient=20.0)
    b = kl.lyapunov_spectrum(model, jnp.array([0.0, 0.3]), t1=100.0, dt=0.05,
                             transient=20.0, renormalise_every=8)
    np.testing.assert_allclose(a["lambda"].values, b["lambda"].values, atol=1e-4)
    assert b.attrs["renormalise_every"] == 8


@pytest.mark.slow
def test_noise_follows_the_simulate_path():
    model = kl.Kuramoto(jnp.zeros(1), kl.MeanField(0.0), forcing=kl.Forcing(1.0),
                        noise=kl.Noise(0.5))
    key = jax.random.key(3)
    ds = kl.lyapunov_spectrum(model, jnp.array([0.0]), t1=5.0, dt=0.01, key=key)
    tr = kl.simulate(model, jnp.array([0.0]), t1=5.0, dt=0.01, key=key,
                     saveat=kl.SaveAt(final=True))
    np.testing.assert_array_equal(ds["final"].values, tr.final)
    assert ds.attrs["noise"] == "tree path"


@pytest.mark.slow
def test_noise_induced_synchronisation_exponent():
    # d theta = -h sin theta dt + sqrt(2D) dW: lambda = -h I1(h/D) / I0(h/D).
    h, D = 1.0, 0.5
    model = kl.Kuramoto(jnp.zeros(1), kl.MeanField(0.0), forcing=kl.Forcing(h),
                        noise=kl.Noise(D))
    expected = -h * sp.iv(1, h / D) / sp.iv(0, h / D)
    ds = kl.lyapunov_spectrum(
        model, jnp.array([0.0]), t1=4000.0, dt=0.01, transient=10.0,
        key=jax.random.key(0), brownian="increments", blocks=20,
    )
    lam, se = float(ds["lambda"][0]), float(ds["lambda_stderr"][0])
    assert 0 < se < 0.02
    assert abs(lam - expected) < 3 * se + 0.005  # Euler--Maruyama bias O(dt)


def test_plan_record_times_and_blocks():
    p = LyapunovPlan(0.0, 10.0, 0.1, 20, 80, 2, 1, 4, 7, None)
    t = p.record_times()
    assert t[-1] == pytest.approx(10.0) and len(t) == 7 and np.all(np.diff(t) > 0)
    assert p.block_durations().sum() == pytest.approx(8.0)


def test_bad_input_errors():
    model = _mean_field([0.1, -0.1], 1.0)
    y0 = jnp.zeros(2)
    kw = dict(t1=10.0, dt=0.1)
    with pytest.raises(ValueError, match=r"`k` must be at most .* 2"):
        kl.lyapunov_spectrum(model, y0, k=3, **kw)
    with pytest.raises(ValueError, match="`renormalise_every` must be an integer >= 1"):
        kl.lyapunov_spectrum(model, y0, renormalise_every=0, **kw)
    with pytest.raises(TypeError, match="`k` must be an integer"):
        kl.lyapunov_spectrum(model, y0, k=1.5, **kw)
    with pytest.raises(ValueError, match="whole numbers of renormalisation"):
        kl.lyapunov_spectrum(model, y0, renormalise_every=3, **kw)
    with pytest.raises(ValueError, match="state shape"):
        kl.lyapunov_spectrum(model, jnp.zeros(3), **kw)
    with pytest.raises(ValueError, match="history buffer"):
        kl.lyapunov_spectrum(
            kl.Kuramoto(jnp.zeros(2), kl.MeanField(1.0), delays=kl.Delays(0.5)), y0,
            k=10**6, **kw
        )
    noisy = kl.Kuramoto(jnp.zeros(2), kl.MeanField(1.0), noise=kl.Noise(0.1))
    with pytest.raises(ValueError, match="`key` is required"):
        kl.lyapunov_spectrum(noisy, y0, **kw)
    with pytest.raises(ValueError, match="fewer than `blocks`"):
        kl.lyapunov_spectrum(model, y0, t1=0.5, dt=0.1)


@pytest.mark.slow
def test_sweep_observable_is_the_largest_exponent_over_the_window():
    omega = jnp.array([-0.3, -0.1, 0.15, 0.35])
    ds = kl.sweep(
        lambda K: (kl.Kuramoto(omega, kl.MeanField(K)), jnp.zeros(4)),
        {"K": [0.2, 2.0]}, t1=40.0, dt=0.05, observe=["R", "lyapunov",
                                                       "lyapunov_stderr"],
    )
    assert ds["lyapunov"].dims == ("K",) and ds["lyapunov"].attrs["units"] == "1/time"
    for K in (0.2, 2.0):
        model = kl.Kuramoto(omega, kl.MeanField(K))
        start = kl.simulate(model, jnp.zeros(4), t1=20.0, dt=0.05,
                            saveat=kl.SaveAt(final=True)).final
        direct = kl.lyapunov_exponents(model, start, t0=20.0, t1=40.0, dt=0.05, k=1,
                                       records=1)
        np.testing.assert_allclose(float(ds["lyapunov"].sel(K=K)),
                                   float(direct["exponents"][0]), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(float(ds["lyapunov_stderr"].sel(K=K)),
                                   float(direct["stderr"][0]), rtol=1e-3, atol=1e-7)


def test_study_spec_observes_lyapunov():
    from kuralab._study.parse import parse_spec
    from kuralab._study.plan import kernel_config

    text = """
[study]
name = "tiny_lyapunov"

[model]
kind = "kuramoto"
n = 8

[model.frequencies]
distribution = "gaussian"
scale = 0.2
sampling = "quantile"

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.1, 3.0]
seeds = 1

[solve]
t1 = 20.0
dt = 0.1
solver = "rk4"

[observe]
window = 10.0
lyapunov = true
"""
    spec = parse_spec(text)
    assert spec.observe.lyapunov and parse_spec(spec.to_toml()) == spec
    # the kernel computes what kl.sweep's "lyapunov" observable computes
    assert {"lyapunov", "lyapunov_stderr"} <= set(kernel_config(spec).observe)
    bad = text.replace("lyapunov = true", "lyapunov = 1")
    with pytest.raises(Exception, match="lyapunov"):
        parse_spec(bad)
    # the sweep kernel has no leading exponent for delays: refused at validation, not
    # when the first chunk runs
    delayed = text.replace("[sweep]", "[model.delays]\ntau = 0.5\n\n[sweep]")
    assert parse_spec(delayed.replace("lyapunov = true", "")).model.delayed
    with pytest.raises(ValueError, match=r"^observe.lyapunov = true: expected false for "
                       "a model with delays"):
        parse_spec(delayed)


@pytest.mark.slow
def test_delayed_pair_exponents_are_characteristic_roots(x64):
    # theta_1' = K sin(theta_2(t - tau) - theta_1) and vice versa, at theta = 0: the
    # sum mode has lambda = K(e^{-lambda tau} - 1) (leading root 0), the difference mode
    # lambda = -K(1 + e^{-lambda tau}), for K = tau = 1 lambda = W_0(-e) - 1, a complex
    # pair: two exponents, each its real part.
    model = kl.Kuramoto(jnp.zeros(2), kl.DenseCoupling(jnp.array([[0.0, 1.0], [1.0, 0.0]])),
                        delays=kl.Delays(1.0))
    ds = kl.lyapunov_spectrum(model, jnp.array([0.1, -0.2]), t1=45.0, dt=0.025, k=3,
                              transient=15.0)
    lam = ds["lambda"].values
    expected = float(np.real(sp.lambertw(-np.e, 0))) - 1  # -0.60502
    assert abs(lam[0]) < 1e-6
    assert abs(0.5 * (lam[1] + lam[2]) - expected) < 1e-3
    assert kl.lyapunov_spectrum(model, jnp.array([0.1, -0.2]), t1=5.0, dt=0.025)[
        "lambda"].shape == (1,)  # k defaults to the leading exponent


@pytest.mark.slow
def test_phase_chaos_study_and_figure_run_end_to_end(tmp_path):
    import subprocess
    import sys

    root = __import__("pathlib").Path(__file__).parents[1]
    out = tmp_path / "pc.nc"
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, str(root / "studies/phase_chaos.py"), "--points", "4",
                    "--t1", "40", "--transient", "10", "--out", str(out)],
                   check=True, env=env, capture_output=True)
    ds = kl.io.load(out)
    assert ds["lambda"].shape == (4, 4) and "K_L" in ds.attrs
    assert np.all(np.abs(ds["lambda"].max("exponent").values) < 0.5)
    res = subprocess.run([sys.executable, str(root / "analysis/phase_chaos.py"), str(out)],
                         check=True, env=env, capture_output=True, text=True)
    assert "K_L =" in res.stdout and (tmp_path / "pc.png").exists()


@pytest.mark.slow
def test_forward_and_reverse_mode_derivatives_of_an_exponent(x64):
    # N = 2, locked: lambda_2 = -sqrt(K^2 - dw^2), d lambda_2 / dK = -K / sqrt(K^2 - dw^2)
    dw = 0.5

    def lam2(K, reverse_mode=True, solver="rk4"):
        model = _mean_field(jnp.array([-dw / 2, dw / 2]), K)
        return kl.lyapunov_exponents(model, jnp.array([0.0, 0.5]), t1=40.0, dt=0.05,
                                     transient=10.0, records=1, solver=solver,
                                     reverse_mode=reverse_mode)["exponents"][1]

    exact = -1 / np.sqrt(1 - dw**2)
    forward = float(jax.jacfwd(lam2)(1.0))
    assert forward == pytest.approx(exact, abs=1e-4)
    assert float(jax.grad(lam2)(1.0)) == pytest.approx(forward, rel=1e-9)
    # rk4 has no stage loop (kl.RK4 is one written-out step): reverse_mode=False
    # changes nothing, both modes give the same derivative
    assert float(jax.jacfwd(lambda K: lam2(K, False))(1.0)) == pytest.approx(forward, rel=1e-9)
    assert float(jax.grad(lambda K: lam2(K, False))(1.0)) == pytest.approx(forward, rel=1e-9)
    # a diffrax tableau solver (heun): the forward-only variant agrees with its
    # reverse-mode derivative and refuses jax.grad
    heun = float(jax.grad(lambda K: lam2(K, True, "heun"))(1.0))
    assert float(jax.jacfwd(lambda K: lam2(K, False, "heun"))(1.0)) == pytest.approx(heun, rel=1e-9)
    with pytest.raises(ValueError, match="Reverse-mode"):
        jax.grad(lambda K: lam2(K, False, "heun"))(1.0)
