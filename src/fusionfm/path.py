"""The straight (conditional optimal-transport) probability path of the student.

The student learns the velocity of the straight path from a source-derived start image ``x_0`` to
the pseudo-label ``x_1``::

    x_t  = (1 - t) * x_0 + t * x_1
    dx_t = d x_t / dt = x_1 - x_0

:class:`StraightPath` draws points on that path (the analogue of ``CondOTProbPath`` in
``facebookresearch/flow_matching``) and :func:`start_image` builds ``x_0`` from the two source
luminances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from fusionfm.config import START_MODES
from fusionfm.io import InputError

StartMode = Literal["mean", "max", "a", "b"]


@dataclass
class PathSample:
    """A batch of points on the straight path, with the velocity the student must predict."""

    x_0: Tensor = field(metadata={"help": "start images X_0, shape (batch_size, ...)."})
    x_1: Tensor = field(metadata={"help": "target images X_1, shape (batch_size, ...)."})
    t: Tensor = field(metadata={"help": "times, shape (batch_size,)."})
    x_t: Tensor = field(metadata={"help": "points X_t on the path, shape (batch_size, ...)."})
    dx_t: Tensor = field(
        metadata={"help": "velocity dX_t/dt = X_1 - X_0, shape (batch_size, ...)."}
    )


def expand_time(t: Tensor | float, batch_size: int, like: Tensor) -> Tensor:
    """Times as a ``(batch_size,)`` tensor on the device and in the dtype of ``like``.

    Args:
        t: a Python number, a 0-d tensor, or a tensor of shape (batch_size,).
        batch_size: the batch size B.
        like: a tensor whose device and floating dtype the result takes.

    Returns:
        Tensor: the times, shape (batch_size,).

    Raises:
        InputError: ``t`` has a shape other than () or (batch_size,).
    """
    t = torch.as_tensor(t, device=like.device, dtype=like.dtype)
    if t.ndim == 0:
        return t.expand(batch_size)
    if t.shape != (batch_size,):
        raise InputError(f"t: expected a scalar or shape ({batch_size},), got {tuple(t.shape)}")
    return t


def _broadcast_time(t: Tensor, x: Tensor) -> Tensor:
    """Reshape ``t`` of shape (B,) to (B, 1, ..., 1) so that it broadcasts against ``x``."""
    return t.reshape(t.shape[0], *([1] * (x.ndim - 1)))


class StraightPath:
    """The straight path ``x_t = (1 - t) x_0 + t x_1`` with constant velocity ``x_1 - x_0``."""

    def sample(self, x_0: Tensor, x_1: Tensor, t: Tensor | float) -> PathSample:
        """Points on the path between ``x_0`` and ``x_1`` at times ``t``.

        Args:
            x_0: start images, shape (batch_size, ...).
            x_1: target images, shape (batch_size, ...), the same as ``x_0``.
            t: times in [0, 1], a scalar (the same time for every sample) or shape (batch_size,).

        Returns:
            PathSample: ``x_t`` and ``dx_t`` of shape (batch_size, ...); ``t`` of shape
            (batch_size,).

        Raises:
            InputError: the shapes of ``x_0``, ``x_1`` and ``t`` do not agree.
        """
        if x_0.shape != x_1.shape:
            raise InputError(
                f"x_0 and x_1 must have the same shape, got {tuple(x_0.shape)} and "
                f"{tuple(x_1.shape)}"
            )
        if x_0.ndim < 1:
            raise InputError("x_0 must have a batch dimension")
        t = expand_time(t, x_0.shape[0], x_0)
        t_b = _broadcast_time(t, x_0)
        x_t = (1 - t_b) * x_0 + t_b * x_1
        dx_t = x_1 - x_0
        return PathSample(x_0=x_0, x_1=x_1, t=t, x_t=x_t, dx_t=dx_t)

    @staticmethod
    def velocity(x_0: Tensor, x_1: Tensor) -> Tensor:
        """The (time-independent) velocity of the path, ``x_1 - x_0``, shape of ``x_0``."""
        return x_1 - x_0


def start_image(
    y_a: Tensor,
    y_b: Tensor,
    mode: StartMode | str = "mean",
    noise_sigma: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The start image ``x_0`` derived from the two source luminances.

    Args:
        y_a: first source luminance in [0, 1], shape (batch_size, 1, H, W).
        y_b: second source luminance in [0, 1], shape (batch_size, 1, H, W).
        mode: ``"mean"`` (average of the sources), ``"max"`` (pixel-wise maximum), ``"a"`` or
            ``"b"`` (one source).
        noise_sigma: standard deviation of the Gaussian noise added to the start (0: none). The
            noisy start is not clipped, so that it stays a smooth distribution around the sources.
        generator: random generator of the noise (on the device of the sources), for
            reproducibility.

    Returns:
        Tensor: ``x_0``, shape (batch_size, 1, H, W), dtype and device of ``y_a``.

    Raises:
        InputError: an unknown mode, a negative ``noise_sigma`` or sources of different shapes.
    """
    if y_a.shape != y_b.shape:
        raise InputError(
            f"y_a and y_b must have the same shape, got {tuple(y_a.shape)} and {tuple(y_b.shape)}"
        )
    if noise_sigma < 0:
        raise InputError(f"noise_sigma must be >= 0, got {noise_sigma}")
    if mode == "mean":
        x_0 = 0.5 * (y_a + y_b)
    elif mode == "max":
        x_0 = torch.maximum(y_a, y_b)
    elif mode == "a":
        x_0 = y_a.clone()
    elif mode == "b":
        x_0 = y_b.clone()
    else:
        raise InputError(f"start mode: unknown {mode!r} (expected one of {', '.join(START_MODES)})")
    if noise_sigma > 0:
        noise = torch.randn(x_0.shape, generator=generator, device=x_0.device, dtype=x_0.dtype)
        x_0 = x_0 + noise_sigma * noise
    return x_0


__all__ = ["PathSample", "StartMode", "StraightPath", "expand_time", "start_image"]
