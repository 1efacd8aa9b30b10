"""Study specs: every shipped spec validates, bad specs fail with one-line messages
naming the key, and a tiny study runs, is deterministic and does not depend on
chunking."""

import pathlib

import jax
import numpy as np
import pytest
import xarray as xr

import kuralab as kl
from kuralab.study import SpecError, StudySpec, load_spec, parse_spec, run_study

STUDIES = sorted((pathlib.Path(__file__).parents[1] / "studies").glob("*.toml"))

TINY = """
[study]
name = "tiny"
description = "a tiny study for tests"

[model]
kind = "kuramoto"
n = 64

[model.frequencies]
distribution = "lorentzian"
scale = 0.5
sampling = "random"

[model.coupling]
kind = "mean_field"
lag = 0.0

[sweep]
K = [0.5, 3.0]
seeds = 2

[solve]
t1 = 2.0
dt = 0.1
solver = "rk4"
save_every = 2

[observe]
window = 1.0

[output]
chunk_size = 3
"""

#: Identical oscillators (omega = 0), K = 1.5, with noise D swept: K_c = 2D = 0.5 (so
#: synchronised, R = 0.902) and 3 (incoherent).
TINY_NOISY = """
[study]
name = "tiny_noisy"

[model]
kind = "kuramoto"
n = 256

[model.frequencies]
distribution = "identical"
loc = 0.0

[model.coupling]
kind = "mean_field"
K = 1.5

[model.noise]

[sweep]
D = [0.25, 1.5]
seeds = 2

[solve]
t1 = 30.0
dt = 0.1
solver = "heun"
save_every = 5

[observe]
window = 15.0

[output]
chunk_size = 3
"""

#: Identical oscillators (omega = 1, K = 1) with a swept delay tau.
TINY_DELAYED = """
[study]
name = "tiny_delayed"

[model]
kind = "kuramoto"
n = 8

[model.frequencies]
distribution = "identical"
loc = 1.0

[model.coupling]
kind = "mean_field"
K = 1.0

[model.delays]

[model.initial_phases]
spread = 0.5

[sweep]
tau = [0.0, 0.5, 1.37]
seeds = 2

[solve]
t1 = 40.0
dt = 0.05
solver = "rk4"
save_every = 10

[observe]
window = 10.0
frequency = true
"""


