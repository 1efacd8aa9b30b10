"""Study: AKOrN on 4x4 Sudoku, test-time steps and energy-based voting (AKOrN §5, Table 4).

    python studies/akorn_sudoku.py [--fast] [--channels 64] [--train-steps 1000]
                                   [--out data/runs/akorn_sudoku.nc]
    python analysis/akorn_sudoku.py data/runs/akorn_sudoku.nc

A small attentive AKOrN (`kl.learn.AKOrNNet`: digit embedding as stimulus, one
attention layer over the 16 cells with GTA rotations, n = 4, global learnable Omega
(init 0.1), learnable gamma, readout + ReLU 1x1 head to 4 logits per cell; the initial
state is Gaussian noise on every cell, `--x-init clamp_given` puts the stimulus on the
given cells as the reference Sudoku model does) is trained with `kl.learn.fit` (Adam 1e-3, clip 1, cross-entropy over all cells)
on puzzles with a unique solution and `--train-blanks` blanks (default 4-8), at T =
`--train-T` steps. Tests: in-distribution (ID, the training blanks) and
out-of-distribution (OOD, `--ood-blanks`, default 9-10: fewer givens), at the training
T and at `--eval-T` (more steps), with 1, 16 and 64 votes (`kl.learn.energy_vote`: 64
random initial states per puzzle; K votes = the first K of them), scored by the last
energy or the sum over steps, with the AKOrN energy and the reference's logged form. A
board counts as correct when it is a valid Sudoku keeping the givens
(`kl.learn.data.sudoku_solved`). Also: the correlation between a run's energy and its
board correctness (point-biserial, over all runs and within puzzles).

The paper (9x9, ch 512, T 16, T_eval 128; GPU): ID board accuracy 100%, OOD 51.7% with
one run -> 81.6% with K = 100 votes -> 89.5% with K = 4096. This is a 4x4 CPU-scale
analogue, a demo of the mechanism, not a reproduction (reference_impls.md §5.1).

Measured (`--fast`, 2 shared cores): with noise everywhere more test-time steps and
votes help (OOD board 33% at T=8 -> 43% at T=16 -> 47% with 16 votes); with the
reference's clamped start the same model gets 17% -> 7% (more steps hurt, votes do not
help), which is why noise is the default here. Default run (noise, C=64, 1000 steps, 200
puzzles per split; 394 s at load ~8): ID 97.5% (T=8) / 100% (T=16); OOD 66.0% (T=8) ->
76.5% (T=16); 64 votes 77.5%; within-puzzle energy-correctness correlation ~0.

`--fast`: channels 32, 300 training steps, 100 test puzzles per split (about a minute on
2 idle cores). Writes ONE netCDF file with provenance (kl.io.save).
"""

from __future__ import annotations

import argparse
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

import kuralab as kl
import kuralab.learn as L
from kuralab.learn.akorn_net import total_energy

