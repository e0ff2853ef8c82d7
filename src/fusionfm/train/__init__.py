"""Training the student: in-memory task data, sequential per-task training, checkpoints."""

from fusionfm.train.checkpoint import load_checkpoint, load_model, save_checkpoint
from fusionfm.train.data import EvalPair, TaskData, load_task_data, load_test_pairs
from fusionfm.train.trainer import TrainConfig, TrainingDivergedError, TrainResult, train_task

__all__ = [
    "EvalPair",
    "TaskData",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "load_checkpoint",
    "load_model",
    "load_task_data",
    "load_test_pairs",
    "save_checkpoint",
    "train_task",
]
