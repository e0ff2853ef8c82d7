"""Evaluation: student/teacher/pseudo-label rows on the test split, the forgetting matrix and
average forgetting against hand-computed values, the summary and the figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.data.build import build_dataset
from fusionfm.evaluate import (
    EVAL_SCHEMA,
    average_forgetting,
    evaluate_model,
    forgetting_matrix,
    plot_forgetting,
    plot_summary,
    run_evaluation,
    summary_table,
)
from fusionfm.io import MANIFEST_SCHEMA, read_image, read_table, write_image
from fusionfm.metrics import compute_metrics
from fusionfm.models import FusionUNet, UNetConfig
from fusionfm.pseudolabel.scoring import score_dataset
from fusionfm.pseudolabel.selection import SelectionConfig, composite_scores
from fusionfm.train.checkpoint import model_payload, save_checkpoint

H, W = 24, 32
TINY_MODEL = {"base_channels": 8, "depth": 2, "time_dim": 8, "max_groups": 4}


def _sources(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W]
    scene = 100 + 60 * np.sin(xx / 4.0) * np.cos(yy / 5.0) + rng.normal(0, 5, (H, W))
    a = np.clip(scene * 0.6 + 20 * (xx > W // 2), 0, 255).astype(np.uint8)
    b = np.clip(scene * 1.2 - 30, 0, 255).astype(np.uint8)
    return a, b, np.clip(scene, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(3)
    src = root / "src"
    for k in range(4):
        a, b, gt = _sources(rng)
        for folder, image in (("under", a), ("over", b), ("gt", gt)):
            (src / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(src / folder / f"p{k}.png")
    spec = DatasetSpec.from_dict(
        "tiny",
        {
            "task": "mef",
            "modalities": ["under", "over"],
            "source": "dir",
            "path": str(src),
            "ground_truth": "gt",
        },
    )
    dataset_dir = root / "tiny"
    build_dataset(
        spec,
        dataset_dir / "images",
        dataset_dir / "manifest.parquet",
        SplitSpec(0.5, seed=0),
        progress=False,
    )
    manifest = read_table(dataset_dir / "manifest.parquet", MANIFEST_SCHEMA)
    teachers = {"average": root / "t_average", "maximum": root / "t_maximum"}
    labels = root / "labels"
    for row in manifest.itertuples():
        a = read_image(dataset_dir / row.path_a).astype(np.float64)
        b = read_image(dataset_dir / row.path_b).astype(np.float64)
        write_image(teachers["average"] / f"{row.pair}.png", (a + b) / 2)
        write_image(teachers["maximum"] / f"{row.pair}.png", np.maximum(a, b))
        write_image(labels / f"{row.pair}.png", 0.7 * (a + b) / 2 + 0.3 * np.maximum(a, b))
    scores = score_dataset(dataset_dir, "mef", teachers, root / "scores.parquet", progress=False)
    model = FusionUNet(UNetConfig.from_dict(TINY_MODEL))
    checkpoint = root / "model.pt"
    save_checkpoint(checkpoint, model_payload(model, "mef", ["mef"], 0, {}))
    return {
        "root": root,
        "datasets": [("tiny", dataset_dir, "mef")],
        "scores": {"tiny": scores},
        "labels": {"tiny": labels},
        "checkpoint": checkpoint,
        "test_pairs": set(manifest.loc[manifest["split"] == "test", "pair"]),
    }


def _evaluate_setup(setup: dict, **options: Any) -> pd.DataFrame:
    """evaluate_model on the fixture's checkpoint, datasets, scores and labels, at 2 steps."""
    return evaluate_model(
        setup["checkpoint"],
        "00_mef",
        setup["datasets"],
        setup["scores"],
        setup["labels"],
        steps=2,
        **options,
    )


