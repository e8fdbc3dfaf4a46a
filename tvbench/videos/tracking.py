"""Trackers (dense grid tracks over a clip) and flow estimators (I1 -> I2), as registries.

Classical CPU entries, no weights: ``lk`` (OpenCV pyramidal Lucas-Kanade over every frame of the clip with a
forward-backward check) and ``dis`` (OpenCV DIS optical flow). The paper's models (CoTracker3, SEA-RAFT) are
named as GPU options but not implemented yet: asking for them says what they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tvbench.errors import ConfigError, UnavailableError


@dataclass
class Tracks:
    start: np.ndarray  # (N, 2) float32 x, y in I1
    end: np.ndarray  # (N, 2) float32 x, y in I2
    visible: np.ndarray  # (N,) bool: tracked through the clip, visible at the end, forward-backward consistent

    def kept(self) -> "Tracks":
        v = self.visible
        return Tracks(self.start[v], self.end[v], v[v])

    def __len__(self) -> int:
        return len(self.start)


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise UnavailableError("tvbench data build needs OpenCV: pip install 'tvbench[video]'") from exc
    return cv2


def _gray(frame: np.ndarray) -> np.ndarray:
    return _cv2().cvtColor(frame, _cv2().COLOR_RGB2GRAY)


def grid_points(width: int, height: int, per_side: int = 24) -> np.ndarray:
    """A regular grid of about ``per_side`` points along the longer side, half a step from the edges."""
    step = max(width, height) / per_side
    xs = np.arange(step / 2, width, step)
    ys = np.arange(step / 2, height, step)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)


class LucasKanadeTracker:
    """Pyramidal LK frame to frame over the clip, then back; a track survives if every step succeeded both ways,
    it stays in the frame, it returns within ``fb_max_px`` of where it started, and its patch at the end looks like
    its patch at the start (mean absolute grey difference of a ``patch`` square at most ``appearance_max``): a point
    covered by a moving object (occluded, so not visible at the end) is dropped even when LK slid along with it."""

    name = "lk"

    def __init__(self, per_side: int = 24, win: int = 15, levels: int = 3, fb_max_px: float = 1.0,
                 patch: int = 9, appearance_max: float = 8.0):
        self.per_side, self.win, self.levels, self.fb_max_px = per_side, win, levels, fb_max_px
        self.patch, self.appearance_max = patch, appearance_max

    def describe(self) -> dict:
        return {"name": self.name, "per_side": self.per_side, "win": self.win, "levels": self.levels,
                "fb_max_px": self.fb_max_px, "patch": self.patch, "appearance_max": self.appearance_max}

    def _appearance(self, first: np.ndarray, last: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        size = (self.patch, self.patch)
        a, b = first.astype(np.float32), last.astype(np.float32)
        return np.array([float(np.abs(cv2.getRectSubPix(a, size, tuple(map(float, p)))
                                      - cv2.getRectSubPix(b, size, tuple(map(float, q)))).mean())
                         for p, q in zip(start, end)], np.float32)

    def _run(self, grays: list[np.ndarray], points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = _cv2()
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
        ok = np.ones(len(points), bool)
        current = points.reshape(-1, 1, 2).astype(np.float32)
        for a, b in zip(grays[:-1], grays[1:]):
            current, status, _ = cv2.calcOpticalFlowPyrLK(a, b, current, None, winSize=(self.win, self.win),
                                                          maxLevel=self.levels, criteria=criteria)
            ok &= status.reshape(-1).astype(bool)
        return current.reshape(-1, 2), ok

    def track(self, frames: list[np.ndarray]) -> Tracks:
        grays = [_gray(f) for f in frames]
        height, width = grays[0].shape
        start = grid_points(width, height, self.per_side)
        end, ok_forward = self._run(grays, start)
        back, ok_backward = self._run(grays[::-1], end)
        inside = (end[:, 0] >= 0) & (end[:, 0] <= width - 1) & (end[:, 1] >= 0) & (end[:, 1] <= height - 1)
        consistent = np.linalg.norm(back - start, axis=1) <= self.fb_max_px
        similar = self._appearance(grays[0], grays[-1], start, end) <= self.appearance_max
        return Tracks(start, end, ok_forward & ok_backward & inside & consistent & similar)


class DisFlow:
    """OpenCV DIS optical flow from I1 to I2 (grey), (H, W, 2) in pixels."""

    name = "dis"

    def __init__(self, preset: str = "medium"):
        self.preset = preset

    def describe(self) -> dict:
        return {"name": self.name, "preset": self.preset}

    def flow(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        dis = cv2.DISOpticalFlow_create(presets[self.preset])
        return dis.calc(_gray(first), _gray(last), None)


def _needs_weights(name: str, what: str) -> Callable[[], object]:
    def factory():
        raise UnavailableError(f"{name}: {what}; it is a GPU option that needs its weights and is not implemented "
                               f"in this version of tvbench data build: use the CPU default")
    return factory


TRACKERS: dict[str, tuple[Callable[[], object], str]] = {
    "lk": (LucasKanadeTracker, "OpenCV pyramidal Lucas-Kanade on a dense grid, forward-backward check (CPU)"),
    "cotracker3": (_needs_weights("cotracker3", "CoTracker3 (the paper's tracker, torch.hub, CC BY-NC weights)"),
                   "the paper's tracker (GPU, weights; not implemented yet)"),
}
FLOWS: dict[str, tuple[Callable[[], object], str]] = {
    "dis": (DisFlow, "OpenCV DIS optical flow (CPU)"),
    "sea-raft": (_needs_weights("sea-raft", "SEA-RAFT (the paper's flow, HF-hosted weights)"),
                 "the paper's flow (GPU, weights; not implemented yet)"),
}


def _create(registry: dict, kind: str, name: str):
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; available: {', '.join(registry)}")
    return registry[name][0]()


def create_tracker(name: str = "lk"):
    return _create(TRACKERS, "tracker", name)


def create_flow(name: str = "dis"):
    return _create(FLOWS, "flow estimator", name)
