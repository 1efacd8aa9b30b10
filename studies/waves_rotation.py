"""Study: rotating shapes through a coRNN-sheet autoencoder; traveling waves in the latent sheet.

    python studies/waves_rotation.py [--steps 1500] [--shape 16,16] [--size 28] [--variational]
                                     [--sheets coupled,uncoupled] [--out data/runs/waves_rotation.nc]
    python analysis/waves_rotation.py data/runs/waves_rotation.nc

The TcoRNN experiment (research/reference_impls.md §4.2) shrunk for 2 cores and made
offline: `kl.learn.data.rotating_shapes` (procedural bars and block letters, 18 frames of
20 degrees = one turn) instead of Rotating MNIST; `kl.learn.CoRNNAutoencoder` with a
16 x 16 latent sheet (reference 36 x 36), the reference initialisation (Delta =
sigmoid(-1.95), gamma 1, alpha 0.5, constant 3x3 circular kernels, all trainable), next-
frame Bernoulli NLL, h_0 = s_0, v_0 = 0. Departures: Adam lr 1e-3 and a few thousand
steps instead of SGD 2.5e-4 (momentum 0.9) for 50 MNIST epochs; deterministic
autoencoder by default (`--variational` for the VAE with its KL term).

Measured on held-out sequences of 4 turns (72 frames, as the reference's test):
- next-frame NLL and MSE, against the untrained model and the copy-the-last-frame
  predictor (the MSE a model that does not know about rotation would get);
- waves in the latent sheet with `kl.waves`: the Hilbert phase of every unit's position
  h(t) (z-scored, first turn dropped as transient), a plane-wave fit per sequence
  (speed in sites per frame, direction, coherence), the phase smoothness
  <cos(phi_i - phi_j)> over grid neighbours (0 for unrelated phases), and the fraction of
  units phase-locked to the rotation (PLV of phi_i - 2 pi t / 18 >= `--lock-threshold`).
The control is the same autoencoder with the sheet's kernels switched off (`coupled=False`),
trained with the same budget, and the untrained coupled model.

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
from kuralab.learn.cornn_ae import bernoulli_nll  # noqa: E402

SHEETS = {"coupled": True, "uncoupled": False}
FRAMES, STEP_DEG = 18, 20.0
MODELS = ("trained", "untrained")


def neighbour_smoothness(phase):
    """<cos(phi_i - phi_j)> over time, sites and the grid's nearest neighbours (periodic)."""
    vals = [jnp.cos(phase - jnp.roll(phase, 1, axis=a)) for a in range(1, phase.ndim)]
    return jnp.mean(jnp.stack(vals))


