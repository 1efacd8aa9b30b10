"""Figure: traveling waves of an untrained coRNN sheet against its dispersion relation.

    python analysis/waves_dispersion.py data/runs/waves_dispersion.nc --out data/runs/waves_dispersion.png

Reads the result of `python studies/waves_dispersion.py` and draws

- (a) the kymograph h(t, x) of the 1-D ring driven at the middle frequency;
- (b) measured |k| (both sides of the source, `kl.waves.plane_wave_fit`) against the drive
  frequency, over the dispersion relation k(Omega) = 2 arcsin sqrt((Omega^2 - gamma)/(4
  kappa)) (continuous and symplectic-Euler) and the band edges;
- (c) measured phase speed (with standard errors) and front speed against Omega/k and the
  group speed kappa sin k / Omega;
- (d) the 2-D sheet driven at one site: the positions h, with the direction of the local
  phase velocity (`kl.waves.phase_velocity`) as unit arrows; (e) its instantaneous-phase map.

Prints the table of measured and predicted values.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from _script import figure_main  # noqa: E402


def summarise(path):
    with xr.open_dataset(path) as ds:
        return ds.load()


def figure(ds):
    fig = plt.figure(figsize=(13, 7.5), layout="constrained")
    gs = fig.add_gridspec(2, 3)
    gamma, kappa = float(ds.attrs["gamma"]), float(ds.attrs["kappa"])
    om = ds.omega_drive.values

    ax = fig.add_subplot(gs[0, 0])
    kymo = ds.h_kymograph.values
    lim = np.percentile(np.abs(kymo), 99.5)
    ax.imshow(kymo, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
              extent=[0, kymo.shape[1], 0, float(ds.time[-1])])
    mid = om[len(om) // 2]
    ax.set(xlabel="site x", ylabel="time t", title=f"(a) h(t, x), point source at Omega = {mid:g}")

    ax = fig.add_subplot(gs[0, 1])
    w = np.linspace(np.sqrt(gamma) + 1e-4, np.sqrt(gamma + 4 * kappa) - 1e-4, 300)
    ax.plot(2 * np.arcsin(np.sqrt((w**2 - gamma) / (4 * kappa))), w, "k-",
            label="linear theory")
    ax.plot(ds.k_theory_discrete, om, "k:",
            label="symplectic Euler, dt = %g, damped" % ds.attrs["dt"])
    ax.plot(np.abs(ds.k.sel(side="right")), om, "o", mfc="none", label="measured, right")
    ax.plot(np.abs(ds.k.sel(side="left")), om, "x", label="measured, left")
    for edge in (np.sqrt(gamma), np.sqrt(gamma + 4 * kappa)):
        ax.axhline(edge, color="0.7", lw=0.8)
    ax.set(xlabel="wave number |k| (rad/site)", ylabel="frequency Omega (rad/time)",
           title="(b) dispersion relation", xlim=(0, np.pi))
    ax.legend(fontsize=8)

    ax = fig.add_subplot(gs[0, 2])
    ax.plot(om, ds.speed_theory, "k-", label="phase speed Omega/k")
    ax.errorbar(om, ds.speed.sel(side="right"), ds.speed_se.sel(side="right"), fmt="o",
                mfc="none", label="measured phase speed")
    ax.plot(om, ds.group_speed_theory, "k--", label="group speed kappa sin k / Omega")
    ax.plot(om, ds.front_speed.sel(side="right"), "s", mfc="none", label="measured front speed")
    ax.set(xlabel="drive frequency Omega", ylabel="speed (sites/time)", title="(c) speeds")
    ax.legend(fontsize=8)

    ax = fig.add_subplot(gs[1, 0:2])
    snap = ds.h_snapshot.values
    lim = np.percentile(np.abs(snap), 99)
    ax.imshow(snap, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
    n = snap.shape[0]
    step = max(1, n // 16)
    rr, cc = np.mgrid[0:n:step, 0:n:step]
    vr = ds.velocity_row.values[::step, ::step]
    vc = ds.velocity_col.values[::step, ::step]
    speed = np.hypot(vr, vc)
    ok = np.isfinite(speed) & (speed < 3 * float(ds.radial_speed_2d_theory))
    norm = np.where(ok, speed, np.inf)  # unit arrows (direction); none where |k| ~ 0
    ax.quiver(cc[ok], rr[ok], (vc / norm)[ok], (vr / norm)[ok], angles="xy",
              scale_units="xy", scale=1 / (0.8 * step), width=0.003)
    ax.set(xlabel="col", ylabel="row",
           title=f"(d) 2-D sheet, h and local phase velocity; median radial speed "
                 f"{float(ds.radial_speed_2d):.3f} (axis theory "
                 f"{float(ds.radial_speed_2d_theory):.3f})")
    ax.set_aspect("equal")

    ax = fig.add_subplot(gs[1, 2])
    ax.imshow(ds.phase_snapshot.values, origin="lower", cmap="twilight", vmin=-np.pi,
              vmax=np.pi)
    ax.set(xlabel="col", ylabel="row", title="(e) instantaneous phase")
    return fig


def table(ds):
    lines = ["Omega   side   |k| meas   k theory   k (SE)   phase speed (SE)   Omega/k   "
             "front speed   group speed"]
    for w in ds.omega_drive.values:
        for side in ds.side.values:
            r = ds.sel(omega_drive=w, side=side)
            lines.append(
                f"{w:5.2f}  {side:>5}  {abs(float(r.k)):9.4f}  {float(r.k_theory):9.4f}  "
                f"{float(r.k_se):.1e}  {float(r.speed):8.4f} ({float(r.speed_se):.1e})  "
                f"{float(r.speed_theory):8.4f}  {float(r.front_speed):11.4f}  "
                f"{float(r.group_speed_theory):11.4f}"
            )
    err = np.abs(np.abs(ds.k) - ds.k_theory) / ds.k_theory
    lines.append(f"max relative |k| error vs theory: {float(err.max()):.4f}")
    err = np.abs(np.abs(ds.k) - ds.k_theory_discrete) / ds.k_theory_discrete
    lines.append(f"max relative |k| error vs the damped symplectic-Euler relation: "
                 f"{float(err.max()):.1e}")
    for w in ds.omega_drive.values:
        r = ds.sel(omega_drive=w, side="right")
        lines.append(f"Omega {w:4.2f}: decay rate {float(r.decay_rate):.4f} /site "
                     f"(theory {float(r.decay_rate_theory):.4f})")
    lines.append(f"2-D radial phase speed {float(ds.radial_speed_2d):.4f} vs "
                 f"{float(ds.radial_speed_2d_theory):.4f} (grid-axis theory)")
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/waves_dispersion.nc", summarise, figure, table,
                       argv)


if __name__ == "__main__":
    sys.exit(main())
