"""Figure: the AKOrN Fig. 1 demo (silhouette stimulus, Gaussian local coupling).

    python analysis/akorn_fig1.py data/runs/akorn_fig1.nc --out data/runs/akorn_fig1.png

Reads the result of `python studies/akorn_fig1.py` (dims `omega`, `snapshot`, `row`,
`col`, `time`) and draws, for each rotation rate omega (rows), the stimulus silhouette
and the phase map arg x at four times (cyclic colour map), then the synchrony
|mean x| inside the silhouette and in the background over time, and the energy
E(t) = -1/2 x.Jx - c.x with the `kl.check_lyapunov` verdict: with omega = 0 the
hypotheses of AKOrN App. F hold and E falls monotonically; with omega != 0,
Omega c != 0 and E oscillates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import kuralab as kl  # noqa: E402
from kuralab.plot import save_figure  # noqa: E402

TIMES = (0.0, 5.0, 15.0, 60.0)


def figure(ds):
    omegas = ds.omega.values
    fig = plt.figure(figsize=(15, 4.0 * len(omegas) + 4), layout="constrained")
    grid = fig.add_gridspec(len(omegas) + 1, len(TIMES) + 1)
    snaps = ds.snapshot.values
    im = None
    for r, om in enumerate(omegas):
        d = ds.sel(omega=om)
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(ds.mask.values, cmap="gray_r")
        ax.set_title(
            f"stimulus c: s(1,0) on the cat,\ns(-1,0) elsewhere (omega = {om:g})",
            fontsize="small",
        )
        ax.set_axis_off()
        for k, t in enumerate(TIMES):
            i = int(np.argmin(np.abs(snaps - t)))
            ax = fig.add_subplot(grid[r, k + 1])
            im = ax.imshow(
                d.theta.isel(snapshot=i).values,
                cmap="twilight",
                vmin=-np.pi,
                vmax=np.pi,
            )
            ax.contour(ds.mask.values, levels=[0.5], colors="k", linewidths=0.6)
            ax.set_title(f"omega = {om:g}, t = {snaps[i]:g}", fontsize="small")
            ax.set_axis_off()
    snap_axes = [
        a for a in fig.axes if a.images and a.images[0].cmap.name == "twilight"
    ]
    fig.colorbar(im, ax=snap_axes, label="phase arg x (rad)", shrink=0.6)
    bottom = grid[-1, :].subgridspec(1, 1 + len(omegas))
    ax = fig.add_subplot(bottom[0, 0])
    for k, om in enumerate(omegas):
        d = ds.sel(omega=om)
        ax.plot(snaps, d.R_object, color=f"C{k}", label=f"silhouette, omega = {om:g}")
        ax.plot(
            snaps,
            d.R_background,
            color=f"C{k}",
            ls="--",
            label=f"background, omega = {om:g}",
        )
    ax.set_xlabel("time")
    ax.set_ylabel("|mean x| over the region")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("synchronisation", fontsize="medium")
    for k, om in enumerate(omegas):
        d = ds.sel(omega=om)
        ax = fig.add_subplot(bottom[0, 1 + k])
        E = d.E.values
        ax.plot(ds.time.values, E, color=f"C{k}")
        ax.set_xlabel("time")
        ax.set_ylabel("E(t)")
        ax.grid(alpha=0.3)
        ax.set_title(
            f"omega = {om:g}: {d.verdict.values} ({d.theorem.values})\nlargest rise of E "
            f"{float(d.max_increase):.2g}, tolerance {float(d.tolerance):.2g}",
            fontsize="small",
        )
    fig.suptitle(
        f"AKOrN demo: {ds.attrs.get('grid')}x{ds.attrs.get('grid')} oscillators on S^1, "
        f"Gaussian local coupling (sigma = {ds.attrs.get('sigma')}, K = {ds.attrs.get('K')})"
    )
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", help="data/runs/akorn_fig1.nc")
    parser.add_argument("--out", help="output PNG (default: RESULT with .png)")
    args = parser.parse_args(argv)
    ds = kl.io.load(args.result)
    if "theta" not in ds or "mask" not in ds:
        raise SystemExit(f"error: {args.result}: not an akorn_fig1 result")
    out = Path(args.out) if args.out else Path(args.result).with_suffix(".png")
    for om in ds.omega.values:
        d = ds.sel(omega=om)
        print(
            f"omega = {om:g}: verdict {d.verdict.values} ({d.theorem.values}), largest "
            f"rise of E {float(d.max_increase):.3g}; final |mean x| silhouette "
            f"{float(d.R_object[-1]):.3f}, background {float(d.R_background[-1]):.3f}"
        )
    save_figure(figure(ds), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
