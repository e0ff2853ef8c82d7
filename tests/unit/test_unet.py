"""The student U-Net: shapes for any size, parameter budget, conditioning, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from fusionfm.io import InputError
from fusionfm.models import (
    TASK_INDEX,
    FusionUNet,
    UNetConfig,
    count_parameters,
    crop_to,
    pad_to_stride,
)
from fusionfm.models.unet import local_sharpness

SMALL = UNetConfig(base_channels=8, depth=2, time_dim=16)


def _inputs(batch: int, height: int, width: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, height, width, generator=g)
    y_a = torch.rand(batch, 1, height, width, generator=g)
    y_b = torch.rand(batch, 1, height, width, generator=g)
    t = torch.rand(batch, generator=g)
    task = torch.arange(batch) % 4
    return x, t, y_a, y_b, task


def test_task_index() -> None:
    assert TASK_INDEX == {"ivf": 0, "mif": 1, "mef": 2, "mff": 3}


def test_default_parameter_budget() -> None:
    model = FusionUNet()
    n = count_parameters(model)
    assert 0.2e6 <= n <= 0.6e6
    assert model.stride == 2**model.config.depth == 8


@pytest.mark.parametrize("size", [(37, 53), (64, 80), (8, 8), (3, 5)])
def test_output_shape_any_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = FusionUNet()
    x, t, y_a, y_b, task = _inputs(2, *size)
    with torch.no_grad():
        out = model(x, t, y_a, y_b, task)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "config",
    [SMALL, UNetConfig(base_channels=8, depth=1, num_res_blocks=2, channel_mults=(1, 3))],
)
def test_configs_shape(config: UNetConfig) -> None:
    torch.manual_seed(0)
    x, t, y_a, y_b, task = _inputs(1, 19, 23)
    assert FusionUNet(config)(x, t, y_a, y_b, task).shape == x.shape


def test_pad_and_crop_roundtrip() -> None:
    x = torch.rand(2, 3, 37, 53)
    padded, size = pad_to_stride(x, 8)
    assert padded.shape == (2, 3, 40, 56) and size == (37, 53)
    assert torch.equal(crop_to(padded, size), x)
    tiny, size = pad_to_stride(torch.rand(1, 1, 2, 3), 8)  # too small to reflect
    assert tiny.shape == (1, 1, 8, 8) and size == (2, 3)
    same, _ = pad_to_stride(x[..., :32, :48], 8)
    assert same.shape == (2, 3, 32, 48)


def test_task_and_time_change_output() -> None:
    torch.manual_seed(0)
    model = FusionUNet(SMALL)
    x, t, y_a, y_b, _ = _inputs(1, 16, 16)
    with torch.no_grad():
        ivf = model(x, t, y_a, y_b, torch.tensor([TASK_INDEX["ivf"]]))
        mff = model(x, t, y_a, y_b, torch.tensor([TASK_INDEX["mff"]]))
        later = model(x, t + 0.5, y_a, y_b, torch.tensor([TASK_INDEX["ivf"]]))
    assert (ivf - mff).abs().max() > 1e-4
    assert (ivf - later).abs().max() > 1e-4


def test_batch_independent_and_scalar_broadcast() -> None:
    torch.manual_seed(0)
    model = FusionUNet(SMALL)
    x, t, y_a, y_b, task = _inputs(3, 12, 20)
    with torch.no_grad():
        full = model(x, t, y_a, y_b, task)
        one = model(x[1:2], t[1:2], y_a[1:2], y_b[1:2], task[1:2])
        same_t = model(x, t[0], y_a, y_b, torch.tensor(2))
        expanded = model(x, t[0].expand(3), y_a, y_b, torch.full((3,), 2))
    torch.testing.assert_close(full[1:2], one, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(same_t, expanded)


def test_gradients_flow_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = FusionUNet(SMALL)
    x, t, y_a, y_b, task = _inputs(4, 16, 16)
    model(x, t, y_a, y_b, task).pow(2).mean().backward()
    used = {int(i) for i in task}
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        if name == "task_embedding.weight":
            assert p.grad[sorted(used)].abs().sum() > 0
        else:
            assert p.grad.abs().sum() > 0, name


def test_config_from_dict() -> None:
    cfg = UNetConfig.from_dict({"base_channels": 8, "depth": 2, "channel_mults": [1, 2, 2]})
    assert cfg.level_channels == (8, 16, 16)
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    assert UNetConfig.from_dict(None) == UNetConfig()
    assert UNetConfig().level_channels == (8, 16, 32, 64)
    assert UNetConfig(depth=2, max_channel_mult=2).level_channels == (8, 16, 16)
    with pytest.raises(InputError):
        UNetConfig.from_dict({"widht": 8})
    with pytest.raises(InputError):
        UNetConfig.from_dict({"depth": 2, "channel_mults": [1, 2]})
    with pytest.raises(InputError):
        UNetConfig.from_dict({"time_dim": 15})


def test_shape_errors() -> None:
    model = FusionUNet(SMALL)
    x, t, y_a, y_b, task = _inputs(2, 8, 8)
    with pytest.raises(InputError):
        model(x, t, y_a[..., :7], y_b[..., :7], task)
    with pytest.raises(InputError):
        model(x, t[:1].expand(3), y_a, y_b, task)


def test_training_steps_lower_flow_matching_loss_and_sampler_runs() -> None:
    from fusionfm.loss import flow_matching_loss
    from fusionfm.path import StraightPath, start_image
    from fusionfm.solver import sample

    torch.manual_seed(0)
    model = FusionUNet(SMALL)
    _, _, y_a, y_b, task = _inputs(4, 16, 16, seed=1)
    x1 = torch.maximum(y_a, y_b)
    x0 = start_image(y_a, y_b, "mean")
    ps = StraightPath().sample(x0, x1, torch.rand(4, generator=torch.Generator().manual_seed(2)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        return flow_matching_loss(model(ps.x_t, ps.t, y_a, y_b, task), ps)

    before = loss().item()
    for _ in range(5):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < before
    cond = {"y_a": y_a, "y_b": y_b, "task": task}
    for method in ("euler", "heun"):
        out = sample(model, x0, cond, steps=2, method=method)
        assert out.shape == x0.shape and torch.isfinite(out).all()


def test_autocast_bfloat16_cpu() -> None:
    torch.manual_seed(0)
    model = FusionUNet(SMALL)
    x, t, y_a, y_b, task = _inputs(2, 13, 17)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        out = model(x, t, y_a, y_b, task)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_gated_output_weights_the_source_difference() -> None:
    config = UNetConfig(base_channels=8, depth=2, gated_output=True, bounded_gate=False)
    model = FusionUNet(config).eval()
    with torch.no_grad():  # constant head: gate 0.3, residual -0.1 everywhere
        model.out_conv.weight.zero_()
        model.out_conv.bias.copy_(torch.tensor([0.3, -0.1]))
    x_t, t, y_a, y_b, task = _inputs(2, 20, 28)
    with torch.no_grad():
        velocity = model(x_t, t, y_a, y_b, task)
    assert velocity.shape == (2, 1, 20, 28)
    torch.testing.assert_close(velocity, 0.3 * (y_a - y_b) - 0.1)
    with pytest.raises(InputError, match="gated_output"):
        UNetConfig(gated_output="yes")  # type: ignore[arg-type]


def test_bounded_gate_is_half_tanh_and_saturates_at_one_source() -> None:
    model = FusionUNet(UNetConfig(base_channels=8, depth=2, bounded_gate=True)).eval()
    x_t, t, y_a, y_b, task = _inputs(2, 20, 28)
    for raw, residual in ((0.3, -0.1), (40.0, 0.0), (-40.0, 0.0)):
        with torch.no_grad():  # constant head: raw gate and residual everywhere
            model.out_conv.weight.zero_()
            model.out_conv.bias.copy_(torch.tensor([raw, residual]))
            velocity = model(x_t, t, y_a, y_b, task)
        gate = 0.5 * math.tanh(raw)
        torch.testing.assert_close(velocity, gate * (y_a - y_b) + residual)
    # A saturated gate from the mean start lands exactly on a source: (a + b) / 2 - (a - b) / 2.
    torch.testing.assert_close((y_a + y_b) / 2 + velocity, y_b)
    with pytest.raises(InputError, match="bounded_gate"):
        UNetConfig(bounded_gate=1)  # type: ignore[arg-type]


def test_local_sharpness_of_a_ramp_and_of_a_flat_image() -> None:
    slope = 0.01  # per pixel, along the width
    ramp = (torch.arange(32, dtype=torch.float32) * slope).expand(1, 1, 24, 32)
    sharp = local_sharpness(ramp)
    assert sharp.shape == ramp.shape
    # Central differences of a ramp give the slope wherever the 3x3 and 7x7 windows stay inside
    # the image (3 + 1 pixels from the left and right borders).
    torch.testing.assert_close(sharp[..., 4:-4], torch.full_like(sharp[..., 4:-4], 8 * slope))
    flat = torch.full((1, 1, 16, 16), 0.5)
    assert local_sharpness(flat).max() < 1e-5


def test_sharpness_features_reach_the_network() -> None:
    with_features = FusionUNet(UNetConfig(base_channels=8, depth=2, sharpness_features=True))
    without = FusionUNet(UNetConfig(base_channels=8, depth=2, sharpness_features=False))
    assert with_features.in_conv.in_channels == without.in_conv.in_channels + 2
    seen: list[torch.Tensor] = []
    with_features.in_conv.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    x_t, t, y_a, y_b, task = _inputs(2, 16, 16)  # a multiple of the stride: no padding
    with torch.no_grad():
        with_features(x_t, t, y_a, y_b, task)
    (inputs,) = seen
    torch.testing.assert_close(inputs[:, :3], torch.cat([x_t, y_a, y_b], dim=1))
    torch.testing.assert_close(inputs[:, 3:4], local_sharpness(y_a))
    torch.testing.assert_close(inputs[:, 4:5], local_sharpness(y_b))
