"""What a training step really computes, checked against values computed here independently:
the model's inputs (x_t at the sampled t), the loss, the EWC gradient, replayed content, the Fisher
of a later task, gradient clipping and the learning-rate schedule.

Each test would fail on one of the bugs ``tests/mutation_check.py`` plants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import fusionfm.train.trainer as trainer
from fusionfm.continual import EWCPenalty, ReplayBuffer
from fusionfm.models import TASK_INDEX
from fusionfm.train.checkpoint import load_checkpoint, model_from_payload
from fusionfm.train.data import TaskData, load_task_data
from fusionfm.train.trainer import batch_loss, make_batch, optimizer_step, train_task
from tests.unit.test_train_data import make_task_dataset
from tests.unit.test_trainer import _outs, tiny_config

CROP = 16


@pytest.fixture(scope="module")
def ivf_data(tmp_path_factory: pytest.TempPathFactory) -> TaskData:
    root = tmp_path_factory.mktemp("ivf")
    return load_task_data([make_task_dataset(root, "ivf")], "ivf", crop=CROP)


@pytest.fixture(scope="module")
def mif_data(tmp_path_factory: pytest.TempPathFactory) -> TaskData:
    root = tmp_path_factory.mktemp("mif")
    return load_task_data([make_task_dataset(root, "mif", seed=5)], "mif", crop=CROP)


class RecordingModel(nn.Module):
    """A stand-in student: records what it is called with and predicts ``w * x_t`` (w = 0.5)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.calls: list[dict[str, Tensor]] = []

    def forward(self, x_t: Tensor, t: Tensor, y_a: Tensor, y_b: Tensor, task: Tensor) -> Tensor:
        self.calls.append({"x_t": x_t, "t": t, "y_a": y_a, "y_b": y_b, "task": task})
        return self.w * x_t


def test_make_batch_draws_times_and_builds_the_mean_start(ivf_data: TaskData) -> None:
    config = tiny_config(batch_size=64, replay_capacity=0)
    batch, ids = make_batch(ivf_data, None, config, torch.Generator().manual_seed(0))
    assert ids.tolist() == [TASK_INDEX["ivf"]] * 64
    torch.testing.assert_close(batch["x_0"], 0.5 * (batch["y_a"] + batch["y_b"]))
    t = batch["t"]
    assert t.shape == (64,) and bool(((t > 0) & (t < 1)).all())
    assert 0.4 < float(t.mean()) < 0.6 and float(t.std()) > 0.2  # U(0, 1): std 0.289


def test_batch_loss_feeds_x_t_at_the_sampled_t_and_regresses_the_straight_velocity(
    ivf_data: TaskData,
) -> None:
    config = tiny_config(batch_size=8, replay_capacity=0)
    batch, ids = make_batch(ivf_data, None, config, torch.Generator().manual_seed(1))
    model = RecordingModel()
    loss = batch_loss(model, batch, ids, torch.device("cpu"))
    call = model.calls[-1]
    t = batch["t"].reshape(-1, 1, 1, 1)
    x_t = (1 - t) * batch["x_0"] + t * batch["x_1"]
    torch.testing.assert_close(call["x_t"], x_t)
    torch.testing.assert_close(call["t"], batch["t"])
    torch.testing.assert_close(call["y_a"], batch["y_a"])
    torch.testing.assert_close(call["y_b"], batch["y_b"])
    assert call["task"].tolist() == ids.tolist()
    velocity = batch["x_1"] - batch["x_0"]
    torch.testing.assert_close(loss, ((0.5 * x_t - velocity) ** 2).mean())
    # with the gradient loss: plus the L1 error of the endpoint's finite differences
    weighted = batch_loss(model, batch, ids, torch.device("cpu"), gradient_weight=2.0)
    error = x_t + (1 - t) * 0.5 * x_t - batch["x_1"]
    dx = (error[..., :, 1:] - error[..., :, :-1]).abs().mean()
    dy = (error[..., 1:, :] - error[..., :-1, :]).abs().mean()
    torch.testing.assert_close(weighted, loss + 2.0 * 0.5 * (dx + dy))


def test_replayed_content_reaches_the_batch(ivf_data: TaskData) -> None:
    replay = ReplayBuffer(4, seed=0)
    stored = {
        name: torch.full((4, 1, CROP, CROP), value)
        for name, value in (("y_a", 0.11), ("y_b", 0.22), ("x_1", 0.33))
    }
    replay.add("mif", stored)
    config = tiny_config(batch_size=4, replay_ratio=0.5, replay_capacity=4)
    batch, ids = make_batch(ivf_data, replay, config, torch.Generator().manual_seed(0))
    assert ids.tolist() == [TASK_INDEX["ivf"]] * 2 + [TASK_INDEX["mif"]] * 2
    for name, value in (("y_a", 0.11), ("y_b", 0.22), ("x_1", 0.33)):
        assert torch.equal(batch[name][2:], torch.full((2, 1, CROP, CROP), value))
        assert not torch.isclose(batch[name][:2], torch.tensor(value)).all()
    torch.testing.assert_close(batch["x_0"][2:], torch.full((2, 1, CROP, CROP), 0.165))


