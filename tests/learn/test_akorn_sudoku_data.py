"""kl.learn.data.sudoku: valid boards, exact blank counts, unique solutions, determinism;
sudoku_solved and sudoku_mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab.learn as L
from kuralab.learn.data._sudoku import _all_4x4, _count_solutions


def _valid(board, size):
    b = int(np.sqrt(size))
    want = set(range(1, size + 1))
    rows = all(set(r) == want for r in board)
    cols = all(set(c) == want for c in board.T)
    boxes = all(set(board[i:i + b, j:j + b].ravel()) == want
                for i in range(0, size, b) for j in range(0, size, b))
    return rows and cols and boxes


def test_all_4x4_boards_enumerated():
    boards = _all_4x4()
    assert boards.shape == (288, 16)  # the known count of 4x4 Sudoku grids
    assert len({b.tobytes() for b in boards}) == 288
    assert all(_valid(b.reshape(4, 4), 4) for b in boards)


@pytest.mark.parametrize("size, blanks", [(4, (4, 8)), (4, 12), (9, 40)])
def test_puzzles_valid_unique_with_the_requested_blanks(size, blanks):
    p, s = L.data.sudoku(jax.random.key(0), 12 if size == 4 else 3, size, blanks)
    p, s = np.asarray(p), np.asarray(s)
    nb = (p == 0).sum((1, 2))
    lo, hi = (blanks, blanks) if isinstance(blanks, int) else blanks
    assert nb.min() >= lo and nb.max() <= hi
    for pz, sol in zip(p, s, strict=True):
        assert _valid(sol, size)
        assert np.all((pz == 0) | (pz == sol))
        assert _count_solutions(pz.ravel(), size) == 1
    assert bool(jnp.all(L.data.sudoku_solved(s, p)))
    p2, _ = L.data.sudoku(jax.random.key(0), p.shape[0], size, blanks)
    np.testing.assert_array_equal(p2, p)


def test_sudoku_solved_rejects_invalid_or_changed_boards():
    p, s = L.data.sudoku(jax.random.key(1), 4, 4, 6)
    bad = s.at[:, 0, 0].set(s[:, 0, 1])  # duplicate in row 0
    assert not bool(jnp.any(L.data.sudoku_solved(bad, p)))
    # a different valid board that does not keep the givens
    other = jnp.asarray(_all_4x4()[0].reshape(4, 4))
    keep = L.data.sudoku_solved(jnp.broadcast_to(other, s.shape), p)
    ok = np.all((np.asarray(p) == 0) | (np.asarray(p) == np.asarray(other)), axis=(1, 2))
    np.testing.assert_array_equal(keep, ok)


def test_sudoku_mask_and_bad_input():
    m = np.asarray(L.data.sudoku_mask(4))
    assert m.shape == (16, 16) and m.diagonal().all() and (m == m.T).all()
    assert m.sum(1).tolist() == [8] * 16  # self + 3 row + 3 col + 1 more in the box
    with pytest.raises(ValueError, match="`size` must be 4 or 9"):
        L.data.sudoku(jax.random.key(0), 2, 6)
    with pytest.raises(ValueError, match="unique solution"):
        L.data.sudoku(jax.random.key(0), 2, 4, 13)
    with pytest.raises(ValueError, match="`blanks`"):
        L.data.sudoku(jax.random.key(0), 2, 4, (8, 4))
