"""Flow-matching loss: zero at the target, equal to a hand-computed MSE; the endpoint gradient loss."""

from __future__ import annotations

import pytest
import torch

from fusionfm.io import InputError
from fusionfm.loss import endpoint_gradient_loss, flow_matching_loss
from fusionfm.path import StraightPath


def _sample():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.rand(4, 1, 8, 8, generator=g), torch.rand(4, 1, 8, 8, generator=g)
    return StraightPath().sample(x0, x1, torch.rand(4, generator=g)), g


def test_zero_at_target() -> None:
    ps, _ = _sample()
    assert flow_matching_loss(ps.x_1 - ps.x_0, ps).item() == 0.0


def test_equals_hand_mse() -> None:
    ps, g = _sample()
    pred = torch.randn(4, 1, 8, 8, generator=g)
    diff = (pred - (ps.x_1 - ps.x_0)).tolist()
    per_sample = []
    for sample in diff:
        values = [v for row in sample[0] for v in row]
        per_sample.append(sum(v * v for v in values) / len(values))
    torch.testing.assert_close(flow_matching_loss(pred, ps, "none"), torch.tensor(per_sample))
    torch.testing.assert_close(
        flow_matching_loss(pred, ps).item(), sum(per_sample) / 4, rtol=1e-6, atol=1e-7
    )
    torch.testing.assert_close(
        flow_matching_loss(pred, ps, "sum").item(), sum(per_sample), rtol=1e-6, atol=1e-7
    )
    torch.testing.assert_close(
        flow_matching_loss(pred, ps), torch.nn.functional.mse_loss(pred, ps.dx_t)
    )


def test_half_precision_prediction_and_gradient() -> None:
    ps, g = _sample()
    pred = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.bfloat16, requires_grad=True)
    loss = flow_matching_loss(pred, ps)
    assert loss.dtype == torch.float32
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_errors() -> None:
    ps, _ = _sample()
    with pytest.raises(InputError):
        flow_matching_loss(torch.zeros(4, 1, 8, 7), ps)
    with pytest.raises(InputError):
        flow_matching_loss(ps.dx_t, ps, reduction="median")


def test_endpoint_gradient_loss_zero_at_target_and_blind_to_offsets() -> None:
    ps, _ = _sample()
    assert endpoint_gradient_loss(ps.dx_t, ps).item() == pytest.approx(0.0, abs=1e-7)
    # A velocity error that moves every predicted endpoint by a constant leaves its gradients alone.
    offset = 0.3 / (1 - ps.t).reshape(-1, 1, 1, 1)
    assert endpoint_gradient_loss(ps.dx_t + offset, ps).item() == pytest.approx(0.0, abs=1e-6)


def test_endpoint_gradient_loss_equals_hand_computed_differences() -> None:
    x0 = torch.zeros(1, 1, 2, 3)
    x1 = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])
    ps = StraightPath().sample(x0, x1, torch.tensor([0.5]))
    # With v = 0 the predicted endpoint is x_t = x1 / 2, so the error is -x1 / 2:
    # horizontal differences of x1 are 1, 2, 0, 0 (mean |d| 3/4), vertical 2, 1, -1 (mean 4/3).
    expected = 0.5 * (3 / 4 / 2 + 4 / 3 / 2)
    loss = endpoint_gradient_loss(torch.zeros_like(x1), ps)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(InputError):
        endpoint_gradient_loss(torch.zeros(1, 2, 3), ps)
