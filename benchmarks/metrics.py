"""Time each fusion metric and the whole suite on one 768x576 triple.

Usage: ``python benchmarks/metrics.py [--repeats 5] [--size 768x576]``. Uses a real TNO pair
from ../shared/data when that folder exists (its 768x576 pairs), otherwise a generated triple
of the same size. Prints medians over the repeats and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from fusionfm.color import luma
from fusionfm.io import read_image
from fusionfm.metrics import compute_metrics
from fusionfm.metrics.suite import GROUND_TRUTH_METRICS, NO_REFERENCE_METRICS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_triple(width: int, height: int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """A (fused, a, b) gray triple of the requested size: real if available, else generated."""
    for ir in sorted((SHARED / "ivf" / "TNO" / "ir").glob("*.png")):
        a = luma(read_image(ir))
        if a.shape == (height, width):
            b = luma(read_image(ir.parents[1] / "vi" / ir.name))
            return f"TNO {ir.stem}, average fusion", np.round((a + b) / 2), a, b
    rng = np.random.default_rng(0)
    from scipy import ndimage

    a, b = (
        np.clip(np.round(ndimage.gaussian_filter(rng.normal(size=(height, width)), 3) * 600 + 120), 0, 255)
        for _ in range(2)
    )
    return "generated", np.round((a + b) / 2), a, b


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", default="768x576", help="WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    source, fused, a, b = load_triple(width, height)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"triple: {source}, {width}x{height}, median of {args.repeats} runs\n")
    print(f"{'metric':<10}{'ms':>10}")
    for name, kernel in NO_REFERENCE_METRICS.items():
        print(f"{name:<10}{median_ms(lambda k=kernel: k(fused, a, b), args.repeats):>10.2f}")
    for name, kernel in GROUND_TRUTH_METRICS.items():
        print(f"{name:<10}{median_ms(lambda k=kernel: k(fused, a), args.repeats):>10.2f}")
    total = median_ms(lambda: compute_metrics(fused, a, b, ground_truth=a), args.repeats)
    print(f"{'suite':<10}{total:>10.2f}   (all 14 metrics, input validation included)")


if __name__ == "__main__":
    main()