def edit(old: str, new: str, text: str = TINY) -> str:
    """`text` with `old` replaced by `new` (which must occur exactly once)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


#: TINY_NOISY with a fixed D = 0.25 instead of the D sweep.
NOISY_FIXED = edit(
    "D = [0.25, 1.5]\n",
    "",
    edit("[model.noise]\n", "[model.noise]\nD = 0.25\n", TINY_NOISY),
)


def without_section(name: str, text: str = TINY) -> str:
    """`text` without the table `[name]` and its sub-tables `[name.*]`."""
    start = text.index(f"[{name}]")
    end = start
    while True:
        end = text.find("\n[", end + 1)
        if end < 0 or not text.startswith(f"\n[{name}.", end):
            break
    return text[:start] + (text[end:] if end >= 0 else "")


# ---------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------


def test_studies_exist():
    assert any(p.name == "quickstart.toml" for p in STUDIES)


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_every_study_validates(path):
    spec = load_spec(path)
    assert isinstance(spec, StudySpec)
    assert spec.study.name == path.stem
    assert spec.num_points >= 1


def test_quickstart_is_the_documented_experiment():
    spec = load_spec(pathlib.Path(__file__).parents[1] / "studies" / "quickstart.toml")
    f = spec.model.frequencies
    assert (f.distribution, f.scale, f.sampling) == ("lorentzian", 0.5, "random")
    assert spec.model.n >= 2000
    assert len(spec.sweep.seeds) >= 3
    K = spec.sweep.values("K")
    assert 12 <= len(K) <= 16 and min(K) <= 0.25 and max(K) >= 4.0
    assert sum(0.75 <= k <= 1.5 for k in K) >= 5  # dense near K_c = 2 gamma = 1
    assert spec.observe.window == pytest.approx((spec.solve.t1 - spec.solve.t0) / 2)
    assert spec.output.path == "data/runs/quickstart.nc"


@pytest.mark.parametrize(
    "text", [TINY, TINY_NOISY, TINY_DELAYED, *[p.read_text() for p in STUDIES]]
)
def test_round_trip(text):
    spec = parse_spec(text)
    again = parse_spec(spec.to_toml())
    assert again == spec
    assert again.to_toml() == spec.to_toml()
    assert hash(again) == hash(spec)  # frozen all the way down


def test_parsed_values():
    spec = parse_spec(TINY)
    assert spec.model.n == 64
    assert spec.model.frequencies.scale == 0.5
    assert spec.model.coupling.K is None  # swept
    assert spec.sweep.axes == (("K", (0.5, 3.0)),)
    assert spec.sweep.seeds == (0, 1)
    assert spec.sweep.shape == (2, 2)
    assert spec.num_points == 4
    assert spec.observe.trajectories is False
    assert spec.output.path == "data/runs/tiny.nc"
    np.testing.assert_allclose(spec.solve.save_times(), np.arange(0, 2.01, 0.2))


def test_defaults_and_ranges():
    text = edit(
        "K = [0.5, 3.0]", "K = { start = 1, stop = 2, num = 5 }\nlag = [0, 0.5]"
    )
    text = edit("lag = 0.0\n", "", text)
    text = edit("\n[observe]\nwindow = 1.0\n", "", text)
    spec = parse_spec(text)
    assert spec.sweep.values("K") == (1.0, 1.25, 1.5, 1.75, 2.0)
    assert spec.sweep.names == ("K", "lag")
    assert spec.sweep.shape == (5, 2, 2)
    assert spec.observe.window == 1.0  # default: half the run
    assert spec.model.coupling.lag is None
    seeds = parse_spec(edit("seeds = 2", "seeds = [7, 3]")).sweep.seeds
    assert seeds == (7, 3)


BAD_SPECS = {
    "unknown key": (edit("dt = 0.1", "dtt = 0.1"), "solve.dtt", "did you mean 'dt'"),
    "unknown key, case": (edit("K = [0.5", "k = [0.5"), "sweep.k", "did you mean 'K'"),
    "unknown section": (edit("[observe]", "[observer]"), "observer", "'observe'"),
    "wrong type": (edit("dt = 0.1", 'dt = "0.1"'), "solve.dt", "number"),
    "bool for number": (
        edit("scale = 0.5", "scale = true"),
        "model.frequencies.scale",
        "number",
    ),
    "bool for int": (edit("n = 64", "n = true"), "model.n", "integer"),
    "float for int": (edit("n = 64", "n = 64.0"), "model.n", "integer"),
    "negative dt": (edit("dt = 0.1", "dt = -0.1"), "solve.dt = -0.1", "> 0"),
    "dt longer than run": (edit("dt = 0.1", "dt = 5.0"), "solve.dt", "t1 - t0"),
    "t1 before t0": (edit("t1 = 2.0", "t1 = 2.0\nt0 = 3.0"), "solve.t1", "t0"),
    "non-finite": (edit("t1 = 2.0", "t1 = inf"), "solve.t1 = inf", "finite"),
    "missing section": (without_section("solve"), "solve: missing section", "t1"),
    "missing model": (without_section("model"), "model: missing section", "kind"),
    "missing key": (edit("t1 = 2.0\n", ""), "solve.t1: missing", "number"),
    "empty sweep": (edit("K = [0.5, 3.0]", "K = []"), "sweep.K = []", "non-empty"),
    "empty range": (
        edit("K = [0.5, 3.0]", "K = { start = 1, stop = 2, num = 0 }"),
        "sweep.K.num = 0",
        ">= 1",
    ),
    "duplicate sweep values": (
        edit("K = [0.5, 3.0]", "K = [1, 1.0]"),
        "sweep.K",
        "distinct",
    ),
    "zero seeds": (edit("seeds = 2", "seeds = 0"), "sweep.seeds = 0", ">= 1"),
    "window too long": (
        edit("window = 1.0", "window = 3.0"),
        "observe.window = 3.0",
        "<=",
    ),
    "window too short": (
        edit("window = 1.0", "window = 0.1"),
        "observe.window",
        "2 saved",
    ),
    "unknown solver": (
        edit('solver = "rk4"', 'solver = "rk5"'),
        "solve.solver",
        "'rk4'",
    ),
    "unknown distribution": (
        edit('"lorentzian"', '"lorentz"'),
        "model.frequencies.distribution",
        "'lorentzian'",
    ),
    "unknown model kind": (
        edit('kind = "kuramoto"', 'kind = "lattice"'),
        "model.kind",
        '"kuramoto", "sphere"',
    ),
    "zero scale": (
        edit("scale = 0.5", "scale = 0"),
        "model.frequencies.scale = 0",
        "> 0",
    ),
    "zero oscillators": (edit("n = 64", "n = 0"), "model.n = 0", ">= 1"),
    "swept and fixed": (
        edit("lag = 0.0", "K = 1.0\nlag = 0.0"),
        "model.coupling.K",
        "sweep.K",
    ),
    "coupling unset": (
        edit("K = [0.5, 3.0]\n", ""),
        "model.coupling.K: missing",
        "sweep",
    ),
    "nothing observed": (
        edit("window = 1.0", "window = 1.0\norder_parameter = false"),
        "observe.order_parameter",
        "nothing",
    ),
    "bad output path": (
        edit("chunk_size = 3", 'path = "out.txt"'),
        "output.path",
        ".nc",
    ),
    "unknown top-level key": (
        "sweeps = 3\n" + TINY,
        "sweeps = 3",
        "did you mean 'sweep'",
    ),
    "section not a table": (
        "solve = 3\n" + without_section("solve"),
        "solve = 3",
        "table",
    ),
    "invalid toml": (edit("dt = 0.1", "dt = "), "invalid TOML", "line"),
    # noise
    "negative D": (
        edit("D = 0.25", "D = -0.1", NOISY_FIXED),
        "model.noise.D = -0.1",
        ">= 0",
    ),
    "negative swept D": (
        edit("D = [0.25, 1.5]", "D = [0.1, -0.2]", TINY_NOISY),
        "sweep.D = [0.1, -0.2]",
        ">= 0",
    ),
    "D missing": (
        edit("D = 0.25\n", "", NOISY_FIXED),
        "model.noise.D: missing",
        "sweep.D",
    ),
    "D swept and fixed": (
        edit("[model.noise]\n", "[model.noise]\nD = 0.25\n", TINY_NOISY),
        "model.noise.D = 0.25",
        "sweep.D",
    ),
    "D swept without noise": (
        edit("seeds = 2", "D = [0.1, 0.2]\nseeds = 2"),
        "sweep.D",
        "[model.noise]",
    ),
    "unknown brownian": (
        edit("D = 0.25", 'D = 0.25\nbrownian = "trees"', NOISY_FIXED),
        "model.noise.brownian",
        "'tree'",
    ),
    "ODE solver with noise": (
        edit('solver = "heun"', 'solver = "rk4"', TINY_NOISY),
        'solve.solver = "rk4"',
        '"euler", "euler_heun", "heun", "shark", "sra1" (the model has noise',
    ),
    "noise key typo": (
        edit("D = 0.25", "d = 0.25", NOISY_FIXED),
        "model.noise.d",
        "did you mean 'D'",
    ),
    # identical frequencies
    "scale with identical": (
        edit("loc = 0.0", "loc = 0.0\nscale = 0.5", TINY_NOISY),
        "model.frequencies.scale = 0.5",
        "identical",
    ),
    "identical misspelt": (
        edit('"identical"', '"identicle"', TINY_NOISY),
        "model.frequencies.distribution",
        "did you mean 'identical'",
    ),
    # delays
    "negative tau": (
        edit(
            "[model.delays]\n",
            "[model.delays]\ntau = -1.0\n",
            edit("tau = [0.0, 0.5, 1.37]\n", "", TINY_DELAYED),
        ),
        "model.delays.tau = -1.0",
        ">= 0",
    ),
    "negative swept tau": (
        edit("tau = [0.0, 0.5, 1.37]", "tau = [-0.5, 0.5]", TINY_DELAYED),
        "sweep.tau",
        ">= 0",
    ),
    "tau shorter than dt": (
        edit("tau = [0.0, 0.5, 1.37]", "tau = [0.0, 0.02, 1.37]", TINY_DELAYED),
        "solve.dt = 0.05",
        "smallest positive delay 0.02 (sweep.tau)",
    ),
    "fixed tau shorter than dt": (
        edit(
            "[model.delays]\n",
            "[model.delays]\ntau = 0.01\n",
            edit("tau = [0.0, 0.5, 1.37]\n", "", TINY_DELAYED),
        ),
        "solve.dt",
        "model.delays.tau",
    ),
    "tau missing": (
        edit("tau = [0.0, 0.5, 1.37]\n", "", TINY_DELAYED),
        "model.delays.tau: missing",
        "sweep.tau",
    ),
    "tau swept without delays": (
        edit("seeds = 2", "tau = [0.5]\nseeds = 2"),
        "sweep.tau",
        "[model.delays]",
    ),
    "adaptive solver with delays": (
        edit('solver = "rk4"', 'solver = "dopri5"', TINY_DELAYED),
        'solve.solver = "dopri5"',
        '"euler", "heun", "rk4" (the model has delays',
    ),
    "rk4 with noise and delays": (
        edit(
            "[model.delays]", "[model.noise]\nD = 0.1\n\n[model.delays]", TINY_DELAYED
        ),
        'solve.solver = "rk4"',
        '"euler", "heun" (the model has noise and delays',
    ),
    "spread too wide": (
        edit("spread = 0.5", "spread = 7.0", TINY_DELAYED),
        "model.initial_phases.spread = 7.0",
        "2 pi",
    ),
    "frequency not a bool": (
        edit("frequency = true", "frequency = 1", TINY_DELAYED),
        "observe.frequency = 1",
        "true or false",
    ),
}


def _assert_one_line_spec_error(text, key, hint):
    """`parse_spec(text)` raises a one-line SpecError (a ValueError) naming `key`
    and containing `hint`."""
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    assert key in message, message
    assert hint in message, message


@pytest.mark.parametrize("case", BAD_SPECS, ids=str)
def test_bad_spec_message(case):
    _assert_one_line_spec_error(*BAD_SPECS[case])


def test_load_spec_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(edit("dt = 0.1", "dt = -0.1"))
    with pytest.raises(SpecError, match=r"bad\.toml: solve\.dt = -0\.1: expected"):
        load_spec(path)
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "missing.toml")


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    from kuralab.study import compile_cache_dir

    monkeypatch.setenv("KURALAB_CACHE_DIR", str(tmp_path / "c"))
    assert compile_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("KURALAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache_dir() == tmp_path / "kuralab" / "jax"


# ---------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------


def _run(text: str, path: pathlib.Path) -> xr.Dataset:
    out = run_study(
        parse_spec(text), path, spec_text=text, progress=False, compile_cache=False
    )
    assert out == path and path.exists()
    return kl.io.load(path)


def _data(ds: xr.Dataset) -> xr.Dataset:
    """The Dataset without its global attributes (which hold the creation time)."""
    out = ds.copy()
    out.attrs = {}
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _run(TINY, tmp_path_factory.mktemp("study") / "tiny.nc")


def test_tiny_study_layout(tiny):
    ds = tiny
    assert ds["R"].dims == ("K", "seed")
    assert ds["R_std"].dims == ("K", "seed")
    assert ds["R_t"].dims == ("K", "seed", "time")
    assert set(ds.data_vars) == {"R", "R_std", "R_t", "psi_t"}
    np.testing.assert_array_equal(ds["K"], [0.5, 3.0])
    np.testing.assert_array_equal(ds["seed"], [0, 1])
    np.testing.assert_allclose(ds["time"], np.arange(0, 2.01, 0.2))
    for name in ("R", "R_std", "R_t", "K", "seed", "time"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"], name
    for name in ("R", "R_t"):
        values = ds[name].values
        assert np.all(np.isfinite(values))
        assert np.all((values >= 0) & (values <= 1)), name
    assert np.all(ds["R_std"].values >= 0)
    # R is the mean of R_t over the final window (t >= 1).
    window = ds["R_t"].sel(time=slice(1.0, None))
    np.testing.assert_allclose(ds["R"], window.mean("time"), rtol=1e-5)
    np.testing.assert_allclose(ds["R_std"], window.std("time"), rtol=1e-4, atol=1e-6)
    # Seeds draw different frequencies.
    assert not np.array_equal(ds["R_t"].isel(seed=0), ds["R_t"].isel(seed=1))
    assert ds.attrs["n"] == 64
    assert ds.attrs["distribution"] == "lorentzian"
    assert ds.attrs["scale"] == 0.5
    assert ds.attrs["sampling"] == "random"
    assert ds.attrs["spec"] == TINY
    assert list(np.atleast_1d(ds.attrs["seeds"])) == [0, 1]


def test_same_spec_same_data(tiny, tmp_path):
    again = _run(TINY, tmp_path / "again.nc")
    xr.testing.assert_identical(_data(again), _data(tiny))


def test_chunking_does_not_change_data(tiny, tmp_path):
    # `tiny` ran 4 points as chunks of 3 + 1 (padded); here one chunk of 4.
    whole = _run(edit("chunk_size = 3", "chunk_size = 64"), tmp_path / "whole.nc")
    xr.testing.assert_identical(_data(whole), _data(tiny))


def test_unrepresentable_value_fails_before_running(tmp_path):
    text = edit("K = [0.5, 3.0]", "K = [0.5, 1e39]")  # finite, but not in float32
    with pytest.raises(SpecError, match=r"sweep\.K = 1e\+39: expected a number within"):
        run_study(
            parse_spec(text), tmp_path / "x.nc", progress=False, compile_cache=False
        )
    assert list(tmp_path.iterdir()) == []


def test_failed_simulation_writes_nothing(tmp_path, monkeypatch):
    from kuralab._study import plan

    real = plan.run_chunk

    def failing(spec, grid, where):
        out = real(spec, grid, where)
        out["result"] = out["result"].copy()
        out["result"][-1] = kl.RESULTS.nonfinite_state._value
        return out

    monkeypatch.setattr(plan, "run_chunk", failing)
    path = tmp_path / "fail.nc"
    with pytest.raises(
        kl.SimulationError, match=r"2 of 4 simulations failed.*seed = 0.*non-finite"
    ):
        run_study(parse_spec(TINY), path, progress=False, compile_cache=False)
    assert list(tmp_path.iterdir()) == []


def test_trajectories_on_request(tmp_path):
    text = edit("n = 64", "n = 8")
    text = edit(
        "window = 1.0", "window = 1.0\ntrajectories = true\nfrequency = true", text
    )
    ds = _run(text, tmp_path / "traj.nc")
    assert ds["theta"].dims == ("K", "seed", "time", "osc")
    assert ds["theta"].shape == (2, 2, 11, 8)
    assert ds["omega"].dims == ("seed", "osc")
    # The stored R(t) is |mean exp(i theta)| of the stored phases.
    z = np.abs(np.exp(1j * ds["theta"].values.astype(np.float64)).mean(-1))
    np.testing.assert_allclose(ds["R_t"].values, z, atol=1e-5)
    # Each seed draws its own frequencies.
    assert not np.array_equal(ds["omega"][0], ds["omega"][1])
    # Omega (from exact winding numbers) agrees with the stored phases, unwrapped.
    Omega = kl.effective_frequencies(ds["theta"].values, ds["time"].values, window=1.0)
    np.testing.assert_allclose(ds["Omega"], Omega.mean(-1), atol=1e-4)
    np.testing.assert_allclose(ds["Omega_std"], Omega.std(-1), atol=1e-4)
    # Lorentzian frequencies below K_c = 1 (K = 0.5): no common rhythm.
    assert np.all(ds["Omega_std"].values[0] > 0.05)


# ---------------------------------------------------------------------------------
# Noise, delays, identical oscillators, effective frequencies
# ---------------------------------------------------------------------------------


def _noisy_R(K: float, D: float) -> float:
    """N -> infinity stationary R of identical noisy oscillators (SCIENCE.md 1)."""
    from scipy.optimize import brentq
    from scipy.special import i0e, i1e

    if K <= 2 * D:
        return 0.0
    return brentq(lambda r: i1e(K * r / D) / i0e(K * r / D) - r, 1e-12, 1.0)


def _delayed_Omega(tau: float, omega: float = 1.0, K: float = 1.0) -> float:
    """The unique root of Omega = omega - K sin(Omega tau) for K tau < 1 (the lowest
    one otherwise: the branch reached from a constant, nearly in-phase history)."""
    from scipy.optimize import brentq

    return brentq(lambda w: w - omega + K * np.sin(w * tau), omega - K, omega)


def test_noise_and_delay_specs_parse():
    noisy = parse_spec(NOISY_FIXED)
    assert noisy.model.noisy and not noisy.model.delayed
    assert noisy.model.noise.D == 0.25
    assert noisy.model.noise.brownian == "increments"  # the sweep default
    f = noisy.model.frequencies
    assert (f.distribution, f.loc, f.scale, f.identical) == (
        "identical",
        0.0,
        None,
        True,
    )
    # A noisy model's default solver is Euler--Maruyama, as in kl.simulate.
    assert (
        parse_spec(edit('solver = "heun"\n', "", NOISY_FIXED)).solve.solver == "euler"
    )
    # Sweeping D: the noise table stays, without D.
    swept = parse_spec(TINY_NOISY)
    assert swept.model.noise.D is None and swept.sweep.names == ("D",)
    assert swept.axis_values("D") == (0.25, 1.5) and swept.axis_values("K") == (1.5,)
    delayed = parse_spec(TINY_DELAYED)
    assert delayed.model.delayed and not delayed.model.noisy
    assert delayed.model.delays.tau is None  # swept
    assert delayed.sweep.values("tau") == (0.0, 0.5, 1.37)
    assert delayed.model.initial_phases.spread == 0.5
    assert delayed.observe.frequency is True
    # Frequencies alone are a valid observation.
    only = parse_spec(
        edit(
            "frequency = true",
            "frequency = true\norder_parameter = false",
            TINY_DELAYED,
        )
    )
    assert only.observe.frequency and not only.observe.order_parameter


def test_noise_key_is_separate_from_the_phase_key():
    """A seed's Brownian key is neither its frequency key nor its phase key, and adding
    noise leaves the frequencies and initial phases of a seed unchanged."""

    from kuralab._study.plan import NOISE_KEY, point_model
    from kuralab._sweep_kernel import point_key, segment_key

    noisy = point_model(parse_spec(NOISY_FIXED))
    plain = point_model(
        parse_spec(edit("[model.noise]\nD = 0.25\n\n", "", NOISY_FIXED))
    )
    assert noisy.noisy and not plain.noisy
    for seed in (0, 1, 7):
        split = jax.random.split(jax.random.key(seed))
        # The Brownian keys of the point's transient and window (kl.sweep's kernel).
        point = point_key(jax.random.key(NOISE_KEY), seed)
        noise = [segment_key(point, s) for s in (0, 1)]
        keys = [jax.random.key_data(k).tolist() for k in (*split, *noise)]
        assert keys[2] not in keys[:2] and keys[3] not in keys[:2]
        for a, b in zip(noisy.draw(seed), plain.draw(seed), strict=True):
            np.testing.assert_array_equal(a, b)


def test_noisy_study_near_theory_and_deterministic(tmp_path):
    # One test (not a fixture shared by several): under xdist every worker would
    # compile the study again.
    ds = _run(TINY_NOISY, tmp_path / "noisy.nc")
    assert ds["R"].dims == ("D", "seed")
    assert ds["D"].attrs["units"] and ds["D"].attrs["long_name"]
    assert ds.attrs["noise"] == "additive" and ds.attrs["K"] == 1.5
    assert ds.attrs["brownian"] == "increments" and "D" not in ds.attrs  # swept
    assert ds.attrs["distribution"] == "identical" and "scale" not in ds.attrs
    R = ds["R"].values
    # D = 0.25, K_c = 2D = 0.5 < K: the self-consistent R = I1(KR/D)/I0(KR/D) = 0.902.
    # Budget per seed: R fluctuates with variance Var(cos phi)/N under the von Mises
    # density (kappa = KR/D = 5.4): sd 0.009 per save; the 15-unit window holds ~10
    # correlation times 1/(KR): 4 standard errors (0.011), plus the O(1/N) finite-size
    # bias and a first-order step bias R D dt / 4: 0.021 in all (was 0.03).
    import scipy.special

    n, K, D, dt = 256, 1.5, 0.25, 0.1
    R_inf = _noisy_R(K, D)
    kappa = K * R_inf / D
    var_cos = 0.5 * (1 + scipy.special.iv(2, kappa) / scipy.special.iv(0, kappa)) - R_inf**2
    tol = 4 * np.sqrt(var_cos / n / 10) + 1 / n + R_inf * D * dt / 4
    np.testing.assert_allclose(R[0], R_inf, atol=tol)
    # D = 1.5, K_c = 3 > K: incoherent up to finite-size fluctuations,
    # sqrt(pi / (4 N (1 - K/K_c))) = 0.078 for N = 256; Rayleigh spread 0.52 of it per
    # save, ~5 correlation times 1/(D - K/2) in the window: the floor + 4 standard
    # errors, 0.15 (was 0.2).
    floor = np.sqrt(np.pi / (4 * n * (1 - K / (2 * 1.5))))
    assert np.all(R[1] < floor * (1 + 4 * 0.52 / np.sqrt(5))), (R, floor)
    # Noise is there: R(t) fluctuates in the synchronised state, and seeds differ.
    assert np.all(ds["R_std"].values[0] > 1e-4)
    assert not np.array_equal(ds["R_t"].isel(seed=0), ds["R_t"].isel(seed=1))

    # Same spec, same data (the Brownian paths come from the seeds).
    again = _run(TINY_NOISY, tmp_path / "again.nc")
    xr.testing.assert_identical(_data(again), _data(ds))
    # 4 points ran as chunks of 3 + 1 (padded); as one chunk of 4 nothing changes.
    whole = _run(
        edit("chunk_size = 3", "chunk_size = 4", TINY_NOISY), tmp_path / "w.nc"
    )
    xr.testing.assert_identical(_data(whole), _data(ds))


def test_delayed_study_frequency_matches_theory_and_is_deterministic(tmp_path):
    ds = _run(TINY_DELAYED, tmp_path / "delayed.nc")
    assert ds["Omega"].dims == ("tau", "seed")
    assert ds["Omega_std"].dims == ("tau", "seed")
    for name in ("Omega", "Omega_std", "tau"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"], name
    assert ds.attrs["delays"] == "uniform" and ds.attrs["K"] == 1.0
    for tau in ds["tau"].values:
        Omega = ds["Omega"].sel(tau=tau).values
        # In-phase synchrony at the root of Omega = omega - K sin(Omega tau).
        np.testing.assert_allclose(Omega, _delayed_Omega(float(tau)), atol=1e-3)
        assert np.all(ds["Omega_std"].sel(tau=tau).values < 1e-4)
    # The delay matters: without it Omega = omega = 1, with tau = 1.37 it is 0.437.
    assert ds["Omega"].sel(tau=1.37).values.max() < 0.5
    assert np.all(ds["R"].values > 0.999)

    again = _run(TINY_DELAYED, tmp_path / "again.nc")
    xr.testing.assert_identical(_data(again), _data(ds))


def test_noisy_study_is_the_documented_experiment():
    spec = load_spec(
        pathlib.Path(__file__).parents[1] / "studies" / "noisy_critical_coupling.toml"
    )
    m = spec.model
    assert m.frequencies.identical and m.frequencies.loc == 0.0
    assert m.noise.D == 0.25 and m.n >= 2000 and not m.delayed
    K = spec.sweep.values("K")
    assert min(K) <= 0.1 and max(K) >= 1.5
    assert sum(0.45 <= k <= 0.6 for k in K) >= 6  # dense near K_c = 2D = 0.5
    assert len(spec.sweep.seeds) >= 3


def test_delayed_study_is_the_documented_experiment():
    spec = load_spec(
        pathlib.Path(__file__).parents[1] / "studies" / "delayed_frequency.toml"
    )
    m = spec.model
    assert m.frequencies.identical and m.frequencies.loc == 1.0
    assert m.coupling.K == 1.0 and m.delayed and not m.noisy
    assert m.initial_phases.spread < 1.0
    tau = spec.sweep.values("tau")
    assert min(tau) == 0.0 and max(tau) >= 3.0
    dt = spec.solve.dt
    assert dt <= min(t for t in tau if t > 0)
    assert any(abs(t / dt - round(t / dt)) > 1e-6 for t in tau)  # off the step grid
    assert spec.solve.solver == "rk4" and spec.observe.frequency
    assert len(spec.sweep.seeds) >= 2


# ---------------------------------------------------------------------------------
# Network-size axes and adiabatic ramps
# ---------------------------------------------------------------------------------

#: Uniform quantile frequencies: deterministic, so ramps can be replayed exactly.
TINY_RAMP = """
[study]
name = "tiny_ramp"

