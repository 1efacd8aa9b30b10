"""The KuraNet experiments' fast versions: each study script runs end to end with tiny
arguments, writes its netCDF with the expected variables and provenance, and its
analysis script turns that file into a figure. (The full runs are not CI.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--steps", "3", "--train-samples", "200", "--size-n", "150", "--test-graphs", "2"]



@pytest.mark.slow
@pytest.mark.parametrize(
    "study, extra",
    [("kuranet_global", ["--cases", "I,III", "--seeds", "2", "--val-graphs", "2"]), ("kuranet_cluster", ["--datasets", "gmm", "--seeds", "2", "--val-graphs", "2"])],
)
def test_study_fast_version_writes_results_and_figure(run_script, tmp_path, study, extra):
    nc = tmp_path / f"{study}.nc"
    run_script(ROOT / "studies" / f"{study}.py", *FAST, *extra, "--out", nc)
    with xr.open_dataset(nc) as ds:
        assert ds.attrs.get("kuralab_version") or ds.attrs.get("kuralab")
        losses = [v for v in ds.data_vars if "loss" in v]
        assert losses, list(ds.data_vars)
        for v in losses:
            values = ds[v].values
            finite = values[~(values != values)]  # drop NaN padding
            assert finite.size and ((finite >= 0) & (finite <= 1)).all(), v
    png = tmp_path / f"{study}.png"
    run_script(ROOT / "analysis" / f"{study}.py", nc, "--out", png)
    assert png.stat().st_size > 1000
