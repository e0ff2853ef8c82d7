"""External teachers: published methods the project does not implement itself.

Three kinds, each built from one config entry (a mapping) by :func:`build_external_teacher`:

``precomputed``
    ``path``: a folder of fused results ``<pair>.<ext>`` (png, jpg, jpeg, bmp, tif, tiff; gray or
    RGB) of **one** method, e.g. ``priors/ivf/VIFB/SwinFusion``. The result of a pair is its file.
``command``
    ``argv``: an argument list such as ``["python", "fuse.py", "{a}", "{b}", "{out}"]``, run once
    per pair without a shell. Placeholders: ``{a}``, ``{b}`` (the sources, written as PNG to a
    temporary folder), ``{out}`` (the PNG the command must write there), ``{task}``, ``{pair}``;
    ``{{``/``}}`` are literal braces. Options: ``timeout`` (seconds, default 120), ``cwd`` (working
    folder of the command; default the current one).
``torchscript``
    ``path``: an exported TorchScript file (``torch.jit.save``) with the contract
    ``forward(y_a, y_b) -> y``: luminance tensors of shape ``(1, 1, H, W)`` in ``[0, 1]`` in,
    the fused luminance of the same shape in ``[0, 1]`` out. Option: ``device`` (``"cpu"``).

Keys common to all kinds: ``tasks`` (the tasks served; default all four), ``datasets`` (only
these workflow datasets; default all of the served tasks, see
:func:`fusionfm.teacher.stage.teacher_names_for`), ``on_missing`` (``"error"``, the default, or
``"skip"``: a missing or mis-sized precomputed result, or a command that writes nothing, is
recorded as a skipped pair instead of failing the job), ``reference`` (citation of the method).

**Calling convention.** Precomputed and command teachers need the pair id, so every external
teacher's ``fuse`` is ``fuse(a, b, task, *, pair)`` (it takes no other parameters), whereas the
built-in teachers' ``fuse(a, b, task, **params)`` never sees it. The teacher stage tells them apart
by :attr:`Teacher.builtin <fusionfm.teacher.registry.Teacher.builtin>`: built-ins go through
:func:`fusionfm.teacher.registry.run_teacher`, every other teacher is called with ``pair=``. A
pair an external teacher skips raises :class:`SkippedPair`, which the stage records as
``status == "skipped"``.

**Color.** Every result follows the color rule of :func:`fusionfm.teacher.color.fuse_color`, so
that all teachers of a dataset are comparable: a gray result (including RGB with three equal
channels) of a pair with a color source is taken as the fused luminance and recombined with the
sources' chroma; a TorchScript model only ever produces luminance, so the rule always applies;
an RGB result is kept as it is.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Formatter
from typing import Any, NoReturn

import numpy as np

from fusionfm.config import TASKS, _sanitize_name
from fusionfm.io import (
    IMAGE_EXTENSIONS,
    InputError,
    image_files_by_stem,
    natural_key,
    read_image,
    write_image,
)
from fusionfm.teacher.color import fuse_color
from fusionfm.teacher.registry import Teacher

KINDS: tuple[str, ...] = ("precomputed", "command", "torchscript")
"""The kinds of external teachers."""

ON_MISSING: tuple[str, ...] = ("error", "skip")
"""What to do when an external teacher has no usable result for a pair."""

DEFAULT_COMMAND_TIMEOUT_S = 120.0
"""Default per-pair time limit of a ``command`` teacher, in seconds."""

COMMAND_PLACEHOLDERS: tuple[str, ...] = ("a", "b", "out", "task", "pair")
"""The placeholders a ``command`` teacher's ``argv`` may use."""

_COMMON_KEYS: tuple[str, ...] = ("kind", "tasks", "datasets", "on_missing", "reference")
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "precomputed": ("path",),
    "command": ("argv", "timeout", "cwd"),
    "torchscript": ("path", "device"),
}
_STDERR_TAIL_CHARS = 2000


class SkippedPair(Exception):  # noqa: N818  (a signal, not an error)
    """An external teacher has no result for a pair and is configured to skip it.

    The message says why; the teacher stage records it in the timing table.
    """


# --------------------------------------------------------------------------------------------
# Building teachers from config entries
# --------------------------------------------------------------------------------------------


