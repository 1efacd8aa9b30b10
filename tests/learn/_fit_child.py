"""Child process of the checkpoint tests: `python _fit_child.py CKPT OUT [KILL_AT]`.

Runs `kl.learn.fit` on a small regression problem with a checkpoint; with KILL_AT it
sends itself SIGKILL while drawing the batch of that step (a hard kill mid-run, after
the checkpoint of the previous step). On completion writes the final parameters to OUT.
"""

import os
import signal
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import kuralab.learn as L

STEPS = 12


def problem():
    model = eqx.nn.MLP(2, 1, 8, 2, key=jax.random.key(0))

    def batches(step, key):
        kill_at = os.environ.get("KILL_AT")
        if kill_at is not None and step == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        x = jax.random.normal(key, (16, 2))
        return x, jnp.sin(x[:, :1]) + x[:, 1:] ** 2

    def loss_fn(m, batch, key):
        x, y = batch
        noise = 0.01 * jax.random.normal(key, y.shape)  # uses the per-step key
        return jnp.mean((jax.vmap(m)(x) - y - noise) ** 2)

    return model, batches, loss_fn, optax.adam(1e-2)


def run(ckpt, out=None):
    model, batches, loss_fn, opt = problem()
    params, hist = L.fit(loss_fn, model, batches, opt, steps=STEPS, key=jax.random.key(1),
                         checkpoint=ckpt, checkpoint_every=1, max_grad_norm=1.0,
                         progress=False)
    if out is not None:
        eqx.tree_serialise_leaves(out, params)
    return params, hist


if __name__ == "__main__":
    if len(sys.argv) > 3:
        os.environ["KILL_AT"] = sys.argv[3]
    run(sys.argv[1], sys.argv[2])
