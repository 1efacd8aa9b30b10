"""Shared fixtures. x64 is NOT enabled globally: float32 is kuralab's default and must be
tested as such; tests that need float64 use the `x64` fixture."""

import itertools

import jax
import pytest


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
