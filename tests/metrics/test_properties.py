"""Invariants of the metric suite and live cross-checks against scikit-learn/scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fusionfm import metrics
from fusionfm.metrics import compute_metrics


def _scene(seed: int, shape=(64, 80)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 2.0) * 350 + 120
    return np.clip(np.round(smooth + rng.normal(0, 4, shape)), 0, 255)


@pytest.fixture
def triple():
    a, b = _scene(1), _scene(2)
    fused = np.round((a + b) / 2)
    return fused, a, b


def test_identity_gives_the_extreme_values():
    a = _scene(3)
    values = compute_metrics(a, a, a, ground_truth=a)
    assert values["SSIM"] == pytest.approx(2.0)
    assert values["CC"] == pytest.approx(1.0)
    assert values["MSE"] == 0.0
    assert math.isinf(values["PSNR"]) and math.isinf(values["PSNR_gt"])
    assert values["VIF"] == pytest.approx(2.0)
    assert values["SSIM_gt"] == pytest.approx(1.0)
    assert values["Qabf"] == pytest.approx(0.9994 * 0.9879 / ((1 + math.exp(-15 * 0.5)) * (1 + math.exp(-22 * 0.2))), rel=1e-3)
    assert math.isnan(values["SCD"])  # F - A is constant: the correlation is undefined


def test_mutual_information_of_an_image_with_itself_is_its_entropy_in_nats():
    a = _scene(4)
    entropy_nats = metrics.entropy(a) * math.log(2)
    assert metrics.mutual_information_pair(a, a) == pytest.approx(entropy_nats, rel=1e-12)


def test_symmetric_in_the_sources(triple):
    fused, a, b = triple
    assert compute_metrics(fused, a, b) == pytest.approx(compute_metrics(fused, b, a), rel=1e-12)


def test_blur_lowers_sharpness_and_edge_preservation(triple):
    fused, a, b = triple
    blurred = ndimage.gaussian_filter(fused, 2.0)
    sharp, soft = compute_metrics(fused, a, b), compute_metrics(blurred, a, b)
    for name in ("SF", "AG", "Qabf"):
        assert soft[name] < 0.8 * sharp[name], name


def test_noise_lowers_vif_and_ssim(triple):
    fused, a, b = triple
    noisy = np.clip(fused + np.random.default_rng(0).normal(0, 25, fused.shape), 0, 255)
    clean, degraded = compute_metrics(fused, a, b), compute_metrics(noisy, a, b)
    assert degraded["VIF"] < clean["VIF"] and degraded["SSIM"] < clean["SSIM"]


def test_entropy_of_a_two_level_image_is_one_bit():
    image = np.zeros((16, 16))
    image[:, 8:] = 200.4  # rounds to level 200
    assert metrics.entropy(image) == pytest.approx(1.0)


def test_spatial_frequency_and_average_gradient_closed_forms():
    ramp = np.tile(np.arange(10, dtype=float) * 3, (6, 1))  # +3 per column, constant down rows
    assert metrics.spatial_frequency(ramp) == pytest.approx(3.0)
    assert metrics.average_gradient(ramp) == pytest.approx(3.0 / math.sqrt(2))


def test_mutual_information_matches_scikit_learn(triple):
    from sklearn.metrics import mutual_info_score

    fused, a, b = triple
    expected = mutual_info_score(fused.ravel(), a.ravel()) + mutual_info_score(fused.ravel(), b.ravel())
    assert metrics.mutual_information(fused, a, b) == pytest.approx(expected, rel=1e-10)


def test_ssim_matches_scikit_image_in_both_conventions(triple):
    fused, a, b = triple
    expected = structural_similarity(fused, a, data_range=2) + structural_similarity(fused, b, data_range=2)
    assert metrics.ssim_fusion(fused, a, b) == pytest.approx(expected, abs=1e-10)
    standard = structural_similarity(
        fused, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert metrics.ssim_reference(fused, a) == pytest.approx(standard, abs=1e-10)
    assert metrics.psnr_reference(fused, a) == pytest.approx(
        peak_signal_noise_ratio(a, fused, data_range=255), rel=1e-12
    )


def test_psnr_uses_the_fused_maximum_as_peak(triple):
    fused, a, b = triple
    mse = ((a - fused) ** 2).mean() / 2 + ((b - fused) ** 2).mean() / 2
    assert metrics.peak_signal_to_noise_ratio(fused, a, b) == pytest.approx(
        10 * math.log10(fused.max() ** 2 / mse)
    )


def test_qabf_strength_ratio_quirk_where_gradients_are_equal():
    """Where gA == gF the reference code sets the strength ratio to gF, not 1. With F == A every
    pixel takes that branch and the orientations agree, so Qabf reduces to a closed form in the
    Sobel strength gA (computed here independently with scipy.signal.convolve2d)."""
    from scipy.signal import convolve2d

    faint = np.zeros((32, 32))
    faint[8:24, 8:24] = 0.05  # Sobel strengths between 0 and 0.2: far from a ratio of 1
    flat = np.zeros((32, 32))
    sobel_x = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    g = np.hypot(convolve2d(faint, sobel_x, mode="same"), convolve2d(faint, sobel_x.T[::-1], mode="same"))
    strength_q = 0.9994 / (1 + np.exp(-15 * (g - 0.5)))
    angle_q = 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))
    expected = np.sum(strength_q * angle_q * g) / np.sum(g)
    assert metrics.qabf(faint, faint, flat) == pytest.approx(expected, rel=1e-12)
    assert expected < 0.1  # a ratio of 1 would give about 0.98


def test_size_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="differ in size: 80x64, 80x64, 81x64"):
        compute_metrics(_scene(1), _scene(2), _scene(3, shape=(64, 81)))


def test_unknown_metric_is_rejected(triple):
    with pytest.raises(ValueError, match="unknown metrics"):
        compute_metrics(*triple, metrics=("EN", "nope"))
