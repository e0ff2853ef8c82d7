"""The run's report: one self-contained HTML page (images embedded) of what a person looks at first.

Sections: the final student against the teachers and its pseudo-labels per task, an image grid
per dataset (sources, every teacher, the selected label, the refined label, the student), the
per-metric table, the forgetting heatmap, the training curves of every variant and the ablation
table. Everything is read from the pipeline's outputs; nothing is recomputed.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fusionfm.evaluate import COMPOSITE, PSEUDOLABEL, STUDENT, plot_forgetting, plot_summary
from fusionfm.io import MANIFEST_SCHEMA, SELECTION_SCHEMA, atomic_path, read_image, read_table
from fusionfm.metric_table import ALL_DATASETS, RANKED_METRICS, SHOWN_METRICS, rank_verdicts

PathLike = str | os.PathLike[str]

THUMBNAIL_HEIGHT = 160
"""Height in pixels of the images in the grids (width follows the aspect ratio)."""

SUITE_COLUMNS: tuple[str, ...] = (
    "EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "CC", "PSNR", "PSNR_gt", "SSIM_gt",
)  # fmt: skip
"""Metrics of the per-metric table, in the order of the suite."""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.grid { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 1.5em; }
figure { margin: 0; text-align: center; font-size: 0.8em; }
figure img { display: block; border: 1px solid #ccc; }
.label { outline: 3px solid #2a7; } .student { outline: 3px solid #c52; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #c52; font-weight: bold; }
.note { color: #666; font-size: 0.9em; }
.best { font-weight: bold; } .second { text-decoration: underline; }
tr.student-row td { background: #fdf0e8; } tr.reference-row td { color: #777; }
"""


def _png_data_uri(image: np.ndarray) -> str:
    """``data:`` URI of an RGB or gray uint8 image, scaled to :data:`THUMBNAIL_HEIGHT`."""
    height, width = image.shape[:2]
    if height > THUMBNAIL_HEIGHT:
        size = (max(1, round(width * THUMBNAIL_HEIGHT / height)), THUMBNAIL_HEIGHT)
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode a report image as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _file_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure_data_uri(draw: Any, path_suffix: str = ".png") -> str:
    """Run ``draw(path)`` (a plotting function writing a PNG) and embed the result."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"figure{path_suffix}"
        draw(target)
        return _file_data_uri(target)


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float | np.floating):
        return "–" if not math.isfinite(value) else f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v, digits)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _figure(uri: str, caption: str, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return (
        f'<figure><img{klass} src="{uri}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def summary_section(summary: pd.DataFrame) -> str:
    """Student vs teachers per task, with the two acceptance checks spelled out."""
    columns = [
        "task", "n_pairs", "student_composite", "teacher_mean_composite", "best_teacher",
        "best_teacher_composite", "pseudolabel_composite", "student_PSNR_gt",
        "best_teacher_PSNR_gt", "ms_per_image",
    ]  # fmt: skip
    shown = summary[[c for c in columns if c in summary.columns]].copy()
    above_mean = summary["student_composite"] >= summary["teacher_mean_composite"]
    beats_best = summary["student_composite"] > summary["best_teacher_composite"]
    shown["≥ teachers' mean"] = ["yes" if ok else "no" for ok in above_mean]
    shown["> best teacher"] = ["yes" if ok else "no" for ok in beats_best]
    verdict = (
        f"<p>Student ≥ the teachers' mean composite on <b>{int(above_mean.sum())}</b> of "
        f"{len(summary)} tasks; above the best single teacher on <b>{int(beats_best.sum())}</b>. "
        f"Parameters: {int(summary['parameters'].iloc[0]):,}.</p>"
    )
    return verdict + _table(shown)


def field_table_section(table: pd.DataFrame) -> str:
    """The field's verdict: per task the student's place by the eight-metric mean rank, then the
    table of every ranked method (best per metric in bold, second underlined; the pseudo-labels
    in grey, not ranked), all test pairs first and each dataset under a fold."""
    verdicts = rank_verdicts(table)
    parts = ["<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in verdicts.values()) + "</ul>"]
    for task, of_task in table.groupby("task", sort=False):
        parts.append(f"<h3>{html.escape(str(task))}: all test pairs</h3>")
        parts.append(_ranked_table(of_task[of_task["dataset"] == ALL_DATASETS]))
        folds = [
            f"<details><summary>{html.escape(str(d))}</summary>{_ranked_table(rows)}</details>"
            for d, rows in of_task.groupby("dataset", sort=False)
            if d != ALL_DATASETS
        ]
        parts.extend(folds)
    return "".join(parts)


def _ranked_table(rows: pd.DataFrame) -> str:
    columns = ["candidate", "pairs", *SHOWN_METRICS, "mean_rank", "position", "composite"]
    ranked = rows[rows["role"] != PSEUDOLABEL]
    marks: dict[tuple[int, str], str] = {}
    for metric in RANKED_METRICS:
        order = ranked[metric].dropna().sort_values(ascending=False)
        for index, mark in zip(order.index[:2], ("best", "second"), strict=False):
            marks[(index, metric)] = mark
    for index, mark in zip(
        ranked["mean_rank"].sort_values().index[:2], ("best", "second"), strict=False
    ):
        marks[(index, "mean_rank")] = mark
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for index, row in rows.iterrows():
        klass = {STUDENT: "student-row", PSEUDOLABEL: "reference-row"}.get(row["role"], "")
        cells = []
        for column in columns:
            value = row[column]
            digits = 0 if column in ("pairs", "position") else 2 if column == "mean_rank" else 3
            text = _fmt(float(value), digits) if column != "candidate" else _fmt(value)
            mark = marks.get((index, column))
            cells.append(f"<td class='{mark}'>{text}</td>" if mark else f"<td>{text}</td>")
        body.append(f"<tr class='{klass}'>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def metric_section(eval_table: pd.DataFrame, final_stage: str) -> str:
    """Mean of every suite metric per task: student, pseudo-label and the teachers' mean."""
    final = eval_table[(eval_table["stage"] == final_stage) & (eval_table["pair"] != "*")]
    final = final[final["metric"].isin([*SUITE_COLUMNS, COMPOSITE])]
    role = np.where(
        final["candidate"] == STUDENT,
        "student",
        np.where(final["candidate"] == PSEUDOLABEL, "pseudo-label", "teachers (mean)"),
    )
    means = (
        final.assign(role=role)
        .groupby(["task", "role", "metric"])["value"]
        .mean()
        .unstack("metric")
        .reset_index()
    )
    ordered = [c for c in (COMPOSITE, *SUITE_COLUMNS) if c in means.columns]
    return _table(means[["task", "role", *ordered]])


