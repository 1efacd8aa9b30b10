"""Quick-look figures of kuralab Datasets (matplotlib, imported lazily).

- `plot_order_parameter(ds)`: R(t), one line per batch element.
- `plot_raster(ds)`: phases over time × oscillator, cyclic colormap.
- `plot_sweep(ds, x=...)`: R (or any variable) against a swept coordinate, mean ± std
  over `seed`.
- `plot_study(ds, var=, x=, hue=)`: a study result with per-kind defaults and the
  `kl.theory` overlay (`kuralab plot`; `kuralab/_plot_study.py`).
- `save_figure(fig, path)`: atomic writer; PNG, PDF or SVG by the path's extension.

Each function takes an optional matplotlib `ax` and returns the Axes it drew on. Axes
are labelled from the variables' `long_name` and `units`. Without a display,
matplotlib is switched to the non-interactive Agg backend (unless `MPLBACKEND` says
otherwise); nothing here calls `plt.show()`.
"""

from __future__ import annotations

import os
import pathlib
import sys

import numpy as np
import xarray as xr

from . import _names as names
from ._files import atomic_output
from ._plot_study import _label, plot_study

__all__ = [
    "FORMATS",
    "plot_order_parameter",
    "plot_raster",
    "plot_study",
    "plot_sweep",
    "save_figure",
]

#: Image formats `save_figure` writes, by file extension (matplotlib format names).
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}

#: At most this many batch lines get a legend entry.
_MAX_LEGEND = 10


def _pyplot():
    import matplotlib

    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if (
        headless
        and "matplotlib.pyplot" not in sys.modules
        and not os.environ.get("MPLBACKEND")
    ):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax):
    if ax is not None:
        if not hasattr(ax, "plot") or not hasattr(ax, "figure"):
            raise TypeError(
                f"`ax` must be a matplotlib Axes or None; got {type(ax).__name__}"
            )
        return ax
    plt = _pyplot()
    _, ax = plt.subplots()
    return ax


def _check_ds(ds) -> xr.Dataset:
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"`ds` must be an xarray.Dataset; got {type(ds).__name__}")
    return ds


def _coord_values(ds: xr.Dataset, dim: str) -> np.ndarray:
    if dim in ds.coords:
        return np.asarray(ds[dim].values)
    return np.arange(ds.sizes[dim])


def _lines(da: xr.DataArray, along: str):
    """Yield `(label, 1-D values)` for every combination of dims other than `along`."""
    others = [d for d in da.dims if d != along]
    if not others:
        yield None, np.asarray(da.values)
        return
    stacked = da.transpose(*others, along).stack(_line=others)
    for i in range(stacked.sizes["_line"]):
        line = stacked.isel(_line=i)
        label = ", ".join(
            f"{d}={line[d].values.item() if d in line.coords else idx}"
            for d, idx in zip(
                others, np.unravel_index(i, [da.sizes[d] for d in others]), strict=True
            )
        )
        yield label, np.asarray(line.values)


def plot_order_parameter(ds: xr.Dataset, ax=None, **kwargs):
    """Plot the order parameter R(t); one line per batch element if batched.

    **Arguments:**

    - `ds`: a trajectory Dataset with `theta` (or a stored `R` / `Z`) over `time`.
    - `ax`: matplotlib Axes to draw on (default: a new figure).
    - `kwargs`: passed to `Axes.plot`.

    **Returns:** the Axes.
    """
    ds = _check_ds(ds)
    r = ds.kura.R()
    if names.TIME not in r.dims:
        raise ValueError(
            f"plot_order_parameter needs R over {names.TIME!r}; R has dims {r.dims} "
            "(for sweep results use plot_sweep)"
        )
    ax = _axes(ax)
    t = _coord_values(ds, names.TIME)
    n_lines = 0
    for label, values in _lines(r, names.TIME):
        ax.plot(t, values, label=label, **kwargs)
        n_lines += 1
    if 1 < n_lines <= _MAX_LEGEND:
        ax.legend(fontsize="small")
    time_obj = ds[names.TIME] if names.TIME in ds.variables else None
    ax.set_xlabel(_label(time_obj, names.TIME))
    ax.set_ylabel(_label(r, names.R))
    ax.set_ylim(0.0, 1.05)
    return ax


