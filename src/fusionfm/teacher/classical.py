"""Spatial-domain classical teachers (pixel rules, two-scale methods) and the built-in catalog.

Each method is written once, as ``fuse_<name>_gray(y_a, y_b, *, params...)``: the published
algorithm on two luminance images (float64 ``(H, W)``, 0-255 scale), whose keyword defaults are
the papers' settings and whose docstring holds the reference. Its teacher
``fuse_<name>(a, b, task, **params)`` is made by :func:`~fusionfm.teacher.registry.luminance_fuse`,
which applies it through the color rule of :func:`fusionfm.teacher.color.fuse_color` and
returns ``uint8``.

The end of this module registers every built-in teacher (these and those of
:mod:`~fusionfm.teacher.multiscale` and :mod:`~fusionfm.teacher.decision`) in one place.
"""

from __future__ import annotations

import cv2
import numpy as np

from fusionfm.teacher.decision import fuse_focus_measure
from fusionfm.teacher.filters import (
    gaussian_blur,
    guided_filter,
    laplacian_magnitude,
    mean_filter,
    median3,
)
from fusionfm.teacher.multiscale import fuse_dwt, fuse_exposure, fuse_laplacian_pyramid
from fusionfm.teacher.registry import (
    FuseFunction,
    Teacher,
    luminance_fuse,
    register,
    signature_defaults,
)

# --------------------------------------------------------------------------------------------
# Pixel rules
# --------------------------------------------------------------------------------------------


def fuse_average_gray(y_a: np.ndarray, y_b: np.ndarray, *, weight_a: float = 0.5) -> np.ndarray:
    """Weighted average ``w y_a + (1 - w) y_b``, the baseline of every fusion benchmark.

    Reference: the pixel-averaging rule as defined in e.g. G. Piella, "A general framework for
    multiresolution image fusion: from pixels to regions", Information Fusion 4(4), 2003,
    259-280 (average = equal weights 0.5).

    Args:
        y_a, y_b: float64 ``(H, W)``.
        weight_a: weight of source A, in [0, 1].

    Returns:
        float64 ``(H, W)``.
    """
    return weight_a * y_a + (1.0 - weight_a) * y_b


fuse_average = luminance_fuse(fuse_average_gray)


def fuse_max_abs_gray(y_a: np.ndarray, y_b: np.ndarray) -> np.ndarray:
    """Pixel-level choose-max ("maximum selection" rule): per pixel the larger luminance.

    Luminance is non-negative, so the maximum-absolute-value selection rule and the
    maximum-intensity rule coincide here. For ivf/mif this is the maximum-intensity rule that
    keeps bright thermal targets and bright tissue; for mef/mff it is the classic
    maximum-selection baseline.

    Reference: the pixel-level maximum selection rule, e.g. in G. Pajares & J. M. de la Cruz,
    "A wavelet-based image fusion tutorial", Pattern Recognition 37(9), 2004, 1855-1872.

    Args:
        y_a, y_b: float64 ``(H, W)``.

    Returns:
        float64 ``(H, W)``.
    """
    return np.maximum(y_a, y_b)


fuse_max_abs = luminance_fuse(fuse_max_abs_gray)


# --------------------------------------------------------------------------------------------
# GFF: Li, Kang & Hu 2013
# --------------------------------------------------------------------------------------------


