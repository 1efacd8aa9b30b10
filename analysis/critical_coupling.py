"""Figure and table: the critical coupling against network size and frequency distribution.

    python analysis/critical_coupling.py data/runs/critical_coupling_lorentzian.nc \
        data/runs/critical_coupling_gaussian.nc data/runs/critical_coupling_uniform.nc \
        --out data/runs/critical_coupling.png

Reads results of `kuralab run studies/critical_coupling_*.toml` (dims `n`, `K`, `seed`,
`time`; random frequency disorder of one distribution per file) and draws one row per
distribution:

- R(K) for every N (mean over seeds, error bars = seed standard error) with the
  infinite-N theory `kl.theory.order_parameter` and K_c = 2 / (pi g(0)) marked;
- the estimated K_c against N (`kl.estimate_critical_coupling`, bootstrap standard
  errors over seeds): the onset fit R^2 ~ (1 - K_c/K) above K_c and the fluctuation fit
  1/(N <R^2>) ~ (1 - K/K_c) below it, and the susceptibility peak (the finite-size
  pseudo-critical point), with the theory as a horizontal line;
- the finite-size scaling collapse R N^(1/5) against (K - K_c) N^(2/5) with the theory
  K_c (the exponents of random frequency disorder, Hong, Chate, Park and Tang, PRL 99,
  184101 (2007)): curves for different N fall on one another near K_c.

Prints, per distribution and N, both estimates with their standard errors and their
deviations from theory in standard errors. The uniform distribution's transition is
discontinuous in the infinite-N limit (R jumps to pi/4 at K_c, Pazo 2005), so its onset
fit has no square-root branch to fit: only its fluctuation estimate is meaningful.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import kuralab as kl  # noqa: E402

METHODS = ("onset", "fluctuation", "susceptibility")


def _estimate(ds, n: int, method: str):
    try:
        return kl.estimate_critical_coupling(ds, n=n, method=method)
    except ValueError as e:  # e.g. no onset branch for a discontinuous transition
        return str(e)


def summarise(path: str | Path) -> dict:
    ds = kl.io.load(path)
    if "n" not in ds.dims or not {"R", "R_std"} <= set(ds.data_vars):
        raise SystemExit(
            f"error: {path}: not a critical_coupling study (needs dims n, K, seed and "
            "R, R_std)"
        )
    distribution, scale = ds.attrs["distribution"], float(ds.attrs["scale"])
    theory = float(kl.theory.critical_coupling(distribution, scale=scale))
    K = ds.K.values
    sizes = []
    for n in ds.n.values:
        sub = ds.sel(n=n)
        sizes.append(
            dict(
                n=int(n),
                R=sub.R.mean("seed").values,
                R_se=sub.R.std("seed").values / np.sqrt(sub.sizes["seed"]),
                **{m: _estimate(sub, int(n), m) for m in METHODS},
            )
        )
    fine = np.linspace(K.min(), K.max(), 400)
    return dict(
        distribution=distribution,
        scale=scale,
        theory=theory,
        K=K,
        sizes=sizes,
        fine=fine,
        R_theory=np.asarray(kl.theory.order_parameter(fine, distribution, scale=scale)),
        seeds=int(ds.sizes["seed"]),
    )


def figure(summaries: list[dict]):
    fig, axes = plt.subplots(
        len(summaries), 3, figsize=(13, 3.6 * len(summaries)), squeeze=False
    )
    for row, s in zip(axes, summaries, strict=True):
        left, middle, right = row
        left.plot(s["fine"], s["R_theory"], "k-", lw=1, label="theory (N = inf)")
        colors = plt.cm.viridis(np.linspace(0, 0.85, len(s["sizes"])))
        for c, z in zip(colors, s["sizes"], strict=True):
            left.errorbar(
                s["K"], z["R"], z["R_se"], fmt="o", ms=3, color=c, label=f"N = {z['n']}"
            )
            x = (s["K"] - s["theory"]) * z["n"] ** 0.4
            right.plot(x, z["R"] * z["n"] ** 0.2, "o-", ms=3, color=c)
        left.axvline(s["theory"], color="k", ls=":", lw=1)
        left.set(
            xlabel="K", ylabel="R", title=f"{s['distribution']} (scale {s['scale']:g})"
        )
        left.legend(fontsize=8)
        for k, (method, marker) in enumerate(zip(METHODS, "osd", strict=True)):
            ns, kc, se = [], [], []
            for z in s["sizes"]:
                est = z[method]
                if not isinstance(est, str):
                    ns.append(z["n"] * 1.04**k)
                    kc.append(est.K_c)
                    se.append(est.stderr)
            if ns:
                middle.errorbar(ns, kc, se, fmt=marker, capsize=3, label=method)
        middle.axhline(s["theory"], color="k", ls=":", lw=1, label="theory 2/(pi g(0))")
        middle.set(xscale="log", xlabel="N", ylabel="estimated K_c")
        sizes = [z["n"] for z in s["sizes"]]
        middle.set_xticks(sizes, [str(n) for n in sizes])
        middle.minorticks_off()
        middle.legend(fontsize=8)
        right.axvline(0, color="k", ls=":", lw=1)
        right.set(
            xlabel="(K - K_c) N^(2/5)", ylabel="R N^(1/5)", title="finite-size scaling"
        )
    fig.tight_layout()
    return fig


def table(summaries: list[dict]) -> str:
    lines = []
    for s in summaries:
        lines.append(
            f"{s['distribution']} (scale {s['scale']:g}, {s['seeds']} seeds): "
            f"theory K_c = {s['theory']:.4f}"
        )
        for z in s["sizes"]:
            for method in METHODS:
                est = z[method]
                if isinstance(est, str):
                    text = f"no estimate ({est.split(';')[0][:90]})"
                else:
                    text = (
                        f"K_c = {est.K_c:.4f} +- {est.stderr:.4f}, deviation "
                        f"{est.deviation:+.2f} SE, {est.K_c / s['theory'] - 1:+.2%}"
                    )
                lines.append(f"  N = {z['n']:<6d} {method:<14s} {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from kuralab.plot import save_figure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="critical_coupling_*.nc files")
    parser.add_argument("--out", default="data/runs/critical_coupling.png")
    args = parser.parse_args(argv)
    for r in args.results:
        if not Path(r).exists():
            print(f"error: {r}: no such file", file=sys.stderr)
            return 2
    summaries = [summarise(r) for r in args.results]
    fig = figure(summaries)
    save_figure(fig, Path(args.out), dpi=150)
    plt.close(fig)
    print(table(summaries))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
