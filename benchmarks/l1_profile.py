"""Where the L1 KuraNet step's time goes (profile evidence for issue 12's L1 target).

    python benchmarks/l1_profile.py [--repeats 21] [--against REV]

Not part of `make bench`. Times, interleaved in one process (median and minimum of
`--repeats` calls each, milliseconds):

- `step`: the whole kuralab training step of L1 (`kl.learn.kuranet_loss` under
  `kuralab.learn._train._step`), as `benchmarks/l1_kuranet.py` times it;
- `pair_mlp`: value and gradient of `kuralab.learn._pair_mlp.pair_logits` alone at the
  L1 size (n = 100, 128 -> 128 -> 1) with a fixed cotangent;
- `mm_fwd`, `mm_dh`, `mm_dW`: the three n^2 x 128 x 128 matmuls it cannot avoid
  (z = h W^T, dh = dz W, dW = dz^T h: the last contracts over the n^2 pairs);
- `pass`: one elementwise pass over an n^2 x 128 float32 array (read one, write one);
- `simulate`: value and gradient of the 100 + 50 Euler steps with a fixed coupling.

and counts the n^2 x 128 arrays materialised in the compiled `pair_mlp` (HLO). With
`--against REV` (a git revision, e.g. `main`) it also times `step_REV`: the same step with
`kuralab/learn/_pair_mlp.py` as of REV (read with `git show`), for a same-run A/B.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import l1_kuranet as L1  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import kuralab as kl  # noqa: E402
import kuralab.learn as L  # noqa: E402
from kuralab.learn._pair_mlp import pair_logits  # noqa: E402
from kuralab.learn._train import _step  # noqa: E402


def _pair_logits_at(rev: str):
    """`pair_logits` from kuralab/learn/_pair_mlp.py as of git revision `rev`."""
    root = Path(__file__).resolve().parent.parent
    src = subprocess.run(
        ["git", "show", f"{rev}:kuralab/learn/_pair_mlp.py"], cwd=root, check=True,
        capture_output=True, text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location(f"_pair_mlp_{rev}", fh.name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.pair_logits


def cases(n: int = 100, h: int = 128, against: str | None = None):
    import kuralab.learn.kuranet as kuranet

    coupling, disorder = L1.problem(n)
    opt = optax.chain(optax.clip_by_global_norm(L1.CLIP), optax.sgd(L1.LR))
    state0 = opt.init(eqx.filter(coupling, eqx.is_inexact_array))

    def with_pair_logits(fn):
        def loss_fn(c, d, key):
            kuranet.pair_logits = fn  # read at trace time by PairwiseMLPCoupling
            return L.kuranet_loss(c, d, burn_in=L1.BURN, window=L1.WIN, dt=L1.DT)
        step = eqx.filter_jit(lambda c, s, d, k: _step(loss_fn, opt, c, s, d, k))
        return lambda: step(coupling, state0, disorder, jax.random.key(0))

    ks = jax.random.split(jax.random.key(3), 8)
    A, B = jax.random.normal(ks[0], (n, h)), jax.random.normal(ks[1], (n, h))
    W = jax.random.normal(ks[2], (h, h)) / np.sqrt(h)
    g, s = 1 + 0.3 * jax.random.normal(ks[3], (h,)), 0.3 * jax.random.normal(ks[4], (h,))
    w, G = jax.random.normal(ks[5], (h,)) / np.sqrt(h), jax.random.normal(ks[6], (n, n))
    b = jnp.zeros(h)

    @jax.jit
    def mlp(A, B, W, g, s, w, G):
        out, vjp = jax.vjp(
            lambda A, B, W, g, s, w: pair_logits(A, B, (W,), (b,), (g,), (s,), w, 0.01),
            A, B, W, g, s, w,
        )
        return out, vjp(G)

    X, Y = jax.random.normal(ks[7], (n * n, h)), jax.random.normal(ks[0], (n * n, h))
    mm_fwd, mm_dh = jax.jit(lambda X, W: X @ W.T), jax.jit(lambda Y, W: Y @ W)
    mm_dW, one_pass = jax.jit(lambda Y, X: Y.T @ X), jax.jit(lambda X: 2.0 * X)
    K = jax.nn.softmax(G.reshape(-1)).reshape(n, n) * n
    omega = disorder["omega"]

    @jax.jit
    def sim(K):
        def f(K):
            m = kl.Kuramoto(omega, kl.DenseCoupling(K))
            tr = kl.simulate(
                m, jnp.zeros(n), t1=(L1.BURN + L1.WIN) * L1.DT, dt=L1.DT,
                burn_in=L1.BURN * L1.DT, solver="euler", throw=False,
                saveat=kl.SaveAt(every=1, fn=lambda t, th: jnp.abs(kl.order_parameter(th))),
            )
            return jnp.mean(1 - tr.ys[-L1.WIN:])
        return jax.value_and_grad(f)(K)

    mlp_args = (A, B, W, g, s, w, G)
    runs = {"step": with_pair_logits(pair_logits)}
    if against is not None:
        runs[f"step_{against}"] = with_pair_logits(_pair_logits_at(against))
    runs |= {
        "pair_mlp": lambda: mlp(*mlp_args),
        "mm_fwd": lambda: mm_fwd(X, W),
        "mm_dh": lambda: mm_dh(Y, W),
        "mm_dW": lambda: mm_dW(Y, X),
        "pass": lambda: one_pass(X),
        "simulate": lambda: sim(K),
    }
    hlo = mlp.lower(*mlp_args).compile().as_text()
    entry = hlo[hlo.index("ENTRY"):]
    big = re.findall(rf"= f32\[(?:{n * n},{h}|{n},{n},{h})\]\S* (\w+)\(", entry)
    return runs, len(big)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--against", default=None, help="git revision for a same-run A/B")
    args = ap.parse_args(argv)
    runs, n_big = cases(against=args.against)
    for f in runs.values():
        jax.block_until_ready(f())
    times = {k: [] for k in runs}
    for _ in range(args.repeats):
        for k, f in runs.items():
            t = time.perf_counter()
            jax.block_until_ready(f())
            times[k].append(time.perf_counter() - t)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(f"load {' '.join(load)}; jax {jax.__version__}; {args.repeats} interleaved repeats")
    print("| part | median ms | min ms |\n|---|---|---|")
    for k, ts in times.items():
        print(f"| {k} | {np.median(ts) * 1e3:.2f} | {np.min(ts) * 1e3:.2f} |")
    print(f"n^2 x 128 arrays materialised in the compiled pair_mlp: {n_big}")


if __name__ == "__main__":
    main()
