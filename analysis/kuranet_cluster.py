"""Figure and table: KuraNet cluster synchrony (Table II) from `studies/kuranet_cluster.py`.

    python analysis/kuranet_cluster.py data/runs/kuranet_cluster.nc [--out PNG]

Per data set: the training loss; a test set's points coloured by their final phase,
trained vs control; the final phases on the unit circle by label (a splay of
synchronous clusters is the target). The table puts the test losses beside Table II.
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


def figure(ds):
    import matplotlib.pyplot as plt

    names = list(ds.dataset.values)
    fig, axes = plt.subplots(len(names), 4, figsize=(15, 3.6 * len(names)), squeeze=False)
    for i, s in enumerate(names):
        d = ds.sel(dataset=s)
        ax = axes[i, 0]
        if "train_loss_seed" in d:  # older files have no seed search
            best = int(d.best_seed)
            for k, h in enumerate(d.train_loss_seed.values):
                if k != best:
                    ax.plot(h, lw=0.6, color="0.6", alpha=0.7)
        ax.plot(d.train_loss.values, lw=0.9, color="C0", label="kept seed")
        ax.set(title=f"{s}: training loss (grey: other seeds)", xlabel="Adam step", ylim=(0, 1))
        x = d.x_example.values
        lab = d.labels_example.values
        for j, kind in enumerate(("trained", "control")):
            th = d.theta_final.sel(coupling=kind).values
            ax = axes[i, 1 + j]
            ax.scatter(x[:, 0], x[:, 1], c=np.mod(th, 2 * np.pi), cmap="hsv", vmin=0,
                       vmax=2 * np.pi, s=14)
            ax.set(title=f"{kind}: final phase (test {float(d.loss.sel(coupling=kind, regime='data')):.3f})",
                   aspect="equal")
        ax = axes[i, 3]
        for j, (kind, r) in enumerate((("trained", 1.0), ("control", 0.8))):
            th = d.theta_final.sel(coupling=kind).values
            ax.scatter(r * np.cos(th), r * np.sin(th), c=lab, cmap="tab10", vmin=0, vmax=9,
                       s=12, marker="o" if j == 0 else "x")
        ax.set(title="phases by label (o trained r=1, x control r=0.8)", aspect="equal",
               xlim=(-1.2, 1.2), ylim=(-1.2, 1.2))
    fig.tight_layout()
    return fig


def table(ds) -> str:
    ref = "loss_reference_protocol" in ds  # files from before the reference protocol lack it
    head = "| data set | regime | trained | control |"
    rule = "|---|---|---|---|"
    if ref:
        head += " trained, ref. protocol | control, ref. protocol |"
        rule += "---|---|"
    lines = [
        f"KuraNet Table II: test cluster loss (train n = {ds.attrs['n_train']}, Size n = "
        f"{ds.attrs['size_n']}, steps {ds.attrs['train_steps']}, Adam lr {ds.attrs['lr']})",
        "",
        head + " paper trained | paper control |",
        rule + "---|---|",
    ]
    if "val_loss" in ds:
        lines[1:1] = ["", "Seed search (validation loss per seed; kept = lowest): " + "; ".join(
            f"{s}: {np.round(ds.val_loss.sel(dataset=s).values, 4).tolist()} -> seed "
            f"{int(ds.best_seed.sel(dataset=s))}" for s in ds.dataset.values)]
    for s in ds.dataset.values:
        for r in ds.regime.values:
            d = ds.sel(dataset=s, regime=r)
            row = (f"| {s} | {r} | {float(d.loss.sel(coupling='trained')):.4f} | "
                   f"{float(d.loss.sel(coupling='control')):.4f} |")
            if ref:
                row += "".join(f" {float(d.loss_reference_protocol.sel(coupling=k)):.4f} |"
                               for k in ("trained", "control"))
            lines.append(row + f" {float(d.paper_loss.sel(coupling='trained')):.4f} | ~0.5 |")
    if ref:
        lines += ["", "ref. protocol: the reference's evaluate.py burn-in (Data 1000 steps + "
                      "the 100-step window; Size and Data+Size 5000 steps, loss of the final "
                      "state), on the whole network."]
    lines.append("")
    lines.append("c_x of the points, trained / control: " + ", ".join(
        f"{s}: {float(ds.c_x.sel(dataset=s, coupling='trained')):.3f} / "
        f"{float(ds.c_x.sel(dataset=s, coupling='control')):.3f}" for s in ds.dataset.values))
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/kuranet_cluster.nc", summarise, figure, table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
