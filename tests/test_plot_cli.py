"""`kuralab plot` and `kl.plot.plot_study` (issue 19): --var/--x/--hue, per-kind
defaults, the kl.theory overlay, legends outside the data, and image formats that
match the bytes written."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import kuralab as kl  # noqa: E402
from kuralab.cli import main  # noqa: E402
from kuralab.study import parse_spec, run_study  # noqa: E402

RAMP = """
[study]
name = "ramp"

[model]
kind = "kuramoto"
n = 16

[model.frequencies]
distribution = "lorentzian"
scale = 0.5

[model.coupling]
kind = "mean_field"

[sweep]
K = [0.5, 1.5, 3.0]
seeds = 2
mode = "adiabatic"

[solve]
t1 = 2.0
dt = 0.1
save_every = 2
"""

MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF", ".svg": b"<?xml"}


@pytest.fixture(scope="module")
def ramp(tmp_path_factory):
    out = tmp_path_factory.mktemp("plot") / "ramp.nc"
    run_study(parse_spec(RAMP), out, progress=False, compile_cache=False)
    return out


def _lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_kl_plot_is_an_attribute():
    assert kl.plot.plot_study is kl.plot.__dict__["plot_study"]
    assert "plot" in dir(kl)


def test_adiabatic_default_two_labelled_lines_and_theory(ramp):
    ds = kl.io.load(ramp)
    ax = kl.plot.plot_study(ds)
    labels = [line.get_label() for line in _lines(ax)]
    assert labels[:2] == ["direction = up", "direction = down"]
    assert "R_inf(K)" in ax.kuralab_theory and "K_c" in ax.kuralab_theory
    assert ax.get_xlabel() == "coupling strength K [rad/time]"
    assert ax.get_ylim() == (0.0, 1.05)
    # The theory curve is kl.theory's R(K) = sqrt(1 - 2 gamma / K) above K_c = 1.
    theory = next(line for line in ax.get_lines() if "theory" in line.get_label())
    k, r = theory.get_data()
    np.testing.assert_allclose(r, np.sqrt(np.clip(1 - 1.0 / k, 0, None)), atol=1e-5)
    legend = ax.get_legend()
    assert legend is not None and legend.get_bbox_to_anchor() is not None
    plt.close("all")


@pytest.mark.parametrize("ext", sorted(MAGIC))
def test_cli_formats_match_the_bytes(ramp, tmp_path, capsys, ext):
    out = tmp_path / f"p{ext}"
    assert main(["plot", str(ramp), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_bytes().startswith(MAGIC[ext])


def test_cli_var_x_hue(ramp, tmp_path, capsys):
    out = tmp_path / "p.png"
    argv = ["plot", str(ramp), "--out", str(out), "--var", "R_std", "--hue", "seed",
            "--x", "K", "--no-theory"]
    assert main(argv) == 0
    assert out.exists()
    capsys.readouterr()
    assert main(["plot", str(ramp), "--out", str(out), "--var", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--var nope" in err and "R_std" in err
    assert main(["plot", str(ramp), "--out", str(out), "--x", "time"]) == 2
    assert "--x time" in capsys.readouterr().err


def _fake(dims, attrs, var="R", value=0.5):
    coords = {d: np.arange(1, size + 1, dtype=float) for d, size in dims.items()}
    data = np.full(tuple(dims.values()), value)
    return xr.Dataset({var: (tuple(dims), data)}, coords=coords, attrs=attrs)


def test_delay_default_is_omega_with_theory_branches():
    ds = _fake({"tau": 4, "seed": 2}, dict(model="kuramoto", delays="uniform",
                                          distribution="identical", loc=1.0, K=1.0),
               var="Omega", value=1.0)
    ds["R"] = ds["Omega"] * 0 + 0.999
    ax = kl.plot.plot_study(ds)
    assert ax.get_ylabel().startswith("Omega")
    assert ax.kuralab_theory == ["delayed_sync_frequencies"]
    # no offset axis: float32 noise around R ~ 1 must not look like a dip
    assert not ax.yaxis.get_major_formatter().get_useOffset()
    plt.close("all")


def test_size_sweep_hue_n_legend_outside():
    ds = _fake({"n": 3, "K": 5, "seed": 2}, dict(model="kuramoto"))
    ax = kl.plot.plot_study(ds)
    labels = [line.get_label() for line in _lines(ax)]
    assert labels == ["n = 1.0", "n = 2.0", "n = 3.0"]
    assert ax.get_xlabel() == "K"
    anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    assert anchor.x0 > 1.0  # to the right of the axes, not over the data
    plt.close("all")
