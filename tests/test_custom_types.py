"""The jaxtyping aliases of `kuralab/_custom_types.py` are used, not just defined.

Read from the sources with `ast` (nothing is imported), so a new alias that no
signature uses, or a signature change that orphans one, fails here.
"""

import ast
from pathlib import Path

import kuralab

ROOT = Path(kuralab.__file__).resolve().parent
TYPES = ROOT / "_custom_types.py"


def _aliases() -> set[str]:
    """Module-level `Name: TypeAlias = ...` definitions of `_custom_types.py`."""
    tree = ast.parse(TYPES.read_text(), filename=str(TYPES))
    return {
        node.target.id
        for node in tree.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and isinstance(node.annotation, ast.Name)
        and node.annotation.id == "TypeAlias"
    }


def _names_in(annotation: ast.expr | None) -> set[str]:
    """Names an annotation mentions: `X`, `ct.X`, and inside string annotations."""
    found: set[str] = set()
    for node in ast.walk(annotation) if annotation is not None else ():
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                found |= _names_in(ast.parse(node.value, mode="eval").body)
            except SyntaxError:  # a jaxtyping shape string such as "osc dim"
                pass
    return found


def _signature_names(tree: ast.Module) -> set[str]:
    """Names used in function signatures (parameters and returns) and in class field
    annotations (the constructor signature of NamedTuples, dataclasses, Modules)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
            for arg in params:
                if arg is not None:
                    found |= _names_in(arg.annotation)
            found |= _names_in(node.returns)
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign):
                    found |= _names_in(stmt.annotation)
    return found


def test_aliases_are_defined():
    # The shapes the public API talks about (DESIGN.md §2: used in signatures).
    expected = {"Phases", "SphereState", "CouplingMatrix", "Frequencies", "Key"}
    assert expected <= _aliases()


def test_every_alias_is_used_in_a_signature():
    used: set[str] = set()
    for path in sorted(ROOT.rglob("*.py")):
        if path != TYPES:
            used |= _signature_names(ast.parse(path.read_text(), filename=str(path)))
    unused = sorted(_aliases() - used)
    assert not unused, (
        f"aliases defined in kuralab/_custom_types.py but used in no signature: "
        f"{unused}; annotate the public functions that take or return them, or "
        "remove the alias"
    )
