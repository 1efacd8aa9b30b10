"""kl.learn.data.adding_task and rotating_shapes: the generators' contracts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kuralab.learn as L


def test_adding_task_markers_target_and_trivial_mse(getkey):
    x, y = L.data.adding_task(getkey(), 2000, 50)
    assert x.shape == (2000, 50, 2) and y.shape == (2000,)
    m = np.asarray(x[..., 1])
    assert set(np.unique(m)) == {0.0, 1.0}
    assert (m[:, :25].sum(1) == 1).all() and (m[:, 25:].sum(1) == 1).all()
    np.testing.assert_allclose(y, (x[..., 0] * x[..., 1]).sum(1), rtol=1e-6)
    u = np.asarray(x[..., 0])
    assert u.min() >= 0 and u.max() < 1
    # the trivial predictor (always 1) has MSE Var(u1 + u2) = 1/6
    assert float(jnp.mean((y - 1.0) ** 2)) == pytest.approx(1 / 6, abs=0.015)
    # odd lengths: the second half is the longer one
    x, _ = L.data.adding_task(getkey(), 500, 7)
    assert (np.asarray(x[:, :3, 1]).sum(1) == 1).all()


def test_rotating_shapes_period_direction_and_range(getkey):
    k = getkey()
    f = L.data.rotating_shapes(k, 6, frames=19, size=16)
    assert f.shape == (6, 19, 16, 16)
    assert float(f.min()) >= 0 and float(f.max()) <= 1 and float(f.max()) > 0.8
    np.testing.assert_allclose(f[:, 18], f[:, 0], atol=2e-4)  # one turn = 18 x 20 deg
    # no shape is symmetric under half a turn
    d = jnp.abs(f[:, 9] - f[:, 0]).sum((1, 2)) / jnp.abs(f[:, 0]).sum((1, 2))
    assert float(d.min()) > 0.2
    # 90-degree steps map the pixel grid onto itself: direction 1 is np.rot90 (counter-clockwise)
    g = L.data.rotating_shapes(k, 5, frames=2, step_deg=90.0, size=16)
    np.testing.assert_allclose(g[:, 1], np.rot90(np.asarray(g[:, 0]), 1, axes=(1, 2)), atol=1e-5)
    h = L.data.rotating_shapes(k, 5, frames=2, step_deg=90.0, size=16, direction=-1)
    np.testing.assert_allclose(h[:, 1], np.rot90(np.asarray(h[:, 0]), -1, axes=(1, 2)), atol=1e-5)
    # every kind appears; different keys give different sequences
    assert not np.allclose(L.data.rotating_shapes(getkey(), 6, frames=19, size=16), f)


@pytest.mark.parametrize(
    "fn, kwargs, match",
    [
        ("adding_task", dict(batch=0, length=10), "`batch` must be an int >= 1"),
        ("adding_task", dict(batch=4, length=1), "`length` must be an int >= 2"),
        ("rotating_shapes", dict(batch=2, shapes=("Q",)), "`shapes` must be a non-empty subset"),
        ("rotating_shapes", dict(batch=2, frames=0), "`frames` must be an int >= 1"),
        ("rotating_shapes", dict(batch=2, direction=2), "`direction` must be 1, -1 or 0"),
        ("rotating_shapes", dict(batch=2, scale=(0.0, 1.0)), "`scale` must be"),
    ],
)
def test_bad_data_arguments(fn, kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        getattr(L.data, fn)(jax.random.key(0), **kwargs)
    assert "\n" not in str(e.value)
