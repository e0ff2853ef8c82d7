"""Synthetic pair generators: determinism, layout, and the property each task must pose."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fusionfm.color import luma
from fusionfm.data import synthetic
from fusionfm.data.synthetic import TASKS, SyntheticPair, generate_pairs
from fusionfm.io import InputError

HEIGHT, WIDTH = 128, 160

# (task, modalities, channels of A, channels of B, has ground truth); channels 1 means (H, W).
LAYOUTS = [
    ("ivf", ("ir", "vi"), 1, 3, False),
    ("mif", ("mri", "ct"), 1, 1, False),
    ("mif", ("mri", "pet"), 1, 3, False),
    ("mif", ("MRI", "SPECT"), 1, 3, False),
    ("mef", ("under", "over"), 3, 3, True),
    ("mff", ("near", "far"), 3, 3, True),
]


def _pairs(task: str, modalities: tuple[str, str], count: int = 2, seed: int = 3) -> list:
    return list(generate_pairs(task, modalities, count, HEIGHT, WIDTH, seed))


def _arrays(pair: SyntheticPair) -> list[np.ndarray]:
    return [pair.a, pair.b] + ([] if pair.gt is None else [pair.gt])


def _shape(channels: int) -> tuple[int, ...]:
    return (HEIGHT, WIDTH) if channels == 1 else (HEIGHT, WIDTH, channels)


@pytest.mark.parametrize(("task", "modalities", "channels_a", "channels_b", "has_gt"), LAYOUTS)
def test_layout_per_task(task, modalities, channels_a, channels_b, has_gt):
    pairs = _pairs(task, modalities)
    assert [p.pair for p in pairs] == ["0000", "0001"]
    for pair in pairs:
        assert pair.a.dtype == np.uint8 and pair.a.shape == _shape(channels_a)
        assert pair.b.dtype == np.uint8 and pair.b.shape == _shape(channels_b)
        if has_gt:
            assert pair.gt is not None
            assert pair.gt.dtype == np.uint8 and pair.gt.shape == _shape(3)
        else:
            assert pair.gt is None
        for array in _arrays(pair):
            assert array.std() > 5, "an image should not be flat"


def test_tasks_constant():
    assert TASKS == ("ivf", "mif", "mef", "mff")


@pytest.mark.parametrize(("task", "modalities"), [layout[:2] for layout in LAYOUTS])
def test_same_seed_is_byte_identical_and_other_seed_differs(task, modalities):
    first = _pairs(task, modalities, seed=11)
    second = _pairs(task, modalities, seed=11)
    other = _pairs(task, modalities, seed=12)
    for one, two, three in zip(first, second, other, strict=True):
        for x, y, z in zip(_arrays(one), _arrays(two), _arrays(three), strict=True):
            assert x.tobytes() == y.tobytes()
            assert not np.array_equal(x, z)


@pytest.mark.parametrize("task", TASKS)
def test_pair_does_not_depend_on_how_many_are_requested(task):
    modalities = ("mri", "ct") if task == "mif" else ("a", "b")
    three = list(generate_pairs(task, modalities, 3, 64, 80, 5))
    five = list(generate_pairs(task, modalities, 5, 64, 80, 5))
    assert [p.pair for p in five] == ["0000", "0001", "0002", "0003", "0004"]
    for short, long in zip(three, five[:3], strict=True):
        assert short.pair == long.pair
        for x, y in zip(_arrays(short), _arrays(long), strict=True):
            assert x.tobytes() == y.tobytes()
    # Consecutive pairs are different content, not copies.
    assert not np.array_equal(five[0].a, five[1].a)


def test_tasks_with_the_same_seed_do_not_share_content():
    ct = _pairs("mif", ("mri", "ct"), count=1)[0]
    pet = _pairs("mif", ("mri", "pet"), count=1)[0]
    assert not np.array_equal(ct.a, pet.a)


@pytest.mark.parametrize(("height", "width"), [(32, 32), (40, 150), (150, 40), (97, 131)])
def test_odd_sizes(height, width):
    for task, modalities, *_ in LAYOUTS:
        (pair,) = generate_pairs(task, modalities, 1, height, width, 0)
        for array in _arrays(pair):
            assert array.shape[:2] == (height, width)


def test_unknown_task_raises_naming_it():
    with pytest.raises(InputError, match="bogus") as error:
        generate_pairs("bogus", ("a", "b"), 1, HEIGHT, WIDTH, 0)
    assert all(task in str(error.value) for task in TASKS)


@pytest.mark.parametrize(
    "modalities", [("mri", "xray"), ("ct", "pet"), ("mri",), ("mri", "ct", "pet")]
)
def test_bad_mif_modalities_raise(modalities):
    with pytest.raises(InputError):
        generate_pairs("mif", modalities, 1, HEIGHT, WIDTH, 0)


@pytest.mark.parametrize(
    ("pairs", "height", "width", "seed"),
    [(-1, 64, 64, 0), (1, 16, 64, 0), (1, 64, 8, 0), (1, 64, 64, -3), (1.5, 64, 64, 0)],
)
def test_bad_sizes_raise(pairs, height, width, seed):
    with pytest.raises(InputError):
        generate_pairs("mff", ("near", "far"), pairs, height, width, seed)


# ---------------------------------------------------------------------------- task properties


def _laplacian_variance(image: np.ndarray, region: np.ndarray) -> float:
    return float(ndimage.laplace(luma(image))[region].var())


@pytest.mark.parametrize("index", range(6))
def test_mff_sources_are_complementary_defocus_of_the_ground_truth(index):
    rng = np.random.default_rng([21, index])
    near, far, sharp, near_mask = synthetic._mff_sample(rng, HEIGHT, WIDTH)
    assert not np.array_equal(near, sharp) and not np.array_equal(far, sharp)
    near_region, far_region = near_mask > 0.9, near_mask < 0.1
    assert near_region.mean() > 0.05 and far_region.mean() > 0.05
    # Where the near shot is in focus it matches the sharp scene and beats the far shot ...
    assert np.abs(near[near_region].astype(int) - sharp[near_region]).mean() < 1.5
    assert _laplacian_variance(near, near_region) > 2 * _laplacian_variance(far, near_region)
    # ... and vice versa.
    assert np.abs(far[far_region].astype(int) - sharp[far_region]).mean() < 1.5
    assert _laplacian_variance(far, far_region) > 2 * _laplacian_variance(near, far_region)


def test_mff_public_api_matches_the_sample_helper():
    (pair,) = generate_pairs("mff", ("near", "far"), 1, HEIGHT, WIDTH, 4)
    salt = synthetic.zlib.crc32(b"mff")
    near, far, sharp, _ = synthetic._mff_sample(np.random.default_rng([4, salt, 0]), HEIGHT, WIDTH)
    assert np.array_equal(pair.a, near) and np.array_equal(pair.b, far)
    assert np.array_equal(pair.gt, sharp)


def test_mef_exposures_bracket_the_ground_truth():
    for pair in _pairs("mef", ("under", "over"), count=6, seed=8):
        under, over, gt = luma(pair.a), luma(pair.b), luma(pair.gt)
        assert under.mean() + 15 < gt.mean() < over.mean() - 15
        assert (pair.b == 255).any(axis=2).mean() > 0.1, "over-exposure should clip"
        # Under-exposure crushes shadows that the well-exposed reference keeps.
        assert (under <= 15).mean() > (gt <= 15).mean() + 0.02
        # The reference is noise-free and tone-mapped, not one of the shots.
        assert not np.array_equal(pair.gt, pair.a) and not np.array_equal(pair.gt, pair.b)


def _target_contrast(image: np.ndarray, targets: np.ndarray) -> float:
    ring = ndimage.binary_dilation(targets, iterations=4) & ~ndimage.binary_dilation(
        targets, iterations=1
    )
    gray = luma(image)
    return abs(float(gray[targets].mean()) - float(gray[ring].mean()))


@pytest.mark.parametrize("index", range(6))
def test_ivf_targets_are_hot_in_infrared_and_hidden_in_visible(index):
    rng = np.random.default_rng([33, index])
    infrared, visible, coverage = synthetic._ivf_sample(rng, HEIGHT, WIDTH)
    targets = coverage > 0.5
    assert 0.005 < targets.mean() < 0.4
    infrared_contrast = _target_contrast(infrared, targets)
    visible_contrast = _target_contrast(visible, targets)
    assert infrared_contrast > 30
    assert infrared_contrast > 3 * visible_contrast
    # Targets are hotter than their surroundings, the background is mid-gray, visible is dark.
    assert infrared[targets].mean() > infrared[~targets].mean()
    assert 60 < infrared[~targets].mean() < 170
    assert 15 < luma(visible).mean() < 70


def _high_frequency_ratio(image: np.ndarray, head: np.ndarray) -> float:
    gray = luma(image)
    return float(np.abs(ndimage.laplace(gray))[head].mean() / (gray[head].mean() + 1e-6))


@pytest.mark.parametrize("functional", ["ct", "pet", "spect"])
def test_mif_contrasts(functional):
    for index in range(3):
        rng = np.random.default_rng([44, index])
        mri, other, labels = synthetic._mif_sample(rng, HEIGHT, WIDTH, functional, "t2")
        brain = np.isin(labels, [synthetic._GRAY, synthetic._WHITE])
        bone = labels == synthetic._BONE
        csf = labels == synthetic._CSF
        assert bone.any() and brain.any() and csf.any()
        far_outside = ~ndimage.binary_dilation(labels != synthetic._AIR, iterations=3)
        assert mri[bone].mean() < mri[brain].mean() < mri[csf].mean()  # T2: bone dark, CSF bright
        if functional == "ct":
            assert other.ndim == 2
            assert other[bone].mean() > other[brain].mean() + 100
            assert other[brain].std() < mri[brain].std()  # soft tissue: low contrast on CT
        else:
            assert other.ndim == 3 and other.shape[2] == 3
            assert luma(other)[far_outside].mean() < 2, "outside the head is black"
            assert luma(other)[brain].mean() > 40
            assert luma(other)[brain].mean() > luma(other)[csf & ~brain].mean()
            # Low resolution: far less high-frequency energy than the MRI.
            head = ~far_outside
            assert _high_frequency_ratio(other, head) < 0.3 * _high_frequency_ratio(mri, head)


def test_mif_mri_weighting_follows_modality_a_name():
    (t1,) = generate_pairs("mif", ("t1", "ct"), 1, HEIGHT, WIDTH, 2)
    (t2,) = generate_pairs("mif", ("t2", "ct"), 1, HEIGHT, WIDTH, 2)
    # Same phantom (same seed and modality B); ventricle CSF is dark on T1 and bright on T2.
    assert np.array_equal(t1.b, t2.b)
    assert np.median(t2.a[t2.a > 20]) != np.median(t1.a[t1.a > 20])
    salt = synthetic.zlib.crc32(b"mif/ct")
    _, _, labels = synthetic._mif_sample(
        np.random.default_rng([2, salt, 0]), HEIGHT, WIDTH, "ct", "t1"
    )
    csf, white = labels == synthetic._CSF, labels == synthetic._WHITE
    assert t1.a[csf].mean() < t1.a[white].mean()
    assert t2.a[csf].mean() > t2.a[white].mean()
