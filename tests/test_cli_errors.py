"""Bad input to `kuralab validate | run | plot` ends in exactly one `error:` line, a
non-zero exit status and no output file (issue 19): the seven crashes and hangs found
by a new user, the up-front size limits, output extensions, a corrupted manifest, and
a hypothesis fuzzer over study specs. Everything runs in-process (`kuralab.cli.main`),
so no example pays for a new interpreter or for jax compilation."""

import json
import math
import time

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from kuralab.cli import main
from kuralab.study import parse_spec

TINY = """
[study]
name = "tiny_err"

[model]
kind = "kuramoto"
n = 32

[model.frequencies]
distribution = "gaussian"
scale = 0.5

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.5, 2.0]
seeds = 2

[solve]
t1 = 2.0
dt = 0.1
save_every = 2
"""


def one_error_line(err: str, *needles: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


def spec_file(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(tmp_path, capsys, argv, *needles, status=2, budget=5.0):
    """`main(argv)` fails within `budget` seconds with one line naming `needles`, and
    leaves the directory as it was."""
    before = sorted(p.name for p in tmp_path.iterdir())
    start = time.perf_counter()
    assert main([str(a) for a in argv]) == status
    assert time.perf_counter() - start < budget
    captured = capsys.readouterr()
    assert captured.out == ""
    line = one_error_line(captured.err, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return line


# ---------------------------------------------------------------------------------
# The seven crashes and hangs of issue 19, each reproduced first (see the report)
# ---------------------------------------------------------------------------------

HUGE = {
    # 1. a 1e9-point range: was 23.8 GB resident, then killed (MemoryError)
    "range 1e9": (
        ("K = [0.5, 2.0]", "K = {start = 0.5, stop = 1.0, num = 1000000000}"),
        ("sweep.K.num = 1000000000", "2e+09 simulations", "--max-points"),
    ),
    "seeds 1e9": (("seeds = 2", "seeds = 1000000000"), ("sweep.seeds", "--max-points")),
    # 2. n = 1e10 validated "ok" and aborted inside XLA
    "n 1e10": (("n = 32", "n = 10000000000"), ("model.n = 10000000000", "int32")),
    # ... and n = 1e9 is refused by the memory estimate, naming the key
    "n 1e9": (("n = 32", "n = 1000000000"), ("peak memory", "--max-memory")),
    # 3. t1 = 1e30: OverflowError traceback in save_times
    "t1 1e30": (("t1 = 2.0", "t1 = 1e30"), ("solve.t1 = 1e+30", "steps")),
    "t1 1e300 dt tiny": (
        ("dt = 0.1", "dt = 1e-300"),
        ("solve.t1", "steps"),
    ),
    "output over the limit": (
        ("[solve]", "[observe]\ntrajectories = true\n\n[solve]"),
        (),
    ),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", HUGE, ids=str)
def test_huge_specs_are_refused_arithmetically(case, command, tmp_path, capsys):
    (old, new), needles = HUGE[case]
    text = TINY.replace(old, new)
    extra = []
    if case == "output over the limit":
        extra = ["--max-output", "1kB"]
        needles = ("observe.trajectories", "estimated output", "--max-output")
    path = spec_file(tmp_path, text)
    out = ["--out", tmp_path / "x.nc"] if command == "run" else []
    refused(tmp_path, capsys, [command, path, *out, *extra], *needles, budget=3.0)


def test_chunk_memory_limit_names_chunk_size(tmp_path, capsys):
    path = spec_file(tmp_path, TINY.replace("n = 32", "n = 100000"))
    line = refused(tmp_path, capsys, ["validate", path, "--max-memory", "10MB"],
                   "output.chunk_size", "peak memory")
    assert "output.chunk_size <= " in line


def test_limits_from_environment(tmp_path, capsys, monkeypatch):
    path = spec_file(tmp_path, TINY)
    monkeypatch.setenv("KURALAB_MAX_POINTS", "3")
    refused(tmp_path, capsys, ["validate", path], "4 simulations", "KURALAB_MAX_POINTS")
    monkeypatch.setenv("KURALAB_MAX_POINTS", "lots")
    refused(tmp_path, capsys, ["validate", path], "KURALAB_MAX_POINTS = 'lots'")


def test_validate_prints_the_sizes(tmp_path, capsys):
    path = spec_file(tmp_path, TINY)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok: tiny_err (4 points)"
    assert "4 simulations" in out[1] and "estimated output" in out[1]
    assert "peak memory per chunk" in out[1]


def test_scheduler_not_an_address_fails_at_once(tmp_path, capsys):
    # 4. was one line, then a 60 s hang and `Exception ignored in Client.__del__`.
    path = spec_file(tmp_path, TINY)
    for address in ("notanaddress", "tcp://", "ftp://host:1", "host:port"):
        refused(tmp_path, capsys,
                ["run", path, "--out", tmp_path / "x.nc", "--scheduler", address],
                f"cannot connect to the Dask scheduler at {address}", budget=2.0)


def test_extensions_are_checked(tmp_path, capsys):
    # 7. `--out x.txt` was accepted; `plot --out p.jpg` wrote PNG bytes.
    path = spec_file(tmp_path, TINY)
    refused(tmp_path, capsys, ["run", path, "--out", tmp_path / "x.txt"],
            "--out", ".nc")
    refused(tmp_path, capsys, ["run", path, "--out", tmp_path / ".nc"], ".nc")
    nc = tmp_path / "r.nc"
    nc.write_bytes(b"")  # never read: the extension is checked first
    for bad in ("p.jpg", "p.PNG.txt", "p"):
        refused(tmp_path, capsys, ["plot", nc, "--out", tmp_path / bad],
                ".png or .pdf or .svg")


def test_corrupted_manifest_on_resume(tmp_path, capsys):
    from kuralab._study.store import MANIFEST, chunk_dir

    path = spec_file(tmp_path, TINY)
    out = tmp_path / "out.nc"
    chunks = chunk_dir(out)
    chunks.mkdir()
    (chunks / "chunk-00000-of-00001.nc").write_bytes(b"CDF\x01 not really")
    for damage in ("{not json", json.dumps([1, 2]), ""):
        (chunks / MANIFEST).write_text(damage)
        line = refused(tmp_path, capsys, ["run", path, "--out", out, "--resume"],
                       "no readable manifest.json", "remove the directory")
        assert str(chunks) in line
    # A readable manifest of another spec: the first difference is named.
    (chunks / MANIFEST).write_text(json.dumps({"format": 3, "spec_sha256": "0" * 64,
                                               "kuralab_version": "x"}))
    refused(tmp_path, capsys, ["run", path, "--out", out, "--resume"],
            "cannot resume", "another run")
    assert not out.exists()


# ---------------------------------------------------------------------------------
# The fuzzer: any spec is either valid or refused with one clean line, quickly
# ---------------------------------------------------------------------------------


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def dump(doc: dict) -> str:
    lines = []
    for section, table in doc.items():
        if not isinstance(table, dict):
            lines.append(f"{section} = {_toml(table)}")
            continue
        lines.append(f"[{section}]")
        for key, value in table.items():
            if isinstance(value, dict) and value and section == "model":
                continue
            lines.append(f"{key} = {_toml(value)}")
        for key, value in table.items():
            if isinstance(value, dict) and value and section == "model":
                lines.append(f"[{section}.{key}]")
                lines += [f"{k} = {_toml(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


def base_doc() -> dict:
    return {
        "study": {"name": "fuzz"},
        "model": {
            "kind": "kuramoto",
            "n": 16,
            "frequencies": {"distribution": "lorentzian", "scale": 0.5},
            "coupling": {"kind": "mean_field"},
        },
        "sweep": {"K": {"start": 0.5, "stop": 2.0, "num": 3}, "seeds": 2},
        "solve": {"t1": 10.0, "dt": 0.1, "save_every": 5},
        "observe": {"frequency": True, "window": 5.0},
    }


#: Every key path of the base spec (and some it does not have).
PATHS = [
    ("study", "name"), ("model", "kind"), ("model", "n"),
    ("model", "frequencies", "distribution"), ("model", "frequencies", "scale"),
    ("model", "frequencies", "loc"), ("model", "coupling", "kind"),
    ("model", "coupling", "K"), ("model", "coupling", "lag"), ("model", "noise"),
    ("model", "delays"), ("sweep", "K"), ("sweep", "K", "num"), ("sweep", "K", "stop"),
    ("sweep", "seeds"), ("sweep", "n"), ("sweep", "mode"), ("sweep", "tau"),
    ("solve", "t0"), ("solve", "t1"), ("solve", "dt"), ("solve", "save_every"),
    ("solve", "solver"), ("observe", "window"), ("observe", "Omega_Z"),
    ("observe", "trajectories"), ("output", "chunk_size"), ("output", "path"),
    ("model", "extra"), ("bogus",),
]

NUMBERS = st.sampled_from(
    [0, -1, 1, 2**31, 2**40, 10**12, 2**63 - 1, -(2**63), 0.0, -0.0, 1e-320, 1e-300,
     1e30, 1e300, 1.7976931348623157e308, math.inf, -math.inf, math.nan, 0.5, 7]
)
VALUES = st.one_of(
    NUMBERS,
    st.booleans(),
    st.sampled_from(["", "x", "rk4", "euler", "adiabatic", "lorentzian", "K", "a.nc",
                     "é", "mean_field", "sphere"]),
    st.lists(NUMBERS, max_size=4),
    st.fixed_dictionaries({}, optional={"start": NUMBERS, "stop": NUMBERS,
                                        "num": NUMBERS, "D": NUMBERS, "tau": NUMBERS}),
)


def mutate(doc, path, value, delete):
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@settings(max_examples=60, deadline=3000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(PATHS), VALUES, st.booleans()), min_size=1,
        max_size=3,
    )
)
def test_fuzzed_specs_fail_cleanly(edits, tmp_path_factory, capsys):
    tmp = tmp_path_factory.mktemp("fuzz")
    doc = base_doc()
    for path, value, delete in edits:
        mutate(doc, path, value, delete)
    spec = spec_file(tmp, dump(doc), "fuzz.toml")
    status = main(["validate", str(spec)])
    captured = capsys.readouterr()
    if status == 0:
        assert captured.err == "" and captured.out.startswith("ok: ")
        return
    assert status == 2
    line = one_error_line(captured.err)
    assert "fuzz.toml" in line
    # `run` refuses the same spec the same way, before anything is computed.
    out = tmp / "out.nc"
    assert main(["run", str(spec), "--out", str(out), "-q"]) == 2
    captured = capsys.readouterr()
    assert one_error_line(captured.err) == line
    assert captured.out == ""
    assert sorted(p.name for p in tmp.iterdir()) == ["fuzz.toml"]


def test_fuzzer_base_spec_is_valid():
    """The fuzzer's starting point validates (so mutations test refusals, not a
    broken base)."""
    assert parse_spec(dump(base_doc())).num_points == 6
