"""kuralab.io: trajectory -> Dataset, netCDF round trips with provenance, atomic writes,
the `ds.kura` accessor."""

import datetime
import importlib.metadata
import pathlib
import subprocess
import sys

import equinox as eqx
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import netCDF4
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings

import kuralab as kl
from kuralab import _names
from kuralab.io import load, provenance_of, save

N = 6


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="module")
def model():
    omega = jnp.linspace(-1.0, 1.0, N)
    return kl.Kuramoto(omega, kl.MeanField(1.0))


@pytest.fixture(scope="module")
def traj(model):
    theta0 = kl.random_phases(jax.random.key(0), N)
    return kl.simulate(model, theta0, t1=1.0, dt=0.1)


@pytest.fixture(scope="module")
def batched(model):
    thetas = jax.vmap(lambda k: kl.random_phases(k, N))(
        jax.random.split(jax.random.key(1), 3)
    )
    return jax.vmap(lambda th: kl.simulate(model, th, t1=1.0, dt=0.1))(thetas)


def _expected(ds: xr.Dataset, loaded: xr.Dataset) -> xr.Dataset:
    """`ds` plus the provenance attributes that `save` wrote into `loaded`."""
    return ds.assign_attrs(provenance_of(loaded))


# ---------------------------------------------------------------------------------
# Hypothesis round trip
# ---------------------------------------------------------------------------------

_DTYPES = ["float32", "float64", "int32", "int64", "complex64", "complex128"]
_attr_keys = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6).map(
    lambda s: "a_" + s
)
_attr_values = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    hnp.arrays(np.float64, st.integers(2, 4), elements=st.floats(-1e6, 1e6)),
    hnp.arrays(np.int32, st.integers(2, 4)),
)
_attrs = st.dictionaries(_attr_keys, _attr_values, max_size=3)


def _elements(dtype):
    kind = np.dtype(dtype).kind
    width = np.dtype(dtype).itemsize * 8
    if kind == "f":
        return st.floats(width=width, allow_nan=True, allow_infinity=True)
    if kind == "c":
        return st.complex_numbers(width=width, allow_nan=True, allow_infinity=True)
    return None


@st.composite
def datasets(draw):
    sizes = {
        d: draw(st.integers(1, 4))
        for d in draw(st.lists(st.sampled_from(["time", "osc", "K"]), unique=True))
    }
    dims = list(sizes)
    variables = {}
    for name in draw(
        st.lists(
            st.sampled_from(["theta", "Z", "R", "x", "v_1"]), min_size=1, unique=True
        )
    ):
        vdims = (
            tuple(draw(st.lists(st.sampled_from(dims), unique=True))) if dims else ()
        )
        dtype = draw(st.sampled_from(_DTYPES))
        shape = tuple(sizes[d] for d in vdims)
        values = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
        attrs = draw(_attrs)
        if draw(st.booleans()):
            attrs |= {"units": "1", "long_name": f"variable {name}"}
        variables[name] = xr.Variable(vdims, values, attrs)
    coords = {}
    if "time" in sizes:
        t = draw(
            hnp.arrays(
                np.float64, sizes["time"], elements=st.floats(-1e3, 1e3), unique=True
            )
        )
        coords["time"] = xr.Variable(
            "time", np.sort(t), {"units": "1", "long_name": "time"}
        )
    if "osc" in sizes and draw(st.booleans()):
        coords["osc"] = np.arange(sizes["osc"])
    if "K" in sizes:
        coords["K"] = xr.Variable("K", np.linspace(0.0, 2.0, sizes["K"]), draw(_attrs))
        if draw(st.booleans()):  # a complex non-index coordinate
            coords["K_phase"] = (
                "K",
                np.exp(1j * np.arange(sizes["K"])).astype("complex64"),
            )
    return xr.Dataset(variables, coords=coords, attrs=draw(_attrs))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ds=datasets())
