"""Study: KuraNet global synchrony, cases I--III (KuraNet Table I), trained vs control.

    python studies/kuranet_global.py [--cases I,II,III] [--seeds 10] [--init torch]
                                     [--size-n 2000] [--steps N] [--epochs E]
                                     [--out data/runs/kuranet_global.nc]
    python analysis/kuranet_global.py data/runs/kuranet_global.nc

A pair MLP $K_\\mu(x_i, x_j)$ (`kl.learn.PairwiseMLPCoupling`, hidden (128, 128), node
normalisation with mean degree 1, symmetric) is trained so that networks of n = 100
oscillators with disordered frequencies (I), frequencies and fields (II) or high
frequencies and step delays (III) synchronise: loss 1 - R averaged over 50 Euler steps
(dt = 0.1) after 100 burn-in steps without gradients. The protocol is the reference's
(`experiments.cfg` and `train.py` at its last commit): 10,000 training samples cut into
100 networks per epoch; case I: SGD lr 5e-4, clip 1, 2 epochs; case II: SGD lr 1e-2,
clip 1, 2 epochs; case III: SGD lr 5e-2, momentum 0.5, clip 5, 3 epochs; weights
initialised as torch.nn.Linear's default (`set_gain=False`; `--init xavier` for
Xavier-normal gain 0.5); a seed search over `--seeds` initialisations and data orders
(`train.py --num_seeds`, default 10), keeping the seed with the lowest loss on
`--val-graphs` validation networks. One departure: the reference keeps the seed that
is best on its test batch; here validation networks choose and the test networks
below never do.

The seed search matters: single seeds spread widely (default run, case I: Data test
1 - R from 0.07 to 0.54 over the 10 seeds, median 0.21), so one seed says little about
the protocol. Default run (all three cases, 2.5 min on 2 cores), trained against the
paper: I 0.073 / 0.075 / 0.074 (paper 0.067 / 0.068 / 0.068) on Data / Size / Data+Size,
II 0.25 / 0.16 / 0.16 (0.15 / 0.18 / 0.19), III 0.34 / 0.31 / 0.33 (0.38 / 0.70 / 0.69).

Test regimes (our reading of the paper's columns): Data = new n = 100 networks; Size =
one network made of `size_n` of the training samples (the paper's 10,000 = all of them);
Data+Size = one network of `size_n` new samples. The default `size_n` is 2000 to keep
the run to minutes; `--size-n 10000` is the paper's size (the large networks are
evaluated for the kept seed only; all three cases took 38 min wall on 2 cores shared
with a test suite, 3.2 GB peak RSS: the pair MLP is evaluated in chunks of pairs).
Trained at n = 10,000, Size / Data+Size: I 0.075 / 0.073 (paper 0.068 / 0.068), II
0.151 / 0.139 (0.182 / 0.189), III 0.312 / 0.325 (0.703 / 0.686). Couplings compared: `trained`, `control` (the kept
seed's MLP untrained, its BatchNorm over the network's own pairs: same normalisation,
hence the same mean degree 1), `control_eval` (the same untrained MLP as the reference
evaluates it, `kn.eval()`: BatchNorm with its initial running statistics, i.e. no
normalisation, which leaves the logits nearly flat and K nearly uniform) and `uniform`
(all-to-all K_ij = 1/n, mean degree 1). The paper's control column matches
`control_eval` and `uniform`, not `control`: default run, Data / Size / Data+Size, I
control_eval 0.75 / 0.94 / 0.96, control 0.52 / 0.68 / 0.62 (paper 0.74 / 0.92 / 0.91);
II 0.76 / 0.94 / 0.93 (paper 0.74 / 0.90 / 0.94); III 0.89 / 0.94 / 0.96 (paper
0.89 / 0.97 / 0.98).

Writes ONE netCDF file (kl.io.save: atomic, with provenance): the test losses, the
paper's numbers beside them, every seed's training history, validation and Data test
loss, the kept seed, an example coupling matrix of a test network, R(t) on it, and the
c_x diagnostic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kuranet_common import (  # noqa: E402
    common_args,
    epoch_batches,
    mean_loss,
    padded,
    stack,
    subset,
    take,
    timed_log,
)

import kuralab as kl  # noqa: E402
import kuralab.learn as L  # noqa: E402

REGIMES = ("data", "size", "data_size")
COUPLINGS = ("trained", "control", "control_eval", "uniform")
#: KuraNet Table I (circular variance 1 - R): trained / control per regime.
PAPER = {
    "I": {"trained": (0.0667, 0.0681, 0.0682), "control": (0.7412, 0.9172, 0.9144)},
    "II": {"trained": (0.1527, 0.1823, 0.1890), "control": (0.7370, 0.8969, 0.9378)},
    "III": {"trained": (0.3800, 0.7026, 0.6855), "control": (0.8920, 0.9707, 0.9753)},
}
#: experiments.cfg: optimiser and epochs per case.
SETTINGS = {
    "I": dict(lr=5e-4, momentum=0.0, clip=1.0, epochs=2),
    "II": dict(lr=1e-2, momentum=0.0, clip=1.0, epochs=2),
    "III": dict(lr=5e-2, momentum=0.5, clip=5.0, epochs=3),
}
BURN_IN, WINDOW, DT = 100, 50, 0.1


def loss(c, d):
    return L.kuranet_loss(c, d, burn_in=BURN_IN, window=WINDOW, dt=DT)


def fit_loss(c, d, key):
    """`loss` in `kl.learn.fit`'s form; one function for every seed, so that fit's
    jitted step compiles once per case, not once per seed."""
    del key
    return loss(c, d)


def _R(t, theta):
    return jnp.abs(kl.order_parameter(theta))


def eval_mode(coupling):
    """`coupling` as the reference evaluates an untrained network (`kn.eval()`): its
    BatchNorm layers then use their running statistics, which start at mean 0 and
    variance 1, so they normalise nothing (and the scale 1 and shift 0 do nothing
    either); the same weights with `hidden_norm="none"`. For a trained network the
    running statistics track the training batches and this does not apply."""
    if coupling.hidden_norm != "batch":
        return coupling
    plain = L.PairwiseMLPCoupling(coupling.n_features, hidden=coupling.hidden,
                                  hidden_norm="none", key=jax.random.key(0))
    return eqx.tree_at(lambda m: (m.weights, m.biases, m.out_weight), plain,
                       (coupling.weights, coupling.biases, coupling.out_weight))


def uniform_loss(d):
    """The all-to-all control K_ij = 1/n (mean degree 1)."""
    field, delay = d.get("field"), d.get("delay")
    m = kl.Kuramoto(
        d["omega"], kl.MeanField(1.0),
        forcing=None if field is None else kl.Forcing(-field, 0.0),
        delays=None if delay is None else kl.Delays(delay, convention="kuranet"),
    )
    traj = kl.simulate(m, jnp.zeros(m.n_osc), t1=(BURN_IN + WINDOW) * DT, dt=DT,
                       burn_in=BURN_IN * DT, solver="euler", saveat=kl.SaveAt(every=1, fn=_R))
    return float(jnp.mean(1.0 - traj.ys))


def r_of_t(coupling, d):
    """R(t) from t = 0 to the end of the loss window on one network."""
    m = L.kuranet_model(coupling, d)
    traj = kl.simulate(m, jnp.zeros(m.n_osc), t1=(BURN_IN + WINDOW) * DT, dt=DT, solver="euler",
                       saveat=kl.SaveAt(every=1, fn=_R))
    return np.asarray(traj.ys)


def run_case(case, args, log):
    s = SETTINGS[case]
    key = jax.random.key(args.seed)
    k_init, k_train, k_fit, k_test, k_big, k_perm, k_val = jax.random.split(
        jax.random.fold_in(key, len(case)), 7
    )
    hidden = tuple(int(h) for h in args.hidden.split(","))
    gain = None if args.init == "torch" else 0.5
    train = L.data.kuranet_disorder(k_train, args.train_samples, case)
    per_epoch = args.train_samples // args.n
    epochs = s["epochs"] if args.epochs is None else args.epochs
    steps = args.steps if args.steps is not None else int(round(epochs * per_epoch))
    opt = optax.sgd(s["lr"], momentum=s["momentum"] or None)
    val = stack([L.data.kuranet_disorder(jax.random.fold_in(k_val, i), args.n, case)
                 for i in range(args.val_graphs)])
    tests = [L.data.kuranet_disorder(jax.random.fold_in(k_test, i), args.n, case)
             for i in range(args.test_graphs)]
    data = stack(tests)
    # The reference's seed search (`train.py --num_seeds`, default 10): each seed its own
    # initialisation and data order; the kept one has the lowest loss on validation
    # networks (the reference chooses on its test batch; here the test networks below
    # never take part in the choice).
    runs = []
    for seed in range(args.seeds):
        init = L.PairwiseMLPCoupling(3, hidden=hidden, hidden_norm=args.hidden_norm, gain=gain,
                                     key=jax.random.fold_in(k_init, seed))
        batches, _ = epoch_batches(train, args.train_samples, args.n, jax.random.fold_in(k_perm, seed))
        trained, hist = L.fit(fit_loss, init, batches, opt, steps=steps,
                              key=jax.random.fold_in(k_fit, seed), max_grad_norm=s["clip"],
                              progress=args.progress)
        v, t = mean_loss(loss, trained, val), mean_loss(loss, trained, data)
        log(f"case {case}: seed {seed}: {steps} steps (SGD lr {s['lr']}, momentum "
            f"{s['momentum']}, clip {s['clip']}); first/last 10-step mean loss "
            f"{float(hist.loss[:10].mean()):.3f} / {float(hist.loss[-10:].mean()):.3f}; "
            f"validation {v:.4f}, test {t:.4f}")
        runs.append((v, t, init, trained, hist.loss.values))
    best = int(np.argmin([r[0] for r in runs]))
    _, _, control, trained, _ = runs[best]
    log(f"case {case}: kept seed {best} (validation {np.round([r[0] for r in runs], 4)})")

    size_n = min(args.size_n, args.train_samples)
    size_net = take(train, jnp.arange(size_n))
    new_big = L.data.kuranet_disorder(k_big, args.size_n, case)
    out = np.full((len(REGIMES), len(COUPLINGS)), np.nan)
    for j, c in enumerate((trained, control, eval_mode(control))):
        out[0, j] = mean_loss(loss, c, data)
        out[1, j] = float(loss(c, size_net))
        out[2, j] = float(loss(c, new_big))
    out[0, 3] = float(np.mean([uniform_loss(d) for d in tests]))
    out[1, 3] = uniform_loss(size_net)
    out[2, 3] = uniform_loss(new_big)
    log(f"case {case}: test losses (rows {REGIMES}, cols {COUPLINGS}):\n{np.round(out, 4)}")

    d0 = tests[0]
    order = np.argsort(np.asarray(d0["omega"]))
    x0 = L.node_features(d0)
    K = {n: np.asarray(c.matrix(x0))[np.ix_(order, order)] for n, c in (("trained", trained), ("control", control))}
    cx = {n: (float(L.feature_correlation(K[n], np.asarray(x0)[order])),
              float(L.feature_correlation(K[n], np.asarray(d0["omega"])[order])))
          for n in K}
    R = {n: r_of_t(c, d0) for n, c in (("trained", trained), ("control", control))}
    return dict(loss=out, hists=[r[4] for r in runs], best=best, K=K, cx=cx, R=R,
                val=np.array([r[0] for r in runs]), test_seed=np.array([r[1] for r in runs]),
                omega=np.asarray(d0["omega"])[order], steps=steps, size_n=size_n)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="I,II,III")
    p.add_argument("--seeds", type=int, default=10,
                   help="initialisations trained per case, the best on the validation networks "
                        "kept (default 10, the reference's num_seeds)")
    p.add_argument("--val-graphs", type=int, default=10,
                   help="new n-node networks that choose among the seeds (default 10)")
    p.add_argument("--init", default="torch", choices=("torch", "xavier"),
                   help="initial weights: torch.nn.Linear's default (the reference's global "
                        "configurations, set_gain=False; default) or Xavier-normal gain 0.5")
    common_args(p, out="data/runs/kuranet_global.nc")
    args = p.parse_args(argv)
    cases = subset(p, "--cases", args.cases, SETTINGS)
    if args.seeds < 1 or args.val_graphs < 1:
        p.error(f"--seeds and --val-graphs must be >= 1; got {args.seeds}, {args.val_graphs}")
    log = timed_log()
    res = {c: run_case(c, args, log) for c in cases}
    hist = padded([res[c]["hists"][res[c]["best"]] for c in cases])
    max_steps = hist.shape[1]
    seed_hist = np.stack([padded([*res[c]["hists"], np.full(max_steps, np.nan)])[:-1] for c in cases])
    paper = np.full((len(cases), len(REGIMES), len(COUPLINGS)), np.nan)
    for i, c in enumerate(cases):
        paper[i, :, 0] = PAPER[c]["trained"]
        paper[i, :, 1] = paper[i, :, 2] = PAPER[c]["control"]
    n = args.n
    steps_t = (np.arange(BURN_IN + WINDOW + 1)) * DT
    ds = xr.Dataset(
        {
            "loss": (("case", "regime", "coupling"), np.stack([res[c]["loss"] for c in cases]),
                     {"long_name": "test circular variance 1 - R over the loss window", "units": "1"}),
            "paper_loss": (("case", "regime", "coupling"), paper,
                           {"long_name": "KuraNet Table I (trained, control)", "units": "1"}),
            "train_loss": (("case", "step"), hist,
                           {"long_name": "training loss per step, kept seed", "units": "1"}),
            "train_loss_seed": (("case", "seed", "step"), seed_hist,
                                {"long_name": "training loss per step, every seed", "units": "1"}),
            "val_loss": (("case", "seed"), np.stack([res[c]["val"] for c in cases]),
                         {"long_name": "validation 1 - R of each seed (chooses the kept one)",
                          "units": "1"}),
            "data_loss_seed": (("case", "seed"), np.stack([res[c]["test_seed"] for c in cases]),
                               {"long_name": "Data-regime test 1 - R of every seed (the kept "
                                             "one is loss[regime=data, coupling=trained])",
                                "units": "1"}),
            "best_seed": (("case",), np.array([res[c]["best"] for c in cases]),
                          {"long_name": "seed kept (lowest validation loss)", "units": "1"}),
            "K_example": (("case", "coupling_kind", "receiver", "sender"),
                          np.stack([[res[c]["K"][k] for k in ("trained", "control")] for c in cases]),
                          {"long_name": "coupling of test network 0, nodes sorted by omega", "units": "1"}),
            "omega_example": (("case", "receiver"), np.stack([res[c]["omega"] for c in cases]),
                              {"long_name": "natural frequencies of test network 0, sorted", "units": "rad/time"}),
            "R_example": (("case", "coupling_kind", "time"),
                          np.stack([[res[c]["R"][k] for k in ("trained", "control")] for c in cases]),
                          {"long_name": "order parameter R(t) on test network 0", "units": "1"}),
            "c_x": (("case", "coupling_kind"), np.array([[res[c]["cx"][k][0] for k in ("trained", "control")] for c in cases]),
                    {"long_name": "feature correlation c_x over (h, omega, tau)", "units": "1"}),
            "c_omega": (("case", "coupling_kind"), np.array([[res[c]["cx"][k][1] for k in ("trained", "control")] for c in cases]),
                        {"long_name": "feature correlation c_x of omega alone", "units": "1"}),
        },
        coords={
            "case": ("case", cases), "regime": ("regime", list(REGIMES)),
            "coupling": ("coupling", list(COUPLINGS)), "coupling_kind": ("coupling_kind", ["trained", "control"]),
            "step": ("step", np.arange(max_steps)), "seed": ("seed", np.arange(args.seeds)),
            "time": ("time", steps_t, {"units": "time"}),
            "receiver": ("receiver", np.arange(n)), "sender": ("sender", np.arange(n)),
        },
        attrs={
            "title": "KuraNet global synchrony (Table I), trained vs control",
            "n_train": n, "size_n": int(args.size_n), "train_samples": args.train_samples,
            "test_graphs": args.test_graphs, "val_graphs": args.val_graphs, "n_seeds": args.seeds,
            "init": args.init, "hidden": args.hidden, "hidden_norm": args.hidden_norm,
            "burn_in_steps": BURN_IN, "window_steps": WINDOW, "dt": DT,
            "train_steps": ",".join(f"{c}:{res[c]['steps']}" for c in cases),
            "command": " ".join(["python", "studies/kuranet_global.py", *(argv or sys.argv[1:])]),
        },
    )
    path = kl.io.save(ds, args.out, seeds=args.seed)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
