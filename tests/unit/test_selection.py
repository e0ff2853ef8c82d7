"""Composite math, selection, reliability filter and report (fusionfm.pseudolabel.selection)."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from fusionfm.io import SELECTION_SCHEMA, InputError, read_table, write_table
from fusionfm.pseudolabel.selection import (
    DEFAULT_PROFILES,
    SelectionConfig,
    composite_of,
    composite_scores,
    normalized_values,
    select_pseudolabels,
    selection_report,
)


def _long(table: dict[str, dict[str, dict[str, float]]]) -> pd.DataFrame:
    """{pair: {candidate: {metric: value}}} -> long scores with role 'teacher'."""
    rows = [
        {"pair": pair, "role": "teacher", "candidate": cand, "metric": m, "value": v}
        for pair, cands in table.items()
        for cand, metrics in cands.items()
        for m, v in metrics.items()
    ]
    return pd.DataFrame(rows)


def _config(profile: dict[str, float], **kwargs: float) -> SelectionConfig:
    return SelectionConfig.from_dict({"profiles": {"ivf": profile}, **kwargs})


HAND = {
    "p1": {
        "x": {"VIF": 1.0, "MSE": 30.0, "PSNR_gt": 20.0},
        "y": {"VIF": 0.25, "MSE": 10.0, "PSNR_gt": 30.0},
        "z": {"VIF": 0.0, "MSE": 20.0, "PSNR_gt": 25.0},
    },
}


def test_normalization_direction_and_weights_by_hand() -> None:
    table = composite_scores(_long(HAND), "ivf", _config({"VIF": 2.0, "MSE": 1.0}))
    by = table.set_index("candidate")
    assert by.loc["x", "VIF_norm"] == 1.0 and by.loc["y", "VIF_norm"] == 0.25
    assert by.loc["z", "VIF_norm"] == 0.0
    # MSE is lower-is-better: 10 is best (1), 30 worst (0), 20 halfway.
    assert by.loc[["x", "y", "z"], "MSE_norm"].tolist() == [0.0, 1.0, 0.5]
    assert by.loc["x", "composite"] == pytest.approx(2 / 3)
    assert by.loc["y", "composite"] == pytest.approx((2 * 0.25 + 1) / 3)
    assert by.loc["z", "composite"] == pytest.approx(0.5 / 3)
    assert table["candidate"].tolist() == ["x", "y", "z"]  # sorted by composite
    assert list(table.columns) == [
        "pair",
        "candidate",
        "VIF",
        "MSE",
        "VIF_norm",
        "MSE_norm",
        "composite",
    ]


def test_constant_metric_gives_one_and_nan_counts_as_worst() -> None:
    scores = _long(
        {
            "p": {
                "x": {"VIF": math.nan, "SAL": 0.9, "SCD": math.nan},
                "y": {"VIF": 0.4, "SAL": 0.9, "SCD": math.nan},
                "z": {"VIF": 0.8, "SAL": 0.9, "SCD": math.nan},
            }
        }
    )
    table = composite_scores(scores, "ivf", _config({"VIF": 1.0, "SAL": 1.0, "SCD": 5.0}))
    by = table.set_index("candidate")
    assert by["SAL_norm"].tolist() == [1.0, 1.0, 1.0]
    assert by.loc["x", "VIF_norm"] == 0.0 and by.loc["y", "VIF_norm"] == 0.0
    # SCD is NaN for every candidate: left out of the pair's composite (weights renormalized).
    assert by["SCD_norm"].isna().all()
    assert by.loc["z", "composite"] == pytest.approx(1.0)
    assert by.loc["x", "composite"] == pytest.approx(0.5)


def test_differences_under_the_span_floor_are_ties() -> None:
    scores = _long({"p": {"x": {"VIF": 1.0}, "y": {"VIF": 1.0 + 1e-9}}})
    table = composite_scores(scores, "ivf", _config({"VIF": 1.0}))
    assert table["composite"].tolist() == pytest.approx([1.0, 1.0], abs=1e-5)


def test_missing_profile_metric_is_an_error() -> None:
    with pytest.raises(InputError, match="FOCUS"):
        composite_scores(_long(HAND), "ivf", _config({"FOCUS": 1.0}))


def test_composite_of_a_candidate_equals_its_composite() -> None:
    config = _config({"VIF": 2.0, "MSE": 1.0})
    scores = _long(HAND)
    table = composite_scores(scores, "ivf", config).set_index("candidate")
    for candidate, values in HAND["p1"].items():
        assert composite_of(values, scores, "ivf", config) == pytest.approx(
            table.loc[candidate, "composite"]
        )
        wide = pd.DataFrame(HAND["p1"]).T  # wide form: one row per candidate
        assert composite_of(values, wide, "ivf", config) == pytest.approx(
            table.loc[candidate, "composite"]
        )
    better = {"VIF": 1.5, "MSE": 5.0}
    assert normalized_values(better, scores, "ivf", config) == pytest.approx(
        {"VIF": 1.5, "MSE": 1.25}
    )
    assert composite_of(better, scores, "ivf", config) > 1.0
    assert normalized_values({"MSE": 10.0}, scores, "ivf", config)["VIF"] == 0.0  # missing = worst


def test_composite_of_refuses_several_pairs() -> None:
    scores = _long({"a": HAND["p1"], "b": HAND["p1"]})
    with pytest.raises(InputError, match="single pair"):
        composite_of({"VIF": 1.0}, scores, "ivf", _config({"VIF": 1.0}))


def _manifest(pairs: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"pair": pairs, "split": ["train"] * len(pairs), "task": "ivf"})


def test_selection_picks_the_argmax_and_explains() -> None:
    config = _config({"VIF": 2.0, "MSE": 1.0}, min_composite=0.5, min_margin=0.0)
    selection = select_pseudolabels(_long(HAND), _manifest(["p1"]), "ivf", config)
    row = selection.iloc[0]
    assert row["status"] == "selected" and row["teacher"] == "x"
    assert row["runner_up"] == "y" and row["margin"] == pytest.approx(2 / 3 - 0.5)
    assert row["composite"] == pytest.approx(2 / 3) and row["n_candidates"] == 3
    assert (
        "selected x" in row["reason"] and "VIF 1.00" in row["reason"] and "over y" in row["reason"]
    )
    details = json.loads(row["details"])
    assert details["MSE"] == {"value": 30.0, "norm": 0.0, "weight": 1.0}


def test_rejects_weak_best_candidate() -> None:
    config = _config({"VIF": 2.0, "MSE": 1.0}, min_composite=0.9)
    row = select_pseudolabels(_long(HAND), _manifest(["p1"]), "ivf", config).iloc[0]
    assert row["status"] == "rejected" and row["teacher"] == "x"
    assert row["reason"].startswith("rejected: weak") and "min_composite 0.900" in row["reason"]


def test_rejects_contested_split_vote_but_not_an_agreeing_near_twin() -> None:
    # x and y are close, and y leads on MI + SAL (half the weight): a split vote.
    split = {
        "p": {
            "x": {"VIF": 1.0, "Qabf": 1.0, "MI": 0.0, "SAL": 0.1},
            "y": {"VIF": 0.0, "Qabf": 0.0, "MI": 1.0, "SAL": 1.0},
            "z": {"VIF": 0.5, "Qabf": 0.5, "MI": 0.5, "SAL": 0.0},
        }
    }
    config = _config(
        {"VIF": 1.0, "Qabf": 1.0, "MI": 1.0, "SAL": 1.0}, min_composite=0.1, min_margin=0.05
    )
    row = select_pseudolabels(_long(split), _manifest(["p"]), "ivf", config).iloc[0]
    assert row["status"] == "rejected" and row["reason"].startswith("rejected: contested")
    assert row["contender_support"] == pytest.approx(0.5) and "y is within" in row["reason"]
    # A runner-up just as close that loses on every metric does not make the pair contested.
    twins = {
        "p": {
            "x": {"VIF": 1.0, "MI": 1.0},
            "y": {"VIF": 0.99, "MI": 0.99},
            "z": {"VIF": 0.0, "MI": 0.0},
        }
    }
    config = _config({"VIF": 1.0, "MI": 1.0}, min_composite=0.1, min_margin=0.05)
    row = select_pseudolabels(_long(twins), _manifest(["p"]), "ivf", config).iloc[0]
    assert row["status"] == "selected" and row["margin"] < 0.05 and row["contender_support"] == 0.0


def test_a_close_contender_behind_the_runner_up_also_contests() -> None:
    # y is the runner-up and agrees with x; w, third but also within the margin, splits the vote.
    table = {
        "p": {
            "x": {"VIF": 1.0, "MI": 0.90},
            "y": {"VIF": 0.99, "MI": 0.89},
            "w": {"VIF": 0.80, "MI": 1.00},
            "z": {"VIF": 0.0, "MI": 0.0},
        }
    }
    config = _config({"VIF": 1.0, "MI": 1.0}, min_composite=0.1, min_margin=0.1)
    row = select_pseudolabels(_long(table), _manifest(["p"]), "ivf", config).iloc[0]
    assert row["runner_up"] == "y" and row["status"] == "rejected"
    assert "w is within" in row["reason"] and row["contender_support"] == pytest.approx(0.5)
    relaxed = _config({"VIF": 1.0, "MI": 1.0}, min_composite=0.1, min_margin=0.03)
    assert (
        select_pseudolabels(_long(table), _manifest(["p"]), "ivf", relaxed).iloc[0]["status"]
        == "selected"
    )


def test_pair_without_candidates_is_rejected_and_table_matches_schema(tmp_path) -> None:
    config = _config({"VIF": 2.0, "MSE": 1.0})
    selection = select_pseudolabels(_long(HAND), _manifest(["p1", "lost"]), "ivf", config)
    assert selection["pair"].tolist() == ["p1", "lost"]
    lost = selection.iloc[1]
    assert (
        lost["status"] == "rejected"
        and pd.isna(lost["teacher"])
        and "no candidates" in lost["reason"]
    )
    write_table(tmp_path / "selection.parquet", selection, SELECTION_SCHEMA)
    back = read_table(tmp_path / "selection.parquet", SELECTION_SCHEMA)
    assert back["status"].tolist() == ["selected", "rejected"]


def test_ground_truth_never_drives_the_selection() -> None:
    config = _config({"VIF": 2.0, "MSE": 1.0}, min_margin=0.0)
    scores = _long(HAND)
    flipped = scores.copy()
    gt = flipped["metric"] == "PSNR_gt"
    flipped.loc[gt, "value"] = -flipped.loc[gt, "value"]
    first = select_pseudolabels(scores, _manifest(["p1"]), "ivf", config)
    second = select_pseudolabels(flipped, _manifest(["p1"]), "ivf", config)
    pd.testing.assert_frame_equal(first, second)
    with pytest.raises(InputError, match="ground truth"):
        _config({"PSNR_gt": 1.0})


def test_report_with_ground_truth() -> None:
    config = _config({"VIF": 2.0, "MSE": 1.0}, min_margin=0.0)
    pairs = {f"p{i}": HAND["p1"] for i in range(3)}
    scores = _long(pairs)
    selection = select_pseudolabels(scores, _manifest(list(pairs)), "ivf", config)
    report = selection_report(scores, selection, "ivf", config)
    assert report["selected"] == 3 and report["selection_share"] == {"x": 1.0}
    gt = report["ground_truth"]
    # composite order x > y > z against PSNR_gt order y > z > x in every pair.
    assert gt["spearman_composite_psnr_gt"] == pytest.approx(-0.5)
    assert gt["selected_mean_psnr_gt"] == 20.0 and gt["best_teacher"] == "y"
    assert gt["oracle_mean_psnr_gt"] == 30.0
    json.dumps(report)  # JSON-ready
    no_gt = scores[scores["metric"] != "PSNR_gt"]
    assert "ground_truth" not in selection_report(no_gt, selection, "ivf", config)


def test_config_defaults_validation_and_pickling() -> None:
    config = SelectionConfig.from_dict(None)
    assert dict(config.profile("mff")) == dict(DEFAULT_PROFILES["mff"])
    custom = SelectionConfig.from_dict({"profiles": {"mef": {"SD": 1, "WE": 0}}, "min_margin": 0.1})
    assert dict(custom.profile("mef")) == {"SD": 1.0}  # zero weights dropped
    assert dict(custom.profile("ivf")) == dict(DEFAULT_PROFILES["ivf"])
    assert pickle.loads(pickle.dumps(custom)) == custom
    assert hash(pickle.loads(pickle.dumps(custom))) == hash(custom)
    for bad in (
        {"colour": 1},
        {"profiles": {"ivf": {"nope": 1.0}}},
        {"profiles": {"ivf": {"VIF": -1}}},
        {"profiles": {"ivf": {"VIF": 0}}},
        {"profiles": {"xyz": {"VIF": 1}}},
        {"min_margin": "a"},
    ):
        with pytest.raises(InputError):
            SelectionConfig.from_dict(bad)


def test_default_profiles_only_use_known_ground_truth_free_metrics() -> None:
    config = SelectionConfig()
    for task in ("ivf", "mif", "mef", "mff"):
        assert config.profile(task)
        assert not {"PSNR_gt", "SSIM_gt"} & set(config.profile(task))
    assert np.isclose(sum(config.profile("ivf").values()), 4.0)
