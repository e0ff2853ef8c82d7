"""Euler and Heun: exactness on fields they integrate exactly, and their order of accuracy."""

from __future__ import annotations

import math

import pytest
import torch

from fusionfm.io import InputError
from fusionfm.solver import euler, heun, sample, time_grid


def _x(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 1, 6, 5, generator=g, dtype=torch.float64), torch.rand(
        3, 1, 6, 5, generator=g, dtype=torch.float64
    )


def test_time_grid_uniform() -> None:
    grid = time_grid(4, torch.zeros(1))
    assert grid.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("method", [euler, heun])
@pytest.mark.parametrize("steps", [1, 3, 8])
def test_constant_field_lands_on_x1(method, steps: int) -> None:
    x0, x1 = _x()

    def v(x, t, target):
        assert t.shape == (x.shape[0],)
        return target - x0  # the straight-path velocity, constant in x and t

    torch.testing.assert_close(method(v, x0, steps, target=x1), x1, rtol=0, atol=1e-12)


def test_euler_one_step_exact() -> None:
    x0, x1 = _x(1)
    out = euler(lambda x, t: x1 - x0, x0, 1)
    assert torch.equal(out, x0 + 1.0 * (x1 - x0))


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_heun_exact_for_linear_in_t(steps: int) -> None:
    x0, _ = _x(2)
    a, b = 0.7, -1.3

    def v(x, t):  # dx/dt = a + b t  =>  x(1) = x0 + a + b / 2
        return torch.ones_like(x) * (a + b * t.reshape(-1, 1, 1, 1))

    torch.testing.assert_close(heun(v, x0, steps), x0 + a + b / 2, rtol=0, atol=1e-12)
    # Euler is not exact here: its left Riemann sum misses b / (2 * steps).
    torch.testing.assert_close(euler(v, x0, steps), x0 + a + b / 2 - b / (2 * steps))


def test_orders_on_nonlinear_field() -> None:
    x0 = torch.full((2, 1, 3, 3), 0.5, dtype=torch.float64)
    exact = x0 * math.e  # dx/dt = x  =>  x(1) = x0 e

    def v(x, t):
        return x

    def err(method, steps: int) -> float:
        return float((method(v, x0, steps) - exact).abs().max())

    e_euler = [err(euler, s) for s in (2, 4, 8)]
    e_heun = [err(heun, s) for s in (2, 4, 8)]
    for coarse, fine in zip(e_euler, e_euler[1:], strict=False):
        assert 1.6 < coarse / fine < 2.4  # first order
    for coarse, fine in zip(e_heun, e_heun[1:], strict=False):
        assert 3.2 < coarse / fine < 4.8  # second order
    assert all(h < e for h, e in zip(e_heun, e_euler, strict=True))
    # closed forms: Euler gives (1 + 1/n)^n, Heun (1 + 1/n + 1/(2 n^2))^n
    n = 4
    torch.testing.assert_close(euler(v, x0, n), x0 * (1 + 1 / n) ** n)
    torch.testing.assert_close(heun(v, x0, n), x0 * (1 + 1 / n + 1 / (2 * n * n)) ** n)


def test_sample_dispatch_and_validation() -> None:
    x0, x1 = _x(3)

    class Model(torch.nn.Module):
        def forward(self, x, t, y_a, task):
            return y_a - x0

    m = Model()
    for method in ("euler", "heun"):
        out = sample(m, x0, {"y_a": x1, "task": None}, steps=2, method=method)
        torch.testing.assert_close(out, x1)
    for bad in (0, 9, 2.5, True):
        with pytest.raises(InputError):
            sample(m, x0, {"y_a": x1, "task": None}, steps=bad)
    with pytest.raises(InputError):
        sample(m, x0, {"y_a": x1, "task": None}, steps=2, method="rk4")


def test_sample_no_grad() -> None:
    x0, _ = _x(4)
    w = torch.ones((), dtype=torch.float64, requires_grad=True)
    out = sample(lambda x, t: w * x, x0, steps=1)
    assert not out.requires_grad
