"""The `ds.kura` accessor: domain methods on kuralab Datasets (order parameter, plots)."""

from __future__ import annotations

import math
import numbers

import numpy as np
import xarray as xr

from . import _names as names


@xr.register_dataset_accessor("kura")
class KuraAccessor:
    """kuralab methods on any Dataset: `ds.kura.R()`, `ds.kura.plot()`, ...

    Registered when `kuralab` is imported.
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def _theta(self) -> xr.DataArray | None:
        ds = self._ds
        if names.THETA in ds.variables:
            theta = ds[names.THETA]
            if names.OSC not in theta.dims:
                raise ValueError(
                    f"`{names.THETA}` must have an {names.OSC!r} dimension; got dims "
                    f"{theta.dims}"
                )
            return theta
        return None

    def order_parameter(self, moment: int = 1) -> xr.DataArray:
        """The complex order parameter `Z = mean_osc exp(i moment theta)`.

        **Arguments:**

        - `moment`: the (Daido) moment, a nonzero integer (default 1).

        **Returns:** a complex DataArray with the dims of `theta` without `osc`, named
        `Z` (`Z<moment>` for moment != 1). Without `theta`, a stored `Z` is returned for
        moment 1.
        """
        if (
            isinstance(moment, bool)
            or not isinstance(moment, numbers.Integral)
            or moment == 0
        ):
            raise TypeError(f"`moment` must be a nonzero integer; got {moment!r}")
        theta = self._theta()
        if theta is None:
            if moment == 1 and names.Z in self._ds.variables:
                return self._ds[names.Z]
            raise ValueError(
                f"order_parameter needs a {names.THETA!r} variable (or a stored "
                f"{names.Z!r} for moment 1); the Dataset has {list(self._ds.data_vars)}"
            )
        values = np.asarray(theta.values)
        ctype = np.complex64 if values.dtype == np.float32 else np.complex128
        axis = theta.dims.index(names.OSC)
        z = np.exp(1j * int(moment) * values.astype(np.float64)).mean(axis=axis)
        dims = tuple(d for d in theta.dims if d != names.OSC)
        coords = {k: v for k, v in theta.coords.items() if names.OSC not in v.dims}
        name = names.Z if moment == 1 else f"{names.Z}{int(moment)}"
        long_name = (
            "complex order parameter mean(exp(i theta))"
            if moment == 1
            else (f"complex order parameter mean(exp({int(moment)} i theta))")
        )
        return xr.DataArray(
            z.astype(ctype),
            dims=dims,
            coords=coords,
            name=name,
            attrs={"units": "1", "long_name": long_name},
        )

    def R(self) -> xr.DataArray:
        """The order parameter magnitude `R = |Z|`.

        Computed from `theta`; without it, a stored `R` (or `|Z|` of a stored `Z`).
        """
        theta = self._theta()
        if theta is None:
            if names.R in self._ds.variables:
                return self._ds[names.R]
            if names.Z in self._ds.variables:
                r = np.abs(self._ds[names.Z])
            else:
                raise ValueError(
                    f"R needs a {names.THETA!r}, {names.R!r} or {names.Z!r} variable; "
                    f"the Dataset has {list(self._ds.data_vars)}"
                )
        else:
            r = np.abs(self.order_parameter(1))
        units, long_name = names.UNITS[names.R]
        return r.rename(names.R).assign_attrs(units=units, long_name=long_name)

    def unwrapped(self) -> xr.DataArray:
        """Unwrapped phases `theta + 2 pi turns`, computed in float64."""
        ds = self._ds
        if names.THETA not in ds.variables or names.TURNS not in ds.variables:
            raise ValueError(
                f"unwrapped() needs {names.THETA!r} and {names.TURNS!r} variables; the "
                f"Dataset has {list(ds.data_vars)}"
            )
        out = ds[names.THETA].astype(np.float64) + 2 * math.pi * ds[names.TURNS].astype(
            np.float64
        )
        return out.rename("theta_unwrapped").assign_attrs(
            units="rad", long_name="unwrapped oscillator phase theta + 2 pi turns"
        )

    def plot(self, ax=None, **kwargs):
        """Plot the Dataset and return the matplotlib Axes.

        Trajectories (a `time` dimension): R(t), one line per batch element
        (`kuralab.plot.plot_order_parameter`). Sweep results (an `R` variable, no
        `time`): R against the swept coordinate, mean ± std over `seed`
        (`kuralab.plot.plot_sweep`). `kwargs` go to that function.
        """
        from . import plot as _plot

        ds = self._ds
        # A sweep result (R without time, possibly beside an R(t) series) first.
        if names.R in ds.variables and names.TIME not in ds[names.R].dims:
            return _plot.plot_sweep(ds, ax=ax, **kwargs)
        if names.TIME in ds.dims and (
            names.THETA in ds.variables
            or names.R in ds.variables
            or names.Z in ds.variables
        ):
            return _plot.plot_order_parameter(ds, ax=ax, **kwargs)
        raise ValueError(
            "ds.kura.plot() needs a trajectory (a `time` dimension with `theta`, `R` "
            "or `Z`) or a sweep result (an `R` variable without `time`); the Dataset "
            f"has dims {dict(ds.sizes)} and variables {list(ds.data_vars)}"
        )
