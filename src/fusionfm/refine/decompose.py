"""Decomposition of a pseudo-label and its sources into the components the refiner works on.

* Luminance and chroma: the refiner edits only the luminance ``Y`` (full-range BT.601, as the
  teachers fuse it); :func:`split_luminance` / :func:`merge_luminance` take an image apart and put
  it back with its own chroma, so gray stays gray and RGB stays RGB.
* Base and detail: ``base`` is a self-guided edge-preserving smoothing of ``Y`` (the guided filter
  of He et al.), ``detail = Y - base``; edges stay in the base, texture and noise go to the detail.
* Saliency: a soft weight in [0, 1] on the salient region of the sources
  (:func:`fusionfm.pseudolabel.task_metrics.salient_mask`, feathered).
* Noise level: Immerkaer's estimate of the standard deviation of white noise.

Every function is vectorized; shapes are ``(H, W)`` for gray planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fusionfm.color import rgb_to_ycbcr
from fusionfm.pseudolabel.task_metrics import salient_mask
from fusionfm.teacher.color import to_uint8, ycbcr_to_rgb_in_gamut
from fusionfm.teacher.filters import guided_filter


@dataclass(frozen=True)
class Layers:
    """Base/detail split of one luminance plane.

    Attributes:
        base: float64 ``(H, W)``, edge-preserving smooth part, 0-255 scale.
        detail: float64 ``(H, W)``, ``luminance - base``.
    """

    base: np.ndarray
    detail: np.ndarray


def split_luminance(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Luminance and chroma of an image.

    Args:
        image: ``(H, W)`` gray or ``(H, W, 3)`` RGB, 0-255 scale.

    Returns:
        ``(y, chroma)``: float64 ``(H, W)`` luminance and float64 ``(H, W, 2)`` Cb, Cr, or
        ``None`` for a gray image.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return array.astype(np.float64), None
    ycbcr = rgb_to_ycbcr(array)
    return ycbcr[..., 0], ycbcr[..., 1:]


def merge_luminance(y: np.ndarray, chroma: np.ndarray | None) -> np.ndarray:
    """Rebuild a ``uint8`` image from a luminance plane and the chroma it came with.

    Args:
        y: float64 ``(H, W)``, clipped to [0, 255].
        chroma: ``(H, W, 2)`` or ``None`` (gray).

    Returns:
        ``uint8`` ``(H, W)`` (gray) or ``(H, W, 3)``; out-of-gamut chroma is pulled toward neutral
        so the luminance is kept (:func:`fusionfm.teacher.color.ycbcr_to_rgb_in_gamut`).
    """
    if chroma is None:
        return to_uint8(np.clip(y, 0.0, 255.0))
    return to_uint8(ycbcr_to_rgb_in_gamut(y, chroma))


def decompose(y: np.ndarray, radius: int, eps: float) -> Layers:
    """Base/detail split with a self-guided filter.

    Args:
        y: float64 ``(H, W)``, 0-255 scale.
        radius: guided-filter window radius (pixels).
        eps: guided-filter regularization on the [0, 1] scale (edges whose local variance is
            well above ``eps`` stay in the base).

    Returns:
        :class:`Layers` with ``base + detail == y``.
    """
    unit = np.asarray(y, dtype=np.float64) / 255.0
    base = guided_filter(unit, unit, radius, eps) * 255.0
    return Layers(base=base, detail=y - base)


def local_energy(detail: np.ndarray, window: int) -> np.ndarray:
    """Local mean of ``detail**2`` over a ``window x window`` box (replicated borders).

    Args:
        detail: float64 ``(H, W)``.
        window: box side in pixels.

    Returns:
        float64 ``(H, W)``, >= 0.
    """
    return cv2.blur(np.square(detail), (window, window), borderType=cv2.BORDER_REPLICATE)


def saliency_weight(a: np.ndarray, b: np.ndarray, feather: float) -> np.ndarray:
    """Soft weight of the sources' salient region.

    Args:
        a: source A luminance, float64 ``(H, W)``.
        b: source B luminance, same shape.
        feather: Gaussian sigma (pixels) that softens the region's border.

    Returns:
        float64 ``(H, W)`` in [0, 1]; all zero when nothing is salient.
    """
    mask = salient_mask(a, b).astype(np.float64)
    if feather <= 0:
        return mask
    soft = cv2.GaussianBlur(mask, (0, 0), feather, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.maximum(soft, mask), 0.0, 1.0)


_IMMERKAER_KERNEL = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def noise_map(y: np.ndarray, window: int) -> np.ndarray:
    """Local mean absolute response of Immerkaer's noise kernel (texture and noise energy).

    Args:
        y: float64 ``(H, W)``.
        window: box side in pixels.

    Returns:
        float64 ``(H, W)``, >= 0.
    """
    y = np.ascontiguousarray(y, dtype=np.float64)
    response = np.abs(cv2.filter2D(y, -1, _IMMERKAER_KERNEL, borderType=cv2.BORDER_REFLECT_101))
    return cv2.blur(response, (window, window), borderType=cv2.BORDER_REPLICATE)


def noise_sigma(y: np.ndarray) -> float:
    """Standard deviation of additive white noise (Immerkaer, CVIU 64(2), 1996).

    ``sigma = sqrt(pi / 2) / (6 (W - 2)(H - 2)) * sum |y * N|`` with the 3x3 kernel ``N`` that
    cancels planes and lines; texture adds to it, so compare estimates of images of one scene.

    Args:
        y: float64 ``(H, W)`` with H, W >= 3.

    Returns:
        The estimate, 0-255 scale.
    """
    y = np.ascontiguousarray(y, dtype=np.float64)
    response = cv2.filter2D(y, -1, _IMMERKAER_KERNEL, borderType=cv2.BORDER_REFLECT_101)
    inner = np.abs(response[1:-1, 1:-1])
    if inner.size == 0:
        return 0.0
    return float(np.sqrt(np.pi / 2.0) * inner.mean() / 6.0)


__all__ = [
    "Layers",
    "decompose",
    "local_energy",
    "merge_luminance",
    "noise_map",
    "noise_sigma",
    "saliency_weight",
    "split_luminance",
]
