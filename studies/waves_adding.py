"""Study: the adding task with a locally coupled coRNN sheet, against the same sheet uncoupled.

    python studies/waves_adding.py [--length 100] [--steps 3000] [--sheets coupled,uncoupled]
                                   [--out data/runs/waves_adding.nc]
    python analysis/waves_adding.py data/runs/waves_adding.nc

The NWM sequence model (research/reference_impls.md §4.3): an 11 x 11 sheet of coRNN
units (`kl.learn.CoRNNSequence`: a Linear input map of (value, marker), 3x3 circular
kernels on position and velocity, a Linear readout of the final position), with the
reference's fixed dt = 0.016, gamma = 94.5, alpha (epsilon) = 9.5, Adam lr 0.02, batch 50,
MSE loss. The reference trains 30k steps at T = 500; here T = 100 (default) or 200 and a
few thousand steps on 2 cores. "Solved" = test MSE <= 0.05 (the trivial predictor, always
1, gives 1/6 = 0.167). The control is the same sheet with the lattice kernels switched off
(`coupled=False`: independent units driven by the input; no global coupling either),
trained with the same budget, seed and batches.

Also records, for the trained coupled sheet, the position h(t) of one test sequence and
a plane-wave fit of its Hilbert phase (`kl.waves`), for the figure.

Writes ONE netCDF file (kl.io.save: atomic, with provenance).
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
from kuranet_common import padded, subset, timed_log  # noqa: E402

import kuralab as kl  # noqa: E402
import kuralab.learn as L  # noqa: E402

SHEETS = {"coupled": True, "uncoupled": False}
SOLVED = 0.05
#: NeuralWaveMachines Sequence_Modeling/adding: T = 500, n_hid 128 (11 x 11 grid), dt 0.016,
#: gamma 94.5, epsilon 9.5, Adam 0.02, batch 50, 30k steps; "solved" at MSE <= 0.05.
REFERENCE = dict(length=500, dt=0.016, gamma=94.5, alpha=9.5, lr=0.02, batch=50, steps=30_000)


def mse_loss(model, batch, key=None):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def make_model(args, coupled: bool, key):
    shape = tuple(int(s) for s in args.shape.split(","))
    return L.CoRNNSequence(shape, 2, length=args.length, dt=args.dt, gamma=args.gamma,
                           alpha=args.alpha, trainable=(), coupled=coupled, key=key)


def run_sheet(name, args, log, test):
    key = jax.random.key(args.seed)
    k_init, k_fit = jax.random.split(key)
    model = make_model(args, SHEETS[name], k_init)  # same init key: identical input/readout
    evaluate = eqx.filter_jit(lambda m: mse_loss(m, test))
    mse0 = float(evaluate(model))

    def batches(step, k):
        return L.data.adding_task(k, args.batch, args.length)

    log(f"{name}: training {args.steps} steps (T = {args.length}, batch {args.batch}, "
        f"Adam {args.lr}); untrained test MSE {mse0:.4f}")
    model, hist = L.fit(mse_loss, model, batches, optax.adam(args.lr), steps=args.steps,
                        key=k_fit, eval_fn=lambda m, k: evaluate(m), eval_every=args.eval_every,
                        progress=args.progress)
    ev = hist.eval_value.values
    done = np.isfinite(ev)
    solved_at = [int(s) + 1 for s, v in zip(hist.step.values[done], ev[done], strict=True) if v <= SOLVED]
    log(f"{name}: test MSE {ev[done][-1]:.4f} after {args.steps} steps"
        + (f"; solved (<= {SOLVED}) first at step {solved_at[0]}" if solved_at else "; not solved")
        + f" ({float(hist.time[-1]):.0f} s)")
    return dict(model=model, hist=hist, mse0=mse0, test_mse=float(ev[done][-1]),
                solved_at=solved_at[0] if solved_at else -1)


@eqx.filter_jit
def wave_summary(model, x):
    """Position h(t) of the trained sheet on one sequence and a plane-wave fit of its
    Hilbert phase (z-scored per unit, no band-pass)."""
    hs, _ = model.trajectory(x)
    phase = kl.waves.instantaneous_phase(hs, axis=0)
    fit = kl.waves.plane_wave_fit(phase, ndim=hs.ndim - 1)
    return hs, phase, fit


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--length", type=int, default=100, help="sequence length T (100; reference 500)")
    p.add_argument("--steps", type=int, default=3000, help="Adam steps per sheet (3000)")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--shape", default="11,11", help="sheet grid (11,11: n_hid 121)")
    p.add_argument("--dt", type=float, default=REFERENCE["dt"])
    p.add_argument("--gamma", type=float, default=REFERENCE["gamma"])
    p.add_argument("--alpha", type=float, default=REFERENCE["alpha"])
    p.add_argument("--sheets", default="coupled,uncoupled")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--test-batch", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="data/runs/waves_adding.nc")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    sheets = subset(p, "--sheets", args.sheets, SHEETS)
    log = timed_log()
    test = L.data.adding_task(jax.random.key(10_000 + args.seed), args.test_batch, args.length)
    trivial = float(jnp.mean((test[1] - 1.0) ** 2))
    log(f"test set: {args.test_batch} sequences, trivial-predictor MSE {trivial:.4f}")
    res = {s: run_sheet(s, args, log, test) for s in sheets}
    loss = padded([res[s]["hist"].loss.values for s in sheets])
    ev = padded([res[s]["hist"].eval_value.values for s in sheets])
    data = {
        "train_loss": (("sheet", "step"), loss, {"long_name": "training MSE per step", "units": "1"}),
        "test_mse_history": (("sheet", "step"), ev,
                             {"long_name": "test MSE (NaN where not evaluated)", "units": "1"}),
        "test_mse": (("sheet",), [res[s]["test_mse"] for s in sheets],
                     {"long_name": "test MSE after training", "units": "1"}),
        "untrained_mse": (("sheet",), [res[s]["mse0"] for s in sheets],
                          {"long_name": "test MSE before training", "units": "1"}),
        "solved_at": (("sheet",), [res[s]["solved_at"] for s in sheets],
                      {"long_name": f"first step with test MSE <= {SOLVED} (-1: never)", "units": "1"}),
    }
    attrs = {}
    if "coupled" in res:
        x0 = test[0][0]
        hs, phase, fit = wave_summary(res["coupled"]["model"], x0)
        hs, phase = np.asarray(hs), np.asarray(phase)
        grid = [f"g{i}" for i in range(hs.ndim - 1)]
        data["h_example"] = (("time", *grid), hs, {"long_name": "position h of the trained coupled sheet, test sequence 0", "units": "1"})
        data["phase_example"] = (("time", *grid), phase, {"long_name": "Hilbert phase of h (z-scored)", "units": "rad"})
        data["marker_example"] = (("time",), np.asarray(x0[:, 1]), {"long_name": "marker input of test sequence 0", "units": "1"})
        attrs.update(wave_speed=float(fit.speed), wave_speed_se=float(fit.speed_se),
                     wave_direction=float(fit.direction), wave_coherence=float(fit.coherence),
                     wave_frequency=float(fit.frequency))
        k = res["coupled"]["model"].cell
        data["kernel_h"] = (tuple(f"k{i}" for i in range(k.kernel_h.ndim)), np.asarray(k.kernel_h),
                            {"long_name": "trained position kernel W_h", "units": "1"})
        data["kernel_v"] = (tuple(f"k{i}" for i in range(k.kernel_v.ndim)), np.asarray(k.kernel_v),
                            {"long_name": "trained velocity kernel W_v", "units": "1"})
        log(f"coupled sheet, test sequence 0: plane-wave fit speed {fit.speed:.3g} +- "
            f"{fit.speed_se:.2g} sites/step, coherence {fit.coherence:.3f}")
    ds = xr.Dataset(
        data,
        coords={"sheet": ("sheet", sheets), "step": ("step", np.arange(loss.shape[1]))},
        attrs={
            "title": "adding task: locally coupled coRNN sheet vs the same sheet uncoupled",
            "length": args.length, "steps": args.steps, "batch": args.batch, "lr": args.lr,
            "shape": args.shape, "dt": args.dt, "gamma": args.gamma, "alpha": args.alpha,
            "test_batch": args.test_batch, "trivial_mse": trivial, "solved_threshold": SOLVED,
            "reference": ", ".join(f"{k}={v}" for k, v in REFERENCE.items()),
            "command": " ".join(["python", "studies/waves_adding.py", *(argv or sys.argv[1:])]),
            **attrs,
        },
    )
    path = kl.io.save(ds, args.out, seeds=args.seed)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
