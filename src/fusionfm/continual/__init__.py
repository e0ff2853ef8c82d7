"""Continual learning across fusion tasks: EWC penalty and experience replay."""

from fusionfm.continual.ewc import EWCPenalty, LossFn, estimate_fisher, trainable_parameters
from fusionfm.continual.replay import (
    Item,
    ReplayBuffer,
    TaskKey,
    expected_keep_probability,
    num_replay,
)

__all__ = [
    "EWCPenalty",
    "Item",
    "LossFn",
    "ReplayBuffer",
    "TaskKey",
    "estimate_fisher",
    "expected_keep_probability",
    "num_replay",
    "trainable_parameters",
]
