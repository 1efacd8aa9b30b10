"""The phase (Kuramoto / Sakaguchi / forced) oscillator model."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from .._coupling import AbstractCoupling, MeanField, is_autonomous
from .._custom_types import FrequenciesLike, ScalarLike
from .._delays import Delays
from .._edge_delays import EdgeDelays, edge_coupling_term, edge_sources
from .._fastmath import sincos
from .._meanfield_step import meanfield_rk4
from .._misc import as_float_array, check_finite
from .._noise import Noise
from .._schedules import AbstractSchedule, evaluate
from .base import AbstractPhaseModel, LyapunovHypotheses

#: Hypotheses of the phase model's gradient-flow theorem, in report order.
PHASE_HYPOTHESES = {
    "symmetric_coupling": "K_ij = K_ji",
    "identical_frequencies": "omega_i = omega for every oscillator",
    "static_forcing_frame": "no forcing, or omega = 0 (a forcing does not rotate)",
    "zero_lag": "Sakaguchi lag alpha = 0",
    "autonomous": "no time-dependent coupling or forcing strength (schedule)",
    "deterministic": "no noise and no delays",
}


def _check_coef(name: str, value, n: int):
    """A coefficient: scalar, per-oscillator `(n,)` array, or a schedule."""
    if isinstance(value, AbstractSchedule):
        return
    check_finite(name, value)
    shape = jnp.shape(value)
    if shape not in ((), (n,)):
        raise ValueError(
            f"`{name}` must be a scalar, an array of shape ({n},) (one per oscillator) "
            f"or a schedule; got shape {shape}"
        )


class Forcing(eqx.Module):
    """External forcing toward a reference phase: the term $h_i(t)\\sin(\\psi_i - \\theta_i)$.

    KuraNet's external field $b_i \\sin\\theta_i$ is `Forcing(strength=-b, phase=0.0)`.

    **Arguments:**

    - `strength`: $h$, scalar, per-oscillator array or schedule $h(t)$.
    - `phase`: $\\psi$ in radians, scalar or per-oscillator array (default 0).
    """

    strength: ArrayLike | AbstractSchedule
    phase: ArrayLike

    def __init__(self, strength, phase=0.0):
        if not isinstance(strength, AbstractSchedule):
            check_finite("strength", strength)
            strength = as_float_array(strength)
        check_finite("phase", phase)
        self.strength = strength
        self.phase = as_float_array(phase)

    def term(self, t, theta):
        """$h(t) \\sin(\\psi - \\theta)$ for phases `theta` of shape `(osc,)`."""
        return self._term(t, sincos(theta))

    def _term(self, t, phasor):
        # sin(psi - theta) = sin psi cos theta - cos psi sin theta, from the receivers'
        # (sin theta, cos theta) already computed for the coupling.
        s, c = phasor
        sin_psi, cos_psi = sincos(jnp.asarray(self.phase, s.dtype))
        return evaluate(self.strength, t) * (sin_psi * c - cos_psi * s)


class Kuramoto(AbstractPhaseModel):
    r"""The Kuramoto model with phase lag (Sakaguchi) and forcing.

    $$d\theta_i = \Big[\omega_i + \sum_j K_{ij}\sin(\theta_j(t - \tau_j) - \theta_i - \alpha)
      + h_i(t)\sin(\psi_i - \theta_i)\Big] dt
      + \sqrt{2 D(t)}\, Z(\theta_i) \circ dW_i$$

    with $Z \equiv 1$ and independent $W_i$ unless `kl.Noise` says otherwise
    (correlation across nodes, a phase sensitivity $Z$; Stratonovich).

    Coupling is row-i-receives; `kl.MeanField(K)` gives $K_{ij} = K/N$. The coupling sum is
    evaluated from phasors (`cos`, `sin` of each phase, two operator applications), so a
    mean-field model costs O(N) per evaluation and a dense one two matvecs.

    **Arguments:**

    - `omega`: natural frequencies, shape `(osc,)` (rad per unit time).
    - `coupling`: a `kl.AbstractCoupling` (`MeanField`, `DenseCoupling`,
      `SparseCoupling`, `LatticeCoupling`).
    - `lag`: Sakaguchi phase lag $\alpha$ in radians (default 0).
    - `forcing`: optional `kl.Forcing`.
    - `delays`: optional `kl.Delays` (per-sender transmission delays $\tau_j$) or
      `kl.EdgeDelays` (per-edge delays $\tau_{ij}$, read as
      $\theta_j(t - \tau_{ij})$ in the sum; sparse, dense or mean-field coupling).
    - `noise`: optional `kl.Noise` (diffusion coefficient $D$; independent or correlated
      across nodes, additive or phase dependent).

    A model with noise needs `simulate(..., key=...)`; one with delays a fixed-step
    solver (`"euler"`, `"heun"`, `"rk4"`; `"euler"`/`"heun"` when also noisy).

    ??? cite "Reference"

        ```bibtex
        @incollection{kuramoto1975,
          author={Kuramoto, Yoshiki},
          title={Self-entrainment of a population of coupled non-linear oscillators},
          booktitle={International Symposium on Mathematical Problems in Theoretical
                     Physics}, pages={420--422}, year={1975}, publisher={Springer}}
        @article{sakaguchi1986,
          author={Sakaguchi, Hidetsugu and Kuramoto, Yoshiki},
          title={A soluble active rotator model showing phase transitions via mutual
                 entrainment}, journal={Prog. Theor. Phys.}, volume={76},
          pages={576--581}, year={1986}}
        ```
    """

    omega: Array
    coupling: AbstractCoupling
    lag: Array
    forcing: Forcing | None
    delays: Delays | EdgeDelays | None
    noise: Noise | None

    def __init__(
        self,
        omega: FrequenciesLike,
        coupling: AbstractCoupling,
        lag: ScalarLike = 0.0,
        forcing: Forcing | None = None,
        delays: Delays | EdgeDelays | None = None,
        noise: Noise | None = None,
    ):
        omega = jnp.asarray(omega)
        if not jnp.issubdtype(omega.dtype, jnp.floating):
            omega = omega.astype(jnp.result_type(float))
        if omega.ndim != 1 or omega.shape[0] < 1:
            raise ValueError(
                f"`omega` must be a 1-D array of natural frequencies, shape (osc,); got "
                f"shape {omega.shape}"
            )
        check_finite("omega", omega)
        n = omega.shape[0]
        if not isinstance(coupling, AbstractCoupling):
            raise TypeError(
                "`coupling` must be a kuralab coupling (kl.MeanField, kl.DenseCoupling, "
                f"kl.SparseCoupling, kl.LatticeCoupling); got {type(coupling).__name__}"
            )
        if coupling.n_osc is not None and coupling.n_osc != n:
            raise ValueError(
                f"`coupling` is built for {coupling.n_osc} oscillators but `omega` has "
                f"{n}"
            )
        check_finite("lag", lag)
        if jnp.ndim(lag) != 0:
            raise ValueError(
                f"`lag` must be a scalar (radians); got shape {jnp.shape(lag)}"
            )
        if forcing is not None:
            if not isinstance(forcing, Forcing):
                raise TypeError(
                    f"`forcing` must be kl.Forcing or None; got {forcing!r}"
                )
            _check_coef("forcing.strength", forcing.strength, n)
            _check_coef("forcing.phase", forcing.phase, n)
        if isinstance(delays, EdgeDelays):
            delays.check_coupling(coupling, n)
        elif delays is not None:
            if not isinstance(delays, Delays):
                raise TypeError(
                    f"`delays` must be kl.Delays, kl.EdgeDelays or None; got {delays!r}"
                )
            if delays.tau.ndim == 1 and delays.tau.shape[0] != n:
                raise ValueError(
                    f"`delays.tau` must be a scalar or have shape ({n},); got "
                    f"{delays.tau.shape}"
                )
        if noise is not None:
            if not isinstance(noise, Noise):
                raise TypeError(f"`noise` must be kl.Noise or None; got {noise!r}")
            _check_coef("noise.D", noise.D, n)
            noise.check_size(n)
        self.omega = omega
        self.coupling = coupling
        self.lag = as_float_array(lag)
        self.forcing = forcing
        self.delays = delays
        self.noise = noise

    @property
    def n_osc(self) -> int:
        return self.omega.shape[0]

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (self.n_osc,)

    @property
    def sender_delays(self) -> Delays | EdgeDelays | None:
        return self.delays

    def delay_sources(self):
        if isinstance(self.delays, EdgeDelays):
            return edge_sources(self.coupling, self.n_osc)
        return None

    def validate(self, t0: float, t1: float) -> None:
        if self.noise is not None:
            self.noise.check_nonnegative(t0, t1)

    def diffusion(self, t, y):
        if self.noise is None:
            return None
        if self.noise.is_additive:
            return self.noise.amplitude(t, (self.n_osc,))
        return self.noise.scale(t, y)

    @property
    def noise_shape(self) -> tuple[int, ...]:
        if self.noise is None:
            return (self.n_osc,)
        return self.noise.brownian_shape(self.n_osc)

    def noise_field(self, t, y):
        return None if self.noise is None else self.noise.field(t, y)

    def ito_correction(self, t, y):
        return None if self.noise is None else self.noise.ito_correction(t, y)

    def coupling_term(self, t, theta, theta_senders=None):
        r"""$\sum_j K_{ij}\sin(\theta^{s}_j - \theta_i - \alpha)$, with sender phases
        $\theta^s$ (delayed, if given) and receiver phases $\theta$."""
        return self._coupling_term(t, sincos(theta), theta_senders)

    def _coupling_term(self, t, receiver_phasor, theta_senders=None):
        # With (s, c) = (sin, cos) of the receivers and S = K sin, C = K cos of the
        # senders:  cos(theta_i + a) S_i - sin(theta_i + a) C_i
        #         = cos a (c S - s C)_i - sin a (s S + c C)_i .
        # One sincos of the phases per evaluation (two with delays), none of the lag's
        # N-vector: the lag is a scalar.
        s, c = receiver_phasor
        s_send, c_send = (s, c) if theta_senders is None else sincos(theta_senders)
        C = self.coupling.apply(c_send, t)
        S = self.coupling.apply(s_send, t)
        return self._combine(s, c, S, C)

    def _combine(self, s, c, S, C):
        sin_a, cos_a = sincos(jnp.asarray(self.lag, s.dtype))
        return cos_a * (c * S - s * C) - sin_a * (s * S + c * C)

    def drift(self, t, y, y_delayed=None):
        theta = y
        if y_delayed is None:
            # The coupling computes the phasor with its own applications (a mean field:
            # one pass for sin, cos and both means, kuralab/_phasor_mean.py).
            s, c, S, C = self.coupling._phasor_apply(theta, t)
            phasor = (s, c)
            coupling = self._combine(s, c, S, C)
        elif isinstance(self.delays, EdgeDelays):
            phasor = sincos(theta)
            lag = jnp.asarray(self.lag, theta.dtype)
            coupling = edge_coupling_term(self.coupling, t, theta, y_delayed, lag)
        else:
            phasor = sincos(theta)
            coupling = self._coupling_term(t, phasor, y_delayed)
        d = self.omega.astype(theta.dtype) + coupling
        if self.forcing is not None:
            d = d + self.forcing._term(t, phasor)
        return d

    def _rk4_step(self, times, h, Y):
        """One `kl.RK4` step of the internal state `Y = (theta, turns)`, with stage
        times `times = (t0, t0 + h/2, t0 + h)` and step `h`, by the native
        mean-field kernel (kuralab/_meanfield_step.py): `(Y1, k1, k4)` with the
        increments `k = h f`, or `None` when it does not apply (other couplings,
        forcing, delays, noise, dtypes, or no kernel); the solver then runs its
        stages through `drift`."""
        if not (
            isinstance(self.coupling, MeanField)
            and self.forcing is None
            and self.delays is None
            and self.noise is None
        ):
            return None
        theta, turns = Y
        f32 = jnp.float32
        if theta.dtype != f32 or self.omega.dtype != f32:
            return None
        t0, tm, t1 = times
        K = self.coupling.K
        sin_a, cos_a = sincos(jnp.asarray(self.lag, f32))
        coef = jnp.stack(
            [jnp.asarray(v, f32) for v in (
                evaluate(K, t0), evaluate(K, tm), evaluate(K, t1), h, cos_a, sin_a
            )]
        )
        out = meanfield_rk4(theta, self.omega, coef)
        if out is None:
            return None
        y1, k1, k4 = out
        zero = jax.tree_util.tree_map(jnp.zeros_like, turns)
        return (y1, turns), (k1, zero), (k4, zero)

    # -- energy (the gradient-flow potential) ----------------------------------------

    energy_description: ClassVar[str] = (
        "phase potential V = -1/2 sum_ij K_ij cos(theta_j - theta_i) - sum_i h_i "
        "cos(psi_i - theta_i)"
    )

    def _energy_terms(self, theta, t):
        """Per-oscillator `sum_j K_ij cos(theta_j - theta_i)` and `h_i cos(psi_i -
        theta_i)`."""
        s, c = sincos(theta)
        kc = self.coupling.apply(c, t)
        ks = self.coupling.apply(s, t)
        pair = c * kc + s * ks
        if self.forcing is None:
            return pair, jnp.zeros_like(theta)
        h = evaluate(self.forcing.strength, t)
        sin_psi, cos_psi = sincos(jnp.asarray(self.forcing.phase, theta.dtype))
        return pair, h * (cos_psi * c + sin_psi * s)

    def energy(self, y, t=0.0):
        r"""The gradient-flow potential $V(\theta) = -\tfrac12\sum_{ij} K_{ij}
        \cos(\theta_j - \theta_i) - \sum_i h_i\cos(\psi_i - \theta_i)$ (see
        `kl.phase_potential`)."""
        pair, field = self._energy_terms(y, t)
        return -0.5 * jnp.sum(pair) - jnp.sum(field)

    def energy_scale(self, y, t=0.0):
        pair, field = self._energy_terms(y, t)
        return 0.5 * jnp.sum(jnp.abs(pair)) + jnp.sum(jnp.abs(field))

    def lyapunov_hypotheses(self, *, max_dense: int) -> LyapunovHypotheses:
        """The gradient-flow theorem's hypotheses (`PHASE_HYPOTHESES`), measured."""
        del max_dense  # the coupling measures its own symmetry, at any size
        omega = np.asarray(self.omega, np.float64)
        w_scale = max(float(np.max(np.abs(omega))), 1.0)
        forced = self.forcing is not None
        scheduled = not is_autonomous(self.coupling) or (
            forced and isinstance(self.forcing.strength, AbstractSchedule)
        )
        defects = {
            # max |K - K^T| / max |K| of the current values, measured by the coupling
            # (mean field: 0 by construction; sparse: edge against reverse edge).
            "symmetric_coupling": float(self.coupling.symmetry_defect()),
            "identical_frequencies": float(np.ptp(omega)) / w_scale,
            "static_forcing_frame": (
                float(np.max(np.abs(omega))) / w_scale if forced else 0.0
            ),
            "zero_lag": abs(float(self.lag)),
            "autonomous": 1.0 if scheduled else 0.0,
            "deterministic": (
                1.0 if (self.noise is not None or self.delays is not None) else 0.0
            ),
        }
        return LyapunovHypotheses(defects, PHASE_HYPOTHESES, _gradient_flow)


def _gradient_flow(holds: dict[str, bool]) -> str:
    return "gradient flow" if all(holds.values()) else "none"