[model]
kind = "kuramoto"
n = 8

[model.frequencies]
distribution = "uniform"
scale = 0.5
sampling = "quantile"

[model.coupling]
kind = "mean_field"
lag = 0.3

[sweep]
K = [1.5, 0.2]
seeds = 1
mode = "adiabatic"

[solve]
t1 = 6.0
dt = 0.1
save_every = 3

[observe]
window = 3.0
frequency = true
locked = true
"""


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("n = 8\n", "", r"model\.n: missing; expected an integer >= 1 \(or sweep it"),
        ("seeds = 1", "seeds = 1\nn = [4]", r"model\.n = 8: expected no value here"),
        ("n = 8\n", "", r"sweep\.n = \[4, 4\]: expected a non-empty list of distinct"),
        ('mode = "adiabatic"', 'mode = "adiabatc"', "did you mean 'adiabatic'"),
        ('mode = "adiabatic"', 'mode = "adiabatic"\nalong = "D"', r"sweep\.along"),
        ('mode = "adiabatic"', 'along = "K"', r'sweep\.along = "K": expected no value'),
        ("locked = true", "locked = true\ntrajectories = true", "trajectories"),
    ],
)
def test_size_and_ramp_spec_errors(old, new, message):
    text = TINY_RAMP.replace(old, new)
    if message.startswith(r"sweep\.n = "):
        text = text.replace("seeds = 1", "seeds = 1\nn = [4, 4]")
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_size_and_ramp_spec_round_trip():
    spec = parse_spec(
        TINY_RAMP.replace("n = 8\n", "").replace("seeds = 1", "n = [4, 8]")
    )
    assert spec.sweep.sizes == (4, 8) and spec.sweep.along == "K"
    assert spec.num_points == 2 * 2 * 2  # sizes x K values x (up, down)
    assert parse_spec(spec.to_toml()) == spec


def test_adiabatic_study_replays_as_a_chain_of_simulations(tmp_path):
    """Each ramp value starts from the previous value's final phases: up the listed
    values, then back down. Replayed here with kl.simulate directly."""
    ds = _run(TINY_RAMP, tmp_path / "ramp.nc")
    assert ds["R"].dims == ("direction", "K", "seed")
    assert list(ds["direction"].values) == ["up", "down"]
    assert ds.attrs["mode"] == "adiabatic" and ds.attrs["along"] == "K"
    from kuralab._study.plan import point_model

    # The seed's frequencies and initial phases, drawn as the study draws them.
    omega, theta = point_model(parse_spec(TINY_RAMP)).draw(0)
    for direction, Ks in (("up", [1.5, 0.2]), ("down", [0.2, 1.5])):
        for K in Ks:
            model = kl.Kuramoto(omega, kl.MeanField(K), lag=0.3)
            traj = kl.simulate(model, theta, t1=6.0, dt=0.1, saveat=kl.SaveAt(every=3))
            theta = traj.final
            R_t = np.abs(np.mean(np.exp(1j * np.asarray(traj.ys)), axis=-1))
            got = ds.sel(direction=direction, K=K, seed=0)
            np.testing.assert_allclose(got["R_t"], R_t, atol=1e-5)
            Omega = kl.effective_frequencies(traj, window=3.0)
            np.testing.assert_allclose(got["Omega"], np.mean(Omega), atol=1e-4)
    # Strong coupling locks everyone (the short window makes the lock test coarse:
    # tolerance 2 pi / 3, more than the frequency spread, so no claim at K = 0.2).
    assert float(ds["locked"].sel(K=1.5).min()) == 1.0


def test_size_axis_equals_fixed_size_studies(tmp_path):
    text = TINY.replace("n = 64\n", "").replace("seeds = 2", "seeds = 2\nn = [16, 32]")
    ds = _run(text, tmp_path / "sizes.nc")
    assert ds["R"].dims == ("n", "K", "seed")
    np.testing.assert_array_equal(ds["n"], [16, 32])
    for n in (16, 32):
        fixed = _run(TINY.replace("n = 64", f"n = {n}"), tmp_path / f"n{n}.nc")
        np.testing.assert_allclose(ds["R_t"].sel(n=n), fixed["R_t"], atol=1e-6)


# ---------------------------------------------------------------------------------
# Sphere models (AKOrN vector oscillators)
# ---------------------------------------------------------------------------------

#: dim = 2: the phase model in vector form (theta = atan2(x_1, x_0)).
TINY_SPHERE = """
[study]
name = "tiny_sphere"

