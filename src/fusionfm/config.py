"""Typed views of the validated workflow configuration (``config.yaml``).

The contract is ``workflow/schemas/config.schema.yaml``; the dataclasses here mirror it, apply the
same defaults and repeat its checks, so the library can be called without Snakemake and still
reject a bad dataset with a message that names the dataset and the key.

:func:`resolve_datasets` turns the ``datasets`` section, or a ``data_root`` folder laid out as
``<task>/<dataset>/<modality>/<pair>.<ext>``, into the dataset dictionaries the workflow builds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from fusionfm.io import InputError, natural_key

TASKS: tuple[str, ...] = ("ivf", "mif", "mef", "mff")
"""Fusion tasks: infrared/visible, medical, multi-exposure, multi-focus."""

SOURCES: tuple[str, ...] = ("synthetic", "dir", "url")
"""Where a dataset's pairs come from."""

START_MODES: tuple[str, ...] = ("mean", "max", "a", "b")
"""How the student's start image ``x_0`` is built from the sources (:func:`fusionfm.path.start_image`)."""

SOLVER_METHODS: tuple[str, ...] = ("euler", "heun")
"""The ODE solvers that integrate the student's velocity (:mod:`fusionfm.solver`)."""

MIN_SOLVER_STEPS, MAX_SOLVER_STEPS = 1, 8
"""The range of solver steps."""

GROUND_TRUTH_FOLDER = "gt"
"""Name of the ground-truth folder, both in discovered source folders and in built datasets."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
"""Dataset and modality names (the schema's ``propertyNames`` / ``modalities`` pattern)."""

_SHA256_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")

# Folder names of the first (A) and second (B) source of each task, lower case. Used to order the
# two modality folders found under data_root; a name in neither list sorts between them.
_MODALITY_ORDER: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ivf": (("ir", "infrared", "thermal", "lwir", "tir"), ("vi", "vis", "visible", "rgb")),
    "mif": (("mri", "mr"), ("ct", "pet", "spect")),
    "mef": (
        ("under", "underexposed", "under_exposed", "low"),
        ("over", "overexposed", "over_exposed", "high"),
    ),
    "mff": (("near", "foreground", "fg"), ("far", "background", "bg")),
}


