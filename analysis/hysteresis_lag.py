"""Figure: adiabatic K ramps up and down with phase lag, against the locking fold.

    python analysis/hysteresis_lag.py data/runs/hysteresis_lag.nc \
        --out data/runs/hysteresis_lag.png

Reads the result of `kuralab run studies/hysteresis_lag.toml` (dims `direction`, `K`,
`lag`, `seed`; uniform quantile frequencies, so every seed has the same frequencies and
differs only in its initial phases) and draws, one column per lag alpha,

- top: R(K) going up (o, solid) and coming down (x, dashed), mean over seeds;
- bottom: the locked fraction (effective frequency within 2 pi / window of the mean
  field's) on both ramps;

with the locking threshold K_L(alpha) of the very same finite network as a dotted line.
K_L is computed independently of the simulations by continuation of the fully locked
branch (`kl.continuation` in K at fixed alpha, float64) down to its saddle-node fold.

Prints per lag: K_L(alpha) from continuation; K_down, the smallest K at which every
oscillator is still locked on the way down, and K_up, the smallest K at which every
oscillator is locked on the way up (the ramp's grid spacing bounds both); and the
hysteresis area, the integral of R_down - R_up over K.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import matplotlib

jax.config.update("jax_enable_x64", True)  # folds located in float64
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _script import figure_main  # noqa: E402

import kuralab as kl  # noqa: E402


def _omega(ds) -> np.ndarray:
    """The natural frequencies of the study (quantile sampling: seed-independent)."""
    if ds.attrs.get("sampling") != "quantile":
        raise SystemExit(
            "error: the continuation comparison needs quantile sampling "
            "(identical frequencies across seeds)"
        )
    return np.asarray(
        kl.sample_frequencies(
            None,
            int(ds.attrs["n"]),
            ds.attrs["distribution"],
            loc=float(ds.attrs.get("loc", 0.0)),
            scale=float(ds.attrs["scale"]),
            sampling="quantile",
        ),
        dtype=np.float64,
    )


class _Model:
    """`make_model(K)` for the continuation, one object per lag (its arrays are
    traced, so every lag reuses one compilation)."""

    def __init__(self, omega, lag):
        self.omega, self.lag = omega, lag

    def __call__(self, K):
        return kl.Kuramoto(self.omega, kl.MeanField(K), lag=self.lag)


def fold_K(omega: np.ndarray, lag: float, K_start: float) -> float:
    """K_L(alpha): the fold where the fully locked branch of the finite network ends,
    found by continuation downward from `K_start`."""
    import jax.numpy as jnp

    w = jnp.asarray(omega - omega.mean())
    make = _Model(w, jnp.float64(lag))
    # Relax onto the locked state by simulation, then polish it with Newton.
    model = make(jnp.float64(K_start))
    guess = kl.simulate(
        model, jnp.zeros_like(w), t1=200.0, dt=0.1, saveat=kl.SaveAt(final=True)
    ).final
    start = kl.locked_state(model, guess - guess[0], throw=False)
    if not start.converged:  # not fully locked even at the top of the ramp
        return float("nan")
    ds = kl.continuation(
        make,
        start.phi,
        p0=K_start,
        ds=0.02,
        direction=-1,
        bounds=(0.0, K_start),
        name="K",
        max_steps=2000,
    )
    folds = ds.K.where(ds.fold == 1, drop=True).values
    if folds.size == 0:
        return float("nan")
    return float(folds[0])


def _first_locked(K: np.ndarray, locked: np.ndarray) -> float:
    """Smallest K of the last run of fully locked values (nan if never locked)."""
    full = locked >= 1.0 - 1e-6
    if not full[-1]:
        return float("nan")
    i = len(full) - 1
    while i > 0 and full[i - 1]:
        i -= 1
    return float(K[i])


def summarise(path: str | Path) -> dict:
    ds = kl.io.load(path)
    need = {"R", "locked"}
    if ds.attrs.get("mode") != "adiabatic" or not need <= set(ds.data_vars):
        raise SystemExit(
            f"error: {path}: not an adiabatic study with R and locked (run "
            "studies/hysteresis_lag.toml)"
        )
    omega = _omega(ds)
    K = ds.K.values
    rows = []
    for lag in ds.lag.values:
        c = ds.sel(lag=lag)
        R = c.R.mean("seed")
        locked = c.locked.mean("seed")
        up, down = R.sel(direction="up").values, R.sel(direction="down").values
        rows.append(
            dict(
                lag=float(lag),
                R_up=up,
                R_down=down,
                locked_up=locked.sel(direction="up").values,
                locked_down=locked.sel(direction="down").values,
                K_L=fold_K(omega, float(lag), float(K.max())),
                K_down=_first_locked(K, locked.sel(direction="down").values),
                K_up=_first_locked(K, locked.sel(direction="up").values),
                area=float(np.trapezoid(down - up, K)),
            )
        )
    return dict(K=K, rows=rows, n=int(ds.attrs["n"]), step=float(np.diff(K).max()))


def figure(s: dict):
    rows = s["rows"]
    fig, axes = plt.subplots(
        2, len(rows), figsize=(4.2 * len(rows), 6.2), sharex=True, squeeze=False
    )
    for j, r in enumerate(rows):
        top, bottom = axes[0, j], axes[1, j]
        top.plot(s["K"], r["R_up"], "o-", ms=3, label="K up")
        top.plot(s["K"], r["R_down"], "x--", ms=4, label="K down")
        bottom.plot(s["K"], r["locked_up"], "o-", ms=3)
        bottom.plot(s["K"], r["locked_down"], "x--", ms=4)
        for ax in (top, bottom):
            if np.isfinite(r["K_L"]):
                ax.axvline(
                    r["K_L"], color="k", ls=":", lw=1, label="K_L (continuation)"
                )
        top.set_title(f"lag alpha = {r['lag']:g}")
        top.set_ylim(0, 1.02)
        bottom.set_ylim(-0.02, 1.02)
        bottom.set_xlabel("K")
    axes[0, 0].set_ylabel("R (mean over seeds)")
    axes[1, 0].set_ylabel("locked fraction")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Adiabatic K ramps, N = {s['n']} uniform oscillators")
    fig.tight_layout()
    return fig


def table(s: dict) -> str:
    lines = [
        f"ramp step dK = {s['step']:.3g}",
        "lag    K_L(continuation)  K_down(all locked)  K_up(all locked)  "
        "area(R_down - R_up)",
    ]
    for r in s["rows"]:
        lines.append(
            f"{r['lag']:<6.3g} {r['K_L']:<18.5f} {r['K_down']:<19.4g} "
            f"{r['K_up']:<17.4g} {r['area']:.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return figure_main(
        __doc__,
        "data/runs/hysteresis_lag.nc",
        summarise,
        figure,
        table,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
