"""Sweep throughput, measured in one run: `kl.sweep` independent vs adiabatic, and a
study run in-process vs on a local Dask cluster of 2 workers.

    python benchmarks/sweep_throughput.py [--repeats 3] [--out bench-results/sweep.md]

Workload: mean-field Kuramoto, N = 500 Lorentzian oscillators (gamma = 0.5), 32 values
of K in [0.5, 3] x 4 seeds, RK4 with dt = 0.05 to t1 = 50 (1000 steps per simulation),
R saved every 20 steps.

- `kl.sweep(mode="independent")`: 128 simulations, vmapped in chunks;
- `kl.sweep(mode="adiabatic")`: the same 32 K values as a ramp up and down per seed
  (256 simulations of the same length, sequential in K, vmapped over seeds);
- the same grid as a study spec (`kuralab.study.run_study`) in-process and with
  `workers=2` (the Dask LocalCluster is started inside the timed region, as
  `kuralab run --workers 2` does; its workers share the persistent compile cache,
  which is warmed by an untimed first run).

Each configuration is timed `--repeats` times after a warm-up (compilation excluded for
`kl.sweep`; the study timings include process-level overheads but hit the compile
cache); reported: median simulations per second and oscillator-steps per second. Every
run's R at the largest K is checked against the Lorentzian theory sqrt(1 - 2 gamma/K)
before its time counts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import kuralab as kl
from kuralab.study import enable_compile_cache, parse_spec, run_study

N, GAMMA, T1, DT = 500, 0.5, 50.0, 0.05
KS = np.linspace(0.5, 3.0, 32)
SEEDS = 4
STEPS = int(round(T1 / DT))

SPEC = f"""
[study]
name = "sweep_throughput"
[model]
kind = "kuramoto"
n = {N}
[model.frequencies]
distribution = "lorentzian"
scale = {GAMMA}
[model.coupling]
kind = "mean_field"
[sweep]
K = {{ start = {KS[0]}, stop = {KS[-1]}, num = {len(KS)} }}
seeds = {SEEDS}
[solve]
t1 = {T1}
dt = {DT}
save_every = 20
[output]
chunk_size = 32
"""


def make(K, seed):
    key_w, key_t = jax.random.split(jax.random.key(seed))
    omega = kl.sample_frequencies(key_w, N, "lorentzian", scale=GAMMA)
    return kl.Kuramoto(omega, kl.MeanField(K)), kl.random_phases(key_t, N)


def check(R_top: float, what: str) -> None:
    theory = float(np.sqrt(1 - 2 * GAMMA / KS[-1]))
    if abs(R_top - theory) > 0.05:
        sys.exit(f"{what}: R(K = {KS[-1]}) = {R_top:.4f}, theory {theory:.4f}: wrong")


def time_it(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="bench-results/sweep.md")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="kuralab-sweep-bench-"))
    os.environ.setdefault("KURALAB_CACHE_DIR", str(tmp / "cache"))
    enable_compile_cache()
    axes = {"K": KS, "seed": range(SEEDS)}
    rows = []

    def independent():
        ds = kl.sweep(make, axes, t1=T1, dt=DT, observe=("R",), save_every=20)
        check(float(ds.R.sel(K=KS[-1]).mean()), "sweep independent")

    def adiabatic():
        ds = kl.sweep(
            make, axes, t1=T1, dt=DT, observe=("R",), save_every=20, mode="adiabatic"
        )
        check(float(ds.R.sel(K=KS[-1]).mean()), "sweep adiabatic")

    spec = parse_spec(SPEC)

    def study(workers):
        def run():
            out = tmp / f"study-{workers}.nc"
            run_study(spec, out, workers=workers, progress=False)
            ds = kl.io.load(out)
            check(float(ds.R.sel(K=KS[-1]).mean()), f"study workers={workers}")
            out.unlink()

        return run

    cases = [
        ("kl.sweep independent", independent, len(KS) * SEEDS),
        ("kl.sweep adiabatic (up + down)", adiabatic, 2 * len(KS) * SEEDS),
        ("study in-process", study(None), len(KS) * SEEDS),
        ("study, Dask LocalCluster 2 workers", study(2), len(KS) * SEEDS),
    ]
    for name, fn, sims in cases:
        fn()  # warm-up: compile (and fill the persistent cache for the workers)
        times = time_it(fn, args.repeats)
        med = statistics.median(times)
        rows.append((name, sims, med, sims / med, sims * N * STEPS / med))
        print(f"{name}: median {med:.2f} s over {args.repeats} runs", flush=True)
    base = rows[0][3]
    lines = [
        f"Workload: N = {N}, {len(KS)} K x {SEEDS} seeds, RK4 dt = {DT}, t1 = {T1} "
        f"({STEPS} steps); {os.cpu_count()} CPU cores; medians of {args.repeats}",
        "",
        "| configuration | simulations | median s | sims/s | osc-steps/s | vs independent |",
        "|---|---|---|---|---|---|",
    ]
    for name, sims, med, rate, osc in rows:
        lines.append(
            f"| {name} | {sims} | {med:.2f} | {rate:.1f} | {osc:.3g} | {rate / base:.2f}x |"
        )
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
