"""The study size estimate (`kuralab._study.limits.estimate`) against XLA's own buffer
assignment of the compiled chunk: the estimate must bound arguments + outputs +
temporaries of `compiled.memory_analysis()` from above, and not by more than 2.5x
(the calibration stated in the module docstring)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kuralab._study import plan
from kuralab._study.limits import estimate
from kuralab._sweep_kernel import _jitted
from kuralab.study import parse_spec

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def _spec_text(name: str) -> str:
    if name == "trajectories":
        text = (STUDIES / "quickstart.toml").read_text()
        return text.replace("trajectories = false", "trajectories = true").replace(
            "n = 2000", "n = 500"
        )
    return (STUDIES / f"{name}.toml").read_text()


def _xla_bytes(spec) -> int:
    g = plan.grid(spec)
    where = plan.chunks(g, spec.output.chunk_size)[0]
    size = plan._group_size(g, spec.output.chunk_size, where.start)
    cfg = plan.kernel_config(spec, n=int(g.n[where.start]))
    index = np.arange(where.start, where.start + size)
    cols = [
        jnp.asarray(g.columns[c][index], dtype=jnp.int32 if c == "seed" else jnp.float32)
        for c in cfg.names
    ]
    key = jax.random.key(0)
    if g.along is None:
        lowered = _jitted("independent").lower(cfg, key, *cols)
    else:
        curve = jnp.asarray(g.curve, dtype=jnp.float32)
        lowered = _jitted("adiabatic").lower(cfg, g.along, curve, key, *cols)
    m = lowered.compile().memory_analysis()
    return (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )


FAST = ["quickstart", "delayed_frequency"]
SLOW = ["trajectories", "noisy_critical_coupling", "sphere_sync", "hysteresis_lag",
        "edge_delay_speed"]


@pytest.mark.parametrize(
    "name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW]
)
def test_chunk_memory_estimate_bounds_xla_buffers(name):
    spec = parse_spec(_spec_text(name))
    est = estimate(spec).chunk_memory
    xla = _xla_bytes(spec)
    assert xla <= est <= 2.5 * xla, (name, est, xla, est / xla)
