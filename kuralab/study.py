"""Studies: declarative TOML specs, validated into a frozen `StudySpec`, run in chunks.

A study is data (DESIGN.md §5). `load_spec(path)` / `parse_spec(text)` turn a TOML file
into a frozen, validated `StudySpec` (see `kuralab/_study/spec.py`; model kinds `"kuramoto"`,
phase oscillators, and `"sphere"`, AKOrN vector oscillators); `run_study(spec)` builds
the sweep grid, runs it in `jax.vmap`-ed chunks (one compilation for all of them), and
writes one netCDF file with `kuralab.io.save`. Every key a spec may hold is documented
in `studies/README.md`.

```toml
[study]
name = "quickstart"

[model]
kind = "kuramoto"
n = 2000
[model.frequencies]
distribution = "lorentzian"
scale = 0.5
[model.coupling]
kind = "mean_field"          # K is swept below

[sweep]
K = { start = 0.5, stop = 4.0, num = 8 }
seeds = 4

[solve]
t1 = 150.0
dt = 0.05
```

Validation rejects unknown keys (suggesting the nearest valid one), wrong types (a bool
is not a number), missing sections or keys, and impossible values, by raising
`SpecError` with a one-line message that names the key path, the value and the expected
form: `solve.dt = -0.1: expected a number > 0`.

Execution is structured grid -> chunks -> per-chunk results -> combined Dataset. The
implementation is the package `kuralab._study` (DESIGN.md §2): `spec` (the frozen
dataclasses and `PARAMETERS`, the one table of sweepable parameters), `parse`
(validation), `plan` (grid, chunks, the per-chunk job, which runs `kl.sweep`'s kernel,
and the combined Dataset), `store` (chunk files, manifest, lock, `--resume`) and `run`
(in-process and Dask backends, progress, `run_study`). This module is the public
namespace (`kuralab.study`).
"""

from __future__ import annotations

from ._study.parse import load_spec as load_spec, parse_spec as parse_spec
from ._study.plan import (
    COORDS as COORDS,
    VARIABLES as VARIABLES,
    run_chunk as run_chunk,
)
from ._study.run import (
    ChunkError as ChunkError,
    ClusterError as ClusterError,
    compile_cache_dir as compile_cache_dir,
    enable_compile_cache as enable_compile_cache,
    run_study as run_study,
)
from ._study.spec import (
    FULL_CIRCLE as FULL_CIRCLE,
    KIND_PARAMETERS as KIND_PARAMETERS,
    PARAMETERS as PARAMETERS,
    SWEEPABLE as SWEEPABLE,
    DelaySpec as DelaySpec,
    FrequencySpec as FrequencySpec,
    InitialPhasesSpec as InitialPhasesSpec,
    KuramotoSpec as KuramotoSpec,
    MeanFieldSpec as MeanFieldSpec,
    NoiseSpec as NoiseSpec,
    ObserveSpec as ObserveSpec,
    OutputSpec as OutputSpec,
    Parameter as Parameter,
    SolveSpec as SolveSpec,
    SpecError as SpecError,
    SphereSpec as SphereSpec,
    StimulusSpec as StimulusSpec,
    StudyInfo as StudyInfo,
    StudySpec as StudySpec,
    SweepSpec as SweepSpec,
)
from ._study.store import ChunkStoreError as ChunkStoreError, chunk_dir as chunk_dir

__all__ = [
    "SpecError",
    "ChunkStoreError",
    "ClusterError",
    "ChunkError",
    "StudySpec",
    "StudyInfo",
    "KuramotoSpec",
    "SphereSpec",
    "StimulusSpec",
    "FrequencySpec",
    "MeanFieldSpec",
    "NoiseSpec",
    "DelaySpec",
    "InitialPhasesSpec",
    "SweepSpec",
    "SolveSpec",
    "ObserveSpec",
    "OutputSpec",
    "load_spec",
    "parse_spec",
    "run_study",
    "run_chunk",
    "compile_cache_dir",
    "enable_compile_cache",
]
