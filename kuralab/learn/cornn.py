r"""Trainable coRNN sheets: second-order oscillators on a 1-D/2-D grid with local kernels.

The discrete cell of the topographic-wave papers (Keller & Welling's TcoRNN / Neural Wave
Machines, after Rusch & Mishra's coRNN; research/reference_impls.md §4). Each site $i$ of
a grid of `shape` carries a position $h_i$ and a velocity $v_i$; one step (one frame) is
a symplectic-Euler update

$$v \leftarrow v + \Delta\,\big[\tanh(W_h \star h + W_v \star v + u(z) + b)
                              - \gamma h - \alpha v\big],\qquad
  h \leftarrow h + \Delta\, v,$$

with the *new* $v$ in the position update (that is what makes it symplectic for the
undamped linear sheet). $\star$ is a cross-correlation with a small kernel (torch's
`Conv2d` convention: $(W \star x)_i = \sum_a W_a\, x_{i + a - c}$, $c$ the kernel's
centre) on the grid, with circular (`"periodic"`) or zero (`"zero"`) padding. The
drive $u(z)$ is a dense map of an input vector $z \in \mathbb R^{\text{input\_size}}$
(`input_size` an int: the adding task's `Linear`) or, with `input_size=None`, a third
kernel acting on an input map $z$ of the grid's shape ($W_z \star z$, the TcoRNN).

Parameters are trained through unconstrained raw values: $\Delta = \mathrm{sigmoid}
(\Delta_\text{raw})$, $\gamma = \mathrm{relu}(\gamma_\text{raw})$, $\alpha =
\mathrm{relu}(\alpha_\text{raw})$ (the reference's clamps). A parameter left out of
`trainable` is stored as a Python float, which `kl.learn.fit` does not train.

Initialisations (`init`):

- `"torch"` (default): PyTorch's defaults, as in the NWM sequence models: kernels and
  the dense input map $\sim U(\pm 1/\sqrt{\text{fan\_in}})$, input bias likewise, $b = 0$.
- `"reference"`: the LocoRNN/TcoRNN one: every kernel entry the constant $1/\prod$
  `shape`, $\Delta_\text{raw} = -1.95$ ($\Delta \approx 0.1246$), $\gamma = 1$,
  $\alpha = 0.5$, $b = 0$ (the values of `dt`, `gamma`, `alpha` given are ignored).

Every module acts on ONE example; batch with `jax.vmap`.
"""

from __future__ import annotations

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._checks import check_choice

BOUNDARIES = ("periodic", "zero")
METHODS = ("auto", "conv", "kernel", "dense")
INITS = ("torch", "reference")
PHYSICAL = ("dt", "gamma", "alpha")
#: `method="auto"` builds the dense (N, N) coupling matrices up to this many sites.
AUTO_DENSE_SITES = 400
REFERENCE_DT_RAW = -1.95


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _check_shape(shape) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"`shape` must be a tuple of 1 or 2 grid sizes; got {shape!r}") from None
    if len(out) not in (1, 2) or any(s < 1 for s in out):
        raise ValueError(f"`shape` must be a tuple of 1 or 2 positive grid sizes; got {shape!r}")
    return out


def check_kernel(name: str, kernel, shape: tuple[int, ...]) -> Array:
    """A kernel of rank `len(shape)`, odd sizes, none larger than the grid."""
    k = jnp.asarray(kernel)
    if k.ndim != len(shape):
        raise ValueError(
            f"`{name}` must have rank {len(shape)} (one axis per grid axis of {shape}); "
            f"got shape {k.shape}"
        )
    if any(s % 2 == 0 or s > g for s, g in zip(k.shape, shape, strict=True)):
        raise ValueError(
            f"`{name}` must have odd sizes no larger than the grid {shape}; got shape {k.shape}"
        )
    return k


