"""Study: phase chaos, the Lyapunov spectrum of N = 4 globally coupled phase oscillators
against K (Popovych, Maistrenko & Tass 2005).

    python studies/phase_chaos.py [--n 4] [--points 96] [--t1 1500] [--transient 300]
                                  [--dt 0.05] [--out data/runs/phase_chaos.nc]
    python analysis/phase_chaos.py data/runs/phase_chaos.nc

Model: d theta_i/dt = omega_i + (K/N) sum_j sin(theta_j - theta_i) (`kl.MeanField(K)`),
natural frequencies equally spaced in [-1, 1] (omega_i = -1 + 2 (i - 1)/(N - 1)). For
each of `--points` couplings K in (0, 1.05 K_L] (K_L the locking threshold,
`kl.theory.locking_threshold`) the full spectrum (N exponents; one is always 0, the
global phase shift) is computed by `kl.lyapunov_exponents` from the same initial phases,
all couplings in ONE `jax.vmap`-ed, jitted call (RK4, QR every step, the first
`--transient` time units not counted). The paper's finding: for N >= 4 non-identical
oscillators the largest exponent is positive in a window of K below locking (phase
chaos), between regions of quasi-periodic motion (tori: two or more zero exponents) and
the locked state (one zero, the rest negative).

Float64 (the exponents near 0 need it to tell a torus from weak chaos). Writes ONE
netCDF file (kl.io.save: atomic, with provenance): lambda (K, exponent), its block
standard errors, the sum of the exponents and the time-averaged R.
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import kuralab as kl  # noqa: E402


def frequencies(n: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, n)


def run(n: int, points: int, t1: float, transient: float, dt: float, seed: int):
    omega = jnp.asarray(frequencies(n))
    K_L = kl.theory.locking_threshold(omega)
    Ks = np.linspace(1.05 * K_L / points, 1.05 * K_L, points)
    theta0 = kl.random_phases(jax.random.key(seed), n).astype(jnp.float64)

    def spectrum(K):
        return kl.lyapunov_exponents(
            kl.Kuramoto(omega, kl.MeanField(K)), theta0, t1=t1, dt=dt,
            transient=transient, blocks=10, records=50,
        )

    t = time.perf_counter()
    out = jax.jit(jax.vmap(spectrum))(jnp.asarray(Ks))
    lam = np.asarray(out["exponents"])
    wall = time.perf_counter() - t
    # R averaged over the window, from the same runs' final states continued
    R = np.asarray(jax.jit(jax.vmap(lambda K, y: jnp.mean(jnp.abs(kl.order_parameter(
        kl.simulate(kl.Kuramoto(omega, kl.MeanField(K)), y, t1=200.0, dt=dt,
                    saveat=kl.SaveAt(every=10)).ys)))))(jnp.asarray(Ks), out["final"]))
    ds = xr.Dataset(
        {
            "lambda": (("K", "exponent"), lam,
                       dict(units="1/time", long_name="Lyapunov exponents (QR order)")),
            "lambda_stderr": (("K", "exponent"), np.asarray(out["stderr"]),
                              dict(units="1/time", long_name="block standard error")),
            "lambda_sum": ("K", lam.sum(-1), dict(units="1/time",
                                                  long_name="sum of the exponents")),
            "lambda_running": (("K", "time", "exponent"), np.asarray(out["running"]),
                               dict(units="1/time", long_name="running estimates")),
            "R": ("K", R, dict(units="1", long_name="order parameter, mean over 200 "
                                                    "time units after the run")),
            "omega": ("osc", np.asarray(omega), dict(units="rad/time",
                                                     long_name="natural frequency")),
        },
        coords={"K": ("K", Ks, dict(units="1", long_name="coupling K")),
                "exponent": np.arange(n)},
        attrs=dict(K_L=float(K_L), n_osc=n, t1=t1, transient=transient, dt=dt,
                   seed=seed, wall_s=wall, solver="rk4",
                   model="mean-field Kuramoto, omega equally spaced in [-1, 1]"),
    )
    return ds


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--points", type=int, default=96)
    p.add_argument("--t1", type=float, default=1500.0)
    p.add_argument("--transient", type=float, default=300.0)
    p.add_argument("--dt", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="data/runs/phase_chaos.nc")
    a = p.parse_args(argv)
    ds = run(a.n, a.points, a.t1, a.transient, a.dt, a.seed)
    path = kl.io.save(ds, a.out, seeds=[a.seed])
    lam1 = ds["lambda"].max("exponent")
    chaotic = ds.K.values[(lam1 > 3 * ds.lambda_stderr.max("exponent")).values
                          & (lam1 > 1e-3).values]
    print(f"K_L = {ds.attrs['K_L']:.4f}; largest exponent max {float(lam1.max()):.4f} "
          f"at K = {float(ds.K.values[int(np.argmax(lam1.values))]):.4f}; positive at {chaotic.size} of "
          f"{ds.K.size} K values")
    print(f"wrote {path} ({ds.attrs['wall_s']:.1f} s)")


if __name__ == "__main__":
    main()
