"""The public API: every listed name resolves, the type-checking block matches, and the
package and CLI import without JAX."""

import ast
import pathlib
import subprocess
import sys

import kuralab


def test_every_public_name_resolves():
    # each lazy export is the very object its defining module holds (not a copy or a
    # stub), submodules are the imported modules, and dir() lists exactly them
    import importlib

    for name, module in kuralab._WHERE.items():
        value = getattr(kuralab, name)
        assert value is getattr(importlib.import_module(f"kuralab.{module}"), name), name
        # functions and classes, except constants (UPPER) and the lineax-style tags
        assert callable(value) or name.isupper() or name.endswith("_tag"), name
    for name in kuralab._SUBMODULES:
        assert getattr(kuralab, name) is importlib.import_module(f"kuralab.{name}"), name
    public = {n for n in kuralab.__dir__() if not n.startswith("_")}
    assert set(kuralab._WHERE) | set(kuralab._SUBMODULES) <= public


def test_type_checking_block_lists_the_same_names():
    tree = ast.parse(pathlib.Path(kuralab.__file__).read_text())
    block = next(
        node for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    declared = {
        alias.asname or alias.name
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert declared == set(kuralab._WHERE) | set(kuralab._SUBMODULES)


def test_unknown_name_is_an_attribute_error():
    try:
        kuralab.Kuramotto  # noqa: B018
    except AttributeError as e:
        assert "Kuramotto" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def test_import_and_cli_help_do_not_import_jax():
    code = (
        "import sys, kuralab, kuralab.cli\n"
        "assert 'jax' not in sys.modules, 'jax imported'\n"
        "import xarray as xr\n"
        "assert hasattr(xr.Dataset, 'kura')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
