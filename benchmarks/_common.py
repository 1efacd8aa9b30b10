"""Shared machinery of the benchmark suite: timing, correctness checks, result records,
and the NumPy integrators used as baselines and as the float64 reference.

Every timed implementation goes through `measure`: one first call (compile + run for JAX),
then `repeats` steady-state calls; every output (the first and each repeat) is checked
against the reference *before* its time is recorded. A failed check of kuralab or of one
of our own baselines is fatal for the run (non-zero exit); a failed check of a peer
library is recorded and the peer is left out of the ratios.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

TWO_PI = 2.0 * math.pi

#: Roles of a result row. Ratios are taken between kuralab and the others.
ROLES = ("kuralab", "baseline", "reference", "peer", "roofline", "evidence")


class CheckFailed(Exception):
    """An implementation produced a wrong answer."""


class Skipped(Exception):
    """An implementation cannot run here (missing peer, not expressible, too slow)."""


@dataclasses.dataclass
class Check:
    """The outcome of one correctness check: `value <= tol` (or a described test)."""

    metric: str
    value: float
    tol: float
    ok: bool

    def text(self) -> str:
        mark = "ok" if self.ok else "FAIL"
        return f"{self.metric} {self.value:.2g} (tol {self.tol:.2g}) {mark}"


@dataclasses.dataclass
class Result:
    workload: str
    impl: str
    role: str
    dtype: str = "float32"
    first_s: float | None = None  # first call: trace + compile + run (JAX)
    compile_s: float | None = None  # separately measured compile/build time, if any
    times: list[float] = dataclasses.field(default_factory=list)
    median_s: float | None = None
    osc_steps: float | None = None  # work, in oscillator-steps, of one call
    flops: float | None = None  # useful flops of one call (for roofline fractions)
    check: Check | None = None
    skipped: str | None = None
    note: str = ""
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def osc_steps_per_s(self) -> float | None:
        if self.median_s and self.osc_steps:
            return self.osc_steps / self.median_s
        return None

    @property
    def gflops(self) -> float | None:
        if self.median_s and self.flops:
            return self.flops / self.median_s / 1e9
        return None

    @property
    def valid(self) -> bool:
        return self.skipped is None and self.median_s is not None and (
            self.check is None or self.check.ok
        )

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["osc_steps_per_s"] = self.osc_steps_per_s
        d["gflops"] = self.gflops
        return d


def block(x):
    """Wait for JAX arrays in `x` (no-op for NumPy)."""
    try:
        import jax

        return jax.block_until_ready(x)
    except ImportError:  # pragma: no cover
        return x


def measure(
    result: Result,
    fn: Callable[[int], Any],
    check: Callable[[Any], Check] | None,
    repeats: int,
    *,
    first_is_compile: bool = True,
) -> Result:
    """Time `fn(i)` (i = call index, e.g. to vary a PRNG key); check every output.

    The first call is recorded as `first_s` (for JAX: trace + compile + run) and, when
    `first_is_compile` is False (NumPy, peers that do not compile), also counted as a
    timed run.
    """
    times = []
    worst = None
    for i in range(repeats + (1 if first_is_compile else 0)):
        t0 = time.perf_counter()
        out = block(fn(i))
        dt = time.perf_counter() - t0
        if check is not None:
            c = check(out)
            if not c.ok:
                result.check = c
                result.times = times
                result.median_s = statistics.median(times) if times else None
                raise CheckFailed(f"{result.workload} {result.impl}: {c.text()}")
            if worst is None or c.value > worst.value:
                worst = c
        if i == 0:
            result.first_s = dt
            if first_is_compile:
                continue
        times.append(dt)
    result.times = times
    result.median_s = statistics.median(times)
    result.check = worst
    return result


def wrapped_diff(a, b) -> np.ndarray:
    """Phase difference wrapped to [-pi, pi)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.mod(d + math.pi, TWO_PI) - math.pi


