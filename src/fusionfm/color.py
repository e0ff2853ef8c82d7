"""Color conversions: fusion runs on luminance, chroma is carried over.

All functions work on the 0-255 scale. YCbCr is full-range BT.601 (JPEG convention).
"""

from __future__ import annotations

import numpy as np

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def luma(image: np.ndarray) -> np.ndarray:
    """Gray level used for scoring: ``round(0.299 R + 0.587 G + 0.114 B)``; gray passes through.

    The sum is evaluated in one fixed order, ``fma(B, 0.114, fma(R, 0.299, 0.587 G))`` with
    exactly rounded fused multiply-adds: the order numpy's ``@`` took with OpenBLAS's FMA kernels
    when the pinned metric references were made. Other orders round some half-way values the
    other way (e.g. (1, 57, 103) -> 45.5 or 45.49999999999999) and move metric values by up to
    1.5e-5; here the result does not depend on the machine's BLAS.

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
        red, green, blue = array[:, :, 0], array[:, :, 1], array[:, :, 2]
        weight_r, weight_g, weight_b = LUMA_WEIGHTS
        return np.round(_fma(blue, weight_b, _fma(red, weight_r, weight_g * green)))
    raise ValueError(f"expected a (H, W) or (H, W, 3) image, got shape {array.shape}")


def _fma(a: np.ndarray, b: float, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` rounded once (error-free product and sum, Dekker and Knuth); numpy's own
    arithmetic rounds the product first. Exact for 8-bit ``a``."""
    product = a * b
    a_high, a_low = _split(a)
    b_high, b_low = _split(np.float64(b))
    product_error = ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + a_low * b_low
    total = product + c
    c_part = total - product
    sum_error = (product - (total - c_part)) + (c - c_part)
    return total + (sum_error + product_error)


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp's split of float64 ``x`` into a high and a low half of 26 bits each."""
    scaled = 134217729.0 * x  # 2**27 + 1
    high = scaled - (scaled - x)
    return high, x - high


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