def plot_raster(
    ds: xr.Dataset, ax=None, *, cmap: str = "twilight", colorbar: bool = True
):
    """Phase raster: `theta` as an image over time (x) and oscillator (y).

    **Arguments:**

    - `ds`: a Dataset whose `theta` has exactly the dims `time` and `osc` (select one
      batch element first, e.g. `ds.isel(seed=0)`).
    - `ax`: matplotlib Axes (default: a new figure).
    - `cmap`: a cyclic colormap (default `"twilight"`), fixed to [-pi, pi).
    - `colorbar`: add a colorbar (default True).

    **Returns:** the Axes.
    """
    ds = _check_ds(ds)
    if names.THETA not in ds.variables:
        raise ValueError(
            f"plot_raster needs a {names.THETA!r} variable; the Dataset has "
            f"{list(ds.data_vars)}"
        )
    theta = ds[names.THETA]
    if set(theta.dims) != {names.TIME, names.OSC}:
        extra = [d for d in theta.dims if d not in (names.TIME, names.OSC)]
        hint = f", e.g. ds.isel({extra[0]}=0)" if extra else ""
        raise ValueError(
            f"plot_raster needs theta with dims ('time', 'osc'); got {theta.dims}: "
            f"select one batch element first{hint}"
        )
    values = np.asarray(theta.transpose(names.OSC, names.TIME).values)
    t = _coord_values(ds, names.TIME).astype(float)
    osc = np.arange(values.shape[0])
    ax = _axes(ax)
    style = dict(cmap=cmap, vmin=-np.pi, vmax=np.pi)
    steps = np.diff(t)
    uniform = t.size < 2 or np.allclose(steps, steps[0], rtol=1e-6, atol=0.0)
    if uniform:
        half = 0.5 * (steps[0] if t.size > 1 else 1.0)
        image = ax.imshow(
            values,
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            extent=(t[0] - half, t[-1] + half, -0.5, values.shape[0] - 0.5),
            **style,
        )
    else:  # non-uniform save times (adaptive runs): cells at the true times
        image = ax.pcolormesh(t, osc, values, shading="nearest", **style)
    if colorbar:
        cbar = ax.figure.colorbar(image, ax=ax)
        cbar.set_label(_label(theta, names.THETA))
    time_obj = ds[names.TIME] if names.TIME in ds.variables else None
    ax.set_xlabel(_label(time_obj, names.TIME))
    ax.set_ylabel("oscillator index")
    return ax


def plot_sweep(ds: xr.Dataset, x: str | None = None, y: str = "R", ax=None, **kwargs):
    """Plot `y` against the swept coordinate `x`: mean ± std over `seed` when present.

    **Arguments:**

    - `ds`: a sweep Dataset (e.g. from `kl.sweep`), with variable `y` and no `time` dim.
    - `x`: the swept dimension (default: the first dimension of `y` other than `seed`).
    - `y`: the variable to plot (default `"R"`).
    - `ax`: matplotlib Axes (default: a new figure).
    - `kwargs`: passed to `Axes.plot`.

    Other remaining dimensions give one line each. **Returns:** the Axes.
    """
    ds = _check_ds(ds)
    if not isinstance(y, str):
        raise TypeError(f"`y` must be a variable name (str); got {y!r}")
    if y in ds.variables:
        da = ds[y]
    elif y == names.R:
        da = ds.kura.R()
    else:
        raise ValueError(
            f"`y`={y!r} is not a variable of the Dataset; it has {list(ds.data_vars)}"
        )
    if names.TIME in da.dims:
        raise ValueError(
            f"plot_sweep needs {y!r} without a {names.TIME!r} dimension; select a time "
            f"first, e.g. ds.isel(time=-1), or use plot_order_parameter"
        )
    if da.dtype.kind == "c":
        raise ValueError(
            f"`y`={y!r} is complex; plot its magnitude, e.g. abs(ds[{y!r}])"
        )
    candidates = [d for d in da.dims if d != names.SEED]
    if x is None:
        if not candidates:
            raise ValueError(
                f"{y!r} has no swept dimension to plot against (dims {da.dims})"
            )
        x = candidates[0]
    elif x not in candidates:
        raise ValueError(
            f"`x`={x!r} is not a swept dimension of {y!r}; expected one of {candidates}"
        )
    ax = _axes(ax)
    xs = _coord_values(ds, x)
    has_seed = names.SEED in da.dims
    mean = da.mean(names.SEED) if has_seed else da
    std = da.std(names.SEED) if has_seed else None
    n_lines = 0
    spread = dict(_lines(std, x)) if std is not None else {}
    for label, values in _lines(mean, x):
        (line,) = ax.plot(xs, values, marker="o", label=label, **kwargs)
        if std is not None:
            s = spread[label]
            ax.fill_between(
                xs, values - s, values + s, color=line.get_color(), alpha=0.25
            )
        n_lines += 1
    if 1 < n_lines <= _MAX_LEGEND:
        ax.legend(fontsize="small")
    x_obj = ds[x] if x in ds.variables else None
    ax.set_xlabel(_label(x_obj, x))
    ylabel = _label(da, y)
    if has_seed:
        ylabel += f" (mean ± std over {da.sizes[names.SEED]} seeds)"
    ax.set_ylabel(ylabel)
    return ax


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 150) -> pathlib.Path:
    """Write `fig` (a Figure, or an Axes' figure) atomically; return the path.

    The format follows the extension (`FORMATS`: `.png`, `.pdf`, `.svg`; anything
    else is a ValueError, so the bytes always match the name). Parent directories are
    created; on error no partial file is left.
    """
    if not hasattr(fig, "savefig"):
        fig = getattr(fig, "figure", fig)  # an Axes
    if not hasattr(fig, "savefig"):
        raise TypeError(
            f"`fig` must be a matplotlib Figure or Axes; got {type(fig).__name__}"
        )
    target = pathlib.Path(path) if isinstance(path, str | os.PathLike) else None
    if target is None:
        raise TypeError(
            f"`path` must be a str or os.PathLike; got {type(path).__name__}"
        )
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"`path` = {str(target)!r}: expected an image path ending in "
            + ", ".join(FORMATS)
        )
    with atomic_output(target) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return target
