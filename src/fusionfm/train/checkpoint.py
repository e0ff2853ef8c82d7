"""Checkpoint files of the student: plain dicts written by ``torch.save``, read back with
``torch.load(weights_only=True)`` only, so loading never unpickles arbitrary objects.

Every file is a dict with ``"format"`` (one of :data:`FORMATS`) and ``"version"``:

* ``fusionfm.model``: ``model_config`` (the :class:`~fusionfm.models.UNetConfig` as a dict),
  ``state_dict`` (the weights), ``task`` (the task just learned), ``tasks`` (every task learned,
  in order), ``train_config`` (dict) and ``step``;
* ``fusionfm.train_state``: a model checkpoint plus ``optimizer``, ``scaler``, ``rng`` (the
  random states) and ``step``, written periodically so that a killed training resumes;
* ``fusionfm.ewc`` / ``fusionfm.replay``: ``state`` (the ``state_dict()`` of
  :class:`~fusionfm.continual.EWCPenalty` / :class:`~fusionfm.continual.ReplayBuffer`) and
  ``tasks``.

Files are written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fusionfm.io import InputError, atomic_path
from fusionfm.models import FusionUNet, UNetConfig

VERSION = 1
MODEL = "fusionfm.model"
TRAIN_STATE = "fusionfm.train_state"
EWC = "fusionfm.ewc"
REPLAY = "fusionfm.replay"
FORMATS: tuple[str, ...] = (MODEL, TRAIN_STATE, EWC, REPLAY)


def save_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    """Write ``payload`` (a plain dict with a ``format`` of :data:`FORMATS`) atomically.

    Raises:
        ValueError: ``payload`` has no known ``format``.
    """
    if payload.get("format") not in FORMATS:
        raise ValueError(
            f"checkpoint payload needs a format in {FORMATS}, got {payload.get('format')!r}"
        )
    payload = {"version": VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | os.PathLike[str], expect: str | tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Args:
        path: the file.
        expect: the accepted format(s) (default: any of :data:`FORMATS`).

    Returns:
        dict: the payload.

    Raises:
        InputError: a missing file, a file that is not a plain ``torch.save`` dict (a pickled
            module, random bytes, a truncated file), or one of another format or version.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    accepted = FORMATS if expect is None else (expect,) if isinstance(expect, str) else expect
    try:
        with warnings.catch_warnings():  # foreign pickles warn about their protocol: noise here
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError, ... all mean "not ours"
        # torch's own message goes on to suggest weights_only=False: not advice to pass on.
        reason = (
            "not plain tensors: unreadable, or holding arbitrary Python objects"
            if "Weights only load failed" in str(err)
            else (
                str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            )
        )
        raise InputError(
            f"{path}: not a fusionfm checkpoint ({reason}); only files saved by fusionfm "
            "(plain tensors and containers) are loaded, never unpickled objects"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") not in FORMATS:
        raise InputError(
            f"{path}: not a fusionfm checkpoint (expected a dict with a 'format' in {list(FORMATS)})"
        )
    if payload["format"] not in accepted:
        raise InputError(
            f"{path}: is a {payload['format']!r} file, expected {' or '.join(map(repr, accepted))}"
        )
    if payload.get("version") != VERSION:
        raise InputError(
            f"{path}: checkpoint version {payload.get('version')!r}, this fusionfm reads {VERSION}"
        )
    return payload


LEGACY_MODEL_OPTIONS = {
    "gate": "linear",
    "gate_residual": True,
    "task_heads": False,
    "sharpness_features": False,
}
"""Values of model options missing from an older checkpoint's ``model_config``."""


def _upgrade_model_config(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """An older checkpoint's ``model_config`` in today's options, describing the same network."""
    config = dict(model_config)
    if "bounded_gate" in config:  # replaced by ``gate``
        config.setdefault("gate", "tanh" if config.pop("bounded_gate") else "linear")
    return {**LEGACY_MODEL_OPTIONS, **config}


def model_payload(
    model: FusionUNet, task: str, tasks: list[str], step: int, train_config: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``fusionfm.model`` dict of ``model`` (weights copied to the CPU)."""
    return {
        "format": MODEL,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "task": task,
        "tasks": list(tasks),
        "step": int(step),
        "train_config": dict(train_config),
    }


def _weights_mismatch(model: FusionUNet, state: Any) -> str:
    """How ``state`` differs from ``model``'s tensors, in one line ("" when it fits)."""
    if not isinstance(state, Mapping):
        return f"state_dict is a {type(state).__name__}, not a mapping"
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    resized = [
        k
        for k in expected
        if k in state
        and isinstance(state[k], torch.Tensor)
        and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if resized:
        k = resized[0]
        parts.append(
            f"{len(resized)} tensor(s) of another shape, e.g. {k}: "
            f"{tuple(state[k].shape)} in the file, {tuple(expected[k].shape)} in the model"
        )
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
    return "; ".join(parts)


def model_from_payload(payload: Mapping[str, Any], where: str = "checkpoint") -> FusionUNet:
    """Build a :class:`FusionUNet` from a model (or train-state) payload.

    Raises:
        InputError: a bad model config or weights that do not fit it.
    """
    try:
        # Checkpoints written before these options existed hold the models without them.
        config = UNetConfig.from_dict(_upgrade_model_config(payload["model_config"]))
        model = FusionUNet(config)
        mismatch = _weights_mismatch(model, payload["state_dict"])
        if mismatch:
            raise InputError(f"{where}: weights do not fit the model config ({mismatch})")
        model.load_state_dict(payload["state_dict"])
        model.flow_start = str(dict(payload.get("train_config") or {}).get("start", "mean"))
        model.learned_tasks = tuple(str(task) for task in payload.get("tasks") or ())
    except KeyError as err:
        raise InputError(f"{where}: missing key {err}") from err
    except (RuntimeError, TypeError) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{where}: weights do not fit the model config ({first_line})") from err
    return model


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[FusionUNet, dict[str, Any]]:
    """Load a trained student (a ``fusionfm.model`` or ``fusionfm.train_state`` file).

    Args:
        path: the checkpoint.
        device: where to put the model.

    Returns:
        tuple[FusionUNet, dict]: the model in eval mode, and the metadata (``task``, ``tasks``,
        ``step``, ``model_config``, ``train_config``; no weights).

    Raises:
        InputError: see :func:`load_checkpoint` and :func:`model_from_payload`.
    """
    payload = load_checkpoint(path, (MODEL, TRAIN_STATE))
    model = model_from_payload(payload, str(path)).to(device).eval()
    meta = {
        k: payload.get(k)
        for k in ("format", "task", "tasks", "step", "model_config", "train_config")
    }
    return model, meta


__all__ = [
    "EWC",
    "FORMATS",
    "MODEL",
    "REPLAY",
    "TRAIN_STATE",
    "VERSION",
    "load_checkpoint",
    "load_model",
    "model_from_payload",
    "model_payload",
    "save_checkpoint",
]