def fuse_guided_filter_gray(
    y_a: np.ndarray,
    y_b: np.ndarray,
    *,
    base_size: int = 31,
    saliency_radius: int = 5,
    saliency_sigma: float = 5.0,
    base_radius: int = 45,
    base_eps: float = 0.3,
    detail_radius: int = 7,
    detail_eps: float = 1e-6,
) -> np.ndarray:
    """GFF: image fusion with guided filtering, on two luminance images.

    Reference: S. Li, X. Kang & J. Hu, "Image fusion with guided filtering", IEEE Transactions
    on Image Processing 22(7), 2013, 2864-2875. Defaults are the paper's: 31x31 mean filter,
    Gaussian r=5, sigma=5; r1=45, eps1=0.3 (base), r2=7, eps2=1e-6 (detail).

    1. Two-scale decomposition: base ``B = I * Z`` (``base_size^2`` mean filter), detail
       ``D = I - B``.
    2. Saliency ``S = |I * L| * g`` (3x3 Laplacian, then a Gaussian of radius
       ``saliency_radius`` and sigma ``saliency_sigma``); binary maps ``P_n = [S_n = max S]``.
    3. Weights: ``P_n`` guided-filtered with ``I_n`` as the guide, ``(base_radius, base_eps)`` for
       the base layer and ``(detail_radius, detail_eps)`` for the detail layer, clipped to [0, 1]
       and normalized to sum 1.
    4. ``F = sum_n W_n^B B_n + W_n^D D_n``.

    Images are scaled to [0, 1] as in the authors' code, since ``eps`` depends on the scale.

    Args:
        y_a, y_b: float64 ``(H, W)``, 0-255.

    Returns:
        float64 ``(H, W)``, 0-255.
    """
    images = [y_a / 255.0, y_b / 255.0]
    saliency = [
        gaussian_blur(laplacian_magnitude(image), saliency_radius, saliency_sigma)
        for image in images
    ]
    # Ties go to A, like MATLAB's max(...) label in the authors' code.
    a_is_salient = saliency[0] >= saliency[1]
    binary_maps = [a_is_salient.astype(np.float64), (~a_is_salient).astype(np.float64)]

    def refined_weights(radius: int, eps: float) -> list[np.ndarray]:
        weights = [
            np.clip(guided_filter(image, binary, radius, eps), 0.0, 1.0) + 1e-12
            for image, binary in zip(images, binary_maps, strict=True)
        ]
        total = weights[0] + weights[1]
        return [w / total for w in weights]

    base_weights = refined_weights(base_radius, base_eps)
    detail_weights = refined_weights(detail_radius, detail_eps)
    fused = np.zeros_like(images[0])
    for image, w_base, w_detail in zip(images, base_weights, detail_weights, strict=True):
        base = mean_filter(image, base_size)
        fused += w_base * base + w_detail * (image - base)
    return fused * 255.0


fuse_guided_filter = luminance_fuse(fuse_guided_filter_gray)


# --------------------------------------------------------------------------------------------
# TIF: Bavirisetti & Dhuli 2016
# --------------------------------------------------------------------------------------------


def fuse_two_scale_saliency_gray(
    y_a: np.ndarray, y_b: np.ndarray, *, mean_size: int = 35
) -> np.ndarray:
    """TIF: two-scale image fusion with saliency detection, on two luminance images.

    Reference: D. P. Bavirisetti & R. Dhuli, "Two-scale image fusion of visible and infrared
    images using saliency detection", Infrared Physics & Technology 76, 2016, 52-64. Default:
    the paper's 35x35 mean filter and 3x3 median filter.

    1. Two-scale decomposition: base ``B = mean_filter(I, mean_size)``, detail ``D = I - B``.
    2. Visual saliency ``S = (B - median3(I))^2``: the distance between the local mean (the
       same 35x35 mean filter) and the 3x3-median-filtered image, squared, as in the authors'
       code.
    3. Detail weights ``w_n = S_n / (S_1 + S_2)``; ``F = (B_1 + B_2) / 2 + w_1 D_1 + w_2 D_2``.

    Where both saliencies are zero the detail layers are averaged. Borders are replicated (the
    authors' code wraps them around, which leaks one edge of the image into the other).

    Args:
        y_a, y_b: float64 ``(H, W)``, 0-255.
        mean_size: side of the mean filter.

    Returns:
        float64 ``(H, W)``, 0-255.
    """
    base_a, base_b = mean_filter(y_a, mean_size), mean_filter(y_b, mean_size)
    saliency_a = (base_a - median3(y_a)) ** 2
    saliency_b = (base_b - median3(y_b)) ** 2
    total = saliency_a + saliency_b
    weight_a = np.divide(saliency_a, total, out=np.full_like(total, 0.5), where=total > 0)
    detail = weight_a * (y_a - base_a) + (1.0 - weight_a) * (y_b - base_b)
    return 0.5 * (base_a + base_b) + detail


fuse_two_scale_saliency = luminance_fuse(fuse_two_scale_saliency_gray)


# --------------------------------------------------------------------------------------------
# CBF: Kumar 2015
# --------------------------------------------------------------------------------------------


