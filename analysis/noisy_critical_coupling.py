"""Figure: R(K) of identical noisy oscillators against the noisy critical coupling 2D.

    python analysis/noisy_critical_coupling.py data/runs/noisy_critical_coupling.nc \
        --out data/runs/noisy_critical_coupling.png

Reads a study result with a `K` sweep and a `seed` dimension for identical oscillators
with additive noise of fixed diffusion coefficient D (`kuralab run
studies/noisy_critical_coupling.toml`). For N -> infinity, incoherence loses stability at
K_c = 2 D (`kl.theory.noisy_critical_coupling`), and above it R solves the
self-consistency R = I1(K R / D) / I0(K R / D) (`kl.theory.noisy_order_parameter`;
SCIENCE.md section 1). Below K_c a finite population fluctuates around incoherence: Z is
nearly Gaussian with <|Z|^2> = 1 / (N (1 - K/K_c)), so the time-averaged R is
sqrt(pi / (4 N (1 - K/K_c))).

The figure shows R (mean ± std over seeds) against the theory branch, with K_c = 2D
marked (left), and the estimates of K_c from the data (right), both by
`kl.estimate_critical_coupling` (fit windows and the bootstrap standard error over seeds
are documented there):

- onset: above K_c, R^2 = a (1 - K_c / K) (the square-root law R^2 ~ K - K_c) on the
  points with max(0.2, 1.5 N^-1/4) <= R <= 0.5;
- fluctuation: below K_c, 1 / (N <R^2>) = b (1 - K/K_c) on the incoherent points
  (N <R^2> <= 6.25), with <R^2> = R^2 + R_std^2 from the study's time statistics;
- susceptibility (table only): the peak of N var_t(R), the finite-N pseudo-critical
  coupling.

Prints a table of K, R_sim, R_theory, the largest |R_sim - R_theory| for K >= 1.5 K_c,
and each K_c estimate ± its standard error against 2D.
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
from kuralab import estimate_critical_coupling  # noqa: E402

#: Compare with theory only well above K_c, where finite-N corrections are small.
FAR_ABOVE = 1.5
#: The K_c estimators shown, with the labels of the table.
METHODS = {
    "onset": "onset fit R^2 = a (1 - K_c/K)",
    "fluctuation": "fluctuation fit 1/(N<R^2>) = b (1 - K/K_c)",
    "susceptibility": "susceptibility peak N var_t(R) (finite-N pseudo-critical)",
}


def theory_R(K, D: float) -> np.ndarray:
    """The N -> infinity stationary R (`kl.theory.noisy_order_parameter`): 0 for
    K <= 2D, else the root of R = I1(K R / D) / I0(K R / D) in (0, 1)."""
    import jax

    with jax.enable_x64(True):
        K = np.atleast_1d(np.asarray(K, dtype=np.float64))
        return np.asarray(kl.theory.noisy_order_parameter(K, D))


def estimate(ds, method: str):
    """`kl.estimate_critical_coupling(ds, method=...)`, or the reason it failed."""
    try:
        return estimate_critical_coupling(ds, method=method, key=0)
    except ValueError as err:
        return str(err)


def summarise(path: str | Path) -> dict:
    """R(K) of a noisy study result, the theory at the same K, and K_c estimates."""
    ds = kl.io.load(path)
    if "K" not in ds.dims or "R" not in ds:
        raise SystemExit(f"error: {path}: expected a study result with a K sweep and R")
    if ds.attrs.get("noise") != "additive" or "D" not in ds.attrs:
        raise SystemExit(
            f"error: {path}: expected a noisy study with a fixed D (attribute 'D')"
        )
    if ds.attrs.get("distribution") != "identical":
        raise SystemExit(f"error: {path}: expected identical oscillators")
    R = ds["R"]
    others = [d for d in R.dims if d not in ("K", "seed")]
    if others:
        raise SystemExit(f"error: {path}: R has extra swept dimensions {others}")
    D = float(ds.attrs["D"])
    n = int(ds.attrs["n"])
    K = ds["K"].values.astype(np.float64)
    mean = R.mean("seed").values.astype(np.float64)
    return {
        "K": K,
        "mean": mean,
        "std": R.std("seed").values.astype(np.float64),
        "theory": theory_R(K, D),
        "D": D,
        "Kc": float(kl.theory.noisy_critical_coupling(D)),
        "n": n,
        "seeds": ds.sizes.get("seed", 1),
        **{method: estimate(ds, method) for method in METHODS},
        "solver": str(ds.attrs.get("solver", "")),
        "dt": float(ds.attrs.get("dt", np.nan)),
    }


def figure(s: dict):
    """The two-panel figure (returns the matplotlib Figure)."""
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(11.5, 4.6), layout="constrained", width_ratios=(1.35, 1)
    )
    K, Kc, D, n = s["K"], s["Kc"], s["D"], s["n"]
    fine = np.linspace(min(K.min(), Kc) * 0.95, K.max() * 1.02, 800)
    ax.plot(
        fine,
        theory_R(fine, D),
        color="0.2",
        lw=1.5,
        label=r"theory $N\to\infty$: $R = I_1(KR/D)/I_0(KR/D)$",
    )
    below = fine[fine < Kc * 0.985]
    ax.plot(
        below,
        np.sqrt(np.pi / (4 * n * (1 - below / Kc))),
        color="0.2",
        lw=1.1,
        ls="--",
        label=r"incoherent, finite $N$: $\sqrt{\pi / 4N(1 - K/K_c)}$",
    )
    ax.axvline(Kc, color="0.6", lw=0.8, ls=":")
    ax.annotate(
        rf"$K_c = 2D$ = {Kc:g}",
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
        ms=4.5,
        capsize=3,
        color="C0",
        label=f"simulation, N = {n} (mean ± std, {s['seeds']} seeds)",
    )
    ax.set_title(f"Identical oscillators with noise, D = {D:g}")
    ax.set_xlabel("coupling strength K (rad per unit time)")
    ax.set_ylabel("order parameter R (time average, dimensionless)")
    ax.set_ylim(0, 1)
    ax.set_xlim(fine[0], fine[-1])
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")

    # Right: where the data put K_c.
    onset, fluct = s["onset"], s["fluctuation"]
    lo, hi = 0.5 * Kc, 1.3 * Kc
    if not isinstance(fluct, str):  # show every point of the fluctuation fit
        lo = min(lo, float(fluct.K[fluct.used].min()) - 0.02 * Kc)
    near = (K >= lo) & (K <= hi)
    bx.plot(K[near], s["mean"][near] ** 2, "o", color="C0", ms=5, label=r"$\bar R^2$")
    line = np.linspace(lo, hi, 400)
    if not isinstance(onset, str):
        used = onset.used
        bx.plot(K[used], onset.observable[used], "o", color="C0", mfc="none", ms=10)
        seg = line[line >= onset.K_c]
        bx.plot(
            seg,
            onset.fitted(seg),
            color="C0",
            lw=1.2,
            label=rf"onset $R^2 = a(1 - K_c/K)$: $K_c$ = {onset.K_c:.4f} ± "
            f"{onset.stderr:.4f}",
        )
    bx.set_xlabel("coupling strength K (rad per unit time)")
    bx.set_ylabel(r"$R^2$", color="C0")
    bx.set_ylim(bottom=0)
    cx = bx.twinx()
    if not isinstance(fluct, str):
        y = fluct.observable
        cx.plot(
            K[near],
            y[near],
            "s",
            color="C3",
            ms=4.5,
            label=r"$1 / N\langle R^2\rangle$",
        )
        seg = line[line <= fluct.K_c]
        cx.plot(
            seg,
            fluct.fitted(seg),
            color="C3",
            lw=1.2,
            label=rf"fluctuation $1/N\langle R^2\rangle = b(1 - K/K_c)$: $K_c$ = "
            f"{fluct.K_c:.4f} ± {fluct.stderr:.4f}",
        )
    cx.set_ylabel(r"$1 / N\langle R^2\rangle$ (incoherent side)", color="C3")
    cx.set_ylim(bottom=0)
    bx.axvline(Kc, color="0.6", lw=0.8, ls=":")
    bx.set_xlim(lo, hi)
    bx.set_title(rf"$K_c$ from the data (theory $2D$ = {Kc:g})")
    handles = bx.get_legend_handles_labels()
    more = cx.get_legend_handles_labels()
    bx.legend(
        handles[0] + more[0],
        handles[1] + more[1],
        loc="upper center",
        fontsize="x-small",
    )
    bx.grid(alpha=0.3)
    return fig


def table(s: dict) -> str:
    lines = [f"{'K':>6}  {'R_sim':>15}  {'R_theory':>8}  {'error':>7}"]
    for K, m, sd, th in zip(s["K"], s["mean"], s["std"], s["theory"], strict=True):
        lines.append(f"{K:6.3f}  {m:7.4f} ± {sd:6.4f}  {th:8.4f}  {m - th:+7.4f}")
    Kc = s["Kc"]
    far = s["K"] >= FAR_ABOVE * Kc
    if far.any():
        err = np.abs(s["mean"] - s["theory"])[far].max()
        lines.append(
            f"max |R_sim - R_theory| for K >= {FAR_ABOVE:g} K_c = "
            f"{FAR_ABOVE * Kc:g}: {err:.4f}"
        )
    for method, label in METHODS.items():
        est = s[method]
        if isinstance(est, str):
            lines.append(f"K_c from {label}: not available ({est})")
            continue
        lines.append(
            f"K_c from {label} ({int(est.used.sum())} points): {est.K_c:.4f} ± "
            f"{est.stderr:.4f} vs 2D = {Kc:g} ({(est.K_c - Kc) / Kc:+.1%}, "
            f"{(est.K_c - Kc) / est.stderr:+.1f} SE)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return figure_main(
        __doc__, "data/runs/noisy_critical_coupling.nc", summarise, figure, table, argv
    )


if __name__ == "__main__":
    sys.exit(main())
