"""Helpers shared by the KuraNet study scripts (`kuranet_global.py`, `kuranet_cluster.py`).

Not a study itself: the training-set batching of the reference (a fixed set of samples,
reshuffled every epoch into networks of `n` nodes), jitted evaluation of many networks,
and the common command-line options.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def take(tree, idx):
    """Index every array leaf of a dict of node arrays (None stays None)."""
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def epoch_batches(train, n_total: int, n: int, seed_key):
    """`batches(step, key)` for `kl.learn.fit`: the `n_total` training samples are
    permuted once per epoch (with a key derived from `seed_key` and the epoch) and cut
    into `n_total // n` networks of `n` nodes, as the reference's data loader does."""
    per_epoch = n_total // n

    def batches(step, key):
        epoch, j = divmod(step, per_epoch)
        perm = jax.random.permutation(jax.random.fold_in(seed_key, epoch), n_total)
        idx = jax.lax.dynamic_slice_in_dim(perm, j * n, n)
        return take(train, idx)

    return batches, per_epoch


def stack(trees):
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


@eqx.filter_jit
def _losses(loss, coupling, graphs):
    return jax.vmap(lambda x: loss(coupling, x))(graphs)


def mean_loss(loss, coupling, graphs):
    """Mean of `loss(coupling, graph)` over a stacked batch of graphs (one jit+vmap).

    One jitted function for every call: `loss` is a static argument, so calls with the
    same `loss` and shapes (every seed of a seed search) reuse one compilation."""
    return float(np.mean(np.asarray(_losses(loss, coupling, graphs))))


def common_args(parser: argparse.ArgumentParser, *, out: str) -> None:
    parser.add_argument("--n", type=int, default=100, help="nodes per training network (100)")
    parser.add_argument("--train-samples", type=int, default=10_000,
                        help="training samples, cut into networks of n (10,000: 100 networks/epoch)")
    parser.add_argument("--epochs", type=float, default=None,
                        help="passes over the training samples (default: the reference's)")
    parser.add_argument("--steps", type=int, default=None, help="override the number of SGD steps")
    parser.add_argument("--size-n", type=int, default=2000,
                        help="nodes of the Size and Data+Size test networks (paper: 10,000; "
                             "default 2000 keeps the run to minutes on 2 cores)")
    parser.add_argument("--test-graphs", type=int, default=20,
                        help="new n-node networks in the Data test (default 20)")
    parser.add_argument("--hidden", default="128,128", help="hidden widths of the pair MLP")
    parser.add_argument("--hidden-norm", default="batch", choices=("batch", "layer", "none"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=out)
    parser.add_argument("--progress", action="store_true", help="tqdm progress bars")


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> str:
        return f"{time.perf_counter() - self.t0:6.1f} s"


def timed_log():
    """`log(msg)`: print `msg` with the seconds since this call."""
    timer = Timer()

    def log(msg):
        print(f"[{timer()}] {msg}", flush=True)

    return log


def subset(parser: argparse.ArgumentParser, flag: str, value: str, allowed) -> list[str]:
    """The comma-separated `value` of `flag` as a list; a parser error naming `flag`
    and the allowed names if any is unknown."""
    names = [s.strip() for s in value.split(",")]
    bad = [s for s in names if s not in allowed]
    if bad:
        parser.error(f"{flag}: unknown {bad}; expected a subset of {','.join(allowed)}")
    return names


def padded(histories) -> np.ndarray:
    """Training-loss histories of different lengths as one `(run, step)` array,
    NaN after each run's last step."""
    out = np.full((len(histories), max(h.size for h in histories)), np.nan)
    for i, h in enumerate(histories):
        out[i, : h.size] = h
    return out
