r"""A sheet of locally coupled second-order oscillators (coRNN units, SCIENCE.md §4).

Every site $i$ of a 1-D or 2-D grid carries a position $h_i$ and a velocity $v_i$:

$$\dot h = v, \qquad
\dot v = \sigma\big(W_h \star h + W_v \star v + W_z \star z(t) + b\big) - \gamma h - \alpha v,$$

with $\sigma = \tanh$ (or the identity, `activation="linear"`), $\star$ a centred
cross-correlation $(W \star u)_i = \sum_d W_d\, u_{i+d}$ (what `torch.nn.Conv2d` and
`kl.LatticeCoupling` compute) on a periodic (circular padding) or open (zero padding)
grid, and an optional drive $z(t)$ on the same grid.

The state of one sheet is the array `y` of shape `(2, *shape)`: `y[0] = h`, `y[1] = v`.
It is a model like any other: `kl.simulate(sheet, y0, ...)` with any ODE solver, or with
`solver="symplectic_euler"`, which is the reference coRNN update (one step per frame,
`research/reference_impls.md` §4.1):

$$v_{n+1} = v_n + \Delta\,[\sigma(W_h\star h_n + W_v\star v_n + W_z\star z_n + b)
- \gamma h_n - \alpha v_n], \qquad h_{n+1} = h_n + \Delta\, v_{n+1}.$$

`AbstractSecondOrderModel` is the small contract that solver needs: a state stacked as
`(position, velocity)` along its leading axis with $\dot h = v$, and the acceleration.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .. import _names as names
from .._coupling.phase import check_grid, grid_convolve
from .._custom_types import ScalarLike
from .._misc import as_float_array, check_finite, is_concrete
from .._schedules import AbstractSchedule
from ._theorems import relative
from .base import AbstractModel, LyapunovHypotheses

__all__ = ["AbstractSecondOrderModel", "LatticeOscillators"]

ACTIVATIONS = ("tanh", "linear")
BOUNDARIES = ("periodic", "open")
#: Hypotheses under which `energy` is conserved (alpha = 0) or falls (alpha > 0).
SHEET_HYPOTHESES = {
    "linear_activation": "activation = 'linear' (tanh(W_h * h) is not a potential force)",
    "symmetric_position_kernel": "W_h equals its mirror image (W_h * is symmetric)",
    "no_velocity_kernel": "no W_v (a velocity coupling can feed energy in)",
    "no_bias_or_drive": "b = 0 and no drive z(t)",
    "energy_bounded_below": "gamma I - W_h * is positive semidefinite (E >= 0)",
}


def _sheet_theorem(holds: dict[str, bool]) -> str:
    if all(holds.values()):
        return "linear oscillator sheet: dE/dt = -alpha |v|^2 <= 0"
    return "none"


#: A frame index is `floor(t / drive_dt + _FRAME_SLACK)`: times a few ulps short of a
#: frame boundary (accumulated step sums) still select that frame.
_FRAME_SLACK = 1e-3


class AbstractSecondOrderModel(AbstractModel):
    r"""A model $\dot h = v$, $\dot v = a(t, h, v)$ whose state stacks `(h, v)` along
    its leading axis (`y[0] = h`, `y[1] = v`). Subclasses implement `acceleration`;
    the drift is `stack([v, acceleration(t, h, v)])`. The symplectic-Euler solver
    (`kl.SymplecticEuler`) accepts exactly these models."""

    @abc.abstractmethod
    def acceleration(self, t: ScalarLike, h, v):
        """$\\dot v$ at time `t` for position `h` and velocity `v` (shape of `h`)."""

    def drift(self, t, y, y_delayed=None):
        del y_delayed
        return jnp.stack([y[1], self.acceleration(t, y[0], y[1])])


def _kernel(name: str, kernel, shape: tuple[int, ...], boundary: str):
    k = as_float_array(kernel)
    if k.ndim != len(shape):
        raise ValueError(
            f"`{name}` must have the grid's rank {len(shape)} (grid {shape}); got shape "
            f"{tuple(k.shape)}"
        )
    try:
        check_grid(tuple(k.shape), shape, boundary)
    except ValueError as e:
        raise ValueError(f"`{name}`: {e}") from None
    check_finite(name, k)
    return k


def _nonnegative(name: str, x):
    x = as_float_array(x)
    if x.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar; got shape {tuple(x.shape)}")
    check_finite(name, x)
    if is_concrete(x):
        if float(x) < 0:
            raise ValueError(f"`{name}` must be >= 0; got {float(x)}")
        return x
    return eqx.error_if(x, x < 0, f"`{name}` must be >= 0")


class LatticeOscillators(AbstractSecondOrderModel):
    r"""A 1-D or 2-D sheet of locally coupled second-order (coRNN) oscillators.

    $$\dot h = v, \qquad \dot v = \sigma(W_h \star h + W_v \star v + W_z \star z(t) + b)
    - \gamma h - \alpha v$$

    State `y` of shape `(2, *shape)`: `y[0]` the positions $h$, `y[1]` the velocities
    $v$ (dimensionless; time in model units).

    **Arguments:**

    - `shape`: grid shape `(L,)` or `(rows, cols)`.
    - `kernel_h`: centred odd-sized kernel of the grid's rank, e.g. `(3, 3)`:
      `kernel_h[c + d]` ($c$ the centre index) weights the neighbour at displacement $d$.
    - `kernel_v`: the velocity kernel, same rules; `None` (default) for none.
    - `gamma`: stiffness $\gamma \ge 0$ (default 1). `alpha`: damping $\alpha \ge 0$
      (default 0.5). Scalars.
    - `boundary`: `"periodic"` (circular padding, default) or `"open"` (zero padding).
    - `bias`: $b$, a scalar or a grid-shaped array (default 0).
    - `drive`: $z(t)$: `None` (no drive), an array of frames `(T, *shape)` held for
      `drive_dt` each (frame `k` on $[k\,\mathtt{drive\_dt}, (k+1)\,\mathtt{drive\_dt})$,
      the last frame held after the end), or a `kl.AbstractSchedule` returning a
      grid-shaped array at time `t`.
    - `drive_dt`: duration of one drive frame (default 1; set it to the step `dt` to give
      one frame per step, as the reference does).
    - `kernel_z`: the drive kernel $W_z$; `None` (default) means the identity
      ($W_z \star z = z$).
    - `activation`: `"tanh"` (default) or `"linear"` ($\sigma(u) = u$).

    **Energy.** `energy(y)` is $E = \tfrac12\sum_i v_i^2 + \tfrac12\sum_i h_i(\gamma h_i
    - (W_h \star h)_i)$, the energy of the linear sheet. It is conserved when
    `activation="linear"`, $\alpha = 0$, no `kernel_v`, $b = 0$, no drive and $W_h$
    symmetric (kernel equal to its mirror image); then $\dot E = 0$ exactly, and with
    $\alpha > 0$, $\dot E = -\alpha \sum v^2$. The symplectic-Euler solver keeps it
    within $O(\Delta)$ for all times (no drift).
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    kernel_h: Float[Array, "*k"]
    kernel_v: Float[Array, "*k"] | None
    kernel_z: Float[Array, "*k"] | None
    gamma: Float[Array, ""]
    alpha: Float[Array, ""]
    bias: Float[Array, "*grid"]
    drive: Float[Array, "frames *grid"] | AbstractSchedule | None
    drive_dt: float = eqx.field(static=True)
    boundary: str = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    manifold: ClassVar[str] = "euclidean (position, velocity) sheet"
    state_name: ClassVar[str] = "y"
    state_units: ClassVar[str] = "1"

    def __init__(
        self,
        shape: Sequence[int],
        kernel_h: Real[ArrayLike, "*k"],
        kernel_v: Real[ArrayLike, "*k"] | None = None,
        gamma: ScalarLike = 1.0,
        alpha: ScalarLike = 0.5,
        boundary: str = "periodic",
        *,
        bias: Real[ArrayLike, "*grid"] = 0.0,
        drive: Real[ArrayLike, "frames *grid"] | AbstractSchedule | None = None,
        drive_dt: float = 1.0,
        kernel_z: Real[ArrayLike, "*k"] | None = None,
        activation: str = "tanh",
    ):
        try:
            shape = tuple(int(s) for s in shape)
        except TypeError:
            raise TypeError(
                f"`shape` must be a grid shape (L,) or (rows, cols); got {shape!r}"
            ) from None
        if len(shape) not in (1, 2) or any(s < 1 for s in shape):
            raise ValueError(
                f"`shape` must be a 1-D or 2-D grid shape of positive sizes; got {shape}"
            )
        if boundary not in BOUNDARIES:
            raise ValueError(f"`boundary` must be one of {BOUNDARIES}; got {boundary!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"`activation` must be one of {ACTIVATIONS}; got {activation!r}"
            )
        self.shape = shape
        self.boundary = boundary
        self.activation = activation
        self.kernel_h = _kernel("kernel_h", kernel_h, shape, boundary)
        self.kernel_v = (
            None if kernel_v is None else _kernel("kernel_v", kernel_v, shape, boundary)
        )
        self.kernel_z = (
            None if kernel_z is None else _kernel("kernel_z", kernel_z, shape, boundary)
        )
        self.gamma = _nonnegative("gamma", gamma)
        self.alpha = _nonnegative("alpha", alpha)
        b = as_float_array(bias)
        if b.shape not in ((), shape):
            raise ValueError(
                f"`bias` must be a scalar or of the grid shape {shape}; got shape "
                f"{tuple(b.shape)}"
            )
        check_finite("bias", b)
        self.bias = b
        drive_dt = float(drive_dt)
        if not drive_dt > 0:
            raise ValueError(f"`drive_dt` must be > 0; got {drive_dt}")
        self.drive_dt = drive_dt
        if drive is None or isinstance(drive, AbstractSchedule):
            self.drive = drive
        else:
            z = as_float_array(drive)
            if z.ndim != len(shape) + 1 or tuple(z.shape[1:]) != shape or not z.shape[0]:
                raise ValueError(
                    f"`drive` must be frames of shape (T, *{shape}) (or a "
                    f"kl.AbstractSchedule); got shape {tuple(z.shape)}"
                )
            check_finite("drive", z)
            self.drive = z

    # -- layout ---------------------------------------------------------------------

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (2, *self.shape)

    @property
    def state_dims(self) -> tuple[str, ...]:  # pyright: ignore
        grid = (names.OSC,) if len(self.shape) == 1 else (names.ROW, names.COL)
        return (names.DIM, *grid)

    @property
    def n_osc(self) -> int:
        return math.prod(self.shape)

    # -- dynamics -------------------------------------------------------------------

    def conv(self, kernel, u):
        """$(W \\star u)$ for a grid-shaped `u` (centred cross-correlation with this
        sheet's boundary)."""
        k = kernel.astype(u.dtype)
        return grid_convolve(u[None, None], k[None, None], k.shape, self.boundary)[0, 0]

    def drive_at(self, t):
        """The drive $z(t)$ (grid-shaped), or `None`."""
        if self.drive is None:
            return None
        if isinstance(self.drive, AbstractSchedule):
            return jnp.broadcast_to(self.drive(t), self.shape)
        k = jnp.floor(jnp.asarray(t) / self.drive_dt + _FRAME_SLACK).astype(jnp.int32)
        return self.drive[jnp.clip(k, 0, self.drive.shape[0] - 1)]

    def preactivation(self, h, v, z=None):
        """$W_h \\star h + W_v \\star v + W_z \\star z + b$ (grid-shaped)."""
        u = self.conv(self.kernel_h, h) + self.bias.astype(h.dtype)
        if self.kernel_v is not None:
            u = u + self.conv(self.kernel_v, v)
        if z is not None:
            z = jnp.asarray(z, h.dtype)
            u = u + (z if self.kernel_z is None else self.conv(self.kernel_z, z))
        return u

    def force(self, h, v, z=None):
        """$\\sigma(\\cdot) - \\gamma h - \\alpha v$ for an explicit drive frame `z`."""
        u = self.preactivation(h, v, z)
        act = jnp.tanh(u) if self.activation == "tanh" else u
        return act - self.gamma.astype(h.dtype) * h - self.alpha.astype(h.dtype) * v

    def acceleration(self, t, h, v):
        return self.force(h, v, self.drive_at(t))

    def step(self, y, z=None, dt: ScalarLike = 0.1):
        r"""One reference coRNN update of the state `y` `(2, *shape)` with drive frame
        `z` (grid-shaped, or `None`) and step `dt`: $v \leftarrow v + \Delta F(h, v, z)$,
        then $h \leftarrow h + \Delta v$ (the new $v$). Pure; no diffrax."""
        h, v = y[0], y[1]
        v = v + dt * self.force(h, v, z)
        return jnp.stack([h + dt * v, v])

    # -- energy ---------------------------------------------------------------------

    def energy(self, y, t=0.0):
        h, v = y[0], y[1]
        g = self.gamma.astype(h.dtype)
        return 0.5 * jnp.sum(v * v) + 0.5 * jnp.sum(h * (g * h - self.conv(self.kernel_h, h)))

    def energy_scale(self, y, t=0.0):
        h, v = y[0], y[1]
        wh = self.conv(jnp.abs(self.kernel_h), jnp.abs(h))
        return 0.5 * jnp.sum(v * v) + 0.5 * jnp.sum(jnp.abs(h) * (self.gamma * jnp.abs(h) + wh))

    def lyapunov_hypotheses(self, *, max_dense: int) -> LyapunovHypotheses:
        """The hypotheses of the linear sheet's energy theorem (`SHEET_HYPOTHESES`),
        measured; `gamma I - W_h *` is materialised (`n_osc`^2 <= `max_dense`^2)."""
        n = self.n_osc
        if n > max_dense:
            raise ValueError(
                f"the hypotheses need the ({n})^2 operator W_h *; n_osc = {n} > "
                f"max_dense = {max_dense}: raise `max_dense` or check a smaller sheet"
            )
        basis = jnp.eye(n).reshape((n, *self.shape))
        cols = np.asarray(eqx.filter_vmap(lambda e: self.conv(self.kernel_h, e))(basis))
        W = cols.reshape(n, n).T.astype(np.float64)  # W[i, j]: weight of h_j in (W*h)_i
        scale = float(np.max(np.abs(W), initial=0.0)) + float(self.gamma)
        A = float(self.gamma) * np.eye(n) - W
        bias = float(np.max(np.abs(np.asarray(self.bias)), initial=0.0))
        drive = self.drive is not None
        out = {
            "linear_activation": 0.0 if self.activation == "linear" else 1.0,
            "symmetric_position_kernel": relative(
                float(np.max(np.abs(W - W.T), initial=0.0)), scale
            ),
            "no_velocity_kernel": 0.0 if self.kernel_v is None else relative(
                float(np.max(np.abs(np.asarray(self.kernel_v)), initial=0.0)), scale
            ),
            "no_bias_or_drive": 1.0 if drive else relative(bias, scale),
            "energy_bounded_below": relative(
                max(0.0, -float(np.linalg.eigvalsh(0.5 * (A + A.T))[0])), scale
            ),
        }
        return LyapunovHypotheses(out, SHEET_HYPOTHESES, _sheet_theorem)

    energy_description: ClassVar[str] = (
        "linear-sheet energy 1/2 |v|^2 + 1/2 h.(gamma h - W_h * h)"
    )

