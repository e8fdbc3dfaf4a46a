"""Classical, training-free drag editing by image warping: a real baseline that runs on a CPU in a fraction of a second.

A thin-plate spline (scikit-image) maps every drag target back to its handle, while anchor points hold the
rest of the image in place: the image border always, plus everything outside the case's editable mask
when the case has one, or everything farther than ``radius`` from the drag when it has none. The warp is
a backward map (output pixel -> source pixel), so the output has no holes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from tvbench.cases import Case
from tvbench.errors import CaseError
from tvbench.methods.base import Method


def _border_points(width: int, height: int, spacing: float) -> np.ndarray:
    nx = max(2, int(round((width - 1) / spacing)) + 1)
    ny = max(2, int(round((height - 1) / spacing)) + 1)
    xs = np.linspace(0, width - 1, nx)
    ys = np.linspace(0, height - 1, ny)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
    left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right])


def _grid_points(width: int, height: int, spacing: float) -> np.ndarray:
    xs = np.arange(spacing / 2, width, spacing)
    ys = np.arange(spacing / 2, height, spacing)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1)


def _min_distance(points: np.ndarray, to: np.ndarray) -> np.ndarray:
    return np.sqrt(((points[:, None, :] - to[None, :, :]) ** 2).sum(-1)).min(1)


def _fit_tps(src: np.ndarray, dst: np.ndarray):
    from skimage.transform import ThinPlateSplineTransform

    if hasattr(ThinPlateSplineTransform, "from_estimate"):
        result = ThinPlateSplineTransform.from_estimate(src, dst)
        return result if result else None
    tps = ThinPlateSplineTransform()
    return tps if tps.estimate(src, dst) else None


@dataclass
class ThinPlateSplineWarp(Method):
    """Drag by thin-plate-spline warping, anchored outside the editable region."""

    name = "tps-warp"
    inputs = frozenset({"image", "points", "mask"})
    summary = "classical thin-plate-spline warp driven by the drag points (CPU, ~0.2 s per image)"

    anchor_spacing: float = 32.0  # pixels between anchor points, on the border and on the grid
    radius: float = 0.0  # maskless cases: anchors farther than this from the drag; 0 = max(64, 2 x longest drag)
    clearance: float = 12.0  # no anchor closer than this to a handle or a target (prevents folds)
    use_mask: bool = True  # anchor everything outside the case's editable mask when it has one
    order: int = 1  # resampling: 0 nearest, 1 bilinear, 3 bicubic

    def __post_init__(self) -> None:
        if self.anchor_spacing < 4:
            raise ValueError("anchor_spacing must be at least 4 pixels")
        if self.order not in (0, 1, 3):
            raise ValueError("order must be 0, 1 or 3")

    def anchors(self, width: int, height: int, handles: np.ndarray, targets: np.ndarray,
                mask: np.ndarray | None) -> np.ndarray:
        """The points held fixed: border, plus the grid outside the editable region."""
        drag = np.concatenate([handles, targets])
        grid = _grid_points(width, height, self.anchor_spacing)
        if mask is not None:
            from scipy.ndimage import distance_transform_edt

            distance_to_region = distance_transform_edt(~mask)
            gx = grid[:, 0].astype(int)
            gy = grid[:, 1].astype(int)
            grid = grid[distance_to_region[gy, gx] > self.clearance]
        else:
            longest = float(np.linalg.norm(targets - handles, axis=1).max())
            radius = self.radius or max(64.0, 2.0 * longest)
            grid = grid[_min_distance(grid, drag) > radius]
        points = np.concatenate([_border_points(width, height, self.anchor_spacing), grid])
        return points[_min_distance(points, drag) > self.clearance]

    def edit(self, case: Case, *, seed: int) -> Image.Image:
        from skimage.transform import warp

        image = case.open_image("source")
        if not case.points:
            return image
        pairs = np.asarray(case.points, dtype=np.float64)
        handles, targets = pairs[:, :2], pairs[:, 2:]
        mask = case.open_mask("mask_source") if (self.use_mask and case.mask_source is not None) else None
        anchors = self.anchors(image.width, image.height, handles, targets, mask)
        # Backward map: output positions (targets, anchors) -> where to read in the source (handles, anchors).
        out_points, in_points = _unique_rows(np.concatenate([targets, anchors]), np.concatenate([handles, anchors]))
        tps = _fit_tps(out_points, in_points)
        if tps is None:
            raise CaseError(case.id, "points", "the thin-plate spline has no solution for these drag points")
        pixels = np.asarray(image, dtype=np.float64) / 255.0
        warped = warp(pixels, tps, order=self.order, mode="edge")
        return Image.fromarray(np.clip(np.rint(warped * 255.0), 0, 255).astype(np.uint8))


def _unique_rows(out_points: np.ndarray, in_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated output positions (two drags to one target): the first one wins."""
    _, keep = np.unique(np.round(out_points, 6), axis=0, return_index=True)
    keep = np.sort(keep)
    return out_points[keep], in_points[keep]
