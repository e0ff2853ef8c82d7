"""Built-in classical teachers, the color rule and the teacher registry."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from fusionfm.color import rgb_to_ycbcr
from fusionfm.data.synthetic import generate_pairs
from fusionfm.io import InputError
from fusionfm.metrics import psnr_reference
from fusionfm.teacher import builtin_teachers, fuse_color, get_teacher, register, run_teacher
from fusionfm.teacher import registry as registry_module
from fusionfm.teacher.classical import cross_bilateral_filter, detail_strength
from fusionfm.teacher.color import luminance, ycbcr_to_rgb_in_gamut
from fusionfm.teacher.filters import (
    guided_filter,
    laplacian_pyramid,
    reconstruct_laplacian_pyramid,
)
from fusionfm.teacher.registry import Teacher

TASKS = ("ivf", "mif", "mef", "mff")
BUILTIN_NAMES = [t.name for t in builtin_teachers()]
SERVED = [(t.name, task) for t in builtin_teachers() for task in TASKS if task in t.tasks]
SELF_PRESERVING = (
    "average",
    "max_abs",
    "laplacian_pyramid",
    "dwt",
    "guided_filter",
    "two_scale_saliency",
)
# Small; odd and not divisible by 2^levels; smaller than every filter window.
SIZES = [(64, 80), (37, 53), (5, 7)]


def _smooth_image(seed: int, height: int, width: int, channels: int | None) -> np.ndarray:
    """Textured uint8 test image: smooth blobs plus fine detail, gray or RGB."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels is None else (height, width, channels)
    coarse = cv2.GaussianBlur(rng.uniform(0, 255, shape).astype(np.float32), (0, 0), 4)
    coarse = (coarse - coarse.min()) / max(float(np.ptp(coarse)), 1e-6) * 200 + 20
    fine = rng.normal(0, 12, shape)
    return np.clip(np.round(coarse + fine), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def mff_pairs():
    return list(generate_pairs("mff", ("near", "far"), 3, 96, 128, seed=7))


@pytest.fixture(scope="module")
def mef_pair():
    return next(iter(generate_pairs("mef", ("under", "over"), 1, 96, 128, seed=7)))


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


def test_the_nine_builtin_teachers_are_registered_with_references_and_defaults():
    expected = {
        "average",
        "max_abs",
        "laplacian_pyramid",
        "dwt",
        "guided_filter",
        "two_scale_saliency",
        "exposure_fusion",
        "focus_measure",
        "cross_bilateral",
    }
    assert expected <= set(BUILTIN_NAMES)
    for teacher in builtin_teachers():
        assert teacher.builtin
        assert teacher.reference and teacher.fuse.__doc__
        assert teacher.tasks <= set(TASKS)
    assert builtin_teachers("mff")[0].name == "average"
    assert [t.name for t in builtin_teachers("ivf")] == [
        t.name for t in builtin_teachers() if "ivf" in t.tasks
    ]
    assert get_teacher("focus_measure").tasks == {"mff"}
    assert get_teacher("exposure_fusion").tasks == {"mef"}


def test_defaults_are_the_papers_settings():
    gff = get_teacher("guided_filter").defaults
    assert (gff["base_radius"], gff["base_eps"], gff["detail_radius"], gff["detail_eps"]) == (
        45,
        0.3,
        7,
        1e-6,
    )
    assert (gff["base_size"], gff["saliency_radius"], gff["saliency_sigma"]) == (31, 5, 5.0)
    assert get_teacher("two_scale_saliency").defaults["mean_size"] == 35
    cbf = get_teacher("cross_bilateral").defaults
    assert (cbf["sigma_spatial"], cbf["sigma_range"], cbf["kernel_size"]) == (1.8, 25.0, 11)
    assert get_teacher("average").defaults["weight_a"] == 0.5
    mertens = get_teacher("exposure_fusion").defaults
    assert mertens["exposedness_sigma"] == 0.2
    assert mertens["contrast_exponent"] == mertens["saturation_exponent"] == 1.0
    with pytest.raises(TypeError):
        gff["base_radius"] = 1  # read-only


# --------------------------------------------------------------------------------------------
# Every teacher, every task it serves
# --------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("name", "task"), SERVED)
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_output_contract_for_every_color_combination(name, task, height, width):
    for seed, (channels_a, channels_b) in enumerate(itertools.product((None, 3), repeat=2)):
        a = _smooth_image(seed, height, width, channels_a)
        b = _smooth_image(seed + 10, height, width, channels_b)
        fused = run_teacher(name, a, b, task)
        assert fused.dtype == np.uint8
        assert fused.shape[:2] == (height, width)
        both_gray = channels_a is None and channels_b is None
        assert fused.ndim == (2 if both_gray else 3)
        np.testing.assert_array_equal(fused, run_teacher(name, a, b, task))  # deterministic


@pytest.mark.parametrize("name", SELF_PRESERVING)
@pytest.mark.parametrize("channels", [None, 3])
def test_fusing_an_image_with_itself_returns_it(name, channels):
    image = _smooth_image(3, 37, 53, channels)
    for task in sorted(get_teacher(name).tasks):
        fused = run_teacher(name, image, image, task)
        difference = np.abs(fused.astype(int) - image.astype(int)).max()
        assert difference <= 2, (name, task, difference)


@pytest.mark.parametrize("task", TASKS)
def test_max_abs_is_at_least_both_luminances(task):
    a = _smooth_image(1, 37, 53, None)
    b = _smooth_image(2, 37, 53, 3)
    fused_y = luminance(run_teacher("max_abs", a, b, task))
    floor = np.maximum(luminance(a), luminance(b))
    assert (fused_y >= floor - 1.0).all()


def test_focus_measure_beats_average_on_synthetic_multi_focus(mff_pairs):
    for pair in mff_pairs:
        focus = psnr_reference(run_teacher("focus_measure", pair.a, pair.b, "mff"), pair.gt)
        average = psnr_reference(run_teacher("average", pair.a, pair.b, "mff"), pair.gt)
        assert focus > average + 3.0, (pair.pair, focus, average)


def test_exposure_fusion_is_closer_to_ground_truth_than_either_exposure(mef_pair):
    fused = run_teacher("exposure_fusion", mef_pair.a, mef_pair.b, "mef")
    psnr = psnr_reference(fused, mef_pair.gt)
    assert psnr > psnr_reference(mef_pair.a, mef_pair.gt) + 3.0
    assert psnr > psnr_reference(mef_pair.b, mef_pair.gt) + 3.0


def test_exposure_fusion_with_one_gray_source_uses_both():
    under = _smooth_image(4, 40, 48, 3) // 4
    over = np.clip(_smooth_image(5, 40, 48, None).astype(int) + 120, 0, 255).astype(np.uint8)
    fused = run_teacher("exposure_fusion", under, over, "mef")
    assert fused.shape == (40, 48, 3)
    y = luminance(fused)
    assert luminance(under).mean() + 5 < y.mean() < luminance(over).mean() - 5


# --------------------------------------------------------------------------------------------
# Color rule
# --------------------------------------------------------------------------------------------


def _moderate_color(seed: int, height: int = 32, width: int = 40) -> np.ndarray:
    """RGB with mid-range values, so a fused luminance of 60-190 stays inside the gamut."""
    return (_smooth_image(seed, height, width, 3) // 4 + 96).astype(np.uint8)


@pytest.mark.parametrize("task", ["ivf", "mif"])
def test_ivf_mif_output_chroma_is_the_color_source_chroma(task):
    visible = _moderate_color(0)
    infrared = (_smooth_image(1, 32, 40, None) // 4 + 96).astype(np.uint8)
    for a, b in ((infrared, visible), (visible, infrared)):
        fused = run_teacher("average", a, b, task)
        chroma = rgb_to_ycbcr(fused)[..., 1:]
        np.testing.assert_allclose(chroma, rgb_to_ycbcr(visible)[..., 1:], atol=1.0)
        np.testing.assert_allclose(luminance(fused), 0.5 * (luminance(a) + luminance(b)), atol=1.0)


def test_ivf_with_two_color_sources_takes_chroma_from_b():
    a, b = _moderate_color(0), _moderate_color(1)
    fused = fuse_color(a, b, "ivf", lambda y_a, y_b: y_a)
    np.testing.assert_allclose(rgb_to_ycbcr(fused)[..., 1:], rgb_to_ycbcr(b)[..., 1:], atol=1.0)
    np.testing.assert_allclose(luminance(fused), luminance(a), atol=1.0)


@pytest.mark.parametrize("task", TASKS)
def test_two_gray_sources_give_gray(task):
    a, b = _smooth_image(0, 20, 30, None), _smooth_image(1, 20, 30, None)
    fused = fuse_color(a, b, task, lambda y_a, y_b: y_a + 0.4)
    assert fused.shape == (20, 30)
    np.testing.assert_array_equal(fused, a)


@pytest.mark.parametrize("task", ["mef", "mff"])
def test_mef_mff_chroma_keeps_the_saturated_source(task):
    colorful = _moderate_color(2)
    neutral = np.repeat(_moderate_color(3)[..., :1], 3, axis=2)  # RGB with zero chroma
    for a, b in ((colorful, neutral), (neutral, colorful)):
        fused = fuse_color(a, b, task, lambda y_a, y_b: 0.5 * (y_a + y_b))
        assert fused.ndim == 3
        np.testing.assert_allclose(
            rgb_to_ycbcr(fused)[..., 1:], rgb_to_ycbcr(colorful)[..., 1:], atol=1.0
        )
    # One gray source still gives RGB, with the color source's chroma.
    fused = fuse_color(colorful, neutral[..., 0], task, lambda y_a, y_b: y_a)
    np.testing.assert_allclose(
        rgb_to_ycbcr(fused)[..., 1:], rgb_to_ycbcr(colorful)[..., 1:], atol=1.0
    )


def test_mef_mff_chroma_blend_is_weighted_by_chroma_magnitude():
    strong = np.full((4, 4, 3), (200, 60, 60), dtype=np.uint8)
    weak = np.full((4, 4, 3), (110, 100, 100), dtype=np.uint8)
    fused = fuse_color(strong, weak, "mef", lambda y_a, y_b: np.full_like(y_a, 120.0))
    chroma = rgb_to_ycbcr(fused)[0, 0, 1:]
    strong_c, weak_c = rgb_to_ycbcr(strong)[0, 0, 1:], rgb_to_ycbcr(weak)[0, 0, 1:]
    w_strong, w_weak = np.abs(strong_c - 128).sum(), np.abs(weak_c - 128).sum()
    expected = (w_strong * strong_c + w_weak * weak_c) / (w_strong + w_weak)
    np.testing.assert_allclose(chroma, expected, atol=1.0)


def test_out_of_gamut_recombination_keeps_luminance_and_hue():
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 255, (50, 60))
    chroma = rng.uniform(0, 255, (50, 60, 2))
    rgb = ycbcr_to_rgb_in_gamut(y, chroma)
    assert rgb.min() >= 0 and rgb.max() <= 255
    back = rgb_to_ycbcr(rgb)
    np.testing.assert_allclose(back[..., 0], y, atol=1e-3)
    # Chroma is only scaled toward neutral: same direction, no larger magnitude.
    offset, offset_back = chroma - 128, back[..., 1:] - 128
    cross = offset[..., 0] * offset_back[..., 1] - offset[..., 1] * offset_back[..., 0]
    norms = np.linalg.norm(offset, axis=-1) * np.linalg.norm(offset_back, axis=-1)
    assert (np.abs(cross) <= 1e-5 * norms + 1e-6).all()  # sine of the hue change ~ 0
    assert ((offset * offset_back).sum(axis=-1) >= -1e-6).all()
    assert (np.abs(offset_back) <= np.abs(offset) + 1e-3).all()


# --------------------------------------------------------------------------------------------
# Building blocks, recomputed by hand
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(37, 53), (64, 80), (5, 3)])
def test_laplacian_pyramid_reconstructs_exactly(height, width):
    image = np.random.default_rng(0).uniform(0, 255, (height, width))
    pyramid = laplacian_pyramid(image, 6)
    np.testing.assert_allclose(reconstruct_laplacian_pyramid(pyramid), image, atol=1e-9)


