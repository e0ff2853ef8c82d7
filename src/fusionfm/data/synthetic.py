"""Deterministic synthetic source pairs, one generator per fusion task.

These are the offline stand-ins for the public fusion datasets (see DESIGN.md, "Datasets"), built
so that every pair poses the problem its task poses:

* ``mff`` (near, far): one sharp scene, defocused on complementary smooth regions; ground truth is
  the sharp scene.
* ``mef`` (under, over): one high-dynamic-range radiance map shot at two exposures through a
  camera response curve, with clipping and Poisson-Gaussian noise; ground truth is a noise-free,
  globally tone-mapped rendering of the same radiance.
* ``ivf`` (ir, vi): a thermal-like gray image with hot people and vehicles, and a dark, noisy,
  low-contrast visible image of the same scene in which those targets are camouflaged.
* ``mif`` (mri, ct|pet|spect): a random axial head phantom rendered with MRI (T1 or T2), CT and
  PET/SPECT contrasts; PET and SPECT are low-resolution and color-mapped.

Scene content comes from the images that scikit-image ships inside its package (no download)
plus procedural textures. Every pair draws from its own generator seeded by
``(seed, task salt, index)``, so a pair never depends on how many pairs came before it, and only
deterministic NumPy/OpenCV operations are used.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data as skimage_data

from fusionfm.io import InputError

TASKS: tuple[str, ...] = ("ivf", "mif", "mef", "mff")

MIF_MODALITIES_B: tuple[str, ...] = ("ct", "pet", "spect")
"""Contrast of modality B for ``mif``; modality A is always MRI-like."""

MIF_MODALITIES_A: tuple[str, ...] = ("mri", "mr", "t1", "t2")
"""Accepted names for ``mif`` modality A; ``t1``/``t2`` fix the MRI weighting, the others draw it
per pair."""

MIN_SIZE = 32
"""Smallest height or width the generators accept (pixels)."""

# Images scikit-image ships inside its package (verified to load without pooch or network).
_RGB_SCENES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle")
# No photos of people here: a person in the scene would have to be a hot target too.
_OUTDOOR_SCENES: tuple[str, ...] = ("rocket", "motorcycle")
_GROUND_TEXTURES: tuple[str, ...] = ("gravel", "grass")

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class SyntheticPair:
    """One generated source pair.

    Attributes:
        pair: pair id, ``f"{index:04d}"``.
        a: modality A, ``uint8``, ``(H, W)`` gray or ``(H, W, 3)`` RGB.
        b: modality B, ``uint8``, ``(H, W)`` gray or ``(H, W, 3)`` RGB.
        gt: ground truth, ``uint8`` ``(H, W, 3)`` for ``mff`` and ``mef``; ``None`` otherwise.
    """

    pair: str
    a: np.ndarray
    b: np.ndarray
    gt: np.ndarray | None


_Rendered = tuple[np.ndarray, np.ndarray, np.ndarray | None]
_Renderer = Callable[[np.random.Generator, int, int], _Rendered]


def generate_pairs(
    task: str, modalities: Sequence[str], pairs: int, height: int, width: int, seed: int
) -> Iterator[SyntheticPair]:
    """Generate ``pairs`` deterministic synthetic source pairs for ``task``.

    Arguments are checked at call time (not at the first ``next``). Pair ``i`` depends only on
    ``(task, height, width, seed, i)`` and, for ``mif``, on the modality names; each pair draws
    from ``np.random.default_rng([seed, crc32(task[/modality B]), i])``.

    Args:
        task: one of :data:`TASKS`.
        modalities: the two modality names, A then B. For ``mif`` B picks the contrast
            (``ct``, ``pet`` or ``spect``) and A must be MRI (``mri``, ``mr``, ``t1``, ``t2``);
            for the other tasks they are labels only (ivf ir/vi, mef under/over, mff near/far).
        pairs: number of pairs, >= 0.
        height: image height in pixels, >= :data:`MIN_SIZE`.
        width: image width in pixels, >= :data:`MIN_SIZE`.
        seed: non-negative integer seed.

    Returns:
        Iterator of :class:`SyntheticPair` with ids ``"0000"``, ``"0001"``, ...

    Raises:
        InputError: unknown task or mif modality, wrong number of modalities, bad sizes or seed.
    """
    if task not in TASKS:
        raise InputError(f"unknown synthetic task {task!r}; valid tasks: {', '.join(TASKS)}")
    names = [str(name) for name in modalities]
    if len(names) != 2:
        raise InputError(f"synthetic task {task!r} needs exactly two modalities, got {names}")
    for label, value, minimum in (
        ("pairs", pairs, 0),
        ("height", height, MIN_SIZE),
        ("width", width, MIN_SIZE),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise InputError(f"synthetic {label} must be an integer >= {minimum}, got {value!r}")

    salt_key = task
    if task == "mif":
        modality_a, modality_b = names[0].lower(), names[1].lower()
        if modality_b not in MIF_MODALITIES_B:
            raise InputError(
                f"unknown mif modality {names[1]!r} for modality B; valid: "
                f"{', '.join(MIF_MODALITIES_B)}"
            )
        if modality_a not in MIF_MODALITIES_A:
            raise InputError(
                f"unknown mif modality {names[0]!r} for modality A; valid: "
                f"{', '.join(MIF_MODALITIES_A)}"
            )
        weighting = modality_a if modality_a in ("t1", "t2") else None
        renderer: _Renderer = functools.partial(
            _render_mif, functional=modality_b, weighting=weighting
        )
        salt_key = f"mif/{modality_b}"
    else:
        renderer = {"ivf": _render_ivf, "mef": _render_mef, "mff": _render_mff}[task]
    # A stable (not Python-hash) salt keeps tasks with the same seed from sharing content.
    salt = zlib.crc32(salt_key.encode("ascii"))
    return _iterate(renderer, int(pairs), int(height), int(width), int(seed), salt)


def _iterate(
    renderer: _Renderer, pairs: int, height: int, width: int, seed: int, salt: int
) -> Iterator[SyntheticPair]:
    for index in range(pairs):
        rng = np.random.default_rng([seed, salt, index])
        a, b, gt = renderer(rng, height, width)
        yield SyntheticPair(pair=f"{index:04d}", a=a, b=b, gt=gt)


# --------------------------------------------------------------------------------------------
# Task renderers: (rng, height, width) -> (a, b, gt)
# --------------------------------------------------------------------------------------------


def _render_mff(rng: np.random.Generator, height: int, width: int) -> _Rendered:
    near, far, sharp, _ = _mff_sample(rng, height, width)
    return near, far, sharp


def _render_mef(rng: np.random.Generator, height: int, width: int) -> _Rendered:
    return _mef_sample(rng, height, width)


def _render_ivf(rng: np.random.Generator, height: int, width: int) -> _Rendered:
    infrared, visible, _ = _ivf_sample(rng, height, width)
    return infrared, visible, None


def _render_mif(
    rng: np.random.Generator, height: int, width: int, *, functional: str, weighting: str | None
) -> _Rendered:
    mri, other, _ = _mif_sample(rng, height, width, functional, weighting)
    return mri, other, None


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


@functools.cache
def _packaged_image(name: str) -> np.ndarray:
    """A scikit-image packaged image as read-only float32 RGB in [0, 1], shape ``(h, w, 3)``."""
    if name == "motorcycle":
        image = skimage_data.stereo_motorcycle()[0]
    else:
        image = getattr(skimage_data, name)()
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    array = np.ascontiguousarray(array[:, :, :3])
    array.setflags(write=False)
    return array


@functools.cache
def _horse_silhouette() -> np.ndarray:
    """The packaged horse silhouette, float32, 1 on the horse, shape ``(328, 400)``."""
    silhouette = (~skimage_data.horse()).astype(np.float32)
    silhouette.setflags(write=False)
    return silhouette


def _random_crop(
    rng: np.random.Generator, image: np.ndarray, height: int, width: int, min_fraction: float = 0.4
) -> np.ndarray:
    """A random crop of ``image`` with the target aspect ratio, resized to ``(height, width)``.

    The crop covers ``min_fraction``..1 of the largest crop that fits (never fewer pixels than
    the target when the source allows it, so that no detail is invented by upsampling), and is
    flipped left-right with probability 1/2.

    Args:
        rng: random generator.
        image: float32 array, shape ``(h, w, C)``.
        height: output height.
        width: output width.
        min_fraction: smallest crop side relative to the largest possible crop.

    Returns:
        float32 array, shape ``(height, width, C)``.
    """
    source_h, source_w = image.shape[:2]
    largest_h = min(source_h, source_w * height / width)
    crop_h = largest_h * rng.uniform(min_fraction, 1.0)
    crop_h = max(crop_h, min(height, largest_h))
    crop_w = crop_h * width / height
    crop_h_px = int(min(source_h, max(2, round(crop_h))))
    crop_w_px = int(min(source_w, max(2, round(crop_w))))
    top = int(rng.integers(0, source_h - crop_h_px + 1))
    left = int(rng.integers(0, source_w - crop_w_px + 1))
    crop = image[top : top + crop_h_px, left : left + crop_w_px]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    shrinking = crop_h_px >= height
    resized = cv2.resize(
        np.ascontiguousarray(crop),
        (width, height),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC,
    )
    if resized.ndim == 2:
        resized = resized[:, :, None]
    return np.clip(resized, 0.0, 1.0).astype(np.float32)


def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with reflected borders, float32 in and out, any ``(H, W[, C])`` shape."""
    if sigma <= 0:
        return image.astype(np.float32)
    blurred = cv2.GaussianBlur(
        image.astype(np.float32),
        (0, 0),
        sigmaX=sigma,
        sigmaY=sigma,
        borderType=cv2.BORDER_REFLECT_101,
    )
    return blurred.reshape(image.shape)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, scale: float) -> np.ndarray:
    """Zero-mean, unit-std random field whose features are about ``scale`` pixels wide.

    Returns:
        float32 array, shape ``(height, width)``.
    """
    scale = max(float(scale), 1.0)
    grid_h = int(np.ceil(height / scale)) + 3
    grid_w = int(np.ceil(width / scale)) + 3
    coarse = rng.standard_normal((grid_h, grid_w)).astype(np.float32)
    big = cv2.resize(
        coarse,
        (int(round(grid_w * scale)), int(round(grid_h * scale))),
        interpolation=cv2.INTER_CUBIC,
    )
    top = int(round(1.5 * scale))
    field = big[top : top + height, top : top + width]
    field = _gaussian(field, scale / 3.0)
    return ((field - field.mean()) / (field.std() + 1e-6)).astype(np.float32)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(yy, xx)``, float32, each shape ``(height, width)``."""
    yy, xx = np.mgrid[0:height, 0:width]
    return yy.astype(np.float32), xx.astype(np.float32)


def _srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    srgb = np.clip(srgb, 0.0, 1.0)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(
        np.float32
    )


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> rounded, clipped, C-contiguous ``uint8`` on 0-255."""
    return np.ascontiguousarray(np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8))


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of float RGB ``(H, W, 3)`` -> ``(H, W)``."""
    return (rgb @ _LUMA).astype(np.float32)


def _rounded_rect(
    yy: np.ndarray,
    xx: np.ndarray,
    cy: float,
    cx: float,
    half_h: float,
    half_w: float,
    radius: float,
    softness: float = 1.0,
) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a rounded rectangle (signed-distance based)."""
    radius = min(radius, half_h, half_w)
    qy = np.abs(yy - cy) - (half_h - radius)
    qx = np.abs(xx - cx) - (half_w - radius)
    distance = (
        np.hypot(np.maximum(qy, 0), np.maximum(qx, 0)) + np.minimum(np.maximum(qy, qx), 0) - radius
    )
    return np.clip(0.5 - distance / softness, 0.0, 1.0)


