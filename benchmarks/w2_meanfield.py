"""W2: mean-field K/N (K=2), N=100000, dt=0.01, 1000 RK4 steps.

Bound by sin/cos throughput: 8 transcendental evaluations per oscillator-step (sin and cos
at each of 4 stages). Reference: NumPy float64 RK4 (one run; it is the slowest row).
"""

from __future__ import annotations

import math

import _diffrax_direct as dd
import jax.numpy as jnp
import numpy as np
from _common import Result, discretisation_check, meanfield_rhs, phase_check, rk4

import kuralab as kl

K_VALUE = 2.0
#: Useful flops per oscillator-step of an RK4 mean-field step, counted from the code:
#: per stage the polynomial sincos (~23: reduction 4, z 1, two degree-3 polynomials in
#: Horner form 14, final products 4), the two phasor sums (2), the drift
#: omega + K (c S - s C) (5) and the stage state y + a h k (2): 32; four stages and the
#: combination y + h/6 (k1 + 2 k2 + 2 k3 + k4) (8): 136. Selects are not counted.
FLOPS_PER_OSC_STEP = 136
TOL_F32 = 5e-3


def problem(N: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, N), rng.uniform(-math.pi, math.pi, N)


def run_w2(ctx) -> list[Result]:
    N, steps, dt = ctx.size("W2", "N"), ctx.size("W2", "steps"), ctx.size("W2", "dt")
    omega, th0 = problem(N)
    meta = dict(osc_steps=N * steps, flops=FLOPS_PER_OSC_STEP * N * steps)
    rows = []

    ctx.log("  NumPy float64 RK4 (reference)")
    ref_row = Result("W2", "NumPy f64 RK4 (reference)", "reference", "float64", **meta)
    ref = {}

    def numpy64(i):
        out = rk4(meanfield_rhs(omega, K_VALUE), th0.copy(), dt, steps)
        ref.setdefault("y", out)
        return out

    ctx.timed(ref_row, numpy64, None, repeats=1, first_is_compile=False)
    yref = ref["y"]
    # the reference's own discretisation error, on a prefix (full dt/2 run is too slow)
    pre = max(steps // 10, 10)
    a = rk4(meanfield_rhs(omega[:10000], K_VALUE), th0[:10000].copy(), dt, pre)
    b = rk4(meanfield_rhs(omega[:10000], K_VALUE), th0[:10000].copy(), dt / 2, 2 * pre)
    ref_row.check = discretisation_check(b, a)
    ref_row.note = f"n=1; dt/2 check on N=10^4, {pre} steps; r_final {np.abs(np.mean(np.exp(1j * yref))):.3f}"
    rows.append(ref_row)

    ctx.log("  kuralab")
    model = kl.Kuramoto(jnp.asarray(omega, jnp.float32), kl.MeanField(K_VALUE))
    y0 = jnp.asarray(th0, jnp.float32)
    r = Result("W2", "kuralab simulate rk4 MeanField", "kuralab", **meta)
    ctx.timed(
        r,
        lambda i: kl.simulate(model, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final,
        phase_check(yref, TOL_F32),
        compile_events=True,
    )
    rows.append(r)

    ctx.log("  diffrax direct")
    solve = dd.rk4_solver("meanfield", steps, dt)
    args = (jnp.asarray(omega, jnp.float32), jnp.float32(K_VALUE))
    r = Result("W2", "diffrax direct RK4", "baseline", **meta)
    ctx.timed(r, lambda i: solve(*args, y0)[0], phase_check(yref, TOL_F32))
    rows.append(r)

    ctx.log("  NumPy float32")
    om32, th32 = omega.astype(np.float32), th0.astype(np.float32)
    r = Result("W2", "NumPy f32 RK4", "baseline", **meta)
    ctx.timed(
        r,
        lambda i: rk4(meanfield_rhs(om32, np.float32(K_VALUE)), th32.copy(), dt, steps),
        phase_check(yref, TOL_F32),
        first_is_compile=False,
    )
    rows.append(r)

    for name, why in (
        ("kuramoto 0.4.0", "not run: builds N x N arrays every RHS call (80 GB at N=1e5)"),
        ("jitcode", "not run: code generation + gcc for N=1e5 did not finish in 300 s (peers.md)"),
    ):
        r = Result("W2", name, "peer", "float64", **meta)
        r.skipped = why
        rows.append(r)
    return rows
