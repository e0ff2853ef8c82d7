"""The teacher registry: every way of turning a source pair into a fused image, by name.

A :class:`Teacher` is a name, the tasks it serves, a ``fuse(a, b, task, **params)`` callable, a
citation and default parameters. The built-in classical methods register themselves when
:mod:`fusionfm.teacher` is imported (most of them are luminance kernels turned into teachers by
:func:`luminance_fuse`); other kinds of teachers (precomputed folders, external commands,
exported models) build a :class:`Teacher` around their own ``fuse`` and call :func:`register`
the same way, leaving ``builtin`` false.

:func:`run_teacher` is the one entry point the pipeline calls: it checks the task, the sources
and the parameters, so each ``fuse`` can assume valid input.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from fusionfm.config import NAME_PATTERN, TASKS
from fusionfm.io import InputError
from fusionfm.teacher.color import fuse_color

FuseFunction = Callable[..., np.ndarray]
"""``fuse(a, b, task, **params) -> fused``: ``a``, ``b`` ``uint8`` ``(H, W)`` or ``(H, W, 3)``;
``fused`` ``uint8`` with the same ``H, W`` (gray or RGB per the color rule of
:func:`fusionfm.teacher.color.fuse_color`)."""

LuminanceKernel = Callable[..., np.ndarray]
"""``kernel(y_a, y_b, *, **params) -> y_fused``: float64 ``(H, W)`` luminance images on the 0-255
scale; the parameters are keyword-only, with the method's defaults."""


@dataclass(frozen=True)
class Teacher:
    """One fusion method usable as a prior.

    Attributes:
        name: registry key, also a path component (``results/teachers/<dataset>/<name>/``);
            letters, digits, ``_`` and ``-``, e.g. ``"laplacian_pyramid"``.
        tasks: the tasks it serves, a subset of ``{"ivf", "mif", "mef", "mff"}``.
        fuse: ``fuse(a, b, task, **params)`` returning a ``uint8`` image of the sources' ``H, W``.
        reference: citation of the method (paper, or the origin of precomputed results).
        defaults: default parameters (the paper's settings for built-in methods); the only
            parameter names :func:`run_teacher` accepts. Stored read-only.
        builtin: true for the classical methods implemented in this package.
    """

    name: str
    tasks: frozenset[str]
    fuse: FuseFunction
    reference: str
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    builtin: bool = False

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"teacher name {self.name!r} must start with a letter or digit and contain only "
                "letters, digits, '_' and '-'"
            )
        tasks = frozenset(self.tasks)
        unknown = sorted(tasks - set(TASKS))
        if not tasks or unknown:
            raise ValueError(
                f"teacher {self.name!r}: tasks must be a non-empty subset of {', '.join(TASKS)}"
                + (f", got unknown {', '.join(unknown)}" if unknown else "")
            )
        object.__setattr__(self, "tasks", tasks)
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))


_REGISTRY: dict[str, Teacher] = {}


def register(teacher: Teacher, *, replace: bool = False) -> Teacher:
    """Add ``teacher`` to the registry under its name.

    Args:
        teacher: the teacher.
        replace: allow replacing a teacher already registered under the same name (for
            re-registering external teachers); otherwise a name clash is an error.

    Returns:
        ``teacher`` (so ``register`` can wrap a definition).

    Raises:
        ValueError: the name is taken and ``replace`` is false.
    """
    if teacher.name in _REGISTRY and not replace:
        raise ValueError(f"a teacher named {teacher.name!r} is already registered")
    _REGISTRY[teacher.name] = teacher
    return teacher


def get_teacher(name: str) -> Teacher:
    """The registered teacher called ``name``.

    Raises:
        InputError: no such teacher; the message lists the known names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise InputError(f"unknown teacher {name!r}; known teachers: {known}") from None


def check_teacher_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` as a dict, after checking that the teacher ``name`` accepts every key.

    Raises:
        InputError: no such teacher, or an unknown parameter (the message lists the accepted ones).
    """
    teacher = get_teacher(name)
    params = dict(params or {})
    unknown = sorted(set(params) - set(teacher.defaults))
    if unknown:
        accepted = ", ".join(teacher.defaults) or "none"
        raise InputError(
            f"teacher {name!r}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {accepted}"
        )
    return params


def all_teachers(task: str | None = None) -> list[Teacher]:
    """Every registered teacher (built-in and external), in registration order.

    Args:
        task: if given, only the teachers that serve it.

    Raises:
        InputError: unknown task.
    """
    if task is not None:
        _check_task(task)
    return [t for t in _REGISTRY.values() if task is None or task in t.tasks]