def test_evaluate_model_rows(setup: dict) -> None:
    table = _evaluate_setup(setup, timing_steps=(1, 2))
    assert list(table.columns) == EVAL_SCHEMA.names
    assert set(table["stage"]) == {"00_mef"} and set(table["task"]) == {"mef"}
    assert set(table["candidate"]) == {"student", "average", "maximum", "pseudolabel"}
    per_pair = table[table["pair"] != "*"]
    assert set(per_pair["pair"]) == setup["test_pairs"]  # test split only
    composites = per_pair[per_pair["metric"] == "composite"]
    assert len(composites) == 4 * len(setup["test_pairs"])
    assert np.isfinite(composites["value"]).all()
    student = per_pair[per_pair["candidate"] == "student"]
    metrics = set(student["metric"])
    assert {"VIF", "Qabf", "PSNR_gt", "SSIM_gt", "SAL", "WE", "FOCUS"} <= metrics
    assert {"ms_per_image", "ms_per_image@1", "ms_per_image@2"} <= metrics
    assert (student.loc[student["metric"] == "ms_per_image", "value"] > 0).all()
    label = per_pair[per_pair["candidate"] == "pseudolabel"]
    assert "PSNR_gt" in set(label["metric"]) and "ms_per_image" not in set(label["metric"])
    params = table[table["metric"] == "parameters"]
    assert len(params) == 1 and params["pair"].item() == "*" and params["value"].item() > 100
    # teacher composites equal the selection's
    expected = composite_scores(setup["scores"]["tiny"], "mef", SelectionConfig())
    expected = expected[expected["pair"].isin(setup["test_pairs"])].set_index(
        ["pair", "candidate"]
    )["composite"]
    got = composites[composites["candidate"].isin(["average", "maximum"])].set_index(
        ["pair", "candidate"]
    )["value"]
    pd.testing.assert_series_equal(
        got.sort_index(), expected.sort_index(), check_names=False, check_dtype=False
    )
    # without references: student rows only
    bare = evaluate_model(
        setup["checkpoint"],
        "00_mef",
        setup["datasets"],
        setup["scores"],
        setup["labels"],
        steps=1,
        include_references=False,
    )
    assert set(bare["candidate"]) == {"student"}


def test_student_scores_are_the_metrics_of_its_written_images(setup: dict, tmp_path: Path) -> None:
    """Every student metric row equals the suite (and the task metrics) recomputed here on the
    image evaluate_model wrote, against that pair's sources and ground truth."""
    from fusionfm.pseudolabel.task_metrics import compute_task_metrics

    table = _evaluate_setup(setup, fused_dir=tmp_path)
    _, dataset_dir, _ = setup["datasets"][0]
    manifest = read_table(dataset_dir / "manifest.parquet", MANIFEST_SCHEMA).set_index("pair")
    student = table[(table["candidate"] == "student") & (table["pair"] != "*")]
    assert set(student["pair"]) == setup["test_pairs"]
    for pair, rows in student.groupby("pair"):
        fused = read_image(tmp_path / "tiny" / f"{pair}.png")
        entry = manifest.loc[pair]
        a, b = read_image(dataset_dir / entry.path_a), read_image(dataset_dir / entry.path_b)
        expected = compute_metrics(
            fused, a, b, ground_truth=read_image(dataset_dir / entry.path_gt)
        )
        expected |= compute_task_metrics(fused, a, b, "mef")
        got = rows.set_index("metric")["value"]
        for metric, value in expected.items():
            assert got[metric] == pytest.approx(value, rel=1e-9, nan_ok=True), (pair, metric)
        # and not the metrics of a source (a copy of A scores differently)
        assert got["SSIM"] != pytest.approx(compute_metrics(a, a, b)["SSIM"], rel=1e-6)


def _hand_table() -> pd.DataFrame:
    # composites: stage -> task -> per-pair values
    values = {
        "00_ivf": {"ivf": [0.8, 1.0], "mif": [0.2, 0.4]},
        "01_mif": {"ivf": [0.6, 0.8], "mif": [0.9, 0.9]},
        "02_mef": {"ivf": [0.5, 0.5], "mif": [0.6, 0.8], "mef": [1.1, 0.9]},
    }
    rows = []
    for stage, tasks in values.items():
        for task, vals in tasks.items():
            for k, v in enumerate(vals):
                base = {"stage": stage, "task": task, "dataset": f"d_{task}", "pair": str(k)}
                rows.append({**base, "candidate": "student", "metric": "composite", "value": v})
                rows.append({**base, "candidate": "student", "metric": "VIF", "value": 9.0})
    for task in ("ivf", "mif", "mef"):
        for k in range(2):
            base = {"stage": "02_mef", "task": task, "dataset": f"d_{task}", "pair": str(k)}
            for teacher, v in (("t1", 0.5), ("t2", 0.9 if k else 0.7)):
                rows.append({**base, "candidate": teacher, "metric": "composite", "value": v})
            rows.append({**base, "candidate": "pseudolabel", "metric": "composite", "value": 1.0})
    return pd.DataFrame(rows, columns=EVAL_SCHEMA.names)


