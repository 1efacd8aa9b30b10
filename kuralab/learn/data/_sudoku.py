r"""Sudoku boards and puzzles generated offline (AKOrN's Sudoku task, 4x4 and 9x9).

A board of size $s \in \{4, 9\}$ holds digits $1..s$ with every row, column and
$\sqrt s \times \sqrt s$ box a permutation; a puzzle blanks some cells (0 = blank).

- 4x4: all 288 valid boards are enumerated once; boards are drawn uniformly from them.
- 9x9: the canonical pattern board $(3 (r \bmod 3) + \lfloor r/3\rfloor + c) \bmod 9 + 1$
  under random validity-preserving symmetries (digit relabelling, rows within bands,
  bands, columns within stacks, stacks, transpose): valid, though not uniform over all
  $6.7\times10^{21}$ boards.

With `unique=True` (default) blanks are removed one cell at a time in random order,
skipping a cell whose removal would admit a second solution (4x4: checked against all 288
boards; 9x9: a bit-mask backtracking search that stops at two solutions), so every puzzle
has exactly its board as solution. 4x4 puzzles admit at most 12 blanks with a unique
solution; 9x9 at most 64.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int

from ..._custom_types import Key

SIZES = (4, 9)


def _box(size: int) -> int:
    return {4: 2, 9: 3}[size]


@functools.cache
def _all_4x4() -> np.ndarray:
    """The 288 valid 4x4 boards, `(288, 16)` int8."""
    perms = list(itertools.permutations(range(1, 5)))
    out = []

    def ok(rows):
        b = np.array(rows)
        for c in range(4):
            if len(set(b[:, c])) != len(b):
                return False
        if len(rows) % 2 == 0:
            r0 = len(rows) - 2
            for c0 in (0, 2):
                if len(set(b[r0 : r0 + 2, c0 : c0 + 2].ravel())) != 4:
                    return False
        return True

    def rec(rows):
        if len(rows) == 4:
            out.append(np.array(rows).ravel())
            return
        for p in perms:
            if ok(rows + [p]):
                rec(rows + [p])

    rec([])
    return np.array(out, np.int8)


def _board_9x9(rng: np.random.Generator) -> np.ndarray:
    r = np.arange(9)
    base = (3 * (r[:, None] % 3) + r[:, None] // 3 + r[None, :]) % 9
    digits = rng.permutation(9) + 1
    rows = np.concatenate([3 * b + rng.permutation(3) for b in rng.permutation(3)])
    cols = np.concatenate([3 * b + rng.permutation(3) for b in rng.permutation(3)])
    board = digits[base][rows][:, cols]
    return board.T.copy() if rng.random() < 0.5 else board


def _count_solutions(grid: np.ndarray, size: int, limit: int = 2) -> int:
    """Number of completions of `grid` (`(size*size,)`, 0 = blank), up to `limit`."""
    b = _box(size)
    full = (1 << (size + 1)) - 2
    cells = [int(v) for v in grid]
    rows, cols, boxes = [0] * size, [0] * size, [0] * size
    for i, v in enumerate(cells):
        if v:
            r, c = divmod(i, size)
            bit = 1 << v
            if rows[r] & bit or cols[c] & bit or boxes[(r // b) * b + c // b] & bit:
                return 0
            rows[r] |= bit
            cols[c] |= bit
            boxes[(r // b) * b + c // b] |= bit
    blanks = [i for i, v in enumerate(cells) if not v]

    def rec(todo):
        if not todo:
            return 1
        best, best_opts, best_n = None, 0, size + 1
        for i in todo:  # most constrained cell first
            r, c = divmod(i, size)
            opts = full & ~(rows[r] | cols[c] | boxes[(r // b) * b + c // b])
            k = bin(opts).count("1")
            if k < best_n:
                best, best_opts, best_n = i, opts, k
                if k <= 1:
                    break
        if best_n == 0:
            return 0
        r, c = divmod(best, size)
        bx = (r // b) * b + c // b
        rest = [i for i in todo if i != best]
        total = 0
        for v in range(1, size + 1):
            bit = 1 << v
            if best_opts & bit:
                rows[r] |= bit
                cols[c] |= bit
                boxes[bx] |= bit
                total += rec(rest)
                rows[r] ^= bit
                cols[c] ^= bit
                boxes[bx] ^= bit
                if total >= limit:
                    return total
        return total

    return rec(blanks)


def _unique(puzzle: np.ndarray, size: int) -> bool:
    if size == 4:
        boards = _all_4x4()
        given = puzzle != 0
        match = np.all((boards == puzzle) | ~given, axis=1)
        return int(match.sum()) == 1
    return _count_solutions(puzzle, size) == 1


def _blank_range(blanks, size: int) -> tuple[int, int]:
    n = size * size
    if isinstance(blanks, int | np.integer) and not isinstance(blanks, bool):
        lo = hi = int(blanks)
    elif isinstance(blanks, tuple | list) and len(blanks) == 2:
        lo, hi = int(blanks[0]), int(blanks[1])
    else:
        raise ValueError(f"`blanks` must be an int or a (low, high) pair; got {blanks!r}")
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"`blanks` must satisfy 0 <= low <= high <= {n}; got {blanks!r}")
    return lo, hi


def sudoku(
    key: Key,
    n_boards: int,
    size: int = 4,
    blanks: int | tuple[int, int] = 6,
    *,
    unique: bool = True,
) -> tuple[Int[Array, "boards size size"], Int[Array, "boards size size"]]:
    """Random Sudoku puzzles and their solutions.

    **Arguments:**

    - `key`: PRNG key (the generator is NumPy, seeded from it: same key, same puzzles).
    - `n_boards`: number of puzzles.
    - `size`: 4 or 9.
    - `blanks`: blank cells per puzzle, an int or an inclusive `(low, high)` range drawn
      uniformly per puzzle.
    - `unique`: only puzzles with a unique solution (default True; see the module docs;
      at most 12 blanks for 4x4, 64 for 9x9). (Keyword only.)

    **Returns:** `(puzzle, solution)`, int32 arrays `(n_boards, size, size)`; the
    puzzle has 0 on the blanks.
    """
    if size not in SIZES:
        raise ValueError(f"`size` must be 4 or 9; got {size!r}")
    if isinstance(n_boards, bool) or not isinstance(n_boards, int) or n_boards < 1:
        raise ValueError(f"`n_boards` must be a positive int; got {n_boards!r}")
    lo, hi = _blank_range(blanks, size)
    limit = 12 if size == 4 else 64
    if unique and hi > limit:
        raise ValueError(
            f"`blanks` up to {hi} cannot keep a unique solution on a {size}x{size} board "
            f"(at most {limit}); lower it or pass unique=False"
        )
    seed = np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64)
    rng = np.random.default_rng(seed)
    n = size * size
    puzzles = np.zeros((n_boards, n), np.int32)
    sols = np.zeros((n_boards, n), np.int32)
    for b in range(n_boards):
        while True:
            if size == 4:
                boards = _all_4x4()
                board = boards[rng.integers(len(boards))].astype(np.int32)
            else:
                board = _board_9x9(rng).ravel().astype(np.int32)
            target = int(rng.integers(lo, hi + 1))
            puzzle = board.copy()
            removed = 0
            for cell in rng.permutation(n):
                if removed == target:
                    break
                keep = puzzle[cell]
                puzzle[cell] = 0
                if unique and not _unique(puzzle, size):
                    puzzle[cell] = keep
                else:
                    removed += 1
            if removed == target:
                break
        puzzles[b], sols[b] = puzzle, board
    shape = (n_boards, size, size)
    return jnp.asarray(puzzles.reshape(shape)), jnp.asarray(sols.reshape(shape))


def sudoku_solved(
    board: Int[Array, "*batch size size"], puzzle: Int[Array, "*batch size size"]
) -> Bool[Array, "*batch"]:
    """Whether `board` is a valid solution of `puzzle`: every row, column and box holds
    each digit once and every given cell (puzzle != 0) is kept. Batches over leading
    axes; a correct board need not equal a stored solution when puzzles are not unique."""
    board, puzzle = jnp.asarray(board), jnp.asarray(puzzle)
    size = board.shape[-1]
    if size not in SIZES or board.shape[-2] != size or puzzle.shape != board.shape:
        raise ValueError(
            f"`board` and `puzzle` must have the same shape (..., s, s) with s in {SIZES}; "
            f"got {board.shape} and {puzzle.shape}"
        )
    b = _box(size)
    onehot = jax.nn.one_hot(board - 1, size, dtype=jnp.int32)  # (..., s, s, d)
    rows = jnp.all(onehot.sum(-2) == 1, axis=(-1, -2))
    cols = jnp.all(onehot.sum(-3) == 1, axis=(-1, -2))
    bx = onehot.reshape(board.shape[:-2] + (b, b, b, b, size)).sum((-4, -2))
    boxes = jnp.all(bx == 1, axis=(-1, -2, -3))
    kept = jnp.all((puzzle == 0) | (puzzle == board), axis=(-1, -2))
    return rows & cols & boxes & kept


def sudoku_mask(size: int) -> Bool[Array, "cells cells"]:
    """The constraint graph as an attention mask `(size^2, size^2)`: True where two cells
    share a row, column or box (the diagonal included)."""
    if size not in SIZES:
        raise ValueError(f"`size` must be 4 or 9; got {size!r}")
    b = _box(size)
    r, c = np.divmod(np.arange(size * size), size)
    box = (r // b) * b + c // b
    same = (r[:, None] == r) | (c[:, None] == c) | (box[:, None] == box)
    return jnp.asarray(same)
