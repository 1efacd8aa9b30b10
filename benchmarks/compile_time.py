"""C: compile time of `kl.simulate` -- first call in a fresh process, without and with
JAX's persistent compilation cache.

For each case a fresh temporary cache directory is filled by one "cold" child process;
then `repeats` "warm" child processes (new Python processes, same cache) time their first
call. Reported per child: first-call wall time minus the steady-state call time (the
compile overhead), split by JAX's monitoring events into tracing (jaxpr), lowering
(MLIR), backend compile / cache retrieval, and the rest (Python: kuralab's checks,
equinox/diffrax wrappers, cache-key hashing). Also the import time of kuralab and what
kuralab's export cache did (kuralab/_export_cache.py: on, because the child configures
`jax_compilation_cache_dir`; a warm eager call loads the exported solve instead of
tracing and lowering it).

Run as a child: `python benchmarks/compile_time.py --child CASE [--cache DIR]`
(prints one JSON line).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

CASES = ("meanfield", "dense", "noise", "delay", "sweep", "sweep_nothrow")

EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace_s",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
    "/jax/core/compile/backend_compile_duration": "backend_s",
    "/jax/compilation_cache/cache_retrieval_time_sec": "cache_retrieval_s",
}


def _child(case: str, cache: str | None, profile: str | None) -> dict:
    t_start = time.perf_counter()
    import jax

    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    events: dict = defaultdict(float)
    counts: dict = defaultdict(int)

    def on_duration(name, secs, **kw):
        if name in EVENTS:
            events[EVENTS[name]] += secs

    def on_event(name, **kw):
        counts[name.rsplit("/", 1)[-1]] += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    import jax.numpy as jnp
    import numpy as np

    import kuralab as kl

    t_import = time.perf_counter() - t_start
    rng = np.random.default_rng(0)
    N, dt, t1 = 1000, 0.01, 1.0
    omega = jnp.asarray(rng.normal(0, 1, N), jnp.float32)
    y0 = jnp.asarray(rng.uniform(-3, 3, N), jnp.float32)
    final = kl.SaveAt(final=True)
    key = jax.random.key(0)
    if case == "meanfield":
        model = kl.Kuramoto(omega, kl.MeanField(2.0))
        fn = lambda: kl.simulate(model, y0, t1=t1, dt=dt, saveat=final).final  # noqa: E731
    elif case == "dense":
        K = jnp.asarray(rng.uniform(0, 2 / N, (N, N)), jnp.float32)
        model = kl.Kuramoto(omega, kl.DenseCoupling(K))
        fn = lambda: kl.simulate(model, y0, t1=t1, dt=dt, saveat=final).final  # noqa: E731
    elif case == "noise":
        model = kl.Kuramoto(omega, kl.MeanField(2.0), noise=kl.Noise(0.1))
        fn = lambda: kl.simulate(  # noqa: E731
            model, y0, t1=t1, dt=dt, solver="euler", key=key, brownian="increments", saveat=final
        ).final
    elif case == "delay":
        model = kl.Kuramoto(omega, kl.MeanField(2.0), delays=kl.Delays(0.5))
        fn = lambda: kl.simulate(model, y0, t1=t1, dt=dt, saveat=final).final  # noqa: E731
    elif case in ("sweep", "sweep_nothrow"):
        # throw=False: no equinox error callback in the executable (evidence for issue 18)
        throw = case == "sweep"
        Ks = jnp.linspace(0, 4, 16)
        sweep = jax.jit(
            lambda Ks: jax.vmap(
                lambda K: kl.simulate(
                    kl.Kuramoto(omega, kl.MeanField(K)), y0, t1=t1, dt=dt, saveat=final, throw=throw
                ).final
            )(Ks)
        )
        fn = lambda: sweep(Ks)  # noqa: E731
    else:
        raise SystemExit(f"unknown case {case!r}; expected one of {CASES}")
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    events.clear()
    counts.clear()
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)
    split = dict(events)
    hits = dict(counts)
    from kuralab import _export_cache

    export_cache = dict(_export_cache.counts)  # export / load / skip of the solve
    steady = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        steady.append(time.perf_counter() - t0)
    run = statistics.median(steady)
    return dict(
        case=case,
        cached=bool(cache),
        import_s=t_import,
        first_s=first,
        run_s=run,
        compile_overhead_s=first - run,
        cache_hits=hits.get("cache_hits", 0),
        cache_misses=hits.get("cache_misses", 0),
        event_counts=hits,
        export_cache=export_cache,
        devices=[str(d) for d in jax.devices()],
        **split,
    )


def child_run(case: str, cache: str | None, profile: str | None = None, env: dict | None = None) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "compile_time.py"), "--child", case]
    if cache:
        cmd += ["--cache", cache]
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"compile child {case} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_compile(ctx):
    from _common import Result

    cases = ctx.size("C", "cases")
    rows = []
    variants = [(case, case, None) for case in cases]
    # Evidence row: JAX's persistent cache alone (kuralab's export cache off), i.e. a
    # warm process still traces and lowers the solve before its cache hit.
    if ctx.size("C", "evidence"):
        variants.append(
            ("meanfield", "meanfield KURALAB_EXPORT_CACHE=0", {"KURALAB_EXPORT_CACHE": "0"})
        )
    for case, label, env in variants:
        cache = tempfile.mkdtemp(prefix="kuralab-jax-cache-")
        try:
            ctx.log(f"  {label}: cold process (fills the cache)")
            cold = child_run(case, cache, env=env)
            r = Result("C", f"{label}: new process, empty cache", "kuralab")
            r.times = [cold["compile_overhead_s"]]
            r.median_s = cold["compile_overhead_s"]
            r.first_s = cold["first_s"]
            r.extra = cold
            r.note = _split_text(cold)
            rows.append(r)
            warm = []
            for _ in range(ctx.repeats):
                ctx.log(f"  {label}: warm process (persistent cache)")
                warm.append(child_run(case, cache, env=env))
            r = Result("C", f"{label}: new process, persistent cache", "kuralab")
            if env:
                r.role = "evidence"
            r.times = [w["compile_overhead_s"] for w in warm]
            r.median_s = statistics.median(r.times)
            r.first_s = statistics.median(w["first_s"] for w in warm)
            mid = sorted(warm, key=lambda w: w["compile_overhead_s"])[len(warm) // 2]
            r.extra = dict(runs=warm, median_run=mid)
            hits = min(w["cache_hits"] for w in warm)
            misses = max(w["cache_misses"] for w in warm)
            r.note = (
                _split_text(mid)
                + f"; cache hits {hits}, misses {misses}; import kuralab {mid['import_s']:.2f} s"
                + f"; export cache {mid.get('export_cache') or 'unused'}"
            )
            rows.append(r)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return rows


def _split_text(d: dict) -> str:
    parts = [f"{k[:-2]} {d.get(k, 0.0):.3f}" for k in ("trace_s", "lower_s", "backend_s", "cache_retrieval_s")]
    known = sum(d.get(k, 0.0) for k in ("trace_s", "lower_s", "backend_s"))
    other = d["compile_overhead_s"] - known
    return "split s: " + ", ".join(parts) + f", other {other:.3f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--child", required=True, choices=CASES)
    p.add_argument("--cache", default=None)
    p.add_argument("--profile", default=None, help="write a cProfile of the first call here")
    a = p.parse_args()
    print(json.dumps(_child(a.child, a.cache, a.profile)))


if __name__ == "__main__":
    main()
