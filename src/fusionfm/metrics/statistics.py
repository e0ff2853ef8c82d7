"""Single-image statistics of the fused image: EN, SD, SF, AG.

Each public function takes an image of shape ``(H, W)`` or ``(H, W, 3)`` on the 0-255 scale
(RGB is scored on its rounded luma); the ``*_gray`` kernels take a validated float64 ``(H, W)``
gray image and are what the suite calls.
"""

from __future__ import annotations

import numpy as np

from fusionfm.metrics._common import as_gray, integer_levels


def entropy_gray(f: np.ndarray) -> float:
    levels = integer_levels(f)
    probabilities = np.bincount(levels.ravel(), minlength=256) / levels.size
    nonzero = probabilities[probabilities > 0]
    return float(-np.sum(nonzero * np.log2(nonzero)))


def standard_deviation_gray(f: np.ndarray) -> float:
    return float(np.std(f))


def spatial_frequency_gray(f: np.ndarray) -> float:
    row_frequency = np.mean(np.diff(f, axis=1) ** 2)
    column_frequency = np.mean(np.diff(f, axis=0) ** 2)
    return float(np.sqrt(row_frequency + column_frequency))


def average_gradient_gray(f: np.ndarray) -> float:
    grad_y, grad_x = np.gradient(f)
    np.multiply(grad_x, grad_x, out=grad_x)  # in place: (gx^2 + gy^2) / 2, then its root
    np.multiply(grad_y, grad_y, out=grad_y)
    grad_x += grad_y
    grad_x *= 0.5
    np.sqrt(grad_x, out=grad_x)
    return float(np.mean(grad_x))


def entropy(fused: np.ndarray) -> float:
    """EN: Shannon entropy in bits of the 256-bin histogram of ``round(F)``."""
    return entropy_gray(as_gray(fused, "fused"))


def standard_deviation(fused: np.ndarray) -> float:
    """SD: population standard deviation of the gray levels."""
    return standard_deviation_gray(as_gray(fused, "fused"))


def spatial_frequency(fused: np.ndarray) -> float:
    """SF: ``sqrt(RF^2 + CF^2)``, RF and CF the mean squared horizontal and vertical
    differences, each averaged over its own number of differences."""
    return spatial_frequency_gray(as_gray(fused, "fused"))


def average_gradient(fused: np.ndarray) -> float:
    """AG: mean over all pixels of ``sqrt((Gx^2 + Gy^2) / 2)``, derivatives central inside and
    one-sided at the borders (``numpy.gradient``)."""
    return average_gradient_gray(as_gray(fused, "fused"))
