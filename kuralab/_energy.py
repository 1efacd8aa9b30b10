r"""Energies, Lyapunov-theorem hypotheses and numerical Lyapunov checks.

**Vector oscillators (AKOrN).** For $\dot x_i = \Omega_i x_i + P_{x_i}(c_i + \sum_j J_{ij}x_j)$
the energy is

$$E(x) = -\tfrac12 \sum_{ij} x_i^\top J_{ij} x_j - \sum_i c_i^\top x_i .$$

With $\tilde\Omega = \operatorname{blockdiag}(\Omega_i)$, $y = Jx + c$ and $J$ block-symmetric
($J_{ij} = J_{ji}^\top$, i.e. $J = J^\top$ as a `(osc dim)^2` matrix), the chain rule gives
(derived here; checked numerically in the tests)

$$\frac{dE}{dt} = -\sum_i \big|P_{x_i} y_i\big|^2 \;-\; \sum_i c_i^\top \Omega_i x_i
   \;-\; \tfrac12\, x^\top [J, \tilde\Omega]\, x ,\qquad [J,\tilde\Omega] = J\tilde\Omega - \tilde\Omega J .$$

- **Theorem (AKOrN App. F).** If $J_{ij} = J_{ij} I$ with $J$ symmetric, $\Omega_i = \Omega$
  for all $i$ and $\Omega c_i = 0$, then $dE/dt = -\sum_i |P_{x_i} y_i|^2 \le 0$.
- **Theorem (AKOrN App. G).** If $J$ is block-symmetric, $\Omega$ block-diagonal
  antisymmetric, $\Omega_i c_i = 0$ and $[J, \tilde\Omega] \succeq 0$, then $dE/dt \le 0$.
  Constructive case: $J = A \otimes I$, $\tilde\Omega = I \otimes \omega$.

  Note: for symmetric $J$ the commutator is symmetric and has zero trace, so it is positive
  semi-definite **iff it vanishes**: App. G's condition is exactly "$J$ commutes with
  $\tilde\Omega$" (e.g. $J_{ij} = A_{ij} I + B_{ij}\,\omega$ with $A$ symmetric, $B$
  antisymmetric). `check_lyapunov` measures the commutator directly.

  As the AKOrN issues #2/#3 note, with $J_{ij} = J_{ij}I$ and a non-degenerate 2-D
  $\Omega$, $\Omega c = 0$ forces $c = 0$, and the hypotheses reduce the model to
  classic Kuramoto in rotating planes.

Without the hypotheses $E$ can increase (asymmetric $J$; $\Omega c \ne 0$; per-oscillator
$\Omega_i$ with scalar blocks; blocks that do not commute with $\Omega$; attention).

The AKOrN reference code logs $-\sum_i \langle x_i, (Jx)_i + c_i\rangle$ (no ½, no Ω term):
`akorn_logged_energy`. It is $2E + \sum_i c_i^\top x_i$, so it equals $2E$ only when
$c = 0$.

**Phase oscillators.** For $\dot\theta_i = \omega + \sum_j K_{ij}\sin(\theta_j-\theta_i) +
h_i\sin(\psi_i-\theta_i)$ with symmetric $K$, identical $\omega$ (and $\omega = 0$ when
forced), no lag, noise or delays, the flow is a gradient flow of

$$V(\theta) = -\tfrac12\sum_{ij} K_{ij}\cos(\theta_j-\theta_i) - \sum_i h_i\cos(\psi_i-\theta_i),
\qquad \dot V = -\sum_i (\dot\theta_i - \omega)^2 \le 0 .$$

**Dispatch.** Every function here asks the model (`AbstractModel.energy`,
`energy_scale`, `logged_energies`, `lyapunov_hypotheses`; the formulas above live with
the models in `kuralab/_models/`), so a new model with an energy works with no change
here.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from . import _names as names
from ._custom_types import RealLike, Scalar, ScalarLike
from ._integrate import SaveAt, simulate
from ._integrate.options import check_state
from ._models._theorems import relative
from ._models.base import AbstractModel
from ._models.kuramoto import PHASE_HYPOTHESES, Kuramoto
from ._models.sphere import SPHERE_HYPOTHESES, SphereKuramoto

__all__ = [
    "PHASE_HYPOTHESES",
    "SPHERE_HYPOTHESES",
    "akorn_logged_energy",
    "check_lyapunov",
    "energy",
    "lyapunov_hypotheses",
    "phase_potential",
]

MAX_DENSE = 8192


# ---------------------------------------------------------------------------------
# Energies
# ---------------------------------------------------------------------------------


def _check_model(model, what: str) -> None:
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"no {what} is defined for {type(model).__name__}: `model` must be a "
            "kuralab model (kl.AbstractModel) that implements `energy(y, t)`"
        )
    if not type(model).has_energy():
        raise TypeError(
            f"no {what} is defined for {type(model).__name__}: it does not implement "
            "`energy(y, t)`"
        )


def energy(model: AbstractModel, y: RealLike, t: ScalarLike = 0.0) -> Scalar:
    r"""The model's energy at state `y` (time `t`): a scalar, `model.energy(y, t)`.

    - `kl.SphereKuramoto`: the AKOrN energy
      $E = -\tfrac12\sum_{ij} x_i^\top J_{ij} x_j - \sum_i c_i^\top x_i$. A Lyapunov
      function under the hypotheses of AKOrN App. F/G (see `kl.check_lyapunov`). For a
      state-dependent coupling (attention) $J_{ij}$ is evaluated at `y`.
    - `kl.Kuramoto`: the phase potential `kl.phase_potential`.
    - any other model that implements `energy(y, t)`.

    **Arguments:**

    - `model`: a kuralab model with an energy.
    - `y`: one state, shape `model.state_shape` (batch with `jax.vmap`).
    - `t`: time, for couplings/forcings with schedules (default 0).

    **Returns:** a 0-d array (model units; $|x| = 1$).
    """
    _check_model(model, "energy")
    return model.energy(check_state(model, y, "y", finite=False), t)


def akorn_logged_energy(
    model: SphereKuramoto, x: RealLike, t: ScalarLike = 0.0
) -> Scalar:
    r"""The quantity the AKOrN reference code logs as its energy:
    $-\sum_i \langle x_i, (Jx)_i + c_i\rangle$ (no ½ on the coupling term, no Ω term).

    It equals $2E + \sum_i c_i^\top x_i$ (so $2E$ when $c = 0$); it is not the energy of
    the paper's theorem. Use `kl.energy` for that.

    **Arguments:** `model` (a `kl.SphereKuramoto`), `x` of shape `(osc, dim)`, `t`.

    **Returns:** a 0-d array.
    """
    if not isinstance(model, SphereKuramoto):
        raise TypeError(
            f"`model` must be kl.SphereKuramoto; got {type(model).__name__}"
        )
    return model.logged_energy(check_state(model, x, "x", finite=False), t)


def phase_potential(
    model: Kuramoto, theta: RealLike, t: ScalarLike = 0.0
) -> Scalar:
    r"""The gradient-flow potential of the phase model,
    $V(\theta) = -\tfrac12\sum_{ij} K_{ij}\cos(\theta_j - \theta_i)
    - \sum_i h_i \cos(\psi_i - \theta_i)$.

    For symmetric $K$, identical $\omega$ (in the co-rotating frame; $\omega = 0$ with a
    forcing), zero lag, no noise and no delays,
    $\dot\theta_i = \omega - \partial V/\partial\theta_i$ and
    $\dot V = -\sum_i(\dot\theta_i - \omega)^2 \le 0$. $V$ is $2\pi$-periodic in every
    phase, so wrapped phases may be used. The ½ counts each unordered pair once for
    symmetric $K$.

    **Arguments:** `model` (a `kl.Kuramoto`), `theta` of shape `(osc,)` (radians),
    `t` (time, for schedules).

    **Returns:** a 0-d array.
    """
    if not isinstance(model, Kuramoto):
        raise TypeError(f"`model` must be kl.Kuramoto; got {type(model).__name__}")
    return model.energy(check_state(model, theta, "theta", finite=False), t)


@eqx.filter_jit
def _series(model, ts, ys):
    """E(t), the analytic dE/dt along the flow (chain rule, through autodiff, including
    an explicit time dependence), the energy scale and the logged energies, at every
    saved state."""

    def one(t, y):
        f = model.drift(t, y, None)
        e, de = jax.jvp(
            lambda tt, yy: model.energy(yy, tt), (t, y), (jnp.ones_like(t), f)
        )
        return e, de, model.energy_scale(y, t), model.logged_energies(y, t)

    return jax.vmap(one)(ts, ys)


# ---------------------------------------------------------------------------------
# Hypotheses
# ---------------------------------------------------------------------------------


def lyapunov_hypotheses(
    model: AbstractModel, *, rtol: float | None = None, max_dense: int = MAX_DENSE
):
    r"""Which hypotheses of the model's energy theorem hold (no simulation).

    The model reports them (`AbstractModel.lyapunov_hypotheses`):

    - `kl.SphereKuramoto`: `linear_autonomous`, `block_symmetric`, `scalar_blocks`,
      `omega_shared`, `omega_c_zero`, `commutator_psd` (AKOrN App. F and G; see the
      module documentation). $J$ is materialised at `t = 0` (O((osc dim)^2) memory).
    - `kl.Kuramoto`: `symmetric_coupling`, `identical_frequencies`,
      `static_forcing_frame`, `zero_lag`, `autonomous`, `deterministic`.

    **Arguments:**

    - `model`: the model.
    - `rtol`: a hypothesis holds when its relative defect is at most `rtol` (default
      `100 * eps` of the default float dtype). (Keyword only.)
    - `max_dense`: largest `osc * dim` to materialise (default 8192). (Keyword only.)

    **Returns:** an `xarray.Dataset` over the dimension `hypothesis` with `holds`
    (bool), `defect` (relative size of the violation: max-abs of the offending matrix
    over the scale of the matrices involved; NaN where not applicable) and
    `description`, and the attribute `theorem`: the theorem whose hypotheses all hold
    (`"AKOrN App. F"`, `"AKOrN App. G"`, `"gradient flow"`) or `"none"`.
    """
    if not isinstance(model, AbstractModel):
        raise TypeError(
            f"`model` must be a kuralab model; got {type(model).__name__}"
        )
    if rtol is None:
        rtol = 100 * float(jnp.finfo(jnp.result_type(float)).eps)
    report = model.lyapunov_hypotheses(max_dense=max_dense)
    keys = list(report.descriptions)
    holds = {k: bool(report.defects[k] <= rtol) for k in keys}  # NaN -> False
    return xr.Dataset(
        {
            "holds": (("hypothesis",), np.array([holds[k] for k in keys])),
            "defect": (
                ("hypothesis",),
                np.array([report.defects[k] for k in keys], np.float64),
            ),
            "description": (
                ("hypothesis",),
                np.array([report.descriptions[k] for k in keys], object),
            ),
        },
        coords={"hypothesis": np.array(keys, object)},
        attrs={"theorem": report.theorem(holds), "hypothesis_rtol": float(rtol)},
    )


# ---------------------------------------------------------------------------------
# The numerical check
# ---------------------------------------------------------------------------------

_VERDICT_TEXT = {
    "lyapunov": "the hypotheses of {theorem} hold and E is non-increasing along the "
    "trajectory (largest increase {inc:.3g} <= tolerance {tol:.3g})",
    "violation": "the hypotheses of {theorem} hold but E increased by {inc:.3g} > "
    "tolerance {tol:.3g}: discretisation error (reduce dt, use a higher-order solver)",
    "counterexample": "the hypotheses fail ({failed}) and E increases by {inc:.3g} > "
    "tolerance {tol:.3g}: E is not a Lyapunov function for this model",
    "inconclusive": "the hypotheses fail ({failed}) but no increase above {tol:.3g} was "
    "seen (largest {inc:.3g}) on this trajectory",
}


def check_lyapunov(
    model,
    y0: RealLike,
    *,
    t1: float,
    dt: float,
    t0: float = 0.0,
    solver="rk4",
    save_every: int = 1,
    rtol: float | None = None,
    hypothesis_rtol: float | None = None,
    max_dense: int = MAX_DENSE,
) -> xr.Dataset:
    r"""Check numerically whether the model's energy is a Lyapunov function.

    Reports which hypotheses of the energy theorem hold (`kl.lyapunov_hypotheses`),
    integrates from `y0` with `kl.simulate`, and evaluates along the trajectory the
    energy $E(t)$ (`kl.energy`), its analytic rate
    $\dot E = \partial_t E + \langle\nabla E, f(x)\rangle$ (chain rule, by automatic
    differentiation of $E$ along the drift) and a numerical rate (central differences of
    the saved $E(t)$). The verdict:

    - `"lyapunov"`: the hypotheses hold and $E$ never increased by more than the
      tolerance;
    - `"violation"`: they hold but $E$ increased (discretisation error of the solver,
      e.g. `kl.AKOrNStep` with a large step);
    - `"counterexample"`: they fail and $E$ increased;
    - `"inconclusive"`: they fail and no increase was seen from this `y0`.

    **Main arguments:**

    - `model`: a kuralab model with an energy (`kl.SphereKuramoto`, `kl.Kuramoto`, or
      any model implementing `energy`), deterministic and undelayed.
    - `y0`: initial state, shape `model.state_shape`.
    - `t1`, `dt`, `t0`, `solver`: as in `kl.simulate` (default `"rk4"`).

    **Other arguments:**

    - `save_every`: evaluate $E$ every this many steps (default 1: every step; an
      increase between steps is only seen at the saved resolution).
    - `rtol`: $E$ "increased" when `max_increase` exceeds `rtol` times the energy
      scale $\max_t(\tfrac12\sum_i|x_i^\top (Jx)_i| + \sum_i |c_i^\top x_i|)$ (the size of
      its rounding error); default `64 * eps` of the state's dtype.
    - `hypothesis_rtol`, `max_dense`: passed to `kl.lyapunov_hypotheses`.

    **Returns:** an `xarray.Dataset` with

    - over `time`: `E`, `dEdt` (analytic), `dEdt_numeric`, and the model's
      `logged_energies` (for sphere models `E_logged`, `kl.akorn_logged_energy`);
    - over `hypothesis`: `holds`, `defect`, `description`;
    - scalars: `max_increase` (the largest rise of $E$ above its running minimum,
      $\max_k [E(t_k) - \min_{j \le k} E(t_j)] \ge 0$; 0 means $E$ never rose),
      `max_step_increase` (largest $E(t_{k+1}) - E(t_k)$), `max_dEdt` (largest
      analytic rate), `tolerance`, `dEdt_mismatch` (largest
      |numeric - analytic| rate at interior points over the largest |analytic| rate),
      `hypotheses_hold`, `nonincreasing`;
    - attributes `theorem`, `verdict`, `verdict_text`, `model`, `solver`, `t0`, `t1`,
      `dt`.
    """
    _check_model(model, "energy")
    if model.diffusion(t0, model.project(jnp.asarray(y0))) is not None or (
        model.sender_delays is not None
    ):
        raise ValueError(
            "check_lyapunov integrates deterministic, undelayed models only; this "
            f"{type(model).__name__} model has noise or delays (lyapunov_hypotheses "
            "still reports them)"
        )
    if not isinstance(save_every, int) or save_every < 1:
        raise ValueError(f"`save_every` must be a positive int; got {save_every!r}")
    hyp = lyapunov_hypotheses(model, rtol=hypothesis_rtol, max_dense=max_dense)
    traj = simulate(
        model, y0, t0=t0, t1=t1, dt=dt, solver=solver, saveat=SaveAt(every=save_every)
    )
    ts, ys = traj.ts, traj.ys
    E, dE, scale, logged = _series(model, ts, ys)
    E, dE, scale = (np.asarray(a, np.float64) for a in (E, dE, scale))
    t_np = np.asarray(ts, np.float64)
    if rtol is None:
        rtol = 64 * float(jnp.finfo(ys.dtype).eps)
    tol = float(rtol * np.max(scale))
    steps = np.diff(E)
    max_step = float(np.max(steps)) if steps.size else 0.0
    # The largest rise of E above its running minimum: independent of the save step.
    max_inc = float(np.max(E - np.minimum.accumulate(E)))
    numeric = np.gradient(E, t_np) if E.size > 1 else np.zeros_like(E)
    interior = slice(1, -1) if E.size > 2 else slice(None)
    an_scale = float(np.max(np.abs(dE))) if dE.size else 0.0
    mismatch = relative(
        float(np.max(np.abs(numeric - dE)[interior], initial=0.0)), an_scale
    )
    holds = hyp.attrs["theorem"] != "none"
    increased = max_inc > tol
    verdict = (
        ("violation" if increased else "lyapunov")
        if holds
        else ("counterexample" if increased else "inconclusive")
    )
    failed = ", ".join(
        str(k)
        for k, h in zip(hyp.hypothesis.values, hyp.holds.values, strict=True)
        if not h
    )
    text = _VERDICT_TEXT[verdict].format(
        theorem=hyp.attrs["theorem"], inc=max_inc, tol=tol, failed=failed
    )
    e_name = model.energy_description
    data = {
        "E": ((names.TIME,), E, {"units": "1", "long_name": e_name}),
        "dEdt": (
            (names.TIME,),
            dE,
            {"units": "1", "long_name": "analytic dE/dt along the flow (chain rule)"},
        ),
        "dEdt_numeric": (
            (names.TIME,),
            numeric,
            {"units": "1", "long_name": "dE/dt by central differences of saved E(t)"},
        ),
    }
    for k, series in logged.items():
        data[k] = (
            (names.TIME,),
            np.asarray(series, np.float64),
            {"units": "1", "long_name": model.logged_energy_descriptions[k]},
        )
    scalars = {
        "max_increase": (max_inc, "largest rise of E above its running minimum"),
        "max_step_increase": (max_step, "largest E(t_k+1) - E(t_k) (< 0: always fell)"),
        "max_dEdt": (float(np.max(dE)), "largest analytic dE/dt"),
        "tolerance": (tol, "increase tolerance: rtol * energy scale"),
        "dEdt_mismatch": (mismatch, "max |numeric - analytic dE/dt| / max |analytic|"),
    }
    for k, (v, ln) in scalars.items():
        data[k] = ((), np.float64(v), {"units": "1", "long_name": ln})
    data["hypotheses_hold"] = ((), np.bool_(holds), {"long_name": "theorem applies"})
    data["nonincreasing"] = ((), np.bool_(not increased), {"long_name": "E never rose"})
    ds = xr.Dataset(
        {k: xr.Variable(*v) for k, v in data.items()},
        coords={names.TIME: ((names.TIME,), t_np, {"units": "1", "long_name": "time"})},
    )
    ds = xr.merge([ds, hyp], combine_attrs="drop")
    ds.attrs.update(
        theorem=hyp.attrs["theorem"],
        hypothesis_rtol=hyp.attrs["hypothesis_rtol"],
        verdict=verdict,
        verdict_text=text,
        model=type(model).__name__,
        solver=traj.solver,
        t0=float(t0),
        t1=float(t1),
        dt=float(traj.dt),
        save_every=int(save_every),
        rtol=float(rtol),
    )
    return ds
