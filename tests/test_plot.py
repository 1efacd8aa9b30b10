"""kuralab.plot: order parameter, raster and sweep figures; atomic PNG writes."""

import sys

import numpy as np
import pytest
import xarray as xr

import kuralab as kl  # noqa: F401  (registers the ds.kura accessor)
from kuralab import _names
from kuralab.plot import plot_order_parameter, plot_raster, plot_sweep, save_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def _trajectory(times=None, batch=None):
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 11) if times is None else np.asarray(times)
    shape = ((batch,) if batch else ()) + (t.size, 5)
    dims = (("seed",) if batch else ()) + ("time", "osc")
    theta = rng.uniform(-np.pi, np.pi, shape).astype(np.float32)
    units, long_name = _names.UNITS["theta"]
    t_units, t_long = _names.UNITS["time"]
    return xr.Dataset(
        {"theta": (dims, theta, {"units": units, "long_name": long_name})},
        coords={"time": ("time", t, {"units": t_units, "long_name": t_long})},
    )


def test_plot_order_parameter_lines_and_labels():
    ds = _trajectory(batch=4)
    ax = plot_order_parameter(ds)
    assert len(ax.lines) == 4
    np.testing.assert_allclose(
        ax.lines[2].get_ydata(),
        np.abs(np.exp(1j * ds["theta"].values[2].astype(float)).mean(-1)),
        rtol=1e-6,
    )
    assert ax.get_xlabel() == _names.UNITS["time"][1]
    assert ax.get_ylabel() == _names.UNITS["R"][1]
    assert ax.get_legend() is not None


def test_plot_raster_uses_cyclic_colormap():
    ds = _trajectory()
    ax = plot_raster(ds)
    (image,) = ax.images
    assert image.get_cmap().name == "twilight"
    assert image.get_clim() == (-np.pi, np.pi)
    assert image.get_array().shape == (5, 11)  # osc on y, time on x
    assert "rad" in ax.figure.axes[-1].get_ylabel()  # colorbar label with units


def test_plot_raster_nonuniform_times_and_errors():
    ds = _trajectory(times=[0.0, 0.1, 0.5, 2.0])
    ax = plot_raster(ds, colorbar=False)
    assert not ax.images and len(ax.collections) == 1
    with pytest.raises(ValueError, match=r"ds\.isel\(seed=0\)"):
        plot_raster(_trajectory(batch=2))
    with pytest.raises(ValueError, match="needs a 'theta'"):
        plot_raster(xr.Dataset({"R": ("time", [1.0])}))
    with pytest.raises(TypeError, match="`ds`"):
        plot_raster(np.zeros((3, 3)))


def _sweep():
    rng = np.random.default_rng(1)
    return xr.Dataset(
        {
            "R": (
                ("N", "K", "seed"),
                rng.random((2, 4, 5)),
                {"units": "1", "long_name": "R"},
            )
        },
        coords={
            "K": ("K", [0.5, 1.0, 1.5, 2.0], {"units": "1", "long_name": "coupling K"}),
            "N": [10, 20],
        },
    )


def test_plot_sweep_mean_std_over_seed():
    ds = _sweep()
    ax = plot_sweep(ds, x="K")
    assert len(ax.lines) == 2  # one per N
    mean = ds["R"].mean("seed").sel(N=20).values
    np.testing.assert_allclose(ax.lines[1].get_xdata(), ds["K"])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), mean)
    assert len(ax.collections) == 2  # the ± std bands
    assert ax.get_xlabel() == "coupling K"
    assert "5 seeds" in ax.get_ylabel()
    ax = plot_sweep(ds)  # default x: first non-seed dim
    np.testing.assert_allclose(ax.lines[0].get_xdata(), ds["N"])
    with pytest.raises(ValueError, match="`x`='seed'"):
        plot_sweep(ds, x="seed")
    with pytest.raises(ValueError, match="isel\\(time=-1\\)"):
        plot_sweep(_trajectory(), y="theta")


def test_save_figure_atomic(tmp_path, monkeypatch):
    ax = plot_order_parameter(_trajectory())
    path = save_figure(ax.figure, tmp_path / "figs" / "r.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    original = path.read_bytes()

    def broken(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG partial")
        raise RuntimeError("renderer crashed (simulated)")

    monkeypatch.setattr(type(ax.figure), "savefig", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        save_figure(ax, path)
    assert path.read_bytes() == original
    assert [p.name for p in path.parent.iterdir()] == ["r.png"]
