"""W3: sweep of 64 values of K in [0, 4], N=500 mean-field, 2000 RK4 steps each.

kuralab: `jax.jit(jax.vmap(lambda K: kl.simulate(kl.Kuramoto(omega, kl.MeanField(K)),
y0, ...).final))`. Reference: NumPy float64 RK4 over a (64, 500) batch. Checks: the final
order parameter r(K) of every K, and the final phases.
"""

from __future__ import annotations

import math

import _diffrax_direct as dd
import jax
import jax.numpy as jnp
import numpy as np
import peers
from _common import (
    Check,
    Result,
    discretisation_check,
    meanfield_rhs,
    order_parameter,
    rk4,
    wrapped_diff,
)

import kuralab as kl

TOL_R = 2e-3  # |r_final - r_ref| for every K
TOL_PHASE = 5e-2  # max |dtheta| over all K and oscillators (near K_c phases are sensitive)


def problem(N: int, nK: int, seed: int = 4):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, N), np.linspace(0.0, 4.0, nK), rng.uniform(-math.pi, math.pi, N)


def sweep_check(yref):
    rref = order_parameter(yref)

    def check(out) -> Check:
        out = np.asarray(out, np.float64)
        if out.shape != yref.shape or not np.all(np.isfinite(out)):
            return Check("shape/finite", math.inf, TOL_R, False)
        dr = float(np.max(np.abs(order_parameter(out) - rref)))
        dth = float(np.max(np.abs(wrapped_diff(out, yref))))
        ok = dr <= TOL_R and dth <= TOL_PHASE
        return Check(f"max|dr| (max|dtheta| {dth:.1e})", dr, TOL_R, ok)

    return check


def run_w3(ctx) -> list[Result]:
    N, nK = ctx.size("W3", "N"), ctx.size("W3", "nK")
    steps, dt = ctx.size("W3", "steps"), ctx.size("W3", "dt")
    omega, Ks, th0 = problem(N, nK)
    meta = dict(osc_steps=nK * N * steps)
    rows = []

    ctx.log("  NumPy float64 RK4 batched (reference)")
    ref_row = Result("W3", f"NumPy f64 RK4 batched ({nK}x{N}) (reference)", "reference", "float64", **meta)
    ref = {}
    Kcol = Ks[:, None]
    th_b = np.broadcast_to(th0, (nK, N)).copy()

    def numpy64(i):
        out = rk4(meanfield_rhs(omega, Kcol), th_b.copy(), dt, steps)
        ref.setdefault("y", out)
        return out

    ctx.timed(ref_row, numpy64, None, repeats=ctx.ref_repeats, first_is_compile=False)
    yref = ref["y"]
    half = rk4(meanfield_rhs(omega, Kcol), th_b.copy(), dt / 2, 2 * steps)
    ref_row.check = discretisation_check(half, yref)
    rows.append(ref_row)
    check = sweep_check(yref)

    ctx.log("  kuralab jit(vmap(simulate))")
    om32 = jnp.asarray(omega, jnp.float32)
    y0 = jnp.asarray(th0, jnp.float32)

    @jax.jit
    def sweep(om, y0, Ks):
        return jax.vmap(
            lambda K: kl.simulate(
                kl.Kuramoto(om, kl.MeanField(K)), y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)
            ).final
        )(Ks)

    Ks32 = jnp.asarray(Ks, jnp.float32)
    r = Result("W3", f"kuralab jit(vmap(simulate)) over {nK} K", "kuralab", **meta)
    ctx.timed(r, lambda i: sweep(om32, y0, Ks32), check, compile_events=True)
    rows.append(r)

    ctx.log("  diffrax direct vmap")
    solve = dd.rk4_sweep_K(steps, dt)
    r = Result("W3", f"diffrax direct jit(vmap) over {nK} K", "baseline", **meta)
    ctx.timed(r, lambda i: solve(om32, Ks32, y0)[0], check)
    rows.append(r)

    ctx.log("  NumPy float32 batched")
    r = Result("W3", f"NumPy f32 RK4 batched ({nK}x{N})", "baseline", **meta)
    o32, K32, t32 = omega.astype(np.float32), Kcol.astype(np.float32), th_b.astype(np.float32)
    ctx.timed(
        r, lambda i: rk4(meanfield_rhs(o32, K32), t32.copy(), dt, steps), check, first_is_compile=False
    )
    rows.append(r)

    r = Result("W3", "jitcode (control_pars=[K], loop)", "peer", "float64", **meta)
    ctx.peer(r, lambda: peers.jitcode_meanfield_sweep(omega, Ks, th0, steps, dt), check)
    rows.append(r)

    sub = ctx.size("W3", "kuramoto_subset")
    idx = np.linspace(0, nK - 1, sub).round().astype(int)
    r = Result("W3", f"kuramoto 0.4.0 (LSODA), {sub} of {nK} K", "peer", "float64",
               osc_steps=sub * N * steps)
    sub_check = sweep_check(yref[idx])
    ctx.peer(r, lambda: peers.kuramoto_meanfield_sweep(omega, Ks[idx], th0, steps, dt), sub_check,
             slow=True)
    rows.append(r)
    return rows