def builtin_teachers(task: str | None = None) -> list[Teacher]:
    """The built-in classical teachers, in registration order.

    Args:
        task: if given, only the teachers that serve it.

    Raises:
        InputError: unknown task.
    """
    return [t for t in all_teachers(task) if t.builtin]


def run_teacher(
    name: str, a: np.ndarray, b: np.ndarray, task: str, params: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Fuse one source pair with the teacher called ``name``.

    Args:
        name: a registered teacher.
        a: source A, ``uint8``, ``(H, W)`` or ``(H, W, 3)`` (``(H, W, 1)`` is taken as gray).
        b: source B, ``uint8``, same ``H, W`` as ``a``, gray or RGB independently of ``a``.
        task: the pair's task; the teacher must serve it.
        params: overrides of the teacher's :attr:`Teacher.defaults`.

    Returns:
        ``uint8``, ``(H, W)`` or ``(H, W, 3)``.

    Raises:
        InputError: unknown teacher or task, a task the teacher does not serve, sources that are
            not ``uint8`` gray/RGB images or differ in size, an unknown parameter, or a teacher
            whose output does not match the sources' size.
    """
    teacher = get_teacher(name)
    _check_task(task)
    if task not in teacher.tasks:
        served = ", ".join(t for t in TASKS if t in teacher.tasks)
        raise InputError(f"teacher {name!r} does not serve task {task!r} (it serves: {served})")
    a = _as_source(a, "a")
    b = _as_source(b, "b")
    if a.shape[:2] != b.shape[:2]:
        raise InputError(
            f"teacher {name!r}: sources differ in size, a is {_size(a)} and b is {_size(b)} (HxW)"
        )
    params = check_teacher_params(name, params)
    fused = np.asarray(teacher.fuse(a, b, task, **{**teacher.defaults, **params}))
    if fused.dtype != np.uint8 or fused.shape[:2] != a.shape[:2] or fused.ndim not in (2, 3):
        raise InputError(
            f"teacher {name!r} returned a {fused.dtype} image of shape {fused.shape}; "
            f"expected uint8 of size {_size(a)}"
        )
    return fused


def signature_defaults(fuse: FuseFunction) -> dict[str, Any]:
    """The keyword-only parameters of ``fuse`` with their defaults, in declaration order.

    Built-in teachers declare their paper settings once, as keyword defaults of their ``fuse``
    function; this turns them into :attr:`Teacher.defaults`.
    """
    return {
        p.name: p.default
        for p in inspect.signature(fuse).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }


def luminance_fuse(kernel: LuminanceKernel) -> FuseFunction:
    """The teacher ``fuse(a, b, task, **params)`` of a luminance kernel.

    ``fuse`` fuses the sources' luminance with ``functools.partial(kernel, **params)`` and
    recombines the chroma by the color rule of :func:`fusionfm.teacher.color.fuse_color`,
    returning ``uint8``. It is named after the kernel without its ``_gray`` suffix
    (``fuse_dwt_gray`` -> ``fuse_dwt``), in the kernel's module, and its signature is
    ``(a, b, task, *, <the kernel's keyword-only parameters>)``, so :func:`signature_defaults`
    of it gives the kernel's defaults.

    Args:
        kernel: ``kernel(y_a, y_b, *, **params)``, see :data:`LuminanceKernel`.
    """

    def fuse(a: np.ndarray, b: np.ndarray, task: str, **params: Any) -> np.ndarray:
        return fuse_color(a, b, task, functools.partial(kernel, **params))

    own = inspect.signature(fuse)
    sources = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    keyword_only = [
        p
        for p in inspect.signature(kernel).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    fuse.__name__ = fuse.__qualname__ = kernel.__name__.removesuffix("_gray")
    fuse.__module__ = kernel.__module__
    fuse.__doc__ = (
        f"Teacher form of :func:`{kernel.__name__}`: fuses the luminance of ``a`` and ``b`` with "
        "it, recombines the chroma by ``task``'s color rule "
        "(:func:`fusionfm.teacher.color.fuse_color`) and returns ``uint8`` ``(H, W)`` or "
        "``(H, W, 3)``."
    )
    fuse.__signature__ = own.replace(parameters=[*sources, *keyword_only])  # type: ignore[attr-defined]
    return fuse


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")


def _as_source(image: np.ndarray, label: str) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise InputError(f"source {label}: expected a (H, W) or (H, W, 3) image, got {array.shape}")
    if array.dtype != np.uint8:
        raise InputError(f"source {label}: expected uint8 pixels, got {array.dtype}")
    if min(array.shape[:2]) < 1:
        raise InputError(f"source {label}: empty image of shape {array.shape}")
    return array


def _size(image: np.ndarray) -> str:
    return f"{image.shape[0]}x{image.shape[1]}"