def _ellipse(
    yy: np.ndarray,
    xx: np.ndarray,
    cy: float,
    cx: float,
    semi_y: float,
    semi_x: float,
    angle: float = 0.0,
    softness: float = 1.0,
) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a rotated ellipse (``angle`` in radians)."""
    cos, sin = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    along_x = (dx * cos + dy * sin) / semi_x
    along_y = (-dx * sin + dy * cos) / semi_y
    distance = (np.hypot(along_x, along_y) - 1.0) * min(semi_x, semi_y)
    return np.clip(0.5 - distance / softness, 0.0, 1.0)


def _normalized(kernel: np.ndarray) -> np.ndarray:
    return (kernel / kernel.sum()).astype(np.float32)


def _defocus(image: np.ndarray, radius: float, kind: str) -> np.ndarray:
    """Defocus blur: a pillbox (``"disk"``) or Gaussian of matching spread.

    Args:
        image: float32, shape ``(H, W[, C])``.
        radius: blur radius in pixels.
        kind: ``"disk"`` or ``"gaussian"``.

    Returns:
        float32 array, same shape as ``image``.
    """
    if kind == "gaussian":
        # A pillbox of radius r has standard deviation r / 2 along each axis.
        return _gaussian(image, radius / 2.0)
    half = int(np.ceil(radius)) + 1
    ky, kx = np.mgrid[-half : half + 1, -half : half + 1]
    kernel = _normalized(np.clip(radius + 0.5 - np.hypot(ky, kx), 0.0, 1.0))
    blurred = cv2.filter2D(image.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return blurred.reshape(image.shape)


def _colormap(values: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Piecewise-linear colormap.

    Args:
        values: float array in [0, 1], shape ``(H, W)``.
        stops: array ``(K, 4)`` of rows ``(position, r, g, b)`` with increasing position.

    Returns:
        float32 RGB in [0, 1], shape ``(H, W, 3)``.
    """
    values = np.clip(values, 0.0, 1.0)
    channels = [np.interp(values, stops[:, 0], stops[:, c]) for c in (1, 2, 3)]
    return np.stack(channels, axis=-1).astype(np.float32)


