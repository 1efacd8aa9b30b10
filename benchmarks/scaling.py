"""S: osc-steps/s against N for each coupling kind (the data of
`analysis/bench_scaling.py`).

kuralab RK4, dt=0.01, float32, `SaveAt(final=True)`; the number of steps per point is set
from a rough cost model so one run takes ~0.25 s. Couplings: mean-field (K=2), dense
(K_ij = (2/N) U(0, 2)), sparse (8 random in-edges per oscillator, weights 2/8), lattice
(2-D periodic L x L grid, 4-neighbour kernel of weight 2/4). Each point is checked against
NumPy float64 RK4 with the same coupling (dense product, scipy.sparse, np.roll).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from _common import Result, phase_check, rk4

import kuralab as kl

TOL = 2e-3
DEGREE = 8
#: rough ns per oscillator-step on a 2-core CPU (dense: per oscillator, times N)
COST_NS = {"meanfield": 100.0, "dense": 0.4, "sparse": 2000.0, "lattice": 200.0}


def _steps(kind: str, N: int, budget_s: float = 0.25) -> int:
    per = COST_NS[kind] * (N if kind == "dense" else 1)
    return int(np.clip(budget_s * 1e9 / (per * N), 10, 500))


def _problem(kind: str, N: int, seed: int = 7):
    """(coupling for kuralab, f64 operator u -> K u for NumPy, actual N)."""
    rng = np.random.default_rng(seed)
    if kind == "meanfield":
        return kl.MeanField(2.0), lambda u: np.full_like(u, 2.0 * u.mean()), N
    if kind == "dense":
        K = (2.0 / N) * rng.uniform(0, 2, (N, N))
        return kl.DenseCoupling(jnp.asarray(K, jnp.float32)), lambda u: K @ u, N
    if kind == "sparse":
        receivers = np.repeat(np.arange(N), DEGREE)
        senders = rng.integers(0, N, N * DEGREE)
        w = np.full(N * DEGREE, 2.0 / DEGREE)
        M = sp.csr_matrix((w, (receivers, senders)), shape=(N, N))
        c = kl.SparseCoupling(receivers, senders, jnp.asarray(w, jnp.float32), n=N)
        return c, lambda u: M @ u, N
    if kind == "lattice":
        L = max(3, round(math.sqrt(N)))
        kernel = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]) * (2.0 / 4)
        c = kl.LatticeCoupling(jnp.asarray(kernel, jnp.float32), (L, L))

        def apply(u):
            g = u.reshape(L, L)
            out = 0.5 * (np.roll(g, 1, 0) + np.roll(g, -1, 0) + np.roll(g, 1, 1) + np.roll(g, -1, 1))
            return out.reshape(-1)

        return c, apply, L * L
    raise ValueError(kind)


def numpy_ref(apply, omega, th0, dt, steps):
    def f(th):
        s, c = np.sin(th), np.cos(th)
        return omega + c * apply(s) - s * apply(c)

    return rk4(f, th0.copy(), dt, steps)


def run_scaling(ctx) -> list[Result]:
    grid = ctx.size("S", "grid")
    dt = 0.01
    rows = []
    for kind, Ns in grid.items():
        for N0 in Ns:
            coupling, apply, N = _problem(kind, N0)
            steps = _steps(kind, N)
            rng = np.random.default_rng(8)
            omega, th0 = rng.normal(0, 1, N), rng.uniform(-math.pi, math.pi, N)
            ref = numpy_ref(apply, omega, th0, dt, steps)
            model = kl.Kuramoto(jnp.asarray(omega, jnp.float32), coupling)
            y0 = jnp.asarray(th0, jnp.float32)
            r = Result("S", f"kuralab {kind} N={N}", "kuralab", osc_steps=N * steps)
            r.extra.update(coupling=kind, N=N, steps=steps)
            if kind == "dense":
                r.flops = steps * 4 * 2 * 2.0 * N * N
            ctx.log(f"  {kind} N={N} ({steps} steps)")
            ctx.timed(
                r,
                lambda i, model=model, y0=y0, steps=steps: kl.simulate(
                    model, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)
                ).final,
                phase_check(ref, TOL),
            )
            rows.append(r)
    return rows
