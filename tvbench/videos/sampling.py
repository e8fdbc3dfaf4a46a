"""Sparse points from dense tracks, with the normalised flow-magnitude map as the sampling weight (paper Sec. 3.2,
after LightningDrag and FramePainter): large motions are likely, small displacements stay possible (``floor``)."""

from __future__ import annotations

import numpy as np

from tvbench.videos.tracking import Tracks


def flow_weights(tracks: Tracks, magnitude: np.ndarray, floor: float = 0.02, min_move_px: float = 1.0) -> np.ndarray:
    """Each track's weight: the flow magnitude at its start pixel divided by the map's maximum, plus ``floor``;
    a track that moved less than ``min_move_px`` (static background) weighs 0."""
    height, width = magnitude.shape
    peak = float(magnitude.max())
    norm = magnitude / peak if peak > 0 else np.zeros_like(magnitude)
    xs = np.clip(np.rint(tracks.start[:, 0]).astype(int), 0, width - 1)
    ys = np.clip(np.rint(tracks.start[:, 1]).astype(int), 0, height - 1)
    moved = np.linalg.norm(tracks.end - tracks.start, axis=1) >= min_move_px
    return np.where(moved, norm[ys, xs] + floor, 0.0)


def sample_sparse(tracks: Tracks, magnitude: np.ndarray, n: int = 5, seed: int = 0,
                  floor: float = 0.02, min_move_px: float = 1.0) -> np.ndarray:
    """Indices of up to ``n`` tracks drawn without replacement, weight by :func:`flow_weights` (seeded)."""
    if len(tracks) == 0:
        return np.zeros(0, int)
    weights = flow_weights(tracks, magnitude, floor, min_move_px)
    if weights.sum() <= 0:
        return np.zeros(0, int)
    rng = np.random.default_rng(seed)
    k = min(n, int((weights > 0).sum()))
    return np.sort(rng.choice(len(tracks), size=k, replace=False, p=weights / weights.sum()))


def as_pairs(tracks: Tracks, index: np.ndarray | None = None, width: int | None = None,
             height: int | None = None) -> list[list[float]]:
    """``[[x1, y1, x2, y2], ...]`` rounded to 0.01 px and clamped to the pixel-centre grid."""
    start, end = (tracks.start, tracks.end) if index is None else (tracks.start[index], tracks.end[index])
    pairs = np.concatenate([start, end], 1).astype(float)
    if width is not None and height is not None:
        pairs[:, 0::2] = np.clip(pairs[:, 0::2], 0, width - 1)
        pairs[:, 1::2] = np.clip(pairs[:, 1::2], 0, height - 1)
    return [[round(float(v), 2) for v in row] for row in pairs]
