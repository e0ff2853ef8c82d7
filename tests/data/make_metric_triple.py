"""Regenerate tests/data/metric_triple/{a,b,fused}.png (the committed metric test fixture).

A is a gray 72x88 image with smooth blobs and a flat black band; B an RGB texture with a
saturated corner; the fused image the rounded average of A and B's channels plus noise. Run from
the repository root: ``python tests/data/make_metric_triple.py``.
"""

from pathlib import Path

import numpy as np
from scipy import ndimage

from fusionfm.io import write_image

OUT = Path(__file__).parent / "metric_triple"


def main() -> None:
    rng = np.random.default_rng(20261126)
    height, width = 72, 88
    yy, xx = np.mgrid[0:height, 0:width]
    a = 60 + 40 * np.sin(xx / 9.0) + 30 * np.cos(yy / 7.0)
    for cy, cx, r in ((20, 25, 8), (50, 60, 11)):
        a += 120 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    a[:6, :] = 0
    a = np.clip(np.round(a + rng.normal(0, 2, a.shape)), 0, 255)
    texture = ndimage.gaussian_filter(rng.normal(size=(height, width, 3)), (1.5, 1.5, 0)) * 300
    b = np.clip(np.round(110 + texture + np.array([10.0, 0.0, -15.0])), 0, 255)
    b[-12:, -16:, :] = 255
    fused = np.clip(np.round((a[..., None] + b) / 2 + rng.normal(0, 3, b.shape)), 0, 255)
    OUT.mkdir(exist_ok=True)
    write_image(OUT / "a.png", a.astype(np.uint8))
    write_image(OUT / "b.png", b.astype(np.uint8))
    write_image(OUT / "fused.png", fused.astype(np.uint8))


if __name__ == "__main__":
    main()
