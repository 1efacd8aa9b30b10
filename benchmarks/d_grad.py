"""D: reverse mode through `kl.simulate` (issue 18 item 4).

`jax.value_and_grad` of a final-state loss `sum(sin(theta(T)))` with respect to the
coupling matrix: dense N=200, K_ij = (2/N) U(0, 2), dt=0.01, 500 RK4 steps, in float32
and float64 (float64 under `jax.enable_x64` for this workload only). Compared in the same
run with a hand-written `lax.scan` RK4 (two matvecs per stage, `jnp.sin`/`jnp.cos`,
differentiated by JAX) and, as evidence, kuralab with diffrax's
`RecursiveCheckpointAdjoint` (the default before issue 18). Check: the loss and the
gradient against the hand scan's float64 gradient (relative max difference; float32
budget: 500 steps x 6e-8 rounding, amplified by the flow's growth, ~1e-4 observed:
asserted at 1e-3; float64 at 1e-9).
"""

from __future__ import annotations

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
from _common import Check, Result

import kuralab as kl


def _problem(N: int):
    rng = np.random.default_rng(0)
    return (rng.normal(0, 1, N), rng.uniform(0, 2, (N, N)) * 2 / N,
            rng.uniform(-np.pi, np.pi, N))


def _fns(omega, y0, steps, dt):
    def loss_kl(K, adjoint):
        tr = kl.simulate(kl.Kuramoto(omega, kl.DenseCoupling(K)), y0, t1=steps * dt, dt=dt,
                         saveat=kl.SaveAt(final=True), adjoint=adjoint)
        return jnp.sum(jnp.sin(tr.final))

    def f(K, y):
        s, c = jnp.sin(y), jnp.cos(y)
        return omega + c * (K @ s) - s * (K @ c)

    def loss_scan(K):
        def step(y, _):
            k1 = f(K, y)
            k2 = f(K, y + dt / 2 * k1)
            k3 = f(K, y + dt / 2 * k2)
            k4 = f(K, y + dt * k3)
            return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None

        y, _ = jax.lax.scan(step, y0, None, length=steps)
        return jnp.sum(jnp.sin(y))

    vg = lambda fn: jax.jit(jax.value_and_grad(fn))  # noqa: E731
    return dict(
        default=vg(lambda K: loss_kl(K, None)),
        rca=vg(lambda K: loss_kl(K, dfx.RecursiveCheckpointAdjoint())),
        scan=vg(loss_scan),
    )


def _grad_check(ref, tol):
    g_ref = np.asarray(ref[1], np.float64)
    scale = float(np.max(np.abs(g_ref)))

    def check(out) -> Check:
        g = np.asarray(out[1], np.float64)
        err = float(np.max(np.abs(g - g_ref))) / scale
        return Check("max |dK| / max |g|", err, tol, bool(np.isfinite(err) and err <= tol))

    return check


def run_grad(ctx) -> list[Result]:
    N, steps, dt = ctx.size("D", "N"), ctx.size("D", "steps"), ctx.size("D", "dt")
    omega, K, y0 = _problem(N)
    meta = dict(osc_steps=N * steps)
    rows = []
    with jax.enable_x64(True):
        ref = _fns(*(jnp.asarray(a, jnp.float64) for a in (omega, y0)), steps, dt)["scan"](
            jnp.asarray(K, jnp.float64))
        ref = (float(ref[0]), np.asarray(ref[1]))
    for dtype, tol in (("float32", 1e-3), ("float64", 1e-9)):
        with jax.enable_x64(dtype == "float64"):
            fns = _fns(*(jnp.asarray(a, dtype) for a in (omega, y0)), steps, dt)
            Kd = jnp.asarray(K, dtype)
            for key, impl, role in (
                ("scan", "hand-written lax.scan RK4, JAX reverse mode", "baseline"),
                ("default", "kuralab simulate rk4 (default adjoint: kl.ScanAdjoint)", "kuralab"),
                ("rca", "kuralab, adjoint=diffrax.RecursiveCheckpointAdjoint()", "evidence"),
            ):
                ctx.log(f"  {dtype} {impl}")
                r = Result("D", f"{impl} [{dtype}]", role, dtype, **meta)
                ctx.timed(r, lambda i, fn=fns[key]: jax.block_until_ready(fn(Kd)),
                          _grad_check(ref, tol))
                rows.append(r)
    return rows