[model]
kind = "sphere"
n = 16
dim = 2

[model.frequencies]
distribution = "lorentzian"
scale = 0.5

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.5, 3.0]
seeds = 2

[solve]
t1 = 3.0
dt = 0.05
save_every = 3

[observe]
window = 1.5
energy = true
"""

#: Identical oscillators on S^2 with a stimulus c = h e_0 swept: a gradient flow.
SPHERE_STIMULUS = """
[study]
name = "sphere_stimulus"

[model]
kind = "sphere"
n = 12
dim = 3
rotation = "first_plane"

[model.frequencies]
distribution = "identical"
loc = 0.0

[model.coupling]
kind = "mean_field"
K = 1.0

[model.stimulus]

[sweep]
h = [0.0, 0.5]
seeds = 1

[solve]
t1 = 20.0
dt = 0.1
save_every = 5

[observe]
energy = true
trajectories = true
"""

#: S^3 with rotations in both planes, network sizes and an adiabatic K ramp.
SPHERE_RAMP = """
[study]
name = "sphere_ramp"

[model]
kind = "sphere"
dim = 4

[model.frequencies]
distribution = "gaussian"
scale = 0.3
sampling = "quantile"

[model.coupling]
kind = "mean_field"

[sweep]
n = [6]
K = [0.4, 2.0]
seeds = 1
mode = "adiabatic"

