"""The package's shape (DESIGN.md §2): no import cycles, modules of at most 600 lines.

The import graph is built from the sources with `ast` (nothing is imported): every
`import kuralab.x`, `from kuralab.x import y`, `from .x import y` and `from . import x`,
at module level or inside functions (a function-level import still ties the two modules
together), is an edge. Imports under `if TYPE_CHECKING:` are not edges (they never run).
"""

import ast
import pathlib

import kuralab

ROOT = pathlib.Path(kuralab.__file__).resolve().parent
MAX_LINES = 600


def _module_name(path: pathlib.Path) -> str:
    parts = ("kuralab",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Import nodes anywhere in `tree`, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _targets(node, name: str, path: pathlib.Path, modules) -> set[str]:
    """The kuralab modules an import node names."""
    if isinstance(node, ast.Import):
        found = {a.name for a in node.names}
    else:
        if node.level:
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        # `from pkg import sub` imports the submodule `pkg.sub` when there is one (its
        # parent package runs anyway, as for any submodule); any other name is read
        # from `pkg` itself.
        subs = {f"{base}.{a.name}" for a in node.names}
        found = subs & modules.keys()
        if len(found) < len(subs):
            found.add(base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for node in _imports(tree):
            edges |= _targets(node, name, path, modules)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component with more than one module
    (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    scc = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        scc.append(w)
                        if w == v:
                            break
                    if len(scc) > 1:
                        sccs.append(set(scc))
    return [_cycle_in(graph, scc) for scc in sccs]


def _cycle_in(graph, scc: set[str]) -> list[str]:
    """A shortest cycle through the first module of `scc` (breadth-first)."""
    start = min(scc)
    parents = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & scc):
                if w == start:
                    path = [v]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("not a strongly connected component")


def test_graph_builder_sees_the_kinds_of_import():
    graph = import_graph()
    # relative `from .x import y`, in a package's submodule
    assert "kuralab._coupling.base" in graph["kuralab._coupling.phase"]
    # a package's re-exports, and `from .._misc import ...` two levels up
    assert "kuralab._coupling.phase" in graph["kuralab._coupling"]
    assert "kuralab._misc" in graph["kuralab._coupling.base"]
    # `from . import _names as names`: an edge to the submodule, not to the package
    assert graph["kuralab._accessor"] >= {"kuralab._names"}
    assert "kuralab" not in graph["kuralab._accessor"]
    # a function-level import (ds.kura.plot imports kuralab.plot when called)
    assert "kuralab.plot" in graph["kuralab._accessor"]
    # TYPE_CHECKING-only imports are not edges: kuralab/__init__ imports the public
    # modules lazily (PEP 562) and names them again only for type checkers.
    assert "kuralab._coupling" not in graph["kuralab"]
    assert "kuralab._accessor" in graph["kuralab"]


def test_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles in kuralab:\n" + "\n".join(
        "  " + " -> ".join(c) for c in cycles
    )


def test_modules_are_at_most_600_lines():
    sizes = {
        str(p.relative_to(ROOT.parent)): len(p.read_text().splitlines())
        for p in ROOT.rglob("*.py")
    }
    offenders = {p: n for p, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not offenders, f"modules over {MAX_LINES} lines (split by concept):\n" + (
        "\n".join(f"  {p}: {n}" for p, n in offenders.items())
    )