def check_external_spec(name: str, spec: Mapping[str, Any]) -> None:
    """Check one external config entry without running it (the workflow calls this when it
    plans the jobs, so a bad entry fails before any job, naming the teacher and the key).

    Raises:
        InputError: an unknown kind, a key that does not belong to the kind, an unknown task, a
            missing or invalid value, or a ``path``/``cwd`` that does not exist.
    """
    _checked_options(name, spec)


def _checked_options(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The validated options of an external entry, with the defaults of its kind filled in:
    ``kind``, ``tasks``, ``on_missing``, ``reference`` (or None), and ``folder`` (precomputed),
    ``argv``/``timeout``/``cwd`` (command) or ``model``/``device`` (torchscript)."""
    where = f"external teacher {name!r}"
    if not isinstance(spec, Mapping):
        raise InputError(f"{where}: expected a mapping with a 'kind', got {spec!r}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise InputError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    allowed = _COMMON_KEYS + _KIND_KEYS[kind]
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise InputError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} for kind {kind!r}; "
            f"allowed: {', '.join(allowed)}"
        )
    options: dict[str, Any] = {"kind": kind, "tasks": external_tasks(name, spec)}
    options["on_missing"] = spec.get("on_missing", "error")
    if options["on_missing"] not in ON_MISSING:
        raise InputError(
            f"{where}.on_missing: expected 'error' or 'skip', got {options['on_missing']!r}"
        )
    _check_string_list(f"{where}.datasets", spec.get("datasets"), allow_none=True)
    options["reference"] = spec.get("reference")
    if options["reference"] is not None and not isinstance(options["reference"], str):
        raise InputError(f"{where}.reference: expected a string, got {options['reference']!r}")
    if kind == "precomputed":
        options["folder"] = _existing_path(where, spec, "path", want_dir=True)
    elif kind == "command":
        options["argv"] = _command_argv(where, spec.get("argv"))
        options["timeout"] = _timeout(where, spec.get("timeout", DEFAULT_COMMAND_TIMEOUT_S))
        cwd = spec.get("cwd")
        options["cwd"] = None if cwd is None else str(_existing_path(where, spec, "cwd", True))
    else:
        options["model"] = _existing_path(where, spec, "path", want_dir=False)
        options["device"] = spec.get("device", "cpu")
        if not isinstance(options["device"], str) or not options["device"]:
            raise InputError(
                f"{where}.device: expected a torch device name, got {options['device']!r}"
            )
    return options


def build_external_teacher(name: str, spec: Mapping[str, Any]) -> Teacher:
    """Build the :class:`~fusionfm.teacher.registry.Teacher` of one external config entry.

    The teacher is not registered (call :func:`fusionfm.teacher.registry.register` for that); its
    ``builtin`` is false and its ``fuse`` is ``fuse(a, b, task, *, pair)``, a picklable object, so
    it can be sent to worker processes. Only the keys of the entry's kind are accepted; options
    left out take their kind's defaults (``timeout`` 120 s, ``device`` ``cpu``).

    Args:
        name: teacher name (letters, digits, ``_``, ``-``); also names it in error messages.
        spec: the entry: ``kind`` plus the keys of that kind (see the module docstring).

    Returns:
        The teacher.

    Raises:
        InputError: see :func:`check_external_spec`; also (torchscript) a file that is not a
            loadable TorchScript model.
    """
    where = f"external teacher {name!r}"
    options = _checked_options(name, spec)
    skip = options["on_missing"] == "skip"
    fuse: PrecomputedFuse | CommandFuse | TorchScriptFuse
    if options["kind"] == "precomputed":
        fuse = PrecomputedFuse(options["folder"], skip_missing=skip)
        reference = f"precomputed results in {options['folder']}"
    elif options["kind"] == "command":
        argv = options["argv"]
        fuse = CommandFuse(argv, options["timeout"], options["cwd"], skip_missing=skip, name=name)
        reference = f"external command {' '.join(argv)}"
    else:
        fuse = TorchScriptFuse(options["model"], options["device"])
        fuse.load()  # fail now, with the teacher's name, not on the first pair
        reference = f"TorchScript model {options['model']}"
    reference = options["reference"] or reference
    try:
        return Teacher(
            name=name, tasks=options["tasks"], fuse=fuse, reference=reference, defaults={}
        )
    except ValueError as err:
        raise InputError(f"{where}: {err}") from err


def external_tasks(name: str, spec: Mapping[str, Any]) -> frozenset[str]:
    """The tasks an external entry serves (its ``tasks``, default all of :data:`TASKS`).

    Raises:
        InputError: ``tasks`` is not a non-empty list of known tasks.
    """
    where = f"external teacher {name!r}.tasks"
    tasks = spec.get("tasks")
    if tasks is None:
        return frozenset(TASKS)
    _check_string_list(where, tasks, allow_none=False)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise InputError(
            f"{where}: expected a non-empty list of {', '.join(TASKS)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    return frozenset(tasks)


def _check_string_list(where: str, value: Any, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InputError(f"{where}: expected a list of names, got {value!r}")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise InputError(f"{where}: expected names (strings), got {bad!r}")


def _existing_path(where: str, spec: Mapping[str, Any], key: str, want_dir: bool) -> Path:
    value = spec.get(key)
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise InputError(f"{where}.{key}: expected a path, got {value!r}")
    path = Path(value).expanduser()
    if want_dir and not path.is_dir():
        raise InputError(f"{where}.{key}: {path}: no such folder")
    if not want_dir and not path.is_file():
        raise InputError(f"{where}.{key}: {path}: no such file")
    return path


def _command_argv(where: str, argv: Any) -> tuple[str, ...]:
    if isinstance(argv, str | bytes) or not isinstance(argv, Sequence) or not argv:
        raise InputError(
            f"{where}.argv: expected a non-empty list of arguments (no shell), got {argv!r}"
        )
    for item in argv:
        if not isinstance(item, str):
            raise InputError(f"{where}.argv: every argument must be a string, got {item!r}")
        try:
            fields = [f for _, f, _, _ in Formatter().parse(item) if f is not None]
        except ValueError as err:
            raise InputError(
                f"{where}.argv: argument {item!r}: {err} (write {{{{ for a brace)"
            ) from err
        unknown = [f for f in fields if f not in COMMAND_PLACEHOLDERS]
        if unknown:
            raise InputError(
                f"{where}.argv: argument {item!r} uses unknown placeholder(s) "
                f"{', '.join('{' + f + '}' for f in unknown)}; allowed: "
                f"{', '.join('{' + p + '}' for p in COMMAND_PLACEHOLDERS)}"
            )
    if not any("{out}" in item for item in argv):
        raise InputError(f"{where}.argv: no argument contains {{out}}, the output file")
    return tuple(argv)


def _timeout(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{where}.timeout: expected a positive number of seconds, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------
# The fuse callables (picklable, so that the stage can send them to worker processes)
# --------------------------------------------------------------------------------------------


class PrecomputedFuse:
    """``fuse(a, b, task, *, pair)`` of a ``precomputed`` teacher: the pair's file in a folder.

    Args:
        folder: the method's folder of ``<pair>.<ext>`` results.
        skip_missing: raise :class:`SkippedPair` instead of :class:`InputError` for a missing or
            mis-sized result.
    """

    def __init__(self, folder: Path, skip_missing: bool = False) -> None:
        self.folder = Path(folder)
        self.skip_missing = skip_missing
        self._files: dict[str, Path] | None = None

    def __call__(self, a: np.ndarray, b: np.ndarray, task: str, *, pair: str) -> np.ndarray:
        """The precomputed result of ``pair``, color rule applied (see the module docstring).

        Raises:
            InputError: no result for the pair, or one of another size than the sources.
            SkippedPair: the same, when skipping is configured.
        """
        if self._files is None:
            self._files = image_files_by_stem(self.folder)
        path = self._files.get(pair)
        if path is None:
            self._fail(
                f"{self.folder}: no result for pair {pair!r} "
                f"(expected {pair}.<ext>, ext one of {', '.join(e[1:] for e in IMAGE_EXTENSIONS)})"
            )
        result = read_image(path)
        if result.shape[:2] != a.shape[:2]:
            self._fail(
                f"{path}: result is {_size(result)} but the sources of pair {pair!r} are "
                f"{_size(a)} (width x height)"
            )
        return apply_color_rule(result, a, b, task)

    def _fail(self, message: str) -> NoReturn:
        if self.skip_missing:
            raise SkippedPair(message)
        raise InputError(message)


class CommandFuse:
    """``fuse(a, b, task, *, pair)`` of a ``command`` teacher: run a program on the pair.

    The sources are written as ``a.png`` and ``b.png`` to a fresh temporary folder, the command
    must write ``out.png`` there. It runs in its own process group, which is killed on timeout.

    Args:
        argv: argument template (placeholders ``{a} {b} {out} {task} {pair}``).
        timeout: seconds per pair.
        cwd: working folder of the command, or None for the current one.
        skip_missing: raise :class:`SkippedPair` instead of :class:`InputError` when the command
            succeeds but writes no output.
        name: the teacher's name, which every error message starts with.
    """

    def __init__(
        self,
        argv: Sequence[str],
        timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
        cwd: str | None = None,
        skip_missing: bool = False,
        name: str = "command",
    ) -> None:
        self.argv = tuple(argv)
        self.timeout = float(timeout)
        self.cwd = cwd
        self.skip_missing = skip_missing
        self.name = name

    def __call__(self, a: np.ndarray, b: np.ndarray, task: str, *, pair: str) -> np.ndarray:
        """Run the command on one pair and read its output, color rule applied.

        Raises:
            InputError: the command cannot be started, exits non-zero, times out, writes no
                output (unless skipping), or writes an unreadable or mis-sized image.
            SkippedPair: no output, when skipping is configured.
        """
        with tempfile.TemporaryDirectory(prefix="fusionfm-teacher-") as tmp:
            folder = Path(tmp)
            values = {
                "a": str(folder / "a.png"),
                "b": str(folder / "b.png"),
                "out": str(folder / "out.png"),
                "task": task,
                "pair": pair,
            }
            write_image(values["a"], a)
            write_image(values["b"], b)
            argv = [item.format(**values) for item in self.argv]
            shown = f"external teacher {self.name!r}: command {' '.join(argv)!r}"
            returncode, stderr = _run_command(argv, self.timeout, self.cwd, shown, pair)
            if returncode != 0:
                raise InputError(
                    f"{shown} failed on pair {pair!r} with exit code {returncode}; "
                    f"stderr (tail):\n{_tail(stderr)}"
                )
            out = Path(values["out"])
            if not out.is_file():
                message = f"{shown} wrote no output to {out} for pair {pair!r}"
                if self.skip_missing:
                    raise SkippedPair(message)
                raise InputError(message)
            try:
                result = read_image(out)
            except InputError as err:
                raise InputError(f"{shown}, pair {pair!r}: {err}") from err
        if result.shape[:2] != a.shape[:2]:
            raise InputError(
                f"{shown} wrote a {_size(result)} image for pair {pair!r}, whose sources "
                f"are {_size(a)} (width x height)"
            )
        return apply_color_rule(result, a, b, task)


def _run_command(
    argv: list[str], timeout: float, cwd: str | None, shown: str, pair: str
) -> tuple[int, str]:
    """Run ``argv`` (no shell) with a time limit; kill its whole process group on timeout.

    ``shown`` (teacher and command) and ``pair`` name the run in error messages.

    Returns:
        The exit code and the decoded stderr.
    """
    try:
        process = subprocess.Popen(  # noqa: S603  (a list, never a shell)
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            shell=False,
            start_new_session=True,
        )
    except OSError as err:
        raise InputError(f"{shown}: cannot start {argv[0]!r}: {err}") from err
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise InputError(
            f"{shown} timed out after {timeout:g} s on pair {pair!r} and was killed; "
            "raise the teacher's timeout if it is just slow"
        ) from None
    except BaseException:  # KeyboardInterrupt and the like: never leave the child running
        _kill_group(process)
        process.communicate()
        raise
    return process.returncode, stderr.decode("utf-8", errors="replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.kill()


def _tail(text: str) -> str:
    text = text.rstrip()
    if not text:
        return "(empty)"
    return text if len(text) <= _STDERR_TAIL_CHARS else "..." + text[-_STDERR_TAIL_CHARS:]


class TorchScriptFuse:
    """``fuse(a, b, task, *, pair)`` of a ``torchscript`` teacher: an exported luminance model.

    The model is loaded on first use in each process (TorchScript modules are not pickled when the
    stage sends this object to a worker).

    Args:
        path: the TorchScript file.
        device: torch device name, ``"cpu"`` by default.
    """

    def __init__(self, path: Path, device: str = "cpu") -> None:
        self.path = Path(path)
        self.device = device
        self._module: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_module"] = None
        return state

    def load(self) -> Any:
        """Load (once) and return the TorchScript module, in eval mode on :attr:`device`.

        Raises:
            InputError: not a TorchScript file, or an unusable device.
        """
        if self._module is not None:
            return self._module
        import torch  # only this kind of teacher needs torch

        try:
            device = torch.device(self.device)
        except RuntimeError as err:
            raise InputError(f"{self.path}: bad device {self.device!r}: {err}") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(
                f"{self.path}: device {self.device!r} requested but CUDA is unavailable"
            )
        if not _looks_like_torchscript(self.path):
            raise InputError(
                f"{self.path}: not a TorchScript file (no code/ or constants.pkl in the archive); "
                "export the model with torch.jit.script or torch.jit.trace and torch.jit.save, "
                "not torch.save"
            )
        try:
            # torch.jit.load reads TorchScript code and tensors; it does not unpickle arbitrary
            # Python objects, so a foreign file cannot run code here.
            module = torch.jit.load(str(self.path), map_location=device)
        except Exception as err:  # torch raises RuntimeError and friends with long messages
            first_line = (
                str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            )
            raise InputError(
                f"{self.path}: not a loadable TorchScript model ({first_line}); export it with "
                "torch.jit.script or torch.jit.trace and torch.jit.save"
            ) from err
        module.eval()
        self._module = module
        return module

    def __call__(self, a: np.ndarray, b: np.ndarray, task: str, *, pair: str) -> np.ndarray:
        """Fuse the sources' luminance with the model; chroma by the color rule.

        Raises:
            InputError: the model fails or returns something other than a ``(1, 1, H, W)`` tensor.
        """
        return fuse_color(a, b, task, lambda y_a, y_b: self._fuse_luminance(y_a, y_b, pair))

    def _fuse_luminance(self, y_a: np.ndarray, y_b: np.ndarray, pair: str) -> np.ndarray:
        import torch

        module = self.load()
        device = torch.device(self.device)

        def tensor(y: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(y / 255.0, dtype=np.float32))[
                None, None
            ].to(device)

        try:
            with torch.inference_mode():
                out = module(tensor(y_a), tensor(y_b))
        except Exception as err:
            raise InputError(f"{self.path}: model failed on pair {pair!r}: {err}") from err
        expected = (1, 1, *y_a.shape)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(
                f"{self.path}: model returned {got} for pair {pair!r}; expected a tensor of shape "
                f"{expected} (fused luminance in [0, 1])"
            )
        fused = out.detach().to("cpu", torch.float64).numpy()[0, 0]
        if not np.isfinite(fused).all():
            raise InputError(
                f"{self.path}: model returned NaN or infinite values for pair {pair!r}"
            )
        return np.clip(fused, 0.0, 1.0) * 255.0


def _looks_like_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip holding ``<name>/code/`` and ``<name>/constants.pkl``;
    ``torch.save`` archives have neither (they hold ``data.pkl`` only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    has_code = any("/code/" in n for n in names)
    has_constants = any(n.endswith("/constants.pkl") for n in names)
    return has_code and has_constants


# --------------------------------------------------------------------------------------------
# Color rule for results that come as images
# --------------------------------------------------------------------------------------------


def apply_color_rule(result: np.ndarray, a: np.ndarray, b: np.ndarray, task: str) -> np.ndarray:
    """Make an external result follow the color rule of the built-in teachers.

    A gray result (or RGB with three equal channels) is the fused luminance: with a color source
    in the pair it is recombined with the sources' chroma by
    :func:`fusionfm.teacher.color.fuse_color`; with two gray sources it stays gray. An RGB result
    is returned unchanged.

    Args:
        result: ``uint8`` ``(H, W)`` or ``(H, W, 3)``.
        a: source A, same ``H, W``.
        b: source B, same ``H, W``.
        task: the pair's task (picks the chroma rule).

    Returns:
        ``uint8`` ``(H, W)`` or ``(H, W, 3)``.
    """
    if result.ndim == 3 and not _is_gray_rgb(result):
        return result
    gray = result if result.ndim == 2 else np.ascontiguousarray(result[..., 0])
    if a.ndim == 2 and b.ndim == 2:
        return gray
    y = gray.astype(np.float64)
    return fuse_color(a, b, task, lambda y_a, y_b: y)


def _is_gray_rgb(image: np.ndarray) -> bool:
    return bool(
        np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 0], image[..., 2])
    )


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


# --------------------------------------------------------------------------------------------
# Discovering precomputed results ("priors") for the workflow's datasets
# --------------------------------------------------------------------------------------------


def sanitize_teacher_name(name: str) -> str:
    """A method folder name as a teacher name: runs of characters outside ``[A-Za-z0-9_-]``
    become ``_``, and a name not starting with a letter or digit gets a ``t`` in front."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    return cleaned if re.match(r"^[A-Za-z0-9]", cleaned) else f"t{cleaned}"


def discover_priors(
    priors_root: str | os.PathLike[str], datasets: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Find the precomputed teachers of each workflow dataset in a priors folder.

    The folder is laid out as ``<root>/<task>/<dataset>/<method>/<pair>.<ext>``. A priors folder
    ``<task>/<folder>`` belongs to a workflow dataset when the dataset has that ``task`` and either
    its ``path`` ends in a folder called ``<folder>`` (datasets found under a ``data_root``) or its
    name is ``<task>_<folder>`` (sanitized like :func:`fusionfm.config.resolve_datasets` does).
    Each method folder holding at least one image becomes a ``precomputed`` teacher named after
    the folder (sanitized to ``[A-Za-z0-9_-]``).

    Args:
        priors_root: the priors folder.
        datasets: the workflow's resolved datasets (``name -> {"task", "path"?, ...}``).

    Returns:
        For every dataset of ``datasets`` (in order), ``{teacher_name: spec}`` in natural order of
        the method folders (empty where nothing matches). Each spec is
        ``{"kind": "precomputed", "path": <method folder>, "tasks": [task], "datasets": [name],
        "on_missing": "error", "reference": ...}``, ready for :func:`build_external_teacher`.

    Raises:
        InputError: ``priors_root`` is not a folder, or two method folders of one dataset give the
            same teacher name.
    """
    root = Path(priors_root).expanduser()
    if not root.is_dir():
        raise InputError(f"priors folder {str(root)!r}: no such folder")
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for name, spec in datasets.items():
        task = spec.get("task")
        found[name] = {}
        task_dir = root / str(task)
        if task not in TASKS or not task_dir.is_dir():
            continue
        path = spec.get("path")
        path_folder = Path(str(path)).expanduser().name if path else None
        for folder in sorted(_visible_dirs(task_dir), key=lambda p: natural_key(p.name)):
            if folder.name != path_folder and _sanitize_name(f"{task}_{folder.name}") != name:
                continue
            for method in sorted(_visible_dirs(folder), key=lambda p: natural_key(p.name)):
                if not image_files_by_stem(method):
                    continue
                teacher = sanitize_teacher_name(method.name)
                if teacher in found[name]:
                    raise InputError(
                        f"{method}: teacher name {teacher!r} of dataset {name!r} is also given by "
                        f"{found[name][teacher]['path']}; rename one folder"
                    )
                found[name][teacher] = {
                    "kind": "precomputed",
                    "path": str(method),
                    "tasks": [task],
                    "datasets": [name],
                    "on_missing": "error",
                    "reference": f"{method.name}: precomputed results in {method}",
                }
    return found


def _visible_dirs(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]


__all__ = [
    "COMMAND_PLACEHOLDERS",
    "DEFAULT_COMMAND_TIMEOUT_S",
    "KINDS",
    "ON_MISSING",
    "CommandFuse",
    "PrecomputedFuse",
    "SkippedPair",
    "TorchScriptFuse",
    "apply_color_rule",
    "build_external_teacher",
    "check_external_spec",
    "discover_priors",
    "external_tasks",
    "sanitize_teacher_name",
]