@dataclass(frozen=True)
class SplitSpec:
    """Deterministic train/test split (the ``split`` section).

    Attributes:
        test_fraction: fraction of pairs in the test split, in [0, 1].
        seed: seed of the split permutation.
    """

    test_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.test_fraction, bool) or not isinstance(self.test_fraction, int | float):
            raise InputError(f"split.test_fraction: expected a number, got {self.test_fraction!r}")
        if not 0.0 <= float(self.test_fraction) <= 1.0:
            raise InputError(f"split.test_fraction: {self.test_fraction} is not in [0, 1]")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InputError(f"split.seed: expected an integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SplitSpec:
        """Build from the ``split`` section (missing keys take the schema defaults)."""
        d = dict(d or {})
        reject_unknown_keys("split", d, ("test_fraction", "seed"))
        return cls(test_fraction=d.get("test_fraction", 0.25), seed=d.get("seed", 0))


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and seed of a generated dataset (``datasets.<name>.synthetic``).

    Attributes:
        pairs: number of pairs, at least 1.
        height: image height in pixels, at least 32.
        width: image width in pixels, at least 32.
        seed: generator seed.
    """

    pairs: int = 8
    height: int = 128
    width: int = 160
    seed: int = 0

    @classmethod
    def from_dict(cls, where: str, d: Mapping[str, Any] | None) -> SyntheticSpec:
        """Build from a ``synthetic`` mapping; ``where`` names it in error messages."""
        d = dict(d or {})
        reject_unknown_keys(where, d, ("pairs", "height", "width", "seed"))
        minimum = {"pairs": 1, "height": 32, "width": 32, "seed": None}
        values: dict[str, int] = {}
        for key, low in minimum.items():
            value = d.get(key, getattr(cls, key))
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"{where}.{key}: expected an integer, got {value!r}")
            if low is not None and value < low:
                raise InputError(f"{where}.{key}: {value} is below the minimum {low}")
            values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the ``datasets`` section (schema ``$defs/dataset``), defaults applied.

    Attributes:
        name: dataset name (letters, digits, ``_``, ``-``).
        task: fusion task, one of :data:`TASKS`.
        modalities: names of the source folders A and B, in the task's order (e.g. ``ir``, ``vi``).
        source: ``synthetic``, ``dir`` or ``url``.
        path: (dir) local folder holding one subfolder per modality.
        url: (url) archive to download.
        sha256: (url) expected sha256 of the archive, lower case.
        subdir: (url) folder inside the extracted archive that holds the modality folders.
        ground_truth: (dir, url) folder of reference images matched by pair name, or None.
        test_fraction: per-dataset override of ``split.test_fraction``, or None.
        synthetic: (synthetic) size and seed of the generated set.
    """

    name: str
    task: str
    modalities: tuple[str, str]
    source: str
    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    subdir: str = ""
    ground_truth: str | None = None
    test_fraction: float | None = None
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)

    def __post_init__(self) -> None:
        where = f"datasets.{self.name}"
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise InputError(
                f"dataset name {self.name!r}: use letters, digits, '_' and '-' (pattern {NAME_PATTERN.pattern})"
            )
        if self.task not in TASKS:
            raise InputError(
                f"{where}.task: unknown task {self.task!r} (expected one of {', '.join(TASKS)})"
            )
        if self.source not in SOURCES:
            raise InputError(
                f"{where}.source: unknown source {self.source!r} (expected one of {', '.join(SOURCES)})"
            )
        _check_modalities(where, self.modalities)
        if self.source == "dir" and not self.path:
            raise InputError(
                f"{where}: source 'dir' needs a 'path' (the folder with the modality folders)"
            )
        if self.source == "url":
            if not self.url:
                raise InputError(f"{where}: source 'url' needs a 'url'")
            if not re.match(r"^(https?|file)://", self.url, re.IGNORECASE):
                raise InputError(f"{where}.url: {self.url!r} is not an http(s):// or file:// URL")
            if not self.sha256 or not _SHA256_PATTERN.match(self.sha256):
                raise InputError(
                    f"{where}.sha256: source 'url' needs the archive's sha256 (64 hex digits), got {self.sha256!r}"
                )
        _check_relative_folder(f"{where}.subdir", self.subdir, allow_empty=True)
        if self.ground_truth is not None:
            _check_relative_folder(f"{where}.ground_truth", self.ground_truth, allow_empty=False)
            if self.ground_truth in self.modalities:
                raise InputError(
                    f"{where}.ground_truth: {self.ground_truth!r} is also a modality folder"
                )
        if self.test_fraction is not None:
            if isinstance(self.test_fraction, bool) or not isinstance(
                self.test_fraction, int | float
            ):
                raise InputError(
                    f"{where}.test_fraction: expected a number, got {self.test_fraction!r}"
                )
            if not 0.0 <= float(self.test_fraction) <= 1.0:
                raise InputError(f"{where}.test_fraction: {self.test_fraction} is not in [0, 1]")

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> DatasetSpec:
        """Build from one entry of the ``datasets`` section.

        Args:
            name: the entry's key.
            d: the entry (validated by the schema or not; the same checks are repeated here).

        Returns:
            The dataset spec, with the schema defaults filled in.

        Raises:
            InputError: a key is unknown, missing or has a bad value; the message names it.
        """
        where = f"datasets.{name}"
        if not isinstance(d, Mapping):
            raise InputError(f"{where}: expected a mapping, got {type(d).__name__}")
        d = dict(d)
        reject_unknown_keys(where, d, [f.name for f in fields(cls) if f.name != "name"])
        missing = [key for key in ("task", "modalities", "source") if key not in d]
        if missing:
            raise InputError(f"{where}: missing required key(s) {', '.join(missing)}")
        modalities = d["modalities"]
        if isinstance(modalities, str) or not isinstance(modalities, Sequence):
            raise InputError(
                f"{where}.modalities: expected a list of two folder names, got {modalities!r}"
            )
        sha256 = d.get("sha256")
        return cls(
            name=name,
            task=d["task"],
            modalities=tuple(modalities),  # type: ignore[arg-type]  # length checked in __post_init__
            source=d["source"],
            path=None if d.get("path") is None else str(d["path"]),
            url=d.get("url"),
            sha256=sha256.lower() if isinstance(sha256, str) else sha256,
            subdir=d.get("subdir") or "",
            ground_truth=d.get("ground_truth"),
            test_fraction=d.get("test_fraction"),
            synthetic=SyntheticSpec.from_dict(f"{where}.synthetic", d.get("synthetic")),
        )

    def split_with(self, split: SplitSpec) -> SplitSpec:
        """The split of this dataset: ``split`` with this dataset's ``test_fraction`` override."""
        if self.test_fraction is None:
            return split
        return SplitSpec(test_fraction=self.test_fraction, seed=split.seed)


