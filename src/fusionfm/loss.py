"""The conditional flow-matching loss: mean squared error to the velocity of the path."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from fusionfm.io import InputError
from fusionfm.path import PathSample

Reduction = Literal["mean", "sum", "none"]


def flow_matching_loss(
    velocity_pred: Tensor, path_sample: PathSample, reduction: Reduction | str = "mean"
) -> Tensor:
    """Mean squared error between the predicted velocity and the path velocity ``dx_t``.

    Args:
        velocity_pred: predicted velocity, shape (batch_size, ...), the shape of
            ``path_sample.dx_t``.
        path_sample: points on the path, from :meth:`fusionfm.path.StraightPath.sample`.
        reduction: ``"mean"`` (mean over every element), ``"sum"`` (sum of the per-sample
            means) or ``"none"`` (one value per sample).

    Returns:
        Tensor: a scalar for ``"mean"`` and ``"sum"``, shape (batch_size,) for ``"none"``.
        Computed in float32 at least, whatever the dtype of the prediction (mixed precision).

    Raises:
        InputError: mismatched shapes or an unknown reduction.
    """
    target = path_sample.dx_t
    if velocity_pred.shape != target.shape:
        raise InputError(
            f"velocity_pred has shape {tuple(velocity_pred.shape)}, expected "
            f"{tuple(target.shape)} (the shape of dx_t)"
        )
    diff = velocity_pred.float() - target.float()
    per_sample = diff.pow(2).flatten(start_dim=1).mean(dim=1)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise InputError(f"reduction: unknown {reduction!r} (expected mean, sum or none)")


def endpoint_gradient_loss(velocity_pred: Tensor, path_sample: PathSample) -> Tensor:
    """Mean absolute error between the image gradients of the predicted and the true endpoint.

    The predicted endpoint is ``x_t + (1 - t) * v`` (one Euler step to ``t = 1``); its horizontal
    and vertical forward differences are compared with those of ``x_1``. Zero when the velocity is
    exact. Images have shape (batch_size, C, H, W); returns a float32 scalar.
    """
    if velocity_pred.shape != path_sample.dx_t.shape or velocity_pred.ndim != 4:
        raise InputError(
            f"velocity_pred has shape {tuple(velocity_pred.shape)}, expected "
            f"{tuple(path_sample.dx_t.shape)} (4-d, the shape of dx_t)"
        )
    remaining = (1 - path_sample.t.float()).reshape(-1, 1, 1, 1)
    error = path_sample.x_t.float() + remaining * velocity_pred.float() - path_sample.x_1.float()
    dx = error[..., :, 1:] - error[..., :, :-1]
    dy = error[..., 1:, :] - error[..., :-1, :]
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


__all__ = ["Reduction", "endpoint_gradient_loss", "flow_matching_loss"]
