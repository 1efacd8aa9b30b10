"""Figure: basin fractions of q-twisted states on a ring against q, with a Gaussian.

    python analysis/twisted_basins.py data/runs/twisted_basins.nc \
        --out data/runs/twisted_basins.png

Reads the result of `python studies/twisted_basins.py` (dim `label`: twist numbers q and
the "unsettled" sentinel; `fraction`, `fraction_stderr`, `stable` on dim `q`) and draws
the fraction of random initial states ending in each q-twisted state (binomial standard
errors as bars; linearly stable q shaded) with the Gaussian of the same variance,
P(q) = exp(-q^2 / (2 s^2)) / sum_q' exp(-q'^2 / (2 s^2)), s^2 = sum_q q^2 P(q) (Wiley,
Strogatz & Girvan 2006: the basin fractions are bell-shaped, approximately Gaussian, in q).

Prints the fractions, the Gaussian's values, chi^2 per degree of freedom of the fit
(bins with an expected count >= 5) and the fraction unsettled.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _script import figure_main  # noqa: E402

import kuralab as kl  # noqa: E402


def summarise(path) -> dict:
    ds = kl.io.load(path)
    if not {"fraction", "fraction_stderr", "stable"} <= set(ds.variables):
        raise SystemExit(f"error: {path}: not a twisted_basins result")
    label = ds.label.values
    twisted = label != kl.UNSETTLED
    q = label[twisted].astype(int)
    f = ds.fraction.values[twisted]
    se = ds.fraction_stderr.values[twisted]
    n = int(ds.attrs["n"])
    var = float(np.sum(q**2 * f) / np.sum(f))
    qs = ds.q.values
    g = np.exp(-(qs**2) / (2 * var))
    g = g / g.sum() * f.sum()
    expected = dict(zip(qs.tolist(), g))
    count = dict(zip(q.tolist(), f * n))
    bins = [qq for qq in qs.tolist() if expected[qq] * n >= 5]
    chi2 = sum((count.get(b, 0.0) - expected[b] * n) ** 2 / (expected[b] * n) for b in bins)
    return dict(
        q=q, f=f, se=se, qs=qs, gauss=g, sigma=np.sqrt(var), stable=ds.stable.values,
        chi2_dof=chi2 / max(len(bins) - 2, 1), n=n,
        unsettled=float(ds.fraction.values[~twisted].sum()),
        n_osc=int(ds.attrs["n_osc"]), k=int(ds.attrs["k_neighbours"]),
    )


def figure(s: dict):
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    stable_q = s["qs"][s["stable"]]
    ax.axvspan(stable_q.min() - 0.5, stable_q.max() + 0.5, color="0.92",
               label="linearly stable q")
    ax.errorbar(s["q"], s["f"], yerr=s["se"], fmt="o", ms=4, capsize=2,
                label=f"basin fraction ({s['n']} initial states)")
    qq = np.arange(s["q"].min() - 1, s["q"].max() + 2)
    g = np.exp(-(qq**2) / (2 * s["sigma"] ** 2))
    g = g / np.exp(-(s["qs"] ** 2) / (2 * s["sigma"] ** 2)).sum() * s["f"].sum()
    ax.plot(qq, g, "-", color="C3", lw=1, label=f"Gaussian, sigma = {s['sigma']:.2f}")
    ax.set_xlabel("twist q")
    ax.set_ylabel("fraction of initial states")
    ax.set_title(f"ring N = {s['n_osc']}, k = {s['k']} neighbours each side")
    ax.set_xlim(qq.min() - 0.5, qq.max() + 0.5)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def table(s: dict) -> str:
    lines = [f"{'q':>4} {'fraction':>9} {'stderr':>8} {'gaussian':>9}"]
    gauss = dict(zip(s["qs"].tolist(), s["gauss"]))
    for q, f, se in zip(s["q"], s["f"], s["se"]):
        lines.append(f"{q:>4} {f:9.4f} {se:8.4f} {gauss[int(q)]:9.4f}")
    lines.append(
        f"sigma = {s['sigma']:.3f} (sigma^2 k / N = {s['sigma']**2 * s['k'] / s['n_osc']:.3f}); "
        f"chi^2/dof of the Gaussian = {s['chi2_dof']:.2f}; unsettled = {s['unsettled']:.4f}"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/twisted_basins.nc", summarise, figure, table,
                       argv)


if __name__ == "__main__":
    sys.exit(main())
