"""Figure: AKOrN energy traces and Lyapunov verdicts over model variants.

    python analysis/akorn_energy.py data/runs/akorn_energy.nc --out data/runs/akorn_energy.png

Reads the result of `python studies/akorn_energy.py` (dims `coupling`, `omega`,
`stimulus`, `vector_dim`, `seed`, `time`, `hypothesis`; the AKOrN-step part over
`gamma`, `step`) and draws

- top: E(t) - E(0) for seed 0, one panel per (vector dimension, Omega variant), colour =
  coupling, solid = no stimulus, dashed = stimulus. Curves for which the theorem's
  hypotheses hold (AKOrN App. F or G) are thick;
- bottom left: the verdict of `kl.check_lyapunov` for every variant and seed
  (lyapunov / counterexample / inconclusive / violation), annotated with the largest
  rise of E above its running minimum;
- bottom right: the AKOrN discrete update (`kl.AKOrNStep`) on a theorem case: the largest
  rise of E over 100 steps against the step gamma (max over seeds) and the rounding
  tolerance.

Prints the largest increase for the theorem cases and for each kind of counterexample.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

import kuralab as kl  # noqa: E402
from kuralab.plot import save_figure  # noqa: E402

VERDICTS = ("lyapunov", "inconclusive", "counterexample", "violation")
VERDICT_COLOURS = ("#4daf4a", "#bbbbbb", "#e41a1c", "#984ea3")
COUPLING_ORDER = ("symmetric", "commuting_blocks", "generic_blocks", "asymmetric")
OMEGA_ORDER = ("none", "shared", "per_oscillator")


def load(path):
    ds = kl.io.load(path)
    need = {"E", "verdict", "theorem", "max_increase", "akorn_max_increase"}
    if not need <= set(ds.data_vars):
        raise SystemExit(
            f"error: {path}: not an akorn_energy result (missing {sorted(need - set(ds.data_vars))})"
        )
    return ds.reindex(coupling=list(COUPLING_ORDER), omega=list(OMEGA_ORDER))


def figure(ds):
    fig = plt.figure(figsize=(16, 15), layout="constrained")
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1, 2.2])
    colours = {c: f"C{i}" for i, c in enumerate(COUPLING_ORDER)}
    t = ds.time.values
    for r, d in enumerate(ds.vector_dim.values):
        for col, om in enumerate(OMEGA_ORDER):
            ax = fig.add_subplot(grid[r, col])
            for cp in COUPLING_ORDER:
                for stim, ls in (("none", "-"), ("present", "--")):
                    sel = dict(
                        coupling=cp, omega=om, stimulus=stim, vector_dim=d, seed=0
                    )
                    E = ds.E.sel(sel).values
                    holds = str(ds.theorem.sel(sel).values) != "none"
                    ax.plot(
                        t,
                        E - E[0],
                        ls=ls,
                        color=colours[cp],
                        lw=2.4 if holds else 1.0,
                        label=f"{cp}, c {stim}" + (" (theorem)" if holds else ""),
                    )
            ax.set_title(f"N = {d}, Omega: {om}", fontsize="medium")
            ax.set_xlabel("time")
            ax.set_ylabel("E(t) - E(0)")
            ax.grid(alpha=0.3)
            if r == 0 and col == 0:
                ax.legend(fontsize="x-small", ncol=1)
    # Verdict matrix.
    ax = fig.add_subplot(grid[2, :2])
    rows, labels = [], []
    for cp in COUPLING_ORDER:
        for om in OMEGA_ORDER:
            for stim in ("none", "present"):
                rows.append(dict(coupling=cp, omega=om, stimulus=stim))
                th = str(ds.theorem.sel(rows[-1]).values.flat[0])
                labels.append(f"{cp} | Omega {om} | c {stim}  [{th}]")
    cols = [(int(d), int(s)) for d in ds.vector_dim.values for s in ds.seed.values]
    codes = np.zeros((len(rows), len(cols)))
    for i, sel in enumerate(rows):
        for j, (d, s) in enumerate(cols):
            cell = {**sel, "vector_dim": d, "seed": s}
            codes[i, j] = VERDICTS.index(str(ds.verdict.sel(cell).values))
            inc = float(ds.max_increase.sel(cell))
            ax.text(
                j,
                i,
                f"{inc:.1e}" if inc > 0 else "0",
                ha="center",
                va="center",
                fontsize=7,
            )
    ax.imshow(
        codes, cmap=ListedColormap(VERDICT_COLOURS), vmin=-0.5, vmax=3.5, aspect="auto"
    )
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xticks(range(len(cols)), [f"N={d}\nseed {s}" for d, s in cols], fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLOURS]
    ax.legend(
        handles,
        VERDICTS,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.06),
        ncol=4,
        fontsize="small",
    )
    ax.set_title(
        "check_lyapunov verdict (text: largest rise of E above its running minimum)",
        fontsize="medium",
    )
    # AKOrN discrete step.
    ax = fig.add_subplot(grid[2, 2])
    g = ds.gamma.values
    for k, d in enumerate(ds.vector_dim.values):
        inc = ds.akorn_max_increase.sel(vector_dim=d).max("seed").values
        tol = ds.akorn_tolerance.sel(vector_dim=d).max("seed").values
        ax.plot(g, np.maximum(inc, 1e-8), "o-", color=f"C{k}", label=f"N = {d}")
        ax.plot(g, tol, ":", color=f"C{k}", label=f"tolerance, N = {d}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("AKOrN step gamma")
    ax.set_ylabel("largest rise of E over 100 steps (max over seeds)")
    ax.set_title(
        "AKOrN discrete step, theorem case\n(symmetric J, no Omega, no c; "
        "1e-8 = no rise)",
        fontsize="medium",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.suptitle(
        "Is the AKOrN energy E = -1/2 x.Jx - c.x a Lyapunov function? "
        f"(n = {ds.attrs.get('n_osc')}, rk4, dt = {ds.attrs.get('dt')})"
    )
    return fig


def summary(ds) -> str:
    theorem = ds.theorem != "none"
    lines = [
        f"theorem cases ({int(theorem.sum())} runs): largest increase "
        f"{float(ds.max_increase.where(theorem).max()):.3g} "
        f"(tolerance {float(ds.tolerance.where(theorem).min()):.3g}-"
        f"{float(ds.tolerance.where(theorem).max()):.3g}); verdicts "
        + str(
            sorted(
                str(v) for v in set(ds.verdict.where(theorem, "").values.ravel()) - {""}
            )
        )
    ]
    hyp = ds.holds.isel(seed=0)
    kinds = {
        "asymmetric J": ~hyp.sel(hypothesis="block_symmetric"),
        "Omega c != 0": ~hyp.sel(hypothesis="omega_c_zero")
        & hyp.sel(hypothesis="block_symmetric"),
        "per-oscillator Omega / non-commuting J (commutator != 0)": ~hyp.sel(
            hypothesis="commutator_psd"
        )
        & hyp.sel(hypothesis="block_symmetric")
        & hyp.sel(hypothesis="omega_c_zero"),
    }
    for name, mask in kinds.items():
        inc = ds.max_increase.where(mask)
        v = ds.verdict.where(mask, "").values.ravel()
        counts = {k: int(np.sum(v == k)) for k in VERDICTS if np.sum(v == k)}
        lines.append(
            f"{name}: largest increase {float(inc.max()):.3g}, smallest "
            f"{float(inc.min()):.3g}; verdicts {counts}"
        )
    for d in ds.vector_dim.values:
        inc = ds.akorn_max_increase.sel(vector_dim=d).max("seed").values
        pairs = ", ".join(
            f"{g:g}: {i:.3g}" for g, i in zip(ds.gamma.values, inc, strict=True)
        )
        lines.append(f"AKOrN step, N = {d}, largest rise by gamma: {pairs}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", help="data/runs/akorn_energy.nc")
    parser.add_argument("--out", help="output PNG (default: RESULT with .png)")
    args = parser.parse_args(argv)
    ds = load(args.result)
    out = Path(args.out) if args.out else Path(args.result).with_suffix(".png")
    print(summary(ds))
    save_figure(figure(ds), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
