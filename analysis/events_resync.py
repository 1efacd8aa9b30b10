"""Figure: time to resynchronise after the coupling is switched off, against K, with
the Ott--Antonsen prediction.

    python analysis/events_resync.py data/runs/events_resync.nc --out data/runs/events_resync.png

Reads the result of `python studies/events_resync.py` (`t_resync` on (n, K, seed),
`t_resync_theory` on K, `R` and `R_oa` on the save grid) and draws

- left: R(t) of one seed at the largest N for every K (solid) over the Ott--Antonsen
  curve (dashed): plateau, free decay e^{-gamma t} while the coupling is off, logistic
  recovery in R^2; the stop at R = frac R_inf marked;
- right: t_resync against K, mean +- standard deviation over seeds for each N, and the
  OA prediction t = ott_antonsen_time(R_inf e^{-gamma off}, frac R_inf, K, gamma).

Prints, per N, max over K of |mean t_resync - t_OA| / t_OA and the seeds' standard
error beside it (finite-N fluctuations of R are O(N^-1/2); the check needs large N).
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
    if not {"t_resync", "t_resync_theory", "R", "R_oa"} <= set(ds.variables):
        raise SystemExit(f"error: {path}: not an events_resync result")
    t = ds["t_resync"].values  # (n, K, seed)
    theory = ds["t_resync_theory"].values
    seeds = t.shape[-1]
    mean = np.nanmean(t, axis=-1)
    sd = np.nanstd(t, axis=-1, ddof=1) if seeds > 1 else np.zeros_like(mean)
    rel = np.abs(mean - theory) / theory
    return dict(n=ds.n.values, K=ds.K.values, mean=mean, sd=sd, se=sd / np.sqrt(seeds),
                theory=theory, rel=rel, seeds=seeds, ts=ds.time.values,
                R=ds["R"].values, R_oa=ds["R_oa"].values, R_inf=ds["R_inf"].values,
                frac=float(ds.attrs["frac"]), gamma=float(ds.attrs["gamma"]),
                off=float(ds.attrs["off"]), t_on=float(ds.attrs["t_on"]),
                stops=ds["event_time"].values[..., 2], failed=int((ds["succeeded"] == 0).sum()))


def figure(s: dict):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    i = int(np.argmax(s["n"]))
    for k, K in enumerate(s["K"]):
        c = f"C{k}"
        a.plot(s["ts"], s["R"][i, k, 0], color=c, lw=1, label=f"K = {K:g}")
        a.plot(s["ts"], s["R_oa"][k], color=c, lw=1, ls="--")
        stop = s["stops"][i, k, 0]
        a.plot([stop], [s["frac"] * s["R_inf"][k]], "o", color=c, ms=4)
    a.axvspan(s["t_on"] - s["off"], s["t_on"], color="0.85", lw=0)
    a.set_xlim(0, np.nanmax(s["stops"][i]) + 1)
    a.set_xlabel("time  (shaded: coupling off)")
    a.set_ylabel("R")
    a.set_title(f"N = {s['n'][i]}, Lorentzian gamma = {s['gamma']:g} (dashed: OA)",
                fontsize=9)
    a.legend(fontsize=7, frameon=False)
    Kf = np.linspace(s["K"].min(), s["K"].max(), 200)
    R_inf = np.sqrt(1 - 2 * s["gamma"] / Kf)
    tf = np.asarray(kl.theory.ott_antonsen_time(R_inf * np.exp(-s["gamma"] * s["off"]),
                                                s["frac"] * R_inf, Kf, s["gamma"]))
    b.plot(Kf, tf, "k-", lw=1, label="Ott-Antonsen")
    for j, n in enumerate(s["n"]):
        b.errorbar(s["K"] * (1 + 0.01 * j), s["mean"][j], yerr=s["sd"][j], fmt="o",
                   ms=4, capsize=2, label=f"N = {n} ({s['seeds']} seeds, +- sd)")
    b.set_yscale("log")
    b.set_xlabel("coupling K")
    b.set_ylabel(f"time from coupling on to R = {s['frac']:g} R_inf")
    b.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def table(s: dict) -> str:
    lines = ["K       " + "  ".join(f"{K:8g}" for K in s["K"]),
             "t_OA    " + "  ".join(f"{t:8.4f}" for t in s["theory"])]
    for j, n in enumerate(s["n"]):
        lines.append(f"N={n:<6d}" + "  ".join(f"{t:8.4f}" for t in s["mean"][j]))
        lines.append(f"  rel err max {s['rel'][j].max():.2e} (per K "
                     + ", ".join(f"{r:.1e}" for r in s["rel"][j])
                     + f"); seeds' standard error / t_OA max "
                     f"{(s['se'][j] / s['theory']).max():.1e}")
    if s["failed"]:
        lines.append(f"WARNING: {s['failed']} runs failed")
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/events_resync.nc", summarise, figure, table,
                       argv)


if __name__ == "__main__":
    sys.exit(main())
