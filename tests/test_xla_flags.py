"""`import kuralab` sets XLA:CPU's 512-bit vector width only where it should
(kuralab/_xla_flags.py): the user's XLA_FLAGS and the opt-out always win."""

import kuralab._xla_flags as xf


def test_sets_flag_on_avx512_before_backend_start(monkeypatch):
    monkeypatch.setattr(xf, "_has_avx512", lambda: True)
    monkeypatch.setattr(xf, "_backends_initialised", lambda: False)
    env = {"KURALAB_XLA_FLAGS": "1"}
    assert xf.apply_default_xla_flags(env) is None
    assert env["XLA_FLAGS"] == "--xla_cpu_prefer_vector_width=512"
    default = {}  # off by default: the flag miscompiles jnp.arctan
    assert "not 1" in xf.apply_default_xla_flags(default)
    assert "XLA_FLAGS" not in default


def test_user_flags_opt_out_and_late_import_are_respected(monkeypatch):
    monkeypatch.setattr(xf, "_has_avx512", lambda: True)
    monkeypatch.setattr(xf, "_backends_initialised", lambda: False)
    user = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "KURALAB_XLA_FLAGS": "1"}
    assert xf.apply_default_xla_flags(user) == "XLA_FLAGS set by the user"
    assert user["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2"
    off = {"KURALAB_XLA_FLAGS": "0"}
    assert "not 1" in xf.apply_default_xla_flags(off)
    assert "XLA_FLAGS" not in off
    monkeypatch.setattr(xf, "_backends_initialised", lambda: True)
    late = {"KURALAB_XLA_FLAGS": "1"}
    assert xf.apply_default_xla_flags(late) == "JAX backends already initialised"
    assert "XLA_FLAGS" not in late
    monkeypatch.setattr(xf, "_has_avx512", lambda: False)
    assert xf.apply_default_xla_flags({"KURALAB_XLA_FLAGS": "1"}) == "no avx512f"


def test_default_import_keeps_arctan_right():
    # the reason the flag is opt-in: under it jnp.arctan(1e4-ish) was off by ~pi/2
    import jax.numpy as jnp
    import numpy as np

    import kuralab

    y = np.linspace(-1e4, 1e4, 4097, dtype=np.float32)
    err = np.abs(np.asarray(jnp.arctan(jnp.asarray(y))) - np.arctan(y.astype(np.float64)))
    assert kuralab._XLA_FLAGS_NOT_SET is not None or "XLA_FLAGS" in __import__("os").environ
    assert err.max() < 1e-6, err.max()


def test_cpuinfo_parser(tmp_path):
    with_avx = tmp_path / "a"
    with_avx.write_text("model name\t: X\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")
    without = tmp_path / "b"
    without.write_text("model name\t: Y\nflags\t\t: fpu sse avx2\n")
    assert xf._has_avx512(str(with_avx)) is True
    assert xf._has_avx512(str(without)) is False
    assert xf._has_avx512(str(tmp_path / "missing")) is False
