"""The CUDA paths: training with mixed precision (and EWC + replay), fusion, on a GPU.

Marked ``gpu``: they skip without CUDA (CI has none) and run where a GPU is lent:
``pytest -m gpu tests/unit/test_gpu.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import fusionfm.train.trainer as trainer
from fusionfm.fuse import fuse_luminance
from fusionfm.models import FusionUNet, UNetConfig
from fusionfm.train.checkpoint import load_checkpoint, load_model
from fusionfm.train.data import TaskData, load_task_data
from fusionfm.train.trainer import train_task
from tests.unit.test_train_data import make_task_dataset
from tests.unit.test_trainer import _outs, tiny_config

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def task_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TaskData]:
    root = tmp_path_factory.mktemp("gpu")
    return {
        task: load_task_data([make_task_dataset(root / task, task, seed=seed)], task, crop=16)
        for task, seed in (("ivf", 0), ("mif", 5))
    }


def test_cuda_training_uses_mixed_precision_and_carries_ewc_and_replay(
    tmp_path: Path, task_data: dict[str, TaskData], monkeypatch: pytest.MonkeyPatch
) -> None:
    dtypes: list[Any] = []
    devices: list[str] = []
    real = trainer.batch_loss

    def spy(model, batch, task_ids, device, amp_dtype=None, gradient_weight=0.0):  # noqa: ANN001
        dtypes.append(amp_dtype)
        devices.append(next(model.parameters()).device.type)
        return real(model, batch, task_ids, device, amp_dtype, gradient_weight)

    monkeypatch.setattr(trainer, "batch_loss", spy)
    config = tiny_config(device="cuda", amp="auto", steps=8)
    first, second = tmp_path / "a", tmp_path / "b"
    train_task("ivf", task_data["ivf"], config, None, **_outs(first))
    result = train_task("mif", task_data["mif"], config, first / "model.pt", **_outs(second))
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert expected in dtypes and set(devices) == {"cuda"}
    assert np.isfinite(result.final_loss)
    state = load_checkpoint(second / "model.pt")["state_dict"]
    assert all(t.device.type == "cpu" for t in state.values())  # checkpoints load anywhere
    ewc = load_checkpoint(second / "ewc.pt")["state"]
    assert ewc["num_tasks"] == 2 and all(f.device.type == "cpu" for f in ewc["fisher"].values())
    assert any(point["train/ewc"] > 0 for point in result.history)
    model, _ = load_model(second / "model.pt", "cuda")
    assert next(model.parameters()).is_cuda


def test_cuda_fusion_matches_cpu() -> None:
    torch.manual_seed(0)
    net = FusionUNet(UNetConfig(base_channels=8, depth=2, time_dim=8, max_groups=4)).eval()
    rng = np.random.default_rng(0)
    y_a, y_b = (rng.integers(0, 256, (40, 56)).astype(np.float64) for _ in range(2))
    on_cpu = fuse_luminance(net, y_a, y_b, "ivf", steps=4)
    on_gpu = fuse_luminance(net.to("cuda"), y_a, y_b, "ivf", steps=4)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=0.05)