def lattice_correlate(kernel: Float[Array, "*k"], x: Float[Array, "*grid"],
                      boundary: str = "periodic") -> Float[Array, "*grid"]:
    r"""$(W \star x)_i = \sum_a W_a\, x_{i + a - c}$ on the grid (cross-correlation, the
    kernel centred at $c$ = `kernel.shape // 2`), circular or zero padding."""
    c = [s // 2 for s in kernel.shape]
    mode = "wrap" if boundary == "periodic" else "constant"
    xp = jnp.pad(x, [(ci, ci) for ci in c], mode=mode)
    out = jnp.zeros_like(x)
    for a in itertools.product(*(range(s) for s in kernel.shape)):
        sl = tuple(slice(ai, ai + n) for ai, n in zip(a, x.shape, strict=True))
        out = out + kernel[a] * xp[sl]
    return out


def _conv_pair(kh, kv, h, v, boundary: str):
    r"""$W_h \star h + W_v \star v$ as one `lax.conv_general_dilated` (2 input channels)."""
    c = [s // 2 for s in kh.shape]
    mode = "wrap" if boundary == "periodic" else "constant"
    hv = jnp.pad(jnp.stack([h, v]), [(0, 0)] + [(ci, ci) for ci in c], mode=mode)[None]
    w = jnp.stack([kh, kv]).astype(hv.dtype)[None]
    nd = h.ndim
    spec = ("NC" + "HW"[:nd] if nd == 2 else "NCH", "OI" + "HW"[:nd] if nd == 2 else "OIH",
            "NC" + "HW"[:nd] if nd == 2 else "NCH")
    return jax.lax.conv_general_dilated(hv, w, (1,) * nd, "VALID", dimension_numbers=spec)[0, 0]


def lattice_matrix(kernel: Float[Array, "*k"], shape: tuple[int, ...],
                   boundary: str = "periodic") -> Float[Array, "n n"]:
    """The (N, N) matrix M with `M @ x.ravel() == lattice_correlate(kernel, x).ravel()`."""
    n = math.prod(shape)
    basis = jnp.eye(n, dtype=kernel.dtype).reshape(n, *shape)
    cols = jax.vmap(lambda e: lattice_correlate(kernel, e, boundary).reshape(-1))(basis)
    return cols.T


class CoRNNCell(eqx.Module):
    r"""One symplectic-Euler step of a coRNN sheet with learnable local kernels.

    $v' = v + \Delta[\tanh(W_h\star h + W_v\star v + u(z) + b) - \gamma h - \alpha v]$,
    $h' = h + \Delta v'$ (module docstring). State `(h, v)`, each of shape `shape`.

    **Arguments:**

    - `shape`: the grid, `(n,)` or `(ny, nx)`.
    - `input_size`: features of the input vector $z$ (a dense map to the grid), or None:
      $z$ is a map of shape `shape`, driven through a kernel $W_z$.
    - `dt`, `gamma`, `alpha`: initial $\Delta \in (0, 1)$, $\gamma \ge 0$, $\alpha \ge 0$.
    - `kernel_size`: odd size of the local kernels (3: 3x3 in 2-D, 3 taps in 1-D).
    - `coupled`: False switches the lattice coupling off: no $W_h$, $W_v$ (each site an
      independent oscillator, driven by the input only) — the control.
    - `kernel_h`, `kernel_v`: explicit kernels (override the initialisation).
    - `boundary`: `"periodic"` (circular padding, the reference) or `"zero"`.
    - `trainable`: which of `"dt"`, `"gamma"`, `"alpha"` are trained (all by default;
      the NWM adding task keeps them fixed: `trainable=()`).
    - `init`: `"torch"` or `"reference"` (module docstring).
    - `method`: `"kernel"` (sum of shifted copies), `"dense"` (an (N, N) matrix built
      from the kernels, one matmul per step: faster on small grids) or `"auto"`.
    - `key`: PRNG key. (Keyword only argument.)
    """

    kernel_h: Float[Array, "*k"] | None
    kernel_v: Float[Array, "*k"] | None
    input_weight: Float[Array, "n input"] | Float[Array, "*k"]
    input_bias: Float[Array, " n"] | None
    bias: Float[Array, "*grid"]
    dt_raw: Float[Array, ""] | float
    gamma_raw: Float[Array, ""] | float
    alpha_raw: Float[Array, ""] | float
    shape: tuple[int, ...] = eqx.field(static=True)
    input_size: int | None = eqx.field(static=True)
    boundary: str = eqx.field(static=True)
    method: str = eqx.field(static=True)

    def __init__(self, shape, input_size: int | None, *, dt: float = 0.1, gamma: float = 1.0,
                 alpha: float = 0.5, kernel_size: int = 3, coupled: bool = True,
                 kernel_h: ArrayLike | None = None, kernel_v: ArrayLike | None = None,
                 boundary: str = "periodic", trainable=PHYSICAL, init: str = "torch",
                 method: str = "auto", key: PRNGKeyArray):
        shape = _check_shape(shape)
        check_choice("boundary", boundary, BOUNDARIES)
        check_choice("init", init, INITS)
        check_choice("method", method, METHODS)
        trainable = tuple(trainable)
        for t in trainable:
            check_choice("trainable", t, PHYSICAL)
        if input_size is not None and (isinstance(input_size, bool) or not isinstance(input_size, int)
                                       or input_size < 1):
            raise ValueError(f"`input_size` must be a positive int or None (a grid map); got {input_size!r}")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 \
                or kernel_size % 2 == 0 or kernel_size > min(shape):
            raise ValueError(
                f"`kernel_size` must be an odd int between 1 and the smallest grid size "
                f"{min(shape)}; got {kernel_size!r}"
            )
        if init == "reference":
            dt, gamma, alpha = 1.0 / (1.0 + math.exp(-REFERENCE_DT_RAW)), 1.0, 0.5
        if not 0.0 < dt < 1.0:
            raise ValueError(f"`dt` must lie in (0, 1) (it is sigmoid(dt_raw)); got {dt!r}")
        if gamma < 0 or alpha < 0:
            raise ValueError(f"`gamma` and `alpha` must be >= 0; got {gamma!r}, {alpha!r}")
        n = math.prod(shape)
        kshape = (kernel_size,) * len(shape)
        fan = kernel_size ** len(shape)
        kh, kv, kz, kb = jax.random.split(key, 4)

        def kernel(k):
            if init == "reference":
                return jnp.full(kshape, 1.0 / n)
            return jax.random.uniform(k, kshape, minval=-1.0, maxval=1.0) / math.sqrt(fan)

        if coupled:
            self.kernel_h = kernel(kh) if kernel_h is None else check_kernel("kernel_h", kernel_h, shape)
            self.kernel_v = kernel(kv) if kernel_v is None else check_kernel("kernel_v", kernel_v, shape)
        else:
            if kernel_h is not None or kernel_v is not None:
                raise ValueError("`kernel_h`/`kernel_v` must be None when `coupled=False`")
            self.kernel_h = self.kernel_v = None
        if input_size is None:
            self.input_weight = kernel(kz)
            self.input_bias = None
        else:
            bound = 1.0 / math.sqrt(input_size)
            self.input_weight = jax.random.uniform(kz, (n, input_size), minval=-bound, maxval=bound)
            self.input_bias = jax.random.uniform(kb, (n,), minval=-bound, maxval=bound)
        self.bias = jnp.zeros(shape)
        raws = {"dt": _logit(dt), "gamma": float(gamma), "alpha": float(alpha)}
        self.dt_raw, self.gamma_raw, self.alpha_raw = (
            jnp.asarray(raws[p]) if p in trainable else raws[p] for p in PHYSICAL
        )
        self.shape = shape
        self.input_size = input_size
        self.boundary = boundary
        self.method = ("dense" if n <= AUTO_DENSE_SITES else "kernel") if method == "auto" else method

    # -- physical parameters ---------------------------------------------------------
    @property
    def dt(self):
        r"""$\Delta = \mathrm{sigmoid}(\Delta_\text{raw})$."""
        return jax.nn.sigmoid(jnp.asarray(self.dt_raw))

    @property
    def gamma(self):
        r"""$\gamma = \mathrm{relu}(\gamma_\text{raw})$."""
        return jax.nn.relu(jnp.asarray(self.gamma_raw))

    @property
    def alpha(self):
        r"""$\alpha = \mathrm{relu}(\alpha_\text{raw})$."""
        return jax.nn.relu(jnp.asarray(self.alpha_raw))

    @property
    def coupled(self) -> bool:
        return self.kernel_h is not None

    @property
    def n_sites(self) -> int:
        return math.prod(self.shape)

    # -- the step --------------------------------------------------------------------
    def operators(self):
        """What every step reuses: the dense (N, 2N) coupling matrix `[M_h, M_v]` under
        `method="dense"`, else the kernels. Build once per sequence (outside the scan)."""
        if not self.coupled:
            return None
        if self.method == "dense":
            return jnp.concatenate([lattice_matrix(self.kernel_h, self.shape, self.boundary),
                                    lattice_matrix(self.kernel_v, self.shape, self.boundary)], 1)
        return (self.kernel_h, self.kernel_v)

    def drive(self, z) -> Float[Array, "*grid"]:
        """$u(z)$: the input's drive on the grid (dense map, or $W_z \\star z$)."""
        if self.input_size is None:
            z = jnp.asarray(z)
            if z.shape != self.shape:
                raise ValueError(f"input `z` must be a map of the grid's shape {self.shape}; got {z.shape}")
            return lattice_correlate(self.input_weight, z, self.boundary)
        z = jnp.asarray(z)
        if z.shape != (self.input_size,):
            raise ValueError(f"input `z` must have shape ({self.input_size},); got {z.shape}")
        return (self.input_weight @ z + self.input_bias).reshape(self.shape)

    def coupling_term(self, h, v, ops=None) -> Float[Array, "*grid"]:
        r"""$W_h \star h + W_v \star v$ (zero when uncoupled)."""
        if not self.coupled:
            return jnp.zeros(self.shape, jnp.result_type(h))
        ops = self.operators() if ops is None else ops
        if self.method == "dense":
            return (ops @ jnp.concatenate([h.reshape(-1), v.reshape(-1)])).reshape(self.shape)
        if self.method == "conv":
            return _conv_pair(ops[0], ops[1], h, v, self.boundary)
        return (lattice_correlate(ops[0], h, self.boundary)
                + lattice_correlate(ops[1], v, self.boundary))

    def step_drive(self, state, u, ops=None):
        """One step given the drive `u` (already on the grid): `(h, v) -> (h', v')`."""
        h, v = state
        acc = jnp.tanh(self.coupling_term(h, v, ops) + u + self.bias) - self.gamma * h - self.alpha * v
        v = v + self.dt * acc
        return (h + self.dt * v, v)

    def __call__(self, state, z, ops=None):
        """One step: `state = (h, v)` (each of shape `shape`), input `z` -> `(h', v')`."""
        h, v = state
        if jnp.shape(h) != self.shape or jnp.shape(v) != self.shape:
            raise ValueError(
                f"`state` must be (h, v), each of the grid's shape {self.shape}; got "
                f"{jnp.shape(h)} and {jnp.shape(v)}"
            )
        return self.step_drive(state, self.drive(z), ops)

    def to_model(self, *, drive=None, drive_dt: float | None = None):
        """This sheet as the physics model `kl.LatticeOscillators` (same kernels, bias,
        gamma, alpha, boundary; `kernel_z` = $W_z$ for a grid-input cell), so that
        `kl.simulate(..., dt=float(cell.dt), solver="symplectic_euler")` with
        `drive_dt=dt` reproduces `scan` on grid inputs. Needs a coupled cell."""
        import kuralab as kl

        if not self.coupled:
            raise ValueError("`to_model` needs a coupled cell (kernel_h is None when coupled=False)")
        return kl.LatticeOscillators(
            self.shape, self.kernel_h, self.kernel_v, gamma=self.gamma, alpha=self.alpha,
            boundary="periodic" if self.boundary == "periodic" else "open", bias=self.bias,
            kernel_z=self.input_weight if self.input_size is None else None, drive=drive,
            drive_dt=float(self.dt) if drive_dt is None else drive_dt,
        )

    def init_state(self, h0=None, dtype=None):
        """`(h, v)`: zeros, or position `h0` (grid-shaped) with zero velocity."""
        dtype = dtype or jnp.result_type(self.bias)
        h = jnp.zeros(self.shape, dtype) if h0 is None else jnp.asarray(h0).reshape(self.shape)
        return (h, jnp.zeros(self.shape, h.dtype))

    def scan(self, zs, state=None, *, drive_only: bool = False):
        """Run the cell over the leading axis of `zs` (T inputs): `(final state, (hs, vs))`,
        `hs`, `vs` of shape `(T, *shape)` (the state after each step). With
        `drive_only=True`, `zs` are drives already on the grid (skip the input map)."""
        zs = jnp.asarray(zs)
        if zs.ndim < 1 or zs.shape[0] < 1:
            raise ValueError(f"`zs` must be a sequence (T >= 1 along axis 0); got shape {zs.shape}")
        want = self.shape if (drive_only or self.input_size is None) else (self.input_size,)
        if zs.shape[1:] != want:
            raise ValueError(f"`zs` must have shape (T, {', '.join(map(str, want))}); got {zs.shape}")
        state = self.init_state(dtype=zs.dtype) if state is None else state
        ops = self.operators()
        if drive_only:
            us = zs
        elif self.input_size is None:
            us = jax.vmap(self.drive)(zs)
        else:  # one matmul for the whole sequence, outside the scan
            us = (zs @ self.input_weight.T + self.input_bias).reshape(-1, *self.shape)

        def body(s, u):
            s = self.step_drive(s, u, ops)
            return s, s

        final, traj = jax.lax.scan(body, state, us)
        return final, traj


class CoRNNSequence(eqx.Module):
    """Sequence model: a `CoRNNCell` sheet (its input map is the encoder) and a linear
    readout of the final position $h_T$ (the NWM sequence models, research §4.3).

    `model(xs)` with `xs` of shape `(T, input_size)` returns `(output_size,)` (a scalar
    for `output_size=None`). `model.trajectory(xs)` gives `(hs, vs)`, each `(T, *shape)`.

    **Arguments:** `shape`, `input_size`, `output_size` (int or None: scalar output),
    `length` (optional: the sequence length every call must have), `key` (keyword
    only); every other keyword goes to `CoRNNCell`.
    """

    cell: CoRNNCell
    readout: eqx.nn.Linear
    output_size: int | None = eqx.field(static=True)
    length: int | None = eqx.field(static=True)

    def __init__(self, shape, input_size: int, output_size: int | None = None, *,
                 length: int | None = None, key: PRNGKeyArray, **cell_kwargs):
        if input_size is None:
            raise ValueError("`input_size` of a CoRNNSequence must be a positive int (features per step)")
        if output_size is not None and (not isinstance(output_size, int) or output_size < 1):
            raise ValueError(f"`output_size` must be a positive int or None (scalar); got {output_size!r}")
        if length is not None and (not isinstance(length, int) or length < 1):
            raise ValueError(f"`length` must be a positive int or None; got {length!r}")
        kc, kr = jax.random.split(key)
        self.cell = CoRNNCell(shape, input_size, key=kc, **cell_kwargs)
        self.readout = eqx.nn.Linear(self.cell.n_sites, "scalar" if output_size is None else output_size,
                                     key=kr)
        self.output_size = output_size
        self.length = length

    def _check(self, xs):
        xs = jnp.asarray(xs)
        if xs.ndim != 2 or xs.shape[1] != self.cell.input_size:
            raise ValueError(
                f"`xs` must have shape (T, {self.cell.input_size}) (one example; vmap for a "
                f"batch); got {xs.shape}"
            )
        if self.length is not None and xs.shape[0] != self.length:
            raise ValueError(f"`xs` must have length T = {self.length}; got {xs.shape[0]}")
        return xs

    def trajectory(self, xs):
        """`(hs, vs)`, each of shape `(T, *shape)`: the sheet's state after every step."""
        _, traj = self.cell.scan(self._check(xs))
        return traj

    def __call__(self, xs):
        (h, _), _ = self.cell.scan(self._check(xs))
        return self.readout(h.reshape(-1))

