"""Label sets of the data ablations: the selected teacher's outputs, or a random teacher's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionfm.config import first_stage_owners, resolve_variants
from fusionfm.io import InputError, read_image, write_image
from fusionfm.pseudolabel.labelsets import label_sources

PAIRS = [f"{i:04d}" for i in range(12)]
TEACHERS = ("average", "max_abs", "dwt")


@pytest.fixture
def teacher_images(tmp_path: Path) -> dict[str, Path]:
    folders = {}
    for value, teacher in enumerate(TEACHERS):
        folder = tmp_path / teacher
        for pair in PAIRS:
            if teacher == "dwt" and pair == "0003":
                continue  # dwt skipped this pair
            write_image(folder / f"{pair}.png", np.full((4, 5), 10 * value, np.uint8))
        folders[teacher] = folder
    return folders


def _selection() -> pd.DataFrame:
    rows = [
        {"pair": p, "status": "rejected" if p == "0005" else "selected", "teacher": "max_abs"}
        for p in PAIRS
    ]
    rows[2]["teacher"] = "dwt"
    return pd.DataFrame(rows)


def test_selected_labels_follow_the_selection(teacher_images: dict[str, Path]) -> None:
    manifest = pd.DataFrame({"pair": PAIRS})
    chosen = label_sources("selected", manifest, _selection(), teacher_images, "d")
    assert sorted(chosen) == [p for p in PAIRS if p != "0005"]  # rejected: no label
    assert chosen["0002"] == teacher_images["dwt"] / "0002.png"
    assert chosen["0000"] == teacher_images["max_abs"] / "0000.png"
    assert read_image(chosen["0002"]).max() == 20


def test_random_labels_cover_every_pair_and_are_seeded(teacher_images: dict[str, Path]) -> None:
    manifest = pd.DataFrame({"pair": PAIRS})
    first = label_sources("random", manifest, _selection(), teacher_images, "d", seed=0)
    again = label_sources("random", manifest, _selection(), teacher_images, "d", seed=0)
    other = label_sources("random", manifest, _selection(), teacher_images, "d", seed=1)
    assert first == again and first != other
    assert sorted(first) == PAIRS  # no rejection without selection
    assert first["0003"].parent != teacher_images["dwt"]  # only teachers with an output
    assert len({path.parent for path in first.values()}) == 3  # all teachers drawn (12 pairs)


def test_missing_selected_output_and_unknown_kind(teacher_images: dict[str, Path]) -> None:
    selection = _selection()
    selection.loc[3, "teacher"] = "dwt"  # dwt has no output for 0003
    manifest = pd.DataFrame({"pair": PAIRS})
    with pytest.raises(InputError, match=r"dwt.*0003\.png|0003\.png.*missing"):
        label_sources("selected", manifest, selection, teacher_images, "d")
    with pytest.raises(InputError, match="unknown label set"):
        label_sources("best", manifest, selection, teacher_images, "d")


def test_variants_get_defaults_and_bad_ones_are_named() -> None:
    variants = resolve_variants(
        {"ablations": {"variants": {"joint": {"schedule": "joint"}, "x": {"train": {"lr": 1}}}}}
    )
    assert list(variants) == ["main", "joint", "x"]
    assert variants["main"] == {"train": {}, "labels": "refined", "schedule": "sequential"}
    assert variants["joint"]["labels"] == "refined" and variants["x"]["train"] == {"lr": 1}
    with pytest.raises(InputError, match="ablations.variants.bad"):
        resolve_variants({"ablations": {"variants": {"bad": {"label": "random"}}}})
    with pytest.raises(InputError, match="schedule"):
        resolve_variants({"ablations": {"variants": {"bad": {"schedule": "mixed"}}}})


def test_variant_train_keys_and_every_variant_model_are_checked_when_resolved() -> None:
    train = {"lr": 0.01, "ewc_lambda": 1000.0, "model": {"base_channels": 4}}
    ablation = {"ablations": {"variants": {"x": {"train": {"ewc_lamda": 0}}}}}
    with pytest.raises(InputError, match=r"ablations.variants.x.train: unknown key\(s\) ewc_lamda"):
        resolve_variants({"train": train, **ablation})
    with pytest.raises(InputError, match=r"^train.model: unknown key\(s\) base_channel "):
        resolve_variants({"train": {**train, "model": {"base_channel": 4}}})
    # The variant's model is the main model with the variant's overrides: depth 0 is its error.
    deeper = {"ablations": {"variants": {"x": {"train": {"model": {"depth": 0}}}}}}
    with pytest.raises(InputError, match=r"^ablations.variants.x.train.model.depth must be"):
        resolve_variants({"train": train, **deeper})


def test_variants_that_cannot_differ_before_the_second_task_share_the_first_stage() -> None:
    variants = resolve_variants(
        {
            "ablations": {
                "variants": {
                    "naive": {"train": {"ewc_lambda": 0, "replay_capacity": 0}},
                    "replay_only": {"train": {"ewc_lambda": 0}},
                    "more_replay": {"train": {"replay_ratio": 0.5}},
                    "smaller_buffer": {"train": {"replay_capacity": 8}},
                    "other_lr": {"train": {"lr": 0.1}},
                    "no_refiner": {"labels": "selected"},
                    "no_refiner_naive": {"labels": "selected", "train": {"ewc_lambda": 0}},
                    "joint": {"schedule": "joint"},
                }
            }
        }
    )
    owners = first_stage_owners(variants, {"lr": 0.01, "ewc_lambda": 1000, "replay_capacity": 64})
    assert owners == {
        "main": "main",
        "naive": "main",  # no buffer read, so its capacity does not matter
        "replay_only": "main",
        "more_replay": "main",
        "smaller_buffer": "smaller_buffer",  # a smaller buffer would hold other items
        "other_lr": "other_lr",
        "no_refiner": "no_refiner",  # other labels
        "no_refiner_naive": "no_refiner",
        "joint": "joint",
    }
