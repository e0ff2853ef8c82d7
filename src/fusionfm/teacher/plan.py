"""Which teachers run on which dataset: the workflow's teacher plan, resolved from the config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusionfm.config import sorted_keys
from fusionfm.io import InputError, image_files_by_stem
from fusionfm.teacher.external import discover_priors
from fusionfm.teacher.stage import teacher_names_for


def resolve_teachers(
    config: Mapping[str, Any], datasets: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """The teachers of every dataset, each with its spec.

    Built-in teachers listed under ``teachers.builtin`` run on the datasets of the tasks they
    serve (spec = their parameter overrides); ``teachers.external`` entries run where their
    ``tasks``/``datasets`` say; with ``priors_root`` set, every published method folder found
    for a dataset becomes a ``precomputed`` teacher of it.

    Args:
        config: the validated workflow config.
        datasets: the resolved datasets (:func:`fusionfm.config.resolve_datasets`).

    Returns:
        dataset -> teacher name -> spec (sorted keys, so reordering a config file changes nothing).
    """
    teachers_config = config.get("teachers") or {}
    builtin = teachers_config.get("builtin") or {}
    external = dict(teachers_config.get("external") or {})
    priors = discover_priors(config["priors_root"], datasets) if config.get("priors_root") else {}
    plan: dict[str, dict[str, dict[str, Any]]] = {}
    for name, dataset in datasets.items():
        dataset_external = dict(external)
        for teacher, spec in priors.get(name, {}).items():
            if teacher in dataset_external:
                raise InputError(
                    f"teacher {teacher!r} of dataset {name!r} is both configured under "
                    "teachers.external and found under priors_root; rename one"
                )
            dataset_external[teacher] = spec
        names = teacher_names_for(dataset["task"], builtin, dataset_external, name)
        plan[name] = {
            teacher: sorted_keys(
                builtin[teacher] if teacher in builtin else dataset_external[teacher]
            )
            for teacher in names
        }
    return plan


def teacher_input_files(spec: Mapping[str, Any]) -> list[Path]:
    """Files an external teacher reads: its precomputed results or its model (none otherwise)."""
    kind = spec.get("kind")
    if kind == "precomputed" and Path(spec["path"]).is_dir():
        return list(image_files_by_stem(spec["path"]).values())
    if kind == "torchscript" and Path(spec["path"]).is_file():
        return [Path(spec["path"])]
    return []