# Colour maps of the Harvard whole-brain atlas style: PET as a jet-like rainbow and SPECT as a
# purple-to-orange "hot metal" map, both rising from black so the background stays black.
_PET_STOPS = np.array(
    [
        [0.0, 0, 0, 0],
        [0.1, 0, 0, 0.45],
        [0.25, 0, 0.2, 1],
        [0.45, 0, 0.9, 1],
        [0.62, 1, 1, 0],
        [0.85, 1, 0.1, 0],
        [1.0, 0.6, 0, 0],
    ],
    dtype=np.float64,
)
_SPECT_STOPS = np.array(
    [
        [0.0, 0, 0, 0],
        [0.15, 0.2, 0.05, 0.3],
        [0.4, 0.55, 0.15, 0.6],
        [0.7, 0.95, 0.5, 0.3],
        [0.9, 1, 0.75, 0.45],
        [1.0, 1, 1, 0.9],
    ],
    dtype=np.float64,
)


# --------------------------------------------------------------------------------------------
# MFF: multi-focus
# --------------------------------------------------------------------------------------------


def _focus_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth near-focus weight in [0, 1], shape ``(height, width)``.

    One of: a foreground blob biased to the centre, a wavy depth boundary across the frame, or
    the horse silhouette placed as a foreground object. The near region covers roughly 15-65% of
    the frame; the binary region is softened by a Gaussian so the focus changes gradually.
    """
    size = min(height, width)
    yy, xx = _grid(height, width)
    kind = rng.choice(["blob", "boundary", "silhouette"], p=[0.45, 0.35, 0.2])
    if kind == "blob":
        cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.3, 0.7) * width
        radial = ((yy - cy) / height) ** 2 + ((xx - cx) / width) ** 2
        field = _smooth_noise(rng, height, width, size * rng.uniform(0.2, 0.4)) - 6.0 * radial
        binary = field > np.quantile(field, rng.uniform(0.45, 0.7))
    elif kind == "boundary":
        angle = rng.uniform(0.0, 2.0 * np.pi)
        ramp = ((xx - width / 2) * np.cos(angle) + (yy - height / 2) * np.sin(angle)) / size
        field = ramp + 0.12 * _smooth_noise(rng, height, width, size * 0.3)
        binary = field > np.quantile(field, rng.uniform(0.35, 0.65))
    else:
        silhouette = _horse_silhouette()
        scale = rng.uniform(0.75, 1.0) * min(
            height / silhouette.shape[0], width / silhouette.shape[1]
        )
        new_h = max(2, int(round(silhouette.shape[0] * scale)))
        new_w = max(2, int(round(silhouette.shape[1] * scale)))
        resized = cv2.resize(silhouette, (new_w, new_h), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            resized = resized[:, ::-1]
        binary_canvas = np.zeros((height, width), dtype=np.float32)
        top = int(rng.integers(0, height - new_h + 1))
        left = int(rng.integers(0, width - new_w + 1))
        binary_canvas[top : top + new_h, left : left + new_w] = resized
        binary = binary_canvas > 0.5
    return np.clip(_gaussian(binary.astype(np.float32), rng.uniform(0.008, 0.02) * size), 0, 1)


def _mff_sample(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One multi-focus pair.

    Returns:
        ``(near, far, sharp, near_mask)``: ``near`` and ``far`` and the ground truth ``sharp`` are
        ``uint8`` ``(H, W, 3)``; ``near_mask`` is float32 ``(H, W)`` in [0, 1], 1 where the near
        shot is in focus (and the far shot is not).
    """
    size = min(height, width)
    scene = _random_crop(rng, _packaged_image(str(rng.choice(_RGB_SCENES))), height, width, 0.35)
    # A little per-channel gain (white balance) so repeated crops do not look identical.
    scene = np.clip(scene * rng.uniform(0.9, 1.1, size=3).astype(np.float32), 0, 1)
    sharp_u8 = _to_uint8(scene)
    sharp = sharp_u8.astype(np.float32) / 255.0
    near_mask = _focus_mask(rng, height, width)
    kind = str(rng.choice(["disk", "gaussian"]))
    background_radius, foreground_radius = rng.uniform(0.015, 0.045, size=2) * size
    background_radius, foreground_radius = max(background_radius, 1.5), max(foreground_radius, 1.5)
    weight = near_mask[:, :, None]
    near = weight * sharp + (1 - weight) * _defocus(sharp, background_radius, kind)
    far = (1 - weight) * sharp + weight * _defocus(sharp, foreground_radius, kind)
    return _to_uint8(near), _to_uint8(far), sharp_u8, near_mask


