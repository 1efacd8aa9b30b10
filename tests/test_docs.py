"""The documentation site: API coverage, the tutorial runner, and every tutorial's code.

All slow (`make test-slow`): the default suite stays as it was. `make docs` builds the
site itself (mkdocs build --strict), which runs the same pages through the same
`docs/hooks.py`; these tests make a broken example fail the test suite too, with the
page and block in the message.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
import hooks  # noqa: E402  (docs/hooks.py)

pytestmark = pytest.mark.slow

DIRECTIVE = re.compile(r"^::: *([\w.]+)\s*$", re.M)
HEADING = re.compile(r"^\s+heading: *([\w.]+)\s*$", re.M)
ANCHOR = re.compile(r"\[\]\(\)\{#([\w.]+)\}")
EXECUTED = sorted(
    p for p in DOCS.rglob("*.md") if p.read_text().startswith("---\nexecute: true\n")
)


def _api_text() -> str:
    return "\n".join(p.read_text() for p in sorted((DOCS / "api").glob("*.md")))


def _resolve(identifier: str):
    parts = identifier.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(identifier)


def _documented() -> set[str]:
    text = _api_text()
    return {*DIRECTIVE.findall(text), *HEADING.findall(text), *ANCHOR.findall(text)}


def test_every_public_name_has_a_reference_entry():
    import kuralab
    import kuralab.learn

    def public(n: str) -> bool:
        if n.startswith("_") or n in ("importlib", "TYPE_CHECKING", "annotations"):
            return False
        # a submodule that another import loaded (kuralab.cli by the CLI tests) is an
        # attribute, not API: modules count when the package declares them
        value = getattr(kuralab, n, None)
        return not isinstance(value, types.ModuleType) or n in (*kuralab._SUBMODULES, "study")

    top = {n for n in dir(kuralab) if public(n)}
    assert "simulate" in top and "learn" in top  # dir() lists the lazy names
    documented = _documented()
    missing = sorted(n for n in top if f"kuralab.{n}" not in documented)
    assert not missing, f"public names of kuralab without an entry in docs/api: {missing}"
    learn = set(kuralab.learn.__all__)
    missing = sorted(n for n in learn if f"kuralab.learn.{n}" not in documented)
    assert not missing, f"kl.learn names without an entry in docs/api: {missing}"


def test_reference_entries_are_the_public_objects():
    """Each `::: path` resolves, and one documented under a `heading: kuralab.X` (a
    private path, where griffe would otherwise pick a same-named module) is kl.X."""
    import kuralab

    text = _api_text()
    for ident in DIRECTIVE.findall(text):
        _resolve(ident)
    for block in re.split(r"\n(?=::: )", text):
        m, h = DIRECTIVE.search(block), HEADING.search(block)
        if m and h:
            assert _resolve(m.group(1)) is _resolve(h.group(1)), (m.group(1), h.group(1))
    # constants documented in prose: the values the page states
    page = (DOCS / "api" / "analysis.md").read_text()
    for name in ("FOLD", "BRANCH_POINT", "HOPF"):
        assert f"`kl.{name} = {getattr(kuralab, name)}`" in page, name


def test_runner_shows_output_writes_files_and_fails_loudly(tmp_path):
    page = "\n".join(
        [
            "```toml file=a.toml",
            "x = 1",
            "```",
            "```python",
            "import matplotlib.pyplot as plt",
            "from pathlib import Path",
            "print(Path('a.toml').read_text().strip())",
            "plt.plot([0, 1])",
            "```",
            "```console",
            "$ echo hello",
            "```",
            "```python no-exec",
            "raise SystemExit",
            "```",
        ]
    )
    res = hooks.execute_markdown(page, name="t", workdir=tmp_path, figure_dir=tmp_path)
    assert res.blocks == 2
    assert (tmp_path / "a.toml").read_text() == "x = 1\n"
    assert '```text title="output"\nx = 1\n```' in res.markdown
    assert "$ echo hello\nhello" in res.markdown
    assert [p.name for p in res.figures] == ["t-1.png"] and res.figures[0].stat().st_size
    assert '<img src="t-1.png"' in res.markdown
    assert '```toml title="a.toml"' in res.markdown
    with pytest.raises(hooks.ExecutionError, match=r"(?s)block 2 .*ZeroDivisionError"):
        hooks.execute_markdown("```python\nx = 1\n```\n```python\n1 / 0\n```", name="b")
    with pytest.raises(hooks.ExecutionError, match="exited 3"):
        hooks.execute_markdown("```console\n$ exit 3\n```", name="c")


def test_every_tutorial_is_executed_and_listed():
    names = {p.relative_to(DOCS).as_posix() for p in EXECUTED}
    assert len(names) >= 10, names
    nav = (ROOT / "mkdocs.yml").read_text()
    assert all(n in nav for n in names), names


@pytest.mark.parametrize("page", EXECUTED, ids=lambda p: p.stem)
def test_tutorial_runs(page, tmp_path):
    res = hooks.execute_markdown(
        page.read_text(), name=page.stem, workdir=tmp_path / "work", figure_dir=tmp_path
    )
    assert res.blocks >= 1
    if page.stem != "performance":
        assert res.figures, f"{page.name} drew no figure"
    assert 'title="output"' in res.markdown


def test_svg_assets_are_well_formed():
    """A malformed SVG shows as a broken image (seen once: a duplicate attribute)."""
    import xml.dom.minidom

    svgs = sorted((DOCS / "assets").glob("*.svg"))
    assert svgs
    for svg in svgs:
        xml.dom.minidom.parse(str(svg))