def phase_check(ref, tol: float) -> Callable[[Any], Check]:
    """Max wrapped phase difference against `ref`."""
    ref = np.asarray(ref, np.float64)

    def check(out) -> Check:
        out = np.asarray(out, np.float64)
        if out.shape != ref.shape:
            return Check(f"shape {out.shape} vs {ref.shape}", math.inf, tol, False)
        if not np.all(np.isfinite(out)):
            return Check("max |dtheta| (non-finite)", math.inf, tol, False)
        err = float(np.max(np.abs(wrapped_diff(out, ref))))
        return Check("max |dtheta|", err, tol, err <= tol)

    return check


def update_check(
    ref_loss: float, ref_update: dict, loss_tol: float, update_tol: float, *,
    relative_loss: bool = False,
) -> Callable[[Any], Check]:
    """A training step's `(loss, update)` against the reference's: the loss within
    `loss_tol` (absolute, or relative with `relative_loss=True`), then the largest
    relative error of any parameter's update (new minus old) within `update_tol`."""

    def check(out) -> Check:
        loss, update = out
        loss = float(loss)
        if not math.isfinite(loss):
            return Check("loss (non-finite)", math.inf, loss_tol, False)
        dl = abs(loss - ref_loss)
        if relative_loss:
            dl /= abs(ref_loss)
        if dl > loss_tol:
            name = "|loss - kuralab's| (rel.)" if relative_loss else "|loss - kuralab's|"
            return Check(name, dl, loss_tol, False)
        err = max(
            float(np.linalg.norm(update[k] - ref_update[k])
                  / max(np.linalg.norm(ref_update[k]), 1e-30))
            for k in ref_update
        )
        return Check("update rel. error vs kuralab", err, update_tol, err <= update_tol)

    return check


def discretisation_check(fine, coarse, tol: float = 1e-6) -> Check:
    """The float64 reference against itself at half the step (its own error)."""
    err = float(np.max(np.abs(wrapped_diff(fine, coarse))))
    return Check("ref vs dt/2", err, tol, err <= tol)


def order_parameter(theta, axis=-1) -> np.ndarray:
    z = np.mean(np.exp(1j * np.asarray(theta, np.float64)), axis=axis)
    return np.abs(z)


# ---------------------------------------------------------------------------------
# NumPy integrators (baselines and float64 references)
# ---------------------------------------------------------------------------------


def dense_rhs(omega, K):
    """f(theta) = omega + cos(th) (K sin th) - sin(th) (K cos th); th (N,) or (N, B)."""
    def f(th):
        s, c = np.sin(th), np.cos(th)
        o = omega if th.ndim == 1 else omega[:, None]
        return o + c * (K @ s) - s * (K @ c)

    return f


def meanfield_rhs(omega, K):
    """Mean-field K/N; th (N,) or (B, N) with K scalar or (B, 1)."""
    def f(th):
        s, c = np.sin(th), np.cos(th)
        ms = s.mean(axis=-1, keepdims=True)
        mc = c.mean(axis=-1, keepdims=True)
        return omega + K * (c * ms - s * mc)

    return f


def rk4(f, y0, dt, steps):
    dt = y0.dtype.type(dt)
    half = y0.dtype.type(0.5) * dt
    sixth = dt / y0.dtype.type(6)
    y = y0.copy()
    for _ in range(steps):
        k1 = f(y)
        k2 = f(y + half * k1)
        k3 = f(y + half * k2)
        k4 = f(y + dt * k3)
        y = y + sixth * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


# ---------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------


def loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    import platform

    return platform.processor() or platform.machine()


SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
              "avx512_fp16", "amx_tile", "sve", "asimd")


def simd_flags() -> str:
    """The vector extensions /proc/cpuinfo lists (x86 `flags`, ARM `Features`), and the
    XLA_FLAGS the run uses (`--xla_cpu_prefer_vector_width` changes XLA's target)."""
    found = set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    found = set(line.split(":", 1)[1].split())
                    break
    except OSError:  # pragma: no cover
        pass
    have = [f for f in SIMD_FLAGS if f in found] or ["unknown"]
    xla = os.environ.get("XLA_FLAGS", "")
    return " ".join(have) + (f"; XLA_FLAGS={xla}" if xla else "; XLA_FLAGS unset")


def fmt_s(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.2f}"
    if x >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2e}"


def fmt_g(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}g}"
