"""Qabf: gradient-based edge preservation (Xydeas & Petrovic, Electronics Letters 2000).

Sobel gradients by zero-padded 'same' convolution; strength and orientation preservation through
sigmoids (Gamma_g = 0.9994, kappa_g = -15, sigma_g = 0.5; Gamma_a = 0.9879, kappa_a = -22,
sigma_a = 0.8); weights g^L with L = 1. Like the MATLAB code the fusion literature reports with,
the strength ratio takes the value gF (not 1) where gA == gF.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fusionfm.metrics._common import as_gray_triple

STRENGTH_GAMMA, STRENGTH_KAPPA, STRENGTH_SIGMA = 0.9994, -15.0, 0.5
ORIENTATION_GAMMA, ORIENTATION_KAPPA, ORIENTATION_SIGMA = 0.9879, -22.0, 0.8

_SMOOTH = np.array([1.0, 2.0, 1.0])
_DERIVATIVE_X = np.array([1.0, 0.0, -1.0])
_DERIVATIVE_Y = np.array([-1.0, 0.0, 1.0])
"""Separable factors of the Sobel kernels flipped for correlation: convolving with
``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` (x) is correlating with ``outer(_SMOOTH, _DERIVATIVE_X)``,
with ``[[1, 2, 1], [0, 0, 0], [-1, -2, -1]]`` (y) correlating with ``outer(_DERIVATIVE_Y, _SMOOTH)``."""


def sobel_strength_orientation(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge strength ``g`` and orientation ``alpha`` (``pi/2`` where the x-gradient is 0).

    Args:
        image: shape ``(H, W)``.

    Returns:
        Two arrays of shape ``(H, W)``.
    """
    image = np.ascontiguousarray(image, dtype=np.float64)
    border = cv2.BORDER_CONSTANT
    grad_x = cv2.sepFilter2D(image, cv2.CV_64F, _DERIVATIVE_X, _SMOOTH, borderType=border)
    grad_y = cv2.sepFilter2D(image, cv2.CV_64F, _SMOOTH, _DERIVATIVE_Y, borderType=border)
    strength = np.sqrt(grad_x * grad_x + grad_y * grad_y)
    nonzero = grad_x != 0
    orientation = np.full(image.shape, np.pi / 2)
    slope = np.divide(grad_y, grad_x, out=np.zeros(image.shape), where=nonzero)
    np.arctan(slope, out=orientation, where=nonzero)
    return strength, orientation


def _edge_preservation(
    strength_src: np.ndarray, angle_src: np.ndarray, strength_f: np.ndarray, angle_f: np.ndarray
) -> np.ndarray:
    """Per-pixel Q^{XF} of one source X, shape ``(H, W)``.

    The strength ratio is the smaller strength over the larger one, and ``gF`` where the two are
    equal (the reference code's quirk).
    """
    larger = np.maximum(strength_src, strength_f)
    ratio = np.minimum(strength_src, strength_f)
    # where the strengths are equal, the minimum already is gF
    np.divide(ratio, larger, out=ratio, where=strength_src != strength_f)
    angle = angle_src - angle_f
    np.abs(angle, out=angle)
    angle /= np.pi / 2
    np.subtract(1.0, angle, out=angle)
    strength_q = _sigmoid(ratio, STRENGTH_GAMMA, STRENGTH_KAPPA, STRENGTH_SIGMA)
    strength_q *= _sigmoid(angle, ORIENTATION_GAMMA, ORIENTATION_KAPPA, ORIENTATION_SIGMA)
    return strength_q


def _sigmoid(x: np.ndarray, gamma: float, kappa: float, sigma: float) -> np.ndarray:
    """``gamma / (1 + exp(kappa * (x - sigma)))``, overwriting ``x``."""
    x -= sigma
    x *= kappa
    np.exp(x, out=x)
    x += 1.0
    return np.divide(gamma, x, out=x)


@dataclass(frozen=True)
class QabfSources:
    """The sources' Sobel strengths and orientations and the weight sum ``sum(gA + gB)``."""

    strength_a: np.ndarray
    angle_a: np.ndarray
    strength_b: np.ndarray
    angle_b: np.ndarray
    weight: np.float64


def prepare_qabf_sources(a: np.ndarray, b: np.ndarray) -> QabfSources:
    """Everything Qabf needs from the sources alone (validated float64 gray ``(H, W)``)."""
    g_a, alpha_a = sobel_strength_orientation(a)
    g_b, alpha_b = sobel_strength_orientation(b)
    return QabfSources(g_a, alpha_a, g_b, alpha_b, np.sum(g_a + g_b))


def qabf_gray(
    f: np.ndarray, a: np.ndarray, b: np.ndarray, sources: QabfSources | None = None
) -> float:
    """Qabf on validated float64 gray images of shape ``(H, W)``; NaN if no source has an edge.

    ``sources``: :func:`prepare_qabf_sources` of ``(a, b)``, to share between fused images.
    """
    if sources is None:
        sources = prepare_qabf_sources(a, b)
    g_a, g_b = sources.strength_a, sources.strength_b
    g_f, alpha_f = sobel_strength_orientation(f)
    q_af = _edge_preservation(g_a, sources.angle_a, g_f, alpha_f)
    q_bf = _edge_preservation(g_b, sources.angle_b, g_f, alpha_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(q_af * g_a + q_bf * g_b) / sources.weight)


def qabf(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Qabf in [0, 1]: how much of the sources' edge information the fused image keeps.

    Args:
        fused, a, b: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size.
    """
    return qabf_gray(*as_gray_triple(fused, a, b))
