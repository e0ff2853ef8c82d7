"""Measurable tests of which components of a pseudo-label are degraded relative to its sources.

Each test compares the fused luminance ``F`` with the sources ``A``, ``B`` (never with a ground
truth) and fires when its measure crosses a threshold of :class:`~fusionfm.refine.refiner.RefinerConfig`:

``contrast``
    ``std(base_F) / max(std(base_A), std(base_B)) < contrast_ratio``: the fused base layer has
    less global contrast than the more contrasted source (a washed-out, averaged look).
``exposure``
    ``|mean(F) / 255 - 0.5| > exposure_offset``: the fused image as a whole is too dark or too
    bright.
``saliency``
    ``SAL(F) < saliency_min`` (:func:`fusionfm.pseudolabel.task_metrics.salient_intensity_gray`):
    the salient targets (hot objects, bone, active tissue) are dimmer than in their source.
``noise``
    ``sum n_F / sum max(n_A, n_B) > noise_ratio``, where ``n_X`` is the local mean of the
    absolute response of Immerkaer's noise kernel (:func:`~fusionfm.refine.decompose.noise_map`):
    the fused image has more pixel-level high-frequency energy than the per-pixel stronger
    source, i.e. the fusion amplified noise (a sharp region of either source is not counted as
    noise, since the reference takes it from that source).
``detail``
    ``sum min(E_F, E_R) / sum E_R < detail_ratio``, where ``E_X`` is the local energy of the
    detail layer of ``X`` (minus the noise variance of the source sharper at that pixel) and
    ``E_R = max(E_A, E_B)`` per pixel:
    fine detail of the sharper source is missing.

Which tests run for a task is set by ``RefinerConfig.operations``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionfm.pseudolabel.task_metrics import salient_intensity_gray
from fusionfm.refine.decompose import Layers, local_energy, noise_map

COMPONENTS: tuple[str, ...] = ("noise", "exposure", "contrast", "saliency", "detail")
"""Every degradable component, in the order the refiner treats them."""


@dataclass(frozen=True)
class Diagnosis:
    """Outcome of one test.

    Attributes:
        component: one of :data:`COMPONENTS`.
        measure: the measured value.
        threshold: the threshold it was compared with.
        degraded: whether the component is degraded.
    """

    component: str
    measure: float
    threshold: float
    degraded: bool

    def describe(self) -> str:
        """``"detail 0.81 < 0.90"``-style summary."""
        relation = {"noise": ">", "exposure": ">"}.get(self.component, "<")
        if not self.degraded:
            relation = {"<": ">=", ">": "<="}[relation]
        return f"{self.component} {self.measure:.3f} {relation} {self.threshold:.3f}"


@dataclass(frozen=True)
class SourceContext:
    """Everything about a source pair the tests and the enhancements need, computed once.

    Attributes:
        y_a: source A luminance, float64 ``(H, W)``.
        y_b: source B luminance, float64 ``(H, W)``.
        layers_a: base/detail of ``y_a``.
        layers_b: base/detail of ``y_b``.
        layers_max: base/detail of ``max(y_a, y_b)`` (the salient-intensity reference).
        sigma_a: noise estimate of ``y_a``.
        sigma_b: noise estimate of ``y_b``.
        noise_a: local noise-kernel response of ``y_a``, ``(H, W)``.
        noise_b: local noise-kernel response of ``y_b``, ``(H, W)``.
        saliency: soft salient-region weight in [0, 1], ``(H, W)``.
    """

    y_a: np.ndarray
    y_b: np.ndarray
    layers_a: Layers
    layers_b: Layers
    layers_max: Layers
    sigma_a: float
    sigma_b: float
    noise_a: np.ndarray
    noise_b: np.ndarray
    saliency: np.ndarray


def detail_energies(
    layers: Layers, context: SourceContext, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-corrected local detail energies of the fused image and the sharper source.

    Each source's energy is reduced by its noise variance; the fused energy by the noise
    variance of the source that is sharper at that pixel.

    Args:
        layers: base/detail of the fused luminance.
        context: the sources.
        window: box side of the local energy.

    Returns:
        ``(energy_fused, energy_reference, from_a)``: float64 ``(H, W)`` energies (>= 0) and a
        bool ``(H, W)`` map, True where source A is the sharper one.
    """
    energy_a = np.maximum(local_energy(context.layers_a.detail, window) - context.sigma_a**2, 0.0)
    energy_b = np.maximum(local_energy(context.layers_b.detail, window) - context.sigma_b**2, 0.0)
    from_a = energy_a >= energy_b
    # The fused image carries the noise of the source it took each pixel from; a noise estimate
    # of the fused image itself would grow with its sharpness (texture inflates it).
    floor = np.where(from_a, context.sigma_a**2, context.sigma_b**2)
    energy_f = np.maximum(local_energy(layers.detail, window) - floor, 0.0)
    return energy_f, np.where(from_a, energy_a, energy_b), from_a


def measure(
    component: str,
    y: np.ndarray,
    layers: Layers,
    context: SourceContext,
    detail_window: int,
) -> float:
    """The measure of one test (see the module docstring) on the fused luminance ``y``.

    Args:
        component: one of :data:`COMPONENTS`.
        y: fused luminance, float64 ``(H, W)``.
        layers: its base/detail split.
        context: the sources.
        detail_window: box side of the detail energy.

    Returns:
        The measure; tests with nothing to compare (flat sources) return their neutral value.
    """
    if component == "contrast":
        reference = max(float(context.layers_a.base.std()), float(context.layers_b.base.std()))
        return float(layers.base.std()) / reference if reference > 1e-9 else 1.0
    if component == "exposure":
        return abs(float(y.mean()) / 255.0 - 0.5)
    if component == "saliency":
        return salient_intensity_gray(y, context.y_a, context.y_b)
    if component == "noise":
        reference = np.maximum(context.noise_a, context.noise_b)
        total = float(reference.sum())
        return float(noise_map(y, detail_window).sum()) / total if total > 1e-9 else 1.0
    if component == "detail":
        energy_f, energy_r, _ = detail_energies(layers, context, detail_window)
        total = float(energy_r.sum())
        return float(np.minimum(energy_f, energy_r).sum() / total) if total > 1e-9 else 1.0
    raise ValueError(f"unknown component {component!r}; known: {', '.join(COMPONENTS)}")


def is_degraded(component: str, value: float, threshold: float) -> bool:
    """Whether a measure crosses its threshold (``noise``/``exposure`` above, others below)."""
    if component in ("noise", "exposure"):
        return value > threshold
    return value < threshold


__all__ = [
    "COMPONENTS",
    "Diagnosis",
    "SourceContext",
    "detail_energies",
    "is_degraded",
    "measure",
]
