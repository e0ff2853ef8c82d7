"""Metric suite timing: the vectorized suite against a straightforward reference.

For each image size (default 256x256 and 768x576) a triple (fused, A, B) and a ground truth are
taken (see below), and every metric of :mod:`fusionfm.metrics` is timed as the suite calls
it (``NO_REFERENCE_METRICS`` / ``GROUND_TRUTH_METRICS`` kernels on validated gray images), next to
a straightforward reference implementation of the same definitions written in this file:

* O(N) parts (histograms, means, sums, per-pixel formulas of VIF, Qabf, SSIM, AG, SF, CC, ...)
  are plain Python loops over the pixels, one scalar at a time;
* filters (Sobel, SSIM windows, VIF Gaussians) are direct, non-separable 2-D window sums: one
  shifted-image multiply-add per window tap (numpy over the image for each tap), with the
  boundary convention of the suite (zero padding, half-sample reflection, or 'valid').

The reference shares no code with the suite. Printed per metric: median wall ms and median CPU ms
(this process, all threads; the steadier figure on a shared machine) of the suite and of the
reference, the speedups, and the relative difference of the values; the script fails (exit
status 1) unless every value agrees to ``--rtol`` (default 1e-9, relative). Machine, versions and
load are printed first.

At 768x576 the input is a real TNO pair (infrared/visible ``01`` of ``../shared/data``, or of
``$FUSIONFM_SHARED_DATA``) with their rounded mean as the fused image and the visible image as
ground truth, when the data is present; otherwise, and at every other size, a synthetic triple.
The suite is timed ``--repeats`` times (default 7) and the reference ``--ref-repeats`` times
(default: 3 below 100,000 pixels, else 1, since the reference takes about 5 s per 768x576 triple).

Usage::

    .venv/bin/python benchmarks/metrics.py                       # both sizes
    .venv/bin/python benchmarks/metrics.py --sizes 256x256 --repeats 10 --ref-repeats 3
    .venv/bin/python benchmarks/metrics.py --no-reference --json metrics.json
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    machine_info,
    machine_line,
    median_wall_cpu_ms,
    parse_sizes,
    write_json,
)

from fusionfm.metrics.suite import GROUND_TRUTH_METRICS, NO_REFERENCE_METRICS  # noqa: E402

# ---------------------------------------------------------------------------------------------
# reference: direct window sums


def _window_sum(padded: np.ndarray, window: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """sum_{i,j} window[i, j] * padded[y + i, x + j]: one shifted multiply-add per tap."""
    out = np.zeros(out_shape)
    h, w = out_shape
    for i in range(window.shape[0]):
        for j in range(window.shape[1]):
            out += window[i, j] * padded[i : i + h, j : j + w]
    return out


def ref_correlate_reflect(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """'same' correlation, half-sample symmetric boundary (scipy's 'reflect')."""
    r = window.shape[0] // 2
    return _window_sum(np.pad(image, r, mode="symmetric"), window, image.shape)


def ref_correlate_zero(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """'same' correlation with zero padding."""
    r = window.shape[0] // 2
    return _window_sum(np.pad(image, r), window, image.shape)


def ref_correlate_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    k = window.shape[0]
    return _window_sum(image, window, (image.shape[0] - k + 1, image.shape[1] - k + 1))


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """2-D Gaussian exp(-(x^2 + y^2) / (2 sigma^2)) on a size x size grid, summing to 1."""
    half = (size - 1) / 2.0
    window = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            window[i, j] = math.exp(-((i - half) ** 2 + (j - half) ** 2) / (2.0 * sigma * sigma))
    return window / window.sum()


# ---------------------------------------------------------------------------------------------
# reference: scalar loops


def _levels(image: np.ndarray) -> list[int]:
    return [min(255, max(0, round(v))) for v in image.ravel().tolist()]


def _mean(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def ref_en(f: np.ndarray) -> float:
    hist = [0] * 256
    levels = _levels(f)
    for v in levels:
        hist[v] += 1
    n = len(levels)
    total = 0.0
    for count in hist:
        if count:
            p = count / n
            total -= p * math.log2(p)
    return total


def ref_sd(f: np.ndarray) -> float:
    values = f.ravel().tolist()
    mu = _mean(values)
    total = 0.0
    for v in values:
        total += (v - mu) ** 2
    return math.sqrt(total / len(values))


def ref_sf(f: np.ndarray) -> float:
    rows = f.tolist()
    h, w = len(rows), len(rows[0])
    rf = cf = 0.0
    for y in range(h):
        row = rows[y]
        for x in range(w - 1):
            rf += (row[x + 1] - row[x]) ** 2
    for y in range(h - 1):
        row, below = rows[y], rows[y + 1]
        for x in range(w):
            cf += (below[x] - row[x]) ** 2
    return math.sqrt(rf / (h * (w - 1)) + cf / ((h - 1) * w))


def ref_ag(f: np.ndarray) -> float:
    rows = f.tolist()
    h, w = len(rows), len(rows[0])
    total = 0.0
    for y in range(h):
        for x in range(w):
            if x == 0:
                gx = rows[y][1] - rows[y][0]
            elif x == w - 1:
                gx = rows[y][w - 1] - rows[y][w - 2]
            else:
                gx = (rows[y][x + 1] - rows[y][x - 1]) / 2.0
            if y == 0:
                gy = rows[1][x] - rows[0][x]
            elif y == h - 1:
                gy = rows[h - 1][x] - rows[h - 2][x]
            else:
                gy = (rows[y + 1][x] - rows[y - 1][x]) / 2.0
            total += math.sqrt((gx * gx + gy * gy) / 2.0)
    return total / (h * w)


def _mi_pair(x: np.ndarray, y: np.ndarray) -> float:
    joint = [0] * (256 * 256)
    lx, ly = _levels(x), _levels(y)
    for a, b in zip(lx, ly, strict=True):
        joint[a * 256 + b] += 1
    n = len(lx)
    px, py = [0.0] * 256, [0.0] * 256
    for index, count in enumerate(joint):
        if count:
            px[index // 256] += count / n
            py[index % 256] += count / n
    total = 0.0
    for index, count in enumerate(joint):
        if count:
            p = count / n
            total += p * math.log(p / (px[index // 256] * py[index % 256]))
    return max(total, 0.0)


def ref_mi(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return _mi_pair(a, f) + _mi_pair(b, f)


def _pearson(x: list[float], y: list[float]) -> float:
    mx, my = _mean(x), _mean(y)
    sxy = sxx = syy = 0.0
    for u, v in zip(x, y, strict=True):
        sxy += (u - mx) * (v - my)
        sxx += (u - mx) ** 2
        syy += (v - my) ** 2
    denominator = math.sqrt(sxx * syy)
    return sxy / denominator if denominator else math.nan


def ref_cc(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    fl, al, bl = f.ravel().tolist(), a.ravel().tolist(), b.ravel().tolist()
    return (_pearson(al, fl) + _pearson(bl, fl)) / 2.0


def ref_scd(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    fl, al, bl = f.ravel().tolist(), a.ravel().tolist(), b.ravel().tolist()
    f_minus_b = [u - v for u, v in zip(fl, bl, strict=True)]
    f_minus_a = [u - v for u, v in zip(fl, al, strict=True)]
    return _pearson(al, f_minus_b) + _pearson(bl, f_minus_a)


def ref_mse(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ea = eb = 0.0
    for u, v, w in zip(f.ravel().tolist(), a.ravel().tolist(), b.ravel().tolist(), strict=True):
        ea += (v - u) ** 2
        eb += (w - u) ** 2
    n = f.size
    return (ea / n + eb / n) / 2.0


def ref_psnr(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    peak = max(f.ravel().tolist())
    mse = ref_mse(f, a, b)
    return 10.0 * math.log10(peak * peak / mse) if mse else math.inf


def ref_psnr_gt(f: np.ndarray, gt: np.ndarray) -> float:
    total = 0.0
    for u, v in zip(f.ravel().tolist(), gt.ravel().tolist(), strict=True):
        total += (u - v) ** 2
    mse = total / f.size
    return 10.0 * math.log10(255.0 * 255.0 / mse) if mse else math.inf


def _ssim(
    x: np.ndarray, y: np.ndarray, window: np.ndarray, norm: float, data_range: float, crop: int
) -> float:
    mx, my = ref_correlate_reflect(x, window), ref_correlate_reflect(y, window)
    mxx = ref_correlate_reflect(x * x, window)
    myy = ref_correlate_reflect(y * y, window)
    mxy = ref_correlate_reflect(x * y, window)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    h, w = x.shape
    total, count = 0.0, 0
    rows = [m.tolist() for m in (mx, my, mxx, myy, mxy)]
    for yy in range(crop, h - crop):
        r_mx, r_my, r_mxx, r_myy, r_mxy = (r[yy] for r in rows)
        for xx in range(crop, w - crop):
            ux, uy = r_mx[xx], r_my[xx]
            vx = norm * (r_mxx[xx] - ux * ux)
            vy = norm * (r_myy[xx] - uy * uy)
            cxy = norm * (r_mxy[xx] - ux * uy)
            total += ((2 * ux * uy + c1) * (2 * cxy + c2)) / (
                (ux * ux + uy * uy + c1) * (vx + vy + c2)
            )
            count += 1
    return total / count


def ref_ssim(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    window = np.full((7, 7), 1.0 / 49.0)
    return _ssim(f, a, window, 49 / 48, 2.0, 3) + _ssim(f, b, window, 49 / 48, 2.0, 3)


def ref_ssim_gt(f: np.ndarray, gt: np.ndarray) -> float:
    return _ssim(f, gt, gaussian_window(11, 1.5), 1.0, 255.0, 5)


_SOBEL_Y = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _sobel(image: np.ndarray) -> tuple[list[float], list[float]]:
    """Strength and orientation lists; convolution = correlation with the flipped kernel."""
    gx = ref_correlate_zero(image, _SOBEL_X[::-1, ::-1]).ravel().tolist()
    gy = ref_correlate_zero(image, _SOBEL_Y[::-1, ::-1]).ravel().tolist()
    strength, angle = [], []
    for u, v in zip(gx, gy, strict=True):
        strength.append(math.sqrt(u * u + v * v))
        angle.append(math.atan(v / u) if u != 0 else math.pi / 2)
    return strength, angle


def ref_qabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    gf, af = _sobel(f)
    numerator = denominator = 0.0
    for source in (a, b):
        gs, as_ = _sobel(source)
        for g_s, a_s, g_f, a_f in zip(gs, as_, gf, af, strict=True):
            if g_s > g_f:
                ratio = g_f / g_s
            elif g_s < g_f:
                ratio = g_s / g_f
            else:
                ratio = g_f
            delta = 1.0 - abs(a_s - a_f) / (math.pi / 2)
            q_g = 0.9994 / (1.0 + math.exp(-15.0 * (ratio - 0.5)))
            q_a = 0.9879 / (1.0 + math.exp(-22.0 * (delta - 0.8)))
            numerator += q_g * q_a * g_s
            denominator += g_s
    return numerator / denominator if denominator else math.nan


def ref_vif(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    eps, noise_var = 1e-10, 2.0
    refs, dist = [a, b], f
    num, den = [0.0, 0.0], [0.0, 0.0]
    for scale in range(1, 5):
        size = 2 ** (5 - scale) + 1
        window = gaussian_window(size, size / 5.0)
        if scale > 1:
            refs = [ref_correlate_valid(r, window)[::2, ::2] for r in refs]
            dist = ref_correlate_valid(dist, window)[::2, ::2]
        if min(dist.shape) < size:
            break
        mu_d = ref_correlate_valid(dist, window).ravel().tolist()
        dd = ref_correlate_valid(dist * dist, window).ravel().tolist()
        for index, ref in enumerate(refs):
            mu_r = ref_correlate_valid(ref, window).ravel().tolist()
            rr = ref_correlate_valid(ref * ref, window).ravel().tolist()
            rd = ref_correlate_valid(ref * dist, window).ravel().tolist()
            n_sum = d_sum = 0.0
            for m_r, m_d, e_rr, e_dd, e_rd in zip(mu_r, mu_d, rr, dd, rd, strict=True):
                s_r = max(e_rr - m_r * m_r, 0.0)
                s_d = max(e_dd - m_d * m_d, 0.0)
                s_rd = e_rd - m_r * m_d
                g = s_rd / (s_r + eps)
                sv = s_d - g * s_rd
                if s_r < eps:
                    g, sv, s_r = 0.0, s_d, 0.0
                if s_d < eps:
                    g, sv = 0.0, 0.0
                if g < 0:
                    sv, g = s_d, 0.0
                if sv <= eps:
                    sv = eps
                n_sum += math.log10(1.0 + g * g * s_r / (sv + noise_var))
                d_sum += math.log10(1.0 + s_r / noise_var)
            num[index] += n_sum
            den[index] += d_sum
    total = 0.0
    for n, d in zip(num, den, strict=True):
        total += 1.0 if d == 0 and n == 0 else n / d
    return total


REFERENCE: dict[str, Callable[..., float]] = {
    "EN": lambda f, a, b: ref_en(f),
    "SD": lambda f, a, b: ref_sd(f),
    "SF": lambda f, a, b: ref_sf(f),
    "AG": lambda f, a, b: ref_ag(f),
    "MI": ref_mi,
    "SCD": ref_scd,
    "VIF": ref_vif,
    "Qabf": ref_qabf,
    "SSIM": ref_ssim,
    "CC": ref_cc,
    "MSE": ref_mse,
    "PSNR": ref_psnr,
    "PSNR_gt": ref_psnr_gt,
    "SSIM_gt": ref_ssim_gt,
}


# ---------------------------------------------------------------------------------------------
# inputs and the run


def make_triple(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A smooth scene, two degraded views of it, their blend as the fused image, and the scene
    as ground truth; gray float64, 0-255, integer-valued like decoded images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    scene = 128 + 60 * np.sin(9 * xx) * np.cos(7 * yy) + 30 * (xx > 0.5) - 20 * (yy > 0.6)
    scene = scene + rng.normal(0, 8, scene.shape)
    a = np.clip(0.7 * scene + 40 + rng.normal(0, 5, scene.shape), 0, 255)
    b = np.clip(1.2 * scene - 30 + rng.normal(0, 5, scene.shape), 0, 255)
    fused = np.clip(0.5 * a + 0.5 * b + rng.normal(0, 2, scene.shape), 0, 255)
    return tuple(np.round(x).astype(np.float64) for x in (fused, a, b, np.clip(scene, 0, 255)))


def shared_data_root() -> Path:
    """``$FUSIONFM_SHARED_DATA``, else ``../shared/data`` next to the repository."""
    env = os.environ.get("FUSIONFM_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def real_triple(height: int, width: int) -> tuple[tuple[np.ndarray, ...], str] | None:
    """TNO pair ``01`` (768x576) as (rounded mean, IR, visible luma, visible), or None."""
    root = shared_data_root() / "ivf" / "TNO"
    paths = [root / "ir" / "01.png", root / "vi" / "01.png"]
    if not all(p.is_file() for p in paths):
        return None
    from fusionfm.color import luma
    from fusionfm.io import read_image

    a, b = (luma(read_image(p)) for p in paths)
    if a.shape != (height, width):
        return None
    fused = np.round((a + b) / 2)
    return (fused, a, b, b), f"TNO pair 01 from {root} (fused = rounded mean, ground truth = vi)"


def _differs(value: float, ref_value: float) -> float:
    """Relative difference, 0 when both are NaN or the same infinity."""
    if math.isnan(value) or math.isnan(ref_value):
        return 0.0 if math.isnan(value) and math.isnan(ref_value) else math.inf
    if math.isinf(value) or math.isinf(ref_value):
        return 0.0 if value == ref_value else math.inf
    return abs(value - ref_value) / max(abs(value), abs(ref_value), 1e-300)


def run_size(
    height: int,
    width: int,
    repeats: int,
    ref_repeats: int,
    reference: bool,
    rtol: float,
    real: bool,
) -> dict:
    """Time every metric at one size; returns the JSON record of that size."""
    loaded = real_triple(height, width) if real else None
    if loaded:
        (f, a, b, gt), source = loaded
    else:
        (f, a, b, gt), source = make_triple(height, width), "synthetic (make_triple, seed 0)"
    kernels: dict[str, Callable[[], float]] = {
        name: (lambda fn=fn: fn(f, a, b)) for name, fn in NO_REFERENCE_METRICS.items()
    }
    kernels |= {name: (lambda fn=fn: fn(f, gt)) for name, fn in GROUND_TRUTH_METRICS.items()}
    refs: dict[str, Callable[[], float]] = {
        name: (lambda fn=fn: fn(f, a, b))
        for name, fn in REFERENCE.items()
        if name in NO_REFERENCE_METRICS
    }
    refs |= {
        name: (lambda fn=fn: fn(f, gt))
        for name, fn in REFERENCE.items()
        if name in GROUND_TRUTH_METRICS
    }

    print(
        f"\n== {width}x{height} (W x H): {source}; suite median of {repeats} after a warm-up"
        + (f", reference median of {ref_repeats}" if reference else "")
        + " =="
    )
    header = f"{'metric':<8} {'value':>14} {'suite ms':>9} {'cpu ms':>9}"
    if reference:
        header += f" {'ref ms':>9} {'cpu ms':>9} {'speedup':>8} {'(cpu)':>7} {'rel. diff':>9}"
    print(header)
    record: dict = {"size": f"{width}x{height}", "input": source, "repeats": repeats}
    if reference:
        record["ref_repeats"] = ref_repeats
    rows = {}
    totals = {"suite_ms": 0.0, "suite_cpu_ms": 0.0, "reference_ms": 0.0, "reference_cpu_ms": 0.0}
    worst = 0.0
    for name, kernel in kernels.items():
        wall, cpu, value = median_wall_cpu_ms(kernel, repeats, warmup=1)
        value = float(value)
        row = {"value": value, "suite_ms": wall, "suite_cpu_ms": cpu}
        line = f"{name:<8} {value:>14.8g} {wall:>9.3f} {cpu:>9.3f}"
        if reference:
            ref_wall, ref_cpu, ref_value = median_wall_cpu_ms(refs[name], ref_repeats)
            rel = _differs(value, float(ref_value))
            worst = max(worst, rel)
            row |= {"reference_value": float(ref_value), "reference_ms": ref_wall}
            row |= {"reference_cpu_ms": ref_cpu, "speedup": ref_wall / wall}
            row |= {"speedup_cpu": ref_cpu / max(cpu, 1e-6), "relative_difference": rel}
            line += (
                f" {ref_wall:>9.1f} {ref_cpu:>9.1f} {ref_wall / wall:>7.1f}x "
                f"{ref_cpu / max(cpu, 1e-6):>6.1f}x {rel:>9.1e}"
            )
        for key in totals:
            totals[key] += row.get(key, 0.0)
        rows[name] = row
        print(line, flush=True)
    record["metrics"] = rows
    record["total"] = totals
    total_line = f"{'total':<8} {'':>14} {totals['suite_ms']:>9.3f} {totals['suite_cpu_ms']:>9.3f}"
    if reference:
        record["total"]["speedup"] = totals["reference_ms"] / totals["suite_ms"]
        record["total"]["speedup_cpu"] = totals["reference_cpu_ms"] / totals["suite_cpu_ms"]
        record["largest_relative_difference"] = worst
        record["identical"] = worst <= rtol
        total_line += (
            f" {totals['reference_ms']:>9.1f} {totals['reference_cpu_ms']:>9.1f} "
            f"{record['total']['speedup']:>7.1f}x {record['total']['speedup_cpu']:>6.1f}x"
        )
    print(total_line)
    if reference:
        verdict = "identical to float rounding" if worst <= rtol else f"NOT IDENTICAL (> {rtol:g})"
        print(f"largest relative difference suite vs reference: {worst:.2e} ({verdict})")

    from fusionfm.metrics import compute_metrics

    wall, cpu, _ = median_wall_cpu_ms(lambda: compute_metrics(f, a, b, gt), repeats, warmup=1)
    record["compute_metrics"] = {"ms": wall, "cpu_ms": cpu}
    print(
        f"compute_metrics (whole suite, with validation and ground truth): {wall:.2f} ms "
        f"({cpu:.2f} ms CPU) per triple"
    )
    # scoring: every teacher output of one pair (9 built-in teachers), one by one or batched
    try:
        from fusionfm.metrics import compute_metrics_many
    except ImportError:  # a checkout from before it existed, timed for comparison
        return record
    rng = np.random.default_rng(1)
    candidates = [np.clip(f + rng.normal(0, 3, f.shape), 0, 255).round() for _ in range(9)]
    few = max(1, repeats // 2)
    each = median_wall_cpu_ms(lambda: [compute_metrics(c, a, b, gt) for c in candidates], few, 1)
    many = median_wall_cpu_ms(lambda: compute_metrics_many(candidates, a, b, gt), few, 1)
    record["nine_candidates_per_image"] = {
        "compute_metrics": {"ms": each[0] / 9, "cpu_ms": each[1] / 9},
        "compute_metrics_many": {"ms": many[0] / 9, "cpu_ms": many[1] / 9},
    }
    print(
        f"9 fused images of one pair, per image: compute_metrics one by one {each[0] / 9:.2f} ms "
        f"({each[1] / 9:.2f} CPU), compute_metrics_many (source terms once) {many[0] / 9:.2f} ms "
        f"({many[1] / 9:.2f} CPU): {each[1] / many[1]:.2f}x less CPU"
    )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256x256,768x576", help="comma-separated WxH")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of the suite")
    parser.add_argument(
        "--ref-repeats", type=int, default=0, help="timed runs of the reference (0: by size)"
    )
    parser.add_argument("--no-reference", action="store_true", help="time the suite only")
    parser.add_argument("--rtol", type=float, default=1e-9, help="allowed relative difference")
    parser.add_argument("--synthetic", action="store_true", help="never use the real TNO pair")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    info = machine_info()
    print(machine_line(info))
    records = []
    for height, width in parse_sizes(args.sizes):
        ref_repeats = args.ref_repeats or (3 if height * width < 100_000 else 1)
        records.append(
            run_size(
                height,
                width,
                args.repeats,
                ref_repeats,
                not args.no_reference,
                args.rtol,
                not args.synthetic,
            )
        )
    write_json(args.json, {"benchmark": "metrics", "machine": info, "sizes": records})
    if any(not r.get("identical", True) for r in records):
        print("FAILED: the suite and the reference disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