def cross_bilateral_filter(
    source: np.ndarray, guide: np.ndarray, sigma_spatial: float, sigma_range: float, size: int
) -> np.ndarray:
    """Cross (joint) bilateral filter: smooth ``source`` with range weights taken from ``guide``.

    ``out(p) = sum_q g_s(|p - q|) g_r(|guide(p) - guide(q)|) source(q) / sum_q (same weights)``
    over a ``size x size`` window, with reflected borders. Vectorized over the image: one pass
    per window offset.

    Args:
        source: float64 ``(H, W)``.
        guide: float64 ``(H, W)``, same scale as ``sigma_range``.
        sigma_spatial: spatial Gaussian sigma (pixels).
        sigma_range: range Gaussian sigma (gray levels).
        size: odd window side.

    Returns:
        float64 ``(H, W)``.
    """
    half = size // 2
    height, width = source.shape
    # float32 halves the memory traffic of the per-offset passes; the result is well within
    # rounding of the 0-255 output.
    source32 = np.asarray(source, dtype=np.float32)
    guide32 = np.asarray(guide, dtype=np.float32)
    padded_source = cv2.copyMakeBorder(source32, half, half, half, half, cv2.BORDER_REFLECT_101)
    padded_guide = cv2.copyMakeBorder(guide32, half, half, half, half, cv2.BORDER_REFLECT_101)
    range_scale = np.float32(-0.5 / sigma_range**2)
    numerator = np.zeros((height, width), dtype=np.float32)
    denominator = np.zeros((height, width), dtype=np.float32)
    for dy in range(size):
        for dx in range(size):
            spatial = np.float32(
                np.exp(-((dy - half) ** 2 + (dx - half) ** 2) / (2 * sigma_spatial**2))
            )
            shifted_guide = padded_guide[dy : dy + height, dx : dx + width]
            weight = np.exp(range_scale * (shifted_guide - guide32) ** 2) * spatial
            numerator += weight * padded_source[dy : dy + height, dx : dx + width]
            denominator += weight
    return (numerator / denominator).astype(np.float64)


def detail_strength(detail: np.ndarray, window: int) -> np.ndarray:
    """Kumar's pixel significance: summed eigenvalues of the window covariance matrices.

    For the ``window x window`` neighbourhood ``X`` of each pixel, the weight is
    ``trace(cov(X)) + trace(cov(X^T))`` with rows as observations (unbiased covariance). The sum
    of a covariance matrix's eigenvalues is its trace, so this equals the summed variances of
    the window's columns plus those of its rows, computed here with box filters. Borders are
    reflected.

    Args:
        detail: float64 ``(H, W)``.
        window: odd window side, >= 3.

    Returns:
        float64 ``(H, W)``, >= 0.
    """
    border = cv2.BORDER_REFLECT_101
    scale = window / (window - 1.0)  # population -> unbiased variance

    def summed_variances(axis_kernel: tuple[int, int], cross_kernel: tuple[int, int]) -> np.ndarray:
        mean = cv2.blur(detail, axis_kernel, borderType=border)
        mean_square = cv2.blur(detail * detail, axis_kernel, borderType=border)
        variance = np.maximum(mean_square - mean * mean, 0.0) * scale
        return cv2.boxFilter(variance, -1, cross_kernel, normalize=False, borderType=border)

    column_variances = summed_variances((1, window), (window, 1))  # cv2 sizes are (w, h)
    row_variances = summed_variances((window, 1), (1, window))
    return column_variances + row_variances


