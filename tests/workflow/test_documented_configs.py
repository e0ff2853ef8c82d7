"""Every config snippet the README and config.yaml's comments show, through the user's door: the
real schema validation and a tiny DAG of the real workflow, on small data the test writes.

The snippets are read from the documents themselves, so when the README changes these tests
change with it; each test also pins which snippets it found, so a new one cannot go untested.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from fusionfm.io import read_image, write_image

from .conftest import REPO, run_snakemake

README = (REPO / "README.md").read_text(encoding="utf-8")
CONFIG_YAML = (REPO / "config.yaml").read_text(encoding="utf-8")
TINY = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# reading the snippets out of the documents


def readme_yaml_blocks() -> list[dict[str, Any]]:
    """The README's ```yaml blocks, parsed."""
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", README, re.S)]


def config_comment_examples() -> dict[str, dict[str, Any]]:
    """config.yaml's commented examples (lines ``#   name: {...}`` and their continuations):
    name -> entry."""
    examples: dict[str, dict[str, Any]] = {}
    block: list[str] = []
    for line in [*CONFIG_YAML.splitlines(), ""]:
        match = re.match(r"^\s*#   (.*)$", line)
        if match:
            block.append(match.group(1))
        elif block:
            examples.update(yaml.safe_load("\n".join(block)))
            block = []
    return examples


def inline_snippets(text: str) -> list[dict[str, Any]]:
    """Inline config snippets such as `mlflow: {defer: false}`: backquoted ``key: {...}`` whose
    every value is given (placeholders like `split: {test_fraction, seed}` are left out)."""

    def complete(value: Any) -> bool:
        if isinstance(value, dict):
            return all(complete(v) for v in value.values())
        return value is not None

    found = []
    for snippet in re.findall(r"`([a-z_]+: \{[^`]*\})`", text):
        parsed = yaml.safe_load(snippet)
        if complete(parsed):
            found.append(parsed)
    return found


def readme_config_commands() -> list[list[str]]:
    """The README's ``snakemake ... all --config/--configfile`` command lines (local runs)."""
    commands = []
    for line in README.splitlines():
        if line.startswith("snakemake --cores") and ("--config" in line):
            commands.append(shlex.split(line, comments=True))
    return commands


# --------------------------------------------------------------------------------------------
# small local data standing in for the documents' paths


def _pairs(folder: Path, modalities: tuple[str, str], stems: list[str], rgb_b: bool = False):
    rng = np.random.default_rng(abs(hash(str(folder))) % 2**32)
    for stem in stems:
        write_image(
            folder / modalities[0] / f"{stem}.png", rng.integers(0, 256, (40, 48), np.uint8)
        )
        shape = (40, 48, 3) if rgb_b else (40, 48)
        write_image(folder / modalities[1] / f"{stem}.png", rng.integers(0, 256, shape, np.uint8))


def _zip(folder: Path, archive: Path) -> str:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return hashlib.sha256(archive.read_bytes()).hexdigest()


FUSE_SCRIPT = """\
import sys

import numpy as np
from PIL import Image

a = np.asarray(Image.open(sys.argv[1]).convert("L"), dtype=np.float64)
b = np.asarray(Image.open(sys.argv[2]).convert("L"), dtype=np.float64)
Image.fromarray(np.maximum(a, b).astype(np.uint8)).save(sys.argv[3])
"""


