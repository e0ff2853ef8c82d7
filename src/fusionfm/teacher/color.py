"""The color rule shared by the teachers: fuse luminance, carry chroma over.

Sources are split into full-range BT.601 YCbCr (:func:`fusionfm.color.rgb_to_ycbcr`); a teacher
fuses only the luminance Y, and the chroma of the result comes from

* ``ivf``, ``mif``: the color source (visible, PET, SPECT): the RGB one of the pair, or B when
  both are RGB; two gray sources give a gray result;
* ``mef``, ``mff``: both sources, blended per pixel with weights proportional to their chroma
  magnitude ``|Cb - 128| + |Cr - 128|``, so that saturated colors survive the blend (the usual
  MEF/MFF chroma rule); the result is RGB when either source is.

Fused luminance and carried-over chroma are recombined by :func:`ycbcr_to_rgb_in_gamut`, which
desaturates out-of-gamut pixels instead of clipping their channels (no hue shifts).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fusionfm.color import rgb_to_ycbcr
from fusionfm.config import TASKS
from fusionfm.io import InputError

LuminanceFusion = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``fuse_luminance(y_a, y_b) -> y_fused``: float64 ``(H, W)`` on the 0-255 scale."""

CHROMA_TASKS_FROM_COLOR_SOURCE: frozenset[str] = frozenset({"ivf", "mif"})
"""Tasks whose chroma is copied from the color source; the others blend both sources."""

CHROMA_WEIGHT_EPS = 1e-3
"""Added to each chroma magnitude, so that two neutral pixels average instead of dividing 0/0."""


def luminance(image: np.ndarray) -> np.ndarray:
    """Luminance Y of a source, unrounded, on the 0-255 scale.

    Args:
        image: ``(H, W)`` gray (passed through) or ``(H, W, 3)`` RGB (BT.601 full-range Y).

    Returns:
        float64, shape ``(H, W)``.
    """
    array = np.asarray(image)
    if array.ndim == 2:
        return array.astype(np.float64)
    return rgb_to_ycbcr(array)[..., 0]


def fuse_color(
    a: np.ndarray, b: np.ndarray, task: str, fuse_luminance: LuminanceFusion
) -> np.ndarray:
    """Fuse two sources on luminance and recombine the chroma by the task's color rule.

    Args:
        a: source A, ``uint8``, ``(H, W)`` or ``(H, W, 3)``.
        b: source B, ``uint8``, same ``H, W``.
        task: ``ivf``, ``mif``, ``mef`` or ``mff`` (picks the chroma rule).
        fuse_luminance: ``(y_a, y_b) -> y_fused``, float64 ``(H, W)`` arrays, 0-255 scale.

    Returns:
        ``uint8`` fused image, rounded and clipped: ``(H, W)`` when both sources are gray,
        else ``(H, W, 3)``.

    Raises:
        InputError: unknown task, or sources of different size.
        ValueError: ``fuse_luminance`` returned an array of the wrong shape.
    """
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    a, b = np.asarray(a), np.asarray(b)
    if a.shape[:2] != b.shape[:2]:
        raise InputError(f"sources differ in size: {a.shape[:2]} and {b.shape[:2]} (HxW)")
    ycbcr_a = rgb_to_ycbcr(a) if a.ndim == 3 else None
    ycbcr_b = rgb_to_ycbcr(b) if b.ndim == 3 else None
    y_a = ycbcr_a[..., 0] if ycbcr_a is not None else a.astype(np.float64)
    y_b = ycbcr_b[..., 0] if ycbcr_b is not None else b.astype(np.float64)

    fused_y = np.asarray(fuse_luminance(y_a, y_b), dtype=np.float64)
    if fused_y.shape != y_a.shape:
        raise ValueError(f"luminance fusion returned shape {fused_y.shape}, expected {y_a.shape}")

    if ycbcr_a is None and ycbcr_b is None:
        return to_uint8(fused_y)
    if task in CHROMA_TASKS_FROM_COLOR_SOURCE:
        chroma = (ycbcr_b if ycbcr_b is not None else ycbcr_a)[..., 1:]
    else:
        chroma = blend_chroma(
            _chroma(ycbcr_a, y_a.shape), _chroma(ycbcr_b, y_b.shape), y_a, y_b
        )
    return to_uint8(ycbcr_to_rgb_in_gamut(fused_y, chroma))


