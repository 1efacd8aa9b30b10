"""Models: one dynamical system each (no hidden batch axis)."""
