"""Multi-scale classical teachers: Laplacian pyramid, wavelet (DWT) and exposure fusion.

Like :mod:`fusionfm.teacher.classical`, each luminance method is a ``fuse_<name>_gray`` kernel
whose ``fuse_<name>`` teacher is made by :func:`~fusionfm.teacher.registry.luminance_fuse`;
exposure fusion works on the color images directly.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
from scipy import ndimage

from fusionfm.color import LUMA_WEIGHTS
from fusionfm.teacher.color import to_uint8
from fusionfm.teacher.filters import (
    gaussian_pyramid,
    laplacian_magnitude,
    laplacian_pyramid,
    max_pyramid_levels,
    reconstruct_laplacian_pyramid,
)
from fusionfm.teacher.registry import luminance_fuse

# --------------------------------------------------------------------------------------------
# Laplacian pyramid: Burt & Adelson 1983, Burt & Kolczynski 1993
# --------------------------------------------------------------------------------------------


def select_or_average(
    detail_a: np.ndarray, detail_b: np.ndarray, window: int, match_threshold: float
) -> np.ndarray:
    """Burt & Kolczynski's selection-or-averaging rule for one pair of band-pass images.

    Salience ``S = sum_window D^2`` (local energy), match
    ``M = 2 sum_window D_a D_b / (S_a + S_b)``. Where ``M <= match_threshold`` the patterns
    differ and the more salient coefficient is selected; elsewhere the two are averaged with
    ``w_min = 1/2 - 1/2 (1 - M) / (1 - match_threshold)`` on the less salient one. With
    ``window = 1`` and ``match_threshold = 1`` this is plain max-abs selection.

    Args:
        detail_a, detail_b: float64 ``(h, w)``.
        window: side of the (box) salience window, odd.
        match_threshold: the paper's alpha, in (0, 1].

    Returns:
        float64 ``(h, w)``.
    """
    size = (window, window)
    border = cv2.BORDER_REFLECT_101
    salience_a = cv2.blur(detail_a * detail_a, size, borderType=border)
    salience_b = cv2.blur(detail_b * detail_b, size, borderType=border)
    correlation = cv2.blur(detail_a * detail_b, size, borderType=border)
    total = salience_a + salience_b
    match = np.divide(2.0 * correlation, total, out=np.ones_like(total), where=total > 0)
    a_wins = salience_a >= salience_b
    if match_threshold < 1.0:
        weight_min = 0.5 - 0.5 * (1.0 - match) / (1.0 - match_threshold)
        weight_min = np.where(match > match_threshold, weight_min, 0.0)
    else:
        weight_min = np.zeros_like(match)
    weight_a = np.where(a_wins, 1.0 - weight_min, weight_min)
    return weight_a * detail_a + (1.0 - weight_a) * detail_b


def fuse_laplacian_pyramid_gray(
    y_a: np.ndarray,
    y_b: np.ndarray,
    *,
    levels: int = 4,
    window: int = 3,
    match_threshold: float = 0.85,
) -> np.ndarray:
    """Laplacian-pyramid fusion of two luminance images.

    References: P. J. Burt & E. H. Adelson, "The Laplacian pyramid as a compact image code",
    IEEE Trans. Communications 31(4), 1983, 532-540; P. J. Burt & R. J. Kolczynski, "Enhanced
    image capture through fusion", Proc. ICCV 1993, 173-182 (3x3 salience/match measures,
    selection or averaging with alpha = 0.85). Base level averaged; 4 levels.

    Detail levels are combined by :func:`select_or_average` (Burt & Kolczynski's salience and
    match measures on a small window), the low-pass residual by averaging; the fused pyramid is
    collapsed. ``levels`` is capped by the image size.

    Args:
        y_a, y_b: float64 ``(H, W)``, 0-255.
        levels: pyramid levels including the residual.
        window: salience window side (1 = per-coefficient max-abs).
        match_threshold: the match threshold alpha (1 = always select).

    Returns:
        float64 ``(H, W)``, 0-255.
    """
    pyramid_a = laplacian_pyramid(y_a, levels)
    pyramid_b = laplacian_pyramid(y_b, levels)
    fused = [
        select_or_average(detail_a, detail_b, window, match_threshold)
        for detail_a, detail_b in zip(pyramid_a[:-1], pyramid_b[:-1], strict=True)
    ]
    fused.append(0.5 * (pyramid_a[-1] + pyramid_b[-1]))
    return reconstruct_laplacian_pyramid(fused)


fuse_laplacian_pyramid = luminance_fuse(fuse_laplacian_pyramid_gray)


# --------------------------------------------------------------------------------------------
# DWT: Li, Manjunath & Mitra 1995
# --------------------------------------------------------------------------------------------


def fuse_dwt_gray(
    y_a: np.ndarray,
    y_b: np.ndarray,
    *,
    wavelet: str = "db2",
    levels: int = 4,
    window: int = 3,
    consistency_window: int = 3,
) -> np.ndarray:
    """Discrete-wavelet-transform fusion of two luminance images.

    Reference: H. Li, B. S. Manjunath & S. K. Mitra, "Multisensor image fusion using the
    wavelet transform", Graphical Models and Image Processing 57(3), 1995, 235-245: area-based
    maximum selection (max |coefficient| in a 3x3 window), 3x3 majority-filter consistency
    verification, averaged approximation. Daubechies db2, 4 levels.

    2-D DWT (``pywt.wavedec2``, symmetric extension). In every detail sub-band the activity of a
    coefficient is the maximum absolute value in a ``window x window`` neighbourhood; the source
    with the larger activity is selected, and the binary decision is cleaned by a
    ``consistency_window`` majority filter (consistency verification). The approximation band
    is averaged. The reconstruction is cropped back to the input size (odd sizes grow by one).
    ``levels`` is capped at the deepest useful level for the image size.

    Args:
        y_a, y_b: float64 ``(H, W)``, 0-255.
        wavelet: PyWavelets wavelet name.
        levels: decomposition levels.
        window: activity window side (1 = per-coefficient max-abs).
        consistency_window: majority-filter side (1 = no verification).

    Returns:
        float64 ``(H, W)``, 0-255.
    """
    import pywt  # only this teacher needs PyWavelets: imported on use

    height, width = y_a.shape
    filter_length = pywt.Wavelet(wavelet).dec_len
    levels = max(1, min(levels, pywt.dwt_max_level(min(height, width), filter_length)))
    with warnings.catch_warnings():
        # Images smaller than the filter still get one (boundary-dominated, exactly invertible)
        # level; PyWavelets warns about that, which is noise here.
        warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
        coeffs_a = pywt.wavedec2(y_a, wavelet, mode="symmetric", level=levels)
        coeffs_b = pywt.wavedec2(y_b, wavelet, mode="symmetric", level=levels)
    fused: list[np.ndarray | tuple[np.ndarray, ...]] = [0.5 * (coeffs_a[0] + coeffs_b[0])]
    for bands_a, bands_b in zip(coeffs_a[1:], coeffs_b[1:], strict=True):
        fused.append(
            tuple(
                _select_by_activity(band_a, band_b, window, consistency_window)
                for band_a, band_b in zip(bands_a, bands_b, strict=True)
            )
        )
    return pywt.waverec2(fused, wavelet, mode="symmetric")[:height, :width]


def _select_by_activity(
    band_a: np.ndarray, band_b: np.ndarray, window: int, consistency_window: int
) -> np.ndarray:
    activity_a = ndimage.maximum_filter(np.abs(band_a), size=window, mode="reflect")
    activity_b = ndimage.maximum_filter(np.abs(band_b), size=window, mode="reflect")
    choose_a = (activity_a >= activity_b).astype(np.float64)
    if consistency_window > 1:
        # A coefficient follows the majority of its neighbourhood (odd window: no ties).
        share = ndimage.uniform_filter(choose_a, size=consistency_window, mode="reflect")
        choose_a = (share > 0.5).astype(np.float64)
    return choose_a * band_a + (1.0 - choose_a) * band_b


fuse_dwt = luminance_fuse(fuse_dwt_gray)


# --------------------------------------------------------------------------------------------
# Exposure fusion: Mertens, Kautz & Van Reeth 2007
# --------------------------------------------------------------------------------------------


def exposure_weights(
    image: np.ndarray,
    *,
    contrast_exponent: float,
    saturation_exponent: float,
    exposedness_exponent: float,
    exposedness_sigma: float,
) -> np.ndarray:
    """Mertens et al.'s per-pixel quality ``C^wc * S^ws * E^we`` of one exposure.

    Contrast ``C = |Laplacian(gray)|``, saturation ``S`` = standard deviation of R, G, B,
    well-exposedness ``E = prod_channels exp(-(I - 0.5)^2 / (2 sigma^2))``; a measure whose
    exponent is 0 is left out (as in the authors' code). Gray images have no saturation term.

    Args:
        image: float64 ``(H, W)`` or ``(H, W, 3)`` in [0, 1].

    Returns:
        float64 ``(H, W)``.
    """
    is_color = image.ndim == 3
    weights = np.ones(image.shape[:2])
    if contrast_exponent > 0:
        gray = image @ LUMA_WEIGHTS if is_color else image
        weights *= laplacian_magnitude(gray) ** contrast_exponent
    if saturation_exponent > 0 and is_color:
        weights *= image.std(axis=2) ** saturation_exponent
    if exposedness_exponent > 0:
        exposedness = np.exp(-0.5 * (image - 0.5) ** 2 / exposedness_sigma**2)
        if is_color:
            exposedness = exposedness.prod(axis=2)
        weights *= exposedness**exposedness_exponent
    return weights


def fuse_exposure(
    a: np.ndarray,
    b: np.ndarray,
    task: str,
    *,
    contrast_exponent: float = 1.0,
    saturation_exponent: float = 1.0,
    exposedness_exponent: float = 1.0,
    exposedness_sigma: float = 0.2,
) -> np.ndarray:
    """Exposure fusion: quality-weighted Laplacian-pyramid blending of the color images.

    Reference: T. Mertens, J. Kautz & F. Van Reeth, "Exposure fusion", Proc. Pacific Graphics
    2007, 382-390 (extended in Computer Graphics Forum 28(1), 2009). Defaults are the paper's:
    exponents 1, well-exposedness sigma 0.2, a full pyramid of ``floor(log2(min(H, W)))``
    levels.

    Unlike the other teachers this fuses the RGB images themselves (the weights are computed
    from color), so the color rule applies only to its shape: RGB out when either source is
    RGB, gray when both are gray. When exactly one source is gray it is replicated to three
    channels and the saturation measure is dropped for both, since a gray image's zero
    saturation would otherwise exclude it everywhere.

    Args:
        a, b: ``uint8`` ``(H, W)`` or ``(H, W, 3)``, same ``H, W``.
        task: fusion task (unused: the method has one rule).

    Returns:
        ``uint8`` ``(H, W)`` or ``(H, W, 3)``.
    """
    del task
    a, b = np.asarray(a), np.asarray(b)
    if (a.ndim == 3) != (b.ndim == 3):
        saturation_exponent = 0.0
        a, b = (np.repeat(x[..., np.newaxis], 3, axis=2) if x.ndim == 2 else x for x in (a, b))
    images = [a.astype(np.float64) / 255.0, b.astype(np.float64) / 255.0]
    weights = [
        exposure_weights(
            image,
            contrast_exponent=contrast_exponent,
            saturation_exponent=saturation_exponent,
            exposedness_exponent=exposedness_exponent,
            exposedness_sigma=exposedness_sigma,
        )
        + 1e-12
        for image in images
    ]
    total = weights[0] + weights[1]
    levels = max_pyramid_levels(*a.shape[:2])
    blended: list[np.ndarray] | None = None
    for image, weight in zip(images, weights, strict=True):
        weight_pyramid = gaussian_pyramid(weight / total, levels)
        image_pyramid = laplacian_pyramid(image, levels)
        terms = [
            (w[..., np.newaxis] if band.ndim == 3 else w) * band
            for w, band in zip(weight_pyramid, image_pyramid, strict=True)
        ]
        blended = terms if blended is None else [s + t for s, t in zip(blended, terms, strict=True)]
    assert blended is not None
    return to_uint8(reconstruct_laplacian_pyramid(blended) * 255.0)
