"""Figure: adiabatic delay ramps up and down over the branches of delayed synchrony.

    python analysis/delay_hysteresis.py data/runs/delay_hysteresis.nc \
        --out data/runs/delay_hysteresis.png

Reads a study result with an adiabatic `tau` ramp (`direction` = up, down), a `seed`
dimension and effective frequencies for identical delay-coupled oscillators
(`kuralab run studies/delay_hysteresis.toml`). In-phase synchrony rotates at a root of

    Omega = omega - K sin(Omega tau),

stable where K cos(Omega tau) > 0 (Yeung & Strogatz 1999). Each ramp value starts from
the previous one's end state and delay history, so a ramp stays on its branch while the
branch exists: the up ramp on the lower one, the down ramp on the upper one, and the
two differ where both are stable (hysteresis). Next to a fold a ramp may sit on the
continued, weakly unstable root for a while: its carried history is that root's own
rotation, so only round-off seeds the instability.

Prints, per tau, both ramps' Omega, the nearest root of the equation (stable ones
marked *), the distance to it, the hysteresis window (tau where up and down differ by
more than 0.1) and where the theory has two stable roots.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _script import figure_main  # noqa: E402
from delayed_frequency import branches, roots, stable  # noqa: E402

import kuralab as kl  # noqa: E402


def summarise(path: str | Path) -> dict:
    ds = kl.io.load(path)
    if "tau" not in ds.dims or "direction" not in ds.dims or "Omega" not in ds:
        raise SystemExit(
            f"error: {path}: expected an adiabatic tau ramp (sweep.mode = 'adiabatic', "
            "along = 'tau') with Omega (observe.frequency = true)"
        )
    if ds.attrs.get("distribution") != "identical" or "K" not in ds.attrs:
        raise SystemExit(f"error: {path}: expected identical oscillators and a fixed K")
    omega, K = float(ds.attrs["loc"]), float(ds.attrs["K"])
    tau = ds["tau"].values.astype(np.float64)
    sim = ds["Omega"].transpose("direction", "tau", "seed").values.astype(np.float64)
    all_roots = [roots(t, omega, K) for t in tau]
    nearest = np.full_like(sim, np.nan)
    for i, r in enumerate(all_roots):
        idx = np.abs(sim[:, i, :, None] - r[None, None, :]).argmin(axis=-1)
        nearest[:, i] = r[idx]
    on_stable = np.stack(
        [[stable(nearest[d, i], t, K) for i, t in enumerate(tau)] for d in range(2)]
    )
    return {
        "tau": tau, "sim": sim, "roots": all_roots, "nearest": nearest,
        "error": np.abs(sim - nearest), "on_stable": on_stable,
        "directions": [str(d) for d in ds["direction"].values],
        "seeds": ds["seed"].values, "omega": omega, "K": K, "n": int(ds.attrs["n"]),
        "solver": str(ds.attrs.get("solver", "")), "dt": float(ds.attrs.get("dt", np.nan)),
    }


def figure(s: dict):
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(7.2, 6.4), layout="constrained",
                                 sharex=True, height_ratios=(2.3, 1))
    omega, K = s["omega"], s["K"]
    tau_max = float(s["tau"].max()) * 1.03
    seen = set()
    for t, w, ok in branches(omega, K, tau_max):
        label = "stable branch" if ok else "unstable branch"
        ax.plot(t, w, color="0.15" if ok else "0.55", lw=1.6 if ok else 1.0,
                ls="-" if ok else "--", label=None if ok in seen else label)
        seen.add(ok)
    for d, (name, marker) in enumerate(zip(s["directions"], "^v", strict=False)):
        ax.plot(s["tau"], s["sim"][d, :, 0], marker, ms=8 - 3 * d,
                mfc="none" if d else f"C{d}", color=f"C{d}", label=f"ramp {name}")
        bx.semilogy(s["tau"], np.maximum(s["error"][d].max(axis=-1), 1e-9), marker,
                    color=f"C{d}", mfc="none" if d else f"C{d}", label=f"ramp {name}")
    ax.set_xlim(float(s["tau"].min()) * 0.97, tau_max)
    ax.set_ylim(omega - abs(K) - 0.05, omega + abs(K) + 0.05)
    ax.set_ylabel(r"frequency $\Omega$ (rad per unit time)")
    ax.set_title(
        r"Adiabatic $\tau$ ramps: $\Omega = \omega - K\sin\Omega\tau$"
        f"\n(ω = {omega:g}, K = {K:g}, N = {s['n']}, {s['solver']} dt = {s['dt']:g})"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    bx.set_xlabel(r"delay $\tau$ (time units)")
    bx.set_ylabel(r"$|\Omega_{sim} - $ nearest root$|$", fontsize="small")
    bx.grid(alpha=0.3, which="both")
    bx.legend(fontsize="x-small")
    return fig


def table(s: dict) -> str:
    up, down = s["directions"].index("up"), s["directions"].index("down")
    lines = [f"{'tau':>6}  {'Omega up':>9}  {'Omega down':>10}  {'root up':>9}  "
             f"{'root down':>9}  {'error':>8}  roots"]
    for i, t in enumerate(s["tau"]):
        r = s["roots"][i]
        marks = ", ".join(f"{x:.5f}{'*' if ok else ''}"
                          for x, ok in zip(r, stable(r, t, s["K"]), strict=True))
        lines.append(
            f"{t:6.3f}  {s['sim'][up, i, 0]:9.5f}  {s['sim'][down, i, 0]:10.5f}  "
            f"{s['nearest'][up, i, 0]:9.5f}  {s['nearest'][down, i, 0]:9.5f}  "
            f"{s['error'][:, i].max():8.1e}  {marks}"
        )
    lines.append("(* = stable root, K cos(Omega tau) > 0; error: max over ramps and seeds)")
    lines.append(f"max |Omega_sim - nearest root|: {np.nanmax(s['error']):.2e}; on a "
                 f"stable root: {int(s['on_stable'].sum())} of {s['on_stable'].size}"
                 " (ramp, tau, seed) points")
    gap = np.abs(s["sim"][up] - s["sim"][down]).max(axis=-1) > 0.1
    two = [t for t, r in zip(s["tau"], s["roots"], strict=True)
           if stable(r, t, s["K"]).sum() > 1]
    lines.append("hysteresis (up != down) at tau = "
                 + ", ".join(f"{t:g}" for t in s["tau"][gap]))
    lines.append("two stable roots at tau = " + ", ".join(f"{t:g}" for t in two))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return figure_main(__doc__, "data/runs/delay_hysteresis.nc", summarise, figure, table,
                       argv)


if __name__ == "__main__":
    sys.exit(main())
