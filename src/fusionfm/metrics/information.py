"""Information-theoretic metric MI."""

from __future__ import annotations

import numpy as np

from fusionfm.metrics._common import as_gray_triple, integer_levels


def mutual_information_pair(x: np.ndarray, y: np.ndarray) -> float:
    """Mutual information in nats of two gray images from their 256x256 joint histogram.

    Args:
        x: shape ``(H, W)``, 0-255 scale (rounded to integer levels).
        y: same shape as ``x``.
    """
    joint = np.bincount(
        (integer_levels(x) * 256 + integer_levels(y)).ravel(), minlength=256 * 256
    ).reshape(256, 256)
    joint_p = joint / joint.sum()
    marginal_x = joint_p.sum(axis=1)
    marginal_y = joint_p.sum(axis=0)
    rows, cols = np.nonzero(joint_p)
    p = joint_p[rows, cols]
    return float(max(np.sum(p * np.log(p / (marginal_x[rows] * marginal_y[cols]))), 0.0))


def mutual_information_gray(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return mutual_information_pair(a, f) + mutual_information_pair(b, f)


def mutual_information(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """MI = MI(A, F) + MI(B, F) in nats, from joint histograms of integer gray levels.

    Args:
        fused, a, b: shape ``(H, W)`` or ``(H, W, 3)``, 0-255 scale, same size.
    """
    return mutual_information_gray(*as_gray_triple(fused, a, b))
