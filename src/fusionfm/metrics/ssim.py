"""SSIM (Wang et al., IEEE TIP 2004) in the two forms the pipeline reports.

* ``ssim_fusion``: SSIM(F, A) + SSIM(F, B) exactly as the widely used fusion evaluator computes it
  (scikit-image defaults on float images as of its era): 7x7 uniform window, sample covariance,
  K1 = 0.01, K2 = 0.03, data range 2, mean after cropping 3 pixels at each border.
* ``ssim_reference``: the standard SSIM against a ground truth: Gaussian window sigma 1.5
  (11x11), population covariance, data range 255, mean after cropping 5 pixels at each border.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fusionfm.metrics._common import as_gray_pair, as_gray_triple

K1, K2 = 0.01, 0.03


def _ssim_mean(
    x: np.ndarray, y: np.ndarray, local_mean, window_pixels: int | None, data_range: float, crop: int
) -> float:
    """Mean SSIM of two ``(H, W)`` images given a local-mean filter.

    ``window_pixels`` enables the sample-covariance correction ``n / (n - 1)``.
    """
    covariance_norm = window_pixels / (window_pixels - 1.0) if window_pixels else 1.0
    mean_x, mean_y = local_mean(x), local_mean(y)
    var_x = covariance_norm * (local_mean(x * x) - mean_x * mean_x)
    var_y = covariance_norm * (local_mean(y * y) - mean_y * mean_y)
    cov_xy = covariance_norm * (local_mean(x * y) - mean_x * mean_y)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map[crop:-crop, crop:-crop].mean())


def _uniform_7(image: np.ndarray) -> np.ndarray:
    return ndimage.uniform_filter(image, size=7)


def _gaussian_15(image: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(image, sigma=1.5, truncate=3.5)


def ssim_fusion_pair(x: np.ndarray, y: np.ndarray) -> float:
    """Evaluator-convention SSIM of two gray ``(H, W)`` images (H, W >= 7)."""
    return _ssim_mean(x, y, _uniform_7, window_pixels=49, data_range=2.0, crop=3)


def ssim_fusion_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return ssim_fusion_pair(f, a) + ssim_fusion_pair(f, b)


def ssim_fusion(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """SSIM = SSIM(F, A) + SSIM(F, B), evaluator convention (see module docstring).

    Args:
        fused, a, b: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size, at least 7x7.
    """
    return ssim_fusion_gray(*as_gray_triple(fused, a, b))


def ssim_reference_gray(f: np.ndarray, gt: np.ndarray) -> float:
    return _ssim_mean(f, gt, _gaussian_15, window_pixels=None, data_range=255.0, crop=5)


def ssim_reference(fused: np.ndarray, ground_truth: np.ndarray) -> float:
    """Standard SSIM of F against a ground truth (Gaussian sigma 1.5, data range 255).

    Args:
        fused, ground_truth: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size, >= 11x11.
    """
    return ssim_reference_gray(*as_gray_pair(fused, ground_truth))