def test_forgetting_matrix_and_average() -> None:
    table = _hand_table()
    matrix = forgetting_matrix(table, ["00_ivf", "01_mif", "02_mef"])
    assert list(matrix.index) == ["00_ivf", "01_mif", "02_mef"]
    assert list(matrix.columns) == ["ivf", "mif", "mef"]
    expected = np.array([[0.9, 0.3, np.nan], [0.7, 0.9, np.nan], [0.5, 0.7, 1.0]])
    np.testing.assert_allclose(matrix.to_numpy(), expected, equal_nan=True)
    # ivf: 0.9 -> 0.5 (0.4); mif: 0.9 -> 0.7 (0.2); mean 0.3
    assert average_forgetting(matrix, ["ivf", "mif", "mef"]) == pytest.approx(0.3)
    assert average_forgetting(matrix, ["ivf", "mif"], ["00_ivf", "01_mif"]) == pytest.approx(
        0.9 - 0.7
    )
    assert math.isnan(average_forgetting(matrix, ["ivf"], ["00_ivf"]))
    with pytest.raises(ValueError, match="stages"):
        average_forgetting(matrix, ["ivf", "mif"])


def test_summary_and_plots(tmp_path: Path) -> None:
    table = _hand_table()
    summary = summary_table(table, "02_mef").set_index("task")
    assert list(summary.index) == ["ivf", "mif", "mef"]
    assert summary.at["ivf", "student_composite"] == pytest.approx(0.5)
    assert summary.at["ivf", "teacher_mean_composite"] == pytest.approx((0.5 + 0.8) / 2)
    assert summary.at["ivf", "best_teacher"] == "t2"
    assert summary.at["ivf", "best_teacher_composite"] == pytest.approx(0.8)
    assert summary.at["mef", "pseudolabel_composite"] == pytest.approx(1.0)
    assert summary.at["mef", "student_minus_teacher_mean"] == pytest.approx(1.0 - 0.65)
    assert math.isnan(summary.at["ivf", "student_PSNR_gt"])
    assert summary.at["ivf", "n_pairs"] == 2
    matrix = forgetting_matrix(table, ["00_ivf", "01_mif", "02_mef"])
    for path in (
        plot_forgetting(matrix, tmp_path / "f.png"),
        plot_summary(summary.reset_index(), tmp_path / "s.png"),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_evaluation_writes_outputs(setup: dict, tmp_path: Path) -> None:
    stages = [("00_mef", setup["checkpoint"], "mef")]
    out = run_evaluation(
        stages, setup["datasets"], setup["scores"], setup["labels"], tmp_path, steps=1
    )
    for name in (
        "eval.parquet",
        "forgetting.parquet",
        "summary.parquet",
        "forgetting.png",
        "summary.png",
    ):
        assert (tmp_path / name).is_file()
    assert read_table(tmp_path / "eval.parquet", EVAL_SCHEMA).shape[0] == len(out["eval"])
    assert math.isnan(out["average_forgetting"])  # one task: nothing to forget
    row = out["summary"].iloc[0]
    assert row["task"] == "mef" and np.isfinite(row["student_PSNR_gt"])


@pytest.mark.parametrize("timed", [True, False])
def test_run_evaluation_times_step_counts_only_when_timed(
    setup: dict, tmp_path: Path, timed: bool
) -> None:
    stages = [("00_mef", setup["checkpoint"], "mef")]
    out = run_evaluation(
        stages,
        setup["datasets"],
        setup["scores"],
        setup["labels"],
        tmp_path,
        steps=1,
        timing_steps=(1, 2),
        timed=timed,
    )
    metrics = set(out["eval"]["metric"])
    assert "ms_per_image" in metrics  # every fusion's time is recorded either way
    step_counts = {"ms_per_image@1", "ms_per_image@2"}
    assert step_counts & metrics == (step_counts if timed else set())


def test_only_the_first_timing_pairs_are_timed(setup: dict) -> None:
    table = _evaluate_setup(setup, timing_steps=(1,), timing_pairs=1)
    student = table[(table["candidate"] == "student") & (table["pair"] != "*")]
    timed = student.loc[student["metric"].str.startswith("ms_per_image"), "pair"]
    assert timed.nunique() == 1 and len(setup["test_pairs"]) > 1
    first = sorted(setup["test_pairs"], key=list(student["pair"]).index)[0]
    assert set(timed) == {first}
    assert set(student.loc[student["metric"] == "composite", "pair"]) == setup["test_pairs"]
