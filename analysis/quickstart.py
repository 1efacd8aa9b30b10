"""Figure: R(K) of the quickstart study against the infinite-N Kuramoto theory.

    python analysis/quickstart.py data/runs/quickstart.nc --out data/runs/quickstart.png

Reads a study result with a `K` sweep and a `seed` dimension (`kuralab run
studies/quickstart.toml`), plots the time-averaged order parameter R (mean ± std over
seeds) against K, with the infinite-N branch R_inf(K) (`kl.theory.order_parameter`; for
a Lorentzian of half-width gamma, R = sqrt(1 - 2 gamma / K) above K_c = 2 gamma) and the
finite-size level of incoherence sqrt(pi / 4N) below K_c. The distribution, its width
and N are read from the file's attributes. Prints a table of K, R_sim, R_theory and the
largest |R_sim - R_theory| for K >= 1.5 K_c, where finite-size effects are small.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _script import figure_main  # noqa: E402

import kuralab as kl  # noqa: E402

#: Compare with theory only well above K_c, where finite-N corrections are small.
FAR_ABOVE = 1.5


def summarise(path: str | Path) -> dict:
    """R(K) of a study result and the theory at the same K."""
    ds = kl.io.load(path)
    if "K" not in ds.dims or "R" not in ds:
        raise SystemExit(f"error: {path}: expected a study result with a K sweep and R")
    distribution = str(ds.attrs["distribution"])
    scale = float(ds.attrs["scale"])
    n = int(ds.attrs["n"])
    R = ds["R"]
    others = [d for d in R.dims if d not in ("K", "seed")]
    if others:
        raise SystemExit(f"error: {path}: R has extra swept dimensions {others}")
    K = ds["K"].values.astype(np.float64)
    Kc = float(kl.theory.critical_coupling(distribution, scale=scale))
    return {
        "ds": ds,
        "K": K,
        "mean": R.mean("seed").values.astype(np.float64),
        "std": R.std("seed").values.astype(np.float64),
        "theory": np.asarray(
            kl.theory.order_parameter(K, distribution=distribution, scale=scale),
            dtype=np.float64,
        ),
        "Kc": Kc,
        "floor": float(kl.theory.finite_size_incoherent_R(n)),
        "distribution": distribution,
        "scale": scale,
        "n": n,
        "seeds": ds.sizes.get("seed", 1),
    }


def figure(s: dict):
    """The R(K) figure (returns the matplotlib Figure)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    K, Kc = s["K"], s["Kc"]
    fine = np.linspace(min(K.min(), Kc) * 0.95, K.max() * 1.02, 600)
    theory = np.asarray(
        kl.theory.order_parameter(
            fine, distribution=s["distribution"], scale=s["scale"]
        )
    )
    ax.plot(fine, theory, color="0.2", lw=1.5, label=r"theory, $N\to\infty$")
    below = fine[fine <= Kc]
    ax.plot(
        below,
        np.full_like(below, s["floor"]),
        color="0.2",
        lw=1.2,
        ls="--",
        label=rf"incoherent, finite $N$: $\sqrt{{\pi/4N}}$ = {s['floor']:.3f}",
    )
    ax.axvline(Kc, color="0.6", lw=0.8, ls=":")
    ax.annotate(
        rf"$K_c$ = {Kc:g}",
        (Kc, 0.97),
        xycoords=("data", "axes fraction"),
        xytext=(4, 0),
        textcoords="offset points",
        va="top",
        color="0.4",
    )
    ax.errorbar(
        K,
        s["mean"],
        yerr=s["std"],
        fmt="o",
        ms=5,
        capsize=3,
        color="C0",
        label=f"simulation, N = {s['n']} (mean ± std, {s['seeds']} seeds)",
    )
    width = "\\gamma" if s["distribution"] == "lorentzian" else "\\sigma"
    ax.set_title(
        f"Kuramoto transition: {s['distribution'].capitalize()} frequencies, "
        rf"${width}$ = {s['scale']:g}"
    )
    ax.set_xlabel("coupling strength K (rad per unit time)")
    ax.set_ylabel("order parameter R (time average, dimensionless)")
    ax.set_ylim(0, 1)
    ax.set_xlim(fine[0], fine[-1])
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def table(s: dict) -> str:
    lines = [f"{'K':>6}  {'R_sim':>15}  {'R_theory':>8}  {'error':>7}"]
    for K, m, sd, th in zip(s["K"], s["mean"], s["std"], s["theory"], strict=True):
        lines.append(f"{K:6.3f}  {m:7.4f} ± {sd:6.4f}  {th:8.4f}  {m - th:+7.4f}")
    far = s["K"] >= FAR_ABOVE * s["Kc"]
    if far.any():
        err = np.abs(s["mean"] - s["theory"])[far].max()
        lines.append(
            f"max |R_sim - R_theory| for K >= {FAR_ABOVE:g} K_c = "
            f"{FAR_ABOVE * s['Kc']:g}: {err:.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return figure_main(__doc__, "data/runs/quickstart.nc", summarise, figure, table, argv)


if __name__ == "__main__":
    sys.exit(main())
