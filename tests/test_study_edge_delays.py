"""Study specs with per-edge delays: `[model.delays] kind = "edges"` (distance / speed on
a circle), `sweep.speed`, one-line errors, and a small run against the delayed-frequency
theory with the delay distribution of the ring."""

import pathlib

import numpy as np
import pytest

import kuralab as kl
from kuralab.study import SpecError, load_spec, parse_spec, run_study

RING = """
[study]
name = "tiny_edges"

[model]
kind = "kuramoto"
n = 16

[model.frequencies]
distribution = "identical"
loc = 1.0

[model.coupling]
kind = "sparse"
graph = "ring"
k = 2
normalize = "degree"
K = 1.0

[model.delays]
kind = "edges"
radius = 1.0
distance = "arc"

[model.initial_phases]
spread = 0.5

[sweep]
speed = [0.3, 2.0]
seeds = 1

[solve]
t1 = 60.0
dt = 0.1
save_every = 10

[observe]
frequency = true
window = 20.0

[output]
path = "unused.nc"
chunk_size = 2
"""


def edit(old: str, new: str, text: str = RING) -> str:
    assert old in text, old
    return text.replace(old, new)


def test_edge_delay_spec_parses_and_round_trips():
    spec = parse_spec(RING)
    d = spec.model.delays
    assert spec.model.edge_delayed and d.speed is None and d.distance == "arc"
    assert spec.sweep.values("speed") == (0.3, 2.0)
    assert parse_spec(spec.to_toml()) == spec
    # the history bound: the longest coupled arc (k = 2 of 16: 2 * 2 pi R / 16) at the
    # slowest speed; mean field couples every pair (pi R)
    assert spec.max_delay() == pytest.approx(4 * np.pi / 16 / 0.3)
    mf = parse_spec(edit('kind = "sparse"\ngraph = "ring"\nk = 2\nnormalize = "degree"\n',
                         'kind = "mean_field"\n'))
    assert mf.max_delay() == pytest.approx(np.pi / 0.3)
    fixed = parse_spec(edit('distance = "arc"', 'distance = "chord"\nspeed = 1.5',
                            edit("speed = [0.3, 2.0]", "lag = [0.0]")))
    chord = 2 * np.sin(2 * np.pi / 16)  # two positions apart
    assert fixed.model.delays.speed == 1.5 and fixed.max_delay() == pytest.approx(chord / 1.5)
    # a uniform [model.delays] is unchanged (no kind written)
    assert "kind" not in parse_spec(
        edit('kind = "edges"\nradius = 1.0\ndistance = "arc"', "tau = 0.5",
             edit("speed = [0.3, 2.0]", "lag = [0.0]"))).to_toml().split(
        "[model.delays]")[1].split("[")[0]


@pytest.mark.parametrize(
    "old, new, match",
    [
        ('kind = "edges"', 'kind = "edge"', r'model.delays.kind = "edge": expected one of'),
        ('distance = "arc"', 'distance = "arc"\ntau = 0.5', r"model.delays.tau"),
        ('distance = "arc"', 'distance = "euclid"', r'model.delays.distance = "euclid"'),
        ("radius = 1.0", "radius = -1.0", r"model.delays.radius = -1.0: expected a finite"),
        ("speed = [0.3, 2.0]", "speed = [0.3, 0.0]",
         r"sweep.speed = \[0.3, 0.0\]: expected numbers > 0"),
        ("speed = [0.3, 2.0]", "lag = [0.0]", r"model.delays.speed: missing"),
        ("dt = 0.1", "dt = 0.2", r"solve.dt = 0.2: expected a step <= the shortest edge "
         r"delay 0.19635"),
        ('kind = "sparse"\ngraph = "ring"\nk = 2\n', 'kind = "lattice"\nkernel = [1, 0, 1]\n'
         'shape = [16]\n', r'model.delays.kind = "edges": expected a coupling with edges'),
    ],
)
def test_edge_delay_spec_errors(old, new, match):
    with pytest.raises(SpecError, match=match) as e:
        parse_spec(edit(old, new))
    assert "\n" not in str(e.value)


def test_sweeping_speed_needs_edge_delays():
    text = edit('kind = "edges"\nradius = 1.0\ndistance = "arc"', "tau = 0.5")
    with pytest.raises(SpecError, match=r'sweep.speed = \[0.3, 2.0\]: expected a parameter '
                       r'of \[model.delays\] kind = "uniform" \(tau\)'):
        parse_spec(text)


@pytest.mark.slow
def test_edge_delay_study_matches_ring_theory(tmp_path):
    path = tmp_path / "edges.nc"
    run_study(parse_spec(RING), path, spec_text=RING, progress=False, compile_cache=False)
    ds = kl.io.load(path)
    assert ds["Omega"].dims == ("speed", "seed")
    assert ds.attrs["delays"] == "edges" and "tau" not in ds.attrs
    for v in ds["speed"].values:
        # ring k = 2 of 16 on the unit circle: each receiver sees arcs 2 pi m / 16, m = 1, 2
        taus = 2 * np.pi * np.array([1, 2]) / 16 / v
        roots, stable = kl.theory.delayed_sync_frequencies(1.0, 1.0, taus)
        Omega = float(ds["Omega"].sel(speed=v).max())
        # RK4 at dt = 0.1 (error ~1e-6) and a 20-unit window of exact winding numbers
        assert np.min(np.abs(roots[stable] - Omega)) < 1e-4, (v, Omega, roots)
    assert ds["Omega"].sel(speed=0.3).item() < 0.7  # slow conduction lowers Omega


def test_edge_delay_study_is_the_documented_experiment():
    spec = load_spec(pathlib.Path(__file__).parents[1] / "studies" / "edge_delay_speed.toml")
    m = spec.model
    assert m.edge_delayed and m.frequencies.identical and spec.sweep.names == ("speed",)
    v = spec.sweep.values("speed")
    assert max(v) / min(v) >= 20 and spec.solve.solver == "rk4"
    assert spec.solve.dt <= m.delays.distance_bounds(m.n)[0] / max(v)