def blend_chroma(
    chroma_a: np.ndarray, chroma_b: np.ndarray, y_a: np.ndarray, y_b: np.ndarray
) -> np.ndarray:
    """Per-pixel chroma blend weighted by chroma magnitude times well-exposedness.

    Saturated colors win, but only where their source is well exposed: the chroma of clipped
    highlights and crushed shadows is unreliable (it shifts hue), so it would otherwise tint
    the fused image wherever one exposure is blown out.

    Args:
        chroma_a, chroma_b: ``(H, W, 2)`` Cb, Cr on the 0-255 scale (neutral at 128).
        y_a, y_b: ``(H, W)`` luminance of each source, 0-255.

    Returns:
        float64, ``(H, W, 2)``.
    """
    weight_a = _chroma_magnitude(chroma_a) * _well_exposedness(y_a)
    weight_b = _chroma_magnitude(chroma_b) * _well_exposedness(y_b)
    share_a = (weight_a / (weight_a + weight_b))[..., np.newaxis]
    return chroma_b + share_a * (chroma_a - chroma_b)


def _well_exposedness(y: np.ndarray) -> np.ndarray:
    """Mertens et al.'s Gaussian around mid-gray (sigma 0.2 on [0, 1]), floored so that a pixel
    badly exposed in both sources still gets a chroma."""
    return np.exp(-((y / 255.0 - 0.5) ** 2) / (2 * 0.2**2)) + 1e-3


def _chroma_magnitude(chroma: np.ndarray) -> np.ndarray:
    return np.abs(chroma[..., 0] - 128.0) + np.abs(chroma[..., 1] - 128.0) + CHROMA_WEIGHT_EPS


def ycbcr_to_rgb_in_gamut(y: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """YCbCr -> RGB that keeps luminance and hue: out-of-gamut chroma is scaled toward neutral.

    A fused luminance paired with chroma taken from another image (a bright thermal target with
    the visible image's color, a dark fused pixel with an over-exposed shot's color) often lands
    outside the RGB cube. Clipping each RGB channel would shift the hue (saturated oranges turn
    green or yellow) and the luminance; instead the chroma of such a pixel is multiplied by the
    largest factor in [0, 1] that keeps all three channels in [0, 255]. In-gamut pixels are
    converted exactly as by :func:`fusionfm.color.ycbcr_to_rgb` (full-range BT.601).

    Args:
        y: ``(H, W)`` luminance, 0-255 scale (clipped to [0, 255] first).
        chroma: ``(H, W, 2)`` Cb, Cr, neutral at 128.

    Returns:
        float64 ``(H, W, 3)`` in [0, 255].
    """
    y = np.clip(y, 0.0, 255.0)
    cb, cr = chroma[..., 0] - 128.0, chroma[..., 1] - 128.0
    # RGB = Y + offsets; the offsets have zero luma, so scaling them keeps Y.
    offsets = np.stack([1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb], axis=-1)
    rgb = y[..., np.newaxis] + offsets
    outside = ((rgb < 0.0) | (rgb > 255.0)).any(axis=-1)
    if outside.any():
        y_out, offsets_out = y[outside][:, np.newaxis], offsets[outside]
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(offsets_out > 0, (255.0 - y_out) / offsets_out, np.inf)
            room = np.where(offsets_out < 0, -y_out / offsets_out, room)
        scale = np.clip(room.min(axis=-1, keepdims=True), 0.0, 1.0)
        rgb[outside] = y_out + scale * offsets_out
    return np.clip(rgb, 0.0, 255.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip a 0-255 float image to ``uint8`` (same shape)."""
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _chroma(ycbcr: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if ycbcr is None:  # a gray source is neutral: Cb = Cr = 128
        return np.full((*shape, 2), 128.0)
    return ycbcr[..., 1:]
