"""Study: the AKOrN Fig. 1 demo, a silhouette stimulus on a 2-D grid of oscillators.

    python studies/akorn_fig1.py [--out data/runs/akorn_fig1.nc]

A script (the TOML spec format has no sphere model kind yet); it writes ONE netCDF file
with `kl.io.save`. Plot it with `python analysis/akorn_fig1.py data/runs/akorn_fig1.nc`.

Setup: a 40 x 40 grid of 2-D oscillators (x = (cos theta, sin theta), so a state is a
phase map), Gaussian local coupling J_ij = K k(r_j - r_i) I (`kl.LatticeCoupling`,
kernel exp(-|d|^2 / 2 sigma^2) on a 9 x 9 window, sigma = 1.5, zero centre, normalised to
sum 1, K = 2, open boundary), random initial phases, and a stimulus c_i = s (1, 0) on the
pixels of a procedural cat silhouette and c_i = s (-1, 0) elsewhere (s = 0.3): the
object and the background are pushed to opposite phases, while the local coupling
synchronises neighbours.

Two variants: `omega = 0` (the hypotheses of AKOrN App. F hold: E must fall
monotonically) and `omega = 0.2` shared (Omega c != 0: E is not a Lyapunov function).
Integration: rk4, dt = 0.05, t1 = 60; states saved every 0.5 and E every step
(`kl.check_lyapunov`).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

import kuralab as kl
from kuralab._energy import check_lyapunov
from kuralab._models.sphere import BlockOmega, SphereKuramoto, random_sphere

SIZE = 40
SIGMA, HALF = 1.5, 4
K, S = 2.0, 0.3
T1, DT, SAVE_EVERY = 60.0, 0.05, 10
OMEGAS = (0.0, 0.2)
SEED = 0


def silhouette(size: int = SIZE) -> np.ndarray:
    """A cat-head silhouette (boolean `(size, size)`): a disc and two triangular ears."""
    r, c = np.mgrid[0:size, 0:size] / (size - 1)
    head = (r - 0.6) ** 2 + (c - 0.5) ** 2 < 0.27**2

    def triangle(p0, p1, p2):
        def side(a, b):
            return (c - a[1]) * (b[0] - a[0]) - (r - a[0]) * (b[1] - a[1])

        s1, s2, s3 = side(p0, p1), side(p1, p2), side(p2, p0)
        return ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))

    left = triangle((0.45, 0.25), (0.12, 0.22), (0.35, 0.45))
    right = triangle((0.45, 0.75), (0.12, 0.78), (0.35, 0.55))
    return head | left | right


def gaussian_kernel() -> np.ndarray:
    d = np.arange(-HALF, HALF + 1)
    k = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * SIGMA**2))
    k[HALF, HALF] = 0.0  # a self term has no effect after the tangent projection
    return k / k.sum()


def model(omega: float, mask: np.ndarray) -> SphereKuramoto:
    c = np.where(mask.reshape(-1, 1), [S, 0.0], [-S, 0.0]).astype(np.float32)
    coupling = kl.LatticeCoupling(
        gaussian_kernel().astype(np.float32), (SIZE, SIZE), boundary="open", strength=K
    )
    return SphereKuramoto(BlockOmega(jnp.array([omega], jnp.float32)), coupling, c)


def order(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """|mean of x| over a region, per saved time (1 = all vectors aligned)."""
    return np.linalg.norm(x[:, mask].mean(axis=1), axis=-1)


def run() -> xr.Dataset:
    mask = silhouette()
    flat = mask.reshape(-1)
    x0 = random_sphere(jax.random.key(SEED), SIZE * SIZE, dim=2)
    cells = []
    for omega in OMEGAS:
        m = model(omega, mask)
        lyap = check_lyapunov(m, x0, t1=T1, dt=DT)
        traj = kl.simulate(m, x0, t1=T1, dt=DT, saveat=kl.SaveAt(every=SAVE_EVERY))
        x = np.asarray(traj.ys, np.float64)
        grid = x.reshape(len(traj.ts), SIZE, SIZE, 2)
        cells.append(
            xr.Dataset(
                {
                    "theta": (
                        ("snapshot", "row", "col"),
                        np.arctan2(grid[..., 1], grid[..., 0]),
                        {"units": "rad", "long_name": "phase arg x of each oscillator"},
                    ),
                    "R_object": (
                        ("snapshot",),
                        order(x, flat),
                        {"units": "1", "long_name": "|mean x| over the silhouette"},
                    ),
                    "R_background": (
                        ("snapshot",),
                        order(x, ~flat),
                        {"units": "1", "long_name": "|mean x| over the background"},
                    ),
                    "E": lyap.E.assign_attrs(units="1"),
                    "verdict": ((), np.array(lyap.attrs["verdict"], object)),
                    "theorem": ((), np.array(lyap.attrs["theorem"], object)),
                    "max_increase": lyap.max_increase,
                    "tolerance": lyap.tolerance,
                },
                coords={
                    "snapshot": (
                        ("snapshot",),
                        np.asarray(traj.ts, np.float64),
                        {"units": "1", "long_name": "time of the saved state"},
                    )
                },
            ).expand_dims(omega=[omega])
        )
    ds = xr.concat(
        cells, dim="omega", data_vars="all", coords="different", compat="equals"
    )
    ds["mask"] = (
        ("row", "col"),
        mask.astype(np.int8),
        {"long_name": "1 on the silhouette"},
    )
    ds["omega"].attrs.update(
        units="rad/time", long_name="shared rotation rate"
    )
    return ds


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data/runs/akorn_fig1.nc")
    args = p.parse_args(argv)
    start = time.perf_counter()
    ds = run()
    ds.attrs.update(
        study="akorn_fig1",
        description="AKOrN Fig. 1 demo: silhouette stimulus, Gaussian local coupling, "
        "synchronisation and energy over time",
        grid=SIZE,
        sigma=SIGMA,
        K=K,
        stimulus_strength=S,
        t1=T1,
        dt=DT,
        solver="rk4",
    )
    path = kl.io.save(ds, args.out, seeds=SEED)
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    for om in ds.omega.values:
        d = ds.sel(omega=om)
        print(
            f"omega = {om:g}: {d.verdict.values} ({d.theorem.values}); largest rise of E "
            f"{float(d.max_increase):.3g} (tolerance {float(d.tolerance):.2g}); final "
            f"R_object {float(d.R_object[-1]):.3f}, R_background "
            f"{float(d.R_background[-1]):.3f}"
        )


if __name__ == "__main__":
    main()
