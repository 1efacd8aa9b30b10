"""The untrained wave demo's fast version runs end to end: the study writes its netCDF
with provenance, the measured wave numbers match the dispersion relation, and the
analysis script turns the file into a figure. (The full run is not CI.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]



@pytest.mark.slow
def test_dispersion_study_fast_version(run_script, tmp_path):
    nc = tmp_path / "waves_dispersion.nc"
    run_script(ROOT / "studies" / "waves_dispersion.py", "--fast", "--out", nc)
    with xr.open_dataset(nc) as ds:
        assert ds.attrs.get("kuralab_version") or ds.attrs.get("kuralab")
        err = np.abs(np.abs(ds.k) - ds.k_theory) / ds.k_theory
        assert float(err.max()) < 0.01  # wave number within 1% of k(Omega)
        np.testing.assert_allclose(ds.speed, ds.speed_theory.broadcast_like(ds.speed),
                                   rtol=0.01)
        assert np.all(np.sign(ds.k.sel(side="right")) == 1)
        assert np.all(np.sign(ds.k.sel(side="left")) == -1)
        np.testing.assert_allclose(ds.front_speed, ds.group_speed_theory.broadcast_like(
            ds.front_speed), rtol=0.15)
        np.testing.assert_allclose(ds.decay_rate, ds.decay_rate_theory.broadcast_like(
            ds.decay_rate), rtol=0.15)
    png = tmp_path / "waves_dispersion.png"
    table = run_script(ROOT / "analysis" / "waves_dispersion.py", nc, "--out", png)
    assert "max relative |k| error" in table
    assert png.stat().st_size > 1000
