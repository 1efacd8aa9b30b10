"""Slow: the orientation-diffusion study's fast version runs end to end (netCDF with
provenance, finite metrics for both processes) and its analysis script draws the figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kuralab as kl

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_orientation_diffusion_study_fast_version_and_figure(tmp_path):
    out = tmp_path / "od.nc"
    sys.path.insert(0, str(ROOT / "studies"))
    import orientation_diffusion as study

    assert study.main(["--fast", "--datasets", "torus1", "--reverse", "5,20", "--eval", "64",
                       "--out", str(out)]) == 0
    ds = kl.io.load(out)
    assert set(ds.process.values) == {"kuramoto", "isotropic"}
    m = ds.metrics.sel(metric=["moment_error", "mmd"]).values
    assert m.shape == (1, 2, 2, 2) and np.all(np.isfinite(m))
    assert np.all(m[..., 0] >= 0) and np.all(m[..., 0] <= 2)  # moment error of unit phasors
    assert ds.attrs.get("kuralab_version") or ds.attrs.get("kuralab")
    assert ds.attrs["paper_claim"].startswith("Brodatz")
    png = tmp_path / "od.png"
    r = subprocess.run([sys.executable, str(ROOT / "analysis" / "orientation_diffusion.py"), str(out),
                        "--out", str(png)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert png.stat().st_size > 10_000 and "kuramoto" in r.stdout
