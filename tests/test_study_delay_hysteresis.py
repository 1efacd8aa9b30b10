"""The delay-hysteresis study (`studies/delay_hysteresis.toml`): adiabatic tau ramps
carry the delay history, so a reduced run shows both stable branches of delayed
in-phase synchrony, on the up and the down ramp, at the theory's roots."""

import pathlib

import numpy as np
import pytest

import kuralab as kl
from kuralab.study import load_spec, parse_spec, run_study

SPEC = pathlib.Path(__file__).parents[1] / "studies" / "delay_hysteresis.toml"


def test_delay_hysteresis_study_is_the_documented_experiment():
    spec = load_spec(SPEC)
    m = spec.model
    assert m.frequencies.identical and m.frequencies.loc == 3.0 and m.coupling.K == 2.0
    assert m.delayed and not m.noisy
    assert spec.sweep.mode == "adiabatic" and spec.sweep.along == "tau"
    tau = spec.sweep.values("tau")
    # the ramp crosses the whole bistable window (two stable roots for tau in 1 .. 1.5)
    assert min(tau) < 0.9 and max(tau) > 1.7 and spec.solve.dt <= min(tau)


@pytest.mark.slow
def test_delay_hysteresis_study_follows_both_branches(tmp_path):
    """A ramp over tau = 0.8, 1.0, 1.2, 1.6, 1.8 (up from the lower branch, down from
    the upper one): inside the bistable window (tau = 1, 1.2) the ramps sit on the two
    different stable roots, to 1e-4 (float32 RK4 at dt = 0.05 and a 20-unit window of exact winding numbers)."""
    text = SPEC.read_text()
    text = text.replace("tau = { start = 0.5, stop = 1.9, num = 15 }",
                        "tau = [0.8, 1.0, 1.2, 1.6, 1.8]")
    text = text.replace("seeds = 2", "seeds = 1").replace("t1 = 60.0", "t1 = 40.0")
    text = text.replace("window = 30.0", "window = 20.0")
    path = tmp_path / "dh.nc"
    run_study(parse_spec(text), path, spec_text=text, progress=False, compile_cache=False)
    ds = kl.io.load(path)
    for tau in (1.0, 1.2):
        roots, stable = kl.theory.delayed_sync_frequencies(3.0, 2.0, tau)
        low, high = roots[stable]
        up = float(ds["Omega"].sel(tau=tau, direction="up").item())
        down = float(ds["Omega"].sel(tau=tau, direction="down").item())
        np.testing.assert_allclose([up, down], [low, high], atol=1e-4)
