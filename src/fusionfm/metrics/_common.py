"""Input validation and the filters shared by the metrics."""

from __future__ import annotations

import cv2
import numpy as np

from fusionfm.color import luma

_BORDERS = {"constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT}
"""Boundary names of :func:`correlate_separable` -> OpenCV border types."""


def as_gray(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate one image and return its float64 gray level on the 0-255 scale.

    Args:
        image: shape ``(H, W)`` or ``(H, W, 3)``; RGB is reduced to its rounded luma.
        name: used in error messages.

    Returns:
        float64 array, shape ``(H, W)``.
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"{name}: expected a (H, W) or (H, W, 3) image, got shape {array.shape}")
    gray = luma(array)
    if gray.shape[0] < 2 or gray.shape[1] < 2:
        raise ValueError(f"{name}: image of shape {gray.shape} is too small to score")
    if not np.all(np.isfinite(gray)):
        raise ValueError(f"{name}: image contains NaN or infinite values")
    return gray


def as_gray_triple(
    fused: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a fused image and its two sources: same height and width, gray float64."""
    grays = as_gray(fused, "fused"), as_gray(a, "source A"), as_gray(b, "source B")
    check_triple_size(*grays)
    return grays


def check_triple_size(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Raise ValueError unless the fused image and the two sources share height and width."""
    if not f.shape[:2] == a.shape[:2] == b.shape[:2]:
        raise ValueError(
            "fused, source A and source B differ in size: "
            + ", ".join(f"{g.shape[1]}x{g.shape[0]}" for g in (f, a, b))
        )


def as_gray_pair(fused: np.ndarray, ground_truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a fused image and its ground truth: same height and width, gray float64."""
    f, gt = as_gray(fused, "fused"), as_gray(ground_truth, "ground truth")
    if f.shape != gt.shape:
        raise ValueError(
            f"fused ({f.shape[1]}x{f.shape[0]}) and ground truth ({gt.shape[1]}x{gt.shape[0]}) "
            "differ in size"
        )
    return f, gt


def integer_levels(image: np.ndarray) -> np.ndarray:
    """Round to integer gray levels 0..255 (int64), the bins of EN and MI."""
    return np.clip(np.round(image), 0, 255).astype(np.int64)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two arrays; NaN when either is constant."""
    xc = x - x.mean()
    yc = y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(xc * yc) / np.sqrt(np.sum(xc**2) * np.sum(yc**2)))


def matlab_gaussian(size: int, sigma: float) -> np.ndarray:
    """``fspecial('gaussian', size, sigma)`` as its separable 1-D factor, shape ``(size,)``.

    The 2-D MATLAB window is ``outer(g, g)`` up to rounding (no tap falls under MATLAB's
    ``eps * max`` cut-off for the sizes used here, which :func:`filter_valid` relies on).
    """
    half = (size - 1) / 2.0
    taps = np.exp(-((np.arange(size) - half) ** 2) / (2.0 * sigma * sigma))
    if taps.min() ** 2 < np.finfo(float).eps * taps.max() ** 2:
        raise ValueError(f"Gaussian {size}/{sigma} would be truncated; not separable")
    return taps / taps.sum()


def correlate_separable(image: np.ndarray, taps: np.ndarray, border: str) -> np.ndarray:
    """Correlate with the separable window ``outer(taps, taps)``, output the size of the input.

    Float64 throughout (OpenCV's ``sepFilter2D``, a rows pass then a columns pass); the values
    equal a direct 2-D window sum up to float rounding (about 1e-13 on the 0-255 scale).

    Args:
        image: shape ``(H, W)``.
        taps: shape ``(k,)``, k odd.
        border: ``"constant"`` (zeros outside) or ``"reflect"`` (half-sample symmetric,
            ``d c b a | a b c d``, scipy's ``reflect``).

    Returns:
        float64 array, shape ``(H, W)``.
    """
    kernel = np.ascontiguousarray(taps, dtype=np.float64)
    return cv2.sepFilter2D(
        np.ascontiguousarray(image, dtype=np.float64),
        cv2.CV_64F,
        kernel,
        kernel,
        borderType=_BORDERS[border],
    )


def filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Correlate with the separable window ``outer(taps, taps)``, keeping only the fully
    covered ('valid') part.

    Args:
        image: shape ``(H, W)``.
        taps: shape ``(k,)``, k odd.

    Returns:
        shape ``(H - k + 1, W - k + 1)``.
    """
    radius = taps.shape[0] // 2
    height, width = image.shape
    full = correlate_separable(image, taps, "constant")
    return full[radius : height - radius, radius : width - radius]
