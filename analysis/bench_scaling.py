"""Figure: kuralab throughput (oscillator-steps per second) against N for each coupling
kind, from the benchmark output.

    python benchmarks/run.py --only S            # or a full `make bench`
    python analysis/bench_scaling.py bench-results/latest.json --out bench-results/scaling.png

Reads the JSON written by `benchmarks/run.py` (the `S` workload rows: kuralab RK4 float32,
`SaveAt(final=True)`, mean-field / dense / sparse / lattice couplings at several N, each
checked against NumPy float64), plots osc-steps/s against N on log-log axes, one line per
coupling kind, and marks the single-network workloads W1 (dense N=1000) and W2 (mean-field
N=1e5) when present. For dense coupling the cost per oscillator-step grows as N, so its
line falls as 1/N once the matrix products dominate; the other kinds are O(N) per step and
should be flat once per-step overhead is amortised. Prints the table behind the figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kuralab.plot import save_figure  # noqa: E402

KINDS = ("meanfield", "dense", "sparse", "lattice")
MARKERS = {"meanfield": "o", "dense": "s", "sparse": "^", "lattice": "D"}
SINGLE = {"W1": "dense", "W2": "meanfield"}


def load(path: str | Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"error: {path}: no such file (run `python benchmarks/run.py --only S` first)") from None
    except json.JSONDecodeError as e:
        raise SystemExit(f"error: {path}: not a benchmark JSON ({e})") from None
    if "results" not in doc:
        raise SystemExit(f"error: {path}: not a benchmark result (no 'results')")
    return doc


def series(doc: dict) -> dict[str, list[tuple[int, float]]]:
    """{coupling kind: [(N, osc-steps/s), ...]} from the S rows that passed their check."""
    out: dict[str, list[tuple[int, float]]] = {k: [] for k in KINDS}
    for r in doc["results"]:
        if r["workload"] != "S" or r.get("osc_steps_per_s") is None:
            continue
        if r.get("check") and not r["check"]["ok"]:
            continue
        kind, n = r["extra"].get("coupling"), r["extra"].get("N")
        if kind in out and n:
            out[kind].append((int(n), float(r["osc_steps_per_s"])))
    return {k: sorted(v) for k, v in out.items() if v}


def singles(doc: dict) -> list[tuple[str, str, int, float]]:
    sizes = doc.get("sizes", {})
    out = []
    for r in doc["results"]:
        w = r["workload"]
        if w in SINGLE and r["role"] == "kuralab" and r.get("osc_steps_per_s") and w in sizes:
            out.append((w, SINGLE[w], int(sizes[w]["N"]), float(r["osc_steps_per_s"])))
    return out


def plot(doc: dict, out: Path) -> Path:
    data = series(doc)
    if not data:
        raise SystemExit("error: no scaling rows (workload S) in the benchmark output; run with --only S")
    env = doc.get("environment", {})
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = {}
    for kind, pts in data.items():
        ns, rates = zip(*pts, strict=True)
        (line,) = ax.plot(ns, rates, marker=MARKERS[kind], label=kind)
        colors[kind] = line.get_color()
    for w, kind, n, rate in singles(doc):
        ax.plot([n], [rate], marker="*", ms=13, ls="none", color=colors.get(kind, "k"),
                markeredgecolor="k", label=f"{w} ({kind}, N={n})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (oscillators)")
    ax.set_ylabel("oscillator-steps / s (RK4, float32)")
    devices = ", ".join(env.get("devices", [])) or "?"
    ax.set_title(f"kuralab throughput by coupling kind ({devices})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = save_figure(fig, out)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", nargs="?", default="bench-results/latest.json")
    p.add_argument("--out", default="bench-results/scaling.png")
    a = p.parse_args(argv)
    doc = load(a.input)
    data = series(doc)
    print(f"{'coupling':<10} {'N':>9} {'osc-steps/s':>12}")
    for kind, pts in data.items():
        for n, rate in pts:
            print(f"{kind:<10} {n:>9} {rate:>12.3g}")
    path = plot(doc, Path(a.out))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
