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
    ref: np.ndarray, mu_ref: np.ndarray, dist_sq_mean: np.ndarray, mu_dist: np.ndarray,
    ref_dist_mean: np.ndarray, window: np.ndarray,
) -> tuple[float, float]:
    """Numerator and denominator sums of one scale for one reference."""
    sigma_ref = filter_valid(ref * ref, window) - mu_ref * mu_ref
    sigma_dist = dist_sq_mean - mu_dist * mu_dist
    sigma_cross = ref_dist_mean - mu_ref * mu_dist
    sigma_ref = np.maximum(sigma_ref, 0.0)
    sigma_dist = np.maximum(sigma_dist, 0.0)

    gain = sigma_cross / (sigma_ref + EPS)
    noise = sigma_dist - gain * sigma_cross
    flat_ref = sigma_ref < EPS
    gain[flat_ref] = 0.0
    noise[flat_ref] = sigma_dist[flat_ref]
    sigma_ref[flat_ref] = 0.0
    flat_dist = sigma_dist < EPS
    gain[flat_dist] = 0.0
    noise[flat_dist] = 0.0
    negative = gain < 0
    noise[negative] = sigma_dist[negative]
    gain[negative] = 0.0
    noise[noise <= EPS] = EPS

    numerator = np.sum(np.log10(1.0 + gain * gain * sigma_ref / (noise + NOISE_VARIANCE)))
    denominator = np.sum(np.log10(1.0 + sigma_ref / NOISE_VARIANCE))
    return float(numerator), float(denominator)


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
        dist_sq_mean = filter_valid(dist * dist, window)
        for index, ref in enumerate(refs):
            mu_ref = filter_valid(ref, window)
            ref_dist_mean = filter_valid(ref * dist, window)
            num, den = _information_terms(ref, mu_ref, dist_sq_mean, mu_dist, ref_dist_mean, window)
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
