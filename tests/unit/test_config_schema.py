"""The workflow schema's defaults are the library's defaults (one set of numbers, checked)."""

from __future__ import annotations

import dataclasses

import yaml

from fusionfm.pseudolabel.selection import SelectionConfig
from fusionfm.refine.refiner import RefinerConfig


def _plain(value):
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _schema_defaults(repo_root, section: str) -> dict:
    schema = yaml.safe_load((repo_root / "workflow" / "schemas" / "config.schema.yaml").read_text())
    return {k: v["default"] for k, v in schema["properties"][section]["properties"].items()}


def test_selection_defaults_match(repo_root):
    code = {f.name: _plain(getattr(SelectionConfig(), f.name)) for f in dataclasses.fields(SelectionConfig)}
    assert _schema_defaults(repo_root, "selection") == code
    assert SelectionConfig.from_dict(_schema_defaults(repo_root, "selection")) == SelectionConfig()


def test_refiner_defaults_match(repo_root):
    code = {f.name: _plain(getattr(RefinerConfig(), f.name)) for f in dataclasses.fields(RefinerConfig)}
    assert _schema_defaults(repo_root, "refiner") == code
    assert RefinerConfig.from_dict(_schema_defaults(repo_root, "refiner")) == RefinerConfig()


def test_train_defaults_match(repo_root):
    from fusionfm.train.trainer import TrainConfig

    schema = _schema_defaults(repo_root, "train")
    assert schema.pop("task_order") == ["mef", "ivf", "mif", "mff"]
    assert schema.pop("model") == {}
    code = TrainConfig().to_dict()
    code.pop("model")
    assert schema == code
    assert TrainConfig.from_dict(schema) == TrainConfig()