# --------------------------------------------------------------------------------------------
# MEF: multi-exposure
# --------------------------------------------------------------------------------------------


def _camera_response(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A random monotone camera response curve [0, 1] -> [0, 1]: a gamma with some S-shape."""
    gamma = rng.uniform(1.8, 2.6)
    s_strength = rng.uniform(0.0, 0.45)

    def response(irradiance: np.ndarray) -> np.ndarray:
        powered = np.clip(irradiance, 0.0, 1.0) ** (1.0 / gamma)
        s_curve = powered * powered * (3.0 - 2.0 * powered)
        return ((1.0 - s_strength) * powered + s_strength * s_curve).astype(np.float32)

    return response


def _mef_sample(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One multi-exposure pair.

    Returns:
        ``(under, over, reference)``, each ``uint8`` ``(H, W, 3)``.
    """
    size = min(height, width)
    yy, xx = _grid(height, width)
    scene = _random_crop(rng, _packaged_image(str(rng.choice(_RGB_SCENES))), height, width, 0.35)
    # Expand the 8-bit scene into a high-dynamic-range radiance map: steeper tone, an
    # illumination gradient of several stops, and a few bright light sources.
    radiance = (_srgb_to_linear(scene) + 0.002) ** rng.uniform(1.3, 2.0)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = ((xx - width / 2) * np.cos(angle) + (yy - height / 2) * np.sin(angle)) / size
    stops = rng.uniform(2.0, 4.0) * ramp + 0.6 * _smooth_noise(rng, height, width, size * 0.4)
    radiance = radiance * (2.0**stops)[:, :, None]
    median = float(np.median(_luma(radiance)))
    if rng.random() < 0.6:
        # A sunlit patch (light through a window): the scene itself, many times brighter.
        patch = _rounded_rect(
            yy,
            xx,
            rng.uniform(0.2, 0.8) * height,
            rng.uniform(0.2, 0.8) * width,
            rng.uniform(0.15, 0.35) * height,
            rng.uniform(0.15, 0.35) * width,
            0.05 * size,
        )
        patch = _gaussian(patch, rng.uniform(0.01, 0.04) * size)
        radiance = radiance * (1.0 + rng.uniform(6.0, 25.0) * patch)[:, :, None]
    for _ in range(int(rng.integers(0, 3))):
        # A lamp: a small, very bright core and a faint wide halo (lens flare).
        cy, cx = rng.uniform(0.0, height), rng.uniform(0.0, width)
        core = _ellipse(yy, xx, cy, cx, *(rng.uniform(0.008, 0.025, size=2) * size))
        distance2 = (yy - cy) ** 2 + (xx - cx) ** 2
        halo = np.exp(-distance2 / (2.0 * (rng.uniform(0.04, 0.1) * size) ** 2))
        light = rng.uniform(100.0, 400.0) * core + rng.uniform(0.5, 3.0) * halo
        tint = np.array([1.0, rng.uniform(0.75, 0.95), rng.uniform(0.45, 0.8)], dtype=np.float32)
        radiance = radiance + (light * median)[:, :, None] * tint
    radiance = (radiance / median).astype(np.float32)  # median luminance 1

    response = _camera_response(rng)
    middle_exposure = rng.uniform(0.06, 0.12)  # median luminance -> this irradiance
    full_well = rng.uniform(1500.0, 4000.0)  # photo-electrons at saturation
    read_noise = rng.uniform(1.0, 4.0)  # electrons

    def shoot(exposure: float) -> np.ndarray:
        irradiance = np.clip(radiance * exposure, 0.0, 1.0)
        electrons = rng.poisson(irradiance * full_well).astype(np.float32)
        electrons += rng.normal(0.0, read_noise, size=electrons.shape).astype(np.float32)
        return _to_uint8(response(electrons / full_well))

    under = shoot(middle_exposure / rng.uniform(4.0, 8.0))
    over = shoot(middle_exposure * rng.uniform(4.0, 8.0))

    # Reference: global Reinhard tone mapping on luminance (keeps hue), then the same response.
    key = rng.uniform(0.16, 0.24)
    luminance = np.maximum(_luma(radiance) * key, 1e-6)
    white = max(float(np.quantile(luminance, 0.995)), 1.0)
    mapped = luminance * (1.0 + luminance / white**2) / (1.0 + luminance)
    tone_mapped = radiance * key * (mapped / luminance)[:, :, None]
    reference = _to_uint8(response(np.clip(tone_mapped, 0.0, 1.0)))
    return under, over, reference


# --------------------------------------------------------------------------------------------
# IVF: infrared + visible
# --------------------------------------------------------------------------------------------


def _ivf_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A scene for IVF and its thermal background.

    Either a crop of a packaged outdoor-ish photo (thermal = its low-frequency structure) or a
    procedural street: night sky over a horizon, buildings with windows, textured ground.

    Returns:
        ``(rgb, thermal)``: float32 ``(H, W, 3)`` and ``(H, W)``, both in [0, 1].
    """
    size = min(height, width)
    yy, xx = _grid(height, width)
    if rng.random() < 0.35:
        rgb = _random_crop(rng, _packaged_image(str(rng.choice(_OUTDOOR_SCENES))), height, width)
        luma = _luma(rgb)
        low = _gaussian(luma, rng.uniform(0.02, 0.05) * size)
        detail = luma - _gaussian(luma, 1.5)
        # Brightness says little about temperature (bright sky is cold): either sign, damped.
        sign = 1.0 if rng.random() < 0.5 else -1.0
        thermal = (
            0.4
            + sign * rng.uniform(0.3, 0.6) * (low - low.mean())
            + 0.1 * detail
            + 0.06 * (yy / height - 0.5)
        )
        return rgb, np.clip(thermal, 0.15, 0.6).astype(np.float32)

    horizon = rng.uniform(0.3, 0.5) * height
    sky_mask = np.clip(horizon - yy + 0.5, 0.0, 1.0)
    sky_top = np.array([0.05, 0.07, 0.16], dtype=np.float32) * rng.uniform(0.6, 1.4)
    sky_bottom = np.array([0.35, 0.33, 0.38], dtype=np.float32) * rng.uniform(0.6, 1.2)
    t = np.clip(yy / max(horizon, 1.0), 0.0, 1.0)[:, :, None]
    clouds = 0.06 * _smooth_noise(rng, height, width, size * 0.25)[:, :, None]
    sky = (1 - t) * sky_top + t * sky_bottom + clouds

    ground_texture = _random_crop(
        rng, _packaged_image(str(rng.choice(_GROUND_TEXTURES))), height, width, 0.3
    )
    ground_tint = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    depth_shade = 0.55 + 0.45 * np.clip((yy - horizon) / (height - horizon + 1), 0, 1)
    ground = ground_texture * ground_tint * depth_shade[:, :, None] * rng.uniform(0.6, 1.0)

    rgb = sky_mask[:, :, None] * sky + (1 - sky_mask[:, :, None]) * ground
    thermal = (
        sky_mask * (0.12 + 0.05 * (yy / height))
        + (1 - sky_mask) * (0.36 + 0.1 * (_luma(ground_texture) - 0.5) + 0.12 * depth_shade)
        + 0.03 * _smooth_noise(rng, height, width, 0.2 * size)
    )

    wall_texture = _random_crop(rng, _packaged_image("brick"), height, width, 0.5)
    for _ in range(int(rng.integers(2, 6))):
        building_w = rng.uniform(0.12, 0.3) * width
        building_h = rng.uniform(0.12, 0.35) * height
        cx = rng.uniform(0.0, width)
        cover = _rounded_rect(
            yy, xx, horizon - building_h / 2 + 1, cx, building_h / 2, building_w / 2, 0.5
        )
        wall_color = rng.uniform(0.25, 0.55) * rng.uniform(0.8, 1.0, size=3).astype(np.float32)
        wall = wall_texture * wall_color
        # Windows on a regular grid, some of them lit.
        pitch = max(3.0, rng.uniform(0.035, 0.06) * size)
        column = np.mod(xx - cx, pitch) < pitch * 0.5
        row = np.mod(yy - horizon, pitch * 1.3) < pitch * 0.6
        lit_field = _smooth_noise(rng, height, width, pitch)
        windows = (column & row & (lit_field > 0.6)).astype(np.float32) * cover
        lit_color = np.array([1.0, 0.85, 0.5], dtype=np.float32)
        wall = wall * (1 - windows[:, :, None]) + windows[:, :, None] * lit_color
        rgb = rgb * (1 - cover[:, :, None]) + cover[:, :, None] * wall
        wall_temperature = rng.uniform(0.42, 0.55) + 0.12 * windows
        thermal = thermal * (1 - cover) + cover * wall_temperature
    return np.clip(rgb, 0, 1).astype(np.float32), np.clip(thermal, 0, 1).astype(np.float32)


def _targets(
    rng: np.random.Generator, height: int, width: int
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Random people and vehicles standing on the ground, far ones smaller.

    Returns:
        List of ``(foot_y, coverage, temperature)``, coverage and temperature float32 ``(H, W)``,
        sorted far to near (the order to composite in).
    """
    size = min(height, width)
    yy, xx = _grid(height, width)
    targets = []
    for _ in range(int(rng.integers(2, 6))):
        foot_y = rng.uniform(0.5, 0.97) * height
        nearness = (foot_y / height - 0.5) / 0.47  # 0 at the horizon band, 1 at the bottom
        foot_x = rng.uniform(0.08, 0.92) * width
        body_temperature = rng.uniform(0.75, 0.95)
        texture = _smooth_noise(rng, height, width, 0.03 * size)
        if rng.random() < 0.65:
            person_h = height * (0.16 + 0.24 * nearness) * rng.uniform(0.85, 1.15)
            stride = rng.uniform(0.0, 0.08) * person_h
            torso = _rounded_rect(
                yy,
                xx,
                foot_y - 0.62 * person_h,
                foot_x,
                0.18 * person_h,
                0.13 * person_h,
                0.07 * person_h,
            )
            legs = [
                _rounded_rect(
                    yy,
                    xx,
                    foot_y - 0.24 * person_h,
                    foot_x + side * (0.055 * person_h + stride),
                    0.24 * person_h,
                    0.05 * person_h,
                    0.04 * person_h,
                )
                for side in (-1.0, 1.0)
            ]
            body = np.maximum(torso, np.maximum(*legs))
            head = _ellipse(
                yy, xx, foot_y - 0.88 * person_h, foot_x, 0.085 * person_h, 0.07 * person_h
            )
            coverage = np.maximum(body, head)
            # Clothing insulates: the body reads a little cooler than the face.
            temperature = body_temperature * (0.9 + 0.03 * texture) * (1 - head) + head * min(
                body_temperature + 0.05, 1.0
            )
        else:
            car_w = width * (0.14 + 0.2 * nearness) * rng.uniform(0.85, 1.15)
            car_h = car_w * rng.uniform(0.4, 0.55)
            direction = 1.0 if rng.random() < 0.5 else -1.0
            body = _rounded_rect(
                yy, xx, foot_y - 0.36 * car_h, foot_x, 0.24 * car_h, 0.5 * car_w, 0.12 * car_h
            )
            cabin = _rounded_rect(
                yy,
                xx,
                foot_y - 0.74 * car_h,
                foot_x - direction * 0.05 * car_w,
                0.18 * car_h,
                0.3 * car_w,
                0.12 * car_h,
            )
            wheels = np.maximum(
                _ellipse(
                    yy, xx, foot_y - 0.12 * car_h, foot_x - 0.3 * car_w, 0.12 * car_h, 0.12 * car_h
                ),
                _ellipse(
                    yy, xx, foot_y - 0.12 * car_h, foot_x + 0.3 * car_w, 0.12 * car_h, 0.12 * car_h
                ),
            )
            engine = np.exp(
                -(
                    (yy - (foot_y - 0.36 * car_h)) ** 2
                    + (xx - (foot_x + direction * 0.36 * car_w)) ** 2
                )
                / (2 * (0.15 * car_h) ** 2)
            )
            coverage = np.maximum(np.maximum(body, cabin), wheels)
            temperature = (
                rng.uniform(0.65, 0.75) * body
                + rng.uniform(0.55, 0.65) * cabin * (1 - body)
                + 0.02 * texture
            )
            temperature = np.maximum(temperature, wheels * rng.uniform(0.85, 0.95))
            temperature = np.maximum(temperature, engine * body * rng.uniform(0.9, 1.0))
        targets.append((float(foot_y), coverage.astype(np.float32), temperature.astype(np.float32)))
    targets.sort(key=lambda target: target[0])
    return targets


def _ivf_sample(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One infrared/visible pair at night.

    Returns:
        ``(infrared, visible, targets)``: ``uint8`` ``(H, W)``, ``uint8`` ``(H, W, 3)`` and the
        float32 ``(H, W)`` union coverage in [0, 1] of the hot targets.
    """
    size = min(height, width)
    yy, xx = _grid(height, width)
    scene, thermal = _ivf_scene(rng, height, width)
    # Targets wear what is around them: in the visible image their color is the local mean of
    # the scene with a small offset, so they are hard to pick out.
    surroundings = _gaussian(scene, 0.06 * size)
    target_union = np.zeros((height, width), dtype=np.float32)
    for _, coverage, temperature in _targets(rng, height, width):
        camouflage = (
            surroundings
            * rng.uniform(0.85, 1.15)
            * (1 + 0.05 * _smooth_noise(rng, height, width, 0.02 * size))[:, :, None]
        )
        weight = coverage[:, :, None]
        scene = scene * (1 - weight) + weight * camouflage
        thermal = thermal * (1 - coverage) + coverage * temperature
        target_union = np.maximum(target_union, coverage)

    # Infrared: soft optics, a little temporal noise and column fixed-pattern noise.
    infrared = _gaussian(thermal, rng.uniform(0.5, 1.0))
    infrared = infrared + rng.normal(0.0, 0.008, size=infrared.shape).astype(np.float32)
    infrared = infrared + rng.normal(0.0, 0.006, size=(1, width)).astype(np.float32)

    # Visible: dim, unevenly lit (a few street lamps), high-ISO noise, lifted blacks.
    linear = _srgb_to_linear(scene)
    gray = _luma(linear)[:, :, None]
    linear = gray + rng.uniform(0.4, 0.8) * (linear - gray)  # night scenes look washed out
    linear = linear * np.exp(0.4 * _smooth_noise(rng, height, width, size * 0.4))[:, :, None]
    lamp_color = np.array([1.0, 0.75, 0.4], dtype=np.float32)
    for _ in range(int(rng.integers(0, 3))):
        cy, cx = rng.uniform(0.05, 0.5) * height, rng.uniform(0.05, 0.95) * width
        sigma = rng.uniform(0.01, 0.025) * size
        glow = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        linear = linear + (rng.uniform(1.5, 4.0) * glow)[:, :, None] * lamp_color

    target_mean = rng.uniform(25.0, 50.0) / 255.0
    black_lift = rng.uniform(0.02, 0.06)
    gain = 1.0
    for _ in range(4):  # fit the exposure so the noise-free image has the target mean
        encoded = black_lift + (1 - black_lift) * np.clip(linear * gain, 0, 1) ** (1 / 2.2)
        gain *= (
            max(target_mean - black_lift, 1e-3) / max(float(encoded.mean()) - black_lift, 1e-3)
        ) ** 2.2
    full_well = rng.uniform(300.0, 900.0)
    electrons = rng.poisson(np.clip(linear * gain, 0, 1) * full_well).astype(np.float32)
    electrons += rng.normal(0.0, rng.uniform(1.0, 3.0), size=electrons.shape).astype(np.float32)
    visible = black_lift + (1 - black_lift) * np.clip(electrons / full_well, 0, 1) ** (1 / 2.2)
    return _to_uint8(infrared), _to_uint8(visible), target_union


# --------------------------------------------------------------------------------------------
# MIF: medical
# --------------------------------------------------------------------------------------------

# Tissue labels of the head phantom.
_AIR, _SCALP, _BONE, _CSF, _GRAY, _WHITE, _HOT_LESION, _EDEMA, _COLD_LESION = range(9)

# Relative intensity of each tissue label, indexed by label.
_T1_TABLE = np.array([0.0, 0.85, 0.08, 0.14, 0.45, 0.68, 0.55, 0.36, 0.28], dtype=np.float32)
_T2_TABLE = np.array([0.0, 0.5, 0.06, 0.95, 0.58, 0.4, 0.78, 0.72, 0.86], dtype=np.float32)
_CT_TABLE = np.array([0.0, 0.3, 1.0, 0.2, 0.36, 0.32, 0.44, 0.27, 0.25], dtype=np.float32)
_FDG_TABLE = np.array([0.0, 0.05, 0.02, 0.0, 0.85, 0.3, 1.35, 0.22, 0.08], dtype=np.float32)
_PERFUSION_TABLE = np.array([0.0, 0.08, 0.03, 0.0, 0.8, 0.42, 1.15, 0.3, 0.12], dtype=np.float32)


def _head_phantom(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random axial head slice as a tissue label map.

    Egg-shaped head (front up) with scalp, skull, a thin CSF layer, folded cortex with sulci,
    white matter, an interhemispheric fissure, two lateral ventricles and one or two lesions
    (hot tumour with edema, or cold infarct).

    Returns:
        int8 label map, shape ``(height, width)``, labels ``_AIR`` .. ``_COLD_LESION``.
    """
    size = min(height, width)
    yy, xx = _grid(height, width)
    semi_y = 0.45 * height * rng.uniform(0.86, 1.0)
    semi_x = min(semi_y * rng.uniform(0.72, 0.86), 0.46 * width)
    cy = height / 2 + rng.uniform(-0.03, 0.03) * height
    cx = width / 2 + rng.uniform(-0.03, 0.03) * width
    tilt = np.deg2rad(rng.uniform(-8.0, 8.0))
    cos, sin = np.cos(tilt), np.sin(tilt)
    u = ((xx - cx) * cos + (yy - cy) * sin) / semi_x  # left-right, in head radii
    v = (-(xx - cx) * sin + (yy - cy) * cos) / semi_y  # front (-) to back (+)
    u = u / (1.0 + 0.07 * v)  # wider at the back
    rho = np.hypot(u, v) * (1.0 + 0.012 * _smooth_noise(rng, height, width, 0.3 * size))

    scalp = rng.uniform(0.025, 0.045)
    bone = rng.uniform(0.05, 0.08)
    skull_inner = 1.0 - scalp - bone
    brain_edge = skull_inner - rng.uniform(0.012, 0.025)
    # Gyri: the white matter reaches into the cortex along a wobbly angular wave; sulci are thin
    # CSF clefts cut inward from the surface where the wave is lowest.
    gyri = int(rng.integers(16, 26))
    wobble = 2.5 * _smooth_noise(rng, height, width, rng.uniform(0.08, 0.14) * size)
    wave = np.sin(gyri * np.arctan2(v, u) + wobble + rng.uniform(0, 2 * np.pi))
    ribbon = rng.uniform(0.06, 0.09)
    depth = rng.uniform(0.1, 0.16) * (1 + 0.35 * _smooth_noise(rng, height, width, 0.1 * size))
    white_edge = brain_edge - ribbon - depth * (1 - wave) / 2
    white_edge = white_edge + 0.015 * _smooth_noise(rng, height, width, 0.05 * size)

    labels = np.full((height, width), _AIR, dtype=np.int8)
    labels[rho < 1.0] = _SCALP
    labels[rho < 1.0 - scalp] = _BONE
    labels[rho < skull_inner] = _CSF
    brain = rho < brain_edge
    labels[brain] = _GRAY
    labels[brain & (rho < white_edge)] = _WHITE
    sulci = brain & (wave < -0.88) & (rho > white_edge + 0.03)
    labels[sulci] = _CSF
    fissure = brain & (np.abs(u * semi_x) < max(0.6, 0.006 * size)) & (np.abs(v + 0.05) > 0.3)
    labels[fissure] = _CSF

    ventricle_scale = rng.uniform(0.7, 1.4)
    spread = rng.uniform(0.09, 0.14)
    bend = rng.uniform(0.3, 0.8)
    for side in (-1.0, 1.0):
        # Lateral ventricles: crescents close to the midline at the front, diverging backwards.
        bent_u = u - side * bend * (v + 0.05) ** 2
        lobe = _ellipse(
            v,
            bent_u,
            -0.05,
            side * spread,
            0.3 * ventricle_scale,
            0.065 * ventricle_scale,
            angle=-side * np.deg2rad(rng.uniform(8, 18)),
            softness=1e-3,
        )
        labels[(lobe > 0.5) & brain] = _CSF

    for _ in range(int(rng.integers(1, 3))):
        radius = rng.uniform(0.05, 0.12)
        angle = rng.uniform(0, 2 * np.pi)
        distance = rng.uniform(0.15, 0.6)
        ly, lx = distance * np.sin(angle), distance * np.cos(angle)
        warp = 1.0 + 0.15 * _smooth_noise(rng, height, width, 0.05 * size)
        lesion_rho = (
            np.hypot((u - lx) / radius, (v - ly) / (radius * rng.uniform(0.8, 1.25))) * warp
        )
        if rng.random() < 0.6:
            labels[(lesion_rho < rng.uniform(1.6, 2.2)) & brain] = _EDEMA
            labels[(lesion_rho < 1.0) & brain] = _HOT_LESION
        else:
            labels[(lesion_rho < 1.0) & brain] = _COLD_LESION
    return labels


def _mif_sample(
    rng: np.random.Generator, height: int, width: int, functional: str, weighting: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One medical pair from a random head phantom.

    Args:
        rng: random generator.
        height: image height.
        width: image width.
        functional: contrast of modality B: ``"ct"``, ``"pet"`` or ``"spect"``.
        weighting: ``"t1"``, ``"t2"`` or ``None`` (drawn per pair).

    Returns:
        ``(mri, other, labels)``: ``uint8`` ``(H, W)`` MRI; ``uint8`` ``(H, W)`` for CT or
        ``(H, W, 3)`` for PET/SPECT; int8 ``(H, W)`` tissue labels.
    """
    size = min(height, width)
    labels = _head_phantom(rng, height, width)
    head = labels != _AIR
    drawn_weighting = "t2" if rng.random() < 0.5 else "t1"  # drawn always: same phantom either way
    weighting = weighting or drawn_weighting

    # MRI: tissue contrast, partial-volume blur, smooth bias field, Rician noise.
    mri = (_T1_TABLE if weighting == "t1" else _T2_TABLE)[labels]
    mri = mri * (1 + 0.04 * _smooth_noise(rng, height, width, 0.03 * size)) * head
    mri = _gaussian(mri, 0.6) * (1 + 0.08 * _smooth_noise(rng, height, width, 0.5 * size))
    noise_sigma = rng.uniform(0.008, 0.02)
    mri = np.hypot(
        mri + rng.normal(0.0, noise_sigma, mri.shape), rng.normal(0.0, noise_sigma, mri.shape)
    )
    mri_u8 = _to_uint8(mri / max(float(np.quantile(mri, 0.999)), 1e-3) * rng.uniform(0.85, 0.97))

    if functional == "ct":
        ct = _CT_TABLE[labels].copy()
        bone = labels == _BONE
        ct[bone] *= 0.88 + 0.12 * np.clip(
            _smooth_noise(rng, height, width, 0.02 * size)[bone], -1, 1
        )
        ct = _gaussian(ct, 0.5) + rng.normal(0.0, 0.01, size=ct.shape) * head
        return mri_u8, _to_uint8(ct), labels

    # PET / SPECT: tracer uptake, counting noise, poor resolution, color map, black outside.
    table = _FDG_TABLE if functional == "pet" else _PERFUSION_TABLE
    uptake = table[labels] * (1 + 0.18 * _smooth_noise(rng, height, width, 0.15 * size))
    counts = rng.uniform(40.0, 120.0) if functional == "pet" else rng.uniform(15.0, 40.0)
    uptake = rng.poisson(np.clip(uptake, 0, None) * counts).astype(np.float32) / counts
    factor = 3 if functional == "pet" else 4
    sigma = (0.02 if functional == "pet" else 0.035) * size
    blurred = _gaussian(uptake, sigma)
    low_h, low_w = max(4, height // factor), max(4, width // factor)
    low = cv2.resize(blurred, (low_w, low_h), interpolation=cv2.INTER_AREA)
    activity = cv2.resize(low, (width, height), interpolation=cv2.INTER_LINEAR)
    outline = _gaussian(head.astype(np.float32), 0.01 * size + 0.5)
    activity = np.clip(activity, 0, None) * outline
    activity = activity / max(float(np.quantile(activity[head], 0.995)), 1e-3)
    stops = _PET_STOPS if functional == "pet" else _SPECT_STOPS
    return mri_u8, _to_uint8(_colormap(activity, stops)), labels
