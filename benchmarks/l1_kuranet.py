"""L1: one KuraNet training step, case I (issue 12).

n = 100 oscillators, omega ~ U(-1, 1), node features (h, omega, tau) = (0, omega, 0);
pair MLP 6 -> 128 -> 128 -> 1 with BatchNorm over the n^2 pairs and LeakyReLU, node
normalisation (softmax over n^2 entries x n, mean degree 1), symmetrised; Euler dt = 0.1
from theta = 0: 100 burn-in steps without gradients, 50 loss steps, loss = mean (1 - R);
gradient, global-norm clipping at 1, SGD lr 5e-4. Timed per step (forward, backward and
update), median of `--repeats` steps, each from the same parameters.

Implementations:

- kuralab: `kl.learn.kuranet_loss` (kl.simulate with `burn_in=`, Euler) under the step
  `kl.learn.fit` runs (`kuralab.learn._train._step`: eqx.filter_value_and_grad, optax
  clip + SGD).
- hand-written `jax.lax.scan`: the same mathematics written directly in jax.numpy (the
  per-node split of the first layer, the exact pair BatchNorm statistics, one scan for
  the burn-in under stop_gradient, one for the window).
- PyTorch: a port of the reference step written from the description in
  research/reference_impls.md §1 (explicit [x_i, x_j] pairs, nn.BatchNorm1d in training
  mode, torchdiffeq.odeint(method="euler") on the negative-time, burn-in and loss grids,
  burn-in under torch.no_grad, the reference's ring buffer of past phases for sender
  delays, clip_grad_norm_, torch.optim.SGD). Skipped with a message where torch or
  torchdiffeq is missing (`pip install -e ".[bench]"`).

Checks: each implementation's loss equals kuralab's, and its parameter update (new minus
old weights of every layer) agrees with kuralab's to a relative 2e-2 (float32 through
150 Euler steps and a softmax over 10^4 entries).
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

LR, CLIP, DT, BURN, WIN = 5e-4, 1.0, 0.1, 100, 50
LOSS_TOL, UPDATE_TOL = 1e-4, 2e-2


def problem(n: int, seed: int = 12):
    key = jax.random.key(seed)
    coupling = L.PairwiseMLPCoupling(3, hidden=(128, 128), key=jax.random.fold_in(key, 0))
    disorder = L.data.kuranet_disorder(jax.random.fold_in(key, 1), n, "I")
    return coupling, disorder


def _flat_params(c) -> dict[str, np.ndarray]:
    """The trainable weights by layer, as NumPy (for the checks and the torch port)."""
    out = {}
    for k, (W, b) in enumerate(zip(c.weights, c.biases, strict=True)):
        out[f"W{k}"], out[f"b{k}"] = np.asarray(W), np.asarray(b)
        out[f"g{k}"], out[f"s{k}"] = np.asarray(c.norm_scales[k]), np.asarray(c.norm_shifts[k])
    out["w_out"] = np.asarray(c.out_weight)
    return out



# ---------------------------------------------------------------------------------
# hand-written scan
# ---------------------------------------------------------------------------------


def _bn(z, mean, var, g, s):
    return (z - mean) * jax.lax.rsqrt(var + 1e-5) * g + s


def scan_loss(p, omega):
    """The whole case-I loss in plain jax.numpy + lax.scan (features (0, omega, 0))."""
    n = omega.shape[0]
    x = jnp.stack([jnp.zeros_like(omega), omega, jnp.zeros_like(omega)], 1)
    recv = x @ p["W0"][:, :3].T
    send = x @ p["W0"][:, 3:].T + p["b0"]
    m0 = recv.mean(0) + send.mean(0)
    v0 = recv.var(0) + send.var(0)
    h = jax.nn.leaky_relu(_bn(recv[:, None] + send[None], m0, v0, p["g0"], p["s0"]), 0.01)
    z = h @ p["W1"].T + p["b1"]
    h = jax.nn.leaky_relu(_bn(z, z.mean((0, 1)), z.var((0, 1)), p["g1"], p["s1"]), 0.01)
    logits = h @ p["w_out"]
    K = jax.nn.softmax(logits.reshape(-1)).reshape(n, n) * n
    K = 0.5 * (K + K.T)

    def f(th):
        s, c = jnp.sin(th), jnp.cos(th)
        return omega + c * (K @ s) - s * (K @ c)

    def euler(th, _):
        th = th + DT * f(th)
        return jnp.mod(th + jnp.pi, 2 * jnp.pi) - jnp.pi, None

    th, _ = jax.lax.scan(euler, jnp.zeros(n), None, length=BURN)
    th = jax.lax.stop_gradient(th)

    def window(th, _):
        th, _ = euler(th, None)
        return th, jnp.abs(jnp.mean(jnp.exp(1j * th)))

    _, R = jax.lax.scan(window, th, None, length=WIN)
    return jnp.mean(1.0 - R)


def make_scan_step():
    opt = optax.chain(optax.clip_by_global_norm(CLIP), optax.sgd(LR))

    @jax.jit
    def step(p, state, omega):
        loss, g = jax.value_and_grad(scan_loss)(p, omega)
        upd, state = opt.update(g, state, p)
        return optax.apply_updates(p, upd), state, loss

    return opt, step


# ---------------------------------------------------------------------------------
# PyTorch port of the reference step
# ---------------------------------------------------------------------------------


def torch_port(params: dict[str, np.ndarray], omega: np.ndarray):
    try:
        import torch
        from torchdiffeq import odeint
    except ImportError as e:
        raise Skipped(f"torch/torchdiffeq not installed ({e}); pip install -e '.[bench]'") from None
    # Same cores as XLA's CPU client: `--blas-threads 1` (OMP_NUM_THREADS=1, meant for
    # the NumPy references) must not leave the peer on one thread.
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    n = omega.size

    class Coupling(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l0 = torch.nn.Linear(6, 128)
            self.n0 = torch.nn.BatchNorm1d(128)
            self.l1 = torch.nn.Linear(128, 128)
            self.n1 = torch.nn.BatchNorm1d(128)
            self.out = torch.nn.Linear(128, 1, bias=False)

        def forward(self, x):
            m = x.shape[0]
            pairs = torch.cat([x.repeat_interleave(m, 0), x.repeat(m, 1)], 1)  # [x_i, x_j]
            h = torch.nn.functional.leaky_relu(self.n0(self.l0(pairs)))
            h = torch.nn.functional.leaky_relu(self.n1(self.l1(h)))
            K = torch.softmax(self.out(h).reshape(-1), 0).reshape(m, m) * (1.0 * m)
            return 0.5 * (K + K.T)

    class KuraNetFull(torch.nn.Module):
        """dtheta_i = omega_i + sum_j K_ji sin(theta_j(t - tau_j) - theta_i) + h_i sin theta_i,
        sender delays read from a ring buffer of the last max(tau) + 1 phases."""

        def __init__(self):
            super().__init__()
            self.coupling = Coupling()

        def set_graph(self, h, omega, tau):
            self.h, self.omega, self.tau = h, omega, tau
            x = torch.stack([h, omega, tau.to(h.dtype)], 1)  # alphabetical: h, omega, tau
            self.K = self.coupling(x)
            self.buffer = torch.zeros(int(tau.max()) + 1, omega.shape[0])
            self.delays_on = False

        def forward(self, t, theta):
            self.buffer = torch.cat([self.buffer[1:], theta[None]], 0)
            if self.delays_on:
                idx = self.buffer.shape[0] - 1 - self.tau
                past = self.buffer[idx, torch.arange(theta.shape[0])]
            else:
                past = theta
            diff = torch.sin(past[:, None] - theta[None, :])  # [j, i]
            return self.omega + (self.K * diff).sum(0) + self.h * torch.sin(theta)

    net = KuraNetFull()
    with torch.no_grad():
        lay = net.coupling
        for k, (lin, bn) in enumerate(((lay.l0, lay.n0), (lay.l1, lay.n1))):
            lin.weight.copy_(torch.from_numpy(params[f"W{k}"]))
            lin.bias.copy_(torch.from_numpy(params[f"b{k}"]))
            bn.weight.copy_(torch.from_numpy(params[f"g{k}"]))
            bn.bias.copy_(torch.from_numpy(params[f"s{k}"]))
        lay.out.weight.copy_(torch.from_numpy(params["w_out"][None]))
    initial = {k: v.detach().clone() for k, v in net.state_dict().items()}
    om = torch.from_numpy(omega.astype(np.float32))
    h = torch.zeros(n)
    tau = torch.zeros(n, dtype=torch.long)
    t_neg = int(tau.max()) + 1
    grid_neg = torch.linspace(-t_neg * DT, 0.0, t_neg + 1)
    grid_burn = torch.linspace(0.0, BURN * DT, BURN + 1)
    grid_loss = torch.linspace(BURN * DT, (BURN + WIN) * DT, WIN + 1)
    opt = torch.optim.SGD(net.parameters(), lr=LR)

    def step(i):
        net.load_state_dict(initial)  # every timed step starts from the same weights
        opt.zero_grad()
        net.set_graph(h, om, tau)
        with torch.no_grad():
            theta = torch.zeros(n)
            if int(tau.max()) > 0:  # with tau = 0 the one warm-up step is left out, so
                # that all three implementations integrate the same 150 steps
                theta = odeint(net, theta, grid_neg, method="euler")[-1]
            net.delays_on = True
            net.buffer = net.buffer.detach()
            theta = odeint(net, theta, grid_burn, method="euler")[-1]
        net.buffer = net.buffer.detach()
        traj = odeint(net, theta, grid_loss, method="euler")[1:]
        R = torch.abs(torch.mean(torch.exp(1j * traj), 1))
        loss = torch.mean(1.0 - R)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        opt.step()
        new = net.state_dict()
        upd = {}
        for k, name in enumerate(("l0", "l1")):
            upd[f"W{k}"] = (new[f"coupling.{name}.weight"] - initial[f"coupling.{name}.weight"]).numpy()
            upd[f"b{k}"] = (new[f"coupling.{name}.bias"] - initial[f"coupling.{name}.bias"]).numpy()
        upd["w_out"] = (new["coupling.out.weight"] - initial["coupling.out.weight"]).numpy()[0]
        return float(loss.detach()), upd

    return step, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


# ---------------------------------------------------------------------------------


def run_l1(ctx) -> list[Result]:
    n = ctx.size("L1", "n")
    coupling, disorder = problem(n)
    omega = np.asarray(disorder["omega"])
    meta = dict(osc_steps=n * (BURN + WIN))
    rows = []

    opt = optax.chain(optax.clip_by_global_norm(CLIP), optax.sgd(LR))
    state0 = opt.init(eqx.filter(coupling, eqx.is_inexact_array))
    p0 = _flat_params(coupling)

    def loss_fn(c, d, key):
        return L.kuranet_loss(c, d, burn_in=BURN, window=WIN, dt=DT)

    def kuralab_step(i):
        new, _, loss, _, _ = _step(loss_fn, opt, coupling, state0, disorder, jax.random.key(i))
        return loss, new

    loss0, new0 = jax.block_until_ready(kuralab_step(0))
    ref_loss = float(loss0)
    ref_update = {k: v - p0[k] for k, v in _flat_params(new0).items() if k[0] in "Ww"}  # biases of BatchNorm-ed layers get ~0 gradient
    check = update_check(ref_loss, ref_update, LOSS_TOL, UPDATE_TOL)

    ctx.log("  kuralab (kl.learn.kuranet_loss + fit's step)")
    r = Result("L1", "kuralab kuranet_loss (simulate burn_in=, Euler) + fit step", "kuralab", **meta)

    def kuralab_timed(i):
        loss, new = kuralab_step(i)
        jax.block_until_ready(new)
        return loss, {k: v - p0[k] for k, v in _flat_params(new).items() if k in ref_update}

    ctx.timed(r, kuralab_timed, check, compile_events=True)
    r.note = f"loss {ref_loss:.4f}"
    rows.append(r)

    ctx.log("  hand-written jax.lax.scan step")
    sopt, sstep = make_scan_step()
    sp = {k: jnp.asarray(v) for k, v in p0.items()}
    sstate = sopt.init(sp)
    om = jnp.asarray(omega)

    def scan_timed(i):
        new, _, loss = sstep(sp, sstate, om)
        jax.block_until_ready(new)
        return float(loss), {k: np.asarray(new[k]) - p0[k] for k in ref_update}

    r = Result("L1", "hand-written jax.lax.scan step", "baseline", **meta)
    ctx.timed(r, scan_timed, check)
    rows.append(r)

    r = Result("L1", "PyTorch port of the reference step (torchdiffeq Euler)", "peer", **meta)
    holder = {}

    def setup():
        step, note = torch_port(p0, omega)
        holder["note"] = note
        return dict(run=step, note=note)

    ctx.peer(r, setup, check)
    rows.append(r)
    return rows
