"""Elastic weight consolidation (EWC) with a diagonal Fisher accumulated across tasks.

After task k the diagonal (empirical) Fisher ``F_k`` is estimated from squared gradients of the
flow-matching loss on that task's training data. The Fisher of all finished tasks is summed,
``F = F_1 + ... + F_k``, and the anchor is the latest weights ``θ*`` (online EWC with a decay of
1). While learning the next task the penalty

    λ / 2 · Σ_i F_i (θ_i − θ*_i)²

is added to the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from fusionfm.io import InputError

LossFn = Callable[[nn.Module, Any], Tensor]
"""``loss_fn(model, batch) -> scalar loss`` (the flow-matching loss of one batch)."""


def trainable_parameters(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of the trainable parameters of ``model``, by name.

    Args:
        model: the network.

    Returns:
        dict[str, Tensor]: ``name -> parameter`` copies (float32), shapes of the parameters.
    """
    return {
        name: p.detach().float().clone() for name, p in model.named_parameters() if p.requires_grad
    }


def estimate_fisher(model: nn.Module, batches: Iterable[Any], loss_fn: LossFn) -> dict[str, Tensor]:
    """Diagonal empirical Fisher: the mean over batches of the squared gradients of the loss.

    The gradients are taken with :func:`torch.autograd.grad`, so the ``.grad`` fields of the model
    are left untouched; the model's train/eval mode is not changed.

    Args:
        model: the network, with the weights learned on the finished task.
        batches: that task's training batches (whatever ``loss_fn`` takes).
        loss_fn: ``loss_fn(model, batch) -> scalar`` flow-matching loss of a batch.

    Returns:
        dict[str, Tensor]: ``name -> F`` for each trainable parameter (float32, its shape);
        parameters the loss does not reach get zeros.

    Raises:
        InputError: ``batches`` is empty.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    fisher = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in named}
    params = [p for _, p in named]
    count = 0
    for batch in batches:
        loss = loss_fn(model, batch)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for (name, _), grad in zip(named, grads, strict=True):
            if grad is not None:
                fisher[name] += grad.detach().float().pow(2)
        count += 1
    if count == 0:
        raise InputError("estimate_fisher: no batches")
    return {name: f / count for name, f in fisher.items()}


class EWCPenalty:
    """Anchors ``θ*`` and the accumulated diagonal Fisher ``F``, by parameter name.

    Args:
        strength: λ, the weight of the penalty.
        fisher: initial ``name -> F`` (empty: no finished task yet).
        anchor: initial ``name -> θ*``, with the same names and shapes as ``fisher``.

    Raises:
        InputError: a negative strength, or fisher and anchor that do not match.
    """

    def __init__(
        self,
        strength: float = 1.0,
        fisher: Mapping[str, Tensor] | None = None,
        anchor: Mapping[str, Tensor] | None = None,
    ) -> None:
        if strength < 0:
            raise InputError(f"ewc strength must be >= 0, got {strength}")
        self.strength = float(strength)
        self.fisher: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}
        self.num_tasks = 0
        if fisher or anchor:
            self.accumulate(fisher or {}, anchor or {})

    @property
    def active(self) -> bool:
        """Whether at least one task has been consolidated."""
        return bool(self.fisher)

    def accumulate(
        self, new_fisher: Mapping[str, Tensor], new_anchor: Mapping[str, Tensor]
    ) -> None:
        """Add a finished task: sum its Fisher into ``F`` and move the anchor to its weights.

        Args:
            new_fisher: ``name -> F_k`` of the finished task (e.g. from :func:`estimate_fisher`).
            new_anchor: ``name -> θ*`` the weights after that task (e.g. from
                :func:`trainable_parameters`); the names of ``new_fisher``.

        Raises:
            InputError: names or shapes that do not match.
        """
        if set(new_fisher) != set(new_anchor):
            raise InputError(
                "ewc: fisher and anchor name different parameters: "
                f"{sorted(set(new_fisher) ^ set(new_anchor))}"
            )
        for name, f in new_fisher.items():
            anchor = new_anchor[name]
            if f.shape != anchor.shape:
                raise InputError(
                    f"ewc: {name}: fisher {tuple(f.shape)} and anchor {tuple(anchor.shape)} differ"
                )
            if name in self.fisher and self.fisher[name].shape != f.shape:
                raise InputError(
                    f"ewc: {name}: new fisher {tuple(f.shape)} does not match the accumulated "
                    f"{tuple(self.fisher[name].shape)}"
                )
        for name, f in new_fisher.items():
            f = f.detach().float()
            if name in self.fisher:
                self.fisher[name] = self.fisher[name] + f.to(self.fisher[name].device)
            else:
                self.fisher[name] = f.clone()
            self.anchor[name] = new_anchor[name].detach().float().clone()
        self.num_tasks += 1

    def consolidate(self, model: nn.Module, batches: Iterable[Any], loss_fn: LossFn) -> None:
        """Estimate the Fisher of the finished task and :meth:`accumulate` it with the weights.

        Args:
            model: the network after training on the finished task.
            batches: that task's training batches.
            loss_fn: ``loss_fn(model, batch) -> scalar`` flow-matching loss.
        """
        self.accumulate(estimate_fisher(model, batches, loss_fn), trainable_parameters(model))

    def penalty(self, model: nn.Module) -> Tensor:
        """``λ/2 Σ F (θ − θ*)²`` over the consolidated parameters of ``model``.

        Args:
            model: the network being trained.

        Returns:
            Tensor: the penalty, a float32 scalar on the model's device, differentiable in the
            parameters (0 before any task has been consolidated).

        Raises:
            InputError: a consolidated parameter is missing from ``model`` or changed shape.
        """
        params = dict(model.named_parameters())
        device = next(iter(params.values())).device if params else torch.device("cpu")
        total = torch.zeros((), device=device, dtype=torch.float32)
        for name, f in self.fisher.items():
            if name not in params:
                raise InputError(f"ewc: parameter {name!r} is not in the model")
            p = params[name]
            if p.shape != f.shape:
                raise InputError(
                    f"ewc: {name}: model {tuple(p.shape)} vs consolidated {tuple(f.shape)}"
                )
            diff = p.float() - self.anchor[name].to(p.device)
            total = total + (f.to(p.device) * diff.pow(2)).sum()
        return 0.5 * self.strength * total

    __call__ = penalty

    def to(self, device: torch.device | str) -> EWCPenalty:
        """Move the Fisher and anchors to ``device`` (in place); returns ``self``."""
        self.fisher = {k: v.to(device) for k, v in self.fisher.items()}
        self.anchor = {k: v.to(device) for k, v in self.anchor.items()}
        return self

    def state_dict(self) -> dict[str, Any]:
        """Plain state (floats, ints, dicts of CPU tensors), loadable with
        ``torch.load(..., weights_only=True)``."""
        return {
            "strength": self.strength,
            "num_tasks": self.num_tasks,
            "fisher": {k: v.detach().cpu().clone() for k, v in self.fisher.items()},
            "anchor": {k: v.detach().cpu().clone() for k, v in self.anchor.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`.

        Raises:
            InputError: missing keys or fisher and anchor that do not match.
        """
        missing = {"strength", "num_tasks", "fisher", "anchor"} - set(state)
        if missing:
            raise InputError(f"ewc state: missing key(s) {sorted(missing)}")
        fisher, anchor = dict(state["fisher"]), dict(state["anchor"])
        if set(fisher) != set(anchor):
            raise InputError("ewc state: fisher and anchor name different parameters")
        for name in fisher:
            if fisher[name].shape != anchor[name].shape:
                raise InputError(f"ewc state: {name}: fisher and anchor shapes differ")
        self.strength = float(state["strength"])
        self.num_tasks = int(state["num_tasks"])
        self.fisher = {k: v.float().clone() for k, v in fisher.items()}
        self.anchor = {k: v.float().clone() for k, v in anchor.items()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> EWCPenalty:
        """A new penalty restored from a :meth:`state_dict`."""
        ewc = cls()
        ewc.load_state_dict(state)
        return ewc


__all__ = ["EWCPenalty", "LossFn", "estimate_fisher", "trainable_parameters"]
