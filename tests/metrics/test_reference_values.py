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
SSIM_ABSOLUTE_TOLERANCE = 5e-4


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
            assert values[name] == pytest.approx(reference, abs=SSIM_ABSOLUTE_TOLERANCE), name
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
