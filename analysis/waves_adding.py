"""Figure and table: the adding task on a coRNN sheet, coupled vs uncoupled (`studies/waves_adding.py`).

    python analysis/waves_adding.py data/runs/waves_adding.nc [--out PNG]

Top row: training MSE (smoothed) and test MSE per sheet, with the trivial predictor
(1/6) and the "solved" line (0.05); the trained kernels W_h and W_v. Bottom row: the
position h of the trained coupled sheet on a test sequence at the two marker times and
at the end, and the Hilbert phase map at the end (kl.waves).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import figure_main  # noqa: E402

import kuralab as kl  # noqa: E402


def summarise(path):
    return kl.io.load(path)


def _smooth(y, k=25):
    y = np.asarray(y, float)
    ok = np.isfinite(y)
    y = y[ok]
    if y.size < k:
        return np.arange(y.size), y
    return np.arange(k - 1, y.size), np.convolve(y, np.ones(k) / k, "valid")


def figure(ds):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    ax = axes[0, 0]
    for i, s in enumerate(ds.sheet.values):
        col = f"C{i}"
        x, y = _smooth(ds.train_loss.sel(sheet=s).values)
        ax.plot(x, y, color=col, lw=0.8, alpha=0.6, label=f"{s} (train, smoothed)")
        ev = ds.test_mse_history.sel(sheet=s).values
        ok = np.isfinite(ev)
        ax.plot(ds.step.values[ok] + 1, ev[ok], "o-", color=col, ms=3, label=f"{s} (test)")
    ax.axhline(ds.attrs["trivial_mse"], color="0.4", ls="--", lw=1, label="trivial (always 1)")
    ax.axhline(ds.attrs["solved_threshold"], color="k", ls=":", lw=1, label="solved")
    ax.set(yscale="log", xlabel="Adam step", ylabel="MSE",
           title=f"adding task, T = {ds.attrs['length']}, {ds.attrs['shape']} sheet")
    ax.legend(fontsize=7)
    for j, name in enumerate(("kernel_h", "kernel_v")):
        ax = axes[0, 1 + j]
        if name in ds:
            K = ds[name].values
            lim = np.abs(K).max() or 1.0
            im = ax.imshow(K, cmap="RdBu_r", vmin=-lim, vmax=lim)
            for (r, c), v in np.ndenumerate(K):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8)
            fig.colorbar(im, ax=ax, shrink=0.7)
        ax.set(title=f"trained {name} (coupled sheet)", xticks=[], yticks=[])
    ax = axes[0, 3]
    names = list(ds.sheet.values)
    ax.bar(names, ds.test_mse.values, color=[f"C{i}" for i in range(len(names))])
    ax.axhline(ds.attrs["trivial_mse"], color="0.4", ls="--", lw=1)
    ax.axhline(ds.attrs["solved_threshold"], color="k", ls=":", lw=1)
    ax.set(yscale="log", ylabel="test MSE", title=f"after {ds.attrs['steps']} steps")
    if "h_example" in ds:
        h = ds.h_example.values
        marks = np.flatnonzero(ds.marker_example.values > 0.5)
        times = [int(marks[0]), int(marks[1]), h.shape[0] - 1]
        lim = np.abs(h).max() or 1.0
        for j, t in enumerate(times):
            ax = axes[1, j]
            im = ax.imshow(h[t], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set(title=f"h at t = {t}" + (" (marker)" if j < 2 else " (end)"), xticks=[], yticks=[])
        fig.colorbar(im, ax=axes[1, 2], shrink=0.7)
        ax = axes[1, 3]
        ph = ds.phase_example.values[-1]
        im = ax.imshow(ph, cmap="twilight", vmin=-np.pi, vmax=np.pi)
        k = np.asarray(kl.waves.wave_vector(ds.phase_example.values[-1:], ndim=2))[0]
        yy, xx = np.mgrid[: ph.shape[0], : ph.shape[1]]
        ax.quiver(xx, yy, k[..., 1], -k[..., 0], color="k", scale=25)
        fig.colorbar(im, ax=ax, shrink=0.7)
        ax.set(title=f"phase at the end (speed {ds.attrs['wave_speed']:.2g} sites/step,\n"
                     f"coherence {ds.attrs['wave_coherence']:.2f})", xticks=[], yticks=[])
    else:
        for ax in axes[1]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def table(ds) -> str:
    lines = [
        f"adding task, T = {ds.attrs['length']}, sheet {ds.attrs['shape']}, {ds.attrs['steps']} Adam "
        f"steps (lr {ds.attrs['lr']}, batch {ds.attrs['batch']}), test set {ds.attrs['test_batch']}",
        f"reference (NWM): {ds.attrs['reference']}",
        "",
        "| sheet | test MSE | untrained | trivial (always 1) | solved (<= 0.05) at step |",
        "|---|---|---|---|---|",
    ]
    for s in ds.sheet.values:
        d = ds.sel(sheet=s)
        at = int(d.solved_at)
        lines.append(f"| {s} | {float(d.test_mse):.4f} | {float(d.untrained_mse):.4f} | "
                     f"{ds.attrs['trivial_mse']:.4f} | {at if at >= 0 else 'not solved'} |")
    if "wave_speed" in ds.attrs:
        lines += ["", f"coupled sheet, test sequence 0, plane-wave fit of the Hilbert phase: speed "
                      f"{ds.attrs['wave_speed']:.3g} +- {ds.attrs['wave_speed_se']:.2g} sites/step, "
                      f"coherence {ds.attrs['wave_coherence']:.3f}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/waves_adding.nc", summarise, figure, table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
