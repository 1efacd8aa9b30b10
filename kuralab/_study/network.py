"""Couplings other than mean field in study specs: `[model.coupling]` with `kind =
"dense" | "sparse" | "lattice"` (phase models), built with kl's coupling
constructors (`kl.DenseCoupling`, `kl.SparseCoupling`, `kl.LatticeCoupling`) and
scaled by the swept or fixed strength `K`:

```toml
[model.coupling]
kind = "dense"
file = "data/inputs/K.npy"        # (n, n) .npy, or text (.csv/.txt): row i receives
normalize = "n"                   # "none" (default) | "n" (divide by n) | "degree"

[model.coupling]
kind = "sparse"
graph = "small_world"             # "ring" (k) | "erdos_renyi" (p) | "small_world" (k, p)
k = 3                             # neighbours on each side (ring, small world)
p = 0.1                           # edge / rewiring probability
seed = 1                          # the graph's own seed (not the sweep's seeds)
# or: edges = "graph.txt"         # lines "receiver sender [weight]" (0-based), directed

[model.coupling]
kind = "lattice"
kernel = [[0, 1, 0], [1, 0, 1], [0, 1, 0]]   # odd sizes, centred
shape = [16, 16]                  # model.n must be rows * cols
boundary = "periodic"             # or "open"
```

`normalize`: `"none"` uses the weights as given (`K A_ij`), `"n"` divides by n (a
complete graph then equals mean field), `"degree"` by the mean number of inputs per
oscillator (mean row sum). Files are read when the spec is parsed, relative to the
working directory; their SHA-256 is part of the canonical spec (`sha256 = ...`), so a
changed file never resumes the chunks of the old one, and a spec giving `sha256`
refuses a file that does not match. Graph generators are plain NumPy, deterministic in
`seed`; the undirected graphs are symmetric (`K_ij = K_ji`). The matrices are
constants of the compiled chunk (fine up to a few thousand oscillators dense; sparse
graphs scale with their edges).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._table import _show, _Table
from .spec import SpecError

KINDS = ("dense", "sparse", "lattice")
GRAPHS = ("ring", "erdos_renyi", "small_world")
NORMALIZE = ("none", "n", "degree")
BOUNDARIES = ("periodic", "open")
#: Keys of `[model.coupling]` for each structured kind (besides kind, K, lag).
KEYS = {
    "dense": ("file", "normalize", "sha256"),
    "sparse": ("graph", "k", "p", "seed", "edges", "normalize", "sha256"),
    "lattice": ("kernel", "shape", "boundary", "normalize"),
}


@dataclass(frozen=True)
class NetworkSpec:
    """The structure of a non-mean-field coupling (see the module docstring)."""

    kind: str
    file: str | None = None
    graph: str | None = None
    k: int | None = None
    p: float | None = None
    seed: int | None = None
    kernel: tuple | None = None
    shape: tuple[int, ...] | None = None
    boundary: str | None = None
    normalize: str = "none"
    sha256: str | None = None

    def toml_items(self) -> list[tuple[str, object]]:
        names = ("file", "graph", "k", "p", "seed", "kernel", "shape", "boundary",
                 "normalize", "sha256")
        return [(name, getattr(self, name)) for name in names]

    def edge_count(self, n: int) -> int:
        if self.graph in ("ring", "small_world"):
            return 2 * n * int(self.k or 0)
        if self.graph == "erdos_renyi":
            return int(round(float(self.p or 0) * n * (n - 1)))
        return len(arrays(self, n)[1])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_matrix(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    return np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)


def parse_network(c: _Table, kind: str, n: int | None) -> NetworkSpec:
    """Validate the structure keys of `[model.coupling]` (`c`, already checked for
    unknown keys) for a model of `n` oscillators."""
    if n is None:
        c.fail("kind", kind, f'"mean_field" when sweep.n sweeps the size (a {kind} '
               "coupling fixes n)")
    normalize = c.string("normalize", default="none", choices=NORMALIZE)
    if kind == "lattice":
        return _parse_lattice(c, n, normalize)
    if kind == "dense":
        path, digest = _file(c, "file", required=True)
        try:
            m = _read_matrix(path)
        except (OSError, ValueError) as e:
            c.fail("file", str(path), f"a readable (n, n) matrix file ({_line(e)})")
        if m.shape != (n, n) or not np.all(np.isfinite(m)):
            c.fail("file", str(path), f"a finite ({n}, {n}) matrix (model.n = {n}); "
                   f"got shape {m.shape}")
        return NetworkSpec("dense", file=str(path), normalize=normalize, sha256=digest)
    given = [key for key in ("graph", "edges") if key in c.data]
    if len(given) != 1:
        raise SpecError(
            f"{c.key('graph')}: expected exactly one of graph = "
            + " | ".join(f'"{g}"' for g in GRAPHS)
            + ' or edges = "FILE" with kind = "sparse"'
        )
    if given == ["edges"]:
        for key in ("k", "p", "seed"):
            if key in c.data:
                c.fail(key, c.data[key], "no value with edges = FILE (generators only)")
        path, digest = _file(c, "edges", required=True)
        spec = NetworkSpec("sparse", file=str(path), normalize=normalize, sha256=digest)
        try:
            arrays(spec, n)
        except (OSError, ValueError) as e:
            c.fail("edges", str(path), f"lines 'receiver sender [weight]' with indices "
                   f"in [0, {n}) ({_line(e)})")
        return spec
    graph = c.string("graph", choices=GRAPHS)
    if "sha256" in c.data:
        c.fail("sha256", c.data["sha256"], "no value with graph = ... (no file)")
    seed = c.integer("seed", default=0, ge=0)
    k = p = None
    if graph in ("ring", "small_world"):
        k = c.integer("k", ge=1, expected=f"an integer in [1, {(n - 1) // 2}] "
                      "(neighbours on each side)")
        if 2 * k >= n:
            c.fail("k", k, f"an integer in [1, {(n - 1) // 2}] (2 k < model.n = {n})")
    elif "k" in c.data:
        c.fail("k", c.data["k"], 'no value with graph = "erdos_renyi" (give p)')
    if graph in ("erdos_renyi", "small_world"):
        p = c.number("p", ge=0, expected="a probability in [0, 1]")
        if p > 1:
            c.fail("p", p, "a probability in [0, 1]")
    elif "p" in c.data:
        c.fail("p", c.data["p"], 'no value with graph = "ring"')
    return NetworkSpec("sparse", graph=graph, k=k, p=p, seed=seed, normalize=normalize)


def _line(e) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _file(c: _Table, key: str, required: bool) -> tuple[Path, str]:
    path = Path(c.string(key, expected="a file path"))
    if not path.is_file():
        c.fail(key, str(path), "an existing file (relative to the working directory)")
    digest = _digest(path)
    if "sha256" in c.data and c.string("sha256") != digest:
        raise SpecError(
            f"{c.key('sha256')} = {_show(c.data['sha256'])}: expected the SHA-256 of "
            f"{path} ({digest}); the file changed"
        )
    return path, digest


def _parse_lattice(c: _Table, n: int, normalize: str) -> NetworkSpec:
    form = "a 1-D or 2-D list of finite numbers with odd sizes (centred kernel)"
    raw = c.get("kernel", form)
    try:
        kernel = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        c.fail("kernel", raw, form)
    if (kernel.ndim not in (1, 2) or kernel.size == 0 or not np.all(np.isfinite(kernel))
            or any(s % 2 == 0 for s in kernel.shape)):
        c.fail("kernel", raw, form)
    shape_form = f"a list of {kernel.ndim} integers >= 1 whose product is model.n = {n}"
    shape = c.get("shape", shape_form)
    if (not isinstance(shape, list) or len(shape) != kernel.ndim
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                       for s in shape) or int(np.prod(shape)) != n):
        c.fail("shape", shape, shape_form)
    boundary = c.string("boundary", default="periodic", choices=BOUNDARIES)
    if boundary == "periodic" and any(k > s for k, s in zip(kernel.shape, shape,
                                                              strict=True)):
        c.fail("kernel", raw, f"sizes <= the grid {shape} with periodic boundaries")
    as_tuple = tuple(kernel.tolist()) if kernel.ndim == 1 else tuple(
        tuple(row) for row in kernel.tolist())
    return NetworkSpec("lattice", kernel=as_tuple, shape=tuple(shape),
                       boundary=boundary, normalize=normalize)


# ---------------------------------------------------------------------------------
# The arrays (NumPy, cached per spec and size)
# ---------------------------------------------------------------------------------


def _ring_edges(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.repeat(np.arange(n), k)
    j = (i + np.tile(np.arange(1, k + 1), n)) % n
    return i, j  # each undirected edge once


def _small_world(n: int, k: int, p: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Watts--Strogatz: each ring edge (i, i + d) is rewired with probability p to
    (i, j), j uniform among the nodes not yet adjacent to i (no self loops)."""
    i, j = _ring_edges(n, k)
    adjacent = [set() for _ in range(n)]
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        adjacent[a].add(b)
        adjacent[b].add(a)
    out_j = j.copy()
    for e in range(len(i)):
        if rng.random() >= p:
            continue
        a, b = int(i[e]), int(out_j[e])
        free = n - 1 - len(adjacent[a])
        if free <= 0:
            continue
        while True:
            c = int(rng.integers(n))
            if c != a and c not in adjacent[a]:
                break
        adjacent[a].discard(b)
        adjacent[b].discard(a)
        adjacent[a].add(c)
        adjacent[c].add(a)
        out_j[e] = c
    return i, out_j


