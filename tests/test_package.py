"""The public API: every listed name resolves, the type-checking block matches, and the
package and CLI import without JAX."""

import ast
import pathlib
import subprocess
import sys

import kuralab


def test_every_public_name_resolves():
    for name in kuralab.__dir__():
        if not name.startswith("_"):
            assert getattr(kuralab, name) is not None, name


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
