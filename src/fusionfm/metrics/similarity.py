"""Pixel-wise agreement of the fused image with its sources: CC, SCD, MSE, PSNR.

Public functions take ``(H, W)`` or ``(H, W, 3)`` images on the 0-255 scale, all the same size;
the ``*_gray`` kernels take validated float64 gray images.
"""

from __future__ import annotations

import numpy as np

from fusionfm.metrics._common import as_gray_pair, as_gray_triple, pearson


def correlation_coefficient_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return (pearson(a, f) + pearson(b, f)) / 2.0


def sum_of_correlation_differences_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return pearson(a, f - b) + pearson(b, f - a)


def mean_squared_error_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((np.mean((a - f) ** 2) + np.mean((b - f) ** 2)) / 2.0)


def peak_signal_to_noise_ratio_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(np.max(f) ** 2 / mean_squared_error_gray(f, a, b)))


def correlation_coefficient(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """CC: mean of the Pearson correlations corr(A, F) and corr(B, F)."""
    return correlation_coefficient_gray(*as_gray_triple(fused, a, b))


def sum_of_correlation_differences(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """SCD (Aslantas & Bendes 2015): corr(A, F - B) + corr(B, F - A); NaN when F equals a
    source (the difference image is then constant)."""
    return sum_of_correlation_differences_gray(*as_gray_triple(fused, a, b))


def mean_squared_error(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """MSE: mean of MSE(A, F) and MSE(B, F) on the 0-255 scale."""
    return mean_squared_error_gray(*as_gray_triple(fused, a, b))


def peak_signal_to_noise_ratio(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """PSNR = 10 log10(max(F)^2 / MSE) in dB: the peak is the fused image's own maximum, as in
    the evaluator most deep fusion papers report with (not 255)."""
    return peak_signal_to_noise_ratio_gray(*as_gray_triple(fused, a, b))


def psnr_reference_gray(f: np.ndarray, gt: np.ndarray) -> float:
    mse = np.mean((f - gt) ** 2)
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(255.0**2 / mse))


def psnr_reference(fused: np.ndarray, ground_truth: np.ndarray) -> float:
    """PSNR of F against a ground truth with peak 255, in dB (inf when identical)."""
    return psnr_reference_gray(*as_gray_pair(fused, ground_truth))
