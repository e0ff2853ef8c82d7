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
from fusionfm.models.unet import GATE_LEAK, leaky_clamp, local_sharpness

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


def _constant_head(model: FusionUNet, values: list[float]) -> None:
    """Make every output channel of the head a constant: ``values`` per head, every task alike."""
    heads = model.config.num_tasks if model.config.task_heads else 1
    with torch.no_grad():
        model.out_conv.weight.zero_()
        model.out_conv.bias.copy_(torch.tensor(values * heads))


def test_gated_output_with_residual_weights_the_source_difference() -> None:
    config = UNetConfig(base_channels=8, depth=2, gate="linear", gate_residual=True)
    model = FusionUNet(config).eval()
    _constant_head(model, [0.3, -0.1])  # gate 0.3, residual -0.1 everywhere
    x_t, t, y_a, y_b, task = _inputs(2, 20, 28)
    with torch.no_grad():
        velocity = model(x_t, t, y_a, y_b, task)
    assert velocity.shape == (2, 1, 20, 28)
    torch.testing.assert_close(velocity, 0.3 * (y_a - y_b) - 0.1)
    with pytest.raises(InputError, match="gated_output"):
        UNetConfig(gated_output="yes")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="gate_residual"):
        UNetConfig(gate_residual=1)  # type: ignore[arg-type]


def test_ungated_output_is_the_velocity_itself() -> None:
    model = FusionUNet(UNetConfig(base_channels=8, depth=2, gated_output=False)).eval()
    _constant_head(model, [0.25])
    x_t, t, y_a, y_b, task = _inputs(2, 20, 28)
    with torch.no_grad():
        velocity = model(x_t, t, y_a, y_b, task)
    torch.testing.assert_close(velocity, torch.full_like(x_t, 0.25))


def test_leaky_clamp_is_exact_inside_and_leaks_one_percent_beyond() -> None:
    x = torch.tensor([-3.0, -0.5, -0.2, 0.0, 0.4, 0.5, 2.5], requires_grad=True)
    y = leaky_clamp(x)
    expected = torch.tensor([-0.5 - 0.01 * 2.5, -0.5, -0.2, 0.0, 0.4, 0.5, 0.5 + 0.01 * 2.0])
    torch.testing.assert_close(y.detach(), expected)
    y.sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, torch.tensor([0.01, 1.0, 1.0, 1.0, 1.0, 1.0, 0.01]))
    assert GATE_LEAK == 0.01


def test_tanh_gate_is_half_tanh_and_saturates_at_one_source() -> None:
    model = FusionUNet(UNetConfig(base_channels=8, depth=2, gate="tanh")).eval()
    x_t, t, y_a, y_b, task = _inputs(2, 20, 28)
    for raw in (0.3, -0.2, 40.0, -40.0):
        _constant_head(model, [raw])
        with torch.no_grad():
            velocity = model(x_t, t, y_a, y_b, task)
        torch.testing.assert_close(velocity, 0.5 * math.tanh(raw) * (y_a - y_b))
    # A saturated gate from the mean start lands on a source: (a + b) / 2 - (a - b) / 2.
    torch.testing.assert_close((y_a + y_b) / 2 + velocity, y_b)
    with pytest.raises(InputError, match="model.gate must be one of"):
        UNetConfig(gate="sigmoid")


def test_leaky_clamp_gate_lands_exactly_on_a_source_at_its_bound() -> None:
    model = FusionUNet(UNetConfig(base_channels=8, depth=2)).eval()
    x_t, t, y_a, y_b, task = _inputs(2, 20, 28)
    for raw, source in ((0.5, y_a), (-0.5, y_b)):
        _constant_head(model, [raw])
        with torch.no_grad():
            velocity = model(x_t, t, y_a, y_b, task)
        torch.testing.assert_close((y_a + y_b) / 2 + velocity, source)


def test_task_heads_are_separate_and_shared_head_is_one() -> None:
    config = UNetConfig(base_channels=8, depth=2)
    model = FusionUNet(config).eval()
    shared = FusionUNet(UNetConfig(base_channels=8, depth=2, task_heads=False))
    assert model.out_conv.out_channels == config.num_tasks * shared.out_conv.out_channels
    x_t, t, y_a, y_b, _ = _inputs(4, 16, 16)
    tasks = torch.arange(4)
    with torch.no_grad():
        before = model(x_t, t, y_a, y_b, tasks)
        model.out_conv.weight[2].add_(1.0)  # only the head of task 2 changes
        model.out_conv.bias[2].add_(1.0)
        after = model(x_t, t, y_a, y_b, tasks)
    changed = [not torch.equal(before[i], after[i]) for i in range(4)]
    assert changed == [False, False, True, False]
    # Each sample reads its own task's head: a batch of one sample gives the same output.
    with torch.no_grad():
        alone = model(x_t[2:3], t[2:3], y_a[2:3], y_b[2:3], tasks[2:3])
    torch.testing.assert_close(alone, after[2:3])


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
