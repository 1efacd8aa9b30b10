r"""KuraNet (Ricci et al. 2021): learned couplings that synchronise disordered networks.

- `PairwiseMLPCoupling`: the coupling function $K_\mu(x_i, x_j)$, an MLP on pairs of
  node features normalised to a matrix;
- `node_features`, `kuranet_model` (a `kl.Kuramoto` with the disorder's frequencies,
  field and delays) and `kuranet_loss` (burn-in without gradients, then a loss window);
- `feature_correlation` (in `kuranet_diagnostics.py`): the $c_x$ diagnostic.

An MLP on ordered pairs of node features gives one logit per pair; a normalisation turns
the $n \times n$ logits into a coupling matrix, which the core integrates as
`kl.DenseCoupling(K)`. The matrix is computed once per network (DESIGN.md §7), not at
every evaluation of the vector field.

The first layer acts on the concatenation $[x_i, x_j]$, so its pre-activation splits into
per-node terms, $W [x_i, x_j] + b = W_r x_i + (W_s x_j + b)$: it costs O(n) instead of
O(n^2). The remaining layers run on all $n^2$ pairs, in blocks of rows when the pair
tensor would be large (`chunk_size`), so that an $n = 10{,}000$ network needs memory of
order `chunk_size * n * hidden` rather than $n^2 \cdot$ hidden (51 GB at float32).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

import kuralab as kl

from ._checks import check_choice, check_steps
from ._pair_mlp import pair_logits

NORMALIZE = ("node", "graph", "none")
OBJECTIVES = ("circular_variance", "one_minus_r2", "cluster")
INITS = ("zero", "normal")
DELAY_UNITS = ("steps", "time")
#: Column order of `node_features`: the reference's (alphabetical h, omega, tau).
FEATURES = ("field", "omega", "delay")
HIDDEN_NORMS = ("batch", "layer", "none")
#: Above this many pair activations (rows x n x widest hidden layer) the pairs are
#: evaluated in blocks of rows.
AUTO_CHUNK_ELEMENTS = 1 << 23
_EPS_BN = 1e-5  # torch.nn.BatchNorm1d / LayerNorm default


def _xavier_normal(key, shape, gain):
    fan_out, fan_in = shape
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return std * jax.random.normal(key, shape)


def _torch_uniform(key, shape, fan_in):
    """torch.nn.Linear's default initialisation of its weight (Kaiming-uniform with
    a = sqrt(5)) and bias: both U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound)


