"""VIF: multi-scale pixel-domain visual information fidelity (Sheikh & Bovik, IEEE TIP 2006).

The fusion convention scores VIF(A -> F) + VIF(B -> F): each source is the reference and the fused
image the distorted signal. Four scales; at scale s the window is a MATLAB ``fspecial`` Gaussian
of size ``2^(5-s) + 1`` and sigma ``size / 5``; filtering is 'valid' and, at scales 2-4, the
images are filtered with that scale's window and decimated by 2 first. Noise variance 2.
"""

from __future__ import annotations

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


def _information_terms(
    sigma_ref: np.ndarray, sigma_dist: np.ndarray, sigma_cross: np.ndarray
) -> tuple[float, float]:
    """Numerator and denominator sums of one scale for one reference.

    Args:
        sigma_ref: local variance of the reference, clipped at 0; overwritten.
        sigma_dist: local variance of the distorted image, clipped at 0.
        sigma_cross: local covariance of the two.

    All of the same shape. The reference code's rules, as masks: where the reference is flat
    (``sigma_ref < EPS``) the gain is 0 and ``sigma_ref`` counts as 0; where the distorted
    image is flat, or the gain is negative, the gain is 0. A zero gain makes the numerator term
    ``log10(1 + 0) = 0`` exactly, so those terms are zeroed, not computed from patched arrays.
    """
    flat_ref = sigma_ref < EPS
    gain = sigma_cross / (sigma_ref + EPS)
    noise = sigma_dist - gain * sigma_cross
    np.maximum(noise, EPS, out=noise)
    informative = ~flat_ref & (sigma_dist >= EPS) & (gain >= 0)
    sigma_ref[flat_ref] = 0.0
    terms = gain * gain
    terms *= sigma_ref
    noise += NOISE_VARIANCE
    terms /= noise
    terms += 1.0
    np.log10(terms, out=terms)
    terms[~informative] = 0.0
    information = sigma_ref / NOISE_VARIANCE
    information += 1.0
    np.log10(information, out=information)
    return float(np.sum(terms)), float(np.sum(information))


def _local_variance(mean_square: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``max(E[x^2] - E[x]^2, 0)`` as a new array."""
    variance = mean_square - mean * mean
    return np.maximum(variance, 0.0, out=variance)


def vif_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """VIF(A -> F) + VIF(B -> F) on validated float64 gray images of shape ``(H, W)``.

    A reference with no information at any scale (0/0) counts as 1, as in the reference code.
    """
    refs = [a, b]
    dist = f
    numerators = [0.0, 0.0]
    denominators = [0.0, 0.0]
    for scale, window in enumerate(_WINDOWS, start=1):
        if scale > 1:
            refs = [filter_valid(ref, window)[::2, ::2] for ref in refs]
            dist = filter_valid(dist, window)[::2, ::2]
        if min(dist.shape) < window.shape[0]:
            break
        mu_dist = filter_valid(dist, window)
        sigma_dist = _local_variance(filter_valid(dist * dist, window), mu_dist)
        for index, ref in enumerate(refs):
            mu_ref = filter_valid(ref, window)
            sigma_ref = _local_variance(filter_valid(ref * ref, window), mu_ref)
            sigma_cross = filter_valid(ref * dist, window) - mu_ref * mu_dist
            num, den = _information_terms(sigma_ref, sigma_dist, sigma_cross)
            numerators[index] += num
            denominators[index] += den
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
