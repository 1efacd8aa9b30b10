r"""Study: an untrained coRNN sheet with a fixed local kernel launches traveling waves whose
measured wave number and speeds follow the sheet's linear dispersion relation.

    python studies/waves_dispersion.py [--out data/runs/waves_dispersion.nc] [--fast]
    python analysis/waves_dispersion.py data/runs/waves_dispersion.nc

**The sheet** (`kl.LatticeOscillators`, `research/reference_impls.md` §4.1):
$\dot h = v$, $\dot v = \tanh(W_h\star h + z) - \gamma h - \alpha v$ with the
nearest-neighbour kernel $W_h = \kappa\,(1, -2, 1)$ (1-D; the 5-point Laplacian
$\kappa\,[[0,1,0],[1,-4,1],[0,1,0]]$ in 2-D), no velocity kernel, $b = 0$, and a drive
$z$ at one site: $z_{i_0}(t) = A\,(1 - e^{-t/\tau})\sin\Omega t$ (a point source switched
on smoothly, amplitude $A = 10^{-2}$).

**Dispersion relation (derivation).** For $|u| \ll 1$, $\tanh u = u + O(u^3)$, so away
from the source the sheet is linear: $\ddot h_i = \kappa(h_{i+1} - 2h_i + h_{i-1})
- \gamma h_i - \alpha \dot h_i$. Insert a plane wave $h_i = e^{i(\omega t - k i)}$
(lattice spacing 1): the kernel's symbol is
$\sum_d w_d e^{-ikd} = \kappa(e^{-ik} - 2 + e^{ik}) = -4\kappa\sin^2(k/2)$, hence

$$\omega^2 - i\alpha\omega = \gamma + 4\kappa\sin^2(k/2).$$

Undamped ($\alpha = 0$) this is a lattice Klein--Gordon band: real waves exist only for
$\sqrt\gamma < \omega < \sqrt{\gamma + 4\kappa}$ (below the band the drive's response is
evanescent, above it too). A source at $\Omega$ inside the band radiates the wave number

$$k(\Omega) = 2\arcsin\sqrt{(\Omega^2 - \gamma)/(4\kappa)},$$

with phase speed $c_p = \Omega / k$ and group speed $c_g = d\omega/dk =
\kappa\sin k / \Omega$ (the speed of the wave front). Small damping $\alpha \ll \Omega$
leaves $\operatorname{Re} k$ unchanged to first order and adds a spatial decay
$\operatorname{Im} k = -\alpha/(2c_g)$ (perturb $k \to k + i\delta$:
$-i\alpha\Omega = 2\kappa\sin k\cdot i\delta$). In 2-D the symbol is
$-4\kappa[\sin^2(k_r/2) + \sin^2(k_c/2)]$: along a grid axis the 1-D relation holds;
diagonally the lattice is slightly anisotropic.

**The discrete solver.** The reference update (symplectic Euler, step $\Delta$) of the
undamped linear sheet maps $(h, v)$ by a matrix with eigenvalues $e^{\pm i\omega\Delta}$,
$\cos\omega\Delta = 1 - \tfrac12\Delta^2\Omega_k^2$, $\Omega_k^2 = \gamma + 4\kappa
\sin^2(k/2)$; so the time-discrete relation is
$(4/\Delta^2)\sin^2(\omega\Delta/2) = \gamma + 4\kappa\sin^2(k/2)$, which differs from the
continuous one by a relative $O(\Omega^2\Delta^2/12)$ (about $10^{-3}$ here). With
damping the map $v' = (1 - \alpha\Delta)v - \Delta A h$, $h' = h + \Delta v'$
($A = \gamma + 4\kappa\sin^2(k/2)$) has trace $2 - \alpha\Delta - \Delta^2 A$ and
determinant $1 - \alpha\Delta$, so a mode $z = e^{i\Omega\Delta}$ per step needs
$A = [2 - \alpha\Delta - z - (1 - \alpha\Delta)/z]/\Delta^2$: a complex $k$ whose real
part is the wave number (`k_theory_discrete`) and $-\operatorname{Im} k$ the spatial
decay rate (`decay_rate_theory`, compared with the measured decay of the steady
amplitude). `k_theory` is the undamped continuous-time relation.

**Measurement** (`kl.waves`): the positions $h$ over the last `window` time units are
turned into phases (`kl.waves.instantaneous_phase`), and `kl.waves.plane_wave_fit` on
the sites at distances `near..far` from the source, right and left separately, gives the
wave number, frequency and phase speed with standard errors. The front speed is the
slope of the arrival time (the causal envelope, max |h| over the last period, first
above half its final value) against distance.
The 2-D run (until $t = 0.6\,n$, before the front wraps round) gives a snapshot, a phase map and the local phase-velocity field for the
figure, and the mean radial phase speed in an annulus.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

import kuralab as kl

GAMMA, KAPPA, ALPHA, AMP, TAU = 1.0, 1.0, 0.02, 1e-2, 10.0


class PointSource(kl.AbstractSchedule):
    """$z(t)$: zero except $A(1 - e^{-t/\\tau})\\sin\\Omega t$ at one site."""

    omega: jax.Array
    mask: jax.Array  # grid-shaped, 1 at the source

    def __call__(self, t):
        return AMP * (1.0 - jnp.exp(-t / TAU)) * jnp.sin(self.omega * t) * self.mask


def k_theory(omega, dt=None, alpha=0.0):
    """Complex wave number radiated at `omega`: the continuous relation (`dt=None`) or
    that of the symplectic-Euler map with step `dt`; damping `alpha`. Re k is the wave
    number, -Im k the spatial decay rate."""
    omega = np.asarray(omega, complex)
    if dt is None:
        a = omega**2 - 1j * alpha * omega
    else:
        z = np.exp(1j * omega * dt)
        a = (2 - alpha * dt - z - (1 - alpha * dt) / z) / dt**2
    return 2 * np.arcsin(np.sqrt((a - GAMMA) / (4 * KAPPA)))


def sheet(shape, omega, source):
    nd = len(shape)
    kernel = (np.array([1.0, -2.0, 1.0]) if nd == 1
              else np.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])) * KAPPA
    mask = np.zeros(shape)
    mask[source] = 1.0
    drive = PointSource(jnp.asarray(omega, jnp.float32), jnp.asarray(mask, jnp.float32))
    return kl.LatticeOscillators(shape, kernel, None, gamma=GAMMA, alpha=ALPHA,
                                 drive=drive)


def run_1d(omegas, L, t1, dt, every, window, near, far):
    src = L // 2
    save_dt = dt * every
    rows = []
    h_kymo = None

    @eqx.filter_jit
    def run(model):
        return kl.simulate(model, jnp.zeros((2, L)), t1=t1, dt=dt,
                           solver="symplectic_euler", saveat=kl.SaveAt(every=every)).ys[:, 0]

    for j, om in enumerate(omegas):
        h = np.asarray(run(sheet((L,), om, (src,))))
        if j == len(omegas) // 2:
            h_kymo = h
        ts = np.arange(h.shape[0]) * save_dt
        # a whole number of drive periods, and the Hilbert transform's edges dropped
        periods = max(1, round(window * om / (2 * np.pi)))
        n_win = int(round(periods * 2 * np.pi / om / save_dt))
        trim = n_win // 10
        phase = kl.waves.instantaneous_phase(h[-n_win:], dt=save_dt)[trim:-trim]
        # causal envelope: max |h| over the last drive period
        span = max(1, int(round(2 * np.pi / om / save_dt)))
        padded = np.concatenate([np.zeros((span - 1, L)), np.abs(h)])
        env = np.lib.stride_tricks.sliding_window_view(padded, span, axis=0).max(-1)
        row = {}
        for side, sl, sign in (("right", slice(src + near, src + far + 1), 1),
                               ("left", slice(src - far, src - near + 1), -1)):
            fit = kl.waves.plane_wave_fit(phase[:, sl], ndim=1, dt=save_dt, boundary="open")
            dist = np.abs(np.arange(L)[sl] - src)
            final = env[-n_win + trim : -trim, sl].mean(0)
            arrival = np.array([ts[np.argmax(env[:, i] > 0.5 * f)]
                                for i, f in zip(range(sl.start, sl.stop), final, strict=True)])
            slope = np.polyfit(dist, arrival, 1)[0]
            decay = -np.polyfit(dist, np.log(final), 1)[0]
            row[side] = dict(
                k=float(fit.wave_vector[0]), k_se=float(fit.wave_vector_se[0]),
                omega=float(fit.frequency), omega_se=float(fit.frequency_se),
                speed=float(fit.speed), speed_se=float(fit.speed_se),
                direction=float(fit.direction), coherence=float(fit.coherence),
                front_speed=1.0 / slope, decay_rate=decay, expected_direction=sign,
            )
        rows.append(row)
    return rows, h_kymo


def run_2d(n, omega, t1, dt, every):
    """The 2-D sheet driven at its centre; `t1` short enough that the front (group
    speed <= 0.62) has not wrapped round the torus."""
    src = (n // 2, n // 2)
    save_dt = dt * every
    ys = kl.simulate(sheet((n, n), omega, src), jnp.zeros((2, n, n)), t1=t1, dt=dt,
                     solver="symplectic_euler", saveat=kl.SaveAt(every=every)).ys[:, 0]
    h = np.asarray(ys)
    win = h[-int(round(4 * 2 * np.pi / omega / save_dt)):]  # the last 4 periods
    phase = kl.waves.instantaneous_phase(win, dt=save_dt)
    mid = len(win) // 2
    vel = np.asarray(kl.waves.phase_velocity(phase, ndim=2, dt=save_dt))[mid]
    r_, c_ = np.meshgrid(np.arange(n) - src[0], np.arange(n) - src[1], indexing="ij")
    r = np.hypot(r_, c_)
    ring = (r > 4) & (r < 0.25 * n)
    radial = (vel[..., 0] * r_ + vel[..., 1] * c_) / np.where(r > 0, r, 1)
    return h[-1], np.asarray(phase)[mid], vel, float(np.nanmedian(radial[ring]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data/runs/waves_dispersion.nc")
    p.add_argument("--fast", action="store_true", help="3 frequencies, shorter runs (CI)")
    p.add_argument("--omegas", default="1.1,1.3,1.5,1.7,1.9,2.1",
                   help="drive frequencies inside the band (sqrt(gamma), sqrt(gamma+4 kappa))")
    p.add_argument("--length", type=int, default=256, help="1-D ring length (256)")
    p.add_argument("--grid", type=int, default=96, help="2-D sheet side (96)")
    p.add_argument("--t1", type=float, default=200.0)
    p.add_argument("--dt", type=float, default=0.05, help="symplectic-Euler step (0.05)")
    args = p.parse_args(argv)
    omegas = [float(w) for w in args.omegas.split(",")]
    L, n, t1 = args.length, args.grid, args.t1
    near, far, window = 5, 30, 80.0
    if args.fast:
        omegas, L, n, t1, far, window = omegas[1::2], 160, 48, 110.0, 20, 40.0
    start = time.perf_counter()
    every = 5
    rows, kymo = run_1d(omegas, L, t1, args.dt, every, window, near, far)
    snap, phase2d, vel2d, radial_speed = run_2d(n, 1.5, 0.6 * n, args.dt, every)
    sides = ["right", "left"]
    om = np.array(omegas)
    k_cont = k_theory(om).real  # undamped, continuous time
    k_disc = k_theory(om, args.dt, ALPHA)  # the solver's map, damped (complex)

    def var(name):
        return (("omega_drive", "side"),
                np.array([[r[s][name] for s in sides] for r in rows]))

    ds = xr.Dataset(
        {name: var(name) for name in (
            "k", "k_se", "omega", "omega_se", "speed", "speed_se", "direction",
            "coherence", "front_speed", "decay_rate")},
        coords=dict(omega_drive=om, side=sides),
    )
    ds["k_theory"] = ("omega_drive", k_cont)
    ds["k_theory_discrete"] = ("omega_drive", k_disc.real)
    ds["decay_rate_theory"] = ("omega_drive", -k_disc.imag)
    ds["speed_theory"] = ("omega_drive", om / k_cont)
    ds["group_speed_theory"] = ("omega_drive", KAPPA * np.sin(k_cont) / om)
    ds["h_kymograph"] = (("time", "osc"), kymo.astype(np.float32))
    ds = ds.assign_coords(time=np.arange(kymo.shape[0]) * args.dt * every, osc=np.arange(L))
    ds["h_snapshot"] = (("row", "col"), snap.astype(np.float32))
    ds["phase_snapshot"] = (("row", "col"), phase2d.astype(np.float32))
    ds["velocity_row"] = (("row", "col"), vel2d[..., 0].astype(np.float32))
    ds["velocity_col"] = (("row", "col"), vel2d[..., 1].astype(np.float32))
    ds["radial_speed_2d"] = ((), radial_speed)
    ds["radial_speed_2d_theory"] = ((), 1.5 / float(k_theory(1.5).real))
    units = dict(
        k=("rad/site", "measured wave number (kl.waves.plane_wave_fit; sign = direction)"),
        k_se=("rad/site", "standard error of k"),
        omega=("rad/time", "measured angular frequency"),
        omega_se=("rad/time", "standard error of omega"),
        speed=("site/time", "measured phase speed |omega|/|k|"),
        speed_se=("site/time", "standard error of the phase speed"),
        direction=("1", "propagation direction (+1 right, -1 left)"),
        coherence=("1", "plane-wave coherence of the local wave vectors"),
        front_speed=("site/time", "front speed: 1 / slope of arrival time vs distance"),
        k_theory=("rad/site", "2 arcsin sqrt((Omega^2 - gamma)/(4 kappa))"),
        k_theory_discrete=("rad/site", "Re k of the damped symplectic-Euler map"),
        decay_rate=("1/site", "measured spatial decay rate of the steady amplitude"),
        decay_rate_theory=("1/site", "-Im k of the damped symplectic-Euler map"),
        speed_theory=("site/time", "phase speed Omega / k"),
        group_speed_theory=("site/time", "group speed kappa sin k / Omega"),
        h_kymograph=("1", "positions h(t, x) of the middle drive frequency"),
        h_snapshot=("1", "2-D sheet positions at the end (Omega = 1.5)"),
        phase_snapshot=("rad", "2-D instantaneous phase (mid-window)"),
        velocity_row=("site/time", "2-D local phase velocity, row component"),
        velocity_col=("site/time", "2-D local phase velocity, column component"),
        radial_speed_2d=("site/time", "median radial phase speed in an annulus (2-D)"),
        radial_speed_2d_theory=("site/time", "Omega / k along a grid axis"),
    )
    for name, (u, long) in units.items():
        ds[name].attrs.update(units=u, long_name=long)
    ds["omega_drive"].attrs.update(units="rad/time", long_name="drive frequency Omega")
    ds.attrs.update(
        study="waves_dispersion",
        description="untrained coRNN sheet, kappa (1,-2,1) kernel, point source: measured "
        "wave number and speeds vs the linear dispersion relation",
        gamma=GAMMA, kappa=KAPPA, alpha=ALPHA, amplitude=AMP, ramp_tau=TAU,
        length=L, grid=n, t1=t1, dt=args.dt, save_every=every, window=window,
        fit_distances=f"{near}..{far}", solver="symplectic_euler", fast=int(args.fast),
    )
    path = kl.io.save(ds, args.out, seeds=0)
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    for ref in ("k_theory", "k_theory_discrete"):
        err = np.abs(np.abs(ds.k) - ds[ref]) / ds[ref]
        print(f"max relative wave-number error vs {ref}: {float(err.max()):.2e}")


if __name__ == "__main__":
    main()
