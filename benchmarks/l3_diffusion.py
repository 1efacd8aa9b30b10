"""L3: the Kuramoto orientation-diffusion forward chain (issue 14), plus one training step.

Forward chain: 128 images of 3 x 32 x 32 (synthetic pixels in [-1, 1], theta = 0.9 pi x),
100 transitions with the paper's schedules (K = linspace(3e-5, 0.03), K_ref = 1.5 K,
sigma^2 = linspace(1e-4, 0.1)), global mean field per image over channels and pixels,
EVERY state kept: output (100, 128, 3, 32, 32) float32. Implementations:

- kuralab: `jax.vmap(kl.learn.OrientationDiffusion().forward)` under `jax.jit` (one
  `lax.scan`, `kuralab._fastmath.sincos`, Box--Muller normals from threefry bits).
- hand-written `jax.lax.scan`: the same step in plain jax.numpy (`jnp.sin`/`jnp.cos`,
  `jax.random.normal`, the batch inside the scan).
- PyTorch: a port of the reference loop written from research/reference_impls.md §3.1
  (a Python loop over steps; per-image mean of exp(i theta); `torch.randn`; wrap by
  `torch.remainder`; states appended to a list and stacked). Skipped with a message
  where torch is missing.

Check (the noise streams differ): at the last state, the batch means of cos theta,
sin theta and of the per-image R agree with kuralab's within 0.01 (standard error of
each ~2e-3 over 393,216 phases / 128 images); the first state's mean |theta_1 -
theta_0| (the one-step displacement) within 2%.

Training step: one `kl.learn.fit` step (value-and-grad + clip + Adam) of the local
score-matching loss of `ScoreUNet(1, width=16)` on 16 fields 1 x 16 x 16, 8 transitions
per chain, 1 Monte-Carlo sample (the study's configuration); timed only.
"""

from __future__ import annotations

import math
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import Check, Result, Skipped

import kuralab.learn as L
from kuralab.learn._train import _step

B, C, H, W, T = 128, 3, 32, 32, 100
TOL = 0.01