def test_guided_filter_keeps_constants_and_follows_the_guide_with_small_eps():
    guide = np.random.default_rng(0).uniform(0, 1, (30, 40))
    np.testing.assert_allclose(guided_filter(guide, np.full((30, 40), 0.7), 4, 0.1), 0.7)
    np.testing.assert_allclose(
        guided_filter(guide, 2 * guide + 1, 4, 1e-9), 2 * guide + 1, atol=1e-4
    )
    # A window larger than the image is fine.
    assert guided_filter(guide, guide, 45, 0.3).shape == (30, 40)


def test_cross_bilateral_filter_matches_the_definition():
    rng = np.random.default_rng(0)
    source, guide = rng.uniform(0, 255, (9, 11)), rng.uniform(0, 255, (9, 11))
    sigma_s, sigma_r, size = 1.8, 25.0, 5
    filtered = cross_bilateral_filter(source, guide, sigma_s, sigma_r, size)
    half = size // 2
    padded_source = np.pad(source, half, mode="reflect")
    padded_guide = np.pad(guide, half, mode="reflect")
    offsets = np.arange(-half, half + 1)
    spatial = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma_s**2))
    for row, col in [(0, 0), (4, 5), (8, 10), (2, 9)]:
        window_s = padded_source[row : row + size, col : col + size]
        window_g = padded_guide[row : row + size, col : col + size]
        weights = spatial * np.exp(-((window_g - guide[row, col]) ** 2) / (2 * sigma_r**2))
        expected = (weights * window_s).sum() / weights.sum()
        assert filtered[row, col] == pytest.approx(expected, rel=1e-4)


