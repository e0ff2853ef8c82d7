"""The field's metric table: means per scope, who is ranked, ranks and mean ranks, against values
worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fusionfm.metric_table import COLUMNS, RANKED_METRICS, metric_table, rank_verdicts

PAIRS = {"d1": ["p1", "p2"], "d2": ["p3"]}


def _rows(stage: str, candidate: str, pairs: dict[str, list[str]], values: dict) -> list[dict]:
    return [
        {"stage": stage, "task": "ivf", "dataset": dataset, "pair": pair, "candidate": candidate,
         "metric": metric, "value": value}
        for dataset, names in pairs.items()
        for pair in names
        for metric, value in values.items()
    ]  # fmt: skip


def _eval_table() -> pd.DataFrame:
    every = dict.fromkeys((*RANKED_METRICS, "AG", "CC", "composite"), 0.0)
    student = {**every, **dict.fromkeys(RANKED_METRICS, 5.0), "SCD": 3.0, "composite": 0.9}
    t1 = {**every, **dict.fromkeys(RANKED_METRICS, 3.0), "composite": 0.5}
    t2 = {**every, **dict.fromkeys(RANKED_METRICS, 4.0), "composite": 0.7}
    label = {**every, **dict.fromkeys(RANKED_METRICS, 9.0), "composite": 1.0}
    rows = (
        _rows("01_ivf", "student", PAIRS, student)
        + _rows("00_mef", "student", PAIRS, dict.fromkeys(RANKED_METRICS, 99.0))  # not final
        + _rows("01_ivf", "T1", PAIRS, t1)
        + _rows("01_ivf", "T2", {"d1": PAIRS["d1"]}, t2)  # a published method without d2
        + _rows("01_ivf", "pseudolabel", PAIRS, label)
        + [{"stage": "01_ivf", "task": "ivf", "dataset": "d1", "pair": "*",
            "candidate": "student", "metric": "parameters", "value": 1e5}]
    )  # fmt: skip
    return pd.DataFrame(rows)


def test_scopes_ranks_and_mean_ranks() -> None:
    table = metric_table(_eval_table(), "01_ivf")
    assert list(table.columns) == list(COLUMNS)
    assert list(zip(table["dataset"], table["candidate"], strict=True)) == [
        ("*", "student"), ("*", "T1"), ("*", "pseudolabel"),
        ("d1", "student"), ("d1", "T2"), ("d1", "T1"), ("d1", "pseudolabel"),
        ("d2", "student"), ("d2", "T1"), ("d2", "pseudolabel"),
    ]  # fmt: skip
    rows = table.set_index(["dataset", "candidate"])
    # all test pairs: T2 did not fuse d2's pair, so it is not ranked there
    assert rows.loc[("*", "student"), "pairs"] == 3 and rows.loc[("*", "T1"), "ranked"] == 2
    # SCD: student and T1 tie at 3.0 (rank 1.5 each); the seven others: 1 and 2
    assert rows.loc[("*", "student"), "mean_rank"] == pytest.approx((7 * 1 + 1.5) / 8)
    assert rows.loc[("*", "T1"), "mean_rank"] == pytest.approx((7 * 2 + 1.5) / 8)
    # d1: student 5 > T2 4 > T1 3 on seven metrics; SCD: T2 4 > student 3 = T1 3
    assert rows.loc[("d1", "student"), "mean_rank"] == pytest.approx((7 * 1 + 2.5) / 8)
    assert rows.loc[("d1", "T2"), "mean_rank"] == pytest.approx((7 * 2 + 1) / 8)
    assert rows.loc[("d1", "T1"), "mean_rank"] == pytest.approx((7 * 3 + 2.5) / 8)
    assert list(rows.loc["d1", "position"].iloc[:3]) == [1.0, 2.0, 3.0]
    # the final stage's student only; the pseudo-labels shown, not ranked
    assert (
        rows.loc[("*", "student"), "EN"] == 5.0 and rows.loc[("*", "student"), "composite"] == 0.9
    )
    assert rows.loc[("*", "pseudolabel"), "EN"] == 9.0
    assert math.isnan(rows.loc[("*", "pseudolabel"), "mean_rank"])
    assert math.isnan(rows.loc[("*", "pseudolabel"), "position"])


def test_a_missing_metric_ranks_last_and_verdict_in_words() -> None:
    frame = _eval_table()
    frame = frame[~((frame["candidate"] == "student") & (frame["metric"] == "VIF"))]
    table = metric_table(frame, "01_ivf")
    student = table[(table["dataset"] == "*") & (table["candidate"] == "student")].iloc[0]
    assert math.isnan(student["VIF"])
    assert student["mean_rank"] == pytest.approx((6 * 1 + 1.5 + 2) / 8)
    assert rank_verdicts(table) == {
        "ivf": "ivf: the student ranks 1st of 2 by the eight-metric mean rank (1.19; next: T1, 1.81)"
    }
    worse = frame.copy()
    worse.loc[worse["candidate"] == "student", "value"] = 0.0
    verdict = rank_verdicts(metric_table(worse, "01_ivf"))["ivf"]
    assert verdict.startswith("ivf: the student ranks 2nd of 2") and "best: T1" in verdict
