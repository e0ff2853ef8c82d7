"""Pseudo-label benchmark: teachers -> scores -> selection -> refinement, in memory.

Runs every built-in teacher on synthetic pairs of each task, scores the outputs with the metric
suite and the task metrics, selects one pseudo-label per pair with the task profiles and refines
the selected labels, then prints per task and seed:

* mean ground-truth PSNR (``PSNR_gt``, mff/mef only) of every teacher, of the selected labels and
  of the refined labels, over the selected pairs, and the per-pair oracle;
* the Spearman correlation between the GT-free composite and ``PSNR_gt`` over every
  (pair, candidate), and the mean per-pair correlation;
* the selection share of each teacher and the rejections;
* the refiner's acceptance rate, its operations and the mean composite before/after.

Ground truth is read only for these reports; selection and refinement never see it.

Usage::

    .venv/bin/python benchmarks/pseudolabels.py                      # seeds 1,2,3, 12 pairs
    .venv/bin/python benchmarks/pseudolabels.py --seeds 14 --tasks mff --pairs 8
    .venv/bin/python benchmarks/pseudolabels.py --json results.json --workers 2
    .venv/bin/python benchmarks/pseudolabels.py --teachers average,max_abs,dwt   # weaker pool
    .venv/bin/python benchmarks/pseudolabels.py --selection '{"profiles": {"mff": {"FOCUS": 1}}}'

PSNR_gt comparisons are over the *selected* pairs (rejected pairs have no pseudo-label); the JSON
output also holds every teacher's mean over all pairs.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fusionfm.data.synthetic import generate_pairs
from fusionfm.metrics import compute_metrics, psnr_reference
from fusionfm.pseudolabel.selection import (
    STATUS_SELECTED,
    SelectionConfig,
    select_pseudolabels,
    selection_report,
)
from fusionfm.pseudolabel.task_metrics import compute_task_metrics
from fusionfm.refine.refiner import RefinerConfig, refine_pair
from fusionfm.teacher import builtin_teachers, run_teacher

MODALITIES = {
    "ivf": [("ir", "vi")],
    "mif": [("mri", "ct"), ("mri", "pet"), ("mri", "spect")],
    "mef": [("under", "over")],
    "mff": [("near", "far")],
}
"""Modality pairs per task; ``mif`` splits its pairs over CT, PET and SPECT."""


@dataclass(frozen=True)
class PairJob:
    task: str
    pair: str
    a: np.ndarray
    b: np.ndarray
    gt: np.ndarray | None


def synthetic_jobs(task: str, pairs: int, height: int, width: int, seed: int) -> list[PairJob]:
    """The synthetic pairs of one task and seed (``mif`` split over its modality B kinds)."""
    kinds = MODALITIES[task]
    jobs = []
    for index, modalities in enumerate(kinds):
        count = pairs // len(kinds) + (1 if index < pairs % len(kinds) else 0)
        prefix = f"{modalities[1]}_" if len(kinds) > 1 else ""
        for p in generate_pairs(task, list(modalities), count, height, width, seed):
            jobs.append(PairJob(task, prefix + p.pair, p.a, p.b, p.gt))
    return jobs


def run_teachers(
    job: PairJob, only: tuple[str, ...] | None = None
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """The built-in teachers' outputs of one pair (all, or those in ``only``) and their long
    score rows."""
    images: dict[str, np.ndarray] = {}
    rows: list[dict[str, Any]] = []
    for teacher in builtin_teachers(job.task):
        if only is not None and teacher.name not in only:
            continue
        fused = run_teacher(teacher.name, job.a, job.b, job.task)
        images[teacher.name] = fused
        values = compute_metrics(fused, job.a, job.b, job.gt) | compute_task_metrics(
            fused, job.a, job.b, job.task
        )
        rows += [
            {
                "pair": job.pair,
                "role": "teacher",
                "candidate": teacher.name,
                "metric": m,
                "value": float(v),
            }
            for m, v in values.items()
        ]
    return images, rows


def _stage_pair(
    args: tuple[PairJob, tuple[str, ...] | None],
) -> tuple[str, dict[str, np.ndarray], list[dict[str, Any]]]:
    job, only = args
    images, rows = run_teachers(job, only)
    return job.pair, images, rows


def _refine_one(args: tuple[Any, ...]) -> dict[str, Any]:
    job, label, candidates, selection_config, refiner_config = args
    result = refine_pair(
        label, job.a, job.b, job.task, candidates, selection_config, refiner_config
    )
    out = {
        "pair": job.pair,
        "accepted": result.accepted,
        "diagnoses": result.diagnoses,
        "operations": result.operations,
        "composite_before": result.composite_before,
        "composite_after": result.composite_after,
    }
    if job.gt is not None:
        out["psnr_selected"] = psnr_reference(label, job.gt)
        out["psnr_refined"] = psnr_reference(result.refined, job.gt)
    return out


def evaluate(
    task: str,
    seed: int,
    pairs: int,
    height: int,
    width: int,
    selection_config: SelectionConfig,
    refiner_config: RefinerConfig,
    pool: ProcessPoolExecutor | None,
    teachers: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Teachers -> scores -> selection -> refinement on one synthetic set; a JSON-ready summary."""
    jobs = synthetic_jobs(task, pairs, height, width, seed)
    mapper = pool.map if pool is not None else map
    staged = list(mapper(_stage_pair, [(job, teachers) for job in jobs]))
    images = {pair: imgs for pair, imgs, _ in staged}
    scores = pd.DataFrame([row for _, _, rows in staged for row in rows])
    manifest = pd.DataFrame({"pair": [j.pair for j in jobs], "split": "train", "task": task})

    selection = select_pseudolabels(scores, manifest, task, selection_config)
    report = selection_report(scores, selection, task, selection_config)

    by_pair = {j.pair: j for j in jobs}
    teacher_rows = scores[scores["role"] == "teacher"]
    candidates = {p: g.reset_index(drop=True) for p, g in teacher_rows.groupby("pair")}
    chosen = selection[selection["status"] == STATUS_SELECTED]
    refine_args = [
        (by_pair[p], images[p][t], candidates[p], selection_config, refiner_config)
        for p, t in zip(chosen["pair"], chosen["teacher"], strict=True)
    ]
    refined = pd.DataFrame(list(mapper(_refine_one, refine_args)))

    summary: dict[str, Any] = {"task": task, "seed": seed, "selection": report}
    if len(refined):
        changed = refined[refined["accepted"]]
        summary["refiner"] = {
            "selected": int(len(refined)),
            "refined": int(len(changed)),
            "acceptance_rate": float(len(changed) / len(refined)),
            "composite_before": float(refined["composite_before"].mean()),
            "composite_after": float(refined["composite_after"].mean()),
            "min_composite_gain": float(
                (refined["composite_after"] - refined["composite_before"]).min()
            ),
            "changed_all_strictly_higher": bool(
                (changed["composite_after"] > changed["composite_before"]).all()
            ),
            "diagnoses": dict(collections.Counter(d for ds in refined["diagnoses"] for d in ds)),
            "operations": dict(
                collections.Counter(o.split(":")[0] for os_ in changed["operations"] for o in os_)
            ),
        }
        if "psnr_refined" in refined:
            summary["refiner"]["mean_psnr_gt_selected"] = float(refined["psnr_selected"].mean())
            summary["refiner"]["mean_psnr_gt_refined"] = float(refined["psnr_refined"].mean())
            summary["refiner"]["psnr_gt_changed_pairs"] = [
                [p, round(float(s), 3), round(float(r), 3)]
                for p, s, r in zip(
                    changed["pair"], changed["psnr_selected"], changed["psnr_refined"], strict=True
                )
            ]
    return summary


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def print_summary(summary: dict[str, Any]) -> None:
    """Print one task/seed summary in a few human-readable lines."""
    report = summary["selection"]
    print(
        f"\n== {summary['task']} seed {summary['seed']}: {report['pairs']} pairs, "
        f"{report['selected']} selected, rejected {report['rejected_by'] or 0}"
    )
    print(f"   profile {report['profile']}")
    shares = ", ".join(f"{k} {v:.2f}" for k, v in report["selection_share"].items())
    print(f"   selection share: {shares}; mean composite {_fmt(report['mean_composite_selected'])}")
    gt = report.get("ground_truth")
    refiner = summary.get("refiner", {})
    if gt:
        print(
            f"   Spearman(composite, PSNR_gt) all candidates {_fmt(gt['spearman_composite_psnr_gt'])}, "
            f"mean per pair {_fmt(gt['mean_pair_spearman'])}"
        )
        teachers = sorted(gt["teacher_mean_psnr_gt"].items(), key=lambda kv: -kv[1])
        print("   PSNR_gt on selected pairs: " + ", ".join(f"{k} {v:.2f}" for k, v in teachers))
        print(
            f"   selected {_fmt(gt['selected_mean_psnr_gt'], 2)} | best teacher "
            f"{gt['best_teacher']} {_fmt(gt['best_teacher_mean_psnr_gt'], 2)} | refined "
            f"{_fmt(refiner.get('mean_psnr_gt_refined'), 2)} | oracle {_fmt(gt['oracle_mean_psnr_gt'], 2)}"
        )
    if refiner:
        print(
            f"   refiner: {refiner['refined']}/{refiner['selected']} refined "
            f"({refiner['acceptance_rate']:.2f}); composite {refiner['composite_before']:.4f} -> "
            f"{refiner['composite_after']:.4f}; min gain {refiner['min_composite_gain']:.4f}; "
            f"diagnoses {refiner['diagnoses']}; operations {refiner['operations']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="ivf,mif,mef,mff")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--selection", default=None, help="JSON of the selection config section")
    parser.add_argument("--refiner", default=None, help="JSON of the refiner config section")
    parser.add_argument(
        "--teachers",
        default=None,
        help="comma-separated subset of the built-in teachers (default: all)",
    )
    parser.add_argument("--json", default=None, help="write every summary to this file")
    args = parser.parse_args(argv)
    selection_config = SelectionConfig.from_dict(
        json.loads(args.selection) if args.selection else None
    )
    refiner_config = RefinerConfig.from_dict(json.loads(args.refiner) if args.refiner else None)
    teachers = tuple(args.teachers.split(",")) if args.teachers else None
    summaries = []
    start = time.perf_counter()
    pool = ProcessPoolExecutor(max_workers=args.workers) if args.workers > 1 else None
    try:
        for task in args.tasks.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                summary = evaluate(
                    task,
                    seed,
                    args.pairs,
                    args.height,
                    args.width,
                    selection_config,
                    refiner_config,
                    pool,
                    teachers,
                )
                print_summary(summary)
                summaries.append(summary)
    finally:
        if pool is not None:
            pool.shutdown()
    _print_totals(summaries)
    print(f"\n({time.perf_counter() - start:.1f} s)")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(summaries, stream, indent=1)
    return 0


def _print_totals(summaries: list[dict[str, Any]]) -> None:
    """Per task, the seeds' means of the headline numbers."""
    print("\n== totals (mean over seeds)")
    for task in dict.fromkeys(s["task"] for s in summaries):
        runs = [s for s in summaries if s["task"] == task]
        line = f"   {task}: acceptance {np.mean([s.get('refiner', {}).get('acceptance_rate', 0) for s in runs]):.2f}"
        gts = [s["selection"].get("ground_truth") for s in runs]
        if all(gts):
            sel = np.mean([g["selected_mean_psnr_gt"] for g in gts])
            best = np.mean([g["best_teacher_mean_psnr_gt"] for g in gts])
            ref = np.mean([s["refiner"]["mean_psnr_gt_refined"] for s in runs])
            rho = np.mean([g["spearman_composite_psnr_gt"] for g in gts])
            line += (
                f"; PSNR_gt selected {sel:.2f} vs best teacher {best:.2f} "
                f"(min gap {min(g['selected_mean_psnr_gt'] - g['best_teacher_mean_psnr_gt'] for g in gts):+.3f}); "
                f"refined {ref:.2f}; Spearman {rho:.2f}"
            )
        print(line)


if __name__ == "__main__":
    sys.exit(main())
