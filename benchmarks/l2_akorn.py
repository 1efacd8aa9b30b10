"""L2: one AKOrN conv layer, forward + backward (issue 13).

Batch 16, C = 64 channels as 16 oscillators of n = 4 per site, 16 x 16 grid, T = 8 steps,
conv J with a k x k kernel (default 3; `--l2-kernel`), zero padding, bias, GroupNorm(C/n)
stimulus normalisation, global Omega (init 1), gamma = 1. Loss = sum(x_T * target) / B
plus 1e-3 times the mean final energy; timed: the loss and its gradient with respect to
every parameter (what a training step costs without the optimiser).

Implementations:

- kuralab: `kl.learn.AKOrNLayer` called on the batch (and, a second row, `jax.vmap` of
  it on one example) under `eqx.filter_value_and_grad`, jitted (component-major channels-last inside the scan, the conv as one im2col matmul, the
  step's backward written out: `kuralab.learn._akorn_layout.conv_step`).
- hand-written `jax.lax.scan`: the conv as `lax.conv_general_dilated` in two layouts,
  NCHW (as PyTorch lays it out) and NHWC (channels-last), and NHWC with the conv as one
  matmul per kernel offset and as one im2col matmul (XLA's CPU convolution, its
  backward pass above all, is the bottleneck of the lax.conv scans); JAX autodiff.
- PyTorch: a port of the reference layer written from research/reference_impls.md §2.1
  (nn.Conv2d, nn.GroupNorm, the pair-rotation Omega, normalise per n-group, T steps,
  energy logged), backward by autograd. Skipped where torch is missing.

Checks: every implementation's loss equals kuralab's to 1e-4 (relative) and its kernel
gradient to 1e-3 (relative, float32 through 8 steps).
"""

from __future__ import annotations

import math
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _common import Check, Result, Skipped

import kuralab.learn as L

B, C, N, H, T = 16, 64, 4, 16, 8
LOSS_TOL, GRAD_TOL = 1e-4, 1e-3
E_WEIGHT = 1e-3


def problem(k: int, seed: int = 13):
    key = jax.random.key(seed)
    layer = L.AKOrNLayer(C, N, "conv", kernel_size=k, steps=T, gamma=1.0, omega=1.0,
                         c_norm="group", key=jax.random.fold_in(key, 0))
    x0 = jax.random.normal(jax.random.fold_in(key, 1), (B, C, H, H))
    c = jax.random.normal(jax.random.fold_in(key, 2), (B, C, H, H))
    target = jax.random.normal(jax.random.fold_in(key, 3), (B, C, H, H))
    return layer, x0, c, target


def _params(layer):
    """NumPy weights in PyTorch layout."""
    return dict(
        w=np.moveaxis(np.asarray(layer.kernel), (-2, -1), (0, 1)),  # (O, I, kh, kw)
        b=np.asarray(layer.bias),
        p=np.asarray(layer.omega_param),
        g=np.asarray(layer.norm_scale),
        s=np.asarray(layer.norm_bias),
    )


def grad_check(ref_loss, ref_grad):
    def check(out) -> Check:
        loss, gw = out
        loss = float(loss)
        if not math.isfinite(loss):
            return Check("loss (non-finite)", math.inf, LOSS_TOL, False)
        dl = abs(loss - ref_loss) / max(abs(ref_loss), 1e-30)
        if dl > LOSS_TOL:
            return Check("|loss - kuralab's| (rel.)", dl, LOSS_TOL, False)
        err = float(np.linalg.norm(gw - ref_grad) / np.linalg.norm(ref_grad))
        return Check("kernel gradient rel. error vs kuralab", err, GRAD_TOL, err <= GRAD_TOL)

    return check


# ---------------------------------------------------------------------------------
# hand-written scans
# ---------------------------------------------------------------------------------


