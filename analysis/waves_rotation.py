"""Figure and table: rotating shapes through a coRNN-sheet autoencoder (`studies/waves_rotation.py`).

    python analysis/waves_rotation.py data/runs/waves_rotation.nc [--out PNG]

Row 1: training loss and held-out next-frame NLL per sheet; the first turn of a test
sequence. Row 2 (trained coupled sheet, test sequence 0, after the first turn): the
latent position h at four frames (wave snapshots). Row 3: its Hilbert phase with the
local wave vectors (kl.waves.wave_vector), the maps of phase locking to the rotation for
the coupled and the uncoupled sheet, and the distribution of plane-wave speeds.
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
    y = y[np.isfinite(y)]
    if y.size < k:
        return np.arange(y.size), y
    return np.arange(k - 1, y.size), np.convolve(y, np.ones(k) / k, "valid")


def figure(ds):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(16, 11))
    gs = fig.add_gridspec(3, 4)
    ax = fig.add_subplot(gs[0, 0])
    for i, s in enumerate(ds.sheet.values):
        x, y = _smooth(ds.train_loss.sel(sheet=s).values)
        ax.plot(x, y, color=f"C{i}", lw=0.8, alpha=0.6, label=f"{s} train")
        ev = ds.val_nll.sel(sheet=s).values
        ok = np.isfinite(ev)
        ax.plot(ds.step.values[ok] + 1, ev[ok], "o-", ms=3, color=f"C{i}", label=f"{s} held-out NLL")
    ax.set(xlabel="Adam step", ylabel="nats / frame", title="next-frame loss", yscale="log")
    ax.legend(fontsize=7)
    frames = ds.frames_example.values
    sub = gs[0, 1:].subgridspec(2, 9, wspace=0.05, hspace=0.05)
    for t in range(min(18, frames.shape[0])):
        a = fig.add_subplot(sub[t // 9, t % 9])
        a.imshow(frames[t], cmap="gray_r", vmin=0, vmax=1)
        a.set(xticks=[], yticks=[])
        if t == 0:
            a.set_title("test sequence 0 (20 deg / frame)", loc="left", fontsize=9)
    sheet = "coupled" if "coupled" in ds.sheet.values else ds.sheet.values[0]
    h = ds.h_example.sel(sheet=sheet).values
    ph = ds.phase_example.sel(sheet=sheet).values
    lim = np.abs(h).max() or 1.0
    drop = int(ds.attrs["dropped_frames"])
    for j, t in enumerate(np.linspace(0, min(h.shape[0] - 1, 13), 4).astype(int)):
        a = fig.add_subplot(gs[1, j])
        a.imshow(h[t], cmap="RdBu_r", vmin=-lim, vmax=lim)
        a.set(title=f"{sheet} latent h, frame {t + drop}", xticks=[], yticks=[])
    a = fig.add_subplot(gs[2, 0])
    t = 0
    im = a.imshow(ph[t], cmap="twilight", vmin=-np.pi, vmax=np.pi)
    k = np.asarray(kl.waves.wave_vector(ph[t : t + 1], ndim=2))[0]
    yy, xx = np.mgrid[: ph.shape[1], : ph.shape[2]]
    a.quiver(xx, yy, k[..., 1], -k[..., 0], color="k")
    fig.colorbar(im, ax=a, shrink=0.7)
    a.set(title=f"phase + local wave vectors, frame {drop}", xticks=[], yticks=[])
    for j, s in enumerate([m for m in ("coupled", "uncoupled") if m in ds.model.values]):
        a = fig.add_subplot(gs[2, 1 + j])
        plv = ds.plv.sel(model=s).values[0]
        im = a.imshow(plv, cmap="viridis", vmin=0, vmax=1)
        fig.colorbar(im, ax=a, shrink=0.7)
        a.set(title=f"{s}: PLV to rotation, locked {float(ds.locked_fraction.sel(model=s)):.2f}",
              xticks=[], yticks=[])
    a = fig.add_subplot(gs[2, 3])
    for i, m in enumerate(ds.model.values):
        sp = ds.speed.sel(model=m).values
        sp = sp[np.isfinite(sp)]
        a.hist(np.clip(sp, 0, 5), bins=20, range=(0, 5), alpha=0.5, color=f"C{i}", label=m)
    a.set(xlabel="plane-wave speed (sites / frame, clipped at 5)", ylabel="test sequences",
          title="wave speed per test sequence")
    a.legend(fontsize=8)
    fig.tight_layout()
    return fig


def table(ds) -> str:
    lines = [
        f"rotating shapes, {ds.attrs['size']}x{ds.attrs['size']} px, sheet {ds.attrs['shape']}, "
        f"{ds.attrs['steps']} Adam steps (lr {ds.attrs['lr']}, batch {ds.attrs['batch']}), "
        f"variational {bool(ds.attrs['variational'])}; test: {ds.sizes['sequence']} sequences of "
        f"{ds.attrs['test_frames']} frames, waves measured after frame {ds.attrs['dropped_frames']}",
        "",
        "| model | next-frame NLL | MSE | copy-last-frame MSE | speed (median, sites/frame) | "
        "direction spread (circ. var.) | plane coherence | neighbour smoothness | locked fraction |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in ds.model.values:
        d = ds.sel(model=m)
        cv = 1 - abs(np.mean(np.exp(1j * d.direction.values)))
        lines.append(
            f"| {m} | {float(d.nll.mean()):.1f} | {float(d.mse.mean()):.4f} | {float(d.copy_mse.mean()):.4f} | "
            f"{float(np.nanmedian(d.speed.values)):.3g} | {cv:.2f} | {float(d.coherence.mean()):.3f} | "
            f"{float(d.smoothness.mean()):.3f} | {float(d.locked_fraction):.3f} |"
        )
    lines.append(f"(locked: PLV >= {ds.attrs['lock_threshold']} to the rotation phase 2 pi t / 18)")
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/waves_rotation.nc", summarise, figure, table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
