"""Study: is the AKOrN energy a Lyapunov function? A grid of model variants.

    python studies/akorn_energy.py [--out data/runs/akorn_energy.nc]

This study is a script, not a TOML spec: the spec format (`kuralab.study`) has no sphere
model kind yet. It builds the models in Python, runs `kl.check_lyapunov` on each, and
writes ONE netCDF file with `kl.io.save` (atomic, with provenance). Plot it with
`python analysis/akorn_energy.py data/runs/akorn_energy.nc`.

Grid (one system of n = 16 oscillators per point; rk4, dt = 0.01, t1 = 20):

- `coupling`: `symmetric` (J = A (x) I, A symmetric), `asymmetric` (J = G (x) I, G
  generic), `commuting_blocks` (J = A (x) I + B (x) W with B antisymmetric: block-
  symmetric, not scalar, commutes with a shared Omega = omega W), `generic_blocks`
  (random block-symmetric J);
- `omega`: `none`, `shared` (Omega = W, W the unit rotation generator in every coordinate
  plane, as AKOrN's global omega), `per_oscillator` (Omega_i = w_i W, w_i ~ U(0.2, 2));
- `stimulus`: `none` or `present` (c_i = 0.5 u_i, u_i uniform on the sphere);
- `vector_dim`: 2 and 4; `seed`: 0, 1, 2 (draws of A, G, B, u and x0).

All variants share one model structure per dimension (per-oscillator `SkewOmega`,
`BlockCoupling`, a stimulus array; zeros where a part is absent), so each dimension
compiles once.

A second part runs the AKOrN discrete update (`kl.AKOrNStep`) for T = 100 steps on the
theorem's `symmetric / none / none` case at several step sizes gamma: the theorem is about
the flow, and large steps (the reference default is gamma = 1) can raise E.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import xarray as xr

import kuralab as kl
from kuralab._akorn_step import AKOrNStep
from kuralab._coupling import BlockCoupling
from kuralab._energy import check_lyapunov
from kuralab._models.sphere import SkewOmega, SphereKuramoto

N_OSC = 16
T1, DT = 20.0, 0.01
COUPLINGS = ("symmetric", "asymmetric", "commuting_blocks", "generic_blocks")
OMEGAS = ("none", "shared", "per_oscillator")
STIMULI = ("none", "present")
DIMS = (2, 4)
SEEDS = (0, 1, 2)
GAMMAS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
AKORN_STEPS = 100


def rotation_generator(d: int) -> np.ndarray:
    """W: unit-rate rotation in every coordinate plane (2k, 2k + 1)."""
    w = np.zeros((d, d))
    for k in range(d // 2):
        w[2 * k + 1, 2 * k], w[2 * k, 2 * k + 1] = 1.0, -1.0
    return w


def build(coupling: str, omega: str, stimulus: str, d: int, seed: int):
    """One model of the grid and its initial state (float32)."""
    rng = np.random.default_rng([seed, d])
    n = N_OSC
    G = rng.standard_normal((n, n)) / np.sqrt(n)
    H = rng.standard_normal((n, n)) / np.sqrt(n)
    eye, W = np.eye(d), rotation_generator(d)
    if coupling == "symmetric":
        blocks = np.einsum("ij,ab->ijab", (G + G.T) / np.sqrt(2), eye)
    elif coupling == "asymmetric":
        blocks = np.einsum("ij,ab->ijab", G, eye)
    elif coupling == "commuting_blocks":
        blocks = np.einsum("ij,ab->ijab", (G + G.T) / np.sqrt(2), eye) + np.einsum(
            "ij,ab->ijab", (H - H.T) / np.sqrt(2), W
        )
    else:
        R = rng.standard_normal((n, n, d, d)) / np.sqrt(n * d)
        blocks = (R + np.transpose(R, (1, 0, 3, 2))) / np.sqrt(2) * np.sqrt(d)
    rates = {
        "none": np.zeros(n),
        "shared": np.ones(n),
        "per_oscillator": rng.uniform(0.2, 2.0, n),
    }[omega]
    u = rng.standard_normal((n, d))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    c = 0.5 * u if stimulus == "present" else np.zeros((n, d))
    x0 = rng.standard_normal((n, d))
    x0 /= np.linalg.norm(x0, axis=-1, keepdims=True)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    model = SphereKuramoto(
        SkewOmega(f32(rates[:, None, None] * W)), BlockCoupling(f32(blocks)), f32(c)
    )
    return model, f32(x0)


def run_grid() -> xr.Dataset:
    cells = []
    for coupling, omega, stim, d, seed in itertools.product(
        COUPLINGS, OMEGAS, STIMULI, DIMS, SEEDS
    ):
        model, x0 = build(coupling, omega, stim, d, seed)
        ds = check_lyapunov(model, x0, t1=T1, dt=DT, save_every=10)
        cell = ds[
            [
                "E",
                "dEdt",
                "E_logged",
                "holds",
                "defect",
                "max_increase",
                "max_step_increase",
                "max_dEdt",
                "tolerance",
                "dEdt_mismatch",
            ]
        ]
        cell["verdict"] = ((), np.array(ds.attrs["verdict"], object))
        cell["theorem"] = ((), np.array(ds.attrs["theorem"], object))
        cell = cell.expand_dims(
            coupling=[coupling],
            omega=[omega],
            stimulus=[stim],
            vector_dim=[d],
            seed=[seed],
        )
        cells.append(cell)
    return xr.combine_by_coords(cells, combine_attrs="drop")


def run_gamma() -> xr.Dataset:
    cells = []
    for d, seed, gamma in itertools.product(DIMS, SEEDS, GAMMAS):
        model, x0 = build("symmetric", "none", "none", d, seed)
        ds = check_lyapunov(
            model, x0, t1=AKORN_STEPS * gamma, dt=gamma, solver=AKOrNStep()
        )
        cell = xr.Dataset(
            {
                "akorn_E": (("step",), ds.E.values),
                "akorn_max_increase": ((), ds.max_increase.values),
                "akorn_tolerance": ((), ds.tolerance.values),
            },
            coords={"step": np.arange(ds.sizes["time"])},
        ).expand_dims(vector_dim=[d], seed=[seed], gamma=[gamma])
        cells.append(cell)
    return xr.combine_by_coords(cells, combine_attrs="drop")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data/runs/akorn_energy.nc")
    args = p.parse_args(argv)
    start = time.perf_counter()
    ds = xr.merge([run_grid(), run_gamma()], combine_attrs="drop")
    ds["akorn_E"].attrs.update(units="1", long_name="AKOrN energy E after each step")
    ds["gamma"].attrs.update(units="1", long_name="AKOrN step size gamma (= dt)")
    ds["vector_dim"].attrs.update(units="1", long_name="oscillator dimension N")
    ds.attrs.update(
        study="akorn_energy",
        description="AKOrN energy E(t) and Lyapunov-hypothesis verdicts over model "
        "variants (kl.check_lyapunov), and the AKOrN discrete step at several gamma",
        n_osc=N_OSC,
        t1=T1,
        dt=DT,
        save_every=10,
        solver="rk4",
        akorn_steps=AKORN_STEPS,
    )
    path = kl.io.save(ds, args.out, seeds=list(SEEDS))
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
