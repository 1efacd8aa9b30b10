"""mkdocs hooks for the kuralab site (mkdocs.yml `hooks:`), and the tutorial runner.

1. **Executed pages.** A page whose front matter says `execute: true` is run while the
   site builds: its fenced code blocks run in order, in one namespace per page and in a
   fresh working directory, and what they print and draw goes into the page.

   - ```` ```python ````: executed; its stdout/stderr is shown below it, and every
     matplotlib figure still open afterwards is saved as a PNG next to the page's HTML
     and shown (then closed).
   - ```` ```console ````: each line starting with `$ ` is run by bash; the lines after
     it in the source are replaced by what the command printed. A command that exits
     non-zero fails the build. `kuralab` and `python` are this interpreter's.
   - ```` ```toml file=NAME ```` (any language): the block is written to NAME in the
     working directory before the next block runs, and shown with NAME as its title.
   - `no-exec` after the language: shown, not run.

   An exception in a block fails the build with the page, the block number and the
   traceback. `tests/test_docs.py` runs the same `execute_markdown` on every executed
   page, so a broken example also fails the (slow) tests.

2. **MathJax offline.** `on_post_build` copies MathJax 3 (`tex-svg.js`, which typesets
   TeX to SVG with its glyphs inside the script, so it also works from `file://` where a
   browser refuses web fonts; its TeX extensions and menu) from the
   `django-static-mathjax` wheel (Apache-2.0, a `docs` extra) into `site/assets/mathjax/`.
   Nothing is fetched from the web.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,})(?P<info>[^`\n]*)$")


class ExecutionError(RuntimeError):
    """A tutorial block raised or a command failed."""


@dataclass
class Result:
    """What running one page produced."""

    markdown: str
    figures: list[Path] = field(default_factory=list)
    blocks: int = 0
    seconds: float = 0.0


@dataclass
class _Block:
    lang: str
    flags: set[str]
    attrs: dict[str, str]
    body: str
    start: int
    end: int  # index after the closing fence line
    indent: str
    fence: str


def _parse_info(info: str) -> tuple[str, set[str], dict[str, str]]:
    words = shlex.split(info.strip()) if info.strip() else []
    lang = words[0] if words else ""
    flags, attrs = set(), {}
    for w in words[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            attrs[k] = v
        else:
            flags.add(w)
    return lang, flags, attrs


def blocks(markdown: str) -> list[_Block]:
    """The fenced code blocks of a Markdown page, in order (nested fences are not used)."""
    lines = markdown.split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent = m["fence"], m["indent"]
        lang, flags, attrs = _parse_info(m["info"])
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        if j == len(lines):
            raise ExecutionError(f"unclosed code fence at line {i + 1}")
        body = "\n".join(ln[len(indent) :] for ln in lines[i + 1 : j])
        out.append(_Block(lang, flags, attrs, body, i, j + 1, indent, fence))
        i = j + 1
    return out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["MPLBACKEND"] = "Agg"
    env.setdefault("COLUMNS", "100")
    return env


def _run_console(body: str, workdir: Path, where: str) -> str:
    shown = []
    commands = [ln[2:] for ln in body.split("\n") if ln.startswith("$ ")]
    for cmd in commands:
        proc = subprocess.run(
            ["bash", "-c", cmd],
            cwd=workdir,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            raise ExecutionError(
                f"{where}: `{cmd}` exited {proc.returncode}:\n{proc.stdout}"
            )
        shown.append("$ " + cmd)
        text = proc.stdout.rstrip("\n")
        if text:
            shown.append(text)
    return "\n".join(shown)


def _save_figures(figure_dir: Path | None, stem: str, start: int) -> list[Path]:
    if "matplotlib.pyplot" not in sys.modules:
        return []
    import matplotlib.pyplot as plt

    saved = []
    for k, num in enumerate(plt.get_fignums()):
        fig = plt.figure(num)
        if figure_dir is not None:
            figure_dir.mkdir(parents=True, exist_ok=True)
            path = figure_dir / f"{stem}-{start + k}.png"
            fig.savefig(path, dpi=110, bbox_inches="tight")
            saved.append(path)
        plt.close(fig)
    return saved


def execute_markdown(
    markdown: str,
    *,
    name: str = "page",
    workdir: Path | None = None,
    figure_dir: Path | None = None,
) -> Result:
    """Run every executable block of `markdown`; return the page with the outputs.

    - `name`: used in error messages and figure file names (`<name>-<k>.png`).
    - `workdir`: the working directory of the blocks (default: a new temporary one).
    - `figure_dir`: where figures are saved (default: not saved, only closed).
    """
    import matplotlib

    matplotlib.use("Agg")
    t_start = time.perf_counter()
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"kuralab-docs-{name}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    lines = markdown.split("\n")
    namespace: dict = {"__name__": "__main__"}
    pieces: list[str] = []
    figures: list[Path] = []
    cursor, executed = 0, 0
    old_cwd, old_env = os.getcwd(), dict(os.environ)
    import jax

    x64 = bool(jax.config.jax_enable_x64)  # a page may turn float64 on for itself
    os.chdir(workdir)
    os.environ.update({k: v for k, v in _env().items() if k in ("MPLBACKEND",)})
    try:
        for n, b in enumerate(blocks(markdown), start=1):
            pieces.append("\n".join(lines[cursor : b.start]))
            cursor = b.end
            where = f"{name}, block {n} (line {b.start + 1})"
            title = f' title="{b.attrs["file"]}"' if "file" in b.attrs else ""
            fence_open = f"{b.indent}{b.fence}{b.lang}{title}"
            shown_body = b.body
            extra: list[str] = []
            if "file" in b.attrs and "no-exec" not in b.flags:
                (workdir / b.attrs["file"]).write_text(b.body + "\n")
            elif b.lang == "python" and "no-exec" not in b.flags:
                buf = io.StringIO()
                try:
                    code = compile(b.body, f"<{where}>", "exec")
                    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                        exec(code, namespace)
                except Exception as exc:
                    raise ExecutionError(
                        f"{where} raised:\n{traceback.format_exc()}\n"
                        f"output so far:\n{buf.getvalue()}"
                    ) from exc
                executed += 1
                output = buf.getvalue().rstrip("\n")
                if output:
                    extra.append(f'{b.indent}{b.fence}text title="output"')
                    extra.extend(b.indent + ln for ln in output.split("\n"))
                    extra.append(b.indent + b.fence)
                new = _save_figures(figure_dir, name, len(figures) + 1)
                for path in new:
                    extra.append(
                        f'\n{b.indent}<figure class="kl-figure" markdown="0">'
                        f'<img src="{path.name}" alt="figure produced by this code">'
                        "</figure>\n"
                    )
                figures.extend(new)
            elif b.lang == "console" and "no-exec" not in b.flags:
                shown_body = _run_console(b.body, workdir, where)
                executed += 1
            shown = [fence_open, *(b.indent + ln for ln in shown_body.split("\n"))]
            shown.append(b.indent + b.fence)
            pieces.append("\n".join(shown + extra))
        pieces.append("\n".join(lines[cursor:]))
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        _save_figures(None, name, 0)  # close anything left open
        jax.config.update("jax_enable_x64", x64)
    return Result("\n".join(pieces), figures, executed, time.perf_counter() - t_start)


# ---------------------------------------------------------------------------------
# mkdocs hooks
# ---------------------------------------------------------------------------------

MATHJAX_PARTS = ("tex-svg.js", "input/tex/extensions", "ui", "a11y")


def on_page_markdown(markdown, page, config, files):
    if not page.meta.get("execute"):
        return markdown
    from mkdocs.exceptions import PluginError

    dest = Path(config["site_dir"]) / Path(page.file.dest_uri).parent
    name = Path(page.file.src_uri).stem
    try:
        result = execute_markdown(markdown, name=name, figure_dir=dest)
    except ExecutionError as exc:
        raise PluginError(f"docs/{page.file.src_uri}: {exc}") from None
    print(
        f"INFO    -  executed docs/{page.file.src_uri}: {result.blocks} blocks, "
        f"{len(result.figures)} figures, {result.seconds:.1f} s",
        flush=True,
    )
    return result.markdown


def on_post_build(config):
    from mkdocs.exceptions import PluginError

    try:
        import mathjax  # the django-static-mathjax wheel (docs extra)
    except ImportError:
        raise PluginError(
            "MathJax is missing: install the docs extra (pip install -e '.[docs]')"
        ) from None
    src = Path(mathjax.__file__).parent / "static" / "mathjax"
    dst = Path(config["site_dir"]) / "assets" / "mathjax"
    for part in MATHJAX_PARTS:
        s, d = src / "es5" / part, dst / part
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            shutil.copy2(s, d)
    shutil.copy2(src / "LICENSE", dst / "LICENSE")


if __name__ == "__main__":  # python docs/hooks.py PAGE.md [OUT_DIR]: run one page
    page = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    res = execute_markdown(page.read_text(), name=page.stem, figure_dir=out)
    if out is not None:
        (out / f"{page.stem}.md").write_text(res.markdown)
    print(res.markdown if out is None else f"wrote {out / page.stem}.md")
    print(f"{res.blocks} blocks, {len(res.figures)} figures, {res.seconds:.1f} s")
