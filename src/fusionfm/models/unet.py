"""The FusionFM student: a small conditional U-Net that predicts the flow-matching velocity.

Input is the concatenation ``(x_t, y_a, y_b)`` of the current point on the path and the two source
luminances, by default with each source's local sharpness (:func:`local_sharpness`). A sinusoidal
embedding of ``t`` and a learned embedding of the fusion task are summed and injected into every
residual block as a per-channel scale and shift (FiLM) after its second GroupNorm. By default each
task has its own output convolution, which predicts a per-pixel gate ``g`` bounded by
:func:`leaky_clamp`; the velocity is ``g * (y_a - y_b)``. The network downsamples ``depth`` times
by 2, so inputs are padded (reflect) to a multiple of ``2**depth`` and the output is cropped back:
any image size works.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusionfm.config import TASKS, UNetConfig
from fusionfm.io import InputError

TASK_INDEX: dict[str, int] = {task: index for index, task in enumerate(TASKS)}
"""Index of each fusion task in the task embedding: ``{"ivf": 0, "mif": 1, "mef": 2, "mff": 3}``."""


def pad_to_stride(x: Tensor, stride: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad the bottom and right of an image batch to a multiple of ``stride``.

    Reflection padding where the image is large enough, replication otherwise.

    Args:
        x: images, shape (batch_size, C, H, W).
        stride: the multiple to pad to.

    Returns:
        tuple[Tensor, tuple[int, int]]: the padded images, shape (batch_size, C, H', W') with H'
        and W' the next multiples of ``stride``, and the original size ``(H, W)``.
    """
    height, width = x.shape[-2:]
    pad_h = (-height) % stride
    pad_w = (-width) % stride
    if pad_h == 0 and pad_w == 0:
        return x, (height, width)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (height, width)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the top-left ``size = (H, W)`` of an image batch, undoing :func:`pad_to_stride`.

    Args:
        x: images, shape (batch_size, C, H', W') with H' >= H and W' >= W.
        size: the size ``(H, W)`` to keep.

    Returns:
        Tensor: shape (batch_size, C, H, W).
    """
    height, width = size
    return x[..., :height, :width]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features of (scaled) times, as in the Transformer and DDPM.

    Args:
        t: times, shape (batch_size,).
        dim: number of features (even).
        max_period: the longest period of the sinusoids.

    Returns:
        Tensor: ``[cos(t w_i), sin(t w_i)]`` in float32, shape (batch_size, dim).
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def local_sharpness(y: Tensor, window: int = 7) -> Tensor:
    """Local sharpness of an image batch: the gradient magnitude averaged over a window.

    Args:
        y: images in [0, 1], shape (batch_size, 1, H, W).
        window: side of the averaging window (odd).

    Returns:
        Tensor: ``8 * box_window(|grad y|)``, the gradient from central differences, borders
        replicated; the factor 8 puts typical values near one. Shape (batch_size, 1, H, W).
    """
    padded = F.pad(y, (1, 1, 1, 1), mode="replicate")
    dx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    dy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    magnitude = torch.sqrt(dx * dx + dy * dy + 1e-12)
    half = window // 2
    magnitude = F.pad(magnitude, (half, half, half, half), mode="replicate")
    return 8.0 * F.avg_pool2d(magnitude, window, stride=1)


GATE_LEAK = 0.01
"""Slope of :func:`leaky_clamp` beyond its bounds."""


def leaky_clamp(x: Tensor, bound: float = 0.5, leak: float = GATE_LEAK) -> Tensor:
    """Clamp to ``[-bound, bound]``, leaking with slope ``leak`` beyond (any shape).

    A plain clamp has no gradient once saturated: a gate saturated everywhere by one task (e.g.
    pixel selection) could never be moved by the next one. The leak keeps a small gradient there,
    and the loss pulls an overshooting gate back to the bound.
    """
    clamped = x.clamp(-bound, bound)
    return clamped + leak * (x - clamped)


def _num_groups(channels: int, max_groups: int) -> int:
    """The largest number of GroupNorm groups up to ``max_groups`` that divides ``channels``."""
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, twice, with FiLM (scale-shift) conditioning and a residual path."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int, max_groups: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_num_groups(in_ch, max_groups), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = nn.GroupNorm(_num_groups(out_ch, max_groups), out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: features, shape (batch_size, in_ch, H, W).
            emb: conditioning embedding (already passed through SiLU), shape (batch_size, emb_dim).

        Returns:
            Tensor: shape (batch_size, out_ch, H, W).
        """
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb_proj(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """A 3x3 convolution with stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(batch_size, C, H, W) -> (batch_size, C, H/2, W/2), H and W even."""
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling followed by a 3x3 convolution to ``out_channels``."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(batch_size, C, H, W) -> (batch_size, out_channels, 2H, 2W)."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class FusionUNet(nn.Module):
    """Conditional U-Net predicting the velocity ``dx_t`` of the straight path.

    Args:
        config: the architecture; the default has about 0.25 M parameters.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or UNetConfig()
        chans = config.level_channels
        emb_dim = config.embedding_dim
        groups, dropout = config.max_groups, config.dropout

        self.time_mlp = nn.Sequential(
            nn.Linear(config.time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.task_embedding = nn.Embedding(config.num_tasks, emb_dim)

        sharpness = 2 if config.sharpness_features else 0
        self.in_conv = nn.Conv2d(
            config.out_channels + config.in_channels + sharpness, chans[0], 3, padding=1
        )

        # Encoder: residual blocks at each level (the last output is the level's skip), then
        # downsample. Decoder: upsample, concatenate the skip, residual blocks.
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        ch = chans[0]
        for level in range(config.depth + 1):
            blocks = nn.ModuleList()
            for _ in range(config.num_res_blocks):
                blocks.append(ResBlock(ch, chans[level], emb_dim, groups, dropout))
                ch = chans[level]
            self.down_blocks.append(blocks)
            if level < config.depth:
                self.downsamples.append(Downsample(ch))

        self.mid_blocks = nn.ModuleList(
            [ResBlock(ch, ch, emb_dim, groups, dropout) for _ in range(config.num_mid_blocks)]
        )

        self.upsamples = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for level in reversed(range(config.depth)):
            self.upsamples.append(Upsample(ch, chans[level]))
            ch = 2 * chans[level]  # upsampled features + skip
            blocks = nn.ModuleList()
            for _ in range(config.num_res_blocks):
                blocks.append(ResBlock(ch, chans[level], emb_dim, groups, dropout))
                ch = chans[level]
            self.up_blocks.append(blocks)

        self.out_norm = nn.GroupNorm(_num_groups(ch, groups), ch)
        head = config.out_channels
        if config.gated_output and config.gate_residual:
            head *= 2  # gate and residual
        self.out_conv = nn.Conv2d(
            ch, head * (config.num_tasks if config.task_heads else 1), 3, padding=1
        )
        self.flow_start = "mean"  # the start image x_0 it was trained from (set by the trainer)
        self.learned_tasks: tuple[str, ...] = ()  # as its checkpoint records; () = not known

    @property
    def stride(self) -> int:
        """Input sizes are padded to a multiple of this (``2**depth``)."""
        return self.config.stride

    def embed(self, t: Tensor, task: Tensor) -> Tensor:
        """The combined conditioning embedding.

        Args:
            t: times in [0, 1], shape (batch_size,).
            task: task indices (see :data:`TASK_INDEX`), long, shape (batch_size,).

        Returns:
            Tensor: ``SiLU(time_mlp(sin(t)) + task_embedding(task))``, shape (batch_size, emb_dim).
        """
        features = timestep_embedding(t * self.config.time_scale, self.config.time_dim)
        time_emb = self.time_mlp(features.to(self.in_conv.weight.dtype))
        return F.silu(time_emb + self.task_embedding(task))

    def forward(self, x_t: Tensor, t: Tensor, y_a: Tensor, y_b: Tensor, task: Tensor) -> Tensor:
        """Predict the velocity at ``(x_t, t)`` given the sources and the task.

        Args:
            x_t: points on the path, shape (batch_size, 1, H, W); any H and W.
            t: times in [0, 1], shape (batch_size,) (a 0-d tensor is broadcast).
            y_a: first source luminance, shape (batch_size, 1, H, W).
            y_b: second source luminance, shape (batch_size, 1, H, W).
            task: task indices (see :data:`TASK_INDEX`), long, shape (batch_size,) (a 0-d tensor
                is broadcast).

        Returns:
            Tensor: predicted velocity, shape (batch_size, 1, H, W).

        Raises:
            InputError: inconsistent shapes.
        """
        batch = x_t.shape[0]
        if x_t.ndim != 4 or y_a.shape != x_t.shape[:1] + y_a.shape[1:] or y_a.shape != y_b.shape:
            raise InputError(
                f"x_t, y_a, y_b must be (B, C, H, W) with equal B, H, W; got {tuple(x_t.shape)}, "
                f"{tuple(y_a.shape)}, {tuple(y_b.shape)}"
            )
        if x_t.shape[-2:] != y_a.shape[-2:]:
            raise InputError(
                f"x_t and the sources differ in size: {tuple(x_t.shape)} vs {tuple(y_a.shape)}"
            )
        t = t.reshape(-1).expand(batch) if t.numel() == 1 else t
        task = task.reshape(-1).expand(batch) if task.numel() == 1 else task
        if t.shape != (batch,) or task.shape != (batch,):
            raise InputError(
                f"t and task must have shape ({batch},), got {tuple(t.shape)}, {tuple(task.shape)}"
            )

        inputs = [x_t, y_a, y_b]
        if self.config.sharpness_features:
            inputs += [local_sharpness(y_a), local_sharpness(y_b)]
        x, size = pad_to_stride(torch.cat(inputs, dim=1), self.stride)
        emb = self.embed(t, task.long())

        h = self.in_conv(x)
        skips = []
        for level, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, emb)
            if level < len(self.downsamples):
                skips.append(h)
                h = self.downsamples[level](h)
        for block in self.mid_blocks:
            h = block(h, emb)
        for upsample, blocks in zip(self.upsamples, self.up_blocks, strict=True):
            h = torch.cat([upsample(h), skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
        out = crop_to(self.out_conv(F.silu(self.out_norm(h))), size)
        if self.config.task_heads:  # (B, tasks * head, H, W) -> each sample's task's head
            out = out.unflatten(1, (self.config.num_tasks, -1))
            out = out[torch.arange(batch, device=out.device), task.long()]
        if not self.config.gated_output:
            return out
        gate = out[:, : self.config.out_channels]
        if self.config.gate == "leaky_clamp":
            gate = leaky_clamp(gate)
        elif self.config.gate == "tanh":
            gate = 0.5 * torch.tanh(gate)
        velocity = gate * (y_a - y_b)
        if self.config.gate_residual:
            velocity = velocity + out[:, self.config.out_channels :]
        return velocity


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "TASK_INDEX",
    "GATE_LEAK",
    "FusionUNet",
    "UNetConfig",
    "count_parameters",
    "crop_to",
    "leaky_clamp",
    "pad_to_stride",
    "timestep_embedding",
]
