"""Figure: Omega(v) of a delay-distance ring against the per-edge delayed-frequency theory.

    python analysis/edge_delay_speed.py data/runs/edge_delay_speed.nc \
        --out data/runs/edge_delay_speed.png

Reads a study result with a `speed` sweep and effective frequencies
(`observe.frequency = true`) of identical oscillators (frequency omega) on a ring graph
(`graph = "ring"`, k neighbours each side, or mean-field all-to-all) with per-edge delays
`[model.delays] kind = "edges"`: oscillator i at angle 2 pi i / n on a circle of radius
R, tau_ij = d_ij / v with d_ij the arc or chord distance (`kuralab run
studies/edge_delay_speed.toml`). Every oscillator sees the same delays, so the in-phase
state rotates at a root of

    Omega = omega - K sum_j w_j sin(Omega tau_j)

(w_j the normalised weights of one receiver's inputs), marked stable where
K sum_j w_j cos(Omega tau_j) > 0 (`kl.theory.delayed_sync_frequencies` with the delay
distribution). That criterion is necessary, not sufficient, when some cos(Omega tau_j)
< 0: on this ring at v = 0.08 all three such roots, and at v = 0.1 the upper one, lose
a small q = 1 twisted perturbation (started on the branch), which the runs confirm. The figure draws every root against v (stable: filled dots on solid
lines where a branch is followed; unstable: grey crosses), the simulated Omega per seed,
and, below, each simulated Omega's distance to the nearest stable root (the attained
branch) for the runs that reached the in-phase state (R > 0.99, frequency spread
< 1e-3); slower conduction, where no in-phase root is stable, leaves it (drawn red).

Prints, per speed, the simulated Omega, all roots (stable ones starred) and the
distance to the nearest stable root, and the max of that distance.
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


def receiver_delays(n: int, radius: float, distance: str, graph: str | None, k: int | None):
    """Distances d_0j from oscillator 0 to its inputs (ring: j = +-1..+-k; all-to-all:
    every other oscillator) and their weights (equal)."""
    if graph == "ring":
        m = np.concatenate([np.arange(1, k + 1), -np.arange(1, k + 1)])
    else:  # mean field: every oscillator, itself included (tau = 0)
        m = np.arange(n)
    angle = 2 * np.pi * np.mod(m, n) / n
    if distance == "arc":
        d = radius * np.minimum(angle, 2 * np.pi - angle)
    else:
        d = 2 * radius * np.abs(np.sin(angle / 2))
    return d, np.full(d.shape, 1.0 / d.size)


def summarise(path: str | Path) -> dict:
    ds = kl.io.load(path)
    if "speed" not in ds.dims or "Omega" not in ds:
        raise SystemExit(
            f"error: {path}: expected a study result with a speed sweep and Omega "
            "(observe.frequency = true)"
        )
    a = ds.attrs
    if a.get("delays") != "edges" or a.get("distribution") != "identical":
        raise SystemExit(
            f"error: {path}: expected identical oscillators with [model.delays] kind = "
            '"edges"'
        )
    graph = a.get("coupling_graph") if a.get("coupling") == "sparse" else None
    if a.get("coupling") not in ("mean_field", "sparse") or (
        a.get("coupling") == "sparse" and graph != "ring"
    ):
        raise SystemExit(f"error: {path}: expected a ring graph or mean-field coupling")
    others = [d for d in ds["Omega"].dims if d not in ("speed", "seed")]
    if others:
        raise SystemExit(f"error: {path}: Omega has extra swept dimensions {others}")
    n, omega, K = int(a["n"]), float(a["loc"]), float(a["K"])
    dist, w = receiver_delays(
        n, float(a["delays_radius"]), str(a["delays_distance"]), graph,
        int(a["coupling_k"]) if graph else None,
    )
    speed = ds["speed"].values.astype(np.float64)
    sim = ds["Omega"].transpose("speed", "seed").values.astype(np.float64)
    spread = ds["Omega_std"].transpose("speed", "seed").values.astype(np.float64)
    R = ds["R"].transpose("speed", "seed").values.astype(np.float64)
    # in-phase: coherent and frequency-locked (else the run left the in-phase state,
    # e.g. for a twisted wave when no in-phase root is stable)
    in_phase = (R > 0.99) & (spread < 1e-3)
    roots, stab = [], []
    nearest = np.full_like(sim, np.nan)
    for i, v in enumerate(speed):
        r, st = kl.theory.delayed_sync_frequencies(omega, K, dist / v, w)
        roots.append(r)
        stab.append(st)
        if st.any():
            good = r[st]
            near = good[np.abs(sim[i][:, None] - good[None, :]).argmin(axis=1)]
            nearest[i] = np.where(in_phase[i], near, np.nan)
    return {
        "speed": speed,
        "sim": sim,
        "spread": spread,
        "R": R,
        "in_phase": in_phase,
        "seeds": ds["seed"].values,
        "roots": roots,
        "stable": stab,
        "nearest": nearest,
        "error": np.abs(sim - nearest),
        "omega": omega,
        "K": K,
        "n": n,
        "graph": f"ring k = {a['coupling_k']}" if graph else "all-to-all",
        "distance": str(a["delays_distance"]),
        "solver": str(a.get("solver", "")),
        "dt": float(a.get("dt", np.nan)),
    }


def figure(s: dict):
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(7.2, 6.4), layout="constrained", sharex=True,
        height_ratios=(2.3, 1),
    )
    fine = np.geomspace(s["speed"].min() / 1.1, s["speed"].max() * 1.1, 400)
    stable_pts, unstable_pts = [], []
    for v, r, st in zip(s["speed"], s["roots"], s["stable"], strict=True):
        stable_pts += [(v, x) for x in r[st]]
        unstable_pts += [(v, x) for x in r[~st]]
    if unstable_pts:
        u = np.array(unstable_pts)
        ax.plot(u[:, 0], u[:, 1], "x", color="0.6", ms=5, label="unstable roots")
    if stable_pts:
        p = np.array(stable_pts)
        ax.plot(p[:, 0], p[:, 1], "o", color="0.15", ms=4, label="stable roots")
    markers = "os^vD"
    for j, seed in enumerate(s["seeds"]):
        ok = s["in_phase"][:, j]
        ax.plot(s["speed"][ok], s["sim"][ok, j], markers[j % len(markers)], ms=9 - 2 * j,
                mfc="none", color=f"C{j}", label=f"simulation, seed {seed}")
        if (~ok).any():
            ax.plot(s["speed"][~ok], s["sim"][~ok, j], markers[j % len(markers)],
                    ms=9 - 2 * j, mfc="none", color="C3", alpha=0.7,
                    label=None if j else "simulation, not in phase (R < 0.99)")
    ax.set_xscale("log")
    ax.set_xlim(fine[0], fine[-1])
    ax.set_ylabel(r"frequency $\Omega$ (rad per unit time)")
    ax.set_title(
        r"Delay-distance ring: $\Omega = \omega - K\sum_j w_j\sin(\Omega d_{0j}/v)$"
        f"\n(ω = {s['omega']:g}, K = {s['K']:g}, N = {s['n']}, {s['graph']}, "
        f"{s['distance']} distance, {s['solver']} dt = {s['dt']:g})"
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize="small")
    floor = 1e-9
    for j, seed in enumerate(s["seeds"]):
        bx.semilogy(s["speed"], np.maximum(s["error"][:, j], floor),
                    markers[j % len(markers)], ms=6 - 2 * j, mfc="none", color=f"C{j}",
                    label=f"seed {seed}")
    bx.set_xlabel(r"conduction speed $v$ (radius per unit time)")
    bx.set_ylabel(r"$|\Omega_{sim} - \Omega_{stable}|$ (0 at $10^{-9}$)", fontsize="small")
    bx.grid(alpha=0.3, which="both")
    bx.legend(loc="upper right", fontsize="x-small")
    return fig


def table(s: dict) -> str:
    head = "  ".join(f"{'Omega[' + str(int(x)) + ']':>10}" for x in s["seeds"])
    lines = [
        f"{'speed':>6}  {head}  {'R min':>6}  {'spread':>8}  {'nearest':>9}  {'error':>8}"
        "  roots"
    ]
    for i, v in enumerate(s["speed"]):
        sims = "  ".join(f"{x:10.6f}" for x in s["sim"][i])
        marks = ", ".join(
            f"{x:.5f}{'*' if ok else ''}"
            for x, ok in zip(s["roots"][i], s["stable"][i], strict=True)
        )
        if s["in_phase"][i].any():
            near = f"{np.nanmax(s['nearest'][i]):9.6f}  {np.nanmax(s['error'][i]):8.1e}"
        else:
            near = f"{'not in phase':>19}"
        lines.append(
            f"{v:6.3f}  {sims}  {s['R'][i].min():6.4f}  {s['spread'][i].max():8.1e}  "
            f"{near}  {marks}"
        )
    lines.append("(* = stable root by K sum_j w_j cos(Omega tau_j) > 0, a necessary condition")
    lines.append(" only: with some cos(Omega tau_j) < 0 twisted modes can still grow; spread =")
    lines.append(" max std of the effective frequencies across oscillators)")
    n_in = int(s["in_phase"].sum())
    lines.append(
        "max |Omega_sim - Omega_theory| (nearest stable root) over the "
        f"{n_in} of {s['in_phase'].size} runs that reached the in-phase state: "
        f"{np.nanmax(s['error']):.2e}"
    )
    left = sorted({float(v) for v, row in zip(s["speed"], s["in_phase"], strict=True)
                   if not row.all()})
    if left:
        lines.append(
            f"not in phase (R < 0.99 or spread >= 1e-3) at v = "
            f"{', '.join(f'{v:g}' for v in left)}"
        )
    multi = [v for v, st in zip(s["speed"], s["stable"], strict=True) if st.sum() > 1]
    if multi:
        lines.append(
            f"several stable branches at v = {', '.join(f'{v:g}' for v in multi)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return figure_main(__doc__, "data/runs/edge_delay_speed.nc", summarise, figure,
                       table, argv)


if __name__ == "__main__":
    sys.exit(main())
