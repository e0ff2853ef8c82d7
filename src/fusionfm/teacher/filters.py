"""Filters and pyramids shared by the classical fusion teachers (and reusable by the refiner).

Every function takes and returns float64 arrays of shape ``(H, W)`` (pyramids also accept
``(H, W, C)``) on whatever scale the caller uses, handles any size (odd sizes, sizes not
divisible by powers of two, windows larger than the image) and is vectorized (OpenCV, NumPy).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

LAPLACIAN_KERNEL = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
"""The 3x3 discrete Laplacian used by GFF and by Mertens et al.'s contrast measure."""


def mean_filter(image: np.ndarray, size: int) -> np.ndarray:
    """``size x size`` moving average with replicated borders (MATLAB ``imfilter(..., 'replicate')``).

    Args:
        image: shape ``(H, W)``.
        size: window side, >= 1.

    Returns:
        float64, shape ``(H, W)``.
    """
    return cv2.blur(_float64(image), (size, size), borderType=cv2.BORDER_REPLICATE)


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the ``(2 radius + 1)^2`` window clipped to the image (He et al.'s ``boxfilter / N``).

    Near the borders only the pixels inside the image are averaged, so the window may be larger
    than the image.

    Args:
        image: shape ``(H, W)``.
        radius: window radius, >= 0.

    Returns:
        float64, shape ``(H, W)``.
    """
    image = _float64(image)
    size = (2 * radius + 1, 2 * radius + 1)
    sums = cv2.boxFilter(image, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    counts = cv2.boxFilter(
        np.ones_like(image), -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT
    )
    return sums / counts


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Gray-guided filter (He, Sun & Tang, "Guided image filtering", IEEE TPAMI 35(6), 2013).

    The output is locally an affine function of ``guide``: it follows the guide's edges while
    smoothing ``source`` over ``(2 radius + 1)^2`` windows; ``eps`` is the regularization on the
    guide's scale squared (e.g. 0.3 for a guide in [0, 1] smooths strongly).

    Args:
        guide: shape ``(H, W)``.
        source: shape ``(H, W)``, the image to filter.
        radius: window radius, >= 0.
        eps: regularization, > 0.

    Returns:
        float64, shape ``(H, W)``.
    """
    guide, source = _float64(guide), _float64(source)
    mean_guide = box_mean(guide, radius)
    mean_source = box_mean(source, radius)
    covariance = box_mean(guide * source, radius) - mean_guide * mean_source
    variance = box_mean(guide * guide, radius) - mean_guide * mean_guide
    slope = covariance / (variance + eps)
    offset = mean_source - slope * mean_guide
    return box_mean(slope, radius) * guide + box_mean(offset, radius)


def laplacian_magnitude(image: np.ndarray) -> np.ndarray:
    """``|image * L|`` with the 3x3 Laplacian :data:`LAPLACIAN_KERNEL`, replicated borders.

    Args:
        image: shape ``(H, W)``.

    Returns:
        float64, shape ``(H, W)``.
    """
    filtered = cv2.filter2D(_float64(image), -1, LAPLACIAN_KERNEL, borderType=cv2.BORDER_REPLICATE)
    return np.abs(filtered)


def gaussian_blur(image: np.ndarray, radius: int, sigma: float) -> np.ndarray:
    """Gaussian filter of window ``(2 radius + 1)^2`` (MATLAB ``fspecial('gaussian', 2r+1, sigma)``).

    Args:
        image: shape ``(H, W)``.
        radius: window radius.
        sigma: standard deviation in pixels.

    Returns:
        float64, shape ``(H, W)``.
    """
    size = 2 * radius + 1
    return cv2.GaussianBlur(
        _float64(image), (size, size), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE
    )


def median3(image: np.ndarray) -> np.ndarray:
    """3x3 median filter (MATLAB ``medfilt2(I, [3 3])`` up to the border rule).

    Args:
        image: shape ``(H, W)``.

    Returns:
        float64, shape ``(H, W)``.
    """
    # OpenCV's 3x3 median accepts float32; the values are 0-255 so float32 is exact enough.
    return cv2.medianBlur(np.asarray(image, dtype=np.float32), 3).astype(np.float64)


def max_pyramid_levels(height: int, width: int) -> int:
    """Levels of a full pyramid, ``floor(log2(min(H, W)))`` (Mertens et al.), at least 1."""
    return max(1, int(math.floor(math.log2(max(1, min(height, width))))))


def gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Gaussian pyramid with the 5-tap binomial filter of Burt & Adelson (OpenCV ``pyrDown``).

    Args:
        image: shape ``(H, W)`` or ``(H, W, C)``.
        levels: number of levels, >= 1; capped at :func:`max_pyramid_levels`.

    Returns:
        ``levels`` float64 arrays, finest first; level ``k`` has size
        ``ceil(H / 2^k) x ceil(W / 2^k)``.
    """
    current = _float64(image)
    levels = min(levels, max_pyramid_levels(*current.shape[:2]))
    pyramid = [current]
    for _ in range(levels - 1):
        height, width = current.shape[:2]
        current = cv2.pyrDown(current, dstsize=((width + 1) // 2, (height + 1) // 2))
        pyramid.append(current)
    return pyramid


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Laplacian pyramid (Burt & Adelson, IEEE Trans. Commun. 31(4), 1983).

    Args:
        image: shape ``(H, W)`` or ``(H, W, C)``.
        levels: number of levels, >= 1; capped at :func:`max_pyramid_levels`.

    Returns:
        float64 arrays, finest first: ``levels - 1`` band-pass (detail) levels, then the low-pass
        residual; :func:`reconstruct_laplacian_pyramid` inverts it exactly.
    """
    gaussians = gaussian_pyramid(image, levels)
    details = [
        fine - _expand(coarse, fine)
        for fine, coarse in zip(gaussians[:-1], gaussians[1:], strict=True)
    ]
    return details + [gaussians[-1]]


def reconstruct_laplacian_pyramid(pyramid: list[np.ndarray]) -> np.ndarray:
    """Collapse a Laplacian pyramid from :func:`laplacian_pyramid`.

    Args:
        pyramid: finest first, as returned by :func:`laplacian_pyramid`.

    Returns:
        float64, the size of ``pyramid[0]``.
    """
    image = pyramid[-1]
    for detail in reversed(pyramid[:-1]):
        image = _expand(image, detail) + detail
    return image


def _expand(coarse: np.ndarray, like: np.ndarray) -> np.ndarray:
    height, width = like.shape[:2]
    expanded = cv2.pyrUp(coarse, dstsize=(width, height))
    if expanded.ndim < like.ndim:  # OpenCV drops a trailing channel axis of size 1
        expanded = expanded[..., np.newaxis]
    return expanded


def _float64(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image, dtype=np.float64)
