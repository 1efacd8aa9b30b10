"""Figure: the Lyapunov spectrum of N = 4 globally coupled phase oscillators against K.

    python analysis/phase_chaos.py data/runs/phase_chaos.nc --out data/runs/phase_chaos.png

Reads the result of `python studies/phase_chaos.py` (`lambda` on (K, exponent), its
block standard errors, `lambda_sum`, `R`, attribute `K_L`) and draws

- top: all N exponents against K (sorted descending at each K), with the phase-chaos
  window shaded: the couplings where the largest exponent exceeds max(3 standard
  errors, 1e-3) (Popovych, Maistrenko & Tass 2005: chaos for N >= 4 below locking),
  and the locking threshold K_L dotted;
- bottom: the order parameter R against K.

Prints the chaotic K values (as intervals), the largest exponent and where it peaks,
and, above K_L, that the largest exponent is 0 (phase shift) and the second negative.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _script import figure_main  # noqa: E402

import kuralab as kl  # noqa: E402


def _intervals(K: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    out, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        if (not m or i == len(mask) - 1) and start is not None:
            end = i if m else i - 1
            out.append((float(K[start]), float(K[end])))
            start = None
    return out


def summarise(path) -> dict:
    ds = kl.io.load(path)
    if not {"lambda", "lambda_stderr", "R"} <= set(ds.variables) or "K_L" not in ds.attrs:
        raise SystemExit(f"error: {path}: not a phase_chaos result")
    K = ds.K.values
    lam = -np.sort(-ds["lambda"].values, axis=1)
    se = ds["lambda_stderr"].values.max(axis=1)
    chaotic = (lam[:, 0] > np.maximum(3 * se, 1e-3))
    zeros = np.sum(np.abs(lam) < np.maximum(3 * se[:, None], 2e-3), axis=1)
    return dict(K=K, lam=lam, se=se, chaotic=chaotic, zeros=zeros, R=ds.R.values,
                K_L=float(ds.attrs["K_L"]), n=int(ds.attrs["n_osc"]),
                windows=_intervals(K, chaotic), t1=float(ds.attrs["t1"]))


def figure(s: dict):
    fig, (a, b) = plt.subplots(2, 1, figsize=(6, 5.2), sharex=True,
                               gridspec_kw=dict(height_ratios=(2.2, 1)))
    for lo, hi in s["windows"]:
        for ax in (a, b):
            ax.axvspan(lo - 0.004, hi + 0.004, color="C3", alpha=0.15, lw=0)
    for i in range(s["lam"].shape[1]):
        a.plot(s["K"], s["lam"][:, i], ".-", ms=3, lw=0.8, label=f"lambda_{i + 1}")
    a.axhline(0, color="0.5", lw=0.5)
    for ax in (a, b):
        ax.axvline(s["K_L"], color="k", ls=":", lw=1)
    a.set_ylabel("Lyapunov exponent")
    a.set_title(f"N = {s['n']} mean-field phase oscillators, omega in [-1, 1] "
                "(shaded: lambda_1 > 0)", fontsize=9)
    a.legend(fontsize=7, frameon=False, ncol=2)
    b.plot(s["K"], s["R"], ".-", ms=3, lw=0.8, color="k")
    b.set_xlabel("coupling K  (dotted: locking threshold K_L)")
    b.set_ylabel("R")
    fig.tight_layout()
    return fig


def table(s: dict) -> str:
    i = int(np.argmax(s["lam"][:, 0]))
    lines = [
        f"K_L = {s['K_L']:.4f} (locking threshold, N = {s['n']})",
        f"largest lambda_1 = {s['lam'][i, 0]:.4f} +- {s['se'][i]:.4f} at K = "
        f"{s['K'][i]:.4f} (K / K_L = {s['K'][i] / s['K_L']:.3f})",
        f"chaotic K (lambda_1 > max(3 se, 1e-3)): {s['chaotic'].sum()} of "
        f"{s['K'].size} values",
    ]
    for lo, hi in s["windows"]:
        lines.append(f"  window K in [{lo:.4f}, {hi:.4f}]  (K/K_L in "
                     f"[{lo / s['K_L']:.3f}, {hi / s['K_L']:.3f}])")
    locked = s["K"] >= s["K_L"]
    if locked.any():
        lines.append(f"above K_L: lambda_1 max |.| = {np.abs(s['lam'][locked, 0]).max():.2e}"
                     f", lambda_2 max = {s['lam'][locked, 1].max():.3f} (locked: < 0)")
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/phase_chaos.nc", summarise, figure, table,
                       argv)


if __name__ == "__main__":
    sys.exit(main())