def images(seed: int = 14) -> np.ndarray:
    """Smooth synthetic images in [-1, 1], (B, C, H, W): low-frequency random fields."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.arange(H) / H, np.arange(W) / W, indexing="ij")
    out = np.zeros((B, C, H, W))
    for k in range(4):
        a = rng.normal(size=(B, C, 1, 1))
        f = rng.integers(1, 4, size=(B, C, 2, 1, 1))
        ph = rng.uniform(0, 2 * np.pi, size=(B, C, 1, 1))
        out += a * np.cos(2 * np.pi * (f[:, :, 0] * y + f[:, :, 1] * x) + ph)
    return np.tanh(out / 2).astype(np.float32)


def summary(chain, theta0, batch_first=False) -> np.ndarray:
    """Checked statistics of a chain `(T, B, C, H, W)` (or `(B, T, ...)` with
    `batch_first`, kuralab's vmap layout; the swap is outside the timed call)."""
    chain = np.asarray(chain)
    if batch_first:
        chain = np.swapaxes(chain, 0, 1)
    last = chain[-1].astype(np.float64)
    R = np.abs(np.mean(np.exp(1j * last).reshape(B, -1), axis=1))
    step = np.mean(np.abs((chain[0] - theta0 + np.pi) % (2 * np.pi) - np.pi))
    return np.array([np.mean(np.cos(last)), np.mean(np.sin(last)), np.mean(R), step])


def make_check(ref, theta0, batch_first=False):
    def check(out) -> Check:
        s = summary(out, theta0, batch_first)
        err = max(float(np.max(np.abs(s[:3] - ref[:3]))), float(abs(s[3] / ref[3] - 1)) * TOL / 0.02)
        return Check("max |terminal stat - kuralab| (cos, sin, R; step rel. scaled)", err, TOL, err <= TOL)
    return check


def scan_forward():
    """The hand-written scan: plain jax.numpy for the whole batch."""
    K = jnp.linspace(3e-5, 0.03, T)
    sig = jnp.sqrt(jnp.linspace(1e-4, 0.1, T))

    @jax.jit
    def run(theta0, key):
        def step(th, xs):
            k, s, kk = xs
            c, sn = jnp.cos(th), jnp.sin(th)
            Cm = jnp.mean(c, axis=(1, 2, 3), keepdims=True)
            Sm = jnp.mean(sn, axis=(1, 2, 3), keepdims=True)
            drift = k * (Sm * c - Cm * sn) + 1.5 * k * (-sn)
            th = th + drift + s * jax.random.normal(kk, th.shape)
            th = jnp.mod(th + math.pi, 2 * math.pi) - math.pi
            return th, th

        _, chain = jax.lax.scan(step, theta0, (K, sig, jax.random.split(key, T)))
        return chain

    return run


def torch_port(theta0: np.ndarray):
    try:
        import torch
    except ImportError as e:
        raise Skipped(f"torch not installed ({e}); pip install -e '.[bench]'") from e
    torch.set_num_threads(os.cpu_count() or 1)  # all cores, as XLA (and L1/L2/L4)
    K = torch.linspace(3e-5, 0.03, T)
    sig = torch.sqrt(torch.linspace(1e-4, 0.1, T))
    x0 = torch.from_numpy(np.array(theta0))

    def run(i):
        torch.manual_seed(i)
        th = x0.clone()
        states = []
        with torch.no_grad():
            for t in range(T):
                z = torch.exp(1j * th.to(torch.complex64)).mean(dim=(1, 2, 3), keepdim=True)
                R, psi = z.abs(), z.angle()
                drift = R * torch.sin(psi - th) + 1.5 * torch.sin(0.0 - th)
                th = th + K[t] * drift + sig[t] * torch.randn_like(th)
                th = torch.remainder(th + math.pi, 2 * math.pi) - math.pi
                states.append(th)
            return torch.stack(states).numpy()

    return run, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def run_l3(ctx) -> list[Result]:
    x = images()
    theta0 = np.asarray(L.to_phase(jnp.asarray(x)))
    proc = L.OrientationDiffusion(steps=T)
    fwd = jax.jit(jax.vmap(lambda th, k: proc.forward(th, key=k)))
    th0 = jnp.asarray(theta0)
    keys = lambda i: jax.random.split(jax.random.key(i), B)
    ref = summary(jax.block_until_ready(fwd(th0, keys(10_000))), theta0, batch_first=True)
    check = make_check(ref, theta0)
    meta = dict(osc_steps=B * C * H * W * T)
    rows = []

    ctx.log("  kuralab (OrientationDiffusion.forward, vmap over images)")
    r = Result("L3", "kuralab OrientationDiffusion.forward (vmap, one scan)", "kuralab", **meta)
    ctx.timed(r, lambda i: fwd(th0, keys(i)), make_check(ref, theta0, batch_first=True))
    rows.append(r)

    ctx.log("  hand-written jax.lax.scan")
    scan = scan_forward()
    r = Result("L3", "hand-written jax.lax.scan (jnp.sin/cos, jax.random.normal)", "baseline", **meta)
    ctx.timed(r, lambda i: scan(th0, jax.random.key(i)), check)
    rows.append(r)

    r = Result("L3", "PyTorch port of the reference loop", "peer", **meta)

    def setup():
        run, note = torch_port(theta0)
        return dict(run=run, note=note)

    ctx.peer(r, setup, check)
    rows.append(r)

    ctx.log("  kuralab: one score-matching step of ScoreUNet(1, width=16), 16 fields 16x16")
    net = L.ScoreUNet(1, width=16, key=jax.random.key(0))
    fields = L.data.oriented_gratings(jax.random.key(1), 16)
    proc1 = L.OrientationDiffusion()

    def loss_fn(net, batch, key):
        ks = jax.random.split(key, batch.shape[0])
        return jnp.mean(jax.vmap(lambda th, k: proc1.score_matching_loss(net, th, key=k, samples=1, pairs=8))(batch, ks))

    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    state = opt.init(eqx.filter(net, eqx.is_inexact_array))
    r = Result("L3", "kuralab: one ScoreUNet score-matching training step (fit's step)", "evidence")

    def train_step(i):
        new, _, loss, _, _ = _step(loss_fn, opt, net, state, fields, jax.random.key(i))
        return jax.block_until_ready(loss)

    ctx.timed(r, train_step, None)
    r.note = f"{sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array)))} parameters"
    rows.append(r)
    return rows
