"""Properties of the task metrics SAL, WE and FOCUS (fusionfm.pseudolabel.task_metrics)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fusionfm.io import InputError
from fusionfm.pseudolabel.task_metrics import (
    TASK_METRIC_HIGHER_IS_BETTER,
    TASK_METRICS,
    compute_task_metrics,
    metric_higher_is_better,
    salient_mask,
)


def _ivf_like(
    seed: int = 0, height: int = 64, width: int = 80
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An IR image with two hot rectangles, a dark noisy visible image and the target mask."""
    rng = np.random.default_rng(seed)
    ir = np.full((height, width), 90.0) + rng.normal(0, 3, (height, width))
    targets = np.zeros((height, width), dtype=bool)
    targets[20:40, 10:20] = True
    targets[30:50, 50:58] = True
    ir[targets] = 220.0
    visible = np.clip(40.0 + rng.normal(0, 8, (height, width)), 0, 255)
    return np.clip(ir, 0, 255).astype(np.uint8), visible.astype(np.uint8), targets


def _textured(seed: int = 0, height: int = 64, width: int = 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.uniform(0, 255, (height, width)), (0, 0), 1.0)
    return np.clip((image - image.mean()) * 3 + 128, 0, 255)


def test_names_and_directions() -> None:
    assert TASK_METRICS == ("SAL", "WE", "FOCUS")
    assert set(TASK_METRIC_HIGHER_IS_BETTER) == set(TASK_METRICS)
    assert metric_higher_is_better("SAL") and metric_higher_is_better("VIF")
    assert not metric_higher_is_better("MSE")
    with pytest.raises(KeyError):
        metric_higher_is_better("nope")


@pytest.mark.parametrize("task", ["ivf", "mif", "mef", "mff"])
def test_every_task_gives_all_metrics_in_unit_range(task: str) -> None:
    ir, visible, _ = _ivf_like()
    rgb = np.repeat(visible[:, :, None], 3, axis=2)
    values = compute_task_metrics(rgb, ir, rgb, task)
    assert list(values) == list(TASK_METRICS)
    assert all(0.0 <= v <= 1.0 for v in values.values())


def test_unknown_task_and_size_mismatch() -> None:
    ir, visible, _ = _ivf_like()
    with pytest.raises(InputError, match="unknown task"):
        compute_task_metrics(ir, ir, visible, "xyz")
    with pytest.raises(ValueError):
        compute_task_metrics(ir[:-1], ir, visible, "ivf")


def test_salient_mask_finds_the_hot_targets() -> None:
    ir, visible, targets = _ivf_like()
    mask = salient_mask(ir.astype(float), visible.astype(float))
    inside = mask[targets].mean()
    outside = mask[~targets].mean()
    assert inside > 0.8 and outside < 0.05


def test_sal_of_the_brighter_source_is_one_and_drops_when_targets_dim() -> None:
    ir, visible, targets = _ivf_like()
    assert compute_task_metrics(ir, ir, visible, "ivf")["SAL"] == pytest.approx(1.0)
    scores = []
    for factor in (1.0, 0.8, 0.5):
        dimmed = ir.astype(float)
        dimmed[targets] *= factor
        scores.append(compute_task_metrics(dimmed, ir, visible, "ivf")["SAL"])
    assert scores[0] > scores[1] > scores[2]
    assert scores[2] == pytest.approx(0.5, abs=0.1)
    # Brightening beyond the source earns nothing.
    brighter = np.clip(ir.astype(float) + 20, 0, 255)
    assert compute_task_metrics(brighter, ir, visible, "ivf")["SAL"] == pytest.approx(1.0)


def test_sal_is_one_without_salient_region() -> None:
    flat = np.full((40, 40), 100, dtype=np.uint8)
    assert compute_task_metrics(flat // 2, flat, flat, "ivf")["SAL"] == 1.0


def test_we_peaks_at_mid_gray_and_is_symmetric() -> None:
    src = np.full((32, 32), 128, dtype=np.uint8)

    def we(level: float) -> float:
        return compute_task_metrics(np.full((32, 32), level), src, src, "mef")["WE"]

    assert we(127.5) == pytest.approx(1.0)
    assert we(127.5) > we(96) > we(64) > we(0)
    assert we(64) == pytest.approx(we(191), abs=1e-12)
    assert we(0) == pytest.approx(np.exp(-0.25 / 0.08))


def test_focus_rewards_the_sharper_source_and_penalizes_blur_and_oversharpening() -> None:
    sharp = _textured()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.0)
    half = sharp.shape[1] // 2
    near = sharp.copy()
    near[:, half:] = blurred[:, half:]
    far = blurred.copy()
    far[:, half:] = sharp[:, half:]

    def focus(image: np.ndarray) -> float:
        return compute_task_metrics(image, near, far, "mff")["FOCUS"]

    assert focus(sharp) > 0.95
    assert focus(sharp) > focus(near) > focus(blurred)
    oversharp = np.clip(sharp + 1.5 * (sharp - cv2.GaussianBlur(sharp, (0, 0), 1.0)), 0, 255)
    assert focus(oversharp) < focus(sharp)


def test_focus_of_flat_images_is_one() -> None:
    flat = np.full((16, 16), 7.0)
    assert compute_task_metrics(flat, flat, flat, "mff")["FOCUS"] == 1.0
