"""The machine's measured JAX rates: the ceilings kuralab's dense workloads are held to.

Each rate is measured inside one jitted `fori_loop` whose operand depends on the carry
(`x <- K x + b`), so dispatch is excluded and XLA cannot hoist the product out of the
loop. The trip count is a traced argument (one compilation), calibrated so one call takes
about `target_s`. Rates are GFLOP/s with 2 flops per multiply-add; medians of `repeats`.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import Result


def _rate(step, x0, consts, flops_per_iter: float, repeats: int, target_s: float):
    @jax.jit
    def loop(n, x, consts):
        return jax.lax.fori_loop(0, n, lambda i, x: step(x, *consts), x)

    jax.block_until_ready(loop(2, x0, consts))  # compile
    n = 4
    while True:  # calibrate the trip count
        t0 = time.perf_counter()
        jax.block_until_ready(loop(n, x0, consts))
        dt = time.perf_counter() - t0
        if dt > 0.05 or n >= 1 << 24:
            break
        n *= 4
    n = max(2, int(n * target_s / max(dt, 1e-6)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(loop(n, x0, consts))
        times.append(time.perf_counter() - t0)
    if not np.all(np.isfinite(np.asarray(out))):
        raise RuntimeError("roofline loop produced non-finite values")
    med = statistics.median(times)
    return flops_per_iter * n / med / 1e9, times, n


def probe(n: int, dtype, width: int | None = None, target_s: float = 0.3):
    """A calibrated one-shot rate measurement: returns `fn() -> GFLOP/s` (one call of
    ~target_s), for interleaving with the workload being compared (load drifts)."""
    rng = np.random.default_rng(0)
    K = jnp.asarray(rng.uniform(0, 1, (n, n)) / n, dtype)
    shape = (n,) if width is None else (n, width)
    x0 = jnp.asarray(rng.uniform(-1, 1, shape), dtype)
    b = jnp.asarray(rng.uniform(-1, 1, shape), dtype)
    flops = 2.0 * n * n * (1 if width is None else width)

    @jax.jit
    def loop(m, x, K, b):
        return jax.lax.fori_loop(0, m, lambda i, x: K @ x + b, x)

    _, _, iters = _rate(lambda x, K, b: K @ x + b, x0, (K, b), flops, 1, target_s)
    jax.block_until_ready(loop(2, x0, K, b))

    def fn() -> float:
        t0 = time.perf_counter()
        jax.block_until_ready(loop(iters, x0, K, b))
        return flops * iters / (time.perf_counter() - t0) / 1e9

    return fn


def matvec(n: int, dtype, repeats: int, target_s: float = 0.3, width: int | None = None):
    """K (n, n) times x (n,) or (n, width); returns (GFLOP/s, times, iters)."""
    rng = np.random.default_rng(0)
    K = jnp.asarray(rng.uniform(0, 1, (n, n)) / n, dtype)  # spectral radius ~ 0.5
    shape = (n,) if width is None else (n, width)
    x0 = jnp.asarray(rng.uniform(-1, 1, shape), dtype)
    b = jnp.asarray(rng.uniform(-1, 1, shape), dtype)
    flops = 2.0 * n * n * (1 if width is None else width)
    return _rate(lambda x, K, b: K @ x + b, x0, (K, b), flops, repeats, target_s)


def bandwidth(n: int, dtype, repeats: int, target_s: float = 0.3):
    """Streaming `x <- a x + b` over n values: GB/s (read x, write x)."""
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.uniform(-1, 1, n), dtype)
    a = jnp.asarray(0.5, dtype)
    b = jnp.asarray(0.25, dtype)
    nbytes = 2.0 * n * jnp.dtype(dtype).itemsize
    gbs, times, iters = _rate(lambda x, a, b: a * x + b, x0, (a, b), nbytes, repeats, target_s)
    return gbs, times, iters


def fma_peak(n: int, dtype, repeats: int, chain: int = 32, target_s: float = 0.3):
    """The elementwise vector-FMA rate: `chain` dependent `x <- a x + b` per element on
    n values (n = 2^14 f32: 64 KB, cache-resident), one fusion per iteration; 2 flops per
    FMA. The ceiling for sin/cos-bound phase workloads (W2, W3), which are elementwise
    arithmetic on cache-resident state. Returns (GFLOP/s, times, iters)."""
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.uniform(-1, 1, n), dtype)
    a = jnp.asarray(0.999, dtype)
    b = jnp.asarray(1e-3, dtype)

    def step(x, a, b):
        for _ in range(chain):
            x = a * x + b
        return x

    return _rate(step, x0, (a, b), 2.0 * chain * n, repeats, target_s)


def run(ctx) -> list[Result]:
    """Roofline rows; `ctx.roof` keeps the numbers the ratios need."""
    gpu = ctx.backend != "cpu"
    n_mv = ctx.size("W1", "N")
    n_mm = 8192 if gpu else (1000 if ctx.quick else 2000)
    b_w1b = 2 * ctx.size("W1b", "B")
    rows = []
    specs = [
        ("matvec", f"JAX matvec N={n_mv} f32", dict(n=n_mv, dtype=jnp.float32)),
        (
            "matmul",
            f"JAX matmul {n_mm}^3 f32 (peak)",
            dict(n=n_mm, dtype=jnp.float32, width=n_mm),
        ),
        (
            "matmul_w1b",
            f"JAX (N,N)x(N,{b_w1b}) N={n_mv} f32 (W1b shape)",
            dict(n=n_mv, dtype=jnp.float32, width=b_w1b),
        ),
        ("matvec_n2", f"JAX (N,N)x(N,2) N={n_mv} f32", dict(n=n_mv, dtype=jnp.float32, width=2)),
    ]
    if jax.config.jax_enable_x64:
        specs.append(("matvec_f64", f"JAX matvec N={n_mv} f64", dict(n=n_mv, dtype=jnp.float64)))
    for key, name, kw in specs:
        r = Result("roofline", name, "roofline", dtype=jnp.dtype(kw["dtype"]).name)
        try:
            gflops, times, iters = matvec(repeats=max(ctx.repeats, 5), **kw)
        except Exception as e:  # pragma: no cover - report and go on
            r.skipped = f"failed: {e}"
            rows.append(r)
            continue
        r.times = times
        r.median_s = statistics.median(times)
        r.flops = gflops * 1e9 * r.median_s
        r.note = f"{iters} iterations per call"
        r.extra["gflops"] = gflops
        ctx.roof[key] = gflops
        rows.append(r)
        ctx.log(f"  {name}: {gflops:.1f} GFLOP/s")
    r = Result("roofline", "JAX elementwise FMA n=16384 f32 (vector peak)", "roofline")
    try:
        gflops, times, iters = fma_peak(1 << 14, jnp.float32, max(ctx.repeats, 5))
        r.times, r.median_s = times, statistics.median(times)
        r.flops = gflops * 1e9 * r.median_s
        r.extra["gflops"] = gflops
        r.note = f"{iters} iterations per call, 32 dependent FMAs per element"
        ctx.roof["fma"] = gflops
        ctx.log(f"  elementwise FMA peak: {gflops:.1f} GFLOP/s")
    except Exception as e:  # pragma: no cover - report and go on
        r.skipped = f"failed: {e}"
    rows.append(r)
    if gpu or "G" in ctx.only:
        n_bw = 1 << 27 if gpu else 1 << 24
        r = Result("roofline", f"JAX stream a*x+b n={n_bw} f32 (GB/s)", "roofline")
        gbs, times, iters = bandwidth(n_bw, jnp.float32, max(ctx.repeats, 5))
        r.times, r.median_s = times, statistics.median(times)
        r.extra["gbytes_per_s"] = gbs
        r.note = f"{gbs:.0f} GB/s"
        ctx.roof["bandwidth_gbs"] = gbs
        rows.append(r)
        ctx.log(f"  stream bandwidth: {gbs:.1f} GB/s")
    return rows
