r"""Estimating the critical coupling $K_c$ from a coupling sweep, with an uncertainty.

`estimate_critical_coupling` turns R(K) measured over several seeds (a `kuralab run`
result, or plain arrays) into an estimate of $K_c$, a bootstrap standard error over
seeds, a goodness of fit, and, where the infinite-$N$ value is known
(`kl.theory.critical_coupling`, `kl.theory.noisy_critical_coupling`), the deviation
from it in standard errors.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import jax
import numpy as np

from ._custom_types import GridLike, Key, SeedSweepLike

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["METHODS", "CriticalCouplingEstimate", "estimate_critical_coupling"]

#: The estimators `estimate_critical_coupling` knows.
METHODS = ("onset", "fluctuation", "susceptibility")

#: Onset window: seed-mean R in [max(ONSET_R[0], ONSET_FLOOR N^-1/4), ONSET_R[1]].
ONSET_R = (0.2, 0.5)
ONSET_FLOOR = 1.5
#: Fluctuation window: N <R^2> <= min(INCOHERENT_NR2, sqrt(N) / 4).
INCOHERENT_NR2 = 6.25

_OBSERVABLES = {
    "onset": "R^2",
    "fluctuation": "1/(N<R^2>)",
    "susceptibility": "N var_t(R)",
}


@dataclasses.dataclass(frozen=True)
class CriticalCouplingEstimate:
    r"""Result of `kl.estimate_critical_coupling`.

    **Attributes:**

    - `K_c`: the estimate of the critical coupling.
    - `stderr`: its standard error (bootstrap over seeds).
    - `method`: `"onset"`, `"fluctuation"` or `"susceptibility"`.
    - `fit_quality`: reduced $\chi^2$ of the fit on the points used, with each point's
      seed-to-seed standard error (from the same bootstrap): about 1 when the model
      describes the data within their scatter; much larger flags curvature or
      finite-size rounding inside the window. NaN when it is undefined (fewer than 3
      points, or the `"susceptibility"` method's 3-point parabola). The points are
      treated as independent: in a study, where a seed's runs share their random
      numbers across K, the seed-to-seed scatter mostly shifts the whole curve, and
      values well below 1 are usual.
    - `K`: the couplings of the sweep, ascending.
    - `observable`: the quantity fitted at every `K` (`observable_name`): $\bar R^2$
      (onset), $1/(N\langle R^2\rangle)$ (fluctuation) or
      $\chi = N\,\overline{\mathrm{var}_t R}$ (susceptibility); NaN where undefined.
    - `observable_name`: `"R^2"`, `"1/(N<R^2>)"` or `"N var_t(R)"`.
    - `used`: bool mask over `K`, the points that entered the fit.
    - `amplitude`: the fitted amplitude ($a$, $b$ or $\chi_{\max}$; see the methods).
    - `curvature`: the parabola's $\chi''/2$ (susceptibility only; NaN otherwise).
    - `samples`: the bootstrap estimates of $K_c$ (NaN-free), e.g. for intervals.
    - `n`: the number of oscillators used (None if unknown).
    - `seeds`: the number of seeds $S$.
    - `theory`: the infinite-$N$ $K_c$ compared with, or None.
    - `deviation`: `(K_c - theory) / stderr`, or None.
    """

    K_c: float
    stderr: float
    method: str
    fit_quality: float
    K: np.ndarray
    observable: np.ndarray
    observable_name: str
    used: np.ndarray
    amplitude: float
    curvature: float
    samples: np.ndarray
    n: int | None
    seeds: int
    theory: float | None
    deviation: float | None

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """A `level` confidence interval, `K_c` ± t `stderr` with the Student-t
        quantile for `seeds` - 1 degrees of freedom (the standard error is itself
        estimated from the seeds: with 3 seeds, 95% needs ±4.3 SE, not ±2)."""
        from scipy import stats

        if not 0 < level < 1:
            raise ValueError(f"`level` must lie in (0, 1); got {level!r}")
        t = float(stats.t.ppf(0.5 + 0.5 * level, self.seeds - 1))
        return self.K_c - t * self.stderr, self.K_c + t * self.stderr

    def fitted(self, K) -> np.ndarray:
        """The fitted model of `observable` at couplings `K` (for plotting)."""
        K = np.asarray(K, dtype=np.float64)
        if self.method == "onset":
            return self.amplitude * (1.0 - self.K_c / K)
        if self.method == "fluctuation":
            return self.amplitude * (1.0 - K / self.K_c)
        return self.amplitude + self.curvature * (K - self.K_c) ** 2

    def __str__(self) -> str:
        text = (
            f"K_c = {self.K_c:.5g} ± {self.stderr:.2g} ({self.method}, "
            f"{int(self.used.sum())} points, reduced chi^2 {self.fit_quality:.3g})"
        )
        if self.theory is not None:
            text += (
                f"; theory {self.theory:.5g}, deviation {self.deviation:+.2f} SE "
                f"({(self.K_c - self.theory) / self.theory:+.2%})"
            )
        return text


def estimate_critical_coupling(
    R: xr.Dataset | xr.DataArray | SeedSweepLike,
    K: GridLike | None = None,
    *,
    n: int | None = None,
    R_std: xr.DataArray | SeedSweepLike | None = None,
    method: str = "onset",
    window: tuple[float, float] | None = None,
    theory: float | None = None,
    num_bootstrap: int = 1000,
    key: Key | int = 0,
) -> CriticalCouplingEstimate:
    r"""Estimate the critical coupling $K_c$ from a sweep of the order parameter.

    The data are the time-averaged order parameter $R$ of independent runs at each
    coupling $K$ and seed. Each method fits the seed means with a law that holds on
    one side of $K_c$, on a window of couplings chosen from the data (or given):

    - `"onset"` (default): the supercritical square-root law above $K_c$, written as
      $$\bar R^2 = a\,(1 - K_c/K),$$
      i.e. $R^2 \propto K - K_c$ to leading order, in the form that is exact for a
      Lorentzian $g$ ($R^2 = 1 - 2\gamma/K$) and, for a Gaussian $g$ or identical noisy
      oscillators, has about a third of the curvature bias of a straight line in $K$
      (0.2–0.4% of $K_c$, low, on the default window). Window: the points with
      $\max(0.2, 1.5N^{-1/4}) \le \bar R \le 0.5$ (0.2 when `n` is unknown), above
      finite-size rounding ($R \sim N^{-1/4}$ at $K_c$) and below saturation. A
      first-order transition (uniform $g$) has no such branch.
    - `"fluctuation"`: below $K_c$ a finite population fluctuates about incoherence
      with $N\langle R^2\rangle = 1/[b\,(1 - K/K_c)]$ (mean-field susceptibility
      exponent 1; $b = 1$ for identical noisy oscillators, where $Z$ is a Gaussian
      Ornstein--Uhlenbeck process), so $1/(N\langle R^2\rangle) = b\,(1 - K/K_c)$ is
      a straight line vanishing at $K_c$. $\langle R^2\rangle = \bar R^2 +$ `R_std`$^2$
      per run when the time standard deviation `R_std` is available (a study
      Dataset has it), else the Rayleigh relation $4\bar R^2/\pi$. Window: the points
      with $N\langle R^2\rangle \le \min(6.25, \sqrt N/4)$, deep enough below $K_c$
      ($1 - K/K_c \gtrsim \max(0.16, 4/\sqrt N)$) to avoid the finite-size crossover
      $|1 - K/K_c| \sim N^{-1/2}$. Needs `n`.
    - `"susceptibility"`: the location of the peak of
      $\chi = N\,\overline{\mathrm{var}_t R}$ (seed mean of `R_std`$^2$), refined by
      the parabola through the largest value and its two neighbours. This is the
      finite-size pseudo-critical coupling, above the infinite-$N$ $K_c$ by
      $O(N^{-1/2})$, and no finer than the $K$ grid allows: expect a deviation from
      theory. Needs `n` and `R_std`.

    **Uncertainty.** `stderr` is the bootstrap standard deviation of the estimate over
    `num_bootstrap` resamples of the seeds, drawn with replacement *jointly for every
    K* (a seed's runs at different couplings share its frequencies, initial phases
    and noise in a study, so they are resampled together), times $\sqrt{S/(S-1)}$ for
    $S$ seeds (the bootstrap's small-sample bias of a variance). The fit window is
    fixed from the full data. The standard error is itself estimated from $S$ seeds,
    so the error in units of it is roughly Student-$t$ with $S - 1$ degrees of
    freedom: ±2 `stderr` covers ~95% of cases only with $S \gtrsim 10$ seeds (~82%
    with 3); `CriticalCouplingEstimate.interval(level)` uses the $t$ quantile.

    **Arguments:**

    - `R`: the time-averaged order parameter. An `xarray.Dataset` with variable `"R"`
      (a `kuralab run` result: dims `(K, seed)`, attributes `n`, `distribution`,
      `scale`, `D`, ...; its `"R_std"` is used as `R_std`), an `xarray.DataArray`
      with dims `K` and `seed` (a `time` dimension is averaged over: select the
      stationary window first), or an array of shape `(len(K), seeds)`.
    - `K`: the couplings, only with a plain array `R`.
    - `n`: the number of oscillators (default: the `n` attribute).
    - `R_std`: the time standard deviation of $R$ in each run, same shape as `R`
      (default: the Dataset's `R_std`, or the `time` spread of a DataArray).
    - `method`: `"onset"`, `"fluctuation"` or `"susceptibility"`.
    - `window`: `(K_lo, K_hi)`: fit every point with `K_lo <= K <= K_hi` instead of
      the method's default window.
    - `theory`: the infinite-$N$ $K_c$ to compare with. Default: computed from the
      attributes when they describe a mean-field model without lag or delays —
      `distribution` `"identical"` with noise `D` gives $2D$; `"lorentzian"`,
      `"gaussian"` or `"uniform"` with `scale` give `kl.theory.critical_coupling`
      (`kl.theory.noisy_critical_coupling` with a noise `D`); otherwise None.
    - `num_bootstrap`: number of bootstrap resamples (>= 10).
    - `key`: a JAX PRNG key or an int seed for the bootstrap (deterministic).

    **Returns:** a `kl.CriticalCouplingEstimate`.

    **Raises:** `ValueError` naming the argument for a sweep without a `K` dimension,
    fewer than 2 seeds, non-finite values, $R \approx 0$ everywhere, an unknown
    `method`, a missing `n`/`R_std`, or fewer than 2 points in the fit window.

    !!! Example

        ```python
        ds = kl.io.load("data/runs/noisy_critical_coupling.nc")
        est = kl.estimate_critical_coupling(ds, method="onset")
        print(est)  # K_c = ... ± ... (onset, ...); theory 0.5, deviation ... SE
        ```
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}")
    K, R, R_std, n, attrs = _as_sweep(R, K, R_std, n)
    if method in ("fluctuation", "susceptibility") and n is None:
        raise ValueError(
            f"method {method!r} needs the number of oscillators `n` (pass n=..., or a "
            "Dataset with an `n` attribute)"
        )
    if method == "susceptibility" and R_std is None:
        raise ValueError(
            "method 'susceptibility' needs `R_std`, the time standard deviation of R "
            "in each run (a study Dataset's `R_std`, or a DataArray with `time`)"
        )
    if not (isinstance(num_bootstrap, int | np.integer) and num_bootstrap >= 10):
        raise ValueError(f"`num_bootstrap` must be an int >= 10; got {num_bootstrap!r}")
    if window is not None:
        window = tuple(float(w) for w in window)
        if len(window) != 2 or not window[0] < window[1]:
            raise ValueError(
                f"`window` must be (K_lo, K_hi) with K_lo < K_hi; got {window}"
            )
    if theory is None:
        theory = _theory_from_attrs(attrs)
    elif not (math.isfinite(float(theory)) and float(theory) > 0):
        raise ValueError(f"`theory` must be a finite K_c > 0; got {theory!r}")

    seeds = R.shape[1]
    idx = _bootstrap_indices(key, num_bootstrap, seeds)  # (B, seeds); row 0 = all
    observable = _OBSERVABLE_FNS[method]
    y_all = observable(R, R_std, n, idx)  # (B + 1, nK)
    y = y_all[0]
    used = _window(method, K, R, y, n, window)
    if used.sum() < (3 if method == "susceptibility" else 2):
        raise ValueError(_window_error(method, K, R, y, used, n, window))
    fit = _FITS[method]
    estimates, amplitude, curvature = fit(K, y_all, used)
    K_c = float(estimates[0])
    if not math.isfinite(K_c):
        raise ValueError(
            f"the {method} fit on K = {K[used].tolist()} does not cross zero (no K_c); "
            "check the data or pass `window=`"
        )
    samples = estimates[1:]
    samples = samples[np.isfinite(samples)]
    if samples.size < max(10, num_bootstrap // 2):
        raise ValueError(
            f"the {method} fit failed on most bootstrap resamples of the seeds "
            f"({samples.size} of {num_bootstrap} succeeded); more seeds are needed"
        )
    correction = math.sqrt(seeds / (seeds - 1))
    stderr = float(np.std(samples, ddof=1) * correction)
    sigma_y = np.std(y_all[1:], axis=0, ddof=1) * correction
    fit_quality = _reduced_chi2(method, K, y, sigma_y, used, K_c, amplitude)
    deviation = None
    if theory is not None:
        theory = float(theory)
        deviation = (K_c - theory) / stderr if stderr > 0 else math.nan
    return CriticalCouplingEstimate(
        K_c=K_c,
        stderr=stderr,
        method=method,
        fit_quality=fit_quality,
        K=K,
        observable=y,
        observable_name=_OBSERVABLES[method],
        used=used,
        amplitude=float(amplitude),
        curvature=float(curvature),
        samples=samples,
        n=n,
        seeds=seeds,
        theory=theory,
        deviation=deviation,
    )


# ---------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------


def _as_sweep(R, K, R_std, n):
    """(K ascending, R (nK, seeds), R_std or None, n or None, attrs) as float64."""
    import xarray as xr

    attrs: dict = {}
    if isinstance(R, xr.Dataset):
        if "R" not in R.data_vars:
            raise ValueError(
                "`R`: the Dataset has no variable 'R' (the time-averaged order "
                f"parameter); it has {sorted(map(str, R.data_vars))}"
            )
        attrs = dict(R.attrs)
        if R_std is None and "R_std" in R.data_vars:
            R_std = R["R_std"]
        R = R["R"]
    if isinstance(R, xr.DataArray):
        if K is not None:
            raise ValueError("`K`: pass couplings only with a plain array `R`")
        attrs = attrs or dict(R.attrs)
        if "K" not in R.dims:
            raise ValueError(
                f"`R` must have a 'K' dimension (the coupling sweep); its dims are "
                f"{R.dims}"
            )
        if "seed" not in R.dims:
            raise ValueError(
                "`R` must have a 'seed' dimension with at least 2 seeds (for the "
                f"bootstrap standard error); its dims are {R.dims}"
            )
        if "time" in R.dims:
            if R_std is None:
                R_std = R.std("time")
            R = R.mean("time")
        extra = [d for d in R.dims if d not in ("K", "seed")]
        if extra:
            raise ValueError(
                f"`R` has dimensions {extra} besides 'K' and 'seed'; select one value "
                f"of each first, e.g. R.sel({extra[0]}=...)"
            )
        K = R["K"].values
        R = R.transpose("K", "seed").values
        if isinstance(R_std, xr.DataArray):
            R_std = R_std.transpose("K", "seed", ...).values
    elif K is None:
        raise ValueError(
            "`K`: the couplings are needed with a plain array `R` of shape "
            "(len(K), seeds)"
        )
    K = np.asarray(K, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    if K.ndim != 1 or R.ndim != 2 or R.shape[0] != K.size:
        raise ValueError(
            f"`R` must have shape (len(K), seeds) = ({K.size}, seeds); got {R.shape}"
        )
    if R.shape[1] < 2:
        raise ValueError(
            "`R` needs at least 2 seeds for the bootstrap standard error over seeds; "
            f"got {R.shape[1]}"
        )
    if K.size < 3:
        raise ValueError(f"`K` must have at least 3 couplings; got {K.size}")
    if not np.all(np.isfinite(K)):
        raise ValueError("`K` must be finite")
    if not np.all(np.isfinite(R)):
        raise ValueError("`R` must be finite (it has NaN/inf values)")
    if np.any(R < 0) or np.any(R > 1 + 1e-6):
        raise ValueError("`R` must lie in [0, 1] (an order parameter)")
    if R.mean(axis=1).max() < 1e-6:
        raise ValueError(
            "`R` is ~0 at every coupling (max seed mean "
            f"{R.mean(axis=1).max():.3g}): there is nothing to locate K_c from"
        )
    if R_std is not None:
        R_std = np.asarray(R_std, dtype=np.float64)
        if (
            R_std.shape != R.shape
            or not np.all(np.isfinite(R_std))
            or np.any(R_std < 0)
        ):
            raise ValueError(
                f"`R_std` must be finite, >= 0 and of the shape of `R` {R.shape}; "
                f"got shape {R_std.shape}"
            )
    if n is None and "n" in attrs:
        n = attrs["n"]
    if n is not None:
        if not (float(n) == int(n) and int(n) >= 1):
            raise ValueError(f"`n` must be a positive integer; got {n!r}")
        n = int(n)
    order = np.argsort(K, kind="stable")
    R = R[order]
    R_std = R_std[order] if R_std is not None else None
    return K[order], R, R_std, n, attrs


def _theory_from_attrs(attrs: dict) -> float | None:
    """The infinite-N K_c for a study's attributes, or None when none is known."""
    from . import theory

    if attrs.get("coupling", "mean_field") != "mean_field":
        return None
    if float(attrs.get("lag", 0.0)) != 0.0:
        return None
    if attrs.get("delays", "none") not in ("none", None):
        return None
    distribution = attrs.get("distribution")
    noisy = attrs.get("noise", "additive" if "D" in attrs else "none") == "additive"
    D = float(attrs["D"]) if noisy and "D" in attrs else 0.0
    with jax.enable_x64(True):
        if distribution == "identical":
            return float(theory.noisy_critical_coupling(D)) if D > 0 else None
        if distribution in theory.DISTRIBUTIONS and "scale" in attrs:
            scale = float(attrs["scale"])
            if D > 0:
                return float(theory.noisy_critical_coupling(D, distribution, scale))
            return float(theory.critical_coupling(distribution, scale))
    return None


def _bootstrap_indices(key, num: int, seeds: int) -> np.ndarray:
    """(num + 1, seeds) seed indices: the identity, then resamples with replacement."""
    # NumPy draws (no compilation per shape), seeded by the int or the key's data.
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        entropy = int(key)
    elif isinstance(key, jax.Array) and jax.dtypes.issubdtype(
        key.dtype, jax.dtypes.prng_key
    ):
        entropy = np.asarray(jax.random.key_data(key)).ravel().tolist()
    else:
        raise ValueError(f"`key` must be an int or a JAX PRNG key; got {key!r}")
    draws = np.random.default_rng(entropy).integers(0, seeds, (num, seeds))
    return np.concatenate([np.arange(seeds)[None], draws])


# ---------------------------------------------------------------------------------
# Observables, windows and fits (vectorised over bootstrap resamples)
# ---------------------------------------------------------------------------------


def _onset_observable(R, R_std, n, idx):
    return R[:, idx].mean(axis=-1).T ** 2  # (B, nK): squared seed mean


def _second_moment(R, R_std, idx):
    if R_std is None:
        m2 = 4.0 / math.pi * R**2  # Rayleigh: <R>^2 = pi <R^2> / 4
    else:
        m2 = R**2 + R_std**2
    return m2[:, idx].mean(axis=-1).T


def _fluctuation_observable(R, R_std, n, idx):
    m2 = _second_moment(R, R_std, idx)
    with np.errstate(divide="ignore"):
        return 1.0 / (n * m2)


def _susceptibility_observable(R, R_std, n, idx):
    return n * (R_std**2)[:, idx].mean(axis=-1).T


_OBSERVABLE_FNS = {
    "onset": _onset_observable,
    "fluctuation": _fluctuation_observable,
    "susceptibility": _susceptibility_observable,
}


def _window(method, K, R, y, n, window) -> np.ndarray:
    if window is not None:
        return (K >= window[0]) & (K <= window[1]) & np.isfinite(y)
    if method == "onset":
        lo = ONSET_R[0] if n is None else max(ONSET_R[0], ONSET_FLOOR * n**-0.25)
        Rbar = R.mean(axis=1)
        return (Rbar >= lo) & (Rbar <= ONSET_R[1])
    if method == "fluctuation":
        cap = min(INCOHERENT_NR2, math.sqrt(n) / 4)
        return np.isfinite(y) & (y >= 1.0 / cap)
    return np.ones(K.shape, bool)


def _window_error(method, K, R, y, used, n, window) -> str:
    got = f"{int(used.sum())} point(s)"
    if window is not None:
        return f"`window`={window} contains {got} of K = {K.tolist()}; need at least 2"
    Rbar = np.round(R.mean(axis=1), 4).tolist()
    if method == "onset":
        lo = ONSET_R[0] if n is None else max(ONSET_R[0], ONSET_FLOOR * n**-0.25)
        return (
            f"the onset window {lo:.3g} <= mean R <= {ONSET_R[1]} holds {got}; need at "
            f"least 2 (mean R over seeds: {Rbar} at K = {K.tolist()}). Sweep K more "
            "finely just above K_c, or pass `window=(K_lo, K_hi)`"
        )
    if method == "fluctuation":
        cap = min(INCOHERENT_NR2, math.sqrt(n) / 4)
        return (
            f"the fluctuation window N<R^2> <= {cap:.3g} (incoherent side) holds {got}; "
            f"need at least 2 (mean R over seeds: {Rbar} at K = {K.tolist()}). Sweep "
            "K further below K_c, or pass `window=(K_lo, K_hi)`"
        )
    return f"the susceptibility needs at least 3 couplings; got {got}"


def _ols(x, Y):
    """Least-squares lines Y[b] = intercept[b] + slope[b] x, vectorised over b."""
    xc = x - x.mean()
    slope = (Y - Y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)
    intercept = Y.mean(axis=-1) - slope * x.mean()
    return slope, intercept


def _fit_onset(K, Y, used):
    # R^2 = a - a K_c (1/K): a line in 1/K.
    slope, intercept = _ols(1.0 / K[used], Y[:, used])
    with np.errstate(divide="ignore", invalid="ignore"):
        K_c = np.where(intercept > 0, -slope / intercept, np.nan)
    return K_c, intercept[0], math.nan


def _fit_fluctuation(K, Y, used):
    # 1/(N<R^2>) = b - (b / K_c) K: a line in K.
    slope, intercept = _ols(K[used], Y[:, used])
    with np.errstate(divide="ignore", invalid="ignore"):
        K_c = np.where(slope < 0, -intercept / slope, np.nan)
    return K_c, intercept[0], math.nan


def _fit_susceptibility(K, Y, used):
    k = K[used]
    chi = Y[:, used]
    i = np.argmax(chi, axis=-1)
    interior = (i > 0) & (i < k.size - 1)
    j = np.clip(i, 1, k.size - 2)
    x0, x1, x2 = k[j - 1], k[j], k[j + 1]
    rows = np.arange(chi.shape[0])
    y0, y1, y2 = chi[rows, j - 1], chi[rows, j], chi[rows, j + 1]
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    A = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    B = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denom
    C = y0 - A * x0**2 - B * x0
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(interior & (A < 0), -B / (2 * A), np.nan)
    if not interior[0]:
        edge = "lowest" if i[0] == 0 else "highest"
        raise ValueError(
            f"the susceptibility peaks at the {edge} coupling of the window, "
            f"K = {k[i[0]]:g}: extend the sweep (or `window`) past the peak"
        )
    peak = C[0] - B[0] ** 2 / (4 * A[0])
    return vertex, peak, A[0]


_FITS = {
    "onset": _fit_onset,
    "fluctuation": _fit_fluctuation,
    "susceptibility": _fit_susceptibility,
}


def _reduced_chi2(method, K, y, sigma_y, used, K_c, amplitude) -> float:
    dof = int(used.sum()) - 2
    if method == "susceptibility" or dof < 1:
        return math.nan
    if method == "onset":
        model = amplitude * (1.0 - K_c / K[used])
    else:
        model = amplitude * (1.0 - K[used] / K_c)
    sigma = sigma_y[used]
    if np.any(sigma <= 0):
        return math.nan
    return float(np.sum(((y[used] - model) / sigma) ** 2) / dof)