def test_detail_strength_is_the_summed_covariance_eigenvalues():
    detail = np.random.default_rng(0).normal(0, 10, (12, 14))
    window = 5
    strength = detail_strength(detail, window)
    padded = np.pad(detail, window // 2, mode="reflect")
    for row, col in [(0, 0), (6, 7), (11, 13), (3, 10)]:
        patch = padded[row : row + window, col : col + window]
        expected = np.linalg.eigvalsh(np.cov(patch, rowvar=False)).sum()
        expected += np.linalg.eigvalsh(np.cov(patch.T, rowvar=False)).sum()
        assert strength[row, col] == pytest.approx(expected, rel=1e-8)


# --------------------------------------------------------------------------------------------
# Registry errors
# --------------------------------------------------------------------------------------------


def test_unknown_teacher_lists_known_names():
    with pytest.raises(InputError, match=r"unknown teacher 'nope'.*laplacian_pyramid"):
        get_teacher("nope")
    with pytest.raises(InputError, match="'nope'"):
        run_teacher("nope", np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), "ivf")


def test_task_not_served_names_teacher_and_task():
    a = np.zeros((8, 8), np.uint8)
    with pytest.raises(InputError, match=r"'focus_measure' does not serve task 'ivf'.*mff"):
        run_teacher("focus_measure", a, a, "ivf")
    with pytest.raises(InputError, match="unknown task 'rgb'"):
        run_teacher("average", a, a, "rgb")