def _export_torchscript(path: Path) -> None:
    import torch

    class Mean(torch.nn.Module):
        def forward(self, y_a: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
            return 0.5 * (y_a + y_b)

    torch.jit.save(torch.jit.script(Mean()), str(path))


def _tiny_training(config: dict[str, Any]) -> dict[str, Any]:
    config["train"] = dict(TINY["train"], steps=2, fisher_batches=1)
    config["ablations"] = {"variants": {}}
    config["evaluate"] = {"steps": 1, "timing_steps": [1]}
    return config


# --------------------------------------------------------------------------------------------
# the tests


def test_the_documents_show_the_snippets_these_tests_run() -> None:
    blocks = readme_yaml_blocks()
    assert [sorted(b) for b in blocks] == [["datasets"], ["teachers"]]
    datasets, external = blocks[0]["datasets"], blocks[1]["teachers"]["external"]
    assert sorted(datasets) == ["roadscene", "tno"]
    assert sorted(external) == ["exported", "mymethod", "seafusion"]
    # config.yaml's comments show the same examples (its archive URL is a placeholder)
    examples = config_comment_examples()
    assert sorted(examples) == ["exported", "mymethod", "roadscene", "seafusion", "tno"]
    assert {name: examples[name] for name in external} == external
    assert examples["tno"] == datasets["tno"]
    assert [list(s) for s in inline_snippets(README)] == [
        ["ablations"],
        ["mlflow"],
        ["mlflow"],
        ["mlflow"],
    ]
    assert inline_snippets(CONFIG_YAML) == [
        {"selection": {"profiles": {"mff": {"FOCUS": 2, "Qabf": 1}}}}
    ]
    assert len(readme_config_commands()) == 4


@pytest.mark.slow
def test_readme_datasets_and_external_teachers_run_as_written(tmp_path: Path) -> None:
    """The README's dataset and external-teacher blocks, every kind, with only their absolute
    paths pointed at small local data: a dir dataset, a url archive, precomputed results, a
    command (``python fuse.py`` in the working folder) and an exported TorchScript model, through
    teachers, scores, selection, refinement, one tiny training stage, evaluation and report."""
    blocks = readme_yaml_blocks()
    datasets = blocks[0]["datasets"]
    external = blocks[1]["teachers"]["external"]
    workdir = tmp_path / "work"
    workdir.mkdir()

    tno_stems = ["t1", "t2", "t3", "t4"]
    _pairs(tmp_path / "TNO", ("ir", "vi"), tno_stems)
    datasets["tno"]["path"] = str(tmp_path / "TNO")
    _pairs(
        tmp_path / "archive" / datasets["roadscene"]["subdir"],
        ("ir", "vi"),
        ["r1", "r2", "r3", "r4"],
        rgb_b=True,
    )
    archive = tmp_path / "rs.zip"
    datasets["roadscene"]["sha256"] = _zip(
        tmp_path / "archive" / datasets["roadscene"]["subdir"], archive
    )
    datasets["roadscene"]["url"] = archive.as_uri()

    results = tmp_path / "SeAFusion"
    rng = np.random.default_rng(5)
    for stem in tno_stems:
        write_image(results / f"{stem}.png", rng.integers(0, 256, (40, 48), np.uint8))
    assert external["seafusion"]["path"] == "/results/SeAFusion"
    external["seafusion"]["path"] = str(results)
    # relative paths stay as written: they are the working folder's files
    assert external["mymethod"]["argv"][:2] == ["python", "fuse.py"]
    (workdir / "fuse.py").write_text(FUSE_SCRIPT)
    _export_torchscript(workdir / external["exported"]["path"])

    config = _tiny_training(
        {
            "datasets": datasets,
            "teachers": {"builtin": {"average": {}, "max_abs": {}}, "external": external},
            "split": {"test_fraction": 0.25, "seed": 0},
            "mlflow": {"enabled": False},
        }
    )
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # `python` is the interpreter running the tests, as on a user's activated environment
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run_snakemake(workdir, "--cores", "2", "all", env=env)

    out = workdir / "results"
    expected = {
        "tno": {"average", "max_abs", "seafusion", "mymethod", "exported"},
        "roadscene": {"average", "max_abs", "mymethod", "exported"},
    }
    for dataset, teachers in expected.items():
        scores = pd.read_parquet(out / "scores" / f"{dataset}.parquet")
        assert set(scores.loc[scores["role"] == "teacher", "candidate"]) == teachers
        for teacher in teachers - {"average", "max_abs"}:
            timing = pd.read_parquet(out / "teachers" / dataset / teacher / "timing.parquet")
            assert (timing["status"] == "ok").all() and len(timing) == 4
    # the precomputed teacher's images are its files; the command's are per-pixel maxima
    teachers = out / "teachers" / "tno"
    assert np.array_equal(
        read_image(teachers / "seafusion" / "images" / "t1.png"), read_image(results / "t1.png")
    )
    a, b = (read_image(tmp_path / "TNO" / m / "t1.png") for m in ("ir", "vi"))
    assert np.array_equal(read_image(teachers / "mymethod" / "images" / "t1.png"), np.maximum(a, b))
    assert (out / "train" / "main" / "00_ivf" / "model.pt").is_file()
    assert (out / "report" / "index.html").is_file()


@pytest.mark.parametrize(
    "snippet",
    inline_snippets(README) + inline_snippets(CONFIG_YAML),
    ids=lambda s: yaml.safe_dump(s, default_flow_style=True).strip(),
)
def test_inline_snippets_pass_the_schema_and_plan(tmp_path: Path, snippet: dict[str, Any]) -> None:
    config = {**TINY, **snippet}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "-n", "--cores", "1", "all")
    assert "rule train_task:" in result.stdout


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A small folder laid out as the README's data_root, with a priors folder beside."""
    root = tmp_path / "data"
    _pairs(root / "ivf" / "TNO", ("ir", "vi"), ["1", "2", "3", "4"])
    _pairs(root / "mff" / "Lytro", ("near", "far"), ["1", "2", "3", "4"], rgb_b=True)
    _pairs(root / "mef" / "MEFB", ("under", "over"), ["1", "2", "3", "4"])
    rng = np.random.default_rng(1)
    for stem in ["1", "2", "3", "4"]:
        write_image(
            root / "priors" / "ivf" / "TNO" / "SeAFusion" / f"{stem}.png",
            rng.integers(0, 256, (40, 48), np.uint8),
        )
    return root


@pytest.mark.parametrize("command", readme_config_commands(), ids=" ".join)
def test_readme_config_commands_plan(tmp_path: Path, data_root: Path, command: list[str]) -> None:
    """Each README command line with --config/--configfile, its data paths pointed at small local
    data, plans the DAG it promises."""
    args = []
    for arg in command[1:]:
        arg = arg.replace("/path/to/data", str(data_root)).replace("=/data", f"={data_root}")
        if arg == "configs/real-data.yaml":
            arg = str(REPO / arg)
        args.append(arg)
    if "--configfile" in args:  # its defaults point at ../shared/data: point them here instead
        args += ["--config", f"data_root={data_root}", f"priors_root={data_root / 'priors'}"]
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text((REPO / "config.yaml").read_text())
    plan = run_snakemake(work, "-n", *args).stdout
    assert "dataset=ivf_TNO" in plan and "dataset=mff_Lytro" in plan
    assert ("dataset=mef_MEFB" in plan) == ("data_root_include" not in " ".join(args))
    assert ("teacher=SeAFusion" in plan) == ("priors_root" in " ".join(args))
