"""Thin-plate-spline geometry behind ``tps-warp``: anchor points, the fitted spline and the backward warp.

Kept apart from the method class so that listing methods does not import numpy, scipy or scikit-image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


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


def fit_tps(src: np.ndarray, dst: np.ndarray):
    from skimage.transform import ThinPlateSplineTransform

    if hasattr(ThinPlateSplineTransform, "from_estimate"):
        result = ThinPlateSplineTransform.from_estimate(src, dst)
        return result if result else None
    tps = ThinPlateSplineTransform()
    return tps if tps.estimate(src, dst) else None


def _unique_rows(out_points: np.ndarray, in_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated output positions (two drags to one target): the first one wins."""
    _, keep = np.unique(np.round(out_points, 6), axis=0, return_index=True)
    keep = np.sort(keep)
    return out_points[keep], in_points[keep]


def anchor_points(width: int, height: int, handles: np.ndarray, targets: np.ndarray, mask: np.ndarray | None, *,
                  spacing: float, radius: float, clearance: float) -> np.ndarray:
    """The points held fixed: the border, plus the grid outside the editable region (``mask``) or, without a
    mask, farther than ``radius`` (0: max(64, 2 x the longest drag)) from the drag; none within ``clearance``."""
    drag = np.concatenate([handles, targets])
    grid = _grid_points(width, height, spacing)
    if mask is not None:
        from scipy.ndimage import distance_transform_edt

        distance_to_region = distance_transform_edt(~mask)
        gx = grid[:, 0].astype(int)
        gy = grid[:, 1].astype(int)
        grid = grid[distance_to_region[gy, gx] > clearance]
    else:
        longest = float(np.linalg.norm(targets - handles, axis=1).max())
        radius = radius or max(64.0, 2.0 * longest)
        grid = grid[_min_distance(grid, drag) > radius]
    points = np.concatenate([_border_points(width, height, spacing), grid])
    return points[_min_distance(points, drag) > clearance]


def warp_by_points(image: Image.Image, points, mask: np.ndarray | None, *, spacing: float, radius: float,
                   clearance: float, order: int) -> Image.Image | None:
    """``image`` with each drag target pulled back to its handle; None when the spline has no solution."""
    from skimage.transform import warp

    pairs = np.asarray(points, dtype=np.float64)
    handles, targets = pairs[:, :2], pairs[:, 2:]
    anchors = anchor_points(image.width, image.height, handles, targets, mask, spacing=spacing, radius=radius,
                            clearance=clearance)
    # Backward map: output positions (targets, anchors) -> where to read in the source (handles, anchors).
    out_points, in_points = _unique_rows(np.concatenate([targets, anchors]), np.concatenate([handles, anchors]))
    tps = fit_tps(out_points, in_points)
    if tps is None:
        return None
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    warped = warp(pixels, tps, order=order, mode="edge")
    return Image.fromarray(np.clip(np.rint(warped * 255.0), 0, 255).astype(np.uint8))
