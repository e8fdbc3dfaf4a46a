"""Filters of a clip; each returns None (kept) or a rejection reason (one line).

Thresholds are in pixels of the clip's frames; the paper gives none (these are our defaults, see the report).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tvbench.videos.tracking import Tracks


@dataclass(frozen=True)
class FilterConfig:
    border_frac: float = 0.1  # width of the border band, fraction of the shorter side
    border_max_px: float = 1.0  # median flow magnitude in the band above this: the camera moved
    blur_min: float = 50.0  # variance of the Laplacian (grey, 0-255) of I1 or I2 below this: blurred
    motion_min_px: float = 2.0  # the largest kept track displacement below this: static clip
    min_tracks: int = 1  # fewer visible tracks than this: nothing to annotate

    def describe(self) -> dict:
        return asdict(self)


def border_motion(flow: np.ndarray, frac: float) -> float:
    """Median flow magnitude over the frame's border band."""
    height, width = flow.shape[:2]
    band = max(1, int(round(frac * min(height, width))))
    mask = np.zeros((height, width), bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return float(np.median(np.linalg.norm(flow[mask], axis=-1)))


def sharpness(frame: np.ndarray) -> float:
    """Variance of the Laplacian of the grey frame."""
    import cv2

    return float(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def check_quality(first: np.ndarray, last: np.ndarray, config: FilterConfig) -> str | None:
    score = min(sharpness(first), sharpness(last))
    if score < config.blur_min:
        return f"blurred: variance of the Laplacian {score:.1f} < {config.blur_min}"
    return None


def check_global_motion(flow: np.ndarray, config: FilterConfig) -> str | None:
    motion = border_motion(flow, config.border_frac)
    if motion > config.border_max_px:
        return f"camera moved: median border flow {motion:.2f} px > {config.border_max_px}"
    return None


def check_motion(tracks: Tracks, config: FilterConfig) -> str | None:
    if len(tracks) < config.min_tracks:
        return f"too few tracks: {len(tracks)} visible < {config.min_tracks}"
    largest = float(np.linalg.norm(tracks.end - tracks.start, axis=1).max())
    if largest < config.motion_min_px:
        return f"static: largest track displacement {largest:.2f} px < {config.motion_min_px}"
    return None
