"""The ``fusionfm metrics`` command: one triple to JSON, folders to Parquet, clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionfm.cli import main
from fusionfm.io import write_image

KEYS = "EN SD SF AG MI SCD VIF Qabf SSIM CC MSE PSNR".split()
TRIPLE = Path(__file__).parents[1] / "data" / "metric_triple"


def test_command_prints_one_json_object_with_the_suite():
    result = subprocess.run(
        [sys.executable, "-m", "fusionfm.cli", "metrics", str(TRIPLE / "fused.png"),
         str(TRIPLE / "a.png"), str(TRIPLE / "b.png")],
        capture_output=True, text=True, check=True,
    )
    values = json.loads(result.stdout)
    assert list(values) == KEYS
    refs = json.loads((TRIPLE.parent / "metric_refs.json").read_text())["cases"]["fixture"]["values"]
    assert values["VIF"] == pytest.approx(refs["VIF"], rel=1e-5)


def test_ground_truth_adds_reference_metrics(capsys):
    assert main(["metrics", str(TRIPLE / "fused.png"), str(TRIPLE / "a.png"), str(TRIPLE / "b.png"),
                 "--gt", str(TRIPLE / "a.png")]) == 0
    values = json.loads(capsys.readouterr().out)
    assert list(values) == KEYS + ["PSNR_gt", "SSIM_gt"]


def test_identical_images_serialize_infinities_as_null(capsys):
    a = str(TRIPLE / "a.png")
    assert main(["metrics", a, a, a]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["PSNR"] is None and values["SCD"] is None and values["SSIM"] == pytest.approx(2)


def test_folder_mode_scores_every_matched_pair(tmp_path):
    for folder in ("fused", "a", "b"):
        (tmp_path / folder).mkdir()
    for stem in ("p1", "p2", "p10"):
        for folder, name in (("fused", "fused.png"), ("a", "a.png"), ("b", "b.png")):
            shutil.copy(TRIPLE / name, tmp_path / folder / f"{stem}.png")
    out = tmp_path / "scores.parquet"
    assert main(["metrics", str(tmp_path / "fused"), str(tmp_path / "a"), str(tmp_path / "b"),
                 "-o", str(out)]) == 0
    table = pd.read_parquet(out)
    assert list(table["pair"]) == ["p1", "p2", "p10"]
    assert list(table.columns) == ["pair"] + KEYS
    assert table["MI"].nunique() == 1


def test_folder_mode_names_a_fused_image_without_sources(tmp_path, capsys):
    for folder in ("fused", "a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(TRIPLE / "a.png", tmp_path / folder / "p1.png")
    shutil.copy(TRIPLE / "a.png", tmp_path / "fused" / "orphan.png")
    assert main(["metrics", str(tmp_path / "fused"), str(tmp_path / "a"), str(tmp_path / "b"),
                 "-o", str(tmp_path / "s.parquet")]) == 2
    err = capsys.readouterr().err
    assert "orphan.png" in err and "no source image named orphan" in err
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("missing", "no such image file"),
        ("truncated", "unreadable or truncated image"),
        ("garbage", "not a readable image"),
        ("size", "differ in size"),
    ],
)
def test_bad_inputs_are_named(tmp_path, capsys, problem, expected):
    fused = tmp_path / "fused.png"
    if problem == "truncated":
        data = (TRIPLE / "fused.png").read_bytes()
        fused.write_bytes(data[: len(data) // 2])
    elif problem == "garbage":
        fused.write_bytes(np.random.default_rng(0).bytes(500))
    elif problem == "size":
        write_image(fused, np.zeros((10, 12), np.uint8))
    assert main(["metrics", str(fused), str(TRIPLE / "a.png"), str(TRIPLE / "b.png")]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "fused.png" in err


def test_metrics_command_does_not_import_torch():
    """Scoring one triple needs no deep-learning framework: torch (about 2 s to import) is only
    loaded by ``fusionfm fuse``."""
    code = (
        "import sys\n"
        "from fusionfm.cli import main\n"
        f"assert main(['metrics', {str(TRIPLE / 'fused.png')!r}, {str(TRIPLE / 'a.png')!r}, "
        f"{str(TRIPLE / 'b.png')!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert '"SSIM"' in result.stdout