def check_config_schema(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the workflow's JSON schema and report the first problem in one
    line (the config key path and what is wrong), not the whole schema.

    Raises:
        InputError: the config does not match the schema.
    """
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    hint = ""
    if error.validator == "additionalProperties" and isinstance(error.schema, Mapping):
        allowed = sorted(error.schema.get("properties") or {})
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
    raise InputError(f"config {where}: {error.message}{hint}")


def reject_unknown_keys(where: str, d: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Raise :class:`InputError` naming every key of ``d`` not in ``allowed`` (``where`` is the
    config section, e.g. ``train``)."""
    unknown = sorted(str(key) for key in d if key not in allowed)
    if unknown:
        raise InputError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})"
        )


GATES = ("leaky_clamp", "tanh", "linear")
"""Ways to bound the student's output gate (:attr:`UNetConfig.gate`)."""


@dataclass
class UNetConfig:
    """Architecture of :class:`FusionUNet`.

    Attributes:
        base_channels: channels at full resolution.
        depth: number of 2x downsamplings; the network's stride is ``2**depth``.
        channel_mults: channel multiplier of each of the ``depth + 1`` resolution levels; empty
            means ``min(2**level, max_channel_mult)``, i.e. (1, 2, 4, 8) for depth 3: cheap
            full-resolution levels, capacity where the pixels are few.
        max_channel_mult: cap of the default multipliers.
        num_res_blocks: residual blocks per level in the encoder and in the decoder.
        num_mid_blocks: residual blocks at the lowest resolution, between encoder and decoder.
        time_dim: size of the sinusoidal time features.
        emb_dim: size of the combined time + task embedding; 0 means ``4 * base_channels``.
        num_tasks: number of task embeddings.
        in_channels: conditioning image channels besides ``x_t`` (``y_a`` and ``y_b``: 2).
        out_channels: channels of ``x_t`` and of the predicted velocity.
        max_groups: upper bound of GroupNorm groups (the largest divisor of the channels up to it).
        time_scale: ``t`` in [0, 1] is multiplied by this before the sinusoidal features.
        dropout: dropout inside residual blocks.
        gated_output: predict a gate ``g`` per pixel and return the velocity ``g * (y_a - y_b)``
            (plus a residual with ``gate_residual``): choosing or weighting the sources locally
            (what most fusion labels do) is then a smooth map instead of a product the network
            must build. ``False``: the head predicts the velocity itself.
        gate: how the raw gate is bounded. ``leaky_clamp``: clamped to +-1/2, with a slope of
            :data:`~fusionfm.models.unet.GATE_LEAK` beyond, so a saturated gate still learns;
            from the mean start the endpoint ``(y_a + y_b) / 2 + g * (y_a - y_b)`` is then one
            source exactly wherever the gate saturates (copied pixels, which the information
            and edge metrics reward), and a later task can still move it. ``tanh``: ``0.5 *
            tanh(g)``, which reaches a source only in the limit. ``linear``: unbounded.
        gate_residual: add a free per-pixel residual ``r`` to the gated velocity, for labels that
            are not a mix of the sources; off by default: with the training budget of the default
            run its noise cost more composite than it brought.
        task_heads: one output convolution per task, the network picking the head of each
            sample's task (task-incremental learning: a new task trains its own head and leaves
            the earlier ones alone); ``False``: one head shared by every task.
        sharpness_features: also condition on each source's local sharpness (the
            gradient magnitude averaged over a small window, see
            :func:`fusionfm.models.unet.local_sharpness`): which source is in focus or carries
            the detail is then read off the input instead of being learned from scratch.
    """

    base_channels: int = 8
    depth: int = 3
    channel_mults: tuple[int, ...] = ()
    max_channel_mult: int = 8
    num_res_blocks: int = 1
    num_mid_blocks: int = 1
    time_dim: int = 32
    emb_dim: int = 0
    num_tasks: int = len(TASKS)
    in_channels: int = 2
    out_channels: int = 1
    max_groups: int = 8
    time_scale: float = 1000.0
    dropout: float = 0.0
    gated_output: bool = True
    gate: str = "leaky_clamp"
    gate_residual: bool = False
    task_heads: bool = True
    sharpness_features: bool = True

    def __post_init__(self) -> None:
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        positive = ("base_channels", "depth", "max_channel_mult", "num_res_blocks", "time_dim")
        positive += ("num_mid_blocks",)
        positive += ("num_tasks", "in_channels", "out_channels", "max_groups")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"model.{name} must be a positive integer, got {value!r}")
        if self.time_dim % 2:
            raise InputError(f"model.time_dim must be even, got {self.time_dim}")
        if self.emb_dim < 0:
            raise InputError(f"model.emb_dim must be >= 0, got {self.emb_dim}")
        if self.channel_mults and len(self.channel_mults) != self.depth + 1:
            raise InputError(
                f"model.channel_mults needs depth + 1 = {self.depth + 1} entries, got "
                f"{list(self.channel_mults)}"
            )
        if any(m < 1 for m in self.channel_mults):
            raise InputError(
                f"model.channel_mults must be positive, got {list(self.channel_mults)}"
            )
        for name in ("gated_output", "gate_residual", "task_heads", "sharpness_features"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"model.{name} must be true or false, got {getattr(self, name)!r}")
        if self.gate not in GATES:
            raise InputError(f"model.gate must be one of {', '.join(GATES)}, got {self.gate!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"model.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str = "model") -> UNetConfig:
        """Build from the ``model`` config section; missing keys take the defaults.

        Args:
            d: the section.
            where: its path in the config (e.g. ``train.model``), which the messages name.

        Raises:
            InputError: an unknown key or a bad value.
        """
        d = dict(d or {})
        reject_unknown_keys(where, d, [f.name for f in fields(cls)])
        try:
            if "channel_mults" in d:
                d["channel_mults"] = tuple(d["channel_mults"] or ())
            return cls(**d)
        except TypeError as error:
            raise InputError(f"{where}: {error}") from None
        except InputError as error:  # __post_init__ names its keys "model.<key>"
            raise InputError(where + str(error).removeprefix("model")) from None

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain Python values (for checkpoints and MLflow params)."""
        out = asdict(self)
        out["channel_mults"] = list(self.channel_mults)
        return out

    @property
    def stride(self) -> int:
        """The network's total downsampling factor, ``2**depth``."""
        return 2**self.depth

    @property
    def level_channels(self) -> tuple[int, ...]:
        """Channels of each resolution level, full resolution first (``depth + 1`` entries)."""
        mults = self.channel_mults or tuple(
            min(2**level, self.max_channel_mult) for level in range(self.depth + 1)
        )
        return tuple(self.base_channels * m for m in mults)

    @property
    def embedding_dim(self) -> int:
        """Size of the combined time + task embedding."""
        return self.emb_dim or 4 * self.base_channels


