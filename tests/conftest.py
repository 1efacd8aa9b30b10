"""Shared fixtures. x64 is NOT enabled globally: float32 is kuralab's default and must be
tested as such; tests that need float64 use the `x64` fixture."""

import itertools
import subprocess
import sys
from pathlib import Path

import jax
import pytest

try:  # load distributed's config defaults before any test's dask.config.set: leaving
    # a `set` that created the "distributed" section deletes the whole section, and a
    # later netCDF write (xarray asks distributed for a client) fails with KeyError
    import distributed  # noqa: F401
except ImportError:  # pragma: no cover - dask is a dependency
    pass

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def getkey():
    """A fresh, deterministic PRNG key on every call."""
    counter = itertools.count()
    return lambda: jax.random.key(next(counter))


@pytest.fixture
def x64():
    """Run the test body with 64-bit floats."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def run_script():
    """`run_script(path, *args) -> stdout`: run a study or analysis script with this
    interpreter from the repository root; a non-zero exit fails the test with the end
    of its output."""

    def run(*args):
        out = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        return out.stdout

    return run
