"""Figure and table: KuraNet global synchrony (Table I) from `studies/kuranet_global.py`.

    python analysis/kuranet_global.py data/runs/kuranet_global.nc [--out PNG]

Panels per case: the training loss (kept seed; grey: every other seed of the seed
search); R(t) on a new test network, trained vs control
(grey band: the loss window); the trained coupling matrix with nodes sorted by omega.
The table puts the test losses (1 - R) beside the paper's Table I, then the seed
search: every seed's validation and Data-regime test loss.
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

    cases = list(ds.case.values)
    fig, axes = plt.subplots(3, len(cases), figsize=(4.2 * len(cases), 10), squeeze=False)
    burn = ds.attrs["burn_in_steps"] * ds.attrs["dt"]
    for j, c in enumerate(cases):
        d = ds.sel(case=c)
        ax = axes[0, j]
        loss = d.train_loss.values
        if "train_loss_seed" in d:
            for other in d.train_loss_seed.values:
                ax.plot(other, lw=0.3, color="0.85", zorder=0)
        ax.plot(loss, lw=0.6, color="0.6")
        if np.isfinite(loss).sum() >= 10:
            k = 10
            ax.plot(np.arange(k - 1, loss.size), np.convolve(loss, np.ones(k) / k, "valid"), color="C0")
        ax.set(title=f"case {c}: training loss (1 - R)", xlabel="SGD step", ylim=(0, 1))
        ax = axes[1, j]
        for kind, col in (("trained", "C0"), ("control", "C3")):
            ax.plot(d.time, d.R_example.sel(coupling_kind=kind), color=col, label=kind)
        ax.axvspan(burn, float(d.time[-1]), color="0.9", zorder=0)
        ax.set(title="R(t), new test network (window shaded)", xlabel="t", ylim=(0, 1.02))
        ax.legend(loc="lower left", fontsize=8)
        ax = axes[2, j]
        K = d.K_example.sel(coupling_kind="trained").values
        om = d.omega_example.values
        im = ax.imshow(K, origin="lower", cmap="viridis",
                       extent=(om[0], om[-1], om[0], om[-1]), aspect="auto")
        fig.colorbar(im, ax=ax, shrink=0.8)
        cx = float(d.c_omega.sel(coupling_kind="trained"))
        ax.set(title=f"trained K_ij (c_omega = {cx:.2f})", xlabel="omega_j (sender)",
               ylabel="omega_i (receiver)")
    fig.tight_layout()
    return fig


def _get(da, coupling: str) -> str:
    """`da` at `coupling` to 4 places, or "-" for files written before that column."""
    if coupling not in da.coupling.values:
        return "-"
    return f"{float(da.sel(coupling=coupling)):.4f}"


def table(ds) -> str:
    lines = [
        f"KuraNet Table I: test 1 - R (train n = {ds.attrs['n_train']}, Size n = "
        f"{ds.attrs['size_n']}, steps {ds.attrs['train_steps']}, hidden_norm "
        f"{ds.attrs['hidden_norm']})",
        "",
        "| case | regime | trained | paper trained | control (untrained MLP) | control, "
        "reference's eval mode | paper control | uniform 1/n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in ds.case.values:
        for r in ds.regime.values:
            d = ds.sel(case=c, regime=r)
            lines.append(
                f"| {c} | {r} | {float(d.loss.sel(coupling='trained')):.4f} | "
                f"{float(d.paper_loss.sel(coupling='trained')):.4f} | "
                f"{float(d.loss.sel(coupling='control')):.4f} | "
                f"{_get(d.loss, 'control_eval')} | "
                f"{float(d.paper_loss.sel(coupling='control')):.4f} | "
                f"{float(d.loss.sel(coupling='uniform')):.4f} |"
            )
    lines.append("")
    if "val_loss" in ds:
        lines.append(f"seed search ({ds.sizes['seed']} seeds, init {ds.attrs.get('init')}, "
                     f"kept: lowest validation loss on {ds.attrs.get('val_graphs')} networks):")
        for c in ds.case.values:
            d = ds.sel(case=c)
            t = d.data_loss_seed.values
            lines.append(
                f"- {c}: kept seed {int(d.best_seed)}; validation "
                f"{' '.join(f'{v:.3f}' for v in d.val_loss.values)}; Data test median "
                f"{np.median(t):.3f}, best {np.min(t):.3f}, worst {np.max(t):.3f}")
        lines.append("")
    lines.append("c_x (h, omega, tau) trained / control: " + ", ".join(
        f"{c}: {float(ds.c_x.sel(case=c, coupling_kind='trained')):.3f} / "
        f"{float(ds.c_x.sel(case=c, coupling_kind='control')):.3f}" for c in ds.case.values))
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/kuranet_global.nc", summarise, figure, table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