VARIANT_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"train": {}, "labels": "refined", "schedule": "sequential"}
)
"""How a training variant differs from the main run: nothing (see ``ablations.variants``)."""


def resolve_variants(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``main`` plus ``ablations.variants``, each with every key of :data:`VARIANT_DEFAULTS`.

    The model of every variant (``train.model`` with the variant's overrides) is checked here,
    so that a misspelt model key fails when the workflow is planned, not in a training job.

    Raises:
        InputError: a variant named ``main``, or with an unknown key or value.
    """
    train = config.get("train") or {}
    UNetConfig.from_dict(train.get("model"), "train.model")
    variants: dict[str, dict[str, Any]] = {"main": dict(VARIANT_DEFAULTS)}
    for name, spec in (config.get("ablations", {}).get("variants") or {}).items():
        if name == "main":
            raise InputError("ablations.variants: the name 'main' is the main run")
        spec = dict(spec or {})
        where = f"ablations.variants.{name}"
        reject_unknown_keys(where, spec, list(VARIANT_DEFAULTS))
        variant = {**VARIANT_DEFAULTS, **spec, "train": dict(spec.get("train") or {})}
        if train:
            reject_unknown_keys(f"{where}.train", variant["train"], list(train))
        UNetConfig.from_dict({**train, **variant["train"]}.get("model"), f"{where}.train.model")
        if variant["labels"] not in ("refined", "selected", "random"):
            raise InputError(f"ablations.variants.{name}.labels: unknown {variant['labels']!r}")
        if variant["schedule"] not in ("sequential", "joint"):
            raise InputError(f"ablations.variants.{name}.schedule: unknown {variant['schedule']!r}")
        variants[name] = variant
    return variants


FIRST_STAGE_FREE_KEYS = ("ewc_lambda", "replay_ratio")
"""Train keys that cannot change a first training stage's model, Fisher or replay buffer: no
earlier task exists to protect or replay."""


def first_stage_owners(
    variants: Mapping[str, Mapping[str, Any]], train: Mapping[str, Any]
) -> dict[str, str]:
    """For each sequential variant, the variant whose first training stage it reuses.

    Two sequential variants with the same labels and the same train settings, except for
    :data:`FIRST_STAGE_FREE_KEYS` (and ``replay_capacity`` when the later one keeps no replay
    items, so that it never reads the buffer), learn the identical first stage; the first of them
    in ``variants`` order trains it once. Joint variants map to themselves.

    Args:
        variants: :func:`resolve_variants` output (its order decides the owner).
        train: the ``train`` config section the variants' ``train`` overrides apply to.

    Returns:
        variant name -> owner variant name (itself when nothing earlier matches).
    """
    owners: dict[str, str] = {}
    for name, variant in variants.items():
        owners[name] = name
        if variant["schedule"] != "sequential":
            continue
        settings = {**train, **variant["train"]}
        for earlier, owner in owners.items():
            other = variants[earlier]
            if earlier == name or owner != earlier or other["schedule"] != "sequential":
                continue
            if other["labels"] != variant["labels"]:
                continue
            theirs = {**train, **other["train"]}
            free = set(FIRST_STAGE_FREE_KEYS)
            if int(settings.get("replay_capacity", 1)) == 0:
                free.add("replay_capacity")
            mine = {k: v for k, v in settings.items() if k not in free}
            if mine == {k: v for k, v in theirs.items() if k not in free}:
                owners[name] = earlier
                break
    return owners


def _check_modalities(where: str, modalities: Any) -> None:
    if not isinstance(modalities, tuple) or len(modalities) != 2:
        raise InputError(
            f"{where}.modalities: expected exactly two folder names (A, B), got {modalities!r}"
        )
    for name in modalities:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise InputError(
                f"{where}.modalities: {name!r} is not a valid folder name (pattern {NAME_PATTERN.pattern})"
            )
        if name == GROUND_TRUTH_FOLDER:
            raise InputError(f"{where}.modalities: {name!r} is reserved for the ground truth")
    if modalities[0] == modalities[1]:
        raise InputError(f"{where}.modalities: A and B are the same folder {modalities[0]!r}")


def _check_relative_folder(where: str, value: Any, allow_empty: bool) -> None:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise InputError(f"{where}: expected a folder name, got {value!r}")
    if not value:
        return
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if value.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", value):
        raise InputError(f"{where}: {value!r} must be a relative folder without '..'")


def dataset_specs(config: Mapping[str, Any]) -> dict[str, DatasetSpec]:
    """All datasets of a configuration as :class:`DatasetSpec`, after :func:`resolve_datasets`."""
    return {name: DatasetSpec.from_dict(name, d) for name, d in resolve_datasets(config).items()}


def resolve_datasets(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The datasets a configuration asks for, each with its keys in sorted order (so that
    reordering keys in a config file does not look like a change of parameters to Snakemake).

    Without ``data_root`` this is the ``datasets`` section. With it, the datasets are discovered
    instead: every folder ``<data_root>/<task>/<dataset>/`` with ``task`` in :data:`TASKS` whose
    ``"<task>/<dataset>"`` matches one of the ``data_root_include`` globs becomes a ``dir`` dataset
    named ``"<task>_<dataset>"`` (characters outside the name pattern replaced by ``_``). Its two
    subfolders are the modalities, ordered A, B by the task's convention (ivf ``ir`` before
    ``vi``/``visible``, mif ``mri`` before ``ct``/``pet``/``spect``, mef ``under`` before ``over``,
    mff ``near`` before ``far``; other names alphabetically); a ``gt`` subfolder is the ground truth.

    Args:
        config: the workflow configuration (validated or not).

    Returns:
        Dataset dictionaries by name, in the shape of the schema's ``$defs/dataset``.

    Raises:
        InputError: ``data_root`` is not a folder; nothing under it matches; an include pattern
            matches nothing; a dataset folder does not hold exactly two modality folders; two
            folders give the same dataset name.
    """
    datasets = {name: sorted_keys(d) for name, d in _resolve_datasets(config).items()}
    for name, d in datasets.items():
        DatasetSpec.from_dict(name, d)  # every check the job would make, made now
    return datasets


def sorted_keys(value: Any) -> Any:
    """A copy of nested mappings with their keys in sorted order."""
    if isinstance(value, Mapping):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    return value


def _resolve_datasets(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    data_root = config.get("data_root")
    if not data_root:
        return {name: dict(d) for name, d in (config.get("datasets") or {}).items()}
    include = config.get("data_root_include") or ["*/*"]
    if isinstance(include, str):
        include = [include]
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise InputError(f"data_root {str(root)!r}: no such folder")

    candidates = [
        task_dir / name
        for task in TASKS
        if (task_dir := root / task).is_dir()
        for name in sorted(_visible_subfolders(task_dir), key=natural_key)
    ]
    keys = [f"{folder.parent.name}/{folder.name}" for folder in candidates]
    if not candidates:
        raise InputError(
            f"data_root {str(root)!r}: no datasets found; expected <task>/<dataset>/<modality>/<pair>.<ext> "
            f"with task one of {', '.join(TASKS)}"
        )
    for pattern in include:
        if not any(fnmatch.fnmatchcase(key, pattern) for key in keys):
            raise InputError(
                f"data_root_include: pattern {pattern!r} matches no dataset under {str(root)!r} "
                f"(found: {', '.join(keys)})"
            )

    datasets: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    for folder, key in zip(candidates, keys, strict=True):
        if not any(fnmatch.fnmatchcase(key, pattern) for pattern in include):
            continue
        task = folder.parent.name
        name = _sanitize_name(f"{task}_{folder.name}")
        if name in datasets:
            raise InputError(
                f"{folder}: dataset name {name!r} is also used by {origin[name]}; rename one folder"
            )
        subfolders = _visible_subfolders(folder)
        ground_truth = next((s for s in subfolders if s.lower() == GROUND_TRUTH_FOLDER), None)
        modalities = [s for s in subfolders if s != ground_truth]
        if len(modalities) != 2:
            raise InputError(
                f"{folder}: expected exactly two modality folders (plus an optional '{GROUND_TRUTH_FOLDER}'), "
                f"found {len(modalities)}: {', '.join(sorted(modalities)) or 'none'}"
            )
        for modality in modalities:
            if not NAME_PATTERN.match(modality):
                raise InputError(
                    f"{folder / modality}: modality folder names may use letters, digits, '_' and '-' only"
                )
        datasets[name] = {
            "task": task,
            "modalities": order_modalities(task, modalities),
            "source": "dir",
            "path": str(folder),
            "ground_truth": ground_truth,
        }
        origin[name] = str(folder)
    return datasets


def order_modalities(task: str, names: Sequence[str]) -> list[str]:
    """Order two modality folder names as A, B by the task's convention (see :func:`resolve_datasets`)."""
    first, second = _MODALITY_ORDER.get(task, ((), ()))

    def rank(name: str) -> tuple[int, str, str]:
        low = name.lower()
        return (0 if low in first else 2 if low in second else 1, low, name)

    return sorted(names, key=rank)


def _visible_subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _sanitize_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    return cleaned if NAME_PATTERN.match(cleaned) else f"d{cleaned}"


def config_sha256(config: Mapping[str, Any]) -> str:
    """sha256 (hex) of the configuration as canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(
        config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(
        f"config value {value!r} of type {type(value).__name__} is not JSON-serializable"
    )
