"""Qabf: gradient-based edge preservation (Xydeas & Petrovic, Electronics Letters 2000).

Sobel gradients by zero-padded 'same' convolution; strength and orientation preservation through
sigmoids (Gamma_g = 0.9994, kappa_g = -15, sigma_g = 0.5; Gamma_a = 0.9879, kappa_a = -22,
sigma_a = 0.8); weights g^L with L = 1. Like the MATLAB code the fusion literature reports with,
the strength ratio takes the value gF (not 1) where gA == gF.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fusionfm.metrics._common import as_gray_triple

STRENGTH_GAMMA, STRENGTH_KAPPA, STRENGTH_SIGMA = 0.9994, -15.0, 0.5
ORIENTATION_GAMMA, ORIENTATION_KAPPA, ORIENTATION_SIGMA = 0.9879, -22.0, 0.8

_SOBEL_VERTICAL = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_SOBEL_HORIZONTAL = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_strength_orientation(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge strength ``g`` and orientation ``alpha`` (``pi/2`` where the x-gradient is 0).

    Args:
        image: shape ``(H, W)``.

    Returns:
        Two arrays of shape ``(H, W)``.
    """
    grad_x = ndimage.convolve(image, _SOBEL_HORIZONTAL, mode="constant", cval=0.0)
    grad_y = ndimage.convolve(image, _SOBEL_VERTICAL, mode="constant", cval=0.0)
    strength = np.sqrt(grad_x * grad_x + grad_y * grad_y)
    nonzero = grad_x != 0
    orientation = np.full(image.shape, np.pi / 2)
    orientation[nonzero] = np.arctan(grad_y[nonzero] / grad_x[nonzero])
    return strength, orientation


def _edge_preservation(
    strength_src: np.ndarray, angle_src: np.ndarray, strength_f: np.ndarray, angle_f: np.ndarray
) -> np.ndarray:
    """Per-pixel Q^{XF} of one source X, shape ``(H, W)``."""
    ratio = np.where(strength_src == strength_f, strength_f, 0.0)
    greater = strength_src > strength_f
    smaller = strength_src < strength_f
    ratio[greater] = strength_f[greater] / strength_src[greater]
    ratio[smaller] = strength_src[smaller] / strength_f[smaller]
    angle = 1.0 - np.abs(angle_src - angle_f) / (np.pi / 2)
    strength_q = STRENGTH_GAMMA / (1.0 + np.exp(STRENGTH_KAPPA * (ratio - STRENGTH_SIGMA)))
    angle_q = ORIENTATION_GAMMA / (1.0 + np.exp(ORIENTATION_KAPPA * (angle - ORIENTATION_SIGMA)))
    return strength_q * angle_q


def qabf_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qabf on validated float64 gray images of shape ``(H, W)``; NaN if no source has an edge."""
    g_a, alpha_a = sobel_strength_orientation(a)
    g_b, alpha_b = sobel_strength_orientation(b)
    g_f, alpha_f = sobel_strength_orientation(f)
    q_af = _edge_preservation(g_a, alpha_a, g_f, alpha_f)
    q_bf = _edge_preservation(g_b, alpha_b, g_f, alpha_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(q_af * g_a + q_bf * g_b) / np.sum(g_a + g_b))


def qabf(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qabf in [0, 1]: how much of the sources' edge information the fused image keeps.

    Args:
        fused, a, b: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size.
    """
    return qabf_gray(*as_gray_triple(fused, a, b))
