"""L4: one training step of the adding-task coRNN sheet (issue 15).

11 x 11 sheet of coRNN units (n_hid 121), T = 200, batch 50, the NWM adding-task model:
v <- v + dt (tanh(W_x x_t + b + W_v * v + W_h * h) - gamma h - eps v), h <- h + dt v with
3x3 circular kernels, dt = 0.016, gamma = 94.5, eps = 9.5 fixed, a Linear readout of the
final position, MSE loss, Adam lr 0.02. Timed per step (forward, backward and update),
median of `--repeats` steps, each from the same parameters.

Implementations:

- kuralab: `kl.learn.CoRNNSequence` (method "auto" = a dense (N, 2N) coupling matrix built
  from the kernels once per step, one matmul per time step) under the step `kl.learn.fit`
  runs (`kuralab.learn._train._step`).
- hand-written `jax.lax.scan`: the same mathematics written directly: wrap padding and
  `lax.conv_general_dilated` on the (batch, 2, 11, 11) stack of (h, v) per time step.
- PyTorch: a port of the reference sequence model written from the description in
  research/reference_impls.md §4.3 (nn.Linear input, two nn.Conv2d(1, 1, 3,
  padding_mode="circular", bias=False), a Python loop over time, nn.Linear readout,
  torch.optim.Adam), run with ONE torch thread: on the shared 2-core machine two threads
  made the step 13x slower (25.6 s vs 1.9 s at load 13), so one thread is the fair
  setting for the peer. Skipped with a message where torch is missing.

Checks: each implementation's loss equals kuralab's (relative 1e-4) and its parameter
update agrees with kuralab's to a relative 2e-2 in norm (Adam's first step is about
-lr sign(g): entries with a near-zero gradient may flip, hence the loose bound).
"""

from __future__ import annotations

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import Result, Skipped, update_check

import kuralab.learn as L
from kuralab.learn._train import _step

LR, DT, GAMMA, EPS = 0.02, 0.016, 94.5, 9.5
LOSS_TOL, UPDATE_TOL = 1e-4, 2e-2
NAMES = ("kernel_h", "kernel_v", "input_weight", "input_bias", "bias", "readout_w", "readout_b")


def problem(side: int, length: int, batch: int, seed: int = 15):
    key = jax.random.key(seed)
    model = L.CoRNNSequence((side, side), 2, dt=DT, gamma=GAMMA, alpha=EPS, trainable=(),
                            key=jax.random.fold_in(key, 0))
    # a non-zero bias map, so that its update is checked too
    model = eqx.tree_at(lambda m: m.cell.bias, model,
                        0.1 * jax.random.normal(jax.random.fold_in(key, 2), (side, side)))
    x, y = L.data.adding_task(jax.random.fold_in(key, 1), batch, length)
    return model, (x, y)


def flat(m) -> dict[str, np.ndarray]:
    c = m.cell
    return dict(kernel_h=np.asarray(c.kernel_h), kernel_v=np.asarray(c.kernel_v),
                input_weight=np.asarray(c.input_weight), input_bias=np.asarray(c.input_bias),
                bias=np.asarray(c.bias), readout_w=np.asarray(m.readout.weight),
                readout_b=np.asarray(m.readout.bias).reshape(()))


def mse_loss(model, batch, key=None):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)



# ---------------------------------------------------------------------------------
# hand-written scan
# ---------------------------------------------------------------------------------


def scan_loss(p, x, y):
    """The adding-task loss in plain jax.numpy + lax.scan + lax.conv (batch leading)."""
    B, T, _ = x.shape
    side = p["bias"].shape[0]
    drive = (x @ p["input_weight"].T + p["input_bias"]).reshape(B, T, side, side)
    w = jnp.stack([p["kernel_h"], p["kernel_v"]])[None]  # (out=1, in=2, 3, 3)

    def body(carry, u):
        h, v = carry
        hv = jnp.pad(jnp.stack([h, v], 1), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="wrap")
        c = jax.lax.conv_general_dilated(hv, w, (1, 1), "VALID")[:, 0]
        v = v + DT * (jnp.tanh(c + u + p["bias"]) - GAMMA * h - EPS * v)
        return (h + DT * v, v), None

    z = jnp.zeros((B, side, side), x.dtype)
    (h, _), _ = jax.lax.scan(body, (z, z), jnp.swapaxes(drive, 0, 1))
    out = h.reshape(B, -1) @ p["readout_w"][0] + p["readout_b"]
    return jnp.mean((out - y) ** 2)


def make_scan_step():
    opt = optax.adam(LR)

    @jax.jit
    def step(p, state, x, y):
        loss, g = jax.value_and_grad(scan_loss)(p, x, y)
        upd, state = opt.update(g, state, p)
        return optax.apply_updates(p, upd), state, loss

    return opt, step


# ---------------------------------------------------------------------------------
# PyTorch port of the reference sequence model
# ---------------------------------------------------------------------------------


