"""Selection profiles against trivial fusions: how often would a copy of a source, the per-pixel
maximum or the mean of the sources be chosen as the pseudo-label?

Reads a results tree (``results/datasets/*/manifest.parquet`` and ``results/scores/*.parquet``,
e.g. of ``configs/real-data.yaml``), scores four trivial candidates of every pair (``copy_a``,
``copy_b``, ``pixel_max``, ``pixel_mean``) on the suite and the task metrics, adds them to the
pair's teacher candidates and, for each profile, counts per task the pairs whose best composite
is a trivial candidate, and whose best is a published method (a ``priors_root`` teacher, whose
reference starts with its folder name). A yardstick a trivial fusion can top is broken: the
selection would pick it, and the student would learn it.

Usage::

    .venv/bin/python benchmarks/profiles.py results                       # the built-in profiles
    .venv/bin/python benchmarks/profiles.py results --profiles more.yaml  # {name: {task: {metric: w}}}
    .venv/bin/python benchmarks/profiles.py results --json profiles.json -j 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from _common import machine_line, write_json  # noqa: E402

from fusionfm.color import luma  # noqa: E402
from fusionfm.config import TASKS  # noqa: E402
from fusionfm.io import MANIFEST_SCHEMA, SCORES_SCHEMA, read_image, read_table  # noqa: E402
from fusionfm.metrics import compute_metrics  # noqa: E402
from fusionfm.pseudolabel.selection import SelectionConfig, composite_scores  # noqa: E402
from fusionfm.pseudolabel.task_metrics import compute_task_metrics  # noqa: E402
from fusionfm.teacher import builtin_teachers  # noqa: E402
from fusionfm.utils import parallel_map  # noqa: E402

TRIVIAL = ("copy_a", "copy_b", "pixel_max", "pixel_mean")
BUILTIN = {teacher.name for teacher in builtin_teachers()}
EIGHT = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")
BUILTIN_PROFILES: dict[str, dict[str, dict[str, float]]] = {
    "default": {task: dict(weights) for task, weights in SelectionConfig().profiles.items()},
    "eight_metrics": dict.fromkeys(TASKS, dict.fromkeys(EIGHT, 1.0)),
    "ssim_vif_qabf": dict.fromkeys(TASKS, {"SSIM": 1.0, "VIF": 1.0, "Qabf": 1.0}),
}


def _trivial_rows(job: tuple[str, str, Path, Path, str]) -> list[dict[str, Any]]:
    pair, task, path_a, path_b, _ = job
    a, b = read_image(path_a), read_image(path_b)
    ya, yb = luma(a), luma(b)
    images = {
        "copy_a": ya,
        "copy_b": yb,
        "pixel_max": np.maximum(ya, yb),
        "pixel_mean": np.round((ya + yb) / 2),
    }
    rows = []
    for name, image in images.items():
        values = compute_metrics(image, ya, yb) | compute_task_metrics(image, ya, yb, task)
        rows += [
            {"pair": pair, "role": "teacher", "candidate": name, "metric": m, "value": v}
            for m, v in values.items()
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a results tree with datasets/ and scores/")
    parser.add_argument("--profiles", help="YAML: name -> task -> {metric: weight}")
    parser.add_argument("-j", "--workers", type=int, default=1)
    parser.add_argument("--json", help="also write the counts here")
    args = parser.parse_args()
    profiles = dict(BUILTIN_PROFILES)
    if args.profiles:
        profiles |= yaml.safe_load(Path(args.profiles).read_text())
    results = Path(args.results)
    print(machine_line())
    counts: dict[str, dict[str, dict[str, float]]] = {}
    for scores_path in sorted((results / "scores").glob("*.parquet")):
        dataset = scores_path.stem
        dataset_dir = results / "datasets" / dataset
        manifest = read_table(dataset_dir / "manifest.parquet", MANIFEST_SCHEMA)
        task = str(manifest["task"].iloc[0])
        scores = read_table(scores_path, SCORES_SCHEMA)
        published = set(scores["candidate"].unique()) - BUILTIN
        jobs = [
            (r.pair, task, dataset_dir / r.path_a, dataset_dir / r.path_b, dataset)
            for r in manifest.itertuples()
        ]
        trivial = pd.DataFrame(
            [
                row
                for rows in parallel_map(_trivial_rows, jobs, args.workers, dataset)
                for row in rows
            ]
        )
        extended = pd.concat([scores, trivial], ignore_index=True)
        for name, profile in profiles.items():
            config = SelectionConfig.from_dict({"profiles": {task: profile[task]}})
            comps = composite_scores(extended, task, config).dropna(subset=["composite"])
            winners = comps.sort_values("composite", ascending=False).groupby("pair").head(1)
            entry = counts.setdefault(name, {}).setdefault(
                task, {"pairs": 0, "trivial": 0, "published": 0}
            )
            entry["pairs"] += len(winners)
            entry["trivial"] += int(winners["candidate"].isin(TRIVIAL).sum())
            entry["published"] += int(winners["candidate"].isin(published).sum())
    print(f"{'profile':16} {'task':5} {'pairs':>6} {'trivial wins':>13} {'published wins':>15}")
    for name, by_task in counts.items():
        for task, entry in by_task.items():
            print(
                f"{name:16} {task:5} {entry['pairs']:6d} "
                f"{entry['trivial'] / entry['pairs']:13.1%} {entry['published'] / entry['pairs']:15.1%}"
            )
    write_json(args.json, {"profiles": profiles, "counts": counts})


if __name__ == "__main__":
    main()
