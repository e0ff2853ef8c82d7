"""Few-step ODE solvers that integrate a learned velocity field from ``x_0`` (t=0) to t=1.

The velocity field follows the model contract of ``facebookresearch/flow_matching``:
``velocity_fn(x, t, **cond)`` with ``x`` of shape (batch_size, ...) and ``t`` of shape
(batch_size,), returning a tensor shaped like ``x``. The time grid is uniform,
``t_k = k / steps`` for ``k = 0..steps``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from fusionfm.config import MAX_SOLVER_STEPS, MIN_SOLVER_STEPS, SOLVER_METHODS
from fusionfm.io import InputError

VelocityFn = Callable[..., Tensor]
Method = Literal["euler", "heun"]


def check_steps(steps: int, low: int = MIN_SOLVER_STEPS, high: int = MAX_SOLVER_STEPS) -> int:
    """Validate a number of solver steps.

    Args:
        steps: the number of steps.
        low: the smallest allowed value.
        high: the largest allowed value.

    Returns:
        int: ``steps``.

    Raises:
        InputError: ``steps`` is not an integer in [low, high].
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or not low <= steps <= high:
        raise InputError(f"steps must be an integer in [{low}, {high}], got {steps!r}")
    return steps


def time_grid(steps: int, like: Tensor) -> Tensor:
    """The uniform time grid ``0 = t_0 < ... < t_steps = 1``.

    Args:
        steps: the number of steps (>= 1).
        like: a tensor whose device and dtype the grid takes.

    Returns:
        Tensor: the grid, shape (steps + 1,).
    """
    return torch.linspace(0.0, 1.0, steps + 1, device=like.device, dtype=like.dtype)


def euler(velocity_fn: VelocityFn, x0: Tensor, steps: int, **cond: Any) -> Tensor:
    """Explicit Euler: ``x_{k+1} = x_k + h v(x_k, t_k)`` with ``h = 1 / steps``.

    Args:
        velocity_fn: the velocity field, ``velocity_fn(x, t, **cond)``.
        x0: the start, shape (batch_size, ...).
        steps: the number of steps (>= 1), one velocity evaluation each.
        **cond: conditioning passed to ``velocity_fn`` unchanged.

    Returns:
        Tensor: the estimate of ``x_1``, shape of ``x0``.
    """
    check_steps(steps, high=10**9)
    grid = time_grid(steps, x0)
    batch = x0.shape[0]
    x = x0
    for k in range(steps):
        t_k, h = grid[k], grid[k + 1] - grid[k]
        x = x + h * velocity_fn(x, t_k.expand(batch), **cond)
    return x


def heun(velocity_fn: VelocityFn, x0: Tensor, steps: int, **cond: Any) -> Tensor:
    """Heun's method (explicit trapezoid), second order.

    ``x̃ = x_k + h v(x_k, t_k)``, ``x_{k+1} = x_k + h/2 (v(x_k, t_k) + v(x̃, t_{k+1}))``.

    Args:
        velocity_fn: the velocity field, ``velocity_fn(x, t, **cond)``.
        x0: the start, shape (batch_size, ...).
        steps: the number of steps (>= 1), two velocity evaluations each.
        **cond: conditioning passed to ``velocity_fn`` unchanged.

    Returns:
        Tensor: the estimate of ``x_1``, shape of ``x0``.
    """
    check_steps(steps, high=10**9)
    grid = time_grid(steps, x0)
    batch = x0.shape[0]
    x = x0
    for k in range(steps):
        t_k, t_next = grid[k], grid[k + 1]
        h = t_next - t_k
        v_k = velocity_fn(x, t_k.expand(batch), **cond)
        x_pred = x + h * v_k
        v_next = velocity_fn(x_pred, t_next.expand(batch), **cond)
        x = x + 0.5 * h * (v_k + v_next)
    return x


_SOLVERS: dict[str, Callable[..., Tensor]] = {"euler": euler, "heun": heun}


@torch.no_grad()
def sample(
    model: VelocityFn,
    x0: Tensor,
    cond: Mapping[str, Any] | None = None,
    steps: int = 4,
    method: Method | str = "euler",
) -> Tensor:
    """Integrate the student's velocity from ``x0`` to t=1 without gradients.

    Args:
        model: the velocity model, ``model(x, t, **cond)`` (e.g.
            :class:`fusionfm.models.FusionUNet`, with ``cond = {"y_a": ..., "y_b": ...,
            "task": ...}``).
        x0: the start image, shape (batch_size, 1, H, W).
        cond: keyword conditioning of the model.
        steps: the number of steps, 1 to 8.
        method: ``"euler"`` or ``"heun"``.

    Returns:
        Tensor: the estimate of ``x_1``, shape (batch_size, 1, H, W).

    Raises:
        InputError: an unknown method or a number of steps outside [1, 8].
    """
    check_steps(steps)
    if method not in _SOLVERS:
        raise InputError(
            f"method: unknown {method!r} (expected one of {', '.join(SOLVER_METHODS)})"
        )
    return _SOLVERS[method](model, x0, steps, **dict(cond or {}))


__all__ = [
    "Method",
    "VelocityFn",
    "check_steps",
    "euler",
    "heun",
    "sample",
    "time_grid",
]
