"""Figure and table: Kuramoto orientation diffusion vs isotropic, from
`studies/orientation_diffusion.py`.

    python analysis/orientation_diffusion.py data/runs/orientation_diffusion.nc [--out PNG]

Rows: forward SNR(t) and coherence per data set (both processes); samples vs held-out
data on the torus (first two coordinates, at the largest reverse-step count); sample
quality against the number of reverse steps; for fields, forward and reverse chains
and samples vs data. The table lists every metric beside the paper's claim.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import figure_main  # noqa: E402

import kuralab as kl  # noqa: E402

COLORS = {"kuramoto": "C0", "isotropic": "C3"}


def summarise(path):
    return kl.io.load(path)


def figure(ds):
    import matplotlib.pyplot as plt

    names = list(ds.dataset.values)
    torus = [s for s in names if s != "gratings"]
    has_fields = "field_data" in ds
    rows = 2 + (1 if torus else 0) + (2 if has_fields else 0)
    ncol = max(4, len(torus))
    fig, axes = plt.subplots(rows, ncol, figsize=(3.6 * ncol, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    t = ds.t.values
    for j, s in enumerate(names[:ncol]):
        for row, var, ylab, log in ((0, "snr", "SNR", True), (1, "coherence", "E cos(θt − θ0)", False)):
            ax = axes[row, j]
            ax.set_visible(True)
            for q in ds.process.values:
                y = ds[var].sel(dataset=s, process=q).values
                ax.plot(t, np.clip(y, 1e-4, None) if log else y, color=COLORS[str(q)], label=str(q))
            ax.set(title=f"{s}: forward {var}", xlabel="step t", ylabel=ylab, yscale="log" if log else "linear")
            ax.legend(fontsize=7)
    r = 2
    if torus:
        for j, s in enumerate(torus[:ncol]):
            ax = axes[r, j]
            ax.set_visible(True)
            d = ds.data.sel(dataset=s).values
            big = int(ds.reverse_steps.values.max())
            ax.scatter(d[:, 0], d[:, 1] if np.isfinite(d[:, 1]).any() else np.zeros(len(d)) - 0.3,
                       s=3, c="k", alpha=0.5, label="data")
            for k, q in enumerate(ds.process.values):
                x = ds.samples.sel(dataset=s, process=q, reverse_steps=big).values
                yv = x[:, 1] if np.isfinite(x[:, 1]).any() else np.zeros(len(x)) + 0.3 * (k + 1)
                ax.scatter(x[:, 0], yv, s=3, color=COLORS[str(q)], alpha=0.4, label=f"{q}")
            ax.set(title=f"{s}: samples ({big} reverse steps)", xlim=(-np.pi, np.pi), xlabel="θ1", ylabel="θ2")
            ax.legend(fontsize=7, markerscale=3)
        r += 1
    if has_fields:
        names_f = list(ds.process.values)
        nshow = min(ncol, ds.field_forward.sizes["t"])
        idx = np.linspace(0, ds.field_forward.sizes["t"] - 1, nshow).astype(int)
        for k, q in enumerate(names_f[:1]):
            for j, i in enumerate(idx):
                ax = axes[r, j]
                ax.set_visible(True)
                ax.imshow(ds.field_forward.sel(process=q).values[i], cmap="twilight", vmin=-np.pi, vmax=np.pi)
                ax.set(title=f"{q} forward t={i + 1}", xticks=[], yticks=[])
        for j in range(ncol):
            ax = axes[r + 1, j]
            ax.set_visible(True)
            if j == 0:
                img, title = ds.field_data.values[0], "data"
            elif j - 1 < len(names_f) * 2:
                q = names_f[(j - 1) // 2]
                img, title = ds.field_samples.sel(process=q).values[(j - 1) % 2], f"{q} sample"
            else:
                img, title = ds.field_data.values[min(j, ds.field_data.sizes['example'] - 1)], "data"
            ax.imshow(img, cmap="twilight", vmin=-np.pi, vmax=np.pi)
            ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def table(ds) -> str:
    lines = [f"Orientation diffusion: sample quality vs held-out data (lower is better); {ds.attrs['paper_claim']}",
             f"{'dataset':9s} {'metric':16s} {'steps':>5s} {'kuramoto':>10s} {'isotropic':>10s}  better"
             f"{'   (data vs data)' if 'metric_floor' in ds else ''}"]
    for s in ds.dataset.values:
        for m in ds.metric.values:
            for r in ds.reverse_steps.values:
                ku = float(ds.metrics.sel(dataset=s, metric=m, reverse_steps=r, process="kuramoto"))
                iso = float(ds.metrics.sel(dataset=s, metric=m, reverse_steps=r, process="isotropic"))
                if np.isnan(ku):
                    continue
                better = "kuramoto" if ku < iso else "isotropic"
                floor = (f"   {float(ds.metric_floor.sel(dataset=s, metric=m)):.4g}"
                         if "metric_floor" in ds else "")
                lines.append(f"{s:9s} {m:16s} {int(r):5d} {ku:10.4g} {iso:10.4g}  {better:9s}{floor}")
    lines.append("prior R (Kuramoto): " + ", ".join(
        f"{s} {float(ds.prior_order.sel(dataset=s)):.3f}" for s in ds.dataset.values))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(figure_main(__doc__, "data/runs/orientation_diffusion.nc", summarise, figure, table))
