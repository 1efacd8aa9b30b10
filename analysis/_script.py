"""The command line shared by the study-figure scripts: `RESULT.nc [--out PNG]`.

Each script provides `summarise(path) -> s`, `figure(s) -> Figure` and `table(s) -> str`;
`figure_main` parses the arguments, writes the PNG atomically and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def figure_main(
    doc: str,
    example: str,
    summarise: Callable,
    figure: Callable,
    table: Callable,
    argv: list[str] | None = None,
) -> int:
    import matplotlib.pyplot as plt

    from kuralab.plot import save_figure

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("result", help=f"study result (netCDF), e.g. {example}")
    parser.add_argument("--out", help="output PNG (default: RESULT with .png)")
    args = parser.parse_args(argv)
    result = Path(args.result)
    if not result.exists():
        print(f"error: {result}: no such file", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else result.with_suffix(".png")
    s = summarise(result)
    fig = figure(s)
    save_figure(fig, out, dpi=150)
    plt.close(fig)
    print(table(s))
    print(f"wrote {out}")
    return 0
