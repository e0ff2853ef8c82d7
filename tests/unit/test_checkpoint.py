"""Checkpoints load with weights_only=True and refuse anything that is not ours."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from fusionfm.io import InputError
from fusionfm.models import FusionUNet, UNetConfig
from fusionfm.train.checkpoint import (
    EWC,
    MODEL,
    load_checkpoint,
    load_model,
    model_payload,
    save_checkpoint,
)

CONFIG = UNetConfig(base_channels=8, depth=2, time_dim=8, max_groups=4)


def _saved_model(path: Path) -> FusionUNet:
    torch.manual_seed(0)
    model = FusionUNet(CONFIG)
    save_checkpoint(path, model_payload(model, "ivf", ["ivf"], 5, {"steps": 5}))
    return model


def test_round_trip(tmp_path: Path) -> None:
    model = _saved_model(tmp_path / "model.pt")
    loaded, meta = load_model(tmp_path / "model.pt")
    assert meta == {
        "format": MODEL,
        "task": "ivf",
        "tasks": ["ivf"],
        "step": 5,
        "model_config": CONFIG.to_dict(),
        "train_config": {"steps": 5},
    }
    assert not loaded.training
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_refuses_pickled_module(tmp_path: Path) -> None:
    path = tmp_path / "module.pt"
    torch.save(FusionUNet(CONFIG), path)  # a whole pickled nn.Module, not a state dict
    with pytest.raises(InputError, match=r"module\.pt: not a fusionfm checkpoint"):
        load_model(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_refuses_arbitrary_pickle(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(InputError, match="not a fusionfm checkpoint"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 100, bytes(range(256)) * 4])
def test_refuses_random_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "random.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"random\.pt: not a fusionfm checkpoint"):
        load_model(path)


def test_refuses_foreign_or_wrong_kind(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save(FusionUNet(CONFIG).state_dict(), plain)  # a bare state dict without our format
    with pytest.raises(InputError, match="expected a dict with a 'format'"):
        load_model(plain)
    ewc = tmp_path / "ewc.pt"
    save_checkpoint(ewc, {"format": EWC, "state": {}, "tasks": []})
    with pytest.raises(InputError, match="is a 'fusionfm.ewc' file"):
        load_model(ewc)
    with pytest.raises(InputError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_refuses_weights_of_another_shape(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    _saved_model(path)
    payload = load_checkpoint(path)
    payload["model_config"]["base_channels"] = 16
    save_checkpoint(path, payload)
    with pytest.raises(InputError, match="weights do not fit"):
        load_model(path)


@pytest.mark.parametrize(
    ("legacy_options", "today"),
    [
        ({}, {"gate": "linear"}),  # before the gate was bounded
        ({"bounded_gate": False}, {"gate": "linear"}),
        ({"bounded_gate": True}, {"gate": "tanh"}),
    ],
)
def test_checkpoint_from_before_the_head_options_loads_as_it_was(
    tmp_path: Path, legacy_options: dict, today: dict
) -> None:
    legacy = UNetConfig(
        base_channels=8,
        depth=2,
        time_dim=8,
        max_groups=4,
        gate_residual=True,
        task_heads=False,
        sharpness_features=False,
        **today,
    )
    torch.manual_seed(0)
    model = FusionUNet(legacy)
    payload = model_payload(model, "ivf", ["ivf"], 5, {"steps": 5})
    for key in ("gate", "gate_residual", "task_heads", "sharpness_features"):
        del payload["model_config"][key]  # absent from older model configs
    payload["model_config"].update(legacy_options)
    save_checkpoint(tmp_path / "model.pt", payload)
    loaded, _ = load_model(tmp_path / "model.pt")
    assert loaded.config == legacy
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
