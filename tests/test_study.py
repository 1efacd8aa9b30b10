"""Study specs: every shipped spec validates, bad specs fail with one-line messages
naming the key, and a tiny study runs, is deterministic and does not depend on
chunking."""

import pathlib

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


def edit(old: str, new: str, text: str = TINY) -> str:
    """`text` with `old` replaced by `new` (which must occur exactly once)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


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


@pytest.mark.parametrize("text", [TINY, *[p.read_text() for p in STUDIES]])
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
        edit('kind = "kuramoto"', 'kind = "sphere"'),
        "model.kind",
        "kuramoto",
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
}


@pytest.mark.parametrize("case", BAD_SPECS, ids=str)
def test_bad_spec_message(case):
    text, key, hint = BAD_SPECS[case]
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    assert key in message, message
    assert hint in message, message


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
    assert set(ds.data_vars) == {"R", "R_std", "R_t"}
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
    import kuralab.study as study

    real = study.run_chunk

    def failing(spec, grid, where):
        out = real(spec, grid, where)
        out["result"] = out["result"].copy()
        out["result"][-1] = kl.RESULTS.nonfinite_state._value
        return out

    monkeypatch.setattr(study, "run_chunk", failing)
    path = tmp_path / "fail.nc"
    with pytest.raises(
        kl.SimulationError, match=r"2 of 4 simulations failed.*seed = 0.*non-finite"
    ):
        run_study(parse_spec(TINY), path, progress=False, compile_cache=False)
    assert list(tmp_path.iterdir()) == []


def test_trajectories_on_request(tmp_path):
    text = edit("n = 64", "n = 8")
    text = edit("window = 1.0", "window = 1.0\ntrajectories = true", text)
    ds = _run(text, tmp_path / "traj.nc")
    assert ds["theta"].dims == ("K", "seed", "time", "osc")
    assert ds["theta"].shape == (2, 2, 11, 8)
    assert ds["omega"].dims == ("seed", "osc")
    # The stored R(t) is |mean exp(i theta)| of the stored phases.
    z = np.abs(np.exp(1j * ds["theta"].values.astype(np.float64)).mean(-1))
    np.testing.assert_allclose(ds["R_t"].values, z, atol=1e-5)
    # Each seed draws its own frequencies.
    assert not np.array_equal(ds["omega"][0], ds["omega"][1])
