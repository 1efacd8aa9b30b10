r"""A coRNN-sheet sequence autoencoder / VAE for rotating images (the TcoRNN of
research/reference_impls.md §4.2, shrunk for a 2-core CPU).

Frames $x_0, \dots, x_{T-1}$ (flattened images in [0, 1]). The encoder, a linear map of
each frame (to $N$ or, as a VAE, to $2N$ = mean and log-variance), gives a latent $z_t$;
its layer norm without affine parameters, reshaped to the grid, is the drive $s_t$. The
sheet starts at $h_0 = s_0$, $v_0 = 0$ and at step $t$ takes the drive $s_t$
(`CoRNNCell` with `input_size=None`: $W_z \star s_t$); the decoder
$\hat x_{t+1} = \mathrm{sigmoid}(D\, h_{t+1} + d)$ reads the *position* only and
predicts the next frame, cyclically ($x_{(t+1) \bmod T}$). Loss per sequence

$$\mathcal L = \frac1T \sum_t \Big[\sum_\text{pixels}
   \mathrm{BCE}(\hat x_{t+1}, x_{(t+1) \bmod T}) + \mathrm{KL}_t\Big],$$

with $\mathrm{KL}_t$ the KL divergence of $q(z_t)$ from $N(0, I)$ (zero for the
deterministic autoencoder). The reference's loss is this averaged over the batch.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .cornn import CoRNNCell

DRIVES = ("all", "first")


def _layer_norm(x, eps: float = 1e-5):
    return (x - x.mean()) * jax.lax.rsqrt(x.var() + eps)


def bernoulli_nll(p, x, eps: float = 1e-6):
    """Summed binary cross-entropy of targets `x` in [0, 1] under probabilities `p`."""
    p = jnp.clip(p, eps, 1 - eps)
    return -jnp.sum(x * jnp.log(p) + (1 - x) * jnp.log1p(-p))


class CoRNNAutoencoder(eqx.Module):
    """Next-frame sequence (variational) autoencoder with a coRNN latent sheet.

    **Arguments:**

    - `image_size`: pixels per frame (e.g. 28 * 28); frames are passed flattened or as
      images (any trailing shape with that many elements).
    - `shape`: the latent grid, e.g. `(16, 16)`.
    - `variational`: a VAE (Gaussian encoder, N(0, 1) prior, reparameterised sample)
      instead of a deterministic autoencoder.
    - `drive`: `"all"` (the reference: every frame's encoding drives the sheet) or
      `"first"` (only frame 0 is encoded, as the initial position $h_0 = s_0$; the
      sheet then runs free and must generate the rest of the sequence itself).
    - `key`: PRNG key. (Keyword only argument.) Every other keyword goes to
      `CoRNNCell` (default `init="reference"`: Delta = sigmoid(-1.95), gamma 1, alpha 0.5,
      constant kernels).
    """

    encoder: eqx.nn.Linear
    cell: CoRNNCell
    decoder: eqx.nn.Linear
    image_size: int = eqx.field(static=True)
    variational: bool = eqx.field(static=True)
    drive: str = eqx.field(static=True)

    def __init__(self, image_size: int, shape, *, variational: bool = False, drive: str = "all",
                 key: PRNGKeyArray, **cell_kwargs):
        if drive not in DRIVES:
            raise ValueError(f"`drive` must be one of {DRIVES}; got {drive!r}")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"`image_size` must be a positive int (pixels per frame); got {image_size!r}")
        ke, kc, kd = jax.random.split(key, 3)
        cell_kwargs.setdefault("init", "reference")
        self.cell = CoRNNCell(shape, None, key=kc, **cell_kwargs)
        n = self.cell.n_sites
        self.encoder = eqx.nn.Linear(image_size, 2 * n if variational else n, key=ke)
        self.decoder = eqx.nn.Linear(n, image_size, key=kd)
        self.image_size = image_size
        self.variational = variational
        self.drive = drive

    def _frames(self, frames):
        frames = jnp.asarray(frames)
        if frames.ndim < 2 or math.prod(frames.shape[1:]) != self.image_size or frames.shape[0] < 2:
            raise ValueError(
                f"`frames` must be (T >= 2, ...) with {self.image_size} pixels per frame "
                f"(one sequence; vmap for a batch); got shape {frames.shape}"
            )
        return frames.reshape(frames.shape[0], self.image_size)

    def encode(self, frames, *, key: PRNGKeyArray | None = None):
        """Drives `s` of shape `(T, *shape)` and the per-frame KL `(T,)` (zeros unless
        variational; `key` samples the latent, None uses the mean)."""
        x = jnp.asarray(frames).reshape(-1, self.image_size)
        out = jax.vmap(self.encoder)(x)
        n = self.cell.n_sites
        if self.variational:
            mu, logvar = out[:, :n], out[:, n:]
            kl = 0.5 * jnp.sum(jnp.exp(logvar) + mu**2 - 1.0 - logvar, 1)
            z = mu if key is None else mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
        else:
            z, kl = out, jnp.zeros(x.shape[0], out.dtype)
        s = jax.vmap(_layer_norm)(z).reshape(-1, *self.cell.shape)
        return s, kl

    def rollout(self, frames, *, key: PRNGKeyArray | None = None):
        """`(predictions, hs, kl)`: `predictions[t]` (flattened, probabilities) is the
        forecast of frame `(t + 1) mod T`, `hs[t]` the sheet position after step `t`,
        each `(T, ...)`; `kl` the per-frame KL `(T,)`."""
        x = self._frames(frames)
        if self.drive == "first":
            s, kl = self.encode(x[:1], key=key)
            kl = jnp.concatenate([kl, jnp.zeros(x.shape[0] - 1, kl.dtype)])
            us = jnp.zeros((x.shape[0], *self.cell.shape), s.dtype)
            drive_only = True
        else:
            s, kl = self.encode(x, key=key)
            us, drive_only = s, False
        state = self.cell.init_state(h0=s[0], dtype=s.dtype)
        _, (hs, _) = self.cell.scan(us, state, drive_only=drive_only)
        pred = jax.nn.sigmoid(jax.vmap(self.decoder)(hs.reshape(hs.shape[0], -1)))
        return pred, hs, kl

    def loss(self, frames, *, key: PRNGKeyArray | None = None):
        """The per-sequence loss (module docstring) and its next-frame part alone."""
        x = self._frames(frames)
        pred, _, kl = self.rollout(x, key=key)
        target = jnp.roll(x, -1, axis=0)
        nll = jax.vmap(bernoulli_nll)(pred, target)
        return jnp.mean(nll + kl), jnp.mean(nll)


def autoencoder_loss(model: CoRNNAutoencoder, frames: Float[Array, "batch T ..."],
                     key: PRNGKeyArray | None = None):
    """Batch loss for `kl.learn.fit`: `(mean loss, {"nll": mean next-frame NLL})`, with
    `frames` of shape `(batch, T, ...)`; `key` draws the VAE's samples."""
    frames = jnp.asarray(frames)
    keys = (None if key is None or not model.variational
            else jax.random.split(key, frames.shape[0]))
    if keys is None:
        total, nll = jax.vmap(lambda f: model.loss(f))(frames)
    else:
        total, nll = jax.vmap(lambda f, k: model.loss(f, key=k))(frames, keys)
    return jnp.mean(total), {"nll": jnp.mean(nll)}