def _first_stage(tmp_path: Path, ivf_data: TaskData, **overrides: Any) -> Path:
    folder = tmp_path / "task00"
    train_task("ivf", ivf_data, tiny_config(**overrides), None, **_outs(folder))
    return folder


def test_ewc_gradient_reaches_the_weights_with_its_size(
    tmp_path: Path, ivf_data: TaskData, mif_data: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a flow-matching loss whose gradient is a constant c per weight, the gradient of the
    step's loss must be c + λ F (θ - θ*) for every weight."""
    first = _first_stage(tmp_path, ivf_data)
    ewc = EWCPenalty.from_state_dict(load_checkpoint(first / "ewc.pt")["state"])
    config = tiny_config(ewc_lambda=500.0, steps=3, grad_clip=0.0)
    c = 1e-3

    def drifting_loss(model: nn.Module, *args: Any, **kwargs: Any) -> Tensor:
        return c * sum(p.sum() for p in model.parameters())

    checked = []

    def checking_step(model, optimizer, scaler, loss, grad_clip):  # noqa: ANN001
        named = [(n, p) for n, p in model.named_parameters()]
        grads = torch.autograd.grad(loss, [p for _, p in named], retain_graph=True)
        for (name, p), grad in zip(named, grads, strict=True):
            expected = c + 500.0 * ewc.fisher[name] * (p.detach() - ewc.anchor[name])
            torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-9)
        checked.append(max(float((p.detach() - ewc.anchor[n]).abs().max()) for n, p in named))
        return real_step(model, optimizer, scaler, loss, grad_clip)

    real_step = trainer.optimizer_step
    monkeypatch.setattr(trainer, "batch_loss", drifting_loss)
    monkeypatch.setattr(trainer, "optimizer_step", checking_step)
    train_task("mif", mif_data, config, first / "model.pt", **_outs(tmp_path / "task01"))
    assert len(checked) == 3 and checked[0] == 0.0 and checked[-1] > 0  # weights left the anchor
    assert sum(float(f.sum()) for f in ewc.fisher.values()) > 0


def test_a_later_tasks_fisher_is_added_and_nonzero(
    tmp_path: Path, ivf_data: TaskData, mif_data: TaskData
) -> None:
    first = _first_stage(tmp_path, ivf_data)
    second = tmp_path / "task01"
    train_task("mif", mif_data, tiny_config(), first / "model.pt", **_outs(second))
    fisher_1 = load_checkpoint(first / "ewc.pt")["state"]["fisher"]
    fisher_2 = load_checkpoint(second / "ewc.pt")["state"]["fisher"]
    added = {name: fisher_2[name] - fisher_1[name] for name in fisher_1}
    assert all(bool((f >= -1e-12).all()) for f in added.values())
    # the mif Fisher is positive wherever the loss depends on the weights: every tensor but the
    # output heads of the tasks not being learned (the model only uses its task's head)
    reached = [name for name, f in added.items() if float(f.sum()) > 0]
    assert len(reached) >= 0.9 * len(added), sorted(set(added) - set(reached))
    # and it is the Fisher of the trained second model on mif batches, not a copy of the first
    model = model_from_payload(load_checkpoint(second / "model.pt"))
    assert any(not torch.allclose(fisher_2[n], 2 * fisher_1[n]) for n in fisher_1)
    assert set(added) == {n for n, p in model.named_parameters() if p.requires_grad}


def test_gradient_clipping_bounds_the_update() -> None:
    torch.manual_seed(0)
    model = nn.Linear(8, 8)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    loss = 1e3 * model(torch.randn(4, 8)).pow(2).sum()
    optimizer_step(model, optimizer, scaler, loss, grad_clip=0.01)
    change = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)]
    )
    assert float(change.norm()) == pytest.approx(0.01, rel=1e-4)


def test_train_task_clips_and_follows_the_learning_rate_schedule(
    tmp_path: Path, ivf_data: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(steps=6, warmup_steps=2, grad_clip=0.25, replay_capacity=0)
    seen: list[tuple[float, float]] = []
    real_step = trainer.optimizer_step

    def recording_step(model, optimizer, scaler, loss, grad_clip):  # noqa: ANN001
        real_step(model, optimizer, scaler, loss, grad_clip)
        norm = torch.cat(
            [p.grad.flatten() for p in model.parameters() if p.grad is not None]
        ).norm()
        seen.append((optimizer.param_groups[0]["lr"], float(norm)))

    monkeypatch.setattr(trainer, "optimizer_step", recording_step)
    train_task("ivf", ivf_data, config, None, **_outs(tmp_path))
    assert [lr for lr, _ in seen] == pytest.approx([config.lr_at(step) for step in range(6)])
    assert len({round(lr, 12) for lr, _ in seen}) >= 4  # warm-up and decay, not one constant
    assert all(norm <= 0.25 * (1 + 1e-5) for _, norm in seen)  # clipped gradients