def test_roundtrip_identical(tmp_path, ds):
    path = save(ds, tmp_path / "roundtrip.nc")
    loaded = load(path)
    xr.testing.assert_identical(loaded, _expected(ds, loaded))
    for name, var in ds.variables.items():
        assert loaded[name].dtype == var.dtype, name
    assert set(provenance_of(loaded)) >= {"Conventions", "created", "kuralab_version"}


def test_complex_stored_as_two_real_variables(tmp_path):
    z = (np.arange(4) + 1j * np.arange(4, 8)).astype(np.complex64)
    ds = xr.Dataset({"Z": ("time", z, {"units": "1", "long_name": "order parameter"})})
    path = save(ds, tmp_path / "z.nc")
    with netCDF4.Dataset(path) as raw:
        assert "Z" not in raw.variables
        re, im = raw.variables["Z_real"], raw.variables["Z_imag"]
        assert re.dtype == np.float32 and im.dtype == np.float32
        assert re.getncattr(_names.COMPLEX_ATTR) == "real"
        assert im.getncattr(_names.COMPLEX_ATTR) == "imag"
        assert re.getncattr("long_name") == "order parameter"
        np.testing.assert_array_equal(re[:], z.real)
        np.testing.assert_array_equal(im[:], z.imag)
    loaded = load(path)
    assert loaded["Z"].dtype == np.complex64
    assert _names.COMPLEX_ATTR not in loaded["Z"].attrs
    xr.testing.assert_identical(loaded, _expected(ds, loaded))


def test_complex_name_clash_and_complex_index_rejected(tmp_path):
    ds = xr.Dataset({"Z": ("t", np.ones(2, complex)), "Z_real": ("t", np.ones(2))})
    with pytest.raises(ValueError, match="'Z_real'"):
        save(ds, tmp_path / "a.nc")
    ds = xr.Dataset(coords={"q": np.array([1j, 2j])})
    with pytest.raises(ValueError, match="dimension coordinate 'q' is complex"):
        save(ds, tmp_path / "b.nc")
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_malformed_complex_pair(tmp_path):
    attrs = {_names.COMPLEX_ATTR: "real"}
    xr.Dataset({"Z_real": ("t", np.ones(2), attrs)}).to_netcdf(
        tmp_path / "bad.nc", engine="netcdf4"
    )
    with pytest.raises(ValueError, match="no matching 'Z_imag'"):
        load(tmp_path / "bad.nc")


def test_load_plain_netcdf_file(tmp_path):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"title": "not from kuralab"})
    ds.to_netcdf(tmp_path / "plain.nc", engine="netcdf4")
    xr.testing.assert_identical(load(tmp_path / "plain.nc"), ds)


# ---------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------


def test_provenance_attrs(tmp_path):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"title": "t"})
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    loaded = load(
        save(ds, tmp_path / "p.nc", spec='[study]\nname = "x"\n', seeds=[3, 4])
    )
    after = datetime.datetime.now(datetime.UTC)
    attrs = loaded.attrs
    assert attrs["Conventions"] == "CF-1.11"
    assert attrs["jax_version"] == jax.__version__
    for dist in ("kuralab", "diffrax", "equinox"):
        assert attrs[f"{dist}_version"] == importlib.metadata.version(dist)
    assert attrs["kuralab_version"] == kl.__version__
    assert attrs["device"].startswith(jax.default_backend())
    created = datetime.datetime.fromisoformat(attrs["created"])
    assert created.tzinfo is not None and before <= created <= after
    assert attrs["spec"] == '[study]\nname = "x"\n'
    np.testing.assert_array_equal(attrs["seeds"], [3, 4])
    assert attrs["title"] == "t"
    pkg = pathlib.Path(kl.__file__).parent
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=pkg, capture_output=True, text=True
    )
    if head.returncode == 0 and (pkg.parent / ".git").exists():
        assert attrs["git_revision"].removesuffix("-dirty") == head.stdout.strip()


def test_source_date_epoch_gives_reproducible_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ds = xr.Dataset(
        {
            "theta": (
                ("time", "osc"),
                np.random.default_rng(0).random((5, 3), np.float32),
            )
        }
    )
    a = save(ds, tmp_path / "a.nc", seeds=7)
    b = save(ds, tmp_path / "b.nc", seeds=7)
    assert load(a).attrs["created"] == "2023-11-14T22:13:20Z"
    assert a.read_bytes() == b.read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
        save(ds, tmp_path / "c.nc")