def fuse_cross_bilateral_gray(
    y_a: np.ndarray,
    y_b: np.ndarray,
    *,
    sigma_spatial: float = 1.8,
    sigma_range: float = 25.0,
    kernel_size: int = 11,
    covariance_window: int = 5,
) -> np.ndarray:
    """CBF: fusion by pixel significance with the cross bilateral filter, on two luminance images.

    Reference: B. K. Shreyamsha Kumar, "Image fusion based on pixel significance using cross
    bilateral filter", Signal, Image and Video Processing 9(5), 2015, 1193-1204. Defaults are
    the paper's: sigma_s = 1.8, sigma_r = 25, 11x11 kernel, 5x5 covariance window. The weights
    follow the paper exactly (sum of eigenvalues = trace), only the border rule differs
    (reflection instead of the code's extension).

    1. ``A_cbf`` = cross bilateral filter of A with range weights from B (and vice versa).
    2. Detail images ``A_D = A - A_cbf``, ``B_D = B - B_cbf``.
    3. Weights = :func:`detail_strength` of each detail image (zero replaced by machine eps).
    4. ``F = (w_A A + w_B B) / (w_A + w_B)``: the weights apply to the sources themselves.

    Args:
        y_a, y_b: float64 ``(H, W)``, 0-255.

    Returns:
        float64 ``(H, W)``, 0-255.
    """
    detail_a = y_a - cross_bilateral_filter(y_a, y_b, sigma_spatial, sigma_range, kernel_size)
    detail_b = y_b - cross_bilateral_filter(y_b, y_a, sigma_spatial, sigma_range, kernel_size)
    tiny = np.finfo(np.float64).eps
    weight_a = np.maximum(detail_strength(detail_a, covariance_window), tiny)
    weight_b = np.maximum(detail_strength(detail_b, covariance_window), tiny)
    return (weight_a * y_a + weight_b * y_b) / (weight_a + weight_b)


fuse_cross_bilateral = luminance_fuse(fuse_cross_bilateral_gray)


# --------------------------------------------------------------------------------------------
# The built-in teachers, in the order reports list them
# --------------------------------------------------------------------------------------------

ALL_TASKS: frozenset[str] = frozenset({"ivf", "mif", "mef", "mff"})


def _builtin(name: str, tasks: frozenset[str], fuse: FuseFunction, reference: str) -> None:
    register(
        Teacher(
            name=name,
            tasks=tasks,
            fuse=fuse,
            reference=reference,
            defaults=signature_defaults(fuse),
            builtin=True,
        )
    )


_builtin(
    "average",
    ALL_TASKS,
    fuse_average,
    "Pixel averaging (weight 0.5); e.g. G. Piella, Information Fusion 4(4), 2003, 259-280",
)
_builtin(
    "max_abs",
    ALL_TASKS,
    fuse_max_abs,
    "Pixel-level choose-max selection; e.g. G. Pajares, J. M. de la Cruz, Pattern Recognition "
    "37(9), 2004, 1855-1872",
)
_builtin(
    "laplacian_pyramid",
    ALL_TASKS,
    fuse_laplacian_pyramid,
    "P. J. Burt, E. H. Adelson, IEEE Trans. Commun. 31(4), 1983, 532-540; P. J. Burt, "
    "R. J. Kolczynski, Enhanced image capture through fusion, ICCV 1993, 173-182",
)
_builtin(
    "dwt",
    ALL_TASKS,
    fuse_dwt,
    "H. Li, B. S. Manjunath, S. K. Mitra, Multisensor image fusion using the wavelet "
    "transform, Graphical Models and Image Processing 57(3), 1995, 235-245",
)
_builtin(
    "guided_filter",
    ALL_TASKS,
    fuse_guided_filter,
    "S. Li, X. Kang, J. Hu, Image fusion with guided filtering, IEEE TIP 22(7), 2013, 2864-2875",
)
_builtin(
    "two_scale_saliency",
    frozenset({"ivf", "mif"}),
    fuse_two_scale_saliency,
    "D. P. Bavirisetti, R. Dhuli, Two-scale image fusion of visible and infrared images using "
    "saliency detection, Infrared Physics & Technology 76, 2016, 52-64",
)
_builtin(
    "exposure_fusion",
    frozenset({"mef"}),
    fuse_exposure,
    "T. Mertens, J. Kautz, F. Van Reeth, Exposure fusion, Pacific Graphics 2007, 382-390",
)
_builtin(
    "focus_measure",
    frozenset({"mff"}),
    fuse_focus_measure,
    "Y. Liu, X. Chen, H. Peng, Z. Wang, Information Fusion 36, 2017, 191-207 (decision-map "
    "refinement) with the sum-modified-Laplacian of W. Huang, Z. Jing, Pattern Recognition "
    "Letters 28(4), 2007, 493-500",
)
_builtin(
    "cross_bilateral",
    frozenset({"ivf", "mif", "mff"}),
    fuse_cross_bilateral,
    "B. K. Shreyamsha Kumar, Image fusion based on pixel significance using cross bilateral "
    "filter, Signal, Image and Video Processing 9(5), 2015, 1193-1204",
)
