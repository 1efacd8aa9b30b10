"""The AKOrN Sudoku experiment end to end (slow): the study script with tiny arguments
writes its netCDF with provenance and the expected variables, and the analysis script
turns it into a figure and a table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]



@pytest.mark.slow
def test_sudoku_study_and_figure(run_script, tmp_path):
    nc = tmp_path / "akorn_sudoku.nc"
    run_script(ROOT / "studies" / "akorn_sudoku.py", "--fast", "--channels", "16", "--heads", "2",
         "--train-steps", "20", "--n-train", "200", "--n-test", "6", "--eval-T", "12",
         "--out", nc)
    with xr.open_dataset(nc) as ds:
        assert ds.attrs.get("kuralab_version") or ds.attrs.get("kuralab")
        assert ds.board_acc.dims == ("split", "T", "score", "votes")
        assert list(ds.votes.values) == [1, 16, 64] and list(ds["T"].values) == [8, 12]
        acc = ds.board_acc.values
        assert np.all((acc >= 0) & (acc <= 1))
        assert np.all(np.isfinite(ds.train_loss.values))
        assert ds.run_score.shape == (2, 6, 64)
        assert float(ds.paper_board_acc.sel(paper_case="ood_K4096")) == pytest.approx(0.895)
    png = tmp_path / "fig.png"
    table = run_script(ROOT / "analysis" / "akorn_sudoku.py", nc, "--out", png)
    assert png.stat().st_size > 10_000
    assert "| ood |" in table and "89.5%" in table