def test_size_mismatch_names_both_sizes():
    with pytest.raises(InputError, match=r"64x80.*64x81"):
        run_teacher("average", np.zeros((64, 80), np.uint8), np.zeros((64, 81, 3), np.uint8), "mff")


def test_unknown_parameter_is_named_and_known_ones_apply():
    a, b = _smooth_image(0, 16, 16, None), _smooth_image(1, 16, 16, None)
    with pytest.raises(InputError, match=r"'radius'.*base_radius"):
        run_teacher("guided_filter", a, b, "ivf", {"radius": 3})
    np.testing.assert_array_equal(run_teacher("average", a, b, "ivf", {"weight_a": 1.0}), a)


def test_bad_sources_are_rejected():
    good = np.zeros((8, 8), np.uint8)
    with pytest.raises(InputError, match="uint8"):
        run_teacher("average", good.astype(np.float32), good, "ivf")
    with pytest.raises(InputError, match=r"source b.*\(8, 8, 4\)"):
        run_teacher("average", good, np.zeros((8, 8, 4), np.uint8), "ivf")
    single_channel = run_teacher("average", good[..., None], good, "ivf")
    assert single_channel.shape == (8, 8)


def test_register_rejects_clashes_and_bad_teachers(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))

    def fuse(a, b, task):
        return a

    with pytest.raises(ValueError, match="already registered"):
        register(Teacher("average", frozenset({"ivf"}), fuse, "x"))
    replacement = register(Teacher("average", frozenset({"ivf"}), fuse, "x"), replace=True)
    assert get_teacher("average") is replacement
    external = register(Teacher("my-method", frozenset({"mef"}), fuse, "someone 2024"))
    assert not external.builtin
    assert "my-method" not in [t.name for t in builtin_teachers()]
    assert external in registry_module.all_teachers("mef")
    with pytest.raises(ValueError, match="subset"):
        Teacher("bad_tasks", frozenset({"rgb"}), fuse, "x")
    with pytest.raises(ValueError, match="name"):
        Teacher("bad/name", frozenset({"ivf"}), fuse, "x")


def test_a_teacher_returning_the_wrong_size_is_reported(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    register(Teacher("cropper", frozenset({"ivf"}), lambda a, b, task: a[:-1], "test"))
    with pytest.raises(InputError, match="'cropper'.*shape"):
        run_teacher("cropper", np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), "ivf")
