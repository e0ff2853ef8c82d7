"""One entry point per workflow rule: what each Snakemake job does, importable and testable.

The scripts in ``workflow/scripts`` only unpack ``snakemake.*`` and call one of these. Every
entry that computes is tracked as a child run of the results tree's MLflow parent run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusionfm.config import DatasetSpec, SplitSpec
from fusionfm.io import atomic_path

PARENT_JSON = Path("results/mlflow/parent.json")
"""The results tree's MLflow parent run record, relative to the working directory."""

log = logging.getLogger("fusionfm.stages")


def create_parent_run(
    parent_json: str | os.PathLike[str],
    config: Mapping[str, Any],
    enabled: bool = True,
    experiment: str = "fusionfm",
) -> None:
    """Rule ``mlflow_parent``: get or create the parent run and record it in ``parent_json``.

    With tracking disabled the file still appears (``{"enabled": false}``), so the DAG is the
    same either way.
    """
    from fusionfm.tracking import ensure_parent_run, tracking_enabled

    if tracking_enabled(enabled):
        info = ensure_parent_run(parent_json, experiment, config=config, enabled=True)
        log.info("parent run %s in experiment %s", info.get("run_id"), experiment)
        return
    with atomic_path(parent_json) as tmp:
        tmp.write_text(json.dumps({"enabled": False}) + "\n")
    log.info("tracking disabled")


def download_dataset(spec: Mapping[str, Any], dest: str | os.PathLike[str]) -> None:
    """Rule ``download_dataset``: fetch, verify and safely extract a ``url`` dataset."""
    from fusionfm.data.sources import download_archive

    path = download_archive(spec["url"], spec["sha256"], dest)
    log.info("extracted %s into %s", spec["url"], path)


def prepare_dataset(
    name: str,
    spec: Mapping[str, Any],
    split: Mapping[str, Any],
    out_manifest: str | os.PathLike[str],
    out_images: str | os.PathLike[str],
    source_dir: str | os.PathLike[str] | None,
    mlflow: Mapping[str, Any],
    parent_run: str | os.PathLike[str] = PARENT_JSON,
) -> None:
    """Rule ``prepare_dataset``: normalized pairs plus ``manifest.parquet`` for one dataset."""
    from fusionfm.data.build import build_dataset
    from fusionfm.tracking import stage_run

    dataset = DatasetSpec.from_dict(name, spec)
    with stage_run(parent_run, "prepare_dataset", {"dataset": name}, params=dict(spec),
                   experiment=mlflow["experiment"], enabled=mlflow["enabled"]) as tracker:
        manifest = build_dataset(dataset, out_images, out_manifest, SplitSpec.from_dict(split),
                                 source_root=source_dir)
        counts = manifest["split"].value_counts()
        tracker.log_metrics({
            "pairs": len(manifest),
            "train_pairs": int(counts.get("train", 0)),
            "test_pairs": int(counts.get("test", 0)),
            "with_ground_truth": int(manifest["path_gt"].notna().sum()),
        })
        log.info("%s: %d pairs (%s)", name, len(manifest), dict(counts))
