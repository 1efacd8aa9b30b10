"""Figure: branches of locked states against K, stability, and the fold vs the theory K_L.

    python analysis/continuation.py data/runs/locking_continuation.nc \
        --out data/runs/locking_continuation.png

Reads the result of `python studies/locking_continuation.py` (dims `case`, `point`,
`osc`, `mode`; per case the natural frequencies `omega` and the coupling kind) and draws,
one column per case,

- top: the order parameter R = |<exp(i phi)>| of the locked states against K, solid where
  the state is linearly stable and dashed where it is not, located folds marked (o), and
  the theoretical locking threshold K_L as a dotted vertical line;
- bottom: the largest real part of the reduced Jacobian spectrum (rotational zero mode
  removed) against K, same styles; it crosses 0 at the fold.

Theory: two oscillators with K each way lock iff |omega_2 - omega_1| <= 2K (Adler), so
K_L = |omega_2 - omega_1| / 2; a finite mean-field network locks iff K >= K_L =
min over u >= max|omega_i - mean omega| of u / r(u), r(u) = mean sqrt(1 - (omega_i -
mean omega)^2 / u^2) (Verwoerd & Mason 2008; `locking_threshold`).

Prints, per case, the first fold K_fold against K_L and their difference, the number of
folds, points and the largest residual.
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
from kuralab.theory import locking_threshold  # noqa: E402


def theory_K_L(coupling: str, omega: np.ndarray) -> float:
    if coupling == "pair":
        return abs(float(omega[1] - omega[0])) / 2
    if coupling == "mean_field":
        return locking_threshold(omega)
    return float("nan")


def summarise(path: str | Path) -> dict:
    ds = kl.io.load(path)
    need = {"K", "R", "stable", "fold", "max_real_eig", "omega", "coupling", "n_points"}
    if "case" not in ds.dims or not need <= set(ds.variables):
        raise SystemExit(
            f"error: {path}: not a locking_continuation result (missing "
            f"{sorted(need - set(ds.variables))})"
        )
    cases = []
    for name in ds.case.values:
        c = ds.sel(case=name)
        m, n = int(c.n_points), int(c.n_osc)
        omega = c.omega.values[:n]
        coupling = str(c.coupling.values)
        fold = c.fold.values[:m] == 1
        K = c.K.values[:m]
        cases.append(
            {
                "name": str(name),
                "coupling": coupling,
                "n": n,
                "K": K,
                "R": c.R.values[:m],
                "Omega": c.Omega.values[:m],
                "stable": c.stable.values[:m] == 1,
                "fold": fold,
                "max_real_eig": c.max_real_eig.values[:m],
                "residual": float(np.max(c.residual.values[:m])),
                "K_folds": K[fold],
                "K_L": theory_K_L(coupling, omega),
                "stop_reason": str(c.stop_reason.values),
            }
        )
    return {"cases": cases, "sigma": ds.attrs.get("sigma")}


def _styled_runs(stable: np.ndarray, fold: np.ndarray):
    """Polylines `(i0, i1, is_stable)` (inclusive indices) of constant stability. At a
    fold one eigenvalue is 0 up to round-off, so the fold takes its predecessor's flag;
    a segment is stable only if both its ends are."""
    s = stable.copy()
    for i in np.flatnonzero(fold):
        if i > 0:
            s[i] = s[i - 1]
    seg = s[:-1] & s[1:]
    runs, start = [], 0
    for i in range(1, seg.size + 1):
        if i == seg.size or seg[i] != seg[start]:
            runs.append((start, i, bool(seg[start])))
            start = i
    return runs


def _draw(ax, K, y, c, colour):
    for i0, i1, ok in _styled_runs(c["stable"], c["fold"]):
        ax.plot(
            K[i0 : i1 + 1],
            y[i0 : i1 + 1],
            color=colour,
            ls="-" if ok else "--",
            lw=1.8 if ok else 1.1,
        )
    ax.plot(
        K[c["fold"]], y[c["fold"]], "o", mfc="none", mec="C3", ms=8, mew=1.5, zorder=5
    )
    ax.axvline(c["K_L"], color="0.3", ls=":", lw=1.2)
    ax.grid(alpha=0.3)


def figure(s: dict):
    cases = s["cases"]
    fig, axes = plt.subplots(
        2,
        len(cases),
        figsize=(4.3 * len(cases), 6.6),
        layout="constrained",
        sharex="col",
        squeeze=False,
    )
    for j, c in enumerate(cases):
        ax, bx = axes[:, j]
        _draw(ax, c["K"], c["R"], c, f"C{j}")
        _draw(bx, c["K"], c["max_real_eig"], c, f"C{j}")
        bx.axhline(0, color="k", lw=0.8)
        what = (
            "two oscillators, K each way"
            if c["coupling"] == "pair"
            else f"mean field, N = {c['n']}"
        )
        ax.set_title(f"{c['name']}: {what}\nK_L = {c['K_L']:.6f}", fontsize="medium")
        ax.set_ylabel(r"$R = |\langle e^{i\phi}\rangle|$ of the locked state")
        bx.set_ylabel(r"max Re $\lambda$ (reduced Jacobian)")
        bx.set_xlabel(r"coupling $K$")
    handles = [
        plt.Line2D([], [], color="0.2", lw=1.8, label="stable"),
        plt.Line2D([], [], color="0.2", lw=1.1, ls="--", label="unstable"),
        plt.Line2D(
            [],
            [],
            ls="",
            marker="o",
            mfc="none",
            mec="C3",
            mew=1.5,
            label="fold (located)",
        ),
        plt.Line2D([], [], color="0.3", ls=":", label=r"theory $K_L$"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize="small")
    fig.suptitle(
        "Locked states continued in K (pseudo-arclength): the stable branch dies with a "
        "saddle at K_L"
    )
    return fig


def table(s: dict) -> str:
    head = (
        f"{'case':<15} {'N':>3} {'coupling':<11} {'K_fold':>12} {'K_L theory':>12} "
        f"{'K_fold-K_L':>11} {'folds':>5} {'points':>6} {'residual':>9}  stop"
    )
    lines = [head]
    worst = 0.0
    for c in s["cases"]:
        kf = c["K_folds"][0] if c["K_folds"].size else float("nan")
        err = kf - c["K_L"]
        worst = max(worst, abs(err)) if np.isfinite(err) else float("nan")
        lines.append(
            f"{c['name']:<15} {c['n']:>3} {c['coupling']:<11} {kf:12.9f} "
            f"{c['K_L']:12.9f} {err:11.2e} {c['K_folds'].size:>5} {c['K'].size:>6} "
            f"{c['residual']:9.1e}  {c['stop_reason']}"
        )
    lines.append(f"largest |K_fold - K_L| (first fold of each case): {worst:.2e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return figure_main(
        __doc__, "data/runs/locking_continuation.nc", summarise, figure, table, argv
    )


if __name__ == "__main__":
    sys.exit(main())