class PairwiseMLPCoupling(eqx.Module):
    r"""KuraNet's coupling function: an MLP on node-feature pairs, normalised to a matrix.

    $$L_{ij} = \mathrm{MLP}_\mu([x_i, x_j]),\qquad
      K = \begin{cases}
        \langle d\rangle\, n\, \mathrm{softmax}_{(i,j)}(L) & \texttt{"node"}\\
        \langle d\rangle\, L_{ij} / \lVert L_{i\cdot}\rVert_2 & \texttt{"graph"}\\
        L & \texttt{"none"}
      \end{cases},\qquad K \leftarrow \tfrac12 (K + K^\top)\ \text{if symmetric}.$$

    Row $i$ receives (kuralab's convention): $K_{ij}$ is the weight with which receiver
    $i$ hears sender $j$, computed from the pair $[x_i, x_j]$.

    - `"node"`: a softmax over all $n^2$ entries times $\langle d\rangle n$: every
      weight is positive, the total mass is $\langle d\rangle n$ and the mean degree
      $\frac1n\sum_{ij}K_{ij}$ is exactly `mean_degree` for every network, trained or
      not (the reference's default, used for global synchrony).
    - `"graph"`: each row scaled to L2 norm `mean_degree` (the reference's
      `F.normalize(p=2, dim=1)` with `mean_degree=1`); signs are kept (clusters).
    - `"none"`: the raw logits (the reference warns that large steps then diverge).

    Symmetrisation comes after the normalisation, as in the reference.

    **Hidden-unit normalisation (`hidden_norm`).** The reference puts `BatchNorm1d`
    after each hidden linear layer, with the statistics taken over the $n^2$ pairs of
    the network being built (training mode). That makes every entry of $K$ depend on
    the statistics of the whole network, and it is what the published numbers used, so
    it is the default here, `"batch"`: per-unit mean and (biased) variance over all
    pairs of *this* network, learnable scale and shift, no running averages (a network
    is always normalised by its own pairs, at any $n$; the reference in training mode
    does the same). It is exact and stateless: the first layer's statistics follow in
    closed form from the per-node terms (over the product grid the mean is
    $\bar a + \bar b$ and the variance $\mathrm{var}\,a + \mathrm{var}\,b$), and each
    deeper layer needs one extra pass over the pairs (at $n = 10^4$ with hidden
    `(128, 128)`: two passes of about 3 TFLOP each). `"layer"` (LayerNorm over the
    hidden units of each pair) makes each $K_{ij}$ a function of $(x_i, x_j)$ alone,
    one pass, and is the honest alternative when a per-pair function is wanted (e.g.
    evaluating a few entries of a huge network); `"none"` leaves hidden units
    unnormalised. They give different couplings and different training behaviour;
    results are not interchangeable.

    **Arguments:**

    - `n_features`: the number of features per node $d$ (the MLP's input is $2d$).
    - `hidden`: widths of the hidden layers (default `(128, 128)`, the reference's).
    - `normalize`: `"node"` (default), `"graph"` or `"none"`.
    - `mean_degree`: $\langle d\rangle$ (default 1).
    - `symmetric`: symmetrise $K$ (default True).
    - `hidden_norm`: `"batch"` (default), `"layer"` or `"none"`.
    - `negative_slope`: of the LeakyReLU activations (default 0.01, torch's).
    - `gain`: Xavier-normal gain of the weights, biases starting at 0 (default 0.5,
      the reference's `set_gain=True, gain=.5` of its cluster and image
      configurations); or `None`: `torch.nn.Linear`'s default, weights and biases
      $U(-1/\sqrt{\text{fan-in}}, 1/\sqrt{\text{fan-in}})$, which the reference's
      global-synchrony configurations use (`set_gain=False`). The output layer has no
      bias.
    - `chunk_size`: rows of pairs evaluated at once; `None` (default) evaluates all
      pairs at once when that is below `AUTO_CHUNK_ELEMENTS` activations and picks a
      block size otherwise.
    - `key`: PRNG key for the initial weights. (Keyword only argument.)
    """

    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    norm_scales: tuple[Array, ...]
    norm_shifts: tuple[Array, ...]
    out_weight: Array
    n_features: int = eqx.field(static=True)
    hidden: tuple[int, ...] = eqx.field(static=True)
    normalize: str = eqx.field(static=True)
    mean_degree: float = eqx.field(static=True)
    symmetric: bool = eqx.field(static=True)
    hidden_norm: str = eqx.field(static=True)
    negative_slope: float = eqx.field(static=True)
    chunk_size: int | None = eqx.field(static=True)

    def __init__(
        self,
        n_features: int,
        hidden: tuple[int, ...] = (128, 128),
        normalize: str = "node",
        mean_degree: float = 1.0,
        symmetric: bool = True,
        *,
        hidden_norm: str = "batch",
        negative_slope: float = 0.01,
        gain: float | None = 0.5,
        chunk_size: int | None = None,
        key: PRNGKeyArray,
    ):
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"`n_features` must be a positive int; got {n_features!r}")
        hidden = tuple(hidden)
        if not hidden or not all(isinstance(h, int) and h >= 1 for h in hidden):
            raise ValueError(
                f"`hidden` must be a non-empty sequence of positive ints; got {hidden!r}"
            )
        check_choice("normalize", normalize, NORMALIZE)
        check_choice("hidden_norm", hidden_norm, HIDDEN_NORMS)
        if not (isinstance(mean_degree, int | float) and mean_degree > 0):
            raise ValueError(f"`mean_degree` must be a number > 0; got {mean_degree!r}")
        if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size >= 1):
            raise ValueError(f"`chunk_size` must be a positive int or None; got {chunk_size!r}")
        if gain is not None and not (
            isinstance(gain, int | float) and not isinstance(gain, bool) and gain > 0
        ):
            raise ValueError(
                f"`gain` must be a number > 0 (Xavier-normal) or None (torch's "
                f"nn.Linear default); got {gain!r}"
            )
        sizes = (2 * n_features, *hidden)
        keys = jax.random.split(key, len(hidden) + 1)
        if gain is None:
            kw, kb = zip(*(jax.random.split(k) for k in keys), strict=True)
            self.weights = tuple(
                _torch_uniform(kw[i], (sizes[i + 1], sizes[i]), sizes[i])
                for i in range(len(hidden))
            )
            self.biases = tuple(
                _torch_uniform(kb[i], (sizes[i + 1],), sizes[i]) for i in range(len(hidden))
            )
            out = _torch_uniform(kw[-1], (hidden[-1],), hidden[-1])
        else:
            self.weights = tuple(
                _xavier_normal(k, (sizes[i + 1], sizes[i]), gain)
                for i, k in enumerate(keys[:-1])
            )
            self.biases = tuple(jnp.zeros((h,)) for h in hidden)
            out = _xavier_normal(keys[-1], (1, hidden[-1]), gain)[0]
        self.norm_scales = tuple(jnp.ones((h,)) for h in hidden)
        self.norm_shifts = tuple(jnp.zeros((h,)) for h in hidden)
        self.out_weight = out
        self.n_features = n_features
        self.hidden = hidden
        self.normalize = normalize
        self.mean_degree = float(mean_degree)
        self.symmetric = bool(symmetric)
        self.hidden_norm = hidden_norm
        self.negative_slope = float(negative_slope)
        self.chunk_size = chunk_size

    # -- the pair MLP --------------------------------------------------------------

    def _check_features(self, features) -> Array:
        x = jnp.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.n_features or x.shape[0] < 1:
            raise ValueError(
                f"`features` must have shape (n, {self.n_features}) (one row of "
                f"{self.n_features} features per node); got shape {x.shape}"
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        return x

    def _act(self, z):
        return jax.nn.leaky_relu(z, self.negative_slope)

    def _norm(self, k: int, z, stats):
        """Normalise hidden layer `k`'s pre-activations `z` (..., h)."""
        if self.hidden_norm == "none":
            return z
        if self.hidden_norm == "layer":
            mean = jnp.mean(z, axis=-1, keepdims=True)
            var = jnp.var(z, axis=-1, keepdims=True)
        else:
            mean, var = stats[k]
        zn = (z - mean) * jax.lax.rsqrt(var + _EPS_BN)
        return zn * self.norm_scales[k] + self.norm_shifts[k]

    def _node_terms(self, x):
        """The first layer's per-node parts: receiver (n, h1) and sender (n, h1)."""
        W = self.weights[0].astype(x.dtype)
        d = self.n_features
        recv = x @ W[:, :d].T
        send = x @ W[:, d:].T + self.biases[0].astype(x.dtype)
        return recv, send

    def _rows(self, recv_rows, send, stats, upto: int):
        """Pre-activations of hidden layer `upto` (if < depth) or the logits (if ==
        depth) for a block of receiver rows: (r, n, h) or (r, n)."""
        z = recv_rows[:, None, :] + send[None, :, :]
        for k in range(1, len(self.hidden) + 1):
            h = self._act(self._norm(k - 1, z, stats))
            if k == len(self.hidden):
                if upto == k:
                    return h @ self.out_weight.astype(h.dtype)
                break
            z = h @ self.weights[k].T.astype(h.dtype) + self.biases[k].astype(h.dtype)
            if upto == k:
                return z
        raise AssertionError("unreachable")

    def _all_pairs(self, recv, send):
        """The logits `(n, n)` with every pair in memory at once, one matmul per layer
        (forward) and two (backward). BatchNorm: `_pair_mlp.pair_logits` (statistics
        from the pre-activations, a hand-written fused backward pass); the first
        layer's pair statistics are in closed form, z_ij = r_i + s_j over all (i, j)."""
        if self.hidden_norm == "batch":
            mean0 = jnp.mean(recv, axis=0) + jnp.mean(send, axis=0)
            var0 = jnp.var(recv, axis=0) + jnp.var(send, axis=0)
            a0 = self.norm_scales[0] * jax.lax.rsqrt(var0 + _EPS_BN)
            dt = recv.dtype
            return pair_logits(
                (recv - mean0) * a0 + self.norm_shifts[0], send * a0,
                *(tuple(p.astype(dt) for p in ps[1:]) for ps in (
                    self.weights, self.biases, self.norm_scales, self.norm_shifts)),
                self.out_weight.astype(dt), self.negative_slope,
            )
        z = recv[:, None, :] + send[None, :, :]
        depth = len(self.hidden)
        for k in range(depth):  # "layer" / "none": no pair statistics
            h = self._act(self._norm(k, z, None))
            if k + 1 == depth:
                return h @ self.out_weight.astype(h.dtype)
            z = h @ self.weights[k + 1].T.astype(h.dtype) + self.biases[k + 1].astype(h.dtype)
        raise AssertionError("unreachable")

    def _chunk(self, n: int) -> int | None:
        if self.chunk_size is not None:
            return self.chunk_size if self.chunk_size < n else None
        per_row = n * max(self.hidden)
        if n * per_row <= AUTO_CHUNK_ELEMENTS:
            return None
        return max(1, AUTO_CHUNK_ELEMENTS // per_row)

    def _over_rows(self, fn, recv, chunk):
        """`fn(recv_block, valid_block)` over blocks of `chunk` rows (`lax.map`, each
        block rematerialised under `jax.grad`); outputs stacked by block."""
        n = recv.shape[0]
        pad = (-n) % chunk
        blocks = jnp.pad(recv, ((0, pad), (0, 0))).reshape(-1, chunk, recv.shape[1])
        valid = (jnp.arange(n + pad) < n).reshape(-1, chunk)
        return jax.lax.map(jax.checkpoint(lambda a: fn(*a)), (blocks, valid))

    def _batch_stats(self, recv, send, chunk):
        """Per-unit (mean, biased variance) of each hidden layer over all n^2 pairs."""
        mean0 = jnp.mean(recv, axis=0) + jnp.mean(send, axis=0)
        var0 = jnp.var(recv, axis=0) + jnp.var(send, axis=0)
        stats = [(mean0, var0)]
        n = recv.shape[0]
        for k in range(1, len(self.hidden)):
            if chunk is None:
                z = self._rows(recv, send, stats, upto=k)
                stats.append((jnp.mean(z, axis=(0, 1)), jnp.var(z, axis=(0, 1))))
                continue
            # A shift (the first row's mean) keeps E[(z - s)^2] - E[z - s]^2 accurate.
            shift = jax.lax.stop_gradient(
                jnp.mean(self._rows(recv[:1], send, stats, upto=k), axis=(0, 1))
            )

            def moments(rows, valid, k=k, shift=shift, stats=tuple(stats)):
                z = self._rows(rows, send, stats, upto=k) - shift
                w = valid[:, None, None].astype(z.dtype)
                return jnp.sum(w * z, axis=(0, 1)), jnp.sum(w * z * z, axis=(0, 1))

            s1, s2 = self._over_rows(moments, recv, chunk)
            m1 = jnp.sum(s1, axis=0) / (n * n)
            m2 = jnp.sum(s2, axis=0) / (n * n)
            stats.append((shift + m1, jnp.maximum(m2 - m1 * m1, 0.0)))
        return stats

    def logits(self, features: Float[ArrayLike, "n d"]) -> Float[Array, "n n"]:
        """The MLP's raw output $L_{ij}$ for every ordered pair, shape `(n, n)`."""
        x = self._check_features(features)
        recv, send = self._node_terms(x)
        chunk = self._chunk(x.shape[0])
        if chunk is None:
            return self._all_pairs(recv, send)
        stats = self._batch_stats(recv, send, chunk) if self.hidden_norm == "batch" else None
        depth = len(self.hidden)
        n = x.shape[0]
        out = self._over_rows(lambda rows, valid: self._rows(rows, send, stats, depth), recv, chunk)
        return out.reshape(-1, n)[:n]

    def matrix(self, features: Float[ArrayLike, "n d"]) -> Float[Array, "n n"]:
        """The coupling matrix $K$ `(n, n)` of the network with node `features`
        `(n, n_features)` (row i receives)."""
        L = self.logits(features)
        n = L.shape[0]
        if self.normalize == "node":
            K = jax.nn.softmax(L.reshape(-1)).reshape(n, n) * (self.mean_degree * n)
        elif self.normalize == "graph":
            norm = jnp.sqrt(jnp.sum(L * L, axis=1, keepdims=True))
            K = self.mean_degree * L / jnp.maximum(norm, 1e-12)
        else:
            K = L
        if self.symmetric:
            K = 0.5 * (K + K.T)
        return K

    def coupling(self, features: Float[ArrayLike, "n d"], strength=1.0):
        """`kl.DenseCoupling(self.matrix(features), strength)`, for `kl.Kuramoto`."""
        return kl.DenseCoupling(self.matrix(features), strength=strength)


# ---------------------------------------------------------------------------------
# Disorder -> features -> model -> loss
# ---------------------------------------------------------------------------------


def _disorder_part(disorder, name: str, n: int | None):
    value = disorder.get(name)
    if value is None:
        return None
    arr = jnp.asarray(value)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = "(n,)" if n is None else f"({n},)"
        raise ValueError(
            f"`disorder[{name!r}]` must have shape {want} (one value per node); got "
            f"shape {arr.shape}"
        )
    return arr


def _check_disorder(disorder):
    if not isinstance(disorder, dict) or "omega" not in disorder:
        raise ValueError(
            "`disorder` must be a dict with at least 'omega' (and optionally 'field', "
            "'delay'), e.g. kl.learn.data.kuranet_disorder(key, n, case='I')"
        )
    unknown = set(disorder) - set(FEATURES)
    if unknown:
        raise ValueError(
            f"`disorder` has unknown key(s) {sorted(unknown)}; expected {FEATURES}"
        )
    omega = _disorder_part(disorder, "omega", None)
    n = omega.shape[0]
    return (
        omega,
        _disorder_part(disorder, "field", n),
        _disorder_part(disorder, "delay", n),
    )


def node_features(disorder: dict) -> Float[Array, "n 3"]:
    """KuraNet's node features `(n, 3)`: columns `FEATURES = ("field", "omega",
    "delay")`, i.e. $(h_i, \\omega_i, \\tau_i)$.

    The order is the reference code's (its feature dict concatenated in alphabetical key
    order). A part the disorder does not have (`None` or missing: no field in cases I
    and III, no delays in cases I and II) is a column of zeros, as in the reference.
    Delays enter as given (Euler steps in the KuraNet convention).
    """
    omega, field, delay = _check_disorder(disorder)
    dtype = omega.dtype if jnp.issubdtype(omega.dtype, jnp.floating) else jnp.result_type(float)
    cols = [
        jnp.zeros_like(omega, dtype) if v is None else jnp.asarray(v).astype(dtype)
        for v in (field, omega, delay)
    ]
    return jnp.stack(cols, axis=1)


def kuranet_model(
    coupling: PairwiseMLPCoupling,
    disorder: dict,
    *,
    features: Float[ArrayLike, "n d"] | None = None,
    strength=1.0,
    delay_units: str = "steps",
    max_delay: float | None = None,
):
    r"""The KuraNet network as a `kl.Kuramoto` model (the "full" model of the reference).

    $$\dot\theta_i = \omega_i + s\sum_j K_{ij}\sin(\theta_j(t - \tau_j) - \theta_i)
      + h_i \sin\theta_i ,\qquad K = \texttt{coupling.matrix}(x).$$

    $K$ is computed here, once per network, and handed to the core as
    `kl.DenseCoupling(K, strength=s)`. The field $h_i\sin\theta_i$ is
    `kl.Forcing(strength=-h, phase=0)`; delays are `kl.Delays(tau)` per sender.

    **Arguments:**

    - `coupling`: a `PairwiseMLPCoupling`.
    - `disorder`: dict with `"omega"` `(n,)` and optional `"field"` and `"delay"`
      (`(n,)` or `None`), e.g. from `kl.learn.data.kuranet_disorder`.
    - `features`: node features `(n, coupling.n_features)`; default
      `node_features(disorder)`. Clustering tasks pass the data points here.
    - `strength`: a multiplier $s$ of $K$ (default 1; the reference's XY model for
      clusters uses $1/n$).
    - `delay_units`: `"steps"` (default: the reference's integer Euler-step delays,
      `kl.Delays(tau, convention="kuranet")`: clipped at 40, a warm-up of
      $\max\tau + 1$ delay-free Euler steps fills the history; needs `solver="euler"`)
      or `"time"` (delays in time units, interpolated history, any fixed-step solver).
    - `max_delay`: bound on traced delays in time units (`delay_units="time"` under
      `jit`/`vmap`).

    **Returns:** a `kl.Kuramoto`.
    """
    if not isinstance(coupling, PairwiseMLPCoupling):
        raise TypeError(
            f"`coupling` must be a kl.learn.PairwiseMLPCoupling; got {type(coupling).__name__}"
        )
    check_choice("delay_units", delay_units, DELAY_UNITS)
    omega, field, delay = _check_disorder(disorder)
    n = omega.shape[0]
    x = node_features(disorder) if features is None else features
    if jnp.shape(x)[:1] != (n,):
        raise ValueError(
            f"`features` must have one row per node, shape ({n}, {coupling.n_features}); "
            f"got shape {jnp.shape(x)}"
        )
    forcing = None if field is None else kl.Forcing(strength=-field, phase=0.0)
    delays = None
    if delay is not None:
        if delay_units == "steps":
            delays = kl.Delays(delay, convention="kuranet")
        else:
            delays = kl.Delays(delay, max_delay=max_delay)
    return kl.Kuramoto(
        omega, coupling.coupling(x, strength=strength), forcing=forcing, delays=delays
    )


def _order_magnitude(t, theta):
    """R(t) = |<exp(i theta)>|, what the synchrony objectives need from each step."""
    return jnp.abs(kl.order_parameter(theta))


def _check_labels(labels, n: int, num_clusters):
    labels = jnp.asarray(labels)
    if labels.shape != (n,) or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(
            f"`labels` must be integer group labels of shape ({n},) (one per node of the "
            f"network); got {labels.dtype} of shape {labels.shape}"
        )
    if num_clusters is None:
        if isinstance(labels, jax.core.Tracer):
            raise ValueError(
                "`num_clusters` is required when `labels` are traced (under jit/vmap)"
            )
        num_clusters = int(jnp.max(labels)) + 1
    return labels, num_clusters


def kuranet_loss(
    coupling: PairwiseMLPCoupling,
    disorder: dict,
    *,
    key: PRNGKeyArray | None = None,
    burn_in: int = 100,
    window: int = 50,
    dt: float = 0.1,
    objective: str = "circular_variance",
    labels=None,
    num_clusters: int | None = None,
    features=None,
    strength=1.0,
    init: str = "zero",
    delay_units: str = "steps",
    max_delay: float | None = None,
    solver: str = "euler",
) -> Array:
    r"""KuraNet's training loss on ONE network: burn-in without gradients, then a window.

    The network (`kuranet_model`) runs from $\theta(0)$ for `burn_in` steps of size
    `dt` under `jax.lax.stop_gradient` (truncated backpropagation, as the reference's
    `torch.set_grad_enabled(False)`; `kl.simulate(..., burn_in=)`), then `window`
    steps through which gradients flow back to $K$ and the MLP. The loss is the mean
    over the window's `window` saved steps $t_k = (\text{burn\_in} + k)\,dt$,
    $k = 1..\text{window}$, of

    - `"circular_variance"`: $1 - R(t)$ (the reference's; $R = |\frac1n\sum_j
      e^{i\theta_j}|$);
    - `"one_minus_r2"`: $1 - R(t)^2$;
    - `"cluster"`: `kl.cluster_order(theta(t), labels)`, the cluster synchrony + splay
      loss normalised to $[0, 1]$, with empty groups masked.

    Only what the objective needs is saved ($R$ at each window step, or the window's
    phases for `"cluster"`). The simulation runs with `throw=False`, so a diverging
    network gives a non-finite loss (which `kl.learn.fit` reports with the step).

    **Arguments:**

    - `coupling`, `disorder`, `features`, `strength`, `delay_units`, `max_delay`: as
      in `kuranet_model`.
    - `key`: PRNG key, needed for `init="normal"`. (Keyword only argument.)
    - `burn_in`, `window`: numbers of Euler steps (defaults 100 and 50, the
      reference's).
    - `dt`: the step (default 0.1, the reference's `alpha`).
    - `objective`: `"circular_variance"` (default), `"one_minus_r2"` or `"cluster"`.
    - `labels`, `num_clusters`: integer group labels `(n,)` and their number (static;
      required under `jit` when labels are traced), for `objective="cluster"` only.
    - `init`: initial phases, `"zero"` (default; the full model) or `"normal"`
      ($\theta_i \sim N(\pi, 1)$, the reference's XY/cluster runs).
    - `solver`: default `"euler"` (the reference's scheme).

    **Returns:** a scalar.
    """
    check_choice("objective", objective, OBJECTIVES)
    check_choice("init", init, INITS)
    burn_in = check_steps("burn_in", burn_in, 0)
    window = check_steps("window", window, 1)
    model = kuranet_model(
        coupling, disorder, features=features, strength=strength,
        delay_units=delay_units, max_delay=max_delay,
    )
    n = model.n_osc
    if objective == "cluster":
        if labels is None:
            raise ValueError("`labels` are required for objective='cluster'")
        labels, num_clusters = _check_labels(labels, n, num_clusters)
    elif labels is not None:
        raise ValueError(
            f"`labels` are used only by objective='cluster'; got objective={objective!r}"
        )
    dtype = model.omega.dtype
    if init == "zero":
        theta0 = jnp.zeros((n,), dtype)
    else:
        if key is None:
            raise ValueError("`key` is required for init='normal' (random initial phases)")
        theta0 = jnp.pi + jax.random.normal(key, (n,), dtype)
    fn = None if objective == "cluster" else _order_magnitude
    traj = kl.simulate(
        model,
        theta0,
        t1=(burn_in + window) * dt,
        dt=dt,
        burn_in=burn_in * dt,
        solver=solver,
        saveat=kl.SaveAt(every=1, fn=fn),
        throw=False,
    )
    ys = traj.ys[-window:]  # with burn_in = 0 the save at t0 is dropped as well
    if objective == "circular_variance":
        per_step = 1.0 - ys
    elif objective == "one_minus_r2":
        per_step = 1.0 - ys * ys
    else:
        per_step = kl.cluster_order(ys, labels, num_clusters)
    return jnp.mean(per_step)
