"""The fusion metric suite: the ground truth of the whole pipeline.

Definitions and conventions follow the evaluator most deep fusion papers report with, so that
numbers are comparable with published tables; every metric takes images on the 0-255 scale and
scores RGB on its rounded luma (0.299 R + 0.587 G + 0.114 B).
"""

from fusionfm.metrics.information import mutual_information, mutual_information_pair
from fusionfm.metrics.qabf import qabf
from fusionfm.metrics.similarity import (
    correlation_coefficient,
    mean_squared_error,
    peak_signal_to_noise_ratio,
    psnr_reference,
    sum_of_correlation_differences,
)
from fusionfm.metrics.ssim import ssim_fusion, ssim_reference
from fusionfm.metrics.statistics import (
    average_gradient,
    entropy,
    spatial_frequency,
    standard_deviation,
)
from fusionfm.metrics.suite import (
    GROUND_TRUTH_METRICS,
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    compute_metrics,
    compute_metrics_many,
    json_ready,
    score_files,
    score_folders,
)
from fusionfm.metrics.vif import visual_information_fidelity

__all__ = [
    "GROUND_TRUTH_METRICS",
    "HIGHER_IS_BETTER",
    "METRIC_NAMES",
    "average_gradient",
    "compute_metrics",
    "compute_metrics_many",
    "correlation_coefficient",
    "entropy",
    "json_ready",
    "mean_squared_error",
    "mutual_information",
    "mutual_information_pair",
    "peak_signal_to_noise_ratio",
    "psnr_reference",
    "qabf",
    "score_files",
    "score_folders",
    "spatial_frequency",
    "ssim_fusion",
    "ssim_reference",
    "standard_deviation",
    "sum_of_correlation_differences",
    "visual_information_fidelity",
]
