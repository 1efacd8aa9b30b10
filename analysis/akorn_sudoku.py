"""Figure and table: AKOrN 4x4 Sudoku with energy voting, from `studies/akorn_sudoku.py`.

    python analysis/akorn_sudoku.py data/runs/akorn_sudoku.nc [--out PNG]

Panels: the training loss; board accuracy against the number of votes K (ID and OOD, at
the training T and the test-time T; lowest logged energy summed over steps), with the
paper's 9x9 OOD numbers for reference; the energy of every run by correctness (OOD,
test-time T); the energy along the steps of 16 runs on one OOD puzzle. The table lists
board and cell accuracy for every score, and the energy--correctness correlations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _script import figure_main  # noqa: E402

import kuralab as kl  # noqa: E402

MAIN = "energy_logged:sum"


def summarise(path):
    return kl.io.load(path)


def figure(ds):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    ax = axes[0]
    loss = ds.train_loss.values
    ax.plot(loss, lw=0.5, color="0.6")
    k = min(20, loss.size)
    ax.plot(np.arange(k - 1, loss.size), np.convolve(loss, np.ones(k) / k, "valid"), color="C0")
    ax.set(title="training cross-entropy", xlabel="Adam step", yscale="log")

    ax = axes[1]
    K = ds.votes.values
    for i, sp in enumerate(ds.split.values):
        for j, T in enumerate(ds["T"].values):
            acc = 100 * ds.board_acc.sel(split=sp, T=T, score=MAIN).values
            ax.plot(K, acc, "o-" if j else "s--", color=f"C{i}", label=f"{sp}, T={T}")
    pk = [1, 100, 4096]
    pv = 100 * ds.paper_board_acc.sel(paper_case=["ood_K1", "ood_K100", "ood_K4096"]).values
    ax.plot(pk, pv, "k:", marker="x", label="paper 9x9 OOD")
    ax.set(xscale="log", xlabel="votes K", ylabel="board accuracy (%)", ylim=(0, 102),
           title="energy voting (lowest summed logged E)")
    ax.legend(fontsize=7)

    ax = axes[2]
    sp = "ood" if "ood" in ds.split.values else ds.split.values[0]
    s = ds.run_score.sel(split=sp).values.ravel()
    ok = ds.run_correct.sel(split=sp).values.ravel().astype(bool)
    bins = np.linspace(s.min(), s.max(), 40)
    ax.hist(s[ok], bins, alpha=0.6, color="C2", label=f"correct ({ok.sum()})", density=True)
    ax.hist(s[~ok], bins, alpha=0.6, color="C3", label=f"wrong ({(~ok).sum()})", density=True)
    r = float(ds.energy_correct_corr.sel(split=sp, T=ds["T"].values[-1], score=MAIN,
                                         pooling="within_puzzle"))
    ax.set(title=f"{sp}: energy per run (within-puzzle r = {r:.2f})",
           xlabel="logged energy summed over steps", ylabel="density")
    ax.legend(fontsize=8)

    ax = axes[3]
    tr = ds.trace_energy.values
    okt = ds.trace_correct.values.astype(bool)
    for v in range(tr.shape[0]):
        ax.plot(tr[v], color="C2" if okt[v] else "C3", lw=0.8, alpha=0.8)
    ax.set(title="logged E along the steps, one OOD puzzle",
           xlabel="Kuramoto step", ylabel="E_logged")
    fig.tight_layout()
    return fig


def table(ds):
    lines = [f"# AKOrN 4x4 Sudoku ({ds.attrs['command']})", ""]
    lines.append("| split | T | score | board K=1 | K=16 | K=64 | cell K=1 | K=16 | K=64 | "
                 "r(E, correct) all | within |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for sp in ds.split.values:
        for T in ds["T"].values:
            for sc in ds.score.values:
                b = 100 * ds.board_acc.sel(split=sp, T=T, score=sc).values
                c = 100 * ds.cell_acc.sel(split=sp, T=T, score=sc).values
                r = ds.energy_correct_corr.sel(split=sp, T=T, score=sc).values
                lines.append(f"| {sp} | {T} | {sc} | " + " | ".join(f"{v:.1f}" for v in b)
                             + " | " + " | ".join(f"{v:.1f}" for v in c)
                             + f" | {r[0]:+.2f} | {r[1]:+.2f} |")
    p = 100 * ds.paper_board_acc.values
    lines += ["", "Paper (9x9, ch 512, T 16/128, GPU): board accuracy ID "
              f"{p[0]:.1f}%, OOD {p[1]:.1f}% (K=1) -> {p[2]:.1f}% (K=100) -> {p[3]:.1f}% (K=4096)",
              f"Learned gamma {ds.attrs['gamma_learned']:.3f}, omega {ds.attrs['omega_learned']}; "
              f"wall time {ds.attrs['wall_seconds']:.0f} s"]
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/akorn_sudoku.nc", summarise, figure, table, argv)


if __name__ == "__main__":
    raise SystemExit(main())