@eqx.filter_jit
def measure(model, frames, drop: int):
    """Next-frame NLL/MSE per sequence and the wave measures of the latent sheet."""
    def one(f):
        pred, hs, _ = model.rollout(f)
        x = f.reshape(f.shape[0], -1)
        target = jnp.roll(x, -1, 0)
        nll = jnp.mean(jax.vmap(bernoulli_nll)(pred, target))
        mse = jnp.mean((pred - target) ** 2)
        copy = jnp.mean((x - target) ** 2)
        hs = hs[drop:]
        phase = kl.waves.instantaneous_phase(hs, axis=0)
        fit = kl.waves.plane_wave_fit(phase, ndim=hs.ndim - 1)
        t = jnp.arange(drop, drop + hs.shape[0])
        stim = 2 * jnp.pi * t / FRAMES
        stim = stim.reshape((-1,) + (1,) * (hs.ndim - 1))
        plv = kl.waves.phase_locking(phase, stim, axis=0)
        return dict(nll=nll, mse=mse, copy_mse=copy, speed=fit.speed, direction=fit.direction,
                    coherence=fit.coherence, frequency=fit.frequency,
                    smoothness=neighbour_smoothness(phase), plv=plv), hs, phase
    return jax.vmap(one)(frames)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--shape", default="16,16", help="latent sheet grid (16,16; reference 36,36)")
    p.add_argument("--size", type=int, default=28, help="image size in pixels (28)")
    p.add_argument("--variational", action="store_true", help="VAE (Gaussian latent + KL)")
    p.add_argument("--init", default="reference", choices=("reference", "torch"),
                   help="sheet initialisation: the reference's (constant kernels 1/N, "
                        "Delta = sigmoid(-1.95), gamma 1, alpha 0.5) or torch's (random kernels "
                        "U(+-1/3), with --dt/--gamma/--alpha)")
    p.add_argument("--drive", default="all", choices=("all", "first"),
                   help="all: every frame drives the sheet (reference); first: only frame 0 "
                        "sets h_0, then the sheet runs free")
    p.add_argument("--dt", type=float, default=None, help="initial Delta (default: the init's)")
    p.add_argument("--gamma", type=float, default=None, help="initial gamma (default: the init's)")
    p.add_argument("--alpha", type=float, default=None, help="initial alpha (default: the init's)")
    p.add_argument("--sheets", default="coupled,uncoupled")
    p.add_argument("--test-sequences", type=int, default=32)
    p.add_argument("--test-turns", type=int, default=4, help="turns per test sequence (4: 72 frames)")
    p.add_argument("--lock-threshold", type=float, default=0.5)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="data/runs/waves_rotation.nc")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    sheets = subset(p, "--sheets", args.sheets, SHEETS)
    shape = tuple(int(s) for s in args.shape.split(","))
    log = timed_log()
    pixels = args.size * args.size
    test_frames = FRAMES * args.test_turns
    test = L.data.rotating_shapes(jax.random.key(10_000 + args.seed), args.test_sequences,
                                  frames=test_frames, step_deg=STEP_DEG, size=args.size)
    val = test[:, :FRAMES]
    drop = FRAMES if args.test_turns > 1 else 0
    evaluate = eqx.filter_jit(lambda m: L.autoencoder_loss(m, val)[1]["nll"])

    def batches(step, k):
        return L.data.rotating_shapes(k, args.batch, frames=FRAMES, step_deg=STEP_DEG, size=args.size)

    def loss_fn(m, b, k):
        return L.autoencoder_loss(m, b, k)

    results, hists, examples, trained, extra = {}, {}, {}, {}, {}
    for name in sheets:
        k_init, k_fit = jax.random.split(jax.random.key(args.seed))
        model = L.CoRNNAutoencoder(pixels, shape, variational=args.variational,
                                   drive=args.drive, coupled=SHEETS[name], init=args.init,
                                   key=k_init)
        for arg, field, raw in (("dt", "dt_raw", lambda d: np.log(d / (1 - d))),
                                ("gamma", "gamma_raw", float), ("alpha", "alpha_raw", float)):
            if getattr(args, arg) is not None:  # override the init's value
                model = eqx.tree_at(lambda m, f=field: getattr(m.cell, f), model,
                                    jnp.asarray(raw(getattr(args, arg)), jnp.float32))
        if name == "coupled":
            results["untrained"], _, _ = measure(model, test, drop)
        log(f"{name}: training {args.steps} steps (batch {args.batch}, Adam {args.lr}); "
            f"untrained next-frame NLL {float(evaluate(model)):.1f}")
        model, hist = L.fit(loss_fn, model, batches, optax.adam(args.lr), steps=args.steps,
                            key=k_fit, eval_fn=lambda m, k: evaluate(m),
                            eval_every=args.eval_every, progress=args.progress)
        res, hs, phase = measure(model, test, drop)
        results[name], hists[name], trained[name] = res, hist, model
        examples[name] = (np.asarray(hs[0]), np.asarray(phase[0]))
        locked = float(jnp.mean(res["plv"] >= args.lock_threshold))
        log(f"{name}: NLL {float(res['nll'].mean()):.1f}, MSE {float(res['mse'].mean()):.4f} "
            f"(copy-last-frame {float(res['copy_mse'].mean()):.4f}); waves: speed "
            f"{float(jnp.median(res['speed'])):.3g} sites/frame, coherence "
            f"{float(res['coherence'].mean()):.3f}, smoothness {float(res['smoothness'].mean()):.3f}, "
            f"locked fraction {locked:.3f} ({float(hist.time[-1]):.0f} s)")
    rows = [r for r in ("coupled", "uncoupled", "untrained") if r in results]
    scalars = ("nll", "mse", "copy_mse", "speed", "direction", "coherence", "frequency", "smoothness")
    grid = [f"g{i}" for i in range(len(shape))]
    data = {
        name: (("model", "sequence"), np.stack([np.asarray(results[r][name]) for r in rows]))
        for name in scalars
    }
    units = {"nll": "nats/frame", "mse": "1", "copy_mse": "1", "speed": "sites/frame",
             "direction": "rad", "coherence": "1", "frequency": "rad/frame", "smoothness": "1"}
    for name in scalars:
        data[name] = (*data[name], {"units": units[name]})
    data["plv"] = (("model", "sequence", *grid), np.stack([np.asarray(results[r]["plv"]) for r in rows]),
                   {"long_name": "phase-locking value of each unit to the rotation phase 2 pi t / 18", "units": "1"})
    data["locked_fraction"] = (("model",), [float(np.mean(np.asarray(results[r]["plv"]) >= args.lock_threshold)) for r in rows],
                               {"long_name": f"fraction of units with PLV >= {args.lock_threshold}", "units": "1"})
    data["train_loss"] = (("sheet", "step"), padded([hists[s].loss.values for s in sheets]),
                          {"long_name": "training loss (next-frame NLL + KL) per step", "units": "nats/frame"})
    data["val_nll"] = (("sheet", "step"), padded([hists[s].eval_value.values for s in sheets]),
                       {"long_name": "held-out next-frame NLL, one turn (NaN where not evaluated)", "units": "nats/frame"})
    data["h_example"] = (("sheet", "time", *grid), np.stack([examples[s][0] for s in sheets]),
                         {"long_name": "latent position h(t) on test sequence 0 (first turn dropped)", "units": "1"})
    data["phase_example"] = (("sheet", "time", *grid), np.stack([examples[s][1] for s in sheets]),
                             {"long_name": "Hilbert phase of h(t), z-scored", "units": "rad"})
    for s in sheets:
        c = trained[s].cell
        extra[f"learned_dt_{s}"], extra[f"learned_gamma_{s}"], extra[f"learned_alpha_{s}"] = (
            float(c.dt), float(c.gamma), float(c.alpha))
    if "coupled" in trained:
        c = trained["coupled"].cell
        for nm in ("kernel_h", "kernel_v", "input_weight"):
            data[nm] = (("k0", "k1"), np.asarray(getattr(c, nm)), {"long_name": f"trained {nm} of the coupled sheet", "units": "1"})
    data["frames_example"] = (("frame", "y", "x"), np.asarray(test[0, :FRAMES]),
                              {"long_name": "test sequence 0, first turn", "units": "1"})
    ds = xr.Dataset(
        data,
        coords={"model": ("model", rows), "sheet": ("sheet", sheets),
                "sequence": ("sequence", np.arange(args.test_sequences)),
                "step": ("step", np.arange(data["train_loss"][1].shape[1]))},
        attrs={
            "title": "rotating shapes: coRNN-sheet autoencoder, next-frame prediction and latent waves",
            "steps": args.steps, "batch": args.batch, "lr": args.lr, "shape": args.shape,
            "size": args.size, "variational": int(args.variational), "frames": FRAMES,
            "init": args.init, "drive": args.drive,
            "step_deg": STEP_DEG, "test_frames": test_frames, "dropped_frames": drop,
            "lock_threshold": args.lock_threshold,
            "command": " ".join(["python", "studies/waves_rotation.py", *(argv or sys.argv[1:])]),
            **extra,
        },
    )
    path = kl.io.save(ds, args.out, seeds=args.seed)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
