"""Straight path and start image: closed forms recomputed by hand (torchcfm style)."""

from __future__ import annotations

import pytest
import torch

from fusionfm.io import InputError
from fusionfm.path import PathSample, StraightPath, start_image

SHAPES = [(4, 1, 16, 16), (3, 1, 7, 5), (8, 2)]


def _pair(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("t_value", [0.0, 0.25, 1.0])
def test_scalar_t_closed_form(shape: tuple[int, ...], t_value: float) -> None:
    x0, x1 = _pair(shape)
    ps = StraightPath().sample(x0, x1, t_value)
    assert isinstance(ps, PathSample)
    assert ps.t.shape == (shape[0],)
    assert torch.all(ps.t == t_value)
    torch.testing.assert_close(ps.x_t, (1 - t_value) * x0 + t_value * x1)
    assert torch.equal(ps.dx_t, x1 - x0)


@pytest.mark.parametrize("shape", SHAPES)
def test_per_sample_t_closed_form(shape: tuple[int, ...]) -> None:
    x0, x1 = _pair(shape, seed=1)
    t = torch.rand(shape[0], generator=torch.Generator().manual_seed(2))
    ps = StraightPath().sample(x0, x1, t)
    for i in range(shape[0]):  # per-sample recomputation, no broadcasting
        ti = float(t[i])
        torch.testing.assert_close(ps.x_t[i], (1 - ti) * x0[i] + ti * x1[i])
        assert torch.equal(ps.dx_t[i], x1[i] - x0[i])
    assert torch.equal(ps.t, t)


def test_endpoints_and_velocity_is_derivative() -> None:
    x0, x1 = _pair((2, 1, 4, 4))
    path = StraightPath()
    assert torch.equal(path.sample(x0, x1, 0.0).x_t, x0)
    torch.testing.assert_close(path.sample(x0, x1, 1.0).x_t, x1)
    h = 1e-3
    a, b = path.sample(x0, x1, 0.4).x_t, path.sample(x0, x1, 0.4 + h).x_t
    torch.testing.assert_close((b - a) / h, path.sample(x0, x1, 0.4).dx_t, atol=1e-3, rtol=1e-3)


def test_shape_errors() -> None:
    x0, x1 = _pair((2, 1, 4, 4))
    with pytest.raises(InputError):
        StraightPath().sample(x0, x1[:1], 0.5)
    with pytest.raises(InputError):
        StraightPath().sample(x0, x1, torch.rand(3))


def test_start_modes() -> None:
    ya, yb = _pair((2, 1, 5, 6), seed=3)
    torch.testing.assert_close(start_image(ya, yb, "mean"), (ya + yb) / 2)
    assert torch.equal(start_image(ya, yb, "max"), torch.where(ya > yb, ya, yb))
    assert torch.equal(start_image(ya, yb, "a"), ya)
    assert torch.equal(start_image(ya, yb, "b"), yb)
    with pytest.raises(InputError):
        start_image(ya, yb, "min")
    with pytest.raises(InputError):
        start_image(ya, yb, "mean", noise_sigma=-1.0)


def test_start_noise_seeded() -> None:
    ya, yb = _pair((2, 1, 32, 32), seed=4)
    a = start_image(ya, yb, "mean", 0.1, torch.Generator().manual_seed(5))
    b = start_image(ya, yb, "mean", 0.1, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    noise = a - (ya + yb) / 2
    expected = 0.1 * torch.randn(ya.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(noise, expected)
