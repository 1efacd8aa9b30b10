"""kuralab benchmark suite (issue 6): `make bench` = `python benchmarks/run.py`.

    python benchmarks/run.py [--quick] [--only W1,W2] [--repeats 3] [--out bench-results/NAME]
                             [--no-slow-peers]

Workloads (peers.md): R roofline (JAX matvec/matmul rates), W1 dense N=1000 RK4, W1b 64
initial conditions sharing one dense K, W2 mean-field N=1e5, W3 64-value K sweep, W4
Euler--Maruyama, W5 delays, W6 per-edge delays (sparse N=1e4), C compile time (fresh process, with and without the
persistent cache), S scaling in N per coupling kind, G device figures (default on GPU).

Every timed run is checked against a float64 reference (or theory, for noise) before its
time counts; a wrong answer from kuralab or one of our baselines makes the run exit 1 (a
wrong peer is only flagged). Timings are medians of `--repeats` steady-state runs; ratios
are within this run. Output: a table per workload and the issue-6 ratios, printed and
written to `<out>.md` and `<out>.json` (and `bench-results/latest.{md,json}`).
Benchmarks never fail on timing: missed targets are reported, not errors.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def _blas_threads_from_argv(argv) -> str | None:
    """`--blas-threads N` must act before NumPy is imported (by JAX, below)."""
    for i, a in enumerate(argv):
        if a == "--blas-threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--blas-threads="):
            return a.split("=", 1)[1]
    return None


_BLAS = _blas_threads_from_argv(sys.argv[1:])
if _BLAS is not None:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _BLAS

import kuralab  # noqa: E402, F401  (first: it may set XLA_FLAGS before JAX's backend starts)
import jax  # noqa: E402
from _common import (  # noqa: E402
    CheckFailed,
    Result,
    Skipped,
    cpu_model,
    simd_flags,
    fmt_g,
    fmt_s,
    loadavg,
    measure,
)

FULL = {
    "W1": dict(N=1000, steps=2000, dt=0.01),
    "W1b": dict(N=1000, B=64, steps=500, dt=0.01),
    "W2": dict(N=100_000, steps=1000, dt=0.01),
    "W3": dict(N=500, nK=64, steps=2000, dt=0.01, kuramoto_subset=4),
    "W4": dict(N=1000, steps=5000, dt=0.01),
    "W5": dict(N=100, steps=5000, dt=0.01),
    "W6": dict(N=10_000, k=10, steps=100, dt=0.01, N_jitcdde=100, T_jitcdde=5.0,
               jitcdde_tol=1e-6, pairs=7),
    "C": dict(cases=("meanfield", "dense", "noise", "delay", "sweep", "sweep_nothrow"), evidence=True),
    "D": dict(N=200, steps=500, dt=0.01),
    "S": dict(
        grid={
            "meanfield": [100, 1000, 10_000, 100_000, 1_000_000],
            "dense": [100, 300, 1000, 3000],
            "sparse": [100, 1000, 10_000, 100_000],
            "lattice": [100, 1024, 10_000, 100_000],
        }
    ),
    "G": dict(N_gpu=10_000_000, N_cpu=1_000_000, steps=50, ensemble=4096, ensemble_steps=200),
    "L1": dict(n=100),
    "L2": dict(kernel=3),
    "L5": dict(N=100, steps=10_000, dt=0.01, ensemble_n=20, ensemble_K=64),
    "L4": dict(side=11, length=200, batch=50),
    "L3": dict(),
}
QUICK = {
    "W1": dict(N=300, steps=300, dt=0.01),
    "W1b": dict(N=300, B=16, steps=100, dt=0.01),
    "W2": dict(N=20_000, steps=200, dt=0.01),
    "W3": dict(N=200, nK=16, steps=300, dt=0.01, kuramoto_subset=2),
    "W4": dict(N=300, steps=1000, dt=0.01),
    "W5": dict(N=50, steps=1000, dt=0.01),
    "W6": dict(N=1000, k=10, steps=50, dt=0.01, N_jitcdde=20, T_jitcdde=2.0,
               jitcdde_tol=1e-6, pairs=3),
    "C": dict(cases=("meanfield",), evidence=False),
    "D": dict(N=50, steps=100, dt=0.01),
    "S": dict(grid={"meanfield": [100, 3000], "dense": [100, 300], "sparse": [1000], "lattice": [1024]}),
    "G": dict(N_gpu=1_000_000, N_cpu=100_000, steps=20, ensemble=256, ensemble_steps=50),
    "L1": dict(n=100),
    "L2": dict(kernel=3),
    "L3": dict(),
    "L4": dict(side=11, length=50, batch=50),
    "L5": dict(N=10, steps=2000, dt=0.01, ensemble_n=8, ensemble_K=16),
}
ORDER = ("R", "W1", "W1b", "W2", "W3", "W4", "W5", "W6", "C", "D", "S", "G", "L1", "L2", "L3", "L4", "L5")
TITLES = {
    "roofline": "Roofline: the machine's measured JAX rates (GFLOP/s)",
    "W1": "W1: dense N={N}, RK4, {steps} steps",
    "W1b": "W1b: {B} initial conditions, one dense K (N={N}), RK4, {steps} steps",
    "W2": "W2: mean-field N={N}, RK4, {steps} steps",
    "W3": "W3: sweep of {nK} K, mean-field N={N}, RK4, {steps} steps",
    "W4": "W4: Euler-Maruyama, mean-field N={N}, K=2, D=0.1, {steps} steps",
    "W5": "W5: delay tau=1, N={N} all-to-all, K=2, RK4, {steps} steps",
    "W6": "W6: per-edge delays, sparse N={N}, {k} edges per node, RK4, {steps} steps (osc-steps = edge-steps)",
    "C": "C: compile overhead of the first call in a new process (s; first call minus a steady call)",
    "D": "D: value_and_grad of a final-state loss, dense N={N}, RK4, {steps} steps (float32 and float64)",
    "S": "S: scaling, kuralab RK4 float32 by coupling kind",
    "G": "G: device figures",
    "L5": "L5: full Lyapunov spectrum, dense N={N}, RK4 dt={dt}, {steps} steps, QR every step",
    "L3": "L3: orientation-diffusion forward chain, 128 x 3 x 32 x 32, 100 steps, every state kept (+ one ScoreUNet training step)",
    "L1": "L1: one KuraNet training step, case I, n={n} (MLP 6-128-128-1, 100 burn-in + 50 loss Euler steps, SGD, clip)",
    "L2": "L2: AKOrN conv layer forward+backward, batch 16, C=64, n=4, 16x16, T=8, {kernel}x{kernel} kernel",
    "L4": "L4: one adding-task training step, {side}x{side} coRNN sheet, T={length}, batch {batch} (3x3 circular kernels, Adam)",
}


class Context:
    def __init__(self, args):
        self.quick = args.quick
        self.repeats = args.repeats
        self.ref_repeats = 1
        self.only = set(args.only)
        self.slow_peers = not (args.no_slow_peers or args.quick)
        self.sizes = QUICK if args.quick else FULL
        self.backend = jax.default_backend()
        self.roof: dict = {}
        self.failures: list[str] = []
        self.events: dict = defaultdict(float)
        self._listen()

    def _listen(self):
        names = {
            "/jax/core/compile/jaxpr_trace_duration": "trace_s",
            "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
            "/jax/core/compile/backend_compile_duration": "backend_s",
        }

        def on(name, secs, **kw):
            if name in names:
                self.events[names[name]] += secs

        jax.monitoring.register_event_duration_secs_listener(on)

    def size(self, workload: str, key: str):
        return self.sizes[workload][key]

    def log(self, msg: str):
        print(msg, flush=True)

    def timed(self, r: Result, fn, check, repeats=None, first_is_compile=True, compile_events=False):
        """Time our own implementation (kuralab, a baseline, the reference); a wrong
        answer or an exception is a failure of the run."""
        before = dict(self.events)
        try:
            measure(r, fn, check, repeats or self.repeats, first_is_compile=first_is_compile)
        except CheckFailed as e:
            self.failures.append(str(e))
            r.note = "WRONG ANSWER"
            self.log(f"  FAILED: {e}")
        except Exception as e:  # noqa: BLE001 - record, go on, exit non-zero
            self.failures.append(f"{r.workload} {r.impl}: {type(e).__name__}: {e}")
            r.skipped = f"error: {type(e).__name__}: {e}"
            self.log(f"  ERROR: {r.skipped}")
            traceback.print_exc()
        if compile_events:
            r.extra["first_call_split_s"] = {
                k: self.events.get(k, 0.0) - before.get(k, 0.0) for k in ("trace_s", "lower_s", "backend_s")
            }
        if r.median_s is not None:
            self.log(f"    median {fmt_s(r.median_s)} s, {fmt_g(r.osc_steps_per_s)} osc-steps/s"
                     + (f", {r.check.text()}" if r.check else ""))
        return r

    def extra_check(self, r: Result, c):
        r.extra.setdefault("checks", []).append(c.text())
        r.note = (r.note + "; " if r.note else "") + c.text()
        if not c.ok:
            self.failures.append(f"{r.workload} {r.impl}: {c.text()}")
            self.log(f"  FAILED: {c.text()}")

    def peer(self, r: Result, setup, check, slow: bool = False):
        """Time a peer library; missing, failing or wrong peers are recorded, not fatal."""
        if slow and not self.slow_peers:
            r.skipped = "slow peer: skipped with --quick / --no-slow-peers"
            return r
        self.log(f"  peer: {r.impl}")
        try:
            spec = setup()
        except Skipped as e:
            r.skipped = str(e)
            self.log(f"    skipped: {e}")
            return r
        except (Exception, SystemExit) as e:  # noqa: BLE001 (setuptools exits)
            r.skipped = f"failed to build: {type(e).__name__}: {e}"
            self.log(f"    {r.skipped}")
            return r
        r.compile_s = spec.get("compile_s")
        r.note = spec.get("note", "")
        try:
            measure(r, spec["run"], check, spec.get("repeats") or self.repeats, first_is_compile=False)
        except CheckFailed as e:
            r.note += "; WRONG ANSWER: left out of the ratios"
            self.log(f"    peer gave a wrong answer: {e}")
        except (Exception, SystemExit) as e:  # noqa: BLE001
            r.skipped = f"failed: {type(e).__name__}: {e}"
            self.log(f"    {r.skipped}")
        if r.median_s is not None:
            self.log(f"    median {fmt_s(r.median_s)} s" + (f", {r.check.text()}" if r.check else ""))
        return r


# ---------------------------------------------------------------------------------
# Ratios (issue 6 targets)
# ---------------------------------------------------------------------------------


def _find(rows, workload, role=None, startswith=None):
    for r in rows:
        if r.workload == workload and (role is None or r.role == role) and (
            startswith is None or r.impl.startswith(startswith)
        ):
            return r
    return None


def ratios(rows, roof) -> list[dict]:
    out = []

    def add(name, value, target, detail, extra=None):
        out.append(dict(name=name, value=value, target=target,
                        met=None if value is None else value >= target, detail=detail, **(extra or {})))

    def speed(a, b):
        if a is None or b is None or not a.valid or not b.valid:
            return None
        return a.osc_steps_per_s / b.osc_steps_per_s

    # W1/W1b: kuralab and the roofline measured in alternating pairs (ratio of medians
    # taken minutes apart is at the mercy of the shared machine's load).
    for w, key, target, what in (("W1", "matvec", 0.90, "JAX matvec rate"), ("W1b", "matmul", 0.50, "JAX matmul peak")):
        k = _find(rows, w, "kuralab")
        if k is None:
            continue
        frac = roof.get(key + "_fraction") if k.valid else None
        sep = roof.get(key)
        detail = (
            f"median of per-pair ratios, kuralab interleaved with the roofline "
            f"({fmt_g(roof.get(key + '_interleaved'))} GFLOP/s); separately timed: kuralab "
            f"{fmt_g(k.gflops)} vs R {fmt_g(sep)} GFLOP/s"
        )
        add(f"{w} kuralab / {what}", frac, target, detail if frac else "missing")
    k = _find(rows, "W2", "kuralab")
    b = _find(rows, "W2", "baseline", "NumPy f32")
    if k is not None:
        add("W2 kuralab vs NumPy f32 (speed-up)", speed(k, b), 3.0, "issue 18 target 3x (issue 6: 1.5x)")
        if roof.get("fma") and k.gflops:
            add("W2 kuralab GFLOP/s / elementwise FMA peak (fraction; reported)", k.gflops / roof["fma"], 0.0,
                f"{k.gflops:.1f} of {roof['fma']:.1f} GFLOP/s (136 flops per osc-step, w2_meanfield.py)")
    k = _find(rows, "W3", "kuralab")
    b = _find(rows, "W3", "baseline", "diffrax")
    if k is not None:
        add("W3 kuralab vs diffrax vmap (speed-up)", speed(k, b), 2.0, "")
    p = _find(rows, "W3", "peer", "jitcode")
    k = _find(rows, "W3", "kuralab")
    if k is not None and p is not None:
        add("W3 kuralab vs jitcode (speed-up; issue 18)", speed(k, p), 2.0, "")
    for dtype in ("float32", "float64"):  # issue 18: reverse mode within 1.5x of a hand scan
        k = _find(rows, "D", "kuralab", f"kuralab simulate rk4 (default adjoint: kl.ScanAdjoint) [{dtype}]")
        b = _find(rows, "D", "baseline", f"hand-written lax.scan RK4, JAX reverse mode [{dtype}]")
        if k is not None:
            add(f"D value_and_grad {dtype}: kuralab vs hand lax.scan (speed ratio; 1/1.5 = within 1.5x)",
                speed(k, b), round(1 / 1.5, 3), "")
    k = _find(rows, "W4", "kuralab")
    b = _find(rows, "W4", "baseline", "diffrax")
    if k is not None:
        add("W4 kuralab vs diffrax EM (speed-up)", speed(k, b), 1.5, "")
    p = _find(rows, "W5", "peer", "jitcdde")
    # the fastest kuralab row within the error target (fixed dt=0.01, or the coarse dt)
    ks = [r for r in rows if r.workload == "W5" and r.role == "kuralab" and r.valid]
    ok = [r for r in ks if r.check is not None and r.check.value <= 1e-3]
    k = max(ok or ks, key=lambda r: r.osc_steps_per_s) if ks else _find(rows, "W5", "kuralab")
    if k is not None:
        v = speed(k, p)
        kerr = k.check.value if k.check else None
        perr = p.check.value if (p is not None and p.check) else None
        detail = f"{k.impl}; errors: kuralab {fmt_g(kerr, 2)}, jitcdde {fmt_g(perr, 2)}"
        if v is not None and kerr is not None and kerr > 1e-3:
            detail += " (kuralab error above 1e-3: target not met at equal accuracy)"
            add("W5 kuralab vs jitcdde at error <= 1e-3 (speed-up)", v, 2.0, detail)
            out[-1]["met"] = False
        else:
            add("W5 kuralab vs jitcdde at error <= 1e-3 (speed-up)", v, 2.0, detail)
    k = _find(rows, "L1", "kuralab")
    if k is not None:  # issue 12: >= 4x the PyTorch step, within 1.3x of the hand-written scan
        add("L1 kuralab vs PyTorch reference step (speed-up)", speed(k, _find(rows, "L1", "peer")), 4.0, "")
        add("L1 kuralab vs hand-written lax.scan (speed ratio; 1/1.3 = within 1.3x)",
            speed(k, _find(rows, "L1", "baseline")), round(1 / 1.3, 3), "")
    k = _find(rows, "L5", "kuralab")
    if k is not None:  # issue 16: >= 2x jitcode_lyap; ensembles in one call
        add("L5 kuralab vs jitcode_lyap, full spectrum (speed-up)",
            speed(k, _find(rows, "L5", "peer")), 2.0, "")
        e = [r for r in rows if r.workload == "L5" and r.role == "kuralab" and "ensemble" in r.impl]
        if e:
            add("L5 ensemble in one vmapped call vs one call per K (speed-up)",
                speed(e[0], _find(rows, "L5", "baseline")), 1.0, "")
    k = _find(rows, "L2", "kuralab")
    if k is not None:  # issue 13: at least as fast as the PyTorch port of the reference layer
        add("L2 kuralab vs PyTorch reference layer fwd+bwd (speed-up)", speed(k, _find(rows, "L2", "peer")), 1.0, "")
        add("L2 kuralab jax.vmap(layer) vs PyTorch (speed-up; one example per call)",
            speed(_find(rows, "L2", "variant"), _find(rows, "L2", "peer")), 1.0, "")
        hand = [r for r in rows if r.workload == "L2" and r.role == "baseline" and r.valid]
        best = max(hand, key=lambda r: r.osc_steps_per_s, default=None)
        add("L2 kuralab vs the fastest hand-written lax.scan (speed ratio; 1/1.3 = within 1.3x)",
            speed(k, best), round(1 / 1.3, 3), best.impl if best is not None else "")
    k = _find(rows, "L4", "kuralab")
    if k is not None:  # issue 15: >= 2x the PyTorch step
        add("L4 kuralab vs PyTorch reference coRNN step (speed-up)", speed(k, _find(rows, "L4", "peer")), 2.0, "")
        add("L4 kuralab vs hand-written lax.scan (speed ratio)", speed(k, _find(rows, "L4", "baseline")),
            round(1 / 1.3, 3), "")
    k = _find(rows, "L3", "kuralab")
    if k is not None:  # issue 14: >= 3x the PyTorch port of the reference loop
        add("L3 kuralab vs PyTorch reference loop (speed-up)", speed(k, _find(rows, "L3", "peer")), 3.0, "")
        add("L3 kuralab vs hand-written lax.scan (speed ratio)", speed(k, _find(rows, "L3", "baseline")), 1.0, "")
    warm = [r for r in rows if r.workload == "C" and r.role == "kuralab"
            and r.impl.endswith("persistent cache") and r.median_s]
    if warm:
        worst = max(warm, key=lambda r: r.median_s)
        # target is "<= 0.3 s": express as 0.3 / t >= 1
        add("C cached compile in a new process: 0.3 s / worst case", 0.3 / worst.median_s, 1.0,
            f"worst {worst.impl.split(':')[0]} {worst.median_s:.2f} s; "
            + ", ".join(f"{r.impl.split(':')[0]} {r.median_s:.2f}" for r in warm))
    return out


# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------


def _kuralab_row(rows, workload):
    return _find(rows, workload, "kuralab")


def table(rows, workload, title) -> str:
    wrows = [r for r in rows if r.workload == workload]
    if not wrows:
        return ""
    k = _kuralab_row(rows, workload) if workload not in ("S", "C", "G", "roofline") else None
    lines = [f"### {title}", ""]
    if workload == "roofline":
        lines += ["| op | GFLOP/s (or GB/s) | median s (n) | note |", "|---|---|---|---|"]
        for r in wrows:
            val = r.extra.get("gflops", r.extra.get("gbytes_per_s"))
            lines.append(f"| {r.impl} | {fmt_g(val)} | {fmt_s(r.median_s)} ({len(r.times)}) | {r.note} |")
        return "\n".join(lines) + "\n"
    if workload == "C":
        lines += ["| case | compile overhead s, median (n) | first call s | note |", "|---|---|---|---|"]
        for r in wrows:
            lines.append(f"| {r.impl} | {fmt_s(r.median_s)} ({len(r.times)}) | {fmt_s(r.first_s)} | {r.note} |")
        return "\n".join(lines) + "\n"
    lines += [
        "| implementation | role | dtype | first call s | compile s | median s (n) | osc-steps/s | GFLOP/s | kuralab speed-up | check | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in wrows:
        if r.skipped:
            lines.append(f"| {r.impl} | {r.role} | {r.dtype} | — | — | — | — | — | — | — | {r.skipped} |")
            continue
        sp = "—"
        if k is not None and k is not r and k.valid and r.osc_steps_per_s and (r.check is None or r.check.ok):
            sp = f"{k.osc_steps_per_s / r.osc_steps_per_s:.2f}x"
        chk = r.check.text() if r.check else "—"
        n = len(r.times)
        lines.append(
            f"| {r.impl} | {r.role} | {r.dtype} | {fmt_s(r.first_s)} | {fmt_s(r.compile_s)} | "
            f"{fmt_s(r.median_s)} ({n}) | {fmt_g(r.osc_steps_per_s)} | {fmt_g(r.gflops)} | {sp} | {chk} | {r.note} |"
        )
    return "\n".join(lines) + "\n"


def ratio_table(rs) -> str:
    lines = ["### Issue-6 targets (ratios within this run)", "",
             "| ratio | value | target | met | detail |", "|---|---|---|---|---|"]
    for x in rs:
        met = "—" if x["met"] is None else ("yes" if x["met"] else "**no**")
        lines.append(f"| {x['name']} | {fmt_g(x['value'])} | >= {x['target']} | {met} | {x['detail']} |")
    return "\n".join(lines) + "\n"


def environment() -> dict:
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"

    import importlib.metadata as md

    vers = {}
    for p in ("jax", "jaxlib", "equinox", "diffrax", "numpy", "scipy", "kuralab", "kuramoto", "jitcode",
              "jitcsde", "jitcdde", "symengine"):
        try:
            vers[p] = md.version(p)
        except md.PackageNotFoundError:
            vers[p] = None
    return dict(
        date=_dt.datetime.now().isoformat(timespec="seconds"),
        git_commit=git("rev-parse", "--short", "HEAD"),
        git_dirty=bool(git("status", "--porcelain", "--untracked-files=no")),
        python=platform.python_version(),
        platform=platform.platform(),
        cpu=cpu_model(),
        simd=simd_flags(),
        cpu_count=os.cpu_count(),
        backend=jax.default_backend(),
        devices=[str(d) for d in jax.devices()],
        x64=bool(jax.config.jax_enable_x64),
        versions=vers,
        loadavg_start=loadavg(),
        blas_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
    )


def report_md(env, rows, rs, args, elapsed) -> str:
    out = ["# kuralab benchmark results", ""]
    out.append(f"- command: `{' '.join([Path(sys.executable).name, 'benchmarks/run.py'] + sys.argv[1:])}`")
    out.append(f"- date {env['date']}, commit {env['git_commit']}{' (dirty)' if env['git_dirty'] else ''}, "
               f"{'quick' if args.quick else 'full'} sizes, {args.repeats} repeats, {elapsed:.0f} s")
    out.append(f"- devices: {', '.join(env['devices'])} (backend {env['backend']}); CPU: {env['cpu']} x{env['cpu_count']}, SIMD: {env['simd']}")
    out.append(f"- load average (1/5/15 min) at start {env['loadavg_start']}, at end {env.get('loadavg_end')} "
               "(a shared machine: ratios within this run are the figures to compare)")
    out.append(f"- NumPy BLAS threads: {env['blas_threads'] or 'default'}")
    out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
    out.append("")
    out.append(ratio_table(rs))
    for w in ("roofline",) + ORDER[1:]:
        title = TITLES.get(w, w)
        try:
            title = title.format(**FULL_OR_QUICK.get(w, {}))
        except (KeyError, IndexError):
            pass
        t = table(rows, w, title)
        if t:
            out.append(t)
    return "\n".join(out)


FULL_OR_QUICK: dict = {}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (smoke test, < ~3 min)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(ORDER)}")
    p.add_argument("--repeats", type=int, default=3, help="steady-state runs per implementation (>= 3)")
    p.add_argument("--out", default=None, help="output path prefix (default bench-results/bench-<date>)")
    p.add_argument("--no-slow-peers", action="store_true", help="skip peers that take > 20 s (kuramoto)")
    p.add_argument("--blas-threads", default=None,
                   help="threads for NumPy's BLAS (OPENBLAS_NUM_THREADS); default: BLAS's own. "
                        "Use 1 on an oversubscribed machine, where spinning BLAS threads slow "
                        "NumPy's matvec ~10x")
    args = p.parse_args(argv)
    gpu = jax.default_backend() != "cpu"
    default = [w for w in ORDER if w != "G" or gpu]
    if args.only:
        args.only = [w.strip() for w in args.only.split(",") if w.strip()]
        bad = [w for w in args.only if w not in ORDER]
        if bad:
            p.error(f"unknown workload(s) {bad}; expected a subset of {','.join(ORDER)}")
    else:
        args.only = default
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    ctx = Context(args)
    FULL_OR_QUICK.update(ctx.sizes)
    env = environment()
    print(f"kuralab benchmarks: devices {env['devices']}, load {env['loadavg_start']}, "
          f"{'quick' if args.quick else 'full'}, workloads {args.only}", flush=True)

    import compile_time
    import d_grad
    import gpu as gpu_mod
    import l1_kuranet
    import l2_akorn
    import l3_diffusion
    import l4_cornn
    import l5_lyapunov
    import roofline
    import scaling
    import w1_dense
    import w2_meanfield
    import w3_sweep
    import w4_noise
    import w5_delay
    import w6_edge_delay

    runners = {
        "R": roofline.run,
        "W1": w1_dense.run_w1,
        "W1b": w1_dense.run_w1b,
        "W2": w2_meanfield.run_w2,
        "W3": w3_sweep.run_w3,
        "W4": w4_noise.run_w4,
        "W5": w5_delay.run_w5,
        "W6": w6_edge_delay.run_w6,
        "C": compile_time.run_compile,
        "D": d_grad.run_grad,
        "S": scaling.run_scaling,
        "G": gpu_mod.run_gpu,
        "L1": l1_kuranet.run_l1,
        "L5": l5_lyapunov.run_l5,
        "L2": l2_akorn.run_l2,
        "L4": l4_cornn.run_l4,
        "L3": l3_diffusion.run_l3,
    }
    todo = [w for w in ORDER if w in args.only]
    # the roofline is needed for the W1/W1b/G ratios
    if ("W1" in todo or "W1b" in todo or "G" in todo) and "R" not in todo:
        todo.insert(0, "R")
    rows: list[Result] = []
    t_start = time.perf_counter()
    loads = {}
    for w in todo:
        loads[w] = loadavg()
        print(f"\n== {w} (load {loads[w]})", flush=True)
        t0 = time.perf_counter()
        try:
            rows += runners[w](ctx)
        except Exception as e:  # noqa: BLE001
            ctx.failures.append(f"{w}: {type(e).__name__}: {e}")
            traceback.print_exc()
        print(f"== {w} done in {time.perf_counter() - t0:.0f} s", flush=True)
    elapsed = time.perf_counter() - t_start
    env["loadavg_end"] = loadavg()
    env["loadavg_per_workload"] = loads
    rs = ratios(rows, ctx.roof)
    md = report_md(env, rows, rs, args, elapsed)
    print("\n" + md)

    out = Path(args.out) if args.out else ROOT / "bench-results" / f"bench-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = dict(
        environment=env,
        args=dict(quick=args.quick, only=args.only, repeats=args.repeats),
        sizes={w: ctx.sizes.get(w) for w in todo if w in ctx.sizes},
        roofline=ctx.roof,
        ratios=rs,
        results=[r.to_json() for r in rows],
        failures=ctx.failures,
        elapsed_s=elapsed,
    )
    md_path, json_path = out.with_suffix(".md"), out.with_suffix(".json")
    md_path.write_text(md)
    json_path.write_text(json.dumps(doc, indent=1, default=str))
    latest = ROOT / "bench-results"
    latest.mkdir(exist_ok=True)
    for src, name in ((md_path, "latest.md"), (json_path, "latest.json")):
        if src.resolve() != (latest / name).resolve():
            shutil.copyfile(src, latest / name)
    print(f"wrote {md_path} and {json_path}")
    if ctx.failures:
        print("\nFAILED (wrong answers or errors):", file=sys.stderr)
        for f in ctx.failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
