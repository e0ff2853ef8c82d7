"""Per-task training: loss goes down, NaN stops, a killed run resumes exactly, EWC + replay carry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import fusionfm.train.trainer as trainer
from fusionfm.io import InputError
from fusionfm.train.checkpoint import load_checkpoint, load_model
from fusionfm.train.data import TaskData, TaskMixture, load_task_data
from fusionfm.train.trainer import (
    TrainConfig,
    TrainingDivergedError,
    default_state_path,
    train_task,
)
from tests.unit.test_train_data import make_task_dataset

TINY_MODEL = {"base_channels": 8, "depth": 2, "time_dim": 8, "max_groups": 4}


def tiny_config(**overrides: Any) -> TrainConfig:
    base = {
        "steps": 6,
        "batch_size": 4,
        "crop": 16,
        "lr": 2e-3,
        "warmup_steps": 2,
        "fisher_batches": 2,
        "replay_capacity": 4,
        "replay_ratio": 0.5,
        "ewc_lambda": 10.0,
        "log_every": 1,
        "device": "cpu",
        "model": TINY_MODEL,
    }
    return TrainConfig.from_dict({**base, **overrides})


@pytest.fixture(scope="module")
def ivf_data(tmp_path_factory: pytest.TempPathFactory) -> TaskData:
    root = tmp_path_factory.mktemp("ivf")
    return load_task_data([make_task_dataset(root, "ivf")], "ivf", crop=16)


@pytest.fixture(scope="module")
def mif_data(tmp_path_factory: pytest.TempPathFactory) -> TaskData:
    root = tmp_path_factory.mktemp("mif")
    return load_task_data([make_task_dataset(root, "mif", seed=5)], "mif", crop=16)


class Recorder:
    def __init__(self, fail_at: int | None = None) -> None:
        self.logged: list[tuple[int, dict[str, float]]] = []
        self.fail_at = fail_at

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if step == self.fail_at:
            raise KeyboardInterrupt("killed")
        self.logged.append((step, dict(metrics)))


def _outs(folder: Path) -> dict[str, Path]:
    return {
        "out_checkpoint": folder / "model.pt",
        "out_ewc": folder / "ewc.pt",
        "out_replay": folder / "replay.pt",
    }


def _params(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def test_config_from_dict_and_errors() -> None:
    config = TrainConfig.from_dict({"steps": 3, "model": {"base_channels": 8}})
    assert config.steps == 3 and config.model.base_channels == 8
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InputError, match="unknown key"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(InputError, match="replay_ratio"):
        TrainConfig.from_dict({"replay_ratio": 1.0})
    with pytest.raises(InputError, match="start"):
        TrainConfig.from_dict({"start": "noise"})
    assert not config.use_amp(torch.device("cpu"))
    assert config.lr_at(0) < config.lr_at(config.warmup_steps) >= config.lr_at(config.steps - 1)


def test_training_lowers_loss_and_logs(tmp_path: Path, ivf_data: TaskData) -> None:
    config = tiny_config(steps=40, replay_capacity=0, log_every=1, warmup_steps=0)
    recorder = Recorder()
    result = train_task("ivf", ivf_data, config, None, tracker=recorder, **_outs(tmp_path))
    losses = [m["train/fm_loss"] for step, m in recorder.logged if "train/fm_loss" in m]
    assert len(losses) == 40
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:5]) / 5
    assert {"train/loss", "train/fm_loss", "train/ewc"} <= set(recorder.logged[0][1])
    assert [s for s, _ in recorder.logged[:3]] == [1, 2, 3]
    assert result.steps == 40 and result.tasks == ["ivf"] and result.steps_per_s > 0
    model, meta = load_model(tmp_path / "model.pt")
    assert meta["task"] == "ivf" and meta["tasks"] == ["ivf"]
    assert model.config.base_channels == 8


def test_nan_loss_names_task_and_step(
    tmp_path: Path, ivf_data: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = trainer.flow_matching_loss

    def flaky(pred: torch.Tensor, sample: Any) -> torch.Tensor:
        calls["n"] += 1
        loss = real(pred, sample)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(trainer, "flow_matching_loss", flaky)
    with pytest.raises(TrainingDivergedError, match=r"task 'ivf'.*nan at step 3 of 6"):
        train_task("ivf", ivf_data, tiny_config(), None, **_outs(tmp_path))
    assert not (tmp_path / "model.pt").exists()


def test_killed_run_resumes_to_identical_weights(tmp_path: Path, ivf_data: TaskData) -> None:
    config = tiny_config(noise_sigma=0.05)
    straight = tmp_path / "straight"
    train_task("ivf", ivf_data, config, None, **_outs(straight))

    killed = tmp_path / "killed"
    state = default_state_path(killed / "model.pt")
    with pytest.raises(KeyboardInterrupt):
        train_task(
            "ivf",
            ivf_data,
            config,
            None,
            tracker=Recorder(fail_at=4),
            checkpoint_every=1,
            **_outs(killed),
        )
    assert state.is_file() and not (killed / "model.pt").exists()
    assert load_checkpoint(state)["step"] == 3

    recorder = Recorder()
    result = train_task(
        "ivf",
        ivf_data,
        config,
        None,
        tracker=recorder,
        resume_from=state,
        checkpoint_every=1,
        **_outs(killed),
    )
    assert result.resumed_from_step == 3
    assert recorder.logged[0][0] == 4
    assert not state.exists()  # removed after success
    a, b = _params(straight / "model.pt"), _params(killed / "model.pt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    ewc_a, ewc_b = (load_checkpoint(f / "ewc.pt")["state"] for f in (straight, killed))
    assert ewc_a["fisher"].keys() == ewc_b["fisher"].keys()
    assert all(torch.equal(ewc_a["fisher"][k], ewc_b["fisher"][k]) for k in ewc_a["fisher"])
    assert all(torch.equal(ewc_a["anchor"][k], ewc_b["anchor"][k]) for k in ewc_a["anchor"])
    replay_a, replay_b = (load_checkpoint(f / "replay.pt")["state"] for f in (straight, killed))
    assert (
        replay_a["tasks"] == replay_b["tasks"] == ["ivf"] and replay_a["seen"] == replay_b["seen"]
    )
    assert torch.equal(replay_a["generator_state"], replay_b["generator_state"])
    items_a, items_b = replay_a["items"]["ivf"], replay_b["items"]["ivf"]
    assert len(items_a) == len(items_b) == config.replay_capacity
    for item_a, item_b in zip(items_a, items_b, strict=True):
        assert all(torch.equal(item_a[name], item_b[name]) for name in ("y_a", "y_b", "x_1"))


def test_resume_refuses_other_config(tmp_path: Path, ivf_data: TaskData) -> None:
    state = default_state_path(tmp_path / "model.pt")
    with pytest.raises(KeyboardInterrupt):
        train_task(
            "ivf",
            ivf_data,
            tiny_config(),
            None,
            tracker=Recorder(fail_at=3),
            checkpoint_every=1,
            **_outs(tmp_path),
        )
    with pytest.raises(InputError, match="another config"):
        train_task(
            "ivf", ivf_data, tiny_config(lr=1e-2), None, resume_from=state, **_outs(tmp_path)
        )


def test_second_task_carries_ewc_and_replay(
    tmp_path: Path, ivf_data: TaskData, mif_data: TaskData
) -> None:
    config = tiny_config()
    first, second = tmp_path / "task00", tmp_path / "task01"
    train_task("ivf", ivf_data, config, None, **_outs(first))
    replay1 = load_checkpoint(first / "replay.pt")["state"]
    assert replay1["tasks"] == ["ivf"] and len(replay1["items"]["ivf"]) == 4
    ewc1 = load_checkpoint(first / "ewc.pt")["state"]
    assert ewc1["num_tasks"] == 1

    recorder = Recorder()
    seen_tasks: list[list[int]] = []
    real_make = trainer.make_batch

    def spy(*args: Any, **kwargs: Any) -> Any:
        batch, ids = real_make(*args, **kwargs)
        seen_tasks.append(ids.tolist())
        return batch, ids

    mp = pytest.MonkeyPatch()
    mp.setattr(trainer, "make_batch", spy)
    try:
        result = train_task(
            "mif", mif_data, config, first / "model.pt", tracker=recorder, **_outs(second)
        )
    finally:
        mp.undo()
    assert result.tasks == ["ivf", "mif"]
    # batches mix replayed ivf crops (id 0) into mif batches (id 1): 2 of 4 at ratio 0.5
    assert all(sorted(ids) == [0, 0, 1, 1] for ids in seen_tasks)
    # EWC is active from the first step: penalty > 0 once the weights move away from the anchor
    assert any(m["train/ewc"] > 0 for _, m in recorder.logged if "train/ewc" in m)
    replay2 = load_checkpoint(second / "replay.pt")["state"]
    assert replay2["tasks"] == ["ivf", "mif"]
    assert len(replay2["items"]["ivf"]) == 4 and len(replay2["items"]["mif"]) == 4
    for name in ("y_a", "y_b", "x_1"):
        assert torch.equal(replay2["items"]["ivf"][0][name], replay1["items"]["ivf"][0][name])
    ewc2 = load_checkpoint(second / "ewc.pt")["state"]
    assert ewc2["num_tasks"] == 2
    key = next(iter(ewc1["fisher"]))
    assert torch.all(ewc2["fisher"][key] >= ewc1["fisher"][key])
    _, meta = load_model(second / "model.pt")
    assert meta["tasks"] == ["ivf", "mif"]


def test_previous_with_other_model_config_is_refused(
    tmp_path: Path, ivf_data: TaskData, mif_data: TaskData
) -> None:
    train_task("ivf", ivf_data, tiny_config(steps=1), None, **_outs(tmp_path / "a"))
    other = tiny_config(steps=1, model={**TINY_MODEL, "base_channels": 4})
    with pytest.raises(InputError, match="model config"):
        train_task("mif", mif_data, other, tmp_path / "a" / "model.pt", **_outs(tmp_path / "b"))


def test_task_mismatch(tmp_path: Path, ivf_data: TaskData) -> None:
    with pytest.raises(InputError, match="data is of task 'ivf'"):
        train_task("mif", ivf_data, tiny_config(), None, **_outs(tmp_path))


def test_joint_training_mixes_tasks_and_consolidates_all(
    tmp_path: Path, ivf_data: TaskData, mif_data: TaskData
) -> None:
    mixture = TaskMixture([ivf_data, mif_data])
    generator = torch.Generator().manual_seed(0)
    batch, tasks = mixture.sample_with_tasks(64, generator, 16)
    assert batch["x_1"].shape == (64, 1, 16, 16) and len(tasks) == 64
    assert 16 < tasks.count("ivf") < 48 and tasks.count("ivf") + tasks.count("mif") == 64
    assert tasks == sorted(tasks, key=["ivf", "mif"].index)  # grouped in mixture order

    recorder = Recorder()
    result = train_task("joint", mixture, tiny_config(), None, tracker=recorder, **_outs(tmp_path))
    assert result.tasks == ["ivf", "mif"]
    assert [point["step"] for point in result.history] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [point["train/fm_loss"] for point in result.history] == [
        metrics["train/fm_loss"] for _, metrics in recorder.logged[:6]
    ]
    replay = load_checkpoint(tmp_path / "replay.pt")["state"]
    assert sorted(replay["items"]) == ["ivf", "mif"]
    model, meta = load_model(tmp_path / "model.pt")
    assert meta["task"] == "joint" and meta["tasks"] == ["ivf", "mif"]


def test_task_mixture_refuses_a_task_twice(ivf_data: TaskData) -> None:
    with pytest.raises(InputError, match="twice"):
        TaskMixture([ivf_data, ivf_data])