[solve]
t1 = 3.0
dt = 0.1
save_every = 3

[observe]
energy = true
"""


def test_sphere_spec_parses():
    spec = parse_spec(TINY_SPHERE)
    m = spec.model
    assert (m.kind, m.n, m.dim, m.rotation, m.stimulus) == (
        "sphere",
        16,
        2,
        "all_planes",
        None,
    )
    assert not m.noisy and not m.delayed and m.coupling.K is None
    assert spec.observe.energy and spec.solve.solver == "rk4"
    stim = parse_spec(SPHERE_STIMULUS)
    assert stim.model.stimulus.h is None and stim.sweep.names == ("h",)
    assert stim.axis_values("h") == (0.0, 0.5) and stim.fixed("lag") == 0.0
    assert stim.model.planes == (1.0,)  # dim 3: one plane, the last axis is fixed
    ramp = parse_spec(SPHERE_RAMP)
    assert ramp.model.planes == (1.0, 1.0) and ramp.sweep.sizes == (6,)
    first = parse_spec(
        SPHERE_RAMP.replace("dim = 4", 'dim = 4\nrotation = "first_plane"')
    )
    assert first.model.planes == (1.0, 0.0)
    # The AKOrN step is a solver of sphere models only.
    akorn = parse_spec(TINY_SPHERE.replace("save_every = 3", 'solver = "akorn"'))
    assert akorn.solve.solver == "akorn"
    for text in (TINY_SPHERE, SPHERE_STIMULUS, SPHERE_RAMP):
        spec = parse_spec(text)
        assert parse_spec(spec.to_toml()) == spec
    # A spec without energy writes no energy key (its canonical text predates it).
    assert "energy" not in parse_spec(TINY).to_toml()


SPHERE_BAD = {
    "lag": (
        edit('kind = "mean_field"', 'kind = "mean_field"\nlag = 0.1', TINY_SPHERE),
        "model.coupling.lag = 0.1",
        'no lag with kind = "sphere"',
    ),
    "noise": (
        edit("[sweep]", "[model.noise]\nD = 0.1\n\n[sweep]", TINY_SPHERE),
        "model.noise = {D = 0.1}",
        'a key of kind = "kuramoto"',
    ),
    "delays": (
        edit("[sweep]", "[model.delays]\ntau = 1.0\n\n[sweep]", TINY_SPHERE),
        "model.delays",
        'a key of kind = "kuramoto"',
    ),
    "initial phases": (
        edit("[sweep]", "[model.initial_phases]\nspread = 1.0\n\n[sweep]", TINY_SPHERE),
        "model.initial_phases",
        "kuramoto",
    ),
    "dim on kuramoto": (edit("n = 64", "n = 64\ndim = 3"), "model.dim = 3", "sphere"),
    "stimulus on kuramoto": (
        edit("[sweep]", "[model.stimulus]\nh = 1.0\n\n[sweep]"),
        "model.stimulus",
        "sphere",
    ),
    "dim missing": (edit("dim = 2\n", "", TINY_SPHERE), "model.dim: missing", ">= 2"),
    "dim 1": (edit("dim = 2", "dim = 1", TINY_SPHERE), "model.dim = 1", ">= 2"),
    "dim float": (edit("dim = 2", "dim = 2.0", TINY_SPHERE), "model.dim", "integer"),
    "rotation typo": (
        edit("dim = 2", 'dim = 2\nrotation = "all_plane"', TINY_SPHERE),
        "model.rotation",
        "did you mean 'all_planes'",
    ),
    "sphere key typo": (
        edit("dim = 2", "dimm = 2", TINY_SPHERE),
        "model.dimm",
        "did you mean 'dim'",
    ),
    "frequency on sphere": (
        edit("energy = true", "frequency = true", TINY_SPHERE),
        "observe.frequency = true",
        'false with kind = "sphere"',
    ),
    "locked on sphere": (
        edit("energy = true", "locked = true", TINY_SPHERE),
        "observe.locked = true",
        "phases",
    ),
    "lag swept on sphere": (
        edit("seeds = 2", "lag = [0.0, 0.1]\nseeds = 2", TINY_SPHERE),
        "sweep.lag",
        'kind = "sphere" (K, h); lag belongs to kind = "kuramoto"',
    ),
    "h swept on kuramoto": (
        edit("seeds = 2", "h = [0.0, 0.1]\nseeds = 2"),
        "sweep.h",
        'h belongs to kind = "sphere"',
    ),
    "h swept without stimulus": (
        edit("seeds = 2", "h = [0.0, 0.1]\nseeds = 2", TINY_SPHERE),
        "sweep.h",
        "[model.stimulus]",
    ),
    "h missing": (
        edit("h = [0.0, 0.5]\n", "", SPHERE_STIMULUS),
        "model.stimulus.h: missing",
        "sweep.h",
    ),
    "h swept and fixed": (
        edit("[model.stimulus]", "[model.stimulus]\nh = 0.1", SPHERE_STIMULUS),
        "model.stimulus.h = 0.1",
        "sweep.h",
    ),
    "akorn on kuramoto": (
        edit('solver = "rk4"', 'solver = "akorn"'),
        'solve.solver = "akorn"',
        'for kind = "sphere"',
    ),
    "sde solver on sphere": (
        edit("save_every = 3", 'solver = "shark"', TINY_SPHERE),
        'solve.solver = "shark"',
        '"akorn", "bosh3"',
    ),
    "trajectories in a ramp": (
        edit("[observe]", "[observe]\ntrajectories = true", SPHERE_RAMP),
        "observe.trajectories",
        "adiabatic",
    ),
}


@pytest.mark.parametrize("case", SPHERE_BAD, ids=str)
def test_bad_sphere_spec_message(case):
    _assert_one_line_spec_error(*SPHERE_BAD[case])


def test_sphere_dim2_is_the_phase_model(tmp_path):
    """dim = 2 reduces to kl.Kuramoto with theta = atan2(x_1, x_0): each point's R(t)
    equals a direct phase-model simulation from the seed's draws (up to RK4's
    O(dt^4) error, which differs between the two coordinates), the seed's
    frequencies are the phase model's, and E(t) = kl.energy = -N K R^2 / 2."""
    import jax.numpy as jnp

    from kuralab._study.plan import point_model

    ds = _run(TINY_SPHERE, tmp_path / "s2.nc")
    assert ds["R"].dims == ("K", "seed") and ds["energy_t"].dims == (
        "K",
        "seed",
        "time",
    )
    assert ds.attrs["model"] == "sphere" and ds.attrs["dim"] == 2
    assert ds.attrs["rotation"] == "all_planes" and ds.attrs["stimulus"] == "none"
    assert "lag" not in ds.attrs and "initial_spread" not in ds.attrs
    for name in ("energy", "energy_t"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
    cfg = point_model(parse_spec(TINY_SPHERE))
    phase = point_model(parse_spec(TINY.replace("n = 64", "n = 16")))
    for seed in (0, 1):
        omega, x0 = cfg.draw(seed)
        assert x0.shape == (16, 2)
        np.testing.assert_allclose(jnp.linalg.norm(x0, axis=-1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(omega, phase.draw(seed)[0])
        theta0 = jnp.arctan2(x0[:, 1], x0[:, 0])
        for K in (0.5, 3.0):
            model = kl.Kuramoto(omega, kl.MeanField(K))
            traj = kl.simulate(
                model, theta0, t1=3.0, dt=0.05, saveat=kl.SaveAt(every=3)
            )
            R_t = np.abs(np.mean(np.exp(1j * np.asarray(traj.ys)), axis=-1))
            got = ds.sel(K=K, seed=seed)
            np.testing.assert_allclose(got["R_t"], R_t, atol=1e-4)
            E_t = [kl.energy(model, theta) for theta in traj.ys[::5]]
            np.testing.assert_allclose(got["energy_t"][::5], E_t, rtol=1e-3, atol=1e-3)
    assert np.all((ds["R"].values >= 0) & (ds["R"].values <= 1))
    # K = 3 > K_c = 1: synchronised (R = sqrt(1 - 2 gamma / K) = 0.82 as N -> inf).
    assert float(ds["R"].sel(K=3.0).min()) > max(0.7, float(ds["R"].sel(K=0.5).max()))


def test_sphere_gradient_flow_synchronises_with_non_increasing_energy(tmp_path):
    """Identical oscillators (omega = 0) on S^2 with symmetric mean-field coupling
    and a stimulus c = h e_0: AKOrN App. F, dE/dt <= 0. They synchronise (R -> 1),
    with the stimulus onto e_0 (E -> -N (K/2 + h)); the stored E(t) is kl.energy
    of the stored states."""
    import jax.numpy as jnp

    ds = _run(SPHERE_STIMULUS, tmp_path / "stim.nc")
    assert ds["x"].dims == ("h", "seed", "time", "osc", "dim")
    assert ds["x"].shape == (2, 1, 41, 12, 3)
    assert ds["omega"].dims == ("seed", "osc") and np.all(ds["omega"].values == 0)
    assert ds.attrs["stimulus"] == "h e_0" and ds.attrs["K"] == 1.0
    x = ds["x"].values
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        ds["R_t"], np.linalg.norm(x.mean(-2), axis=-1), atol=1e-5
    )
    for h in (0.0, 0.5):
        model = kl.SphereKuramoto(
            None, kl.MeanField(1.0), jnp.array([h, 0.0, 0.0]), n_osc=12
        )
        got = ds.sel(h=h, seed=0)
        E_t = np.array([kl.energy(model, xt) for xt in got["x"].values])
        np.testing.assert_allclose(got["energy_t"], E_t, rtol=1e-5, atol=1e-4)
        assert np.all(np.diff(E_t) <= 1e-4 * 12), np.diff(E_t).max()
        assert E_t[-1] < E_t[0] - 1.0
        assert float(got["R_t"][-1]) > 0.999
        np.testing.assert_allclose(E_t[-1], -12 * (0.5 + h), rtol=1e-3)
    # With the stimulus, every oscillator points along e_0.
    np.testing.assert_allclose(x[1, 0, -1, :, 0], 1.0, atol=1e-3)


def test_sphere_adiabatic_ramp_over_sizes(tmp_path):
    """An adiabatic K ramp of S^3 oscillators with a network-size axis: the result
    has (direction, K, n, seed) dimensions, and each ramp value starts from the
    previous final vectors (replayed with kl.SphereKuramoto and kl.simulate)."""
    ds = _run(SPHERE_RAMP, tmp_path / "ramp.nc")
    assert ds["R"].dims == ("direction", "K", "n", "seed")
    assert ds["energy_t"].dims == ("direction", "K", "n", "seed", "time")
    np.testing.assert_array_equal(ds["n"], [6])
    assert np.all((ds["R_t"].values >= 0) & (ds["R_t"].values <= 1 + 1e-6))
    from kuralab._study.plan import point_model

    omega, x = point_model(parse_spec(SPHERE_RAMP), n=6).draw(0)
    rates = np.stack([omega, omega], axis=-1)  # both planes turn at omega_i
    for direction, Ks in (("up", [0.4, 2.0]), ("down", [2.0, 0.4])):
        for K in Ks:
            model = kl.SphereKuramoto(kl.BlockOmega(rates), kl.MeanField(K))
            traj = kl.simulate(model, x, t1=3.0, dt=0.1, saveat=kl.SaveAt(every=3))
            x = traj.final
            m = np.mean(np.asarray(traj.ys), axis=-2)
            got = ds.sel(direction=direction, K=K, n=6, seed=0)
            np.testing.assert_allclose(
                got["R_t"], np.linalg.norm(m, axis=-1), atol=1e-5
            )
            E_t = -0.5 * 6 * K * np.sum(m**2, axis=-1)  # kl.energy, mean field
            np.testing.assert_allclose(got["energy_t"], E_t, rtol=1e-4, atol=1e-5)


def test_sphere_study_is_the_documented_experiment():
    spec = load_spec(pathlib.Path(__file__).parents[1] / "studies" / "sphere_sync.toml")
    m = spec.model
    assert (m.kind, m.dim, m.rotation) == ("sphere", 4, "all_planes")
    f = m.frequencies
    assert f.distribution == "lorentzian" and m.n >= 500
    # Incoherence loses stability at K_c = D / ((D - 1) pi g(0)) = 2/3 here, the
    # phase model's at 2 gamma = 1: the K grid straddles both.
    K = spec.sweep.values("K")
    assert min(K) < 0.5 and max(K) >= 2.0
    assert sum(0.55 <= k <= 0.8 for k in K) >= 3
    assert len(spec.sweep.seeds) >= 2


SAME_POINT = """
[study]
name = "same_point"

[model]
kind = "kuramoto"
n = 32

[model.frequencies]
distribution = "lorentzian"
scale = 0.3

[model.coupling]
kind = "mean_field"
lag = 0.2

[model.noise]
D = 0.05

[sweep]
K = [0.5, 2.0]
seeds = 2

[solve]
t1 = 8.0
dt = 0.1
solver = "heun"
save_every = 2

[observe]
window = 4.0
frequency = true
locked = true
energy = true

[output]
chunk_size = 3
"""

SAME_POINT_SPHERE = """
[study]
name = "same_point_sphere"

[model]
kind = "sphere"
n = 12
dim = 3

[model.frequencies]
distribution = "lorentzian"
scale = 0.2

[model.coupling]
kind = "mean_field"

[model.stimulus]
h = 0.3

[sweep]
K = [0.5, 2.0]
seeds = 2

[solve]
t1 = 4.0
dt = 0.1

[observe]
window = 2.0
energy = true
"""


@pytest.mark.parametrize(
    "text, fixed, names",
    [
        (SAME_POINT, {"lag": [0.2], "D": [0.05]}, ("R", "Omega", "energy", "locked")),
        (SAME_POINT_SPHERE, {"h": [0.3]}, ("R", "energy")),
    ],
    ids=["kuramoto", "sphere"],
)
def test_study_point_equals_kl_sweep(tmp_path, text, fixed, names):
    """One per-point engine: a study's grid points and the same points computed by
    `kl.sweep` (with the study's model builder, window, step, saves and noise base
    key) give identical numbers. Compared with EXACT equality (assert_array_equal):
    both run `kuralab._sweep_kernel` -- the same transient and window segments, the
    same `kl.energy`, the same Brownian keys (here a noisy phase model with a lag, and
    a sphere model with a stimulus)."""
    from kuralab._study.plan import NOISE_KEY, point_model

    spec = parse_spec(text)
    ds = _run(text, tmp_path / "study.nc")
    s = spec.solve
    swept = kl.sweep(
        point_model(spec),
        {"K": list(spec.sweep.values("K")), **fixed, "seed": list(spec.sweep.seeds)},
        t1=s.t1,
        dt=s.dt,
        t0=s.t0,
        window=spec.observe.window,
        solver=s.solver,
        save_every=s.save_every,
        observe=names,
        key=jax.random.key(NOISE_KEY),
    )
    swept = swept.isel({name: 0 for name in fixed})
    for name in names:
        assert swept[name].dims == ds[name].dims == ("K", "seed"), name
        np.testing.assert_array_equal(ds[name].values, swept[name].values, err_msg=name)
    assert float(ds["R"].sel(K=2.0).min()) > float(ds["R"].sel(K=0.5).max())


def test_study_modules_are_small_and_layered():
    """DESIGN §2: every module of the study package and of the sweep engine has at
    most 600 lines; inside `kuralab/_study/` only `run.py` imports all of spec, plan
    and store, and the package has no import cycle."""
    import ast

    root = pathlib.Path(kl.__file__).parent
    files = [*sorted((root / "_study").glob("*.py")), *sorted(root.glob("_sweep*.py"))]
    files += [root / "study.py"]
    for path in files:
        lines = len(path.read_text().splitlines())
        assert lines <= 600, f"{path.name}: {lines} lines"
    graph = {}
    for path in sorted((root / "_study").glob("*.py")):
        deps = set()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # imports under `if TYPE_CHECKING:` never run
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
        graph[path.stem] = deps
    importers = [m for m, d in graph.items() if {"spec", "plan", "store"} <= d]
    assert importers == ["run"], importers

    def visit(node, stack):
        assert node not in stack, f"import cycle: {' -> '.join([*stack, node])}"
        for dep in graph.get(node, ()):
            visit(dep, [*stack, node])

    for module in graph:
        visit(module, [])
