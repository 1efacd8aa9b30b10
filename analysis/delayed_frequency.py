"""Figure: Omega(tau) of delay-coupled identical oscillators against all synchronous branches.

    python analysis/delayed_frequency.py data/runs/delayed_frequency.nc \
        --out data/runs/delayed_frequency.png

Reads a study result with a `tau` sweep, a `seed` dimension and effective frequencies
(`observe.frequency = true`) for identical oscillators (frequency omega, mean-field
coupling K) with one transmission delay tau (`kuralab run studies/delayed_frequency.toml`).
In-phase synchrony rotates at a frequency Omega solving

    Omega = omega - K sin(Omega tau),

and it is stable when K cos(Omega tau) > 0 (Yeung & Strogatz 1999; SCIENCE.md
section 1). Every root lies in [omega - |K|, omega + |K|]; for larger tau there are
several. The figure draws all branches exactly, parametrised by Omega (sin(Omega tau) =
s = (omega - Omega)/K gives Omega tau = arcsin(s) + 2 pi m, on which
cos(Omega tau) > 0, or pi - arcsin(s) + 2 pi m, on which cos(Omega tau) < 0), with
stable branches solid and unstable ones dashed, and the simulated Omega per seed on top;
the lower panel shows each simulated Omega's distance to the nearest stable root.

Prints, for each tau, the simulated Omega (per seed) and its spread across oscillators,
all roots (stable ones marked *), and the largest distance to the nearest stable root.
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


def roots(tau: float, omega: float, K: float) -> np.ndarray:
    """All roots of Omega = omega - K sin(Omega tau), ascending
    (`kl.theory.delayed_sync_frequencies`)."""
    return kl.theory.delayed_sync_frequencies(omega, K, tau)[0]


def stable(Omega, tau, K) -> np.ndarray:
    """Linear stability of in-phase synchrony at frequency Omega: K cos(Omega tau) > 0."""
    return K * np.cos(np.asarray(Omega) * tau) > 0


def branches(omega: float, K: float, tau_max: float, num: int = 4000):
    """Every branch Omega(tau) on [0, tau_max] as (tau, Omega, is_stable) curves."""
    Omega = np.linspace(omega - abs(K), omega + abs(K), num)
    Omega = Omega[np.abs(Omega) > 1e-9]  # Omega = 0 only as tau -> infinity
    s = np.clip((omega - Omega) / K, -1, 1)
    a = np.arcsin(s)
    out = []
    m_max = int(np.ceil(np.abs(Omega).max() * tau_max / (2 * np.pi))) + 1
    for phase in (a, np.pi - a):  # the two solutions of sin(phi) = s
        for m in range(-m_max, m_max + 1):
            phi = phase + 2 * np.pi * m
            tau = phi / Omega
            keep = (tau >= 0) & (tau <= tau_max)
            if keep.sum() < 2:
                continue
            t, w, p = tau[keep], Omega[keep], phi[keep]
            ok = K * np.cos(p) > 0
            out.append((t, w, bool(np.median(ok))))
    return out


def summarise(path: str | Path) -> dict:
    ds = kl.io.load(path)
    if "tau" not in ds.dims or "Omega" not in ds:
        raise SystemExit(
            f"error: {path}: expected a study result with a tau sweep and Omega "
            "(observe.frequency = true)"
        )
    if ds.attrs.get("distribution") != "identical":
        raise SystemExit(f"error: {path}: expected identical oscillators")
    if "K" not in ds.attrs:
        raise SystemExit(f"error: {path}: expected a fixed coupling K (attribute 'K')")
    others = [d for d in ds["Omega"].dims if d not in ("tau", "seed")]
    if others:
        raise SystemExit(f"error: {path}: Omega has extra swept dimensions {others}")
    omega, K = float(ds.attrs["loc"]), float(ds.attrs["K"])
    tau = ds["tau"].values.astype(np.float64)
    sim = ds["Omega"].transpose("tau", "seed").values.astype(np.float64)
    spread = ds["Omega_std"].transpose("tau", "seed").values.astype(np.float64)
    all_roots = [roots(t, omega, K) for t in tau]
    nearest = np.full_like(sim, np.nan)
    for i, (t, r) in enumerate(zip(tau, all_roots, strict=True)):
        st = r[stable(r, t, K)]
        if st.size:
            idx = np.abs(sim[i][:, None] - st[None, :]).argmin(axis=1)
            nearest[i] = st[idx]
    return {
        "tau": tau,
        "sim": sim,
        "spread": spread,
        "seeds": ds["seed"].values,
        "roots": all_roots,
        "nearest": nearest,
        "error": np.abs(sim - nearest),
        "omega": omega,
        "K": K,
        "n": int(ds.attrs["n"]),
        "solver": str(ds.attrs.get("solver", "")),
        "dt": float(ds.attrs.get("dt", np.nan)),
    }


def figure(s: dict):
    fig, (ax, bx) = plt.subplots(
        2,
        1,
        figsize=(7.2, 6.4),
        layout="constrained",
        sharex=True,
        height_ratios=(2.3, 1),
    )
    omega, K = s["omega"], s["K"]
    tau_max = max(float(s["tau"].max()), 1e-9) * 1.03
    seen = set()
    for t, w, ok in branches(omega, K, tau_max):
        label = (
            r"stable: $K\cos\Omega\tau > 0$"
            if ok
            else r"unstable: $K\cos\Omega\tau < 0$"
        )
        ax.plot(
            t,
            w,
            color="0.15" if ok else "0.55",
            lw=1.6 if ok else 1.0,
            ls="-" if ok else "--",
            label=None if ok in seen else label,
        )
        seen.add(ok)
    markers = "os^vD"
    for j, seed in enumerate(s["seeds"]):
        ax.plot(
            s["tau"],
            s["sim"][:, j],
            markers[j % len(markers)],
            ms=7 - 2 * j,
            mfc="none" if j else "C0",
            color="C0" if j == 0 else f"C{j + 1}",
            label=f"simulation, seed {seed}",
        )
    ax.set_ylim(omega - abs(K) - 0.05, omega + abs(K) + 0.05)
    ax.set_xlim(0, tau_max)
    ax.set_ylabel(r"frequency $\Omega$ (rad per unit time)")
    ax.set_title(
        rf"In-phase synchrony with delay: $\Omega = \omega - K\sin\Omega\tau$"
        f"\n(ω = {omega:g}, K = {K:g}, N = {s['n']}, {s['solver']} dt = {s['dt']:g})"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    floor = 1e-9
    for j, seed in enumerate(s["seeds"]):
        bx.semilogy(
            s["tau"],
            np.maximum(s["error"][:, j], floor),
            markers[j % len(markers)],
            ms=6 - 2 * j,
            mfc="none" if j else "C0",
            color="C0" if j == 0 else f"C{j + 1}",
            label=f"seed {seed}",
        )
    bx.set_xlabel(r"delay $\tau$ (time units)")
    bx.set_ylabel(
        r"$|\Omega_{sim} - \Omega_{stable}|$ (0 drawn at $10^{-9}$)", fontsize="small"
    )
    bx.grid(alpha=0.3, which="both")
    bx.legend(loc="lower right", fontsize="x-small", ncols=2)
    return fig


def table(s: dict) -> str:
    seeds = s["seeds"]
    head = "  ".join(f"{'Omega[' + str(int(x)) + ']':>10}" for x in seeds)
    lines = [f"{'tau':>6}  {head}  {'spread':>8}  {'nearest':>9}  {'error':>8}  roots"]
    for i, t in enumerate(s["tau"]):
        sims = "  ".join(f"{v:10.6f}" for v in s["sim"][i])
        r = s["roots"][i]
        marks = ", ".join(
            f"{x:.5f}{'*' if ok else ''}"
            for x, ok in zip(r, stable(r, t, s["K"]), strict=True)
        )
        lines.append(
            f"{t:6.3f}  {sims}  {s['spread'][i].max():8.1e}  "
            f"{np.nanmax(s['nearest'][i]):9.6f}  {np.nanmax(s['error'][i]):8.1e}  "
            f"{marks}"
        )
    lines.append("(* = stable root, K cos(Omega tau) > 0; spread = max std of the")
    lines.append(" effective frequencies across oscillators)")
    lines.append(
        "max |Omega_sim - nearest stable root| over all tau and seeds: "
        f"{np.nanmax(s['error']):.2e}"
    )
    multi = [
        t
        for t, r in zip(s["tau"], s["roots"], strict=True)
        if stable(r, t, s["K"]).sum() > 1
    ]
    if multi:
        lines.append(
            f"several stable branches at tau = {', '.join(f'{t:g}' for t in multi)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return figure_main(__doc__, "data/runs/delayed_frequency.nc", summarise, figure, table, argv)


if __name__ == "__main__":
    sys.exit(main())
