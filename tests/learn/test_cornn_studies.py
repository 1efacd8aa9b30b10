"""The wave studies' fast versions: each study script runs end to end with tiny
arguments, writes its netCDF with the expected variables and provenance, and its analysis
script turns that file into a figure. (The full runs are not CI.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]



@pytest.mark.slow
def test_adding_study_fast_version(run_script, tmp_path):
    nc = tmp_path / "adding.nc"
    run_script(ROOT / "studies" / "waves_adding.py", "--length", "30", "--steps", "40",
         "--eval-every", "20", "--test-batch", "100", "--out", nc)
    with xr.open_dataset(nc) as ds:
        assert ds.attrs.get("kuralab_version") or ds.attrs.get("kuralab")
        assert list(ds.sheet.values) == ["coupled", "uncoupled"]
        mse = ds.test_mse.values
        assert np.isfinite(mse).all() and (mse < ds.untrained_mse.values).all()
        assert ds.h_example.shape == (30, 11, 11)
    png = tmp_path / "adding.png"
    table = run_script(ROOT / "analysis" / "waves_adding.py", nc, "--out", png)
    assert "| coupled |" in table and png.stat().st_size > 1000


@pytest.mark.slow
def test_rotation_study_fast_version_next_frame_loss_falls(run_script, tmp_path):
    nc = tmp_path / "rotation.nc"
    run_script(ROOT / "studies" / "waves_rotation.py", "--steps", "30", "--shape", "8,8", "--size", "16",
         "--batch", "8", "--test-sequences", "4", "--eval-every", "10", "--out", nc)
    with xr.open_dataset(nc) as ds:
        assert list(ds.model.values) == ["coupled", "uncoupled", "untrained"]
        for s in ds.sheet.values:
            v = ds.val_nll.sel(sheet=s).values
            v = v[np.isfinite(v)]
            assert v[-1] < v[0]  # next-frame loss falls
        assert (ds.nll.sel(model="coupled").mean() < ds.nll.sel(model="untrained").mean())
        plv = ds.plv.values
        assert ((plv >= 0) & (plv <= 1 + 1e-6)).all()
    png = tmp_path / "rotation.png"
    table = run_script(ROOT / "analysis" / "waves_rotation.py", nc, "--out", png)
    assert "| untrained |" in table and png.stat().st_size > 1000
