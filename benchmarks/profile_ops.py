"""Per-operation costs behind the benchmark ratios (profile evidence for issue 6).

    python benchmarks/profile_ops.py [--only sincos,dense,em,delay,hlo,w2peak]

Not part of `make bench`; prints a table of microbenchmarks, each timed inside one jitted
`fori_loop` with a carry-dependent operand (median of 5), and op counts from the compiled
HLO of kuralab's and diffrax's solves:

- `sincos`: XLA `sin`+`cos` vs kuralab's vectorisable polynomial sincos
  (`kuralab/_fastmath.py`; max error printed) vs NumPy, per element.
- `dense`: N=1000 products: one matvec, two matvecs (kuralab's and diffrax's RHS),
  `K @ stack([s, c], 1)`, `stack([s, c], 0) @ K.T`; and the whole RK4 step of kuralab vs a
  hand-written RK4 step.
- `em`: Euler--Maruyama step, N=1000: kuralab vs diffrax direct.
- `delay`: kuralab delayed RK4 step, N=100.
- `hlo`: op counts (sine, cosine, dot, rng/threefry, custom-call, while) per compiled solve.
- `w2peak`: W2's GFLOP/s against the elementwise FMA peak, alternating pairs (issue 18).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _diffrax_direct as dd  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import kuralab as kl  # noqa: E402
from kuralab._fastmath import sincos  # noqa: E402

ROWS: list[tuple[str, str, str]] = []


def report(section, name, value):
    ROWS.append((section, name, value))
    print(f"{section:8s} {name:60s} {value}", flush=True)


def loop_time(step, x0, consts, iters: int, repeats: int = 5) -> float:
    """Seconds per iteration of x <- step(x, *consts) in a jitted fori_loop."""

    @jax.jit
    def loop(x, consts):
        return jax.lax.fori_loop(0, iters, lambda i, x: step(x, *consts), x)

    jax.block_until_ready(loop(x0, consts))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(loop(x0, consts))
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) / iters


def call_time(fn, repeats: int = 5) -> float:
    jax.block_until_ready(fn())
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# kuralab's vectorisable float32 sincos (kuralab/_fastmath.py), against XLA's sin/cos.
poly_sincos = sincos


def sec_sincos():
    for n in (1000, 100_000):
        x0 = jnp.asarray(np.random.default_rng(0).uniform(-3, 3, n), jnp.float32)
        iters = max(20, 2_000_000 // n)
        t_xla = loop_time(lambda x: x + 1e-3 * (jnp.sin(x) + jnp.cos(x)), x0, (), iters)
        t_poly = loop_time(lambda x: x + 1e-3 * sum(poly_sincos(x)), x0, (), iters)
        t_add = loop_time(lambda x: x + 1e-3 * (x * x), x0, (), iters)
        report("sincos", f"XLA sin+cos, N={n} (ns per element pair)", f"{(t_xla - t_add) / n * 1e9:.2f}")
        report("sincos", f"polynomial sincos, N={n} (ns per element pair)", f"{(t_poly - t_add) / n * 1e9:.2f}")
    xs = np.random.default_rng(1).uniform(-200, 200, 1_000_000).astype(np.float32)
    s, c = jax.jit(poly_sincos)(jnp.asarray(xs))
    x64 = xs.astype(np.float64)
    err = max(np.max(np.abs(np.asarray(s, np.float64) - np.sin(x64))), np.max(np.abs(np.asarray(c, np.float64) - np.cos(x64))))
    sx, cx = jax.jit(lambda x: (jnp.sin(x), jnp.cos(x)))(jnp.asarray(xs))
    errx = max(np.max(np.abs(np.asarray(sx, np.float64) - np.sin(x64))), np.max(np.abs(np.asarray(cx, np.float64) - np.cos(x64))))
    report("sincos", "polynomial max abs error on [-200, 200] (XLA's in brackets)", f"{err:.1e} ({errx:.1e})")
    x = np.random.default_rng(0).uniform(-3, 3, 100_000).astype(np.float32)
    t0 = time.perf_counter()
    for _ in range(50):
        np.sin(x), np.cos(x)
    report("sincos", "NumPy f32 sin+cos, N=100000 (ns per element pair)", f"{(time.perf_counter() - t0) / 50 / 1e5 * 1e9:.2f}")


def sec_dense():
    N = 1000
    rng = np.random.default_rng(0)
    K = jnp.asarray((2.0 / N) * rng.uniform(0, 2, (N, N)), jnp.float32)
    KT = K.T
    om = jnp.asarray(rng.normal(0, 1, N), jnp.float32)
    x0 = jnp.asarray(rng.uniform(-3, 3, N), jnp.float32)
    iters = 2000
    hp = jax.lax.Precision.HIGHEST
    variants = {
        "one matvec K@x": lambda x, K: 0.5 * (K @ x) + x * 0.5,
        "two matvecs K@s, K@c (x, no sincos)": lambda x, K: 0.5 * (K @ x) + 0.5 * (K @ (x * 0.5)),
        "K @ stack([s,c],1) (N,2) product": lambda x, K: (K @ jnp.stack([x, 0.5 * x], 1)).sum(1) * 0.25,
        "stack([s,c],0) @ K.T (2,N)x(N,N) product": lambda x, K: (jnp.stack([x, 0.5 * x], 0) @ KT).sum(0) * 0.25,
        "kuralab DenseCoupling.apply x2 (tensordot, HIGHEST)": lambda x, K: 0.5 * jnp.tensordot(K, x, 1, precision=hp)
        + 0.5 * jnp.tensordot(K, 0.5 * x, 1, precision=hp),
    }
    for name, f in variants.items():
        t = loop_time(f, x0, (K,), iters)
        report("dense", f"{name} (us)", f"{t * 1e6:.1f}")
    t = loop_time(lambda x: x + 1e-3 * (jnp.sin(x) + jnp.cos(x)), x0, (), iters)
    report("dense", "sin+cos of N=1000 (us)", f"{t * 1e6:.1f}")

    def rhs(y):
        s, c = jnp.sin(y), jnp.cos(y)
        return om + c * (K @ s) - s * (K @ c)

    def rk4_step(y):
        h = 0.01
        k1 = rhs(y)
        k2 = rhs(y + 0.5 * h * k1)
        k3 = rhs(y + 0.5 * h * k2)
        k4 = rhs(y + h * k3)
        return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    t_hand = loop_time(rk4_step, x0, (), 500)
    report("dense", "hand-written RK4 step, N=1000 (us)", f"{t_hand * 1e6:.1f}")
    model = kl.Kuramoto(om, kl.DenseCoupling(K))
    steps = 500
    t_kl = call_time(lambda: kl.simulate(model, x0, t1=steps * 0.01, dt=0.01, saveat=kl.SaveAt(final=True)).final) / steps
    report("dense", "kuralab simulate RK4 step, N=1000 (us)", f"{t_kl * 1e6:.1f}")
    solve = dd.rk4_solver("dense", steps, 0.01)
    t_dd = call_time(lambda: solve(om, K, x0)[0]) / steps
    report("dense", "diffrax direct RK4 step, N=1000 (us)", f"{t_dd * 1e6:.1f}")
    flops = 8 * 2.0 * N * N
    report("dense", "kuralab step as GFLOP/s (8 matvecs)", f"{flops / t_kl / 1e9:.1f}")


def sec_em():
    N, steps, dt = 1000, 2000, 0.01
    rng = np.random.default_rng(0)
    om = jnp.asarray(rng.normal(0, 1, N), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-3, 3, N), jnp.float32)
    key = jax.random.key(0)
    model = kl.Kuramoto(om, kl.MeanField(2.0), noise=kl.Noise(0.1))

    def kl_run(brownian="increments"):
        return kl.simulate(model, y0, t1=steps * dt, dt=dt, solver="euler", key=key, brownian=brownian,
                           saveat=kl.SaveAt(final=True)).final

    t = call_time(kl_run) / steps
    report("em", "kuralab EM step, increments, N=1000 (us)", f"{t * 1e6:.1f}")
    solve = dd.euler_maruyama(steps, dt)
    t2 = call_time(lambda: solve(om, jnp.float32(2.0), jnp.float32(math.sqrt(0.2)), y0, key)[0]) / steps
    report("em", "diffrax direct EM step (UnsafeBrownianPath), N=1000 (us)", f"{t2 * 1e6:.1f}")
    t_rng = loop_time(lambda x, k: x + jax.random.normal(jax.random.fold_in(k, x[0].astype(jnp.int32)), x.shape), y0, (key,), 2000)
    report("em", "threefry normal draw of N=1000 (us)", f"{t_rng * 1e6:.1f}")
    mdet = kl.Kuramoto(om, kl.MeanField(2.0))
    t4 = call_time(lambda: kl.simulate(mdet, y0, t1=steps * dt, dt=dt, solver="euler", saveat=kl.SaveAt(final=True)).final) / steps
    report("em", "kuralab Euler step without noise, N=1000 (us)", f"{t4 * 1e6:.1f}")


def sec_delay():
    N, steps, dt = 100, 2000, 0.01
    rng = np.random.default_rng(0)
    om = jnp.asarray(rng.normal(0, 1, N), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-3, 3, N), jnp.float32)
    model = kl.Kuramoto(om, kl.MeanField(2.0), delays=kl.Delays(1.0))
    t = call_time(lambda: kl.simulate(model, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final) / steps
    report("delay", "kuralab delayed RK4 step, N=100 (us)", f"{t * 1e6:.1f}")
    mplain = kl.Kuramoto(om, kl.MeanField(2.0))
    t2 = call_time(lambda: kl.simulate(mplain, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final) / steps
    report("delay", "kuralab RK4 step without delays, N=100 (us)", f"{t2 * 1e6:.1f}")


def _hlo_counts(fn, *args) -> dict:
    text = jax.jit(fn).lower(*args).compile().as_text()
    pats = {
        "sine": r"\bsine\(", "cosine": r"\bcosine\(", "dot": r"\bdot\(", "while": r"\bwhile\(",
        "custom-call": r"custom-call\(", "fusion": r"\bfusion\(", "rng-bit-generator": r"rng-bit-generator",
        "threefry (shift-left ops)": r"shift-left\(",
    }
    return {k: len(re.findall(p, text)) for k, p in pats.items()} | {"hlo_chars": len(text)}


def sec_hlo():
    N, steps, dt = 1000, 100, 0.01
    rng = np.random.default_rng(0)
    om = jnp.asarray(rng.normal(0, 1, N), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-3, 3, N), jnp.float32)
    key = jax.random.key(0)

    def kl_em(om, y0, key):
        m = kl.Kuramoto(om, kl.MeanField(2.0), noise=kl.Noise(0.1))
        return kl.simulate(m, y0, t1=steps * dt, dt=dt, solver="euler", key=key, brownian="increments",
                           saveat=kl.SaveAt(final=True), throw=False).final

    solve = dd.euler_maruyama(steps, dt)
    report("hlo", "kuralab EM solve", str(_hlo_counts(kl_em, om, y0, key)))
    report("hlo", "diffrax direct EM solve",
           str(_hlo_counts(lambda om, y0, key: solve(om, 2.0, 0.447, y0, key)[0], om, y0, key)))

    def kl_rk4(om, y0):
        m = kl.Kuramoto(om, kl.MeanField(2.0))
        return kl.simulate(m, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True), throw=False).final

    model = kl.Kuramoto(om, kl.MeanField(2.0))
    report("hlo", "kuralab RK4 mean-field solve, model passed as an argument (as users do)",
           str(_hlo_counts(lambda m, y0: kl.simulate(m, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True),
                                                     throw=False).final, model, y0)))
    s2 = dd.rk4_solver("meanfield", steps, dt)
    report("hlo", "kuralab RK4 mean-field solve", str(_hlo_counts(kl_rk4, om, y0)))
    report("hlo", "diffrax direct RK4 mean-field solve", str(_hlo_counts(lambda om, y0: s2(om, 2.0, y0)[0], om, y0)))


def sec_meanfield():
    """W2's step at N=1e5: where the time goes, and what a polynomial sincos gives."""
    N, dt = 100_000, 0.01
    rng = np.random.default_rng(0)
    om = jnp.asarray(rng.normal(0, 1, N), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-3, 3, N), jnp.float32)

    def make_step(sincos):
        def rhs(y):
            s, c = sincos(y)
            return om + 2.0 * (c * jnp.mean(s) - s * jnp.mean(c))

        def step(y):
            k1 = rhs(y)
            k2 = rhs(y + 0.5 * dt * k1)
            k3 = rhs(y + 0.5 * dt * k2)
            k4 = rhs(y + dt * k3)
            return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

        return step

    t_x = loop_time(make_step(lambda y: (jnp.sin(y), jnp.cos(y))), y0, (), 50)
    t_p = loop_time(make_step(poly_sincos), y0, (), 50)
    report("meanf", "hand-written RK4 step N=1e5, XLA sin/cos (ns per osc-step)", f"{t_x / N * 1e9:.1f}")
    report("meanf", "hand-written RK4 step N=1e5, polynomial sincos (ns per osc-step)", f"{t_p / N * 1e9:.1f}")
    model = kl.Kuramoto(om, kl.MeanField(2.0))
    steps = 100
    t_k = call_time(lambda: kl.simulate(model, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final) / steps
    report("meanf", "kuralab simulate RK4 step N=1e5 (ns per osc-step)", f"{t_k / N * 1e9:.1f}")
    x = np.asarray(y0)
    t0 = time.perf_counter()
    for _ in range(10):
        np.sin(x), np.cos(x)
    t_np = (time.perf_counter() - t0) / 10
    report("meanf", "NumPy f32 4 x (sin+cos) of N=1e5 (ns per osc-step)", f"{4 * t_np / N * 1e9:.1f}")


def sec_w2peak(pairs: int = 5):
    """W2's rate (kuralab simulate, N = 1e5, 1000 RK4 steps, 136 flops per osc-step)
    against the elementwise FMA peak (`roofline.fma_peak`), timed in alternating
    pairs; the median per-pair fraction. Says whether the native kernel ran."""
    import roofline
    from w2_meanfield import FLOPS_PER_OSC_STEP

    N, steps, dt = 100_000, 1000, 0.01
    rng = np.random.default_rng(3)
    om = jnp.asarray(rng.normal(0, 1, N), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-math.pi, math.pi, N), jnp.float32)
    model = kl.Kuramoto(om, kl.MeanField(2.0))

    def w2():
        return kl.simulate(model, y0, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True)).final

    native = "kuralab_meanfield_rk4" in jax.jit(lambda m, y: kl.simulate(
        m, y, t1=steps * dt, dt=dt, saveat=kl.SaveAt(final=True), throw=False).final
    ).lower(model, y0).as_text()
    report("w2peak", "native mean-field RK4 kernel in the compiled solve", str(native))
    rates, peaks = [], []
    for _ in range(pairs):
        t = call_time(w2, repeats=1)
        rates.append(FLOPS_PER_OSC_STEP * N * steps / t / 1e9)
        peaks.append(roofline.fma_peak(1 << 14, jnp.float32, 1)[0])
    fr = sorted(r / p for r, p in zip(rates, peaks, strict=True))
    report("w2peak", "W2 GFLOP/s (median of pairs)", f"{statistics.median(rates):.1f}")
    report("w2peak", "elementwise FMA peak GFLOP/s (median)", f"{statistics.median(peaks):.1f}")
    report("w2peak", "fraction of the peak (median per pair; min-max)",
           f"{statistics.median(fr):.3f} ({fr[0]:.3f}-{fr[-1]:.3f})")


SECTIONS = {"w2peak": sec_w2peak, "meanfield": sec_meanfield, "sincos": sec_sincos, "dense": sec_dense, "em": sec_em, "delay": sec_delay, "hlo": sec_hlo}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(SECTIONS))
    a = p.parse_args(argv)
    print(f"devices {jax.devices()}")
    for name in a.only.split(","):
        SECTIONS[name.strip()]()


if __name__ == "__main__":
    main()
