"""Up-front sizes of a study: simulations, output bytes, peak memory per chunk.

Everything here is arithmetic on the spec's numbers; nothing is materialised, so a
spec asking for 1e9 points or 1e30 time units costs microseconds to refuse. Parsing
(`kuralab._study.parse`) calls `check_points` on the raw `[sweep]` table before any axis
is built, and `check_sizes` on the finished spec; `kuralab validate` and `kuralab run`
print `estimate(spec).summary()`.

**Limits** (`Limits`): the number of simulations, the estimated output file and the
estimated peak device/host memory of one chunk. Defaults: `DEFAULT_LIMITS`; each can be
changed by an environment variable (`KURALAB_MAX_POINTS`, `KURALAB_MAX_OUTPUT`,
`KURALAB_MAX_CHUNK_MEMORY`) or the CLI flags `--max-points`, `--max-output`,
`--max-memory` (sizes as `20GB`, `512MiB` or a number of bytes). A spec over a limit
is refused with a `SpecError` naming the spec key to change and the limit to raise.

**What the estimates count.** Output: every stored variable (`R`, `R_std`, `R_t`,
`psi_t`, frequencies, energies, trajectories with their `turns`, `omega`) at the run's
float width, plus the `time` coordinate; netCDF adds a few kB of metadata. Peak memory
of a chunk: per simulation, `_STATE_COPIES` copies of the state (the Runge--Kutta
stages, the retraction's winding numbers, temporaries), the delay history and the time
series kept until the chunk returns, times the chunk size, plus the coupling's arrays
(a dense matrix is shared by the chunk). The constants are calibrated against XLA's
buffer assignment of the compiled chunk (`compiled.memory_analysis()`: arguments +
outputs + temporaries): for mean-field, noisy, delayed and trajectory-saving specs the
estimate is an upper bound within 2.5x of it (`tests/test_study_limits_xla.py`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .._sizes import parse_size, show_size
from .spec import SpecError

__all__ = ["Estimate", "Limits", "check_points", "check_sizes", "estimate",
           "parse_size", "show_size"]

#: int32 step counters and array indices: a hard limit, not configurable.
MAX_STEPS = 2**31 - 1
MAX_OSC = 2**31 - 1

#: Copies of one simulation's state alive during a step (RK4: y, 4 stages, the new
#: state, the winding numbers, the frequencies and temporaries), for the memory
#: estimate. XLA's buffers for a mean-field RK4 chunk hold 13.3 state copies.
_STATE_COPIES = 16
#: Saved trajectories live in XLA's temporaries (the scan's stacked saves) as well as
#: in the chunk's outputs (phases and int32 winding numbers): measured 2.27 times the
#: output bytes for a phase model, so the estimate counts 2.5 times.
_SAVE_EXTRA = 2.5

@dataclass(frozen=True)
class Limits:
    """What a study may ask for (see the module docstring)."""

    max_points: int = 10_000_000
    max_output: int = 50 * 10**9
    max_chunk_memory: int = 16 * 10**9

    @classmethod
    def from_env(cls, **overrides) -> Limits:
        """The defaults, then `KURALAB_MAX_*` environment variables, then `overrides`
        (those that are not `None`)."""
        env = {
            "max_points": "KURALAB_MAX_POINTS",
            "max_output": "KURALAB_MAX_OUTPUT",
            "max_chunk_memory": "KURALAB_MAX_CHUNK_MEMORY",
        }
        values = {}
        for name, var in env.items():
            raw = overrides.get(name)
            where = FLAGS[name]
            if raw is None and os.environ.get(var):
                raw, where = os.environ[var], var
            if raw is not None:
                values[name] = parse_size(raw, where)
        return cls(**values)


#: The CLI flag of each limit (for messages).
FLAGS = {
    "max_points": "--max-points",
    "max_output": "--max-output",
    "max_chunk_memory": "--max-memory",
}
_ENV = {
    "max_points": "KURALAB_MAX_POINTS",
    "max_output": "KURALAB_MAX_OUTPUT",
    "max_chunk_memory": "KURALAB_MAX_CHUNK_MEMORY",
}


def _raise_hint(name: str) -> str:
    return f"or raise the limit with {FLAGS[name]} / {_ENV[name]}"


# ---------------------------------------------------------------------------------
# Before the grid exists: the number of points from the raw [sweep] table
# ---------------------------------------------------------------------------------


def axis_length(raw) -> int | None:
    """The number of values of a raw sweep axis (a list, or a range table's `num`),
    without building it; `None` when it is malformed (the parser reports that)."""
    if isinstance(raw, list):
        return len(raw)
    if isinstance(raw, dict):
        num = raw.get("num")
        if isinstance(num, int) and not isinstance(num, bool) and num >= 1:
            return num
    return None


def check_points(sweep: dict, along_ramps: bool, limits: Limits) -> None:
    """Refuse a raw `[sweep]` table with more than `limits.max_points` simulations,
    naming its largest axis, before any axis is materialised."""
    sizes: dict[str, int] = {}
    for name, raw in sweep.items():
        if name in ("mode", "along"):
            continue
        if name == "seeds":
            if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
                sizes["seeds"] = raw
            elif isinstance(raw, list):
                sizes["seeds"] = max(len(raw), 1)
            continue
        length = axis_length(raw)
        if length:
            sizes[name] = length
    total = math.prod(sizes.values()) * (2 if along_ramps else 1)
    if total <= limits.max_points:
        return
    name = max(sizes, key=sizes.get)
    key = f"sweep.{name}" + (".num" if isinstance(sweep[name], dict) else "")
    shown = sizes[name] if name == "seeds" or isinstance(sweep[name], dict) else (
        f"[{sizes[name]} values]"
    )
    raise SpecError(
        f"{key} = {shown}: the sweep has {total:.4g} simulations, more than the limit "
        f"of {limits.max_points:.4g}; reduce {key} {_raise_hint('max_points')}"
    )


def count_steps(t0: float, t1: float, dt: float) -> float:
    """(t1 - t0) / dt as a float (inf when it overflows)."""
    try:
        return (t1 - t0) / dt
    except OverflowError:
        return math.inf


# ---------------------------------------------------------------------------------
# The estimate of a parsed spec
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """Sizes of a parsed spec (bytes at the run's float width)."""

    points: int
    output: int
    chunk_memory: int
    saves: int
    itemsize: int
    terms: tuple[tuple[str, int], ...]  # output bytes by spec key that controls them
    memory_terms: tuple[tuple[str, int], ...]  # one simulation's memory by spec key
    per_simulation: int = 0
    shared: int = 0

    def summary(self) -> str:
        width = "float64" if self.itemsize == 8 else "float32"
        return (
            f"{self.points} simulations, estimated output {show_size(self.output)}, "
            f"peak memory per chunk ~{show_size(self.chunk_memory)} ({width})"
        )


def num_saves(steps: int, every: int) -> int:
    return steps // every + 1 + (1 if steps % every else 0)


def estimate(spec, itemsize: int = 4) -> Estimate:
    """The sizes of `spec` (a parsed `StudySpec`), by arithmetic only."""
    m, s, o, sw = spec.model, spec.solve, spec.observe, spec.sweep
    steps = spec.solve.num_steps
    saves = num_saves(steps, s.save_every)
    phase = m.kind == "kuramoto"
    dim = getattr(m, "dim", 1)
    b = itemsize
    ramp = 2 * len(sw.values(sw.along)) if sw.adiabatic else 1  # segments per point
    per_size = math.prod(len(v) for name, v in sw.axes if name != sw.along) * len(
        sw.seeds
    )
    sizes = sw.sizes or (m.n,)
    points = per_size * ramp * len(sizes)

    terms: dict[str, int] = {}

    def add(key: str, nbytes: float) -> None:
        terms[key] = terms.get(key, 0) + int(nbytes)

    runs = per_size * ramp
    for n in sizes:
        if o.order_parameter:
            add("observe.order_parameter", runs * 2 * b)
            add("solve.save_every", runs * saves * b * (2 if phase else 1))
        if o.energy:
            add("observe.energy", runs * b)
            add("solve.save_every", runs * saves * b)
        if o.frequency:
            add("observe.frequency", runs * 3 * b)
        if o.omega_z:
            add("observe.Omega_Z", runs * b)
        if o.locked:
            add("observe.locked", runs * b)
        if o.lyapunov:
            add("observe.lyapunov", runs * 2 * b)
        if o.trajectories:
            add("observe.trajectories", runs * saves * n * (dim * b + (4 if phase else 0)))
            add("observe.trajectories", len(sw.seeds) * n * b)
    add("solve.save_every", saves * 8)  # the time coordinate
    output = sum(terms.values())

    # Peak memory of one chunk (the largest network size).
    n = max(sizes)
    chunk = min(spec.output.chunk_size, per_size)
    state = n * dim * b
    mem: dict[str, int] = {}
    mem["model.n"] = _STATE_COPIES * state + (n * b if m.noisy else 0)
    if m.delayed:
        slots = math.ceil(spec.max_delay() / (s.dt if s.dt > 0 else 1)) + 2
        # the Hermite history keeps the value and the derivative in every slot
        mem["model.delays.tau"] = 2 * slots * state
        if m.edge_delayed:
            # per-edge delays, read positions and slopes, and the stages' per-edge
            # gathers and sines (64 edge-sized buffers: measured against XLA's own
            # buffer sizes, tests/test_study_limits_xla.py)
            mem["model.delays.speed"] = 64 * spec.edge_count(n) * b
        # delayed models keep every saved state (phase, winding number and the
        # stacked copy) for the window reduction
        mem["solve.save_every"] = saves * (state + 2 * n * 4) * 2
    series = 0
    if o.order_parameter:
        series += saves * b * (2 if phase else 1)
    if o.energy:
        series += saves * b
    # an adiabatic point returns every ramp step's series, stacked by the ramp's scan
    # (a temporary) and then returned (an output): 2 * ramp copies
    stacked = 2 * ramp if sw.adiabatic else 1
    mem["solve.save_every"] = mem.get("solve.save_every", 0) + series * stacked
    if o.trajectories:
        mem["observe.trajectories"] = int(
            saves * n * _SAVE_EXTRA * (dim * b + (4 if phase else 0)) * ramp
        )
    per_sim = sum(mem.values())
    memory_terms = dict(mem)
    shared = coupling_bytes(m, n, b)
    if shared:
        memory_terms["model.coupling"] = shared
    chunk_memory = per_sim * chunk + shared
    return Estimate(
        points=points,
        output=output,
        chunk_memory=chunk_memory,
        saves=saves,
        itemsize=itemsize,
        terms=tuple(terms.items()),
        memory_terms=tuple(memory_terms.items()),
        per_simulation=per_sim,
        shared=shared,
    )


def coupling_bytes(model, n: int, b: int) -> int:
    """Bytes of the coupling's arrays (shared by a chunk): a dense matrix is n^2."""
    c = model.coupling
    kind = getattr(c, "kind", "mean_field")
    if kind == "dense":
        return n * n * b
    if kind == "sparse":
        return c.network.edge_count(n) * (8 + b)
    return 0


def check_sizes(spec, limits: Limits, itemsize: int = 4) -> Estimate:
    """Refuse `spec` when its estimated output or chunk memory exceeds `limits`,
    naming the spec key that dominates; return the estimate otherwise."""
    est = estimate(spec, itemsize)
    if est.output > limits.max_output:
        key = max(est.terms, key=lambda kv: kv[1])[0]
        fix = {
            "solve.save_every": "raise solve.save_every (fewer saved samples: "
            f"{est.saves} per simulation now)",
            "observe.trajectories": "set observe.trajectories = false or raise "
            "solve.save_every",
        }.get(key, f"reduce the sweep or turn off {key}")
        raise SpecError(
            f"{key}: the estimated output is {show_size(est.output)} "
            f"({est.points} simulations), more than the limit of "
            f"{show_size(limits.max_output)}; {fix}, {_raise_hint('max_output')}"
        )
    if est.chunk_memory > limits.max_chunk_memory:
        fits = (limits.max_chunk_memory - est.shared) // max(1, est.per_simulation)
        if fits >= 1:
            key = "output.chunk_size"
            fix = f"set output.chunk_size <= {fits} (now {spec.output.chunk_size})"
        else:
            key = max(est.memory_terms, key=lambda kv: kv[1])[0]
            fix = f"reduce {key}"
        raise SpecError(
            f"{key}: the estimated peak memory of one chunk is "
            f"{show_size(est.chunk_memory)}, more than the limit of "
            f"{show_size(limits.max_chunk_memory)}; {fix}, "
            f"{_raise_hint('max_chunk_memory')}"
        )
    return est
