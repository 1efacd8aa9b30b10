"""Study: branches of phase-locked states continued in the coupling K through the fold.

    python studies/locking_continuation.py [--out data/runs/locking_continuation.nc]

A script (the TOML spec format has no continuation kind); it writes ONE netCDF file with
`kl.io.save` (atomic, with provenance). Plot it with
`python analysis/continuation.py data/runs/locking_continuation.nc`.

Each case starts on the stable locked state at a large K and follows the branch
downward with pseudo-arclength continuation (`kl.continuation`,
float64): through the saddle-node at the locking threshold K_L, then up the unstable
branches until K returns to its start value. Cases (`case` dimension):

- `pair`: two oscillators, omega = (+0.5, -0.5), `kl.DenseCoupling` with K each way
  (Adler: locked iff |omega_2 - omega_1| <= 2K, so K_L = 0.5);
- `mean_field_5`, `mean_field_12`: `kl.MeanField(K)` networks of N = 5 and 12 with
  Gaussian natural frequencies (sigma = 0.5, seeds 0 and 1; K_L from the finite-N
  self-consistency, Verwoerd & Mason 2008).

Cases have different N and numbers of points: `point`, `osc` and `mode` are padded to
the largest case (NaN for floats, -1 for the int flags; `n_points` and `n_osc` give the
valid lengths). The natural frequencies are stored as `omega` (case, osc), the coupling
kind as `coupling` (case).
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import kuralab as kl  # noqa: E402
from kuralab import continuation  # noqa: E402

DS, DS_MAX, MAX_STEPS = 0.02, 0.1, 4000
SIGMA = 0.5
MEAN_FIELD = ((5, 0), (12, 1))  # (N, seed)
PAIR_OMEGA = np.array([0.5, -0.5])
PAIR_K0 = 2.0
K0_FACTOR = 2.5  # mean-field cases start at K0 = 2.5 x (a bound on K_L)


class Pair(eqx.Module):
    """K -> two oscillators coupled K each way."""

    omega: jax.Array

    def __call__(self, K):
        return kl.Kuramoto(
            self.omega, kl.DenseCoupling(jnp.array([[0.0, 1], [1, 0]]), K)
        )


class MeanFieldK(eqx.Module):
    """K -> `kl.Kuramoto(omega, kl.MeanField(K))`."""

    omega: jax.Array

    def __call__(self, K):
        return kl.Kuramoto(self.omega, kl.MeanField(K))


def cases():
    """(name, coupling kind, omega, make_model, K0) for every case."""
    out = [("pair", "pair", PAIR_OMEGA, Pair(jnp.asarray(PAIR_OMEGA)), PAIR_K0)]
    for n, seed in MEAN_FIELD:
        w = np.asarray(
            kl.sample_frequencies(
                jax.random.key(seed), n, "gaussian", scale=SIGMA, dtype=jnp.float64
            )
        )
        out.append(
            (f"mean_field_{n}", "mean_field", w, MeanFieldK(jnp.asarray(w)), None)
        )
    return out


def run_case(name, coupling, omega, make_model, K0):
    d = omega - omega.mean()
    if K0 is None:  # a locked state surely exists at 2 max|delta| >= K_L
        K0 = K0_FACTOR * 2 * float(np.max(np.abs(d)))
    # Near-locked guess: sin(phi_i - psi) = delta_i / (K r), r ~ 1; refined by Newton.
    scale = K0 if coupling == "mean_field" else 2 * K0
    phi0 = jnp.asarray(np.arcsin(np.clip(d / scale, -1, 1)))
    return continuation(
        make_model,
        phi0,
        p0=K0,
        ds=DS,
        ds_max=DS_MAX,
        direction=-1,
        bounds=(0.0, K0),
        max_steps=MAX_STEPS,
        name="K",
        units="rad/time",
        long_name="coupling strength K",
    )


PER_CASE = ("n_folds", "stop_reason", "frame", "p0")
FILL = {"stable": -1, "fold": -1, "branch": -1}


def combine(runs: dict[str, xr.Dataset], couplings: dict, omegas: dict) -> xr.Dataset:
    sizes = {
        d: max(ds.sizes[d] for ds in runs.values()) for d in ("point", "osc", "mode")
    }
    padded = []
    for name, ds in runs.items():
        n_points, n_osc = ds.sizes["point"], ds.sizes["osc"]
        w = np.full(sizes["osc"], np.nan)
        w[:n_osc] = omegas[name]
        cell = ds.reindex(
            {d: np.arange(sizes[d]) for d in sizes},
            fill_value={**FILL, **{v: np.nan for v in ds.data_vars if v not in FILL}},
        )
        for v, fill in FILL.items():
            cell[v] = cell[v].astype(ds[v].dtype)
            cell[v].attrs = dict(
                ds[v].attrs, long_name=ds[v].attrs["long_name"] + f" ({fill}: padding)"
            )
        cell["omega"] = (
            "osc",
            w,
            {"units": "rad", "long_name": "natural frequency (rad per unit time)"},
        )
        cell["n_points"] = (
            (),
            n_points,
            {"units": "1", "long_name": "valid points of the case"},
        )
        cell["n_osc"] = (
            (),
            n_osc,
            {"units": "1", "long_name": "oscillators in the case"},
        )
        cell["coupling"] = (
            (),
            couplings[name],
            {
                "long_name": "coupling kind: pair (DenseCoupling, K each way) or mean_field (MeanField(K))"
            },
        )
        for key in PER_CASE:
            cell[key] = ((), ds.attrs[key], {"long_name": f"continuation {key}"})
        cell.attrs = {}
        padded.append(cell.expand_dims(case=[name]))
    out = xr.concat(padded, dim="case", combine_attrs="drop")
    out["case"].attrs.update(long_name="continuation case")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data/runs/locking_continuation.nc")
    args = p.parse_args(argv)
    start = time.perf_counter()
    runs, couplings, omegas = {}, {}, {}
    for name, coupling, omega, make_model, K0 in cases():
        t0 = time.perf_counter()
        runs[name] = run_case(name, coupling, omega, make_model, K0)
        couplings[name], omegas[name] = coupling, omega
        print(
            f"{name}: {runs[name].sizes['point']} points, "
            f"{runs[name].attrs['n_folds']} fold(s), stop: "
            f"{runs[name].attrs['stop_reason']} ({time.perf_counter() - t0:.1f} s)"
        )
    ds = combine(runs, couplings, omegas)
    ds.attrs.update(
        study="locking_continuation",
        description="branches of phase-locked states continued in K (pseudo-arclength, "
        "float64) through the locking saddle-node, with stability and folds",
        ds=DS,
        ds_max=DS_MAX,
        max_steps=MAX_STEPS,
        sigma=SIGMA,
    )
    path = kl.io.save(ds, args.out, seeds=[seed for _, seed in MEAN_FIELD])
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
