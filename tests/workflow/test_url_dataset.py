"""A ``url`` dataset through the real workflow: download, verify, extract safely, build."""

from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import pandas as pd
import yaml

from fusionfm.io import write_image

from .conftest import run_snakemake


def _archive(tmp_path):
    folder = tmp_path / "src"
    rng = np.random.default_rng(0)
    for modality in ("ir", "vi"):
        for pair in ("p1", "p2", "p3"):
            write_image(folder / "set" / modality / f"{pair}.png", rng.integers(0, 255, (24, 32), np.uint8))
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder).as_posix())
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def _config(workdir, url: str, sha256: str) -> None:
    config = {
        "datasets": {
            "remote": {"task": "ivf", "modalities": ["ir", "vi"], "source": "url", "url": url,
                       "sha256": sha256, "subdir": "set"}
        },
        "mlflow": {"enabled": False},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def test_url_dataset_is_downloaded_verified_and_built(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    archive, sha256 = _archive(tmp_path)
    _config(workdir, archive.as_uri(), sha256)
    run_snakemake(workdir, "--cores", "1", "results/datasets/remote/manifest.parquet")
    manifest = pd.read_parquet(workdir / "results" / "datasets" / "remote" / "manifest.parquet")
    assert sorted(manifest["pair"]) == ["p1", "p2", "p3"]
    assert (workdir / "resources" / "datasets" / "remote" / "set" / "ir" / "p1.png").is_file()


def test_checksum_mismatch_fails_the_job_and_leaves_nothing(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    archive, _ = _archive(tmp_path)
    _config(workdir, archive.as_uri(), "0" * 64)
    result = run_snakemake(workdir, "--cores", "1", "results/datasets/remote/manifest.parquet",
                           check=False)
    assert result.returncode != 0
    log = (workdir / "logs" / "download_dataset" / "remote.log").read_text()
    assert "sha256" in log and "0" * 64 in log
    assert not (workdir / "resources" / "datasets" / "remote").exists()
    assert not (workdir / "results" / "datasets" / "remote").exists()
