"""Couplings other than mean field in study specs (`kuralab/_study/network.py`)."""

import numpy as np
import pytest

import kuralab as kl
from kuralab._study import network as net
from kuralab.cli import main
from kuralab.study import parse_spec, run_study

BASE = """
[study]
name = "net"

[model]
kind = "kuramoto"
n = 24

[model.frequencies]
distribution = "gaussian"
scale = 0.3

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.5, 2.0]
seeds = 1

[solve]
t1 = 3.0
dt = 0.1
save_every = 3
"""


def with_coupling(lines: str) -> str:
    return BASE.replace('kind = "mean_field"', lines)


@pytest.mark.slow
def test_dense_ones_over_n_is_mean_field(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("ones.npy", np.ones((24, 24)))
    dense = parse_spec(with_coupling('kind = "dense"\nfile = "ones.npy"\nnormalize = "n"'))
    assert parse_spec(dense.to_toml()) == dense
    a = kl.io.load(run_study(dense, tmp_path / "d.nc", progress=False))
    b = kl.io.load(run_study(parse_spec(BASE), tmp_path / "m.nc", progress=False))
    # (K/N) sum_j sin(theta_j - theta_i) two ways: float32 rounding only.
    np.testing.assert_allclose(a["R"], b["R"], atol=1e-5)
    assert a.attrs["coupling"] == "dense" and len(a.attrs["coupling_sha256"]) == 64


@pytest.mark.parametrize("graph", ["ring", "small_world", "erdos_renyi"])
def test_graph_generators(graph):
    n, k, p = 40, 3, 0.2
    keys = {"ring": f"k = {k}", "small_world": f"k = {k}\np = {p}",
            "erdos_renyi": f"p = {p}"}[graph]

    def edges(seed):
        text = with_coupling(f'kind = "sparse"\ngraph = "{graph}"\n{keys}\nseed = {seed}')
        spec = parse_spec(text.replace("n = 24", f"n = {n}"))
        _, r, s, w = net.arrays(spec.model.coupling.network, n)
        return r, s, w

    r, s, w = edges(1)
    pairs = set(zip(r.tolist(), s.tolist(), strict=True))
    assert pairs == {(b, a) for a, b in pairs}  # undirected: K symmetric
    assert all(a != b for a, b in pairs) and len(pairs) == len(r)  # simple graph
    if graph != "erdos_renyi":
        assert len(r) == 2 * n * k  # rewiring keeps the number of edges
    else:  # binomial(n(n-1)/2, p) undirected edges: within 4 standard deviations
        m = n * (n - 1) / 2
        assert abs(len(r) / 2 - p * m) < 4 * np.sqrt(m * p * (1 - p))
    if graph == "ring":
        np.testing.assert_array_equal(np.bincount(r, minlength=n), 2 * k)
    else:
        r2, s2, _ = edges(1)
        np.testing.assert_array_equal(r, r2)
        np.testing.assert_array_equal(s, s2)
        r3, s3, _ = edges(2)
        assert set(zip(r3.tolist(), s3.tolist(), strict=True)) != pairs


def test_edge_file_and_lattice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ring = [(i, (i + 1) % 24, 0.5) for i in range(24)]
    np.savetxt("edges.txt", np.array(ring + [(b, a, w) for a, b, w in ring]))
    spec = parse_spec(with_coupling('kind = "sparse"\nedges = "edges.txt"'))
    _, r, s, w = net.arrays(spec.model.coupling.network, 24)
    assert len(r) == 48 and np.all(w == 0.5)
    lattice = parse_spec(with_coupling(
        'kind = "lattice"\nkernel = [[0, 1, 0], [1, 0, 1], [0, 1, 0]]\nshape = [4, 6]\n'
        'normalize = "degree"'
    ))
    kernel = net.arrays(lattice.model.coupling.network, 24)[1]
    assert kernel.sum() == pytest.approx(1.0)
    assert parse_spec(lattice.to_toml()) == lattice


@pytest.mark.slow
def test_lattice_study_runs(tmp_path):
    lattice = parse_spec(with_coupling(
        'kind = "lattice"\nkernel = [[0, 1, 0], [1, 0, 1], [0, 1, 0]]\nshape = [4, 6]'
    ))
    ds = kl.io.load(run_study(lattice, tmp_path / "l.nc", progress=False))
    assert ds.attrs["coupling"] == "lattice" and list(ds.attrs["coupling_shape"]) == [4, 6]
    assert np.all((ds["R"].values >= 0) & (ds["R"].values <= 1))


BAD = {
    "missing file": ('kind = "dense"\nfile = "nope.npy"', "model.coupling.file", "existing"),
    "wrong shape": ('kind = "dense"\nfile = "small.npy"', "(24, 24)", "got shape (3, 3)"),
    "sha mismatch": ('kind = "dense"\nfile = "small.npy"\nsha256 = "00"', "the file changed"),
    "k too big": ('kind = "sparse"\ngraph = "ring"\nk = 12', "model.coupling.k = 12"),
    "both graph and edges": ('kind = "sparse"\ngraph = "ring"\nk = 1\nedges = "e.txt"',
                             "exactly one of"),
    "p for ring": ('kind = "sparse"\ngraph = "ring"\nk = 1\np = 0.5', "model.coupling.p"),
    "p > 1": ('kind = "sparse"\ngraph = "erdos_renyi"\np = 2', "probability"),
    "lattice shape": ('kind = "lattice"\nkernel = [0, 1, 0]\nshape = [5]', "product"),
    "even kernel": ('kind = "lattice"\nkernel = [1, 1]\nshape = [24]', "odd sizes"),
    "unknown key": ('kind = "sparse"\ngraph = "ring"\nk = 1\nfile = "x"', "unknown key"),
}


@pytest.mark.parametrize("case", BAD, ids=str)
def test_bad_couplings_are_one_line(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    np.save("small.npy", np.ones((3, 3)))
    text, *needles = BAD[case]
    (tmp_path / "bad.toml").write_text(with_coupling(text))
    assert main(["validate", "bad.toml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: bad.toml: "), err
    for needle in needles:
        assert needle in err, err


def test_erdos_renyi_is_g_n_p():
    """The geometric-gap generator is G(n, p): over 400 graphs of n = 30, p = 0.1 every
    pair's frequency is within 5 binomial standard errors of p (435 pairs: a false
    alarm has probability ~2.5e-4), the edge-count variance matches m p (1 - p) within
    its sampling error (relative sd sqrt(2/399) ~ 7%: 25% allowed), and p = 1 is the
    complete graph. Large n costs O(edges): 5e4 nodes at mean degree 4 in well under
    a second."""
    n, p, graphs = 30, 0.1, 400
    rng = np.random.default_rng(0)
    counts = np.zeros((n, n))
    sizes = []
    for _ in range(graphs):
        a, b = net._erdos_renyi(n, p, rng)
        assert np.all(a < b) and np.all(b < n) and len(set(zip(a, b, strict=True))) == len(a)
        counts[a, b] += 1
        sizes.append(len(a))
    iu = np.triu_indices(n, 1)
    freq = counts[iu] / graphs
    assert np.max(np.abs(freq - p)) < 5 * np.sqrt(p * (1 - p) / graphs)
    m = n * (n - 1) / 2
    assert abs(np.var(sizes, ddof=1) / (m * p * (1 - p)) - 1) < 0.25
    a, b = net._erdos_renyi(5, 1.0, rng)
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == pairs
    a, _ = net._erdos_renyi(50_000, 8e-5, rng)
    m = 50_000 * 49_999 / 2
    assert abs(len(a) - 8e-5 * m) < 5 * np.sqrt(8e-5 * m)


SPHERE = """
[study]
name = "sphere_net"

[model]
kind = "sphere"
n = 12
dim = 3

[model.frequencies]
distribution = "gaussian"
scale = 0.3

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.5, 2.0]
seeds = 1

[solve]
t1 = 3.0
dt = 0.1
save_every = 3

[observe]
order_parameter = true
energy = true
"""


@pytest.mark.slow
def test_sphere_studies_take_dense_and_sparse_couplings(tmp_path, monkeypatch):
    """J_ij = K_ij I on S^2: a dense all-ones/N matrix is the mean field (float32
    rounding), a ring is not (it couples only neighbours, so R differs at K = 2);
    a lattice kernel is refused in one line."""
    monkeypatch.chdir(tmp_path)
    np.save("ones.npy", np.ones((12, 12)))
    dense = parse_spec(
        SPHERE.replace('kind = "mean_field"', 'kind = "dense"\nfile = "ones.npy"\nnormalize = "n"')
    )
    ring = parse_spec(
        SPHERE.replace('kind = "mean_field"', 'kind = "sparse"\ngraph = "ring"\nk = 1')
    )
    out = {}
    for name, spec in [("mf", parse_spec(SPHERE)), ("dense", dense), ("ring", ring)]:
        out[name] = kl.io.load(run_study(spec, tmp_path / f"{name}.nc", progress=False))
    np.testing.assert_allclose(out["dense"]["R"], out["mf"]["R"], atol=1e-5)
    np.testing.assert_allclose(out["dense"]["energy"], out["mf"]["energy"], rtol=1e-4)
    assert abs(float(out["ring"]["R"][-1, 0] - out["mf"]["R"][-1, 0])) > 1e-3
    lattice = SPHERE.replace(
        'kind = "mean_field"', 'kind = "lattice"\nkernel = [[1.0, 1.0, 1.0]]\nshape = [12]'
    )
    with pytest.raises(kl.study.SpecError, match=r"^model.coupling.kind") as err:
        parse_spec(lattice)
    assert "\n" not in str(err.value)