def test_resave_updates_write_provenance_but_keeps_spec(tmp_path, monkeypatch):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    first = load(save(ds, tmp_path / "1.nc", spec="a = 1"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    second = load(save(first, tmp_path / "2.nc"))
    assert first.attrs["created"] == "1970-01-01T00:00:00Z"
    assert second.attrs["created"] == "1970-01-02T00:00:00Z"
    assert second.attrs["spec"] == "a = 1"
    third = load(
        save(first, tmp_path / "3.nc", spec="a = 2", extra_attrs={"note": "n"})
    )
    assert third.attrs["spec"] == "a = 2" and third.attrs["note"] == "n"


# ---------------------------------------------------------------------------------
# Atomic writes and errors
# ---------------------------------------------------------------------------------


def _failing_to_netcdf(self, path, *args, **kwargs):
    pathlib.Path(path).write_bytes(b"\x89HDF partial")
    raise OSError("disk full (simulated)")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    target = tmp_path / "sub" / "out.nc"
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _failing_to_netcdf)
    with pytest.raises(OSError, match="simulated"):
        save(ds, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []

    monkeypatch.undo()
    save(ds, target)
    original = target.read_bytes()
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _failing_to_netcdf)
    with pytest.raises(OSError, match="simulated"):
        save(ds * 2, target)
    assert target.read_bytes() == original
    assert [p.name for p in target.parent.iterdir()] == ["out.nc"]


def test_load_missing_file(tmp_path):
    missing = tmp_path / "nope" / "missing.nc"
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        load(missing)


@pytest.mark.parametrize(
    "where, value, match",
    [
        ("dataset", True, "attribute 'flag' of the Dataset.*bool"),
        ("variable", None, "attribute 'flag' of variable 'a'.*None"),
        ("dataset", {"k": 1}, "attribute 'flag' of the Dataset.*json.dumps"),
        ("variable", 1 + 2j, "attribute 'flag' of variable 'a'.*complex"),
    ],
)
def test_unstorable_attrs_rejected(tmp_path, where, value, match):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    if where == "dataset":
        ds.attrs["flag"] = value
    else:
        ds["a"].attrs["flag"] = value
    with pytest.raises(ValueError, match=match):
        save(ds, tmp_path / "bad.nc")
    assert list(tmp_path.iterdir()) == []


def test_bad_save_arguments(tmp_path):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    with pytest.raises(TypeError, match="`ds` must be an xarray.Dataset"):
        save(ds["a"], tmp_path / "a.nc")
    with pytest.raises(TypeError, match="`path`"):
        save(ds, 3)
    with pytest.raises(ValueError, match="provenance attribute.*'created'"):
        save(ds, tmp_path / "a.nc", extra_attrs={"created": "now"})
    with pytest.raises(TypeError, match="`seeds`"):
        save(ds, tmp_path / "a.nc", seeds=[0.5])
    with pytest.raises(TypeError, match="`spec`"):
        save(ds, tmp_path / "a.nc", spec={"a": 1})
    with pytest.raises(IsADirectoryError):
        save(ds, tmp_path)


# ---------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------


def _all_have_units(ds):
    for name, var in ds.variables.items():
        if name in ds.dims and name in (_names.OSC, _names.DIM):
            continue  # integer index coordinates
        assert "units" in var.attrs and "long_name" in var.attrs, name
        assert var.attrs["units"] not in ("s", "seconds", "days"), name


def test_trajectory_to_dataset(traj, model):
    ds = traj.to_dataset()
    assert dict(ds.sizes) == {"time": 11, "osc": N}
    assert ds["theta"].dims == ("time", "osc") and ds["turns"].dims == ("time", "osc")
    assert ds["time"].attrs["units"] == "1"
    assert ds["theta"].attrs["units"] == "rad"
    np.testing.assert_array_equal(ds["time"], traj.ts)
    np.testing.assert_array_equal(ds["osc"], np.arange(N))
    np.testing.assert_array_equal(ds["theta"], traj.ys)
    np.testing.assert_array_equal(ds["turns"], traj.turns)
    np.testing.assert_array_equal(ds["omega"], model.omega)
    assert ds["omega"].dims == ("osc",)
    theta = ds["theta"].values
    assert np.all((theta >= -np.pi) & (theta < np.pi))
    _all_have_units(ds)
    assert ds.attrs["model"] == "Kuramoto" and ds.attrs["coupling"] == "MeanField"
    assert ds.attrs["solver"] == "rk4" and ds.attrs["result"] == "successful"
    assert (ds.attrs["t0"], ds.attrs["t1"]) == (0.0, 1.0)
    np.testing.assert_allclose(ds.attrs["dt"], 0.1)


def test_trajectory_roundtrip(tmp_path, traj):
    ds = traj.to_dataset()
    loaded = load(save(ds, tmp_path / "traj.nc"))
    xr.testing.assert_identical(loaded, _expected(ds, loaded))


def test_batched_trajectory(batched):
    ds = batched.to_dataset(batch_dims=("seed",))
    assert ds["theta"].dims == ("seed", "time", "osc")
    assert dict(ds.sizes) == {"seed": 3, "time": 11, "osc": N}
    # omega is the same for every seed: stored once.
    assert ds["omega"].dims == ("osc",)
    np.testing.assert_array_equal(ds["theta"], batched.ys)
    assert batched.to_dataset()["theta"].dims == ("batch0", "time", "osc")
    with pytest.raises(ValueError, match="names 2 dimension.*1 leading batch axis"):
        batched.to_dataset(batch_dims=("seed", "K"))
    with pytest.raises(TypeError, match=r"e\.g\. \('seed',\)"):
        batched.to_dataset(batch_dims="seed")
    with pytest.raises(ValueError, match="may not reuse"):
        batched.to_dataset(batch_dims=("time",))


def test_batched_over_omega_and_failures(batched):
    # Under vmap every model leaf gains the batch axis; an omega that differs is kept.
    omegas = jnp.stack([jnp.zeros(N), jnp.linspace(0.0, 1.0, N), jnp.ones(N)])
    varied = eqx.tree_at(lambda t: t.model.omega, batched, omegas)
    ds = varied.to_dataset(("omega_set",))
    assert ds["omega"].dims == ("omega_set", "osc")
    np.testing.assert_array_equal(ds["omega"], omegas)

    result = jax.vmap(
        lambda ok: kl.RESULTS.where(
            ok, kl.RESULTS.successful, kl.RESULTS.nonfinite_state
        )
    )(jnp.array([True, False, False]))
    failed = eqx.tree_at(lambda t: t.result, batched, result)
    summary = failed.to_dataset(("seed",)).attrs["result"]
    assert summary.startswith("2 of 3 runs failed: The state became non-finite")


def test_batched_different_times_rejected(batched):
    ts = np.array(batched.ts)
    ts[1] += 0.5
    shifted = eqx.tree_at(lambda t: t.ts, batched, jnp.asarray(ts))
    with pytest.raises(ValueError, match="different times"):
        shifted.to_dataset(("seed",))


def _observe(t, y):
    return {
        "Z": jnp.mean(jnp.exp(1j * y)),
        "phasor": jnp.stack([jnp.cos(y), jnp.sin(y)]),
    }


def test_saveat_fn_outputs(tmp_path, model):
    theta0 = jnp.linspace(-1.0, 1.0, N)
    traj = kl.simulate(
        model,
        theta0,
        t1=1.0,
        dt=0.1,
        solver="euler",
        saveat=kl.SaveAt(every=1, fn=_observe),
    )
    ds = traj.to_dataset()
    assert ds["Z"].dims == ("time",) and ds["Z"].dtype == np.complex64
    assert ds["phasor"].dims == ("time", "phasor_dim0", "phasor_dim1")
    assert "theta" not in ds and ds["omega"].dims == ("osc",)
    assert ds["Z"].attrs["units"] == "1"
    _all_have_units(ds)
    loaded = load(save(ds, tmp_path / "fn.nc"))
    xr.testing.assert_identical(loaded, _expected(ds, loaded))
    xr.testing.assert_identical(
        ds.kura.R(),
        np.abs(ds["Z"])
        .rename("R")
        .assign_attrs(units="1", long_name=_names.UNITS["R"][1]),
    )

    bare = eqx.tree_at(lambda t: t.ys, traj, traj.ys["phasor"][:, 0, 0])
    ds = bare.to_dataset()
    assert ds["observable"].dims == ("time",)
    np.testing.assert_array_equal(ds["observable"], traj.ys["phasor"][:, 0, 0])


class _Spin(kl.AbstractSphereModel):
    """Test-only sphere model: each unit vector rotates about the z axis at omega_i."""

    omega: jax.Array

    @property
    def state_shape(self):
        return (self.omega.shape[0], 3)

    def drift(self, t, y, y_delayed=None):
        w = self.omega[:, None]
        return jnp.stack(
            [-w[:, 0] * y[:, 1], w[:, 0] * y[:, 0], jnp.zeros_like(y[:, 0])], -1
        )

    def diffusion(self, t, y):
        return None

    @property
    def sender_delays(self):
        return None


def test_sphere_trajectory(tmp_path):
    x0 = jnp.tile(jnp.array([1.0, 0.0, 0.0]), (4, 1))
    traj = kl.simulate(_Spin(jnp.arange(4.0)), x0, t1=0.5, dt=0.1, solver="euler")
    ds = traj.to_dataset()
    assert ds["x"].dims == ("time", "osc", "dim")
    assert dict(ds.sizes) == {"time": 6, "osc": 4, "dim": 3}
    assert ds.attrs["model"] == "_Spin" and "coupling" not in ds.attrs
    _all_have_units(ds)
    loaded = load(save(ds, tmp_path / "sphere.nc"))
    xr.testing.assert_identical(loaded, _expected(ds, loaded))


# ---------------------------------------------------------------------------------
# Accessor
# ---------------------------------------------------------------------------------


def test_accessor_order_parameter(batched):
    ds = batched.to_dataset(("seed",))
    theta = np.asarray(batched.ys, dtype=np.float64)
    for moment in (1, 2):
        z = ds.kura.order_parameter(moment)
        assert z.dims == ("seed", "time") and z.dtype == np.complex64
        np.testing.assert_allclose(
            z.values, np.exp(1j * moment * theta).mean(axis=-1), rtol=1e-6, atol=1e-6
        )
    np.testing.assert_allclose(
        ds.kura.R().values, np.abs(np.exp(1j * theta).mean(-1)), rtol=1e-6, atol=1e-6
    )
    assert ds.kura.R().attrs["units"] == "1"
    np.testing.assert_allclose(
        ds.kura.unwrapped().values,
        theta + 2 * np.pi * np.asarray(batched.turns, np.float64),
    )
    with pytest.raises(TypeError, match="`moment`"):
        ds.kura.order_parameter(0.5)
    with pytest.raises(ValueError, match="needs a 'theta'"):
        ds[["omega"]].kura.order_parameter()


def test_accessor_plot(traj, batched):
    import matplotlib.axes

    ax = traj.to_dataset().kura.plot()
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.lines) == 1
    ax = batched.to_dataset(("seed",)).kura.plot()
    assert len(ax.lines) == 3

    sweep = xr.Dataset(
        {"R": (("K", "seed"), np.random.default_rng(0).random((4, 3)), {"units": "1"})},
        coords={
            "K": ("K", [0.5, 1.0, 1.5, 2.0], {"units": "1", "long_name": "coupling"})
        },
    )
    ax = sweep.kura.plot()
    assert isinstance(ax, matplotlib.axes.Axes)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), sweep["R"].mean("seed"))
    assert ax.get_xlabel() == "coupling"
    with pytest.raises(ValueError, match="kura.plot"):
        xr.Dataset({"a": ("x", [1.0])}).kura.plot()
