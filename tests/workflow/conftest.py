"""Helpers to run the real workflow in a scratch working directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def run_snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None,
                  timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``snakemake -s <repo>/Snakefile --directory workdir ARGS`` and return the result."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environment.update(env or {})
    result = subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
        capture_output=True, text=True, env=environment, timeout=timeout, cwd=workdir,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch results tree holding the tiny test config as its config.yaml."""
    shutil.copy(REPO / "tests" / "config" / "tiny.yaml", tmp_path / "config.yaml")
    return tmp_path
