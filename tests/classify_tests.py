"""Classify test functions: does each compare with theory or an independent computation?

    python tests/classify_tests.py [TESTS_DIR]     # default: this directory

A heuristic read of each `def test_*` body (pytest does not collect this file): it
counts as a comparison when it both asserts closeness or equality
(`assert_allclose`, `assert_phase_allclose`, `pytest.approx`, `assert_array_equal`,
xarray's `assert_identical`/`assert_equal`, or `abs(a - b) <` / `< tol`) and names a
reference: theory (`theory`, an `expected`/`exact`/`analytic`/closed form value),
an independent implementation (`reference`, `ref`, `direct`, SciPy, `expm`, NumPy
linear algebra, `brentq`, a finite difference `fd`) or a stated error budget
(`budget`, `standard error`, `stderr`, `se`, a `< c * np.sqrt(...)` bound). Prints the fraction and the functions
that do not qualify (bad-input, layout and plumbing tests mostly, as intended).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

COMPARE = re.compile(
    r"assert_allclose|assert_phase_allclose|pytest\.approx|assert_array_equal"
    r"|assert_identical|assert_equal\(|abs\(.*-.*\)\s*<|<\s*(tol|budget|\d+\s*\*)"
)
REFERENCE = re.compile(
    r"theory|scipy|expm|exact|expected|analytic|closed.form|reference|\bref\b|_ref\b"
    r"|direct|np\.linalg|brentq|\bfd\b|finite.difference|budget|standard error"
    r"|stderr|\bse\b|numpy|<\s*[\d.]*\s*\*?\s*np\.sqrt\(|\btheor",
    re.IGNORECASE,
)


def classify(directory: Path) -> tuple[list[str], list[str]]:
    yes, no = [], []
    for path in sorted(directory.glob("test_*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                body = ast.get_source_segment(text, node) or ""
                name = f"{path.name}::{node.name}"
                both = COMPARE.search(body) and REFERENCE.search(body)
                (yes if both else no).append(name)
    return yes, no


def main(argv: list[str]) -> int:
    directory = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent
    yes, no = classify(directory)
    total = len(yes) + len(no)
    for name in no:
        print("no ", name)
    print(f"{len(yes)} of {total} test functions compare with theory or an independent "
          f"computation: {len(yes) / total:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
