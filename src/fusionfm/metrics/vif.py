"""VIF: multi-scale pixel-domain visual information fidelity (Sheikh & Bovik, IEEE TIP 2006).

The fusion convention scores VIF(A -> F) + VIF(B -> F): each source is the reference and the fused
image the distorted signal. Four scales; at scale s the window is a MATLAB ``fspecial`` Gaussian
of size ``2^(5-s) + 1`` and sigma ``size / 5``; filtering is 'valid' and, at scales 2-4, the
images are filtered with that scale's window and decimated by 2 first. Noise variance 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionfm.metrics._common import as_gray_triple, filter_valid, matlab_gaussian

NOISE_VARIANCE = 2.0
EPS = 1e-10
SCALES = 4


def _scale_windows() -> list[np.ndarray]:
    windows = []
    for scale in range(1, SCALES + 1):
        size = 2 ** (SCALES - scale + 1) + 1
        windows.append(matlab_gaussian(size, size / 5.0))
    return windows


_WINDOWS = _scale_windows()


@dataclass(frozen=True)
class _ReferenceScale:
    """One reference image at one scale: the image, its local mean, its local variance
    (clipped at 0, flat pixels zeroed), its flat mask and the VIF denominator sum."""

    image: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    flat: np.ndarray
    information: float


@dataclass(frozen=True)
class VifSources:
    """The reference-only part of VIF for a source pair, reusable for any fused image of that
    size: per scale, one :class:`_ReferenceScale` for A and one for B."""

    shape: tuple[int, int]
    scales: list[tuple[_ReferenceScale, _ReferenceScale]]


def _reference_scale(image: np.ndarray, window: np.ndarray) -> _ReferenceScale:
    mean = filter_valid(image, window)
    variance = _local_variance(filter_valid(image * image, window), mean)
    flat = variance < EPS
    variance[flat] = 0.0
    information = variance / NOISE_VARIANCE
    information += 1.0
    np.log10(information, out=information)
    return _ReferenceScale(image, mean, variance, flat, float(np.sum(information)))


def prepare_vif_sources(a: np.ndarray, b: np.ndarray) -> VifSources:
    """Everything VIF needs from the sources alone (validated float64 gray ``(H, W)`` images)."""
    refs = [a, b]
    scales = []
    for scale, window in enumerate(_WINDOWS, start=1):
        if scale > 1:
            refs = [filter_valid(ref, window)[::2, ::2] for ref in refs]
        if min(refs[0].shape) < window.shape[0]:
            break
        scales.append((_reference_scale(refs[0], window), _reference_scale(refs[1], window)))
    return VifSources(a.shape, scales)


def _numerator(ref: _ReferenceScale, sigma_dist: np.ndarray, sigma_cross: np.ndarray) -> float:
    """Numerator sum of one scale for one reference.

    The reference code's rules, as masks: where the reference is flat (``sigma_ref < EPS``), the
    distorted image is flat, or the gain is negative, the gain is 0, and a zero gain makes the
    term ``log10(1 + 0) = 0`` exactly, so those terms are zeroed rather than computed from
    patched arrays. (On flat reference pixels the variance has been zeroed, which changes the
    gain there only, and those terms are zeroed.)
    """
    gain = sigma_cross / (ref.variance + EPS)
    noise = sigma_dist - gain * sigma_cross
    np.maximum(noise, EPS, out=noise)
    informative = ~ref.flat & (sigma_dist >= EPS) & (gain >= 0)
    terms = gain * gain
    terms *= ref.variance
    noise += NOISE_VARIANCE
    terms /= noise
    terms += 1.0
    np.log10(terms, out=terms)
    terms[~informative] = 0.0
    return float(np.sum(terms))


def _local_variance(mean_square: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``max(E[x^2] - E[x]^2, 0)`` as a new array."""
    variance = mean_square - mean * mean
    return np.maximum(variance, 0.0, out=variance)


def vif_gray(
    f: np.ndarray, a: np.ndarray, b: np.ndarray, sources: VifSources | None = None
) -> float:
    """VIF(A -> F) + VIF(B -> F) on validated float64 gray images of shape ``(H, W)``.

    A reference with no information at any scale (0/0) counts as 1, as in the reference code.

    Args:
        f, a, b: the fused image and the sources.
        sources: :func:`prepare_vif_sources` of ``(a, b)``, to share between fused images.
    """
    if sources is None:
        sources = prepare_vif_sources(a, b)
    if sources.shape != f.shape:
        raise ValueError(f"VIF sources prepared for {sources.shape}, fused image is {f.shape}")
    dist = f
    numerators = [0.0, 0.0]
    denominators = [0.0, 0.0]
    for (scale, window), refs in zip(enumerate(_WINDOWS, start=1), sources.scales, strict=False):
        if scale > 1:
            dist = filter_valid(dist, window)[::2, ::2]
        mu_dist = filter_valid(dist, window)
        sigma_dist = _local_variance(filter_valid(dist * dist, window), mu_dist)
        for index, ref in enumerate(refs):
            sigma_cross = filter_valid(ref.image * dist, window) - ref.mean * mu_dist
            numerators[index] += _numerator(ref, sigma_dist, sigma_cross)
            denominators[index] += ref.information
    total = 0.0
    for num, den in zip(numerators, denominators, strict=True):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.float64(num) / np.float64(den)
        total += 1.0 if np.isnan(ratio) else float(ratio)
    return total


def visual_information_fidelity(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """VIF = VIF(A -> F) + VIF(B -> F).

    Args:
        fused, a, b: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size.
    """
    return vif_gray(*as_gray_triple(fused, a, b))