def torch_port(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    try:
        import torch
    except ImportError as e:
        raise Skipped(f"torch not installed ({e}); pip install -e '.[bench]'") from None
    params = {k: np.array(v) for k, v in params.items()}  # writable copies for torch
    side = params["bias"].shape[0]
    n_hid = side * side
    # all cores, as XLA's CPU client (and the L1/L2 ports)
    torch.set_num_threads(os.cpu_count() or 1)

    class CoRNN2d(torch.nn.Module):
        """hz (velocity) <- hz + dt (tanh(W_x x + W_z * hz + W_y * hy + b) - gamma hy - eps hz),
        hy (position) <- hy + dt hz; readout of the final hy."""

        def __init__(self):
            super().__init__()
            self.Wx = torch.nn.Linear(2, n_hid)
            self.Wy = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False)
            self.Wz = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False)
            self.b = torch.nn.Parameter(torch.zeros(1, 1, side, side))
            self.readout = torch.nn.Linear(n_hid, 1)

        def forward(self, x):  # x: (T, B, 2), the reference's time-major layout
            B = x.shape[1]
            hy = torch.zeros(B, 1, side, side)
            hz = torch.zeros(B, 1, side, side)
            for t in range(x.shape[0]):
                u = self.Wx(x[t]).view(B, 1, side, side)
                hz = hz + DT * (torch.tanh(u + self.Wz(hz) + self.Wy(hy) + self.b)
                                - GAMMA * hy - EPS * hz)
                hy = hy + DT * hz
            return self.readout(hy.view(B, -1)).squeeze(-1)

    net = CoRNN2d()
    with torch.no_grad():
        net.Wy.weight.copy_(torch.from_numpy(params["kernel_h"])[None, None])
        net.Wz.weight.copy_(torch.from_numpy(params["kernel_v"])[None, None])
        net.Wx.weight.copy_(torch.from_numpy(params["input_weight"]))
        net.Wx.bias.copy_(torch.from_numpy(params["input_bias"]))
        net.b.copy_(torch.from_numpy(params["bias"])[None, None])
        net.readout.weight.copy_(torch.from_numpy(params["readout_w"]))
        net.readout.bias.copy_(torch.from_numpy(params["readout_b"]).reshape(1))
    initial = {k: v.detach().clone() for k, v in net.state_dict().items()}
    xt = torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 0, 1)))
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    names = dict(kernel_h="Wy.weight", kernel_v="Wz.weight", input_weight="Wx.weight",
                 input_bias="Wx.bias", bias="b", readout_w="readout.weight", readout_b="readout.bias")

    def step(i):
        net.load_state_dict(initial)  # every timed step starts from the same weights
        opt.state.clear()
        opt.zero_grad()
        loss = torch.mean((net(xt) - yt) ** 2)
        loss.backward()
        opt.step()
        new = net.state_dict()
        upd = {k: (new[v] - initial[v]).numpy().reshape(params[k].shape) for k, v in names.items()}
        return float(loss.detach()), upd

    return step, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


# ---------------------------------------------------------------------------------


def run_l4(ctx) -> list[Result]:
    side, length, batch = (ctx.size("L4", k) for k in ("side", "length", "batch"))
    model, (x, y) = problem(side, length, batch)
    meta = dict(osc_steps=side * side * length * batch)
    rows = []
    opt = optax.adam(LR)
    state0 = opt.init(eqx.filter(model, eqx.is_inexact_array))
    p0 = flat(model)

    def kuralab_step(i):
        new, _, loss, _, _ = _step(mse_loss, opt, model, state0, (x, y), jax.random.key(i))
        return loss, new

    loss0, new0 = jax.block_until_ready(kuralab_step(0))
    ref_loss = float(loss0)
    ref_update = {k: v - p0[k] for k, v in flat(new0).items()}
    check = update_check(ref_loss, ref_update, LOSS_TOL, UPDATE_TOL, relative_loss=True)

    ctx.log(f"  kuralab (kl.learn.CoRNNSequence, method {model.cell.method}, + fit's step)")
    r = Result("L4", f"kuralab CoRNNSequence ({model.cell.method}) + fit step", "kuralab", **meta)

    def kuralab_timed(i):
        loss, new = kuralab_step(i)
        jax.block_until_ready(new)
        return loss, {k: v - p0[k] for k, v in flat(new).items()}

    ctx.timed(r, kuralab_timed, check, compile_events=True)
    r.note = f"loss {ref_loss:.4f}"
    rows.append(r)

    ctx.log("  hand-written jax.lax.scan step (lax.conv per time step)")
    sopt, sstep = make_scan_step()
    sp = {k: jnp.asarray(v) for k, v in p0.items()}
    sstate = sopt.init(sp)

    def scan_timed(i):
        new, _, loss = sstep(sp, sstate, x, y)
        jax.block_until_ready(new)
        return float(loss), {k: np.asarray(new[k]) - p0[k] for k in ref_update}

    r = Result("L4", "hand-written jax.lax.scan step (lax.conv)", "baseline", **meta)
    ctx.timed(r, scan_timed, check)
    rows.append(r)

    r = Result("L4", "PyTorch port of the reference coRNN (Conv2d circular, Python loop)", "peer", **meta)

    def setup():
        step, note = torch_port(p0, np.asarray(x), np.asarray(y))
        return dict(run=step, note=note)

    ctx.peer(r, setup, check)
    rows.append(r)
    return rows
