"""G: device figures (issue 6, part 3), run by default on an accelerator and with
`--only G` anywhere (smaller sizes on a CPU).

- G1: mean-field RK4 at N = 1e7 (CPU: 1e6), as a fraction of the measured streaming
  bandwidth. Byte model: 36 B per oscillator-step, the minimum traffic of mean-field RK4
  in float32 -- each of the 4 stages needs one pass reading theta and omega (8 B) to form
  its mean field (a stage state is a function of theta_i, omega_i and the earlier stages'
  scalars), and the update writes theta (4 B).
- G2: an ensemble of 4096 mean-field networks (N=256 each, its own K and initial state),
  `jit(vmap(simulate))`; the first 32 networks are checked against NumPy float64.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from _common import Result, meanfield_rhs, phase_check, rk4

import kuralab as kl

BYTES_PER_OSC_STEP = 36.0
TOL = 5e-3


def run_gpu(ctx) -> list[Result]:
    gpu = ctx.backend != "cpu"
    rows = []
    dt = 0.01

    N = ctx.size("G", "N_gpu" if gpu else "N_cpu")
    steps = ctx.size("G", "steps")
    rng = np.random.default_rng(9)
    omega, th0 = rng.normal(0, 1, N), rng.uniform(-math.pi, math.pi, N)
    ctx.log(f"  G1 mean-field N={N}")
    ref = rk4(meanfield_rhs(omega, 2.0), th0.copy(), dt, steps)
    model = kl.Kuramoto(jnp.asarray(omega, jnp.float32), kl.MeanField(2.0))
    y0 = jnp.asarray(th0, jnp.float32)
    r = Result("G", f"G1 kuralab mean-field N={N:.0e} rk4", "kuralab", osc_steps=N * steps)
    ctx.timed(
        r,
        lambda i: kl.simulate(model, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final,
        phase_check(ref, TOL),
    )
    bw = ctx.roof.get("bandwidth_gbs")
    if r.osc_steps_per_s and bw:
        eff = r.osc_steps_per_s * BYTES_PER_OSC_STEP / 1e9
        r.extra.update(effective_gbs=eff, bandwidth_fraction=eff / bw)
        r.note = f"{eff:.3g} GB/s at 36 B/osc-step = {100 * eff / bw:.2g}% of stream {bw:.3g} GB/s"
    rows.append(r)

    B, n = ctx.size("G", "ensemble"), 256
    steps2 = ctx.size("G", "ensemble_steps")
    ctx.log(f"  G2 ensemble of {B} networks, N={n}")
    om = rng.normal(0, 1, (B, n))
    th = rng.uniform(-math.pi, math.pi, (B, n))
    Ks = np.linspace(0.0, 4.0, B)
    sub = 32
    ref2 = rk4(meanfield_rhs(om[:sub], Ks[:sub, None]), th[:sub].copy(), dt, steps2)

    @jax.jit
    def ensemble(om, th, Ks):
        return jax.vmap(
            lambda o, y, K: kl.simulate(
                kl.Kuramoto(o, kl.MeanField(K)), y, t1=steps2 * dt, dt=dt, saveat=kl.SaveAt(final=True)
            ).final
        )(om, th, Ks)

    args = (jnp.asarray(om, jnp.float32), jnp.asarray(th, jnp.float32), jnp.asarray(Ks, jnp.float32))
    check = phase_check(ref2, TOL)
    r = Result("G", f"G2 kuralab ensemble {B} x N={n} mean-field", "kuralab", osc_steps=B * n * steps2)
    ctx.timed(r, lambda i: ensemble(*args), lambda out: check(np.asarray(out)[:sub]))
    rows.append(r)
    return rows
