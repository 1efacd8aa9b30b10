"""Study specs with [[events]]: parsing, the canonical round trip, one-line errors,
and a run whose event times match the two-oscillator closed form."""

import numpy as np
import pytest

import kuralab as kl
from kuralab.study import SpecError, parse_spec, run_study

BASE = """
[study]
name = "tiny_events"

[model]
kind = "kuramoto"
n = 2

[model.frequencies]
distribution = "identical"
loc = 1.0

[model.coupling]
kind = "mean_field"
K = 1.0

[sweep]
seeds = 2

[solve]
t1 = 20.0
dt = 0.01
save_every = 10

[observe]
trajectories = true
"""

EVENTS = """
[[events]]
name = "off"
at = 1.0
action = "coupling"
scale = 0.0

[[events]]
name = "on"
at = 2.0
action = "coupling"
scale = 1.0

[[events]]
name = "sync"
when = "R > 0.999"
after = 2.0
action = "stop"
"""


def test_events_parse_and_round_trip():
    spec = parse_spec(BASE + EVENTS)
    assert [e.name for e in spec.events] == ["off", "on", "sync"]
    assert spec.events[0].at == 1.0 and spec.events[0].scale == 0.0
    assert spec.events[2].threshold() == (">", 0.999) and spec.events[2].after == 2.0
    assert parse_spec(spec.to_toml()) == spec
    assert parse_spec(BASE).events == ()
    rec = parse_spec(BASE + '\n[[events]]\nwhen = "R < 0.5"\naction = "record"\n')
    assert rec.events[0].action == "record" and rec.events[0].threshold() == ("<", 0.5)
    assert rec.events[0].name == "event0"


@pytest.mark.parametrize(
    "table, key, hint",
    [
        ('at = 30.0\naction = "stop"', "events[0].at", "[solve.t0, solve.t1] = [0, 20]"),
        ('at = 1.0\naction = "halt"', "events[0].action", "one of"),
        ('action = "stop"', "events[0]", "exactly one of `at`"),
        ('at = 1.0\nwhen = "R > 0.5"\naction = "stop"', "events[0]", "got both"),
        ('when = "R >> 0.5"\naction = "stop"', "events[0].when", '"R > r" or "R < r"'),
        ('when = "R > 1.5"\naction = "stop"', "events[0].when", "r in [0, 1]"),
        ('at = 1.0\naction = "coupling"', "events[0].scale", "missing"),
        ('at = 1.0\naction = "stop"\nscale = 0.0', "events[0].scale", "unexpected"),
        ('at = 1.0\naction = "kick"\nscale = 0.0', "events[0].scale", "takes `delta`"),
        ('at = 1.0\naction = "stop"\nafter = 0.5', "events[0].after", "only with `when`"),
        ('at = 1.0\naction = "stop"\ntime = 0.5', "events[0].time", "unknown key"),
    ],
)
def test_bad_event_tables_one_line_errors(table, key, hint):
    with pytest.raises(SpecError) as info:
        parse_spec(BASE + "\n[[events]]\n" + table + "\n")
    message = str(info.value)
    assert "\n" not in message and key in message and hint in message, message


def test_events_refused_where_they_cannot_run():
    delayed = BASE.replace("[sweep]", "[model.delays]\ntau = 0.5\n\n[sweep]")
    with pytest.raises(SpecError, match="delays"):
        parse_spec(delayed + EVENTS)
    with pytest.raises(SpecError, match=r"\[\[events\]\], double brackets"):
        parse_spec(BASE + '\n[events]\nat = 1.0\naction = "stop"\n')


@pytest.mark.slow
def test_event_study_matches_the_two_oscillator_closed_form(tmp_path):
    # Two identical oscillators (omega = 1): the phase difference phi obeys
    # d phi/dt = -K sin(phi) while coupled and stays put while the coupling is off on
    # [1, 2], so R = |cos(phi/2)| reaches r = 0.999 at t* + 1 with
    # t* = ln(tan(phi0/2) / tan(arccos r)) / K (phi0 from the saved initial phases).
    # float32, dt = 0.01: RK4 + Hermite interpolation error << the 1e-4 tolerance,
    # which is set by float32 rounding of R near 1 (dR/dt ~ 1e-3 there).
    text = BASE + EVENTS
    path = run_study(parse_spec(text), tmp_path / "ev.nc", spec_text=text,
                     progress=False, compile_cache=False)
    ds = kl.io.load(path)
    assert list(ds["event"].values) == ["off", "on", "sync"]
    theta0 = ds["theta"].isel(time=0).values  # (seed, osc)
    phi0 = np.abs(np.angle(np.exp(1j * (theta0[:, 0] - theta0[:, 1]))))
    t_star = np.log(np.tan(phi0 / 2) / np.tan(np.arccos(0.999)))
    times = ds["event_time"].values
    np.testing.assert_allclose(times[:, :2], [[1.0, 2.0]] * 2, atol=1e-6)
    # a seed that starts below r crosses once, after the gap; one that starts above r
    # (t* < 0) never crosses upwards (R of two identical oscillators never falls)
    below = t_star > 1.0
    assert below.any() and np.all(np.isnan(times[~below, 2]))
    np.testing.assert_allclose(times[below, 2], t_star[below] + 1.0, rtol=0, atol=1e-3)
