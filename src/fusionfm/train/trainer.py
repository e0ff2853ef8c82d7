"""Sequential per-task training of the student with EWC and experience replay.

:func:`train_task` learns one task, starting from the previous stage's model, EWC state and
replay buffer (none for the first task), and writes this stage's three files. Each step:

1. a batch of ``batch_size`` crops: ``batch_size - num_replay(batch_size, replay_ratio)`` from the
   current task, the rest replayed from earlier tasks (each with its own task id);
2. ``x_0 = start_image(y_a, y_b, start)`` (+ Gaussian noise of ``noise_sigma``), ``t ~ U(0, 1)``,
   ``x_t = (1 - t) x_0 + t x_1``;
3. loss = flow-matching MSE to ``x_1 - x_0`` + the EWC penalty of the finished tasks;
4. AdamW with a linear warm-up and cosine decay of the learning rate, gradient clipping.

A non-finite loss stops training with :class:`TrainingDivergedError` naming task and step. Every
random draw of a step (crops, flips, replay picks, noise, times) comes from one seeded CPU
generator, and the periodic train-state checkpoint stores it with the model, the optimizer and
the global RNG states, so a killed run resumed from that file ends with exactly the weights of an
uninterrupted run (on the CPU; CUDA kernels are not bitwise deterministic).

After the last step the diagonal Fisher of this task (``fisher_batches`` batches of its own
crops) is added to the EWC state with the new weights as anchor, ``replay_capacity`` crops of this
task are offered to the replay reservoir, and model, EWC and replay files are written.

With a :class:`~fusionfm.train.data.TaskMixture` (the ``joint`` ablation: every task at once)
each current-task item's task is drawn uniformly, and the Fisher and the replay items cover all
of its tasks. The loss points logged every ``log_every`` steps are also returned (and kept in the
train state across a resume) as :attr:`TrainResult.history`.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fusionfm.config import START_MODES, reject_unknown_keys
from fusionfm.continual import EWCPenalty, ReplayBuffer, num_replay
from fusionfm.io import InputError
from fusionfm.loss import endpoint_gradient_loss, flow_matching_loss
from fusionfm.models import TASK_INDEX, FusionUNet, UNetConfig
from fusionfm.path import StraightPath, start_image
from fusionfm.train import checkpoint as ckpt
from fusionfm.train.data import FIELDS, Batch, TaskData, TaskMixture

_LOG = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainConfig:
    """Hyperparameters of one training stage (the ``train`` config section).

    Attributes:
        steps: optimizer steps per task.
        batch_size: crops per batch (current task + replay).
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps of the learning rate, then cosine decay to
            ``min_lr_ratio * lr``.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        grad_clip: max global gradient norm (0: no clipping).
        crop: side of the square training crops.
        start: start image ``x_0``: ``mean``, ``max``, ``a`` or ``b``.
        noise_sigma: Gaussian noise added to ``x_0`` during training.
        gradient_loss_weight: weight of the auxiliary
            :func:`~fusionfm.loss.endpoint_gradient_loss` (0: plain flow matching).
        ewc_lambda: EWC strength λ (0: no penalty; the Fisher is still accumulated).
        replay_capacity: crops of each finished task kept in the replay buffer (0: no replay).
        replay_ratio: fraction of each batch drawn from the replay buffer, in [0, 1).
        fisher_batches: batches of the finished task used for its Fisher.
        seed: seed of every random draw.
        log_every: log training metrics every this many steps.
        amp: mixed precision: ``"auto"`` (on CUDA only), ``True`` or ``False``; never on CPU.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
        model: the student's architecture.
    """

    steps: int = 200
    batch_size: int = 8
    lr: float = 1e-2
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    crop: int = 56
    start: str = "mean"
    noise_sigma: float = 0.0
    gradient_loss_weight: float = 3.0
    ewc_lambda: float = 1000.0
    replay_capacity: int = 64
    replay_ratio: float = 0.25
    fisher_batches: int = 8
    seed: int = 0
    log_every: int = 10
    amp: bool | str = "auto"
    device: str = "auto"
    model: UNetConfig = field(default_factory=UNetConfig)

    def __post_init__(self) -> None:
        if isinstance(self.model, Mapping):
            self.model = UNetConfig.from_dict(self.model)
        for name in ("steps", "batch_size", "crop", "fisher_batches", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"train.{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "replay_capacity", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"train.{name} must be an integer >= 0, got {value!r}")
        for name in ("lr",):
            if not float(getattr(self, name)) > 0:
                raise InputError(f"train.{name} must be > 0, got {getattr(self, name)!r}")
        for name in (
            "weight_decay",
            "grad_clip",
            "noise_sigma",
            "gradient_loss_weight",
            "ewc_lambda",
        ):
            if not float(getattr(self, name)) >= 0:
                raise InputError(f"train.{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise InputError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not 0.0 <= self.replay_ratio < 1.0:
            raise InputError(f"train.replay_ratio must be in [0, 1), got {self.replay_ratio}")
        if self.start not in START_MODES:
            raise InputError(
                f"train.start: unknown {self.start!r} (expected one of {', '.join(START_MODES)})"
            )
        if self.amp not in (True, False, "auto"):
            raise InputError(f"train.amp must be true, false or 'auto', got {self.amp!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"train.device must be auto, cpu or cuda, got {self.device!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> TrainConfig:
        """Build from the ``train`` config section (with an optional ``model`` subsection).

        Raises:
            InputError: an unknown key or a bad value.
        """
        d = dict(d or {})
        reject_unknown_keys("train", d, [f.name for f in fields(cls)])
        d["model"] = UNetConfig.from_dict(d.get("model"), "train.model")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (for checkpoints and MLflow params)."""
        out = asdict(self)
        out["model"] = self.model.to_dict()
        return out

    def resolve_device(self) -> torch.device:
        """The device to train on.

        Raises:
            InputError: ``device: cuda`` without CUDA.
        """
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InputError("train.device is 'cuda' but CUDA is not available")
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def use_amp(self, device: torch.device) -> bool:
        """Whether to use mixed precision on ``device`` (only ever on CUDA)."""
        return device.type == "cuda" and self.amp in (True, "auto")

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) ``step``: linear warm-up, then cosine decay."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.min_lr_ratio
        return self.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class TrainResult:
    """Summary of one :func:`train_task` call."""

    task: str
    tasks: list[str]
    steps: int
    resumed_from_step: int
    num_pairs: int
    final_loss: float
    seconds: float
    steps_per_s: float
    history: list[dict[str, float]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# random states


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002 - the global state others may draw from
    state: dict[str, Any] = {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _python_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [int(version), [int(v) for v in internal], gauss]


def _set_rng_state(generator: torch.Generator, state: Mapping[str, Any]) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            npy["name"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------
# batches and loss


def _fit_crop(x: Tensor, crop: int) -> Tensor:
    """Center-crop or edge-pad a (1, H, W) replay item to (1, crop, crop)."""
    height, width = x.shape[-2:]
    if height > crop:
        top = (height - crop) // 2
        x = x[..., top : top + crop, :]
    if width > crop:
        left = (width - crop) // 2
        x = x[..., left : left + crop]
    pad_h, pad_w = crop - x.shape[-2], crop - x.shape[-1]
    if pad_h or pad_w:
        x = F.pad(x[None], (0, pad_w, 0, pad_h), mode="replicate")[0]
    return x


def _task_id(task: str | int) -> int:
    if isinstance(task, int):
        return task
    if task not in TASK_INDEX:
        raise InputError(f"replay buffer holds unknown task {task!r}")
    return TASK_INDEX[task]


def make_batch(
    data: TaskData | TaskMixture,
    replay: ReplayBuffer | None,
    config: TrainConfig,
    generator: torch.Generator,
) -> tuple[Batch, Tensor]:
    """One mixed training batch on the CPU: current-task crops, then replayed items.

    Returns:
        tuple[Batch, Tensor]: ``{"y_a", "y_b", "x_1", "x_0", "t"}`` (images (B, 1, c, c), ``t``
        (B,)) and the task ids (B,) long.
    """
    n_rep = 0
    if replay is not None and config.replay_capacity > 0 and replay.tasks:
        n_rep = num_replay(config.batch_size, config.replay_ratio)
    batch, ids = _sample_current(data, config.batch_size - n_rep, generator, config.crop)
    if n_rep:
        drawn = replay.sample(n_rep, generator=generator)  # type: ignore[union-attr]
        for name in FIELDS:
            extra = torch.stack([_fit_crop(item[name], config.crop) for _, item in drawn])
            batch[name] = torch.cat([batch[name], extra])
        ids += [_task_id(task) for task, _ in drawn]
    _add_start_and_time(batch, config, generator)
    return batch, torch.tensor(ids, dtype=torch.long)


def _sample_current(
    data: TaskData | TaskMixture, count: int, generator: torch.Generator, crop: int
) -> tuple[Batch, list[int]]:
    """``count`` crops of the task(s) being learned and their task ids."""
    if isinstance(data, TaskMixture):
        batch, tasks = data.sample_with_tasks(count, generator, crop)
        return batch, [TASK_INDEX[task] for task in tasks]
    return data.sample(count, generator, crop), [TASK_INDEX[data.task]] * count


def _add_start_and_time(batch: Batch, config: TrainConfig, generator: torch.Generator) -> None:
    x_0 = start_image(batch["y_a"], batch["y_b"], config.start)
    if config.noise_sigma > 0:
        x_0 = x_0 + config.noise_sigma * torch.randn(x_0.shape, generator=generator)
    batch["x_0"] = x_0
    batch["t"] = torch.rand(x_0.shape[0], generator=generator)


def batch_loss(
    model: FusionUNet,
    batch: Batch,
    task_ids: Tensor,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    gradient_weight: float = 0.0,
) -> Tensor:
    """Flow-matching loss of a prepared batch (see :func:`make_batch`), float32 scalar.

    With ``gradient_weight > 0``, plus that times :func:`~fusionfm.loss.endpoint_gradient_loss`.
    """
    moved = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    sample = StraightPath().sample(moved["x_0"], moved["x_1"], moved["t"])
    context = (
        torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
    )
    with context:
        pred = model(sample.x_t, sample.t, moved["y_a"], moved["y_b"], task_ids.to(device))
    loss = flow_matching_loss(pred, sample)
    if gradient_weight > 0:
        loss = loss + gradient_weight * endpoint_gradient_loss(pred, sample)
    return loss


def optimizer_step(
    model: FusionUNet,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loss: Tensor,
    grad_clip: float,
) -> None:
    """Backward pass, optional gradient-norm clipping (``grad_clip > 0``) and one optimizer step,
    through ``scaler`` (a no-op unless float16 mixed precision is on)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


# ---------------------------------------------------------------------------------------------
# previous stage


def _load_previous(
    previous: PathLike | None,
    previous_ewc: PathLike | None,
    previous_replay: PathLike | None,
    config: TrainConfig,
) -> tuple[dict[str, Any] | None, EWCPenalty, ReplayBuffer]:
    ewc = EWCPenalty(config.ewc_lambda)
    replay = ReplayBuffer(max(1, config.replay_capacity), seed=config.seed)
    if previous is None:
        if previous_ewc is not None or previous_replay is not None:
            raise InputError("previous ewc/replay files given without a previous checkpoint")
        return None, ewc, replay
    previous = Path(previous)
    previous_ewc = Path(previous_ewc) if previous_ewc else previous.parent / "ewc.pt"
    previous_replay = Path(previous_replay) if previous_replay else previous.parent / "replay.pt"
    payload = ckpt.load_checkpoint(previous, ckpt.MODEL)
    if payload.get("model_config") != config.model.to_dict():
        raise InputError(
            f"{previous}: model config {payload.get('model_config')} differs from the configured "
            f"{config.model.to_dict()}; retrain the earlier tasks"
        )
    ewc_payload = ckpt.load_checkpoint(previous_ewc, ckpt.EWC)
    try:
        ewc = EWCPenalty.from_state_dict(ewc_payload["state"])
    except (KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{previous_ewc}: malformed ewc state ({err})") from err
    ewc.strength = float(config.ewc_lambda)
    replay_payload = ckpt.load_checkpoint(previous_replay, ckpt.REPLAY)
    try:
        replay = ReplayBuffer.from_state_dict(replay_payload["state"])
    except (KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{previous_replay}: malformed replay state ({err})") from err
    return payload, ewc, replay


def default_state_path(out_checkpoint: PathLike) -> Path:
    """Where :func:`train_task` writes its periodic train state: ``<stem>.state.pt`` beside
    ``out_checkpoint``."""
    out = Path(out_checkpoint)
    return out.with_name(f"{out.stem}.state.pt")


# ---------------------------------------------------------------------------------------------
# training


def train_task(
    task: str,
    data: TaskData | TaskMixture,
    config: TrainConfig,
    previous: PathLike | None,
    out_checkpoint: PathLike,
    out_ewc: PathLike,
    out_replay: PathLike,
    tracker: Any | None = None,
    resume_from: PathLike | None = None,
    checkpoint_every: int = 0,
    previous_ewc: PathLike | None = None,
    previous_replay: PathLike | None = None,
    state_path: PathLike | None = None,
) -> TrainResult:
    """Train the student on one task and write model, EWC and replay files.

    Args:
        task: the task being learned (``data.task``; ``"joint"`` for a :class:`TaskMixture`).
        data: its training pairs (or several tasks' pairs, drawn together).
        config: hyperparameters.
        previous: the previous stage's model checkpoint (``None`` for the first task): its
            weights initialize the model.
        out_checkpoint: model checkpoint to write (``fusionfm.model``).
        out_ewc: EWC state to write (previous Fisher + this task's).
        out_replay: replay buffer to write (previous items + this task's).
        tracker: a :class:`fusionfm.tracking.Tracker` (``log_metrics(..., step=)``) or ``None``.
        resume_from: a train-state file to resume from; ignored when it does not exist, so a
            rerun can always pass :func:`default_state_path`.
        checkpoint_every: write the train state every this many steps (0: never).
        previous_ewc: the previous EWC file (default ``ewc.pt`` beside ``previous``).
        previous_replay: the previous replay file (default ``replay.pt`` beside ``previous``).
        state_path: where the periodic train state goes (default
            :func:`default_state_path`); it is deleted after a successful run.

    Returns:
        TrainResult: steps, timing, final loss.

    Raises:
        InputError: bad inputs (task mismatch, unreadable or foreign checkpoints, a train state
            of another task or config).
        TrainingDivergedError: a NaN or infinite loss (names task and step).
    """
    if task != data.task:
        raise InputError(f"train_task: task {task!r} but the data is of task {data.task!r}")
    if checkpoint_every < 0:
        raise InputError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    device = config.resolve_device()
    amp_dtype = None
    if config.use_amp(device):
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    state_path = Path(state_path) if state_path else default_state_path(out_checkpoint)

    prev_payload, ewc, replay = _load_previous(previous, previous_ewc, previous_replay, config)
    tasks_before = list(prev_payload["tasks"]) if prev_payload else []
    tasks = [*tasks_before, *(data.tasks if isinstance(data, TaskMixture) else [task])]
    torch.manual_seed(config.seed)
    model = (
        ckpt.model_from_payload(prev_payload, str(previous))
        if prev_payload
        else FusionUNet(config.model)
    )
    model.flow_start = config.start
    model.to(device).train()
    ewc.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    config_dict = config.to_dict()

    start_step = 0
    history: list[dict[str, float]] = []  # one point per log_every steps
    if resume_from is not None and Path(resume_from).is_file():
        state = ckpt.load_checkpoint(resume_from, ckpt.TRAIN_STATE)
        if state.get("task") != task or state.get("train_config") != config_dict:
            raise InputError(
                f"{resume_from}: train state of task {state.get('task')!r} with another config; "
                "delete it to start over"
            )
        if state.get("previous") != (str(previous) if previous else None):
            raise InputError(f"{resume_from}: train state started from another previous stage")
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        _set_rng_state(generator, state["rng"])
        start_step = int(state["step"])
        history = [dict(point) for point in state.get("history", [])]
        _LOG.info("task %s: resuming from %s at step %d", task, resume_from, start_step)

    def save_state(step: int) -> None:
        payload = ckpt.model_payload(model, task, tasks, step, config_dict)
        payload.update(
            format=ckpt.TRAIN_STATE,
            optimizer=optimizer.state_dict(),
            scaler=scaler.state_dict() if scaler.is_enabled() else {},
            rng=_rng_state(generator),
            previous=str(previous) if previous else None,
            history=history,
        )
        ckpt.save_checkpoint(state_path, payload)

    recent: list[float] = []
    began = time.perf_counter()
    for step in range(start_step, config.steps):
        lr = config.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch, task_ids = make_batch(data, replay, config, generator)
        fm_loss = batch_loss(model, batch, task_ids, device, amp_dtype, config.gradient_loss_weight)
        ewc_term = ewc.penalty(model) if ewc.active and ewc.strength > 0 else fm_loss.new_zeros(())
        loss = fm_loss + ewc_term
        loss_value, fm_value, ewc_value = (float(v.detach()) for v in (loss, fm_loss, ewc_term))
        if not math.isfinite(loss_value):
            raise TrainingDivergedError(
                f"task {task!r}: training loss is {loss_value} at step {step + 1} of "
                f"{config.steps} (flow-matching {fm_value}, ewc {ewc_value}); "
                f"lower train.lr (now {config.lr}) or check the data"
            )
        optimizer_step(model, optimizer, scaler, loss, config.grad_clip)
        done = step + 1
        recent = [*recent, fm_value][-config.log_every :]
        if done % config.log_every == 0 or done == config.steps:
            point = {"train/loss": loss_value, "train/fm_loss": fm_value, "train/ewc": ewc_value}
            point["train/lr"] = lr
            history.append({"step": float(done), **point})
            if tracker is not None:
                tracker.log_metrics(point, step=done)
        if checkpoint_every and done % checkpoint_every == 0 and done < config.steps:
            save_state(done)
    seconds = time.perf_counter() - began
    steps_run = config.steps - start_step

    # consolidate: Fisher of this task, replay items of this task
    fisher_gen = torch.Generator().manual_seed(config.seed + 1)
    fisher_batches = []
    for _ in range(config.fisher_batches):
        fb, fb_ids = _sample_current(data, config.batch_size, fisher_gen, config.crop)
        _add_start_and_time(fb, config, fisher_gen)
        fisher_batches.append((fb, torch.tensor(fb_ids, dtype=torch.long)))
    ewc.consolidate(model, fisher_batches, lambda m, b: batch_loss(m, b[0], b[1], device))
    if config.replay_capacity > 0:
        replay_gen = torch.Generator().manual_seed(config.seed + 2)
        for part in data.parts if isinstance(data, TaskMixture) else [data]:
            replay.add(part.task, part.sample(config.replay_capacity, replay_gen, config.crop))

    ckpt.save_checkpoint(
        out_checkpoint, ckpt.model_payload(model, task, tasks, config.steps, config_dict)
    )
    ckpt.save_checkpoint(out_ewc, {"format": ckpt.EWC, "tasks": tasks, "state": ewc.state_dict()})
    ckpt.save_checkpoint(
        out_replay, {"format": ckpt.REPLAY, "tasks": tasks, "state": replay.state_dict()}
    )
    if state_path.exists():
        state_path.unlink()

    result = TrainResult(
        task=task,
        tasks=tasks,
        steps=config.steps,
        resumed_from_step=start_step,
        num_pairs=len(data),
        final_loss=float(np.mean(recent)) if recent else float("nan"),
        seconds=seconds,
        steps_per_s=steps_run / seconds if seconds > 0 else float("nan"),
        history=history,
    )
    if tracker is not None:
        tracker.log_metrics(
            {"train/steps_per_s": result.steps_per_s, "train/seconds": seconds},
            step=config.steps,
        )
    return result


__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "batch_loss",
    "default_state_path",
    "make_batch",
    "optimizer_step",
    "train_task",
]
