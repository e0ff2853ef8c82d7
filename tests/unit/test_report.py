"""The report page's sections: acceptance checks spelled out, curves drawn, images embedded."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from fusionfm.report import (
    THUMBNAIL_HEIGHT,
    _png_data_uri,
    ablation_section,
    plot_training_curves,
    summary_section,
)


def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task": ["ivf", "mff"],
            "n_pairs": [2, 2],
            "student_composite": [0.8, 0.5],
            "teacher_mean_composite": [0.6, 0.6],
            "best_teacher": ["max_abs", "focus_measure"],
            "best_teacher_composite": [0.7, 0.9],
            "pseudolabel_composite": [0.7, 0.9],
            "ms_per_image": [10.0, 11.0],
            "parameters": [1000.0, 1000.0],
        }
    )


def test_summary_counts_tasks_above_the_teachers() -> None:
    text = summary_section(_summary())
    assert "on <b>1</b> of 2 tasks; above the best single teacher on <b>1</b>" in text
    assert "1,000" in text and "focus_measure" in text


def test_ablation_check_compares_with_naive() -> None:
    table = pd.DataFrame(
        {"variant": ["main", "naive", "joint"], "average_forgetting": [0.01, 0.04, math.nan]}
    )
    text = ablation_section(table)
    assert 'class="pass">0.010' in text and "0.040" in text and "–" in text
    worse = ablation_section(table.assign(average_forgetting=[0.03, 0.04, math.nan]))
    assert 'class="fail">0.030' in worse


def test_training_curves_and_thumbnails(tmp_path: Path) -> None:
    history = pd.DataFrame(
        {
            "variant": ["main"] * 4 + ["joint"] * 2,
            "stage": ["00_ivf", "00_ivf", "01_mif", "01_mif", "00_joint", "00_joint"],
            "step": [1.0, 2.0, 1.0, 2.0, 1.0, 2.0],
            "train/fm_loss": [0.5, 0.3, 0.4, 0.2, 0.6, 0.3],
        }
    )
    path = plot_training_curves(history, tmp_path / "curves.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    uri = _png_data_uri(np.zeros((2 * THUMBNAIL_HEIGHT, 100, 3), np.uint8))
    assert uri.startswith("data:image/png;base64,")
