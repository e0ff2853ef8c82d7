"""Enhancements, one per degradable component, each touching only its own layer.

Every function takes the fused luminance's base/detail split (and what it needs of the sources)
plus a ``strength`` in (0, 1] and returns the new luminance ``base' + detail'`` (float64
``(H, W)``, 0-255 scale, not yet clipped):

=============  ==================  ===========================================================
component      operation           what changes
=============  ==================  ===========================================================
``noise``      ``denoise``         detail layer soft-thresholded at ``strength * k * sigma_F``
``exposure``   ``exposure``        base layer gamma that moves its mean ``strength`` of the
                                   way to mid-gray
``contrast``   ``contrast``        base layer stretched about its mean, gain toward the more
                                   contrasted source's base std (capped)
``saliency``   ``restore``         smooth gain on the salient region toward the brighter
                                   source's (smoothed) base intensity
``detail``     ``inject``          detail layer pulled toward the sharper source's
                                   (noise-thresholded) detail where it has less energy
=============  ==================  ===========================================================
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fusionfm.refine.decompose import Layers
from fusionfm.refine.diagnose import SourceContext, detail_energies

OPERATION_NAMES: dict[str, str] = {
    "noise": "denoise",
    "exposure": "exposure",
    "contrast": "contrast",
    "saliency": "restore",
    "detail": "inject",
}
"""Component -> name of the operation that treats it (as recorded in the refine table)."""


def soft_threshold(values: np.ndarray, threshold: float) -> np.ndarray:
    """``sign(v) * max(|v| - t, 0)`` elementwise."""
    return np.sign(values) * np.maximum(np.abs(values) - threshold, 0.0)


def denoise(layers: Layers, sigma: float, strength: float, k: float) -> np.ndarray:
    """Detail-layer denoising by soft thresholding.

    Args:
        layers: base/detail of the fused luminance.
        sigma: its noise estimate.
        strength: in (0, 1].
        k: threshold in units of ``sigma`` at full strength.

    Returns:
        float64 ``(H, W)`` luminance.
    """
    return layers.base + soft_threshold(layers.detail, strength * k * sigma)


def exposure(layers: Layers, strength: float) -> np.ndarray:
    """Base-layer exposure correction by a gamma curve.

    The gamma maps the base's mean ``m`` (on [0, 1]) to ``m + strength * (0.5 - m)``; the detail
    layer is added back unchanged.

    Args:
        layers: base/detail of the fused luminance.
        strength: in (0, 1].

    Returns:
        float64 ``(H, W)`` luminance.
    """
    unit = np.clip(layers.base / 255.0, 1e-6, 1.0)
    mean = float(np.clip(unit.mean(), 1e-3, 1.0 - 1e-3))
    target = mean + strength * (0.5 - mean)
    gamma = math.log(target) / math.log(mean)
    return 255.0 * unit**gamma + layers.detail


def contrast(
    layers: Layers, context: SourceContext, strength: float, max_gain: float
) -> np.ndarray:
    """Base-layer contrast stretch about the base's mean.

    The gain is ``1 + strength * (target / std(base) - 1)`` with ``target`` the larger of the
    sources' base std, clipped to ``[1, max_gain]``.

    Args:
        layers: base/detail of the fused luminance.
        context: the sources.
        strength: in (0, 1].
        max_gain: largest gain.

    Returns:
        float64 ``(H, W)`` luminance.
    """
    spread = float(layers.base.std())
    target = max(float(context.layers_a.base.std()), float(context.layers_b.base.std()))
    gain = 1.0 if spread < 1e-9 else 1.0 + strength * (target / spread - 1.0)
    gain = float(np.clip(gain, 1.0, max_gain))
    mean = float(layers.base.mean())
    return mean + gain * (layers.base - mean) + layers.detail


def restore_saliency(
    layers: Layers, context: SourceContext, strength: float, smooth: float
) -> np.ndarray:
    """Saliency-weighted intensity restoration: a smooth gain on the salient region.

    The gain ``g = 1 + strength * w * max(G(R) / G(base) - 1, 0)`` - with ``w`` the salient
    weight, ``R`` the brighter source's base and ``G`` a Gaussian of ``smooth`` pixels - brightens
    dimmed targets as a whole while keeping their inner structure, and multiplies the base and
    the detail alike (so local contrast grows with the intensity).

    Args:
        layers: base/detail of the fused luminance.
        context: the sources (their salient weight and the brighter source's base).
        strength: in (0, 1].
        smooth: Gaussian sigma of the intensity ratio (pixels).

    Returns:
        float64 ``(H, W)`` luminance.
    """

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), smooth, borderType=cv2.BORDER_REFLECT_101)

    reference = blur(context.layers_max.base)
    current = blur(layers.base)
    ratio = np.where(current > 1.0, reference / np.maximum(current, 1.0), 1.0)
    gain = 1.0 + strength * context.saliency * np.maximum(ratio - 1.0, 0.0)
    return gain * (layers.base + layers.detail)


def inject_detail(
    layers: Layers,
    context: SourceContext,
    strength: float,
    window: int,
    noise_k: float,
) -> np.ndarray:
    """Detail injection from the sharper source where the fused detail is weaker.

    Per pixel the reference detail is the detail layer of the source with the larger local
    (noise-corrected) energy, soft-thresholded at ``noise_k`` times that source's noise so noise
    is not injected; the fused detail moves toward it by ``strength * w`` with
    ``w = 1 - sqrt(E_F / E_R)`` (0 where the fused image already has as much detail).

    Args:
        layers: base/detail of the fused luminance.
        context: the sources.
        strength: in (0, 1].
        window: box side of the local energy.
        noise_k: noise threshold of the reference detail in units of the source's sigma.

    Returns:
        float64 ``(H, W)`` luminance.
    """
    energy_f, energy_r, from_a = detail_energies(layers, context, window)
    reference = np.where(
        from_a,
        soft_threshold(context.layers_a.detail, noise_k * context.sigma_a),
        soft_threshold(context.layers_b.detail, noise_k * context.sigma_b),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(energy_r > 1e-9, energy_f / np.where(energy_r > 1e-9, energy_r, 1.0), 1.0)
    weight = np.clip(1.0 - np.sqrt(np.clip(ratio, 0.0, 1.0)), 0.0, 1.0)
    return layers.base + layers.detail + strength * weight * (reference - layers.detail)


__all__ = [
    "OPERATION_NAMES",
    "contrast",
    "denoise",
    "exposure",
    "inject_detail",
    "restore_saliency",
    "soft_threshold",
]