def image_grid_section(
    datasets: Sequence[str],
    dataset_dirs: Mapping[str, PathLike],
    selections: Mapping[str, PathLike],
    teacher_dirs: Mapping[str, Mapping[str, PathLike]],
    label_dirs: Mapping[str, PathLike],
    fused_dir: PathLike,
) -> str:
    """One test pair per dataset: sources, teachers, selected and refined labels, student."""
    parts = []
    for dataset in datasets:
        manifest = read_table(Path(dataset_dirs[dataset]) / "manifest.parquet", MANIFEST_SCHEMA)
        test = manifest[manifest["split"] == "test"]
        if not len(test):
            continue
        row = test.iloc[0]
        pair = str(row["pair"])
        root = Path(dataset_dirs[dataset])
        selection = read_table(selections[dataset], SELECTION_SCHEMA).set_index("pair")
        chosen = selection.loc[pair, "teacher"] if pair in selection.index else None
        status = selection.loc[pair, "status"] if pair in selection.index else "missing"
        figures = [
            _figure(_png_data_uri(read_image(root / row["path_a"])), str(row["modality_a"])),
            _figure(_png_data_uri(read_image(root / row["path_b"])), str(row["modality_b"])),
        ]
        if isinstance(row["path_gt"], str) and row["path_gt"]:
            figures.append(
                _figure(_png_data_uri(read_image(root / row["path_gt"])), "ground truth")
            )
        for teacher, folder in sorted(teacher_dirs[dataset].items()):
            path = Path(folder) / f"{pair}.png"
            if path.is_file():
                css = "label" if teacher == chosen else ""
                caption = f"{teacher} (selected)" if teacher == chosen else teacher
                figures.append(_figure(_png_data_uri(read_image(path)), caption, css))
        refined = Path(label_dirs[dataset]) / f"{pair}.png"
        if refined.is_file():
            figures.append(_figure(_png_data_uri(read_image(refined)), "pseudo-label (refined)"))
        fused = Path(fused_dir) / dataset / f"{pair}.png"
        if fused.is_file():
            figures.append(_figure(_png_data_uri(read_image(fused)), "student", "student"))
        note = f"selection: {html.escape(str(status))}" + (f", {chosen}" if chosen else "")
        parts.append(
            f"<h3>{html.escape(dataset)} · test pair {html.escape(pair)} "
            f'<span class="note">({note})</span></h3><div class="grid">{"".join(figures)}</div>'
        )
    return "".join(parts)


