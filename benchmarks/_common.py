"""Helpers shared by the benchmark scripts: the machine description, timing, JSON output.

Imports only the standard library and numpy, so every script can print the machine line even
where fusionfm's heavier dependencies are missing.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SYNTHETIC_CASES: dict[str, tuple[str, tuple[str, str]]] = {
    "ivf": ("ivf", ("ir", "vi")),
    "mif-ct": ("mif", ("mri", "ct")),
    "mif-pet": ("mif", ("mri", "pet")),
    "mef": ("mef", ("under", "over")),
    "mff": ("mff", ("near", "far")),
}
"""The generated pair layouts the benchmarks time: case label -> (task, modalities)."""


def machine_info() -> dict[str, Any]:
    """CPU model, usable cores, load average, library versions and, when CUDA is there, the GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": cores,
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for module, key in (("scipy", "scipy"), ("cv2", "opencv"), ("torch", "torch")):
        try:
            info[key] = __import__(module).__version__
        except ImportError:
            pass
    if "torch" in info:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
            info["cuda"] = torch.version.cuda
    return info


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line for the top of a benchmark's output."""
    info = info or machine_info()
    versions = ", ".join(
        f"{key} {info[key]}"
        for key in ("python", "numpy", "scipy", "opencv", "torch")
        if key in info
    )
    line = (
        f"machine: {info['cpu']}, {info['cores']} cores usable, "
        f"load average {info['load_average_1min']} at start; {versions}"
    )
    if "gpu" in info:
        line += f"; GPU {info['gpu']} (CUDA {info['cuda']})"
    return line


def time_ms(
    fn: Callable[[], object],
    repeats: int,
    warmup: int = 0,
    sync: Callable[[], None] | None = None,
) -> tuple[list[float], object]:
    """Wall times of ``repeats`` calls of ``fn()`` in ms after ``warmup`` untimed calls, and the
    last result. ``sync`` (e.g. ``torch.cuda.synchronize``) runs before every clock read."""
    result = None
    for _ in range(warmup):
        result = fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        result = fn()
        if sync:
            sync()
        times.append((time.perf_counter() - began) * 1e3)
    return times, result


def median_ms(
    fn: Callable[[], object],
    repeats: int,
    warmup: int = 0,
    sync: Callable[[], None] | None = None,
) -> tuple[float, object]:
    """Median of :func:`time_ms`, and the last result."""
    times, result = time_ms(fn, repeats, warmup, sync)
    return statistics.median(times), result


def median_wall_cpu_ms(
    fn: Callable[[], object], repeats: int, warmup: int = 0
) -> tuple[float, float, object]:
    """Median wall time and median CPU time of this process (all its threads) of ``fn()`` in
    ms, and the last result. On a shared machine the CPU time is the steadier of the two: it
    leaves out the time the process waited for a core."""
    result = None
    for _ in range(warmup):
        result = fn()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        cpus.append((time.process_time() - cpu) * 1e3)
        walls.append((time.perf_counter() - wall) * 1e3)
    return statistics.median(walls), statistics.median(cpus), result


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"256x256,768x576"`` -> ``[(256, 256), (576, 768)]`` as (height, width); WxH order."""
    sizes = []
    for item in text.split(","):
        width, height = (int(v) for v in item.lower().strip().split("x"))
        sizes.append((height, width))
    return sizes


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike[str] | None, payload: dict[str, Any]) -> None:
    """Write ``payload`` as strict JSON (NaN and infinities as null) when ``path`` is given."""
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(payload), indent=2) + "\n")
    print(f"\nresults written to {path}")
