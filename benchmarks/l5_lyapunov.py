"""L5: the full Lyapunov spectrum of a dense Kuramoto network (issue 16).

N oscillators (full: N = 100), omega ~ N(0, 0.5^2), dense coupling K_ij = (K / N) A_ij
with A_ij ~ U(0, 2) (row i receives), K = 4 (locked), RK4 dt = 0.01, `steps` steps
(full: 10^4, T = 100), QR every step, all N exponents, from the same initial phases; the
first fifth of the run is a transient (integrated, renormalised, not counted).

Implementations:

- kuralab: `kl.lyapunov_exponents` (tangent map by jax.linearize of the RK4 step,
  vmapped over the N tangent vectors, QR), float32, one jitted call;
- kuralab float64: the same in float64 (the reference the others are checked against);
- jitcode: `jitcode_lyap` (symbolic Jacobian -> C -> gcc; scipy's adaptive dopri5 at
  atol = rtol = 1e-6), `n_lyap = N`, started from kuralab's initial tangent vectors,
  re-orthonormalised at every 0.01 time unit as kuralab (its local exponents averaged
  over the same grid);
- ensemble: kuralab, 64 coupling values K in one vmapped call (`ensemble_n`
  oscillators each), timed per spectrum.

Checks: every spectrum (sorted) agrees with kuralab float64's to 1e-2 (max absolute
difference; the estimates over T = 100 differ in their transients); a wrong peer is
flagged, not fatal.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import peers
from _common import Check, Result

import kuralab as kl
from kuralab._lyapunov import _initial_basis

K_VALUE = 4.0
TOL = 1e-2


def _transient(steps: int) -> int:
    """Steps not counted (a fifth of the run): both codes start from their own tangent
    vectors, so the estimates agree only once the vectors have aligned."""
    return steps // 5


def problem(N: int, seed: int = 16):
    rng = np.random.default_rng(seed)
    omega = rng.normal(0, 0.5, N)
    A = rng.uniform(0, 2, (N, N))
    np.fill_diagonal(A, 0.0)
    return omega, A, rng.uniform(-math.pi, math.pi, N)


def _spectrum_fn(omega, A, th0, steps, dt, dtype):
    om = jnp.asarray(omega, dtype)
    Am = jnp.asarray(A, dtype)
    y0 = jnp.asarray(th0, dtype)

    @jax.jit
    def run(K):
        model = kl.Kuramoto(om, kl.DenseCoupling(K / om.shape[0] * Am))
        return kl.lyapunov_exponents(model, y0, t1=steps * dt, dt=dt, records=1,
                                     transient=_transient(steps) * dt)["exponents"]

    return run


def spectrum_check(ref):
    ref = np.sort(ref)[::-1]

    def check(out) -> Check:
        lam = np.sort(np.asarray(out, np.float64).reshape(-1, ref.size), axis=1)[:, ::-1]
        err = float(np.max(np.abs(lam[0] - ref)))
        return Check("max |lambda - kuralab f64|", err, TOL, err <= TOL)

    return check


def jitcode_lyap_spectrum(omega, A, K, th0, steps, dt):
    jc = peers._need("jitcode")
    se = peers._need("symengine")
    N = len(omega)
    t0 = time.perf_counter()
    with peers._quiet():
        S = [se.Symbol(f"S{i}") for i in range(N)]
        C = [se.Symbol(f"C{i}") for i in range(N)]
        W = K / N * A
        helpers = []
        for i in range(N):
            helpers.append((S[i], se.Add(*[float(W[i, j]) * se.sin(jc.y(j))
                                           for j in range(N) if W[i, j]])))
            helpers.append((C[i], se.Add(*[float(W[i, j]) * se.cos(jc.y(j))
                                           for j in range(N) if W[i, j]])))
        f = [float(omega[i]) + se.cos(jc.y(i)) * S[i] - se.sin(jc.y(i)) * C[i]
             for i in range(N)]
        ode = jc.jitcode_lyap(f, helpers=helpers, n_lyap=N, simplify=False,
                              verbose=False)
        ode.generate_f_C(simplify=False, do_cse=False, chunk_size=100)
        ode.compile_C(verbose=False)
        ode.set_integrator("dopri5", atol=1e-6, rtol=1e-6)
    compile_s = time.perf_counter() - t0
    times = dt * np.arange(1, steps + 1)
    n_tr = _transient(steps)

    # the same initial tangent vectors as kuralab (jitcode_lyap would draw its own), so
    # the two finite-time estimates are comparable
    with jax.enable_x64(True):
        q0 = _initial_basis(kl.Kuramoto(jnp.asarray(omega), kl.MeanField(0.0)),
                            jnp.asarray(th0, jnp.float64), None, N)[0]
    q0 = np.asarray(q0,
                    np.float64)
    full0 = np.concatenate([np.asarray(th0, np.float64), q0.reshape(-1)])

    def run(i):
        with peers._quiet():
            jc.jitcode.set_initial_value(ode, full0, 0.0)
            acc = np.zeros(N)
            for m, t in enumerate(times):
                local = ode.integrate(t)[1]
                if m >= n_tr:
                    acc += local
        return acc / (steps - n_tr)

    return dict(run=run, compile_s=compile_s, repeats=1,
                note=f"jitcode {peers.version('jitcode')}: jitcode_lyap n_lyap={N}, "
                     "dopri5 atol=rtol=1e-6, QR every dt")


def run_l5(ctx) -> list[Result]:
    N, steps, dt = ctx.size("L5", "N"), ctx.size("L5", "steps"), ctx.size("L5", "dt")
    nE, nK = ctx.size("L5", "ensemble_n"), ctx.size("L5", "ensemble_K")
    omega, A, th0 = problem(N)
    meta = dict(osc_steps=N * N * steps)  # N tangent vectors of N components
    rows = []

    ctx.log("  kuralab float64 (reference)")
    with jax.enable_x64(True):
        f64 = _spectrum_fn(omega, A, th0, steps, dt, jnp.float64)
        ref_row = Result("L5", "kuralab lyapunov_exponents float64 (reference)",
                         "reference", "float64", **meta)
        holder = {}

        def ref_run(i):
            out = np.asarray(jax.block_until_ready(f64(K_VALUE)))
            holder["ref"] = out
            return out

        ctx.timed(ref_row, ref_run, None, repeats=1)
    rows.append(ref_row)
    ref = holder["ref"]
    check = spectrum_check(ref)
    ctx.log(f"    lambda_max {ref.max():.4f}, sum {ref.sum():.3f}")

    ctx.log("  kuralab float32")
    f32 = _spectrum_fn(omega, A, th0, steps, dt, jnp.float32)
    r = Result("L5", "kuralab lyapunov_exponents (RK4, QR every step)", "kuralab", **meta)
    ctx.timed(r, lambda i: np.asarray(jax.block_until_ready(f32(K_VALUE))), check,
              compile_events=True)
    rows.append(r)

    r = Result("L5", "jitcode jitcode_lyap (dopri5 1e-6, QR every dt)", "peer",
               "float64", **meta)
    # jitcode's symbolic tangent system has N (N + 1) equations with O(N^3) terms: its
    # C build is minutes at N = 100 (a slow peer there); at quick sizes it runs always.
    ctx.peer(r, lambda: jitcode_lyap_spectrum(omega, A, K_VALUE, th0, steps, dt), check,
             slow=N > 20)
    rows.append(r)

    ctx.log(f"  kuralab ensemble: {nK} couplings in one call, N = {nE}")
    omE, AE, thE = problem(nE)
    Ks = jnp.linspace(0.5 * K_VALUE, 1.5 * K_VALUE, nK)
    fE = _spectrum_fn(omE, AE, thE, steps, dt, jnp.float32)
    batched = jax.jit(jax.vmap(fE))
    with jax.enable_x64(True):
        refE = np.asarray(_spectrum_fn(omE, AE, thE, steps, dt, jnp.float64)(
            float(Ks[0])))
    r = Result("L5", f"kuralab ensemble: {nK} K values, vmap (N={nE})", "kuralab",
               osc_steps=nK * nE * nE * steps)
    ctx.timed(r, lambda i: np.asarray(jax.block_until_ready(batched(Ks))),
              spectrum_check(refE))
    rows.append(r)
    r1 = Result("L5", f"kuralab ensemble: the same {nK} K values, one call each",
                "baseline", osc_steps=nK * nE * nE * steps)
    ctx.timed(r1, lambda i: np.stack([np.asarray(jax.block_until_ready(fE(K)))
                                      for K in Ks]), spectrum_check(refE), repeats=1)
    rows.append(r1)
    return rows


if __name__ == "__main__":  # a quick stand-alone run
    raise SystemExit("run through benchmarks/run.py --only L5")