def plot_training_curves(histories: pd.DataFrame, path: PathLike) -> Path:
    """Flow-matching loss against the cumulative step, one line per variant, stage borders
    marked for the main run."""
    from fusionfm.evaluate import _pyplot

    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for variant, frame in histories.groupby("variant", sort=False):
        offset, xs, ys, borders = 0.0, [], [], []
        for _, stage_frame in frame.groupby("stage", sort=True):
            xs.extend(stage_frame["step"] + offset)
            ys.extend(stage_frame["train/fm_loss"])
            offset += float(stage_frame["step"].max())
            borders.append((offset, str(stage_frame["stage"].iloc[0])))
        width = 2.2 if variant == "main" else 1.0
        ax.plot(xs, ys, label=str(variant), linewidth=width)
        if variant == "main":
            for x, stage in borders[:-1]:
                ax.axvline(x, color="#999", linestyle=":", linewidth=0.8)
                ax.text(x, 1, f" {stage} |", transform=ax.get_xaxis_transform(), fontsize=7,
                        ha="right", va="top", color="#666")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step (stages one after another)")
    ax.set_ylabel("flow-matching loss")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def ablation_section(ablations: pd.DataFrame) -> str:
    """The ablation table and the forgetting check against naive fine-tuning."""
    text = _table(ablations)
    by_name = ablations.set_index("variant")
    if {"main", "naive"} <= set(by_name.index):
        main, naive = (float(by_name.loc[v, "average_forgetting"]) for v in ("main", "naive"))
        ok = main <= 0.5 * naive if naive > 0 else main <= naive
        css = "pass" if ok else "fail"
        text += (
            f'<p>Average forgetting with EWC + replay <span class="{css}">{main:.3f}</span> against '
            f"{naive:.3f} for naive sequential fine-tuning (positive = forgotten).</p>"
        )
    return text


def build_report(
    out_html: PathLike,
    summary: pd.DataFrame,
    eval_table: pd.DataFrame,
    ranking: pd.DataFrame,
    forgetting: pd.DataFrame,
    histories: pd.DataFrame,
    ablations: pd.DataFrame,
    datasets: Sequence[str],
    dataset_dirs: Mapping[str, PathLike],
    selections: Mapping[str, PathLike],
    teacher_dirs: Mapping[str, Mapping[str, PathLike]],
    label_dirs: Mapping[str, PathLike],
    fused_dir: PathLike,
    title: str = "fusionfm report",
) -> Path:
    """Write the report page (atomically).

    Args:
        out_html: the page to write.
        summary: ``results/evaluate/main/summary.parquet``.
        eval_table: ``results/evaluate/main/eval.parquet``.
        ranking: the field's metric table, ``results/evaluate/main/metric_table.parquet``.
        forgetting: the forgetting matrix (stage rows, task columns; a ``stage`` column is
            taken as the index).
        histories: every ``history.parquet`` of every variant, concatenated.
        ablations: ``results/evaluate/ablations.parquet``.
        datasets, dataset_dirs, selections, teacher_dirs, label_dirs, fused_dir: what the image
            grids read (see :func:`image_grid_section`).
        title: the page title.

    Returns:
        The written path.
    """
    matrix = forgetting.set_index("stage") if "stage" in forgetting.columns else forgetting
    final_stage = str(matrix.index[-1])
    summary_uri = _figure_data_uri(lambda p: plot_summary(summary, p))
    forgetting_uri = _figure_data_uri(lambda p: plot_forgetting(matrix, p))
    curves_uri = _figure_data_uri(lambda p: plot_training_curves(histories, p))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>{html.escape(title)}</h1><p class='note'>written {stamp}; final stage "
        f"{html.escape(final_stage)}; composites are the selection's task composites, normalized "
        "per pair over that pair's teachers (1 = best teacher on every profile metric)</p>",
        "<h2>The student among its teachers: the field's metric table (test split)</h2>",
        "<p class='note'>means over the test pairs; each method ranked per metric on EN, SD, SF, "
        "MI, SCD, VIF, Qabf and SSIM (1 = best), ordered by its mean rank; AG and CC shown, not "
        "ranked; a teacher that did not fuse every test pair of a scope is left out of it; the "
        "pseudo-labels (grey) are what the student learned from, shown for reference</p>",
        field_table_section(ranking),
        "<h2>Student against teachers and pseudo-labels: the selection's composite</h2>",
        summary_section(summary),
        _figure(summary_uri, "task composites"),
        "<h2>Images</h2>",
        "<p class='note'>green: the teacher the selection chose; red: the student "
        "(final model)</p>",
        image_grid_section(datasets, dataset_dirs, selections, teacher_dirs, label_dirs, fused_dir),
        "<h2>Metrics (means over the test pairs)</h2>",
        metric_section(eval_table, final_stage),
        "<h2>Forgetting</h2>",
        "<p class='note'>mean student composite on each task's test split (columns) after each "
        "training stage (rows)</p>",
        _figure(forgetting_uri, "forgetting matrix"),
        "<h2>Training curves</h2>",
        _figure(curves_uri, "flow-matching loss per variant"),
        "<h2>Ablations</h2>",
        ablation_section(ablations),
    ]
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out


__all__ = ["THUMBNAIL_HEIGHT", "build_report", "field_table_section", "plot_training_curves"]
