"""`plot_study`: the figure of a study result (`kuralab plot`), with per-kind defaults
and the `kl.theory` curve where one exists for the spec.

Defaults (each overridable by `var`, `x`, `hue`):

- **adiabatic** ramps (`mode = "adiabatic"`): `var` against the ramped parameter,
  `hue = "direction"`: two labelled lines, up and down (hysteresis).
- **delay** studies (`delays != "none"`) that stored frequencies: `Omega` against the
  swept parameter (the quantity of interest), and the stable branches of
  `kl.theory.delayed_sync_frequencies` for identical oscillators.
- **size** sweeps (`sweep.n`): `hue = "n"`.
- otherwise `R` against the first swept parameter.

`R` is drawn on `[0, 1.05]` (no offset axis: float32 noise is not a dip); every axis
is plain (no offset). Seeds are averaged: mean ± std band. Dimensions other than
`x`, `hue` and `seed` are fixed at their first value (said in the title). The legend
is placed outside the axes when there is more than one line.

Theory overlays: `R` against `K` for a mean-field phase model without noise, delays
or lag: `kl.theory.order_parameter(K, distribution, scale)` and the critical coupling
`K_c`; with noise of fixed `D`, the noisy `K_c = kl.theory.noisy_critical_coupling(D,
...)` (and for identical oscillators `kl.theory.noisy_order_parameter(K, D)`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import _names as nm

__all__ = ["plot_study", "study_defaults"]

_NOT_X = (nm.SEED, nm.DIRECTION)


def _dims(da: xr.DataArray) -> list[str]:
    return [d for d in da.dims if d not in (nm.SEED, nm.TIME, nm.OSC, nm.DIM)]


def study_defaults(ds: xr.Dataset, var=None, x=None, hue=None) -> tuple[str, str, str | None]:
    """The `(var, x, hue)` `plot_study` uses for `ds` (the given ones are checked)."""
    attrs = ds.attrs
    plottable = [
        name for name, v in ds.data_vars.items()
        if nm.TIME not in v.dims and nm.OSC not in v.dims and v.dtype.kind in "fiu"
        and _dims(v)
    ]
    if var is None:
        delayed = attrs.get("delays", "none") != "none"
        if delayed and nm.OMEGA_EFF in plottable:
            var = nm.OMEGA_EFF
        elif nm.R in plottable:
            var = nm.R
        elif plottable:
            var = plottable[0]
        else:
            raise ValueError(
                "nothing to plot against a swept parameter: the Dataset has no "
                f"variable with a swept dimension (variables {list(ds.data_vars)})"
            )
    elif var not in plottable:
        raise ValueError(
            f"--var {var}: expected a variable with a swept dimension, one of "
            f"{plottable}"
        )
    dims = _dims(ds[var])
    if x is None:
        along = attrs.get("along")
        candidates = [d for d in dims if d not in _NOT_X]
        if along in dims:
            x = along
        elif len(candidates) > 1 and candidates[0] == nm.N:
            x = candidates[1]
        elif candidates:
            x = candidates[0]
        else:
            raise ValueError(f"{var} has no swept dimension to plot against")
    elif x not in dims:
        raise ValueError(f"--x {x}: expected a dimension of {var}, one of {dims}")
    if hue is None:
        rest = [d for d in dims if d != x]
        if nm.DIRECTION in rest:
            hue = nm.DIRECTION
        elif nm.N in rest:
            hue = nm.N
        elif rest:
            hue = rest[0]
    else:
        allowed = [d for d in ds[var].dims if d not in (x, nm.TIME, nm.OSC, nm.DIM)]
        if hue not in allowed:
            raise ValueError(
                f"--hue {hue}: expected a dimension of {var} other than x = {x}, one "
                f"of {allowed}"
            )
    return var, x, hue


def _label(obj, fallback: str) -> str:
    """`long_name [units]` (units omitted when dimensionless), else `fallback`; the axis
    labels of `kl.plot` and of `plot_study`."""
    attrs = getattr(obj, "attrs", {}) or {}
    text = str(attrs.get("long_name", fallback))
    units = attrs.get("units")
    if units not in (None, "", "1"):
        text += f" [{units}]"
    return text


def _theory(ds: xr.Dataset, var: str, x: str, fixed: dict, ax) -> list[str]:
    """Draw the `kl.theory` curve for this spec, if there is one; return its labels."""
    a = ds.attrs
    if a.get("model") != "kuramoto" or a.get("coupling", "mean_field") != "mean_field":
        return []
    dist = str(a.get("distribution", ""))
    scale = a.get("scale")
    xs = np.asarray(ds[x].values, dtype=np.float64)
    lo, hi = float(xs.min()), float(xs.max())
    fine = np.linspace(lo, hi, 400)
    drawn = []
    from . import theory

    def value(name):
        if name in fixed:
            return float(fixed[name])
        if name in a:
            return float(a[name])
        return None

    noisy = a.get("noise", "none") != "none"
    delayed = a.get("delays", "none") != "none"
    if var == nm.R and x == "K" and not delayed and value("lag") in (0.0, None):
        if not noisy and dist in ("lorentzian", "gaussian", "uniform"):
            r = np.asarray(theory.order_parameter(fine, distribution=dist, scale=scale))
            ax.plot(fine, r, color="0.2", lw=1.2, label=r"theory, $N\to\infty$")
            kc = float(theory.critical_coupling(dist, scale=scale))
            drawn.append("R_inf(K)")
        elif noisy and value("D") is not None:
            D = value("D")
            kc = float(theory.noisy_critical_coupling(
                D, distribution=dist, scale=1.0 if scale is None else scale
            ))
            if dist == "identical":
                r = np.asarray(theory.noisy_order_parameter(fine, D))
                ax.plot(fine, r, color="0.2", lw=1.2, label=rf"theory, D = {D:g}")
                drawn.append("R_inf(K, D)")
        else:
            return drawn
        if lo <= kc <= hi:
            ax.axvline(kc, color="0.5", lw=0.8, ls=":", label=rf"$K_c$ = {kc:.3g}")
            drawn.append("K_c")
    elif var == nm.OMEGA_EFF and delayed and dist == "identical" and x == "tau":
        K, loc = value("K"), float(a.get("loc", 0.0))
        if K is None:
            return drawn
        taus, omegas = [], []
        for tau in np.linspace(max(lo, 0.0), hi, 200):
            roots, stable = theory.delayed_sync_frequencies(loc, K, float(tau))
            taus += [tau] * int(np.sum(stable))
            omegas += list(np.asarray(roots)[np.asarray(stable)])
        ax.plot(taus, omegas, ".", ms=2, color="0.3",
                label=r"stable $\Omega = \omega - K\sin\Omega\tau$")
        drawn.append("delayed_sync_frequencies")
    return drawn


def plot_study(ds: xr.Dataset, *, var: str | None = None, x: str | None = None,
               hue: str | None = None, theory: bool = True, ax=None):
    """Plot a study result (see the module docstring for the defaults).

    **Arguments:**

    - `ds`: a study Dataset (`kuralab run`) or a `kl.sweep` result.
    - `var`: the variable (default per study kind); `x`: the swept dimension on the
      horizontal axis; `hue`: the dimension giving one labelled line per value.
    - `theory`: overlay the `kl.theory` curve where one exists for the spec.
    - `ax`: matplotlib Axes (default: a new figure, wide enough for the legend).

    **Returns:** the Axes. Its `kuralab_theory` attribute lists the theory drawn.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"`ds` must be an xarray.Dataset; got {type(ds).__name__}")
    var, x, hue = study_defaults(ds, var, x, hue)
    da = ds[var]
    if da.dtype.kind == "b":
        da = da.astype(np.float64)
    fixed = {}
    for d in _dims(da):
        if d not in (x, hue):
            fixed[d] = ds[d].values[0] if d in ds.coords else 0
            da = da.isel({d: 0})
    if ax is None:
        import matplotlib.pyplot as plt  # kuralab.plot chose the backend

        _, ax = plt.subplots(figsize=(7.2, 4.4), layout="constrained")
    elif not hasattr(ax, "plot") or not hasattr(ax, "figure"):
        raise TypeError(f"`ax` must be a matplotlib Axes or None; got {type(ax).__name__}")
    xs = np.asarray(ds[x].values) if x in ds.coords else np.arange(da.sizes[x])
    average = nm.SEED in da.dims and hue != nm.SEED
    seeds = da.sizes.get(nm.SEED, 1) if average else 1
    mean = da.mean(nm.SEED) if average else da
    std = da.std(nm.SEED) if average and seeds > 1 else None
    groups = [(None, None)] if hue is None else [
        (v, {hue: i}) for i, v in enumerate(ds[hue].values if hue in ds.coords
                                            else range(da.sizes[hue]))
    ]
    for value, sel in groups:
        m = mean if sel is None else mean.isel(sel)
        label = None if sel is None else f"{hue} = {value}"
        (line,) = ax.plot(xs, np.asarray(m.transpose(x).values), marker="o", ms=3.5,
                          label=label)
        if std is not None:
            s = np.asarray((std if sel is None else std.isel(sel)).transpose(x).values)
            ax.fill_between(xs, m.values - s, m.values + s, color=line.get_color(),
                            alpha=0.2, lw=0)
    drawn = _theory(ds, var, x, fixed, ax) if theory else []
    ax.set_xlabel(_label(ds[x] if x in ds.variables else None, x))
    ylabel = _label(ds[var], var)
    if seeds > 1:
        ylabel += f"\n(mean ± std over {seeds} seeds)"
    ax.set_ylabel(ylabel)
    if var in (nm.R, nm.LOCKED):
        ax.set_ylim(0.0, 1.05)
    ax.ticklabel_format(axis="both", style="plain", useOffset=False)
    title = str(ds.attrs.get("study", ""))
    if fixed:
        title += " (" + ", ".join(f"{k} = {v}" for k, v in fixed.items()) + ")"
    if title:
        ax.set_title(title)
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small",
                  borderaxespad=0.0)
    ax.grid(alpha=0.3)
    ax.kuralab_theory = drawn
    return ax