def make_scan(layout: str, k: int, conv_kind: str = "lax"):
    """The layer as plain jax.numpy + lax.scan over a batch, in `layout` NCHW or NHWC;
    `conv_kind` (NHWC only for the last two): `"lax"` = `lax.conv_general_dilated`,
    `"shift"` = one matmul per kernel offset, `"im2col"` = the k*k shifted views
    concatenated on the channel axis and one matmul; JAX autodiff for the backward."""
    rhs = "OIHW" if layout == "NCHW" else "HWIO"
    pad = [((k - 1) // 2, k // 2)] * 2

    def groups(u):
        if layout == "NCHW":
            return u.reshape(B, C // N, N, H, H), 2
        return u.reshape(B, H, H, C // N, N), 4

    def normalise(u):
        g, ax = groups(u)
        return (g / jnp.linalg.norm(g, axis=ax, keepdims=True)).reshape(u.shape)

    def loss(p, x0, c, target):
        w = p["w"] if layout == "NCHW" else jnp.transpose(p["w"], (2, 3, 1, 0))
        bshape = (1, C, 1, 1) if layout == "NCHW" else (1, 1, 1, C)
        if layout == "NHWC":
            x0, c, target = (jnp.transpose(a, (0, 2, 3, 1)) for a in (x0, c, target))
        gc, ax = groups(c)
        red = (2, 3, 4) if layout == "NCHW" else (1, 2, 4)
        mean, var = gc.mean(red, keepdims=True), gc.var(red, keepdims=True)
        cn = ((gc - mean) * jax.lax.rsqrt(var + 1e-5)).reshape(c.shape)
        cn = cn * p["g"].reshape(bshape) + p["s"].reshape(bshape) + p["b"].reshape(bshape)
        om = jnp.sqrt(jnp.sum(p["p"] ** 2))
        conv = lambda u: jax.lax.conv_general_dilated(
            u, w, (1, 1), pad, dimension_numbers=(layout, rhs, layout))
        if conv_kind == "shift":
            def conv(u):
                up = jnp.pad(u, [(0, 0), *pad, (0, 0)])
                return sum(jnp.dot(up[:, i:i + H, j:j + H], w[i, j])
                           for i in range(k) for j in range(k))
        elif conv_kind == "im2col":
            wmat = w.reshape(k * k * C, C)  # HWIO -> (k k C_in, C_out)

            def conv(u):
                up = jnp.pad(u, [(0, 0), *pad, (0, 0)])
                views = [up[:, i:i + H, j:j + H] for i in range(k) for j in range(k)]
                return jnp.dot(jnp.concatenate(views, -1), wmat)

        def step(u, _):
            ju = conv(u)
            y = ju + cn
            g, ax = groups(u)
            gy, _ = groups(y)
            proj = gy - jnp.sum(gy * g, ax, keepdims=True) * g
            if layout == "NCHW":
                pr = g.reshape(B, C // N, N // 2, 2, H, H)
                rot = jnp.stack([om * pr[:, :, :, 1], -om * pr[:, :, :, 0]], 3).reshape(g.shape)
            else:
                pr = g.reshape(B, H, H, C // N, N // 2, 2)
                rot = jnp.stack([om * pr[..., 1], -om * pr[..., 0]], -1).reshape(g.shape)
            return normalise((g + proj + rot).reshape(u.shape)), None

        uT, _ = jax.lax.scan(step, normalise(x0), None, length=T)
        E = -0.5 * jnp.sum(uT * conv(uT)) - jnp.sum(uT * cn)
        return jnp.sum(uT * target) / B + E_WEIGHT * E / B

    f = jax.jit(jax.value_and_grad(loss))
    return f


# ---------------------------------------------------------------------------------
# PyTorch port of the reference layer
# ---------------------------------------------------------------------------------


def torch_port(params, x0, c, target, k: int):
    try:
        import torch
    except ImportError as e:
        raise Skipped(f"torch not installed ({e}); pip install -e '.[bench]'") from None
    # all cores, as XLA: `--blas-threads 1` (OMP_NUM_THREADS=1) is for the NumPy references
    torch.set_num_threads(os.cpu_count() or 1)

    class KLayer(torch.nn.Module):
        """The reference update (klayer.py as described in reference_impls.md §2.1)."""

        def __init__(self):
            super().__init__()
            self.connectivity = torch.nn.Conv2d(C, C, k, 1, padding="same")
            self.c_norm = torch.nn.GroupNorm(C // N, C, affine=True)
            self.omg_param = torch.nn.Parameter(torch.zeros(2))

        def normalize(self, x):
            g = x.reshape(x.shape[0], C // N, N, *x.shape[2:])
            return (g / torch.linalg.norm(g, dim=2, keepdim=True)).reshape(x.shape)

        def omega(self, x):
            om = torch.linalg.norm(self.omg_param)
            pr = x.reshape(x.shape[0], C // 2, 2, *x.shape[2:])
            return torch.stack([om * pr[:, :, 1], -om * pr[:, :, 0]], 2).reshape(x.shape)

        def forward(self, x, c):
            c = self.c_norm(c)
            x = self.normalize(x)
            es = [torch.zeros(x.shape[0])]
            for _ in range(T):
                y = self.connectivity(x) + c
                es.append(-torch.sum(x * y, dim=(1, 2, 3)))
                g = x.reshape(x.shape[0], C // N, N, *x.shape[2:])
                gy = y.reshape(g.shape)
                proj = (gy - torch.sum(gy * g, 2, keepdim=True) * g).reshape(x.shape)
                x = self.normalize(x + (self.omega(x) + proj))
            return x, c, es

    torch.manual_seed(0)
    net = KLayer()
    with torch.no_grad():
        net.connectivity.weight.copy_(torch.from_numpy(params["w"]))
        net.connectivity.bias.copy_(torch.from_numpy(params["b"]))
        net.c_norm.weight.copy_(torch.from_numpy(params["g"]))
        net.c_norm.bias.copy_(torch.from_numpy(params["s"]))
        net.omg_param.copy_(torch.from_numpy(params["p"]))
    tx, tc, tt = (torch.from_numpy(np.asarray(a)) for a in (x0, c, target))

    def step(i):
        net.zero_grad()
        xT, cn, _ = net(tx, tc)
        ju = torch.nn.functional.conv2d(xT, net.connectivity.weight, None, padding="same")
        E = -0.5 * torch.sum(xT * ju) - torch.sum(xT * (cn + net.connectivity.bias[:, None, None]))
        loss = torch.sum(xT * tt) / B + E_WEIGHT * E / B
        loss.backward()
        return float(loss.detach()), net.connectivity.weight.grad.numpy().copy()

    return step, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


# ---------------------------------------------------------------------------------


def run_l2(ctx) -> list[Result]:
    k = ctx.size("L2", "kernel")
    layer, x0, c, target = problem(k)
    p0 = _params(layer)
    flops = 2 * B * H * H * C * C * k * k * (T + 1) * 3  # conv fwd + 2x bwd
    meta = dict(osc_steps=B * H * H * (C // N) * T, flops=flops)

    def make(batched):
        def loss_fn(lay):
            xT, E = lay(x0, c) if batched else jax.vmap(lay)(x0, c)
            return jnp.sum(xT * target) / B + E_WEIGHT * jnp.mean(E[:, -1])

        f = eqx.filter_jit(eqx.filter_value_and_grad(loss_fn))

        def kuralab_run(i):
            loss, g = f(layer)
            g = jax.block_until_ready(g)
            return float(loss), np.moveaxis(np.asarray(g.kernel), (-2, -1), (0, 1))

        return kuralab_run

    batched_run, vmap_run = make(True), make(False)
    ref_loss, ref_grad = vmap_run(0)
    check = grad_check(ref_loss, ref_grad)
    rows = []
    ctx.log("  kuralab (kl.learn.AKOrNLayer on the batch, filter_value_and_grad)")
    r = Result("L2", f"kuralab AKOrNLayer fwd+bwd (k={k})", "kuralab", **meta)
    ctx.timed(r, batched_run, check)
    r.note = f"loss {ref_loss:.4f}; the layer called on the (B, C, H, W) batch"
    rows.append(r)
    ctx.log("  kuralab (jax.vmap of kl.learn.AKOrNLayer)")
    r = Result("L2", f"kuralab jax.vmap(AKOrNLayer) fwd+bwd (k={k})", "variant", **meta)
    ctx.timed(r, vmap_run, check)
    r.note = "one example per call, vmapped: one weight-gradient product per example"
    rows.append(r)

    jp = {key: jnp.asarray(v) for key, v in p0.items()}
    for layout, kind in (("NHWC", "im2col"), ("NHWC", "shift"), ("NHWC", "lax"), ("NCHW", "lax")):
        g = make_scan(layout, k, kind)

        def scan_run(i, g=g):
            loss, grads = g(jp, x0, c, target)
            grads = jax.block_until_ready(grads)
            return float(loss), np.asarray(grads["w"])

        how = {"shift": "shifted matmuls", "im2col": "im2col matmul", "lax": "lax.conv"}[kind]
        r = Result("L2", f"hand-written lax.scan, {layout}, {how}", "baseline", **meta)
        ctx.log(f"  hand-written scan {layout} {how}")
        ctx.timed(r, scan_run, check)
        rows.append(r)

    r = Result("L2", "PyTorch port of the reference layer (autograd)", "peer", **meta)

    def setup():
        step, note = torch_port(p0, x0, c, target, k)
        return dict(run=step, note=note)

    ctx.peer(r, setup, check)
    rows.append(r)
    return rows
