"""Metric values pinned against the reference evaluator of the fusion literature.

Every number in ``tests/data/metric_refs.json`` was produced by the evaluator that most deep fusion
papers report with (MMIF-CDDFuse ``utils/Evaluator.py``), run outside this repository; the file's
``provenance`` entry records the commit, versions, date and how the inputs were prepared. The
fixture case uses images committed here (``tests/data/metric_triple``, made by
``tests/data/make_metric_triple.py``); the other cases use the real pairs and published fused
results of ../shared/data and skip without them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusionfm.color import luma
from fusionfm.io import read_image
from fusionfm.metrics import METRIC_NAMES, compute_metrics

REFS = json.loads((Path(__file__).parents[1] / "data" / "metric_refs.json").read_text())
RELATIVE_TOLERANCE = 1e-5
SSIM_RELATIVE_TOLERANCE = 1e-9  # the code agrees with the reference evaluator to ~1e-11


def _load_case(entry: dict, repo_root: Path, shared_root: Path | None):
    def load(path: str) -> np.ndarray:
        if path.startswith("shared/"):
            return luma(read_image(shared_root / path.removeprefix("shared/")))
        return luma(read_image(repo_root / path))

    a, b = load(entry["paths"]["a"]), load(entry["paths"]["b"])
    fused_spec = entry["paths"]["fused"]
    if fused_spec == "average":
        fused = np.round((a + b) / 2)
    elif fused_spec == "maximum":
        fused = np.maximum(a, b)
    else:
        fused = load(fused_spec)
    return fused, a, b


def _assert_matches(values: dict, expected: dict) -> None:
    for name, reference in expected.items():
        if name.startswith("SSIM"):
            assert values[name] == pytest.approx(reference, rel=SSIM_RELATIVE_TOLERANCE), name
        else:
            assert values[name] == pytest.approx(reference, rel=RELATIVE_TOLERANCE), name


def test_fixture_matches_reference_evaluator(repo_root):
    entry = REFS["cases"]["fixture"]
    fused, a, b = _load_case(entry, repo_root, None)
    values = compute_metrics(fused, a, b, ground_truth=a)
    assert list(values)[: len(METRIC_NAMES)] == list(METRIC_NAMES)
    _assert_matches(values, entry["values"])


def test_rgb_inputs_are_scored_on_rounded_luma(repo_root):
    """The committed B and fused images are RGB: scoring the files directly must give the same
    numbers as scoring their luma (the reference values were computed on the luma)."""
    entry = REFS["cases"]["fixture"]
    paths = {k: repo_root / v for k, v in entry["paths"].items()}
    rgb = {k: read_image(p) for k, p in paths.items()}
    assert rgb["b"].ndim == 3 and rgb["fused"].ndim == 3
    values = compute_metrics(rgb["fused"], rgb["a"], rgb["b"])
    _assert_matches(values, {k: v for k, v in entry["values"].items() if not k.endswith("_gt")})


@pytest.mark.parametrize("case", [name for name in REFS["cases"] if name != "fixture"])
def test_real_pairs_match_reference_evaluator(case, repo_root, shared_data):
    entry = REFS["cases"][case]
    fused, a, b = _load_case(entry, repo_root, shared_data)
    _assert_matches(compute_metrics(fused, a, b, ground_truth=a), entry["values"])


@pytest.mark.parametrize(
    ("rgb", "gray", "left_to_right"),
    [
        ((1, 57, 103), 45, 46),
        ((0, 114, 163), 85, 86),
        ((1, 63, 230), 63, 64),
        ((2, 6, 170), 24, 24),
    ],
)
def test_luma_sums_in_the_pinned_order(rgb, gray, left_to_right):
    """Half-way sums that the evaluation order decides: the references were made with
    fma(B, 0.114, fma(R, 0.299, 0.587 G)) (numpy's matmul on OpenBLAS's FMA kernel); plain
    left-to-right float64 arithmetic rounds these the other way."""
    r, g, b = rgb
    assert luma(np.array([[rgb]], dtype=np.uint8))[0, 0] == gray
    assert np.round(0.299 * r + 0.587 * g + 0.114 * b) == left_to_right


def test_luma_of_8_bit_colors_is_its_pinned_value():
    """2**20 random colors (and the four above) against an independent evaluation of the same
    fused multiply-adds in 80-bit (or wider) arithmetic, exact for 8-bit inputs."""
    if np.finfo(np.longdouble).nmant < 63:
        pytest.skip("no extended precision long double on this platform")
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 256, (1024, 1024, 3)).astype(np.float64)
    colors[0, :4] = [(1, 57, 103), (0, 114, 163), (1, 63, 230), (2, 6, 170)]
    red, green, blue = colors[..., 0], colors[..., 1], colors[..., 2]
    wide = np.longdouble
    inner = (wide(red) * wide(0.299) + wide(0.587 * green)).astype(np.float64)
    expected = np.round((wide(blue) * wide(0.114) + wide(inner)).astype(np.float64))
    assert np.array_equal(luma(colors), expected)
