"""SSIM (Wang et al., IEEE TIP 2004) in the two forms the pipeline reports.

* ``ssim_fusion``: SSIM(F, A) + SSIM(F, B) exactly as the widely used fusion evaluator computes it
  (scikit-image defaults on float images as of its era): 7x7 uniform window, sample covariance,
  K1 = 0.01, K2 = 0.03, data range 2, mean after cropping 3 pixels at each border.
* ``ssim_reference``: the standard SSIM against a ground truth: Gaussian window sigma 1.5
  (11x11), population covariance, data range 255, mean after cropping 5 pixels at each border.
"""

from __future__ import annotations

import numpy as np

from fusionfm.metrics._common import as_gray_pair, as_gray_triple, correlate_separable

K1, K2 = 0.01, 0.03

FUSION_WINDOW = 7
"""Side of the evaluator-convention SSIM window (uniform); smaller images have no SSIM."""
REFERENCE_WINDOW = 11
"""Side of the standard SSIM window (Gaussian, sigma 1.5); smaller images have no SSIM_gt."""

_UNIFORM_7 = np.full(FUSION_WINDOW, 1.0 / FUSION_WINDOW)
_RADIUS = REFERENCE_WINDOW // 2
_GAUSSIAN_15 = np.exp(-0.5 * (np.arange(-_RADIUS, _RADIUS + 1) / 1.5) ** 2)
_GAUSSIAN_15 /= _GAUSSIAN_15.sum()
"""scipy's ``gaussian_filter(sigma=1.5, truncate=3.5)`` taps: radius ``int(3.5 * 1.5 + 0.5) = 5``."""


def _uniform_7(image: np.ndarray) -> np.ndarray:
    """7x7 local mean, half-sample symmetric boundary (scipy's ``uniform_filter(size=7)``)."""
    return correlate_separable(image, _UNIFORM_7, "reflect")


def _gaussian_15(image: np.ndarray) -> np.ndarray:
    """Gaussian local mean, sigma 1.5, 11x11, scipy's ``reflect`` boundary."""
    return correlate_separable(image, _GAUSSIAN_15, "reflect")


def _ssim_mean(
    mean_x: np.ndarray,
    mean_y: np.ndarray,
    mean_xx: np.ndarray,
    mean_yy: np.ndarray,
    mean_xy: np.ndarray,
    covariance_norm: float,
    data_range: float,
    crop: int,
) -> float:
    """Mean SSIM over the map cropped by ``crop`` pixels, from the local means of ``x``, ``y``,
    ``x^2``, ``y^2`` and ``xy`` (all ``(H, W)``); ``covariance_norm`` is ``n / (n - 1)`` for the
    sample covariance of an ``n``-pixel window, else 1."""
    height, width = mean_x.shape
    if min(height, width) <= 2 * crop:
        window = 2 * crop + 1
        raise ValueError(
            f"SSIM: an image of {width}x{height} pixels is smaller than its {window}x{window} "
            "window; SSIM is undefined for it"
        )
    inner = (slice(crop, -crop), slice(crop, -crop))
    mean_x, mean_y = mean_x[inner], mean_y[inner]
    var_x = covariance_norm * (mean_xx[inner] - mean_x * mean_x)
    var_y = covariance_norm * (mean_yy[inner] - mean_y * mean_y)
    cov_xy = covariance_norm * (mean_xy[inner] - mean_x * mean_y)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean())


def _fusion_ssim(
    x: np.ndarray,
    y: np.ndarray,
    x_means: tuple[np.ndarray, np.ndarray],
    y_means: tuple[np.ndarray, np.ndarray],
) -> float:
    """Evaluator-convention SSIM of ``x`` and ``y`` given the local means of each and its square."""
    return _ssim_mean(
        x_means[0],
        y_means[0],
        x_means[1],
        y_means[1],
        _uniform_7(x * y),
        covariance_norm=49 / 48,
        data_range=2.0,
        crop=FUSION_WINDOW // 2,
    )


def _uniform_means(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _uniform_7(image), _uniform_7(image * image)


def prepare_ssim_sources(
    a: np.ndarray, b: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The 7x7 local means of A, A^2, B and B^2, shareable between fused images."""
    return _uniform_means(a), _uniform_means(b)


def ssim_fusion_pair(x: np.ndarray, y: np.ndarray) -> float:
    """Evaluator-convention SSIM of two gray ``(H, W)`` images (H, W >= 7)."""
    return _fusion_ssim(x, y, _uniform_means(x), _uniform_means(y))


def ssim_fusion_gray(
    f: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    sources: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> float:
    """SSIM(F, A) + SSIM(F, B); the local means of F and F^2 are computed once for both.

    ``sources``: :func:`prepare_ssim_sources` of ``(a, b)``, to share between fused images.
    """
    means_a, means_b = sources if sources is not None else prepare_ssim_sources(a, b)
    means_f = _uniform_means(f)
    return _fusion_ssim(f, a, means_f, means_a) + _fusion_ssim(f, b, means_f, means_b)


def ssim_fusion(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """SSIM = SSIM(F, A) + SSIM(F, B), evaluator convention (see module docstring).

    Args:
        fused, a, b: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size, at least 7x7.
    """
    return ssim_fusion_gray(*as_gray_triple(fused, a, b))


def prepare_ssim_reference(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian local means of a ground truth and its square, shareable between images."""
    return _gaussian_15(gt), _gaussian_15(gt * gt)


def ssim_reference_gray(
    f: np.ndarray, gt: np.ndarray, reference: tuple[np.ndarray, np.ndarray] | None = None
) -> float:
    """Standard SSIM on validated gray images; ``reference``: :func:`prepare_ssim_reference`."""
    mean_gt, mean_gtgt = reference if reference is not None else prepare_ssim_reference(gt)
    return _ssim_mean(
        _gaussian_15(f),
        mean_gt,
        _gaussian_15(f * f),
        mean_gtgt,
        _gaussian_15(f * gt),
        covariance_norm=1.0,
        data_range=255.0,
        crop=REFERENCE_WINDOW // 2,
    )


def ssim_reference(fused: np.ndarray, ground_truth: np.ndarray) -> float:
    """Standard SSIM of F against a ground truth (Gaussian sigma 1.5, data range 255).

    Args:
        fused, ground_truth: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size, >= 11x11.
    """
    return ssim_reference_gray(*as_gray_pair(fused, ground_truth))
