"""W1: dense random coupling, N=1000, K_ij = (2/N) U(0, 2), dt=0.01, 2000 RK4 steps.
W1b: the same network, 64 initial conditions integrated together (batched: the coupling
becomes a matrix-matrix product), 500 RK4 steps.

Useful flops: 4 RHS evaluations x 2 products x 2 N^2 (x B initial conditions) per step.
Reference: NumPy float64 RK4 at the same dt (max wrapped phase difference at the end).
"""

from __future__ import annotations

import math
import statistics
import time

import _diffrax_direct as dd
import jax
import jax.numpy as jnp
import numpy as np
import peers
import roofline
from _common import Result, dense_rhs, discretisation_check, phase_check, rk4

import kuralab as kl

# float32 error after 2000 dense RK4 steps is ~2e-4 rad (rounding); 1e-2 catches any
# real mistake (a wrong sign or scale moves phases by O(1)).
TOL_F32 = 1e-2


def problem(N: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    omega = rng.normal(0, 1, N)
    K = (2.0 / N) * rng.uniform(0, 2, (N, N))
    theta0 = rng.uniform(-math.pi, math.pi, N)
    return omega, K, theta0


def interleaved_fraction(ctx, r: Result, fn, key: str, pairs: int = 5, **kw):
    """kuralab's GFLOP/s as a fraction of the roofline rate, measured in alternating
    pairs (one kuralab call, one roofline call of ~0.3 s): the machine is shared and its
    load drifts, so a ratio of two numbers taken minutes apart is unreliable. Stores the
    median of the per-pair ratios in `ctx.roof[key + "_fraction"]`."""
    probe = roofline.probe(dtype=jnp.float32, **kw)
    ratios, rates = [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        kl_rate = r.flops / (time.perf_counter() - t0) / 1e9
        roof = probe()
        ratios.append(kl_rate / roof)
        rates.append(roof)
    frac = statistics.median(ratios)
    ctx.roof[key + "_fraction"] = frac
    ctx.roof[key + "_interleaved"] = statistics.median(rates)
    r.extra["interleaved"] = dict(ratios=ratios, roofline_gflops=rates, key=key)
    r.note = (r.note + "; " if r.note else "") + (
        f"interleaved with the {key} roofline: {100 * frac:.0f}% (median of {pairs} pairs; "
        f"roofline {statistics.median(rates):.1f} GFLOP/s)"
    )
    ctx.log(f"    interleaved {key} fraction: {frac:.2f} (roofline {statistics.median(rates):.1f} GFLOP/s)")


def _kuralab_single(omega, K, steps, dt):
    model = kl.Kuramoto(jnp.asarray(omega, jnp.float32), kl.DenseCoupling(jnp.asarray(K, jnp.float32)))

    def run(y0):
        return kl.simulate(model, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final

    return run


def run_w1(ctx) -> list[Result]:
    N, steps, dt = ctx.size("W1", "N"), ctx.size("W1", "steps"), ctx.size("W1", "dt")
    omega, K, th0 = problem(N)
    work = N * steps
    flops = steps * 4 * 2 * 2.0 * N * N
    rows = []
    meta = dict(osc_steps=work, flops=flops)

    ctx.log("  NumPy float64 RK4 (reference)")
    ref_row = Result("W1", "NumPy f64 RK4 (reference)", "reference", "float64", **meta)
    ref = {}

    def numpy64(i):
        out = rk4(dense_rhs(omega, K), th0.copy(), dt, steps)
        ref.setdefault("y", out)
        return out

    # The reference checks itself against a run at dt/2 once (discretisation error).
    ctx.timed(ref_row, numpy64, None, repeats=ctx.ref_repeats, first_is_compile=False)
    rows.append(ref_row)
    yref = ref["y"]
    half = rk4(dense_rhs(omega, K), th0.copy(), dt / 2, 2 * steps)
    ref_row.check = discretisation_check(half, yref)

    ctx.log("  kuralab")
    y0 = jnp.asarray(th0, jnp.float32)
    fn = _kuralab_single(omega, K, steps, dt)
    r = Result("W1", "kuralab simulate rk4 DenseCoupling", "kuralab", **meta)
    ctx.timed(r, lambda i: fn(y0), phase_check(yref, TOL_F32), compile_events=True)
    if r.valid:
        interleaved_fraction(ctx, r, lambda: fn(y0), "matvec", n=N)
    rows.append(r)

    ctx.log("  diffrax direct")
    solve = dd.rk4_solver("dense", steps, dt)
    args32 = (jnp.asarray(omega, jnp.float32), jnp.asarray(K, jnp.float32))
    r = Result("W1", "diffrax direct RK4, two matvecs", "baseline", **meta)
    ctx.timed(r, lambda i: solve(*args32, y0)[0], phase_check(yref, TOL_F32))
    n_steps = int(solve(*args32, y0)[1])
    if n_steps != steps:
        r.note = f"diffrax took {n_steps} steps"
    rows.append(r)

    ctx.log("  NumPy float32")
    om32, K32, th32 = omega.astype(np.float32), K.astype(np.float32), th0.astype(np.float32)
    r = Result("W1", "NumPy f32 RK4", "baseline", **meta)
    ctx.timed(
        r,
        lambda i: rk4(dense_rhs(om32, K32), th32.copy(), dt, steps),
        phase_check(yref, TOL_F32),
        first_is_compile=False,
    )
    rows.append(r)

    # Peers
    r = Result("W1", "kuramoto 0.4.0 (scipy odeint/LSODA)", "peer", "float64", **meta)
    ctx.peer(r, lambda: peers.kuramoto_dense(omega, K, th0, steps, dt), phase_check(yref, TOL_F32))
    rows.append(r)
    r = Result("W1", "jitcode (dopri5, rtol 1e-8)", "peer", "float64", **meta)
    r.skipped = (
        "not run: jitcode hard-codes the 2 N^2 coupling terms in C; peers.md measured "
        "144 s of code generation + gcc at N=250, growing as N^2 (and RecursionError in "
        "sort_helpers at N=1000)"
    )
    rows.append(r)
    return rows


def run_w1b(ctx) -> list[Result]:
    N, B = ctx.size("W1b", "N"), ctx.size("W1b", "B")
    steps, dt = ctx.size("W1b", "steps"), ctx.size("W1b", "dt")
    omega, K, _ = problem(N)
    rng = np.random.default_rng(2)
    th0 = rng.uniform(-math.pi, math.pi, (B, N))
    work = B * N * steps
    flops = steps * 4 * 2 * 2.0 * N * N * B
    meta = dict(osc_steps=work, flops=flops)
    rows = []

    ctx.log("  NumPy float64 RK4, batched (reference)")
    ref_row = Result("W1b", "NumPy f64 RK4 batched (reference)", "reference", "float64", **meta)
    ref = {}

    def numpy64(i):
        out = rk4(dense_rhs(omega, K), th0.T.copy(), dt, steps).T
        ref.setdefault("y", out)
        return out

    ctx.timed(ref_row, numpy64, None, repeats=ctx.ref_repeats, first_is_compile=False)
    rows.append(ref_row)
    yref = ref["y"]

    ctx.log("  kuralab vmap over y0")
    model = kl.Kuramoto(jnp.asarray(omega, jnp.float32), kl.DenseCoupling(jnp.asarray(K, jnp.float32)))

    @jax.jit
    def batched(model, Y0):
        return jax.vmap(
            lambda y0: kl.simulate(model, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final
        )(Y0)

    Y0 = jnp.asarray(th0, jnp.float32)
    r = Result("W1b", f"kuralab vmap(simulate) over {B} y0", "kuralab", **meta)
    n_mm = 8192 if ctx.backend != "cpu" else (1000 if ctx.quick else 2000)
    ctx.timed(r, lambda i: batched(model, Y0), phase_check(yref, TOL_F32), compile_events=True)
    if r.valid:
        interleaved_fraction(ctx, r, lambda: batched(model, Y0), "matmul", pairs=3, n=n_mm, width=n_mm)
    rows.append(r)

    ctx.log("  diffrax direct vmap")
    solve = dd.rk4_batched_y0("dense", steps, dt)
    args32 = (jnp.asarray(omega, jnp.float32), jnp.asarray(K, jnp.float32))
    r = Result("W1b", f"diffrax direct vmap over {B} y0", "baseline", **meta)
    ctx.timed(r, lambda i: solve(*args32, Y0)[0], phase_check(yref, TOL_F32))
    rows.append(r)

    ctx.log("  NumPy float32 batched")
    om32, K32 = omega.astype(np.float32), K.astype(np.float32)
    th32 = th0.T.astype(np.float32).copy()
    r = Result("W1b", "NumPy f32 RK4 batched (matmul)", "baseline", **meta)
    ctx.timed(
        r,
        lambda i: rk4(dense_rhs(om32, K32), th32.copy(), dt, steps).T,
        phase_check(yref, TOL_F32),
        first_is_compile=False,
    )
    rows.append(r)
    return rows

