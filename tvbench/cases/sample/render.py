"""Supersampled rendering of a textured object, at rest or under an exact transform, over a background.

Why pull-back rendering: for every output sub-sample we apply the inverse transform and evaluate the object's
inside-test and texture there. The target is then exactly "the source object moved by T" (no raster is
resampled, so no interpolation blur or holes), and the drag targets ``T(handle)`` land on the very texture
that was under the handle.

Pixel convention: pixel ``(i, j)`` (column, row) is centred at ``x = i, y = j`` and covers
``[i - 0.5, i + 0.5) x [j - 0.5, j + 0.5)``; a drag point ``(x, y)`` therefore refers to pixel
``(round(x), round(y))``, as in DragBench-style annotations. Each pixel averages ``SUPERSAMPLE**2``
sub-samples on a regular grid, accumulated one sub-sample at a time (elementwise adds only, so the sum
happens in the same order on every machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tvbench.cases.sample.shapes import SceneObject
from tvbench.cases.sample.textures import Texture
from tvbench.cases.sample.transforms import Transform

SUPERSAMPLE = 3  # object pixels: 9 sub-samples, so edges and fine texture are anti-aliased
BACKGROUND_SUPERSAMPLE = 2  # the static background is identical in source and target; 4 samples suffice
BOX_MARGIN = 3  # px added around the forward-mapped support when choosing which pixels to render


def subsample_offsets(n: int = SUPERSAMPLE) -> list[tuple[float, float]]:
    """Sub-sample positions relative to a pixel centre, row by row."""
    steps = [(k + 0.5) / n - 0.5 for k in range(n)]
    return [(ox, oy) for oy in steps for ox in steps]


def render_background(texture: Texture, width: int, height: int) -> np.ndarray:
    """The full-image background, ``(height, width, 3)`` floats, averaged over a 2x2 sub-sample grid."""
    ys, xs = np.mgrid[0:height, 0:width]
    x = xs.ravel().astype(np.float64)
    y = ys.ravel().astype(np.float64)
    total = np.zeros((x.size, 3), dtype=np.float64)
    offsets = subsample_offsets(BACKGROUND_SUPERSAMPLE)
    for ox, oy in offsets:
        total += texture(x + ox, y + oy)
    return (total / len(offsets)).reshape(height, width, 3)


@dataclass(frozen=True)
class Render:
    """A composited image and the object's coverage (fraction of each pixel's sub-samples on the object)."""

    image: np.ndarray  # (H, W, 3) float in [0, 1]
    coverage: np.ndarray  # (H, W) float in [0, 1]

    def rgb8(self) -> np.ndarray:
        return to_uint8(self.image)

    def mask8(self) -> np.ndarray:
        """Binary mask, 0 or 255: pixels at least half covered by the object."""
        return np.where(self.coverage >= 0.5, 255, 0).astype(np.uint8)


def render_object(background: np.ndarray, obj: SceneObject, transform: Transform | None = None) -> Render:
    """Composite ``obj`` (moved by ``transform``, or at rest when ``None``) over ``background``."""
    height, width = background.shape[:2]
    x0, y0, x1, y1 = _support_box(obj, transform, width, height)
    image = background.copy()
    coverage = np.zeros((height, width), dtype=np.float64)
    if x0 > x1 or y0 > y1:
        return Render(image, coverage)
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    px = xs.ravel().astype(np.float64)
    py = ys.ravel().astype(np.float64)
    colour_sum = np.zeros((px.size, 3), dtype=np.float64)
    count = np.zeros(px.size, dtype=np.float64)
    offsets = subsample_offsets()
    for ox, oy in offsets:
        sx, sy = px + ox, py + oy
        qx, qy = (sx, sy) if transform is None else transform.inverse(sx, sy)
        hit = obj.inside(qx, qy)
        if hit.any():
            colour_sum[hit] += obj.colour(qx[hit], qy[hit])
            count += hit
    n = float(len(offsets))
    region = background[y0:y1 + 1, x0:x1 + 1].reshape(-1, 3)
    composed = (colour_sum + (n - count)[:, None] * region) / n
    image[y0:y1 + 1, x0:x1 + 1] = composed.reshape(y1 - y0 + 1, x1 - x0 + 1, 3)
    coverage[y0:y1 + 1, x0:x1 + 1] = (count / n).reshape(y1 - y0 + 1, x1 - x0 + 1)
    return Render(image, coverage)


def _support_box(obj: SceneObject, transform: Transform | None, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box holding the (transformed) object: inside points on a 1 px grid, mapped forward, plus a margin.

    Between grid points the support reaches at most ~0.7 px times the map's stretch (< 2 here), which the
    margin covers; pixels outside the box are pure background.
    """
    bx0, by0, bx1, by1 = obj.image_bounds()
    ys, xs = np.mgrid[np.floor(by0):np.ceil(by1) + 1, np.floor(bx0):np.ceil(bx1) + 1]
    x = xs.ravel().astype(np.float64)
    y = ys.ravel().astype(np.float64)
    keep = obj.inside(x, y)
    x, y = x[keep], y[keep]
    if transform is not None:
        x, y = transform.forward(x, y)
    if x.size == 0:
        return (0, 0, -1, -1)
    return (max(int(np.floor(x.min())) - BOX_MARGIN, 0), max(int(np.floor(y.min())) - BOX_MARGIN, 0),
            min(int(np.ceil(x.max())) + BOX_MARGIN, width - 1), min(int(np.ceil(y.max())) + BOX_MARGIN, height - 1))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round half up to 0..255 (floor(v*255 + 0.5) is exact and the same everywhere)."""
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
