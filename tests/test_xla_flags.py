"""`import kuralab` sets XLA:CPU's 512-bit vector width only where it should
(kuralab/_xla_flags.py): the user's XLA_FLAGS and the opt-out always win."""

import kuralab._xla_flags as xf


def test_sets_flag_on_avx512_before_backend_start(monkeypatch):
    monkeypatch.setattr(xf, "_has_avx512", lambda: True)
    monkeypatch.setattr(xf, "_backends_initialised", lambda: False)
    env = {}
    assert xf.apply_default_xla_flags(env) is None
    assert env == {"XLA_FLAGS": "--xla_cpu_prefer_vector_width=512"}


def test_user_flags_opt_out_and_late_import_are_respected(monkeypatch):
    monkeypatch.setattr(xf, "_has_avx512", lambda: True)
    monkeypatch.setattr(xf, "_backends_initialised", lambda: False)
    user = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert xf.apply_default_xla_flags(user) == "XLA_FLAGS set by the user"
    assert user == {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    off = {"KURALAB_XLA_FLAGS": "0"}
    assert xf.apply_default_xla_flags(off) == "KURALAB_XLA_FLAGS=0"
    assert "XLA_FLAGS" not in off
    monkeypatch.setattr(xf, "_backends_initialised", lambda: True)
    late = {}
    assert xf.apply_default_xla_flags(late) == "JAX backends already initialised"
    assert late == {}
    monkeypatch.setattr(xf, "_has_avx512", lambda: False)
    assert xf.apply_default_xla_flags({}) == "no avx512f"


def test_cpuinfo_parser(tmp_path):
    with_avx = tmp_path / "a"
    with_avx.write_text("model name\t: X\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")
    without = tmp_path / "b"
    without.write_text("model name\t: Y\nflags\t\t: fpu sse avx2\n")
    assert xf._has_avx512(str(with_avx)) is True
    assert xf._has_avx512(str(without)) is False
    assert xf._has_avx512(str(tmp_path / "missing")) is False