#: AKOrN paper, Sudoku (9x9) board accuracy in %: ID, and OOD vs number of votes K.
PAPER = {"id": 100.0, "ood_K1": 51.7, "ood_K100": 81.6, "ood_K4096": 89.5}
VOTES = (1, 16, 64)
SCORES = ("sum", "last")
ENERGIES = ("energy", "energy_logged")


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="small, about a minute")
    p.add_argument("--channels", type=int, default=None, help="oscillator channels (64; fast 32)")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--omega", default="0.1",
                   help="initial global Omega rate, or 'none' for no natural frequency (0.1)")
    p.add_argument("--x-init", default="noise", choices=("noise", "clamp_given"),
                   help="initial state: noise everywhere (default), or the stimulus on the "
                        "givens + noise on the blanks (the reference's)")
    p.add_argument("--train-T", type=int, default=8, help="Kuramoto steps in training (8)")
    p.add_argument("--eval-T", type=int, default=16, help="Kuramoto steps at test time (16)")
    p.add_argument("--train-steps", type=int, default=None, help="Adam steps (1000; fast 300)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-blanks", default="4,8", help="low,high blanks in training (4,8)")
    p.add_argument("--ood-blanks", default="9,10", help="low,high blanks OOD (9,10)")
    p.add_argument("--n-train", type=int, default=4000, help="training puzzles (4000)")
    p.add_argument("--n-test", type=int, default=None, help="test puzzles per split (200; fast 100)")
    p.add_argument("--votes", type=int, default=64, help="random initial states per puzzle (64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="data/runs/akorn_sudoku.nc")
    p.add_argument("--progress", action="store_true")
    a = p.parse_args(argv)
    a.omega = None if a.omega.lower() == "none" else float(a.omega)
    a.channels = a.channels or (32 if a.fast else 64)
    a.train_steps = a.train_steps or (300 if a.fast else 1000)
    a.n_test = a.n_test or (100 if a.fast else 200)
    for name in ("train_blanks", "ood_blanks"):
        lo, hi = (int(v) for v in getattr(a, name).split(","))
        setattr(a, name, (lo, hi))
    if a.votes < max(VOTES):
        p.error(f"--votes must be >= {max(VOTES)}")
    return a


def build(a, key):
    return L.AKOrNNet(
        5, (a.channels,), n=4, steps=a.train_T, connectivity="attn", grid=(4, 4),
        heads=a.heads, gta=True, omega=a.omega, learn_gamma=True, c_norm="none",
        head="cells", n_out=4, encoder="embed", x_init=a.x_init, key=key,
    )


def _omega(net) -> str:
    w = net.layers[0].omega_rates()
    return "none" if w is None else f"{float(w):.4g}"


def loss_fn(net, batch, key):
    puzzle, solution = batch
    keys = jax.random.split(key, puzzle.shape[0])
    logits, _ = jax.vmap(lambda p, k: net(p, key=k))(puzzle, keys)  # (B, 4, 4, 4)
    lp = jax.nn.log_softmax(logits, axis=1)
    target = jax.nn.one_hot(solution - 1, 4, axis=1)
    ce = -jnp.mean(jnp.sum(lp * target, axis=1))
    acc = jnp.mean(jnp.argmax(logits, 1) == solution - 1)
    return ce, {"cell_acc": acc}


def evaluate(net, puzzle, solution, key, T, votes, chunk=50):
    """Every vote of every puzzle: predictions, cell correctness, board correctness and
    the four energy scores. Arrays `(puzzle, vote, ...)`."""

    @eqx.filter_jit
    def run(net, p, k):
        def one(pz, kk):
            _, info = L.energy_vote(net, pz, key=kk, votes=votes, steps=T)
            pred = jnp.argmax(info["outputs"], axis=1) + 1  # (votes, 4, 4)
            sc = {f"{e}:{s}": total_energy(info, score=s, energy=e)
                  for e in ENERGIES for s in SCORES}
            return pred, sc

        return jax.vmap(one)(p, jax.random.split(k, p.shape[0]))

    preds, scores = [], {f"{e}:{s}": [] for e in ENERGIES for s in SCORES}
    for i in range(0, puzzle.shape[0], chunk):
        pr, sc = run(net, puzzle[i:i + chunk], jax.random.fold_in(key, i))
        preds.append(np.asarray(pr))
        for k in scores:
            scores[k].append(np.asarray(sc[k]))
    pred = np.concatenate(preds)
    scores = {k: np.concatenate(v) for k, v in scores.items()}
    P = np.asarray(puzzle)[:, None]
    board = np.asarray(L.data.sudoku_solved(pred, np.broadcast_to(P, pred.shape)))
    blank = (P == 0)
    cell = (pred == np.asarray(solution)[:, None])
    # cell accuracy over the blanks (givens are clamped and trivially kept)
    cell_blank = (cell & blank).sum((-1, -2)) / np.maximum(blank.sum((-1, -2)), 1)
    return dict(board=board, cell=cell_blank, scores=scores)


def vote_table(ev, votes=VOTES):
    """Board / cell accuracy with the first K votes, lowest score wins."""
    out = {}
    for k in scores_keys():
        s = ev["scores"][k]
        ba, ca = [], []
        for K in votes:
            best = np.argmin(s[:, :K], axis=1)
            idx = np.arange(s.shape[0])
            ba.append(ev["board"][idx, best].mean())
            ca.append(ev["cell"][idx, best].mean())
        out[k] = (np.array(ba), np.array(ca))
    return out


def scores_keys():
    return [f"{e}:{s}" for e in ENERGIES for s in SCORES]


def correlations(ev):
    """Pearson correlation of score with board correctness: over all runs, and within
    puzzles (scores and correctness centred per puzzle)."""
    out = {}
    c = ev["board"].astype(float)
    for k in scores_keys():
        s = ev["scores"][k]
        allc = np.corrcoef(s.ravel(), c.ravel())[0, 1] if c.std() > 0 else np.nan
        sc, cc = s - s.mean(1, keepdims=True), c - c.mean(1, keepdims=True)
        den = np.sqrt((sc**2).sum() * (cc**2).sum())
        within = (sc * cc).sum() / den if den > 0 else np.nan
        out[k] = (allc, within)
    return out


def main(argv=None) -> int:
    a = parse(argv)
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    key = jax.random.key(a.seed)
    k_net, k_train, k_fit, k_id, k_ood, k_eval = jax.random.split(key, 6)
    train_p, train_s = L.data.sudoku(k_train, a.n_train, 4, a.train_blanks)
    tests = {
        "id": L.data.sudoku(k_id, a.n_test, 4, a.train_blanks),
        "ood": L.data.sudoku(k_ood, a.n_test, 4, a.ood_blanks),
    }
    log(f"data: {a.n_train} training puzzles, {a.n_test} per test split")
    net = build(a, k_net)

    def batches(step, key):
        idx = jax.random.randint(key, (a.batch,), 0, a.n_train)
        return train_p[idx], train_s[idx]

    opt = optax.adam(a.lr)
    net, hist = L.fit(loss_fn, net, batches, opt, steps=a.train_steps, key=k_fit,
                      max_grad_norm=1.0, progress=a.progress)
    log(f"trained {a.train_steps} steps: loss {float(hist.loss[:20].mean()):.3f} -> "
        f"{float(hist.loss[-20:].mean()):.3f}, gamma {float(net.layers[0].gamma):.3f}, "
        f"omega {_omega(net)}")

    Ts = (a.train_T, a.eval_T)
    splits = list(tests)
    board = np.zeros((2, 2, len(scores_keys()), len(VOTES)))
    cell = np.zeros_like(board)
    corr = np.zeros((2, 2, len(scores_keys()), 2))
    keep = {}
    for i, sp in enumerate(splits):
        for j, T in enumerate(Ts):
            ev = evaluate(net, *tests[sp], jax.random.fold_in(k_eval, 10 * i + j), T, a.votes)
            tab, cr = vote_table(ev), correlations(ev)
            for m, k in enumerate(scores_keys()):
                board[i, j, m], cell[i, j, m] = tab[k]
                corr[i, j, m] = cr[k]
            keep[sp, T] = ev
            b = tab["energy_logged:sum"][0]
            log(f"{sp:3s} T={T:3d}: board acc (logged energy, sum) K=1/16/64: "
                + " / ".join(f"{100 * v:.1f}%" for v in b))
    # per-run energies and correctness at the test-time T, for the figure
    runs_score = np.stack([keep[sp, a.eval_T]["scores"]["energy_logged:sum"] for sp in splits])
    runs_board = np.stack([keep[sp, a.eval_T]["board"] for sp in splits])
    # one energy trace: the first OOD puzzle, every vote, at eval T
    pz = tests["ood"][0][0]
    _, info = L.energy_vote(net, pz, key=jax.random.fold_in(k_eval, 999), votes=16, steps=a.eval_T)
    trace = np.asarray(info["energy_logged"][0])
    tr_pred = np.argmax(np.asarray(info["outputs"]), 1) + 1
    tr_ok = np.asarray(L.data.sudoku_solved(tr_pred, np.broadcast_to(np.asarray(pz), tr_pred.shape)))
    paper = np.array([PAPER["id"], PAPER["ood_K1"], PAPER["ood_K100"], PAPER["ood_K4096"]])
    ds = xr.Dataset(
        {
            "board_acc": (("split", "T", "score", "votes"), board,
                          {"long_name": "board accuracy (valid, keeps givens)", "units": "1"}),
            "cell_acc": (("split", "T", "score", "votes"), cell,
                         {"long_name": "accuracy over the blank cells", "units": "1"}),
            "energy_correct_corr": (("split", "T", "score", "pooling"), corr,
                                    {"long_name": "Pearson correlation of a run's energy score with "
                                     "its board correctness", "units": "1"}),
            "run_score": (("split", "puzzle", "vote"), runs_score,
                          {"long_name": "logged energy summed over steps, per run, at eval T",
                           "units": "1"}),
            "run_correct": (("split", "puzzle", "vote"), runs_board.astype(np.int8),
                            {"long_name": "board correct, per run, at eval T", "units": "1"}),
            "trace_energy": (("trace_vote", "kuramoto_step"), trace,
                             {"long_name": "logged energy along the steps, first OOD puzzle",
                              "units": "1"}),
            "trace_correct": (("trace_vote",), tr_ok.astype(np.int8),
                              {"long_name": "board correct, first OOD puzzle", "units": "1"}),
            "train_loss": (("step",), hist.loss.values,
                           {"long_name": "training cross-entropy", "units": "nat"}),
            "train_cell_acc": (("step",), hist.cell_acc.values,
                               {"long_name": "training cell accuracy (all cells)", "units": "1"}),
            "paper_board_acc": (("paper_case",), paper / 100,
                                {"long_name": "AKOrN paper, 9x9 Sudoku board accuracy", "units": "1"}),
        },
        coords={
            "split": ("split", splits), "T": ("T", list(Ts)), "score": ("score", scores_keys()),
            "votes": ("votes", list(VOTES)), "pooling": ("pooling", ["all_runs", "within_puzzle"]),
            "puzzle": ("puzzle", np.arange(a.n_test)), "vote": ("vote", np.arange(a.votes)),
            "trace_vote": ("trace_vote", np.arange(16)), "step": ("step", np.arange(a.train_steps)),
            "paper_case": ("paper_case", ["id", "ood_K1", "ood_K100", "ood_K4096"]),
        },
        attrs={
            "title": "AKOrN 4x4 Sudoku: test-time steps and energy voting",
            "channels": a.channels, "heads": a.heads, "x_init": a.x_init, "n": 4, "train_T": a.train_T,
            "eval_T": a.eval_T, "train_steps": a.train_steps, "batch": a.batch, "lr": a.lr,
            "train_blanks": str(a.train_blanks), "ood_blanks": str(a.ood_blanks),
            "n_train": a.n_train, "n_test": a.n_test, "max_votes": a.votes,
            "gamma_learned": float(net.layers[0].gamma),
            "omega_init": str(a.omega), "omega_learned": _omega(net),
            "wall_seconds": time.perf_counter() - t0,
            "command": " ".join(["python", "studies/akorn_sudoku.py", *(argv if argv is not None else sys.argv[1:])]),
        },
    )
    path = kl.io.save(ds, a.out, seeds=a.seed)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