def _erdos_renyi(n: int, p: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """G(n, p) in O(n + edges): the n(n-1)/2 node pairs (a < b) in row-major order are
    Bernoulli(p) trials, so the gaps between successive edges are Geometric(p)
    (Batagelj & Brandes 2005); the linear pair index is mapped back to (a, b)."""
    total = n * (n - 1) // 2
    if total == 0 or p <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if p >= 1:
        k = np.arange(total, dtype=np.int64)
    else:
        expected = total * p
        batch = int(expected + 6 * np.sqrt(expected) + 16)
        parts, last = [], -1
        while True:
            k = last + np.cumsum(rng.geometric(p, size=batch).astype(np.int64))
            parts.append(k[k < total])
            if k[-1] >= total:
                break
            last = int(k[-1])
        k = np.concatenate(parts)
    # row a holds the pairs (a, a+1 .. n-1) and starts at a (2n - a - 1) / 2
    rows = np.arange(n - 1, dtype=np.int64)
    starts = rows * (2 * n - rows - 1) // 2
    a = np.searchsorted(starts, k, side="right") - 1
    return a, k - starts[a] + a + 1


@functools.lru_cache(maxsize=8)
def arrays(spec: NetworkSpec, n: int) -> tuple:
    """`("dense", matrix)`, `("sparse", receivers, senders, weights)` or `("lattice",
    kernel)`, normalised; NumPy float64 / int64."""
    if spec.kind == "lattice":
        kernel = np.asarray(spec.kernel, dtype=np.float64)
        return ("lattice", kernel / _scale(spec, n, float(kernel.sum())))
    if spec.kind == "dense":
        m = _read_matrix(Path(spec.file)).astype(np.float64)
        return ("dense", m / _scale(spec, n, float(m.sum()) / n))
    if spec.file is not None:
        raw = _read_matrix(Path(spec.file))
        if raw.ndim != 2 or raw.shape[1] not in (2, 3) or raw.shape[0] == 0:
            raise ValueError("expected 2 or 3 columns")
        r, s = raw[:, 0], raw[:, 1]
        if np.any(r != np.round(r)) or np.any(s != np.round(s)):
            raise ValueError("indices must be integers")
        r, s = r.astype(np.int64), s.astype(np.int64)
        if r.min() < 0 or s.min() < 0 or r.max() >= n or s.max() >= n:
            raise ValueError("an index is out of range")
        w = raw[:, 2].astype(np.float64) if raw.shape[1] == 3 else np.ones(len(r))
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite")
    else:
        rng = np.random.default_rng(spec.seed)
        if spec.graph == "ring":
            i, j = _ring_edges(n, spec.k)
        elif spec.graph == "small_world":
            i, j = _small_world(n, spec.k, spec.p, rng)
        else:
            i, j = _erdos_renyi(n, spec.p, rng)
        r, s = np.concatenate([i, j]), np.concatenate([j, i])  # symmetric
        w = np.ones(len(r))
    degree = float(w.sum()) / n
    return ("sparse", r, s, w / _scale(spec, n, degree))


def _scale(spec: NetworkSpec, n: int, degree: float) -> float:
    if spec.normalize == "n":
        return float(n)
    if spec.normalize == "degree":
        return degree if degree > 0 else 1.0
    return 1.0


def coupling(spec: NetworkSpec, n: int, K, dtype):
    """The `kl` coupling of strength `K` (traced or not)."""
    import jax.numpy as jnp

    from .._coupling import DenseCoupling, LatticeCoupling, SparseCoupling

    out = arrays(spec, n)
    if out[0] == "dense":
        return DenseCoupling(jnp.asarray(out[1], dtype), strength=K)
    if out[0] == "lattice":
        return LatticeCoupling(jnp.asarray(out[1], dtype), spec.shape,
                               boundary=spec.boundary, strength=K)
    _, r, s, w = out
    return SparseCoupling(r, s, jnp.asarray(w, dtype), n=n, strength=K)
