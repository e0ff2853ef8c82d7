"""Color conversions: fusion runs on luminance, chroma is carried over.

All functions work on the 0-255 scale. YCbCr is full-range BT.601 (JPEG convention).
"""

from __future__ import annotations

import numpy as np

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def luma(image: np.ndarray) -> np.ndarray:
    """Gray level used for scoring: ``round(0.299 R + 0.587 G + 0.114 B)``; gray passes through.

    Args:
        image: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale.

    Returns:
        float64 array, shape ``(H, W)``.
    """
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] == 1:
        return array[:, :, 0]
    if array.ndim == 3 and array.shape[2] >= 3:
        return np.round(array[:, :, :3] @ LUMA_WEIGHTS)
    raise ValueError(f"expected a (H, W) or (H, W, 3) image, got shape {array.shape}")


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 RGB -> YCbCr.

    Args:
        rgb: shape ``(H, W, 3)``, 0-255 scale.

    Returns:
        float64 array, shape ``(H, W, 3)`` with channels Y, Cb, Cr (Cb, Cr centred on 128).
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Full-range BT.601 YCbCr -> RGB, clipped to 0-255.

    Args:
        ycbcr: shape ``(H, W, 3)``.

    Returns:
        float64 array, shape ``(H, W, 3)``.
    """
    ycbcr = np.asarray(ycbcr, dtype=np.float64)
    y, cb, cr = ycbcr[..., 0], ycbcr[..., 1] - 128.0, ycbcr[..., 2] - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 255.0)
