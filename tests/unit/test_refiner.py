"""The Fusion Refiner: diagnoses, operations, accept rule and the dataset stage."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fusionfm.data.synthetic import generate_pairs
from fusionfm.io import REFINE_SCHEMA, InputError, read_image, read_table, write_image
from fusionfm.metrics import compute_metrics
from fusionfm.pseudolabel.selection import (
    SelectionConfig,
    composite_of,
    select_pseudolabels,
)
from fusionfm.pseudolabel.task_metrics import compute_task_metrics
from fusionfm.refine import RefinerConfig, refine_dataset, refine_pair
from fusionfm.teacher import run_teacher

HEIGHT, WIDTH = 64, 80


def _candidates(
    pair: str, task: str, a: np.ndarray, b: np.ndarray, names: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    images, rows = {}, []
    for name in names:
        fused = run_teacher(name, a, b, task)
        images[name] = fused
        values = compute_metrics(fused, a, b) | compute_task_metrics(fused, a, b, task)
        rows += [
            {"pair": pair, "role": "teacher", "candidate": name, "metric": m, "value": v}
            for m, v in values.items()
        ]
    return images, pd.DataFrame(rows)


MFF_TEACHERS = ("laplacian_pyramid", "average", "max_abs", "dwt")
IVF_TEACHERS = ("max_abs", "average", "laplacian_pyramid", "guided_filter")


@pytest.fixture(scope="module")
def mff_pairs() -> list:
    return list(generate_pairs("mff", ["near", "far"], 3, HEIGHT, WIDTH, seed=5))


@pytest.fixture(scope="module")
def ivf_pair():
    pair = next(iter(generate_pairs("ivf", ["ir", "vi"], 1, HEIGHT, WIDTH, seed=5)))
    visible_gray = cv2.cvtColor(pair.b, cv2.COLOR_RGB2GRAY)
    return pair.a, visible_gray


def test_blurred_label_is_diagnosed_with_detail_loss_and_improved(mff_pairs) -> None:
    config, refiner = SelectionConfig(), RefinerConfig()
    for pair in mff_pairs:
        images, scores = _candidates(pair.pair, "mff", pair.a, pair.b, MFF_TEACHERS)
        blurred = cv2.GaussianBlur(images["laplacian_pyramid"], (0, 0), 1.2)
        result = refine_pair(blurred, pair.a, pair.b, "mff", scores, config, refiner)
        assert "detail" in result.diagnoses
        assert result.accepted and any(op.startswith("inject:") for op in result.operations)
        assert result.composite_after > result.composite_before
        assert result.refined.dtype == np.uint8 and result.refined.shape == blurred.shape
        # The reported composite is the composite of the returned image.
        values = compute_metrics(result.refined, pair.a, pair.b) | compute_task_metrics(
            result.refined, pair.a, pair.b, "mff"
        )
        assert composite_of(values, scores, "mff", config) == pytest.approx(result.composite_after)


def test_good_label_is_kept_unchanged(mff_pairs) -> None:
    config, refiner = SelectionConfig(), RefinerConfig()
    for pair in mff_pairs:
        images, scores = _candidates(pair.pair, "mff", pair.a, pair.b, MFF_TEACHERS)
        best = images["laplacian_pyramid"]
        result = refine_pair(best, pair.a, pair.b, "mff", scores, config, refiner)
        assert not result.accepted and result.operations == []
        assert result.refined is best or np.array_equal(result.refined, best)
        assert result.composite_after == result.composite_before
        assert result.metrics_after == result.metrics_before
        assert result.reason.startswith("kept")


def test_low_contrast_label_gets_a_contrast_stretch(ivf_pair) -> None:
    ir, visible = ivf_pair
    config = SelectionConfig.from_dict({"profiles": {"ivf": {"VIF": 1.0, "Qabf": 1.0, "SAL": 1.0}}})
    refiner = RefinerConfig.from_dict({"operations": {"ivf": ["contrast"]}})
    images, scores = _candidates("p", "ivf", ir, visible, IVF_TEACHERS)
    good = images["max_abs"].astype(float)
    flat = np.clip(good.mean() + 0.6 * (good - good.mean()), 0, 255).astype(np.uint8)
    result = refine_pair(flat, ir, visible, "ivf", scores, config, refiner)
    assert result.diagnoses == ["contrast"]
    assert result.accepted and result.operations[0].startswith("contrast:")
    assert result.composite_after > result.composite_before
    assert result.refined.ndim == 2  # gray sources, gray label, gray result
    assert result.refined.std() > flat.std()


def test_dimmed_targets_are_restored(ivf_pair) -> None:
    ir, visible = ivf_pair
    config = SelectionConfig.from_dict({"profiles": {"ivf": {"SAL": 2.0, "Qabf": 1.0}}})
    refiner = RefinerConfig.from_dict({"operations": {"ivf": ["saliency"]}})
    images, scores = _candidates("p", "ivf", ir, visible, IVF_TEACHERS)
    dim = images["average"]
    result = refine_pair(dim, ir, visible, "ivf", scores, config, refiner)
    assert result.diagnoses == ["saliency"]
    assert result.accepted and result.operations[0].startswith("restore:")
    assert result.metrics_after["SAL"] > result.metrics_before["SAL"]


def test_amplified_noise_is_diagnosed_and_removed(mff_pairs) -> None:
    pair = mff_pairs[0]
    config = SelectionConfig.from_dict({"profiles": {"mff": {"FOCUS": 1.0}}})
    refiner = RefinerConfig()
    images, scores = _candidates(pair.pair, "mff", pair.a, pair.b, MFF_TEACHERS)
    rng = np.random.default_rng(0)
    noisy = np.clip(
        images["laplacian_pyramid"] + rng.normal(0, 12, images["laplacian_pyramid"].shape), 0, 255
    )
    result = refine_pair(noisy.astype(np.uint8), pair.a, pair.b, "mff", scores, config, refiner)
    assert "noise" in result.diagnoses
    assert result.accepted and result.operations[0].startswith("denoise:")
    assert result.composite_after > result.composite_before


def test_tolerance_blocks_trading_one_metric_for_another(mff_pairs) -> None:
    pair = mff_pairs[0]
    config = SelectionConfig()
    images, scores = _candidates(pair.pair, "mff", pair.a, pair.b, MFF_TEACHERS)
    blurred = cv2.GaussianBlur(images["laplacian_pyramid"], (0, 0), 1.2)
    strict = RefinerConfig.from_dict({"tolerance": 0.0, "min_gain": 10.0})
    result = refine_pair(blurred, pair.a, pair.b, "mff", scores, config, strict)
    assert not result.accepted and np.array_equal(result.refined, blurred)
    assert "no operation raised the composite" in result.reason


def test_config_validation_and_pickling() -> None:
    config = RefinerConfig.from_dict({"tolerance": 0.1, "operations": {"mff": ["detail"]}})
    assert config.operations["mff"] == ("detail",) and config.tolerance == 0.1
    assert config.operations["ivf"] == RefinerConfig().operations["ivf"]
    assert pickle.loads(pickle.dumps(config)) == config
    assert hash(pickle.loads(pickle.dumps(config))) == hash(config)
    for bad in (
        {"speed": 1},
        {"tolerance": -1},
        {"strengths": [0]},
        {"operations": {"mff": ["blur"]}},
        {"operations": {"xyz": ["detail"]}},
        {"base_radius": 0},
    ):
        with pytest.raises(InputError):
            RefinerConfig.from_dict(bad)


@pytest.mark.parametrize("workers", [1, 2])
def test_refine_dataset_writes_every_final_label(tmp_path: Path, mff_pairs, workers: int) -> None:
    root = tmp_path / "dataset"
    teacher_root = tmp_path / "teachers"
    rows, all_scores = [], []
    for index, pair in enumerate(mff_pairs):
        write_image(root / "near" / f"{pair.pair}.png", pair.a)
        write_image(root / "far" / f"{pair.pair}.png", pair.b)
        rows.append(
            {
                "pair": pair.pair,
                "split": "train" if index else "test",
                "task": "mff",
                "path_a": f"near/{pair.pair}.png",
                "path_b": f"far/{pair.pair}.png",
            }
        )
        images, scores = _candidates(pair.pair, "mff", pair.a, pair.b, MFF_TEACHERS)
        # A deliberately poor extra candidate, forced onto the first pair below.
        images["soft"] = cv2.GaussianBlur(images["laplacian_pyramid"], (0, 0), 1.0)
        values = compute_metrics(images["soft"], pair.a, pair.b) | compute_task_metrics(
            images["soft"], pair.a, pair.b, "mff"
        )
        scores = pd.concat(
            [
                scores,
                pd.DataFrame(
                    [
                        {
                            "pair": pair.pair,
                            "role": "teacher",
                            "candidate": "soft",
                            "metric": m,
                            "value": v,
                        }
                        for m, v in values.items()
                    ]
                ),
            ]
        )
        for name, image in images.items():
            write_image(teacher_root / name / f"{pair.pair}.png", image)
        all_scores.append(scores)
    manifest = pd.DataFrame(rows)
    scores = pd.concat(all_scores, ignore_index=True)
    config, refiner = SelectionConfig.from_dict({"min_margin": 0.0}), RefinerConfig()
    selection = select_pseudolabels(scores, manifest, "mff", config)
    selection.loc[0, "teacher"] = "soft"  # force a degraded pseudo-label onto the first pair
    out_images, out_table = tmp_path / "refine" / "labels", tmp_path / "refine" / "refine.parquet"

    table = refine_dataset(
        manifest,
        selection,
        lambda teacher, pair: teacher_root / teacher / f"{pair}.png",
        root,
        scores,
        "mff",
        config,
        refiner,
        out_images,
        out_table,
        workers=workers,
        progress=False,
    )
    back = read_table(out_table, REFINE_SCHEMA)
    assert back["pair"].tolist() == table["pair"].tolist() == [p.pair for p in mff_pairs]
    assert back["split"].tolist() == ["test", "train", "train"]
    assert sorted(p.name for p in out_images.iterdir()) == [f"{p.pair}.png" for p in mff_pairs]
    assert (back["composite_after"] >= back["composite_before"]).all()
    refined = back[back["status"] == "refined"]
    assert (refined["composite_after"] > refined["composite_before"]).all()
    assert back.loc[0, "status"] == "refined" and back.loc[0, "teacher"] == "soft"
    for _, row in back.iterrows():
        label = read_image(out_table.parent / row["label"])
        selected = read_image(teacher_root / row["teacher"] / f"{row['pair']}.png")
        if row["status"] == "kept":
            assert np.array_equal(label, selected) and len(row["operations"]) == 0
        else:
            assert not np.array_equal(label, selected) and len(row["operations"]) > 0


def test_refine_dataset_rejects_unknown_pairs(tmp_path: Path) -> None:
    selection = pd.DataFrame({"pair": ["ghost"], "status": ["selected"], "teacher": ["x"]})
    scores = pd.DataFrame(
        {
            "pair": ["ghost"],
            "role": ["teacher"],
            "candidate": ["x"],
            "metric": ["FOCUS"],
            "value": [1.0],
        }
    )
    manifest = pd.DataFrame(
        {"pair": ["other"], "split": ["train"], "path_a": ["a"], "path_b": ["b"]}
    )
    with pytest.raises(InputError, match="not in the manifest"):
        refine_dataset(
            manifest,
            selection,
            lambda t, p: Path("x.png"),
            tmp_path,
            scores,
            "mff",
            SelectionConfig(),
            RefinerConfig(),
            tmp_path / "labels",
            tmp_path / "refine.parquet",
            progress=False,
        )
    assert not (tmp_path / "labels").exists()


@pytest.mark.parametrize(
    ("tolerance", "chosen"),
    [(0.01, None), (0.05, "inject:0.25"), (0.08, "inject:0.50"), (0.2, "inject:1.00")],
)
def test_tolerance_decides_which_strength_is_kept(mff_pairs, tolerance: float, chosen) -> None:
    """A blurred label under a FOCUS + MI profile: stronger detail injection raises the composite
    and lowers MI more (normalized drops about 0.03, 0.07, 0.10 at strengths 0.25, 0.5, 1). The
    tolerance alone decides which strength is kept: the strongest whose drop it allows."""
    pair = mff_pairs[0]
    config = SelectionConfig.from_dict({"profiles": {"mff": {"FOCUS": 1.0, "MI": 1.0}}})
    images, scores = _candidates(pair.pair, "mff", pair.a, pair.b, MFF_TEACHERS)
    blurred = cv2.GaussianBlur(images["laplacian_pyramid"], (0, 0), 1.2)
    refiner = RefinerConfig.from_dict({"tolerance": tolerance, "operations": {"mff": ["detail"]}})
    result = refine_pair(blurred, pair.a, pair.b, "mff", scores, config, refiner)
    drops = {a.operation: a.worst_drop for a in result.attempts}
    assert sorted(drops, key=drops.get) == ["inject:0.25", "inject:0.50", "inject:1.00"]
    assert all(d > 0 for d in drops.values())  # every strength trades MI for focus
    if chosen is None:
        assert not result.accepted and "within tolerance 0.01" in result.reason
    else:
        assert result.accepted and result.operations == [chosen]
        assert drops[chosen] <= tolerance < max(drops.values()) or chosen == "inject:1.00"
