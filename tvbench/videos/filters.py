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
    cut_min_diff: float = 12.0  # shot cut: mean absolute grey change (0-255) between consecutive frames at least
    cut_ratio: float = 2.5  # this, and at least this many times the change at the neighbouring frames (a spike)
    dark_max: float = 30.0  # mean grey (0-255) of I1 or I2 below this: too dark
    bright_min: float = 225.0  # mean grey of I1 or I2 above this: too bright
    clipped_max: float = 0.4  # fraction of I1's or I2's pixels near black or white (grey <= 2 or >= 253) above this
    exposure_change_max: float = 40.0  # mean grey of I1 and I2 differing by more than this: the exposure changed

    @classmethod
    def from_options(cls, options: dict[str, str]) -> "FilterConfig":
        """From ``--filter-option KEY=VALUE`` text: an unknown key or a value that is not a number is one line."""
        from dataclasses import fields

        from tvbench.errors import ConfigError

        types = {f.name: f.type for f in fields(cls)}
        values = {}
        for key, text in options.items():
            if key not in types:
                raise ConfigError(f"--filter-option {key}: unknown; accepted: {', '.join(types)}")
            try:
                values[key] = int(text) if types[key] in (int, "int") else float(text)
            except ValueError:
                raise ConfigError(f"--filter-option {key}={text}: expected a number") from None
        return cls(**values)

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


THUMBNAIL_SIDE = 128  # px: shot cuts are measured on frames this size, where small motions blur away
CLIPPED_LOW, CLIPPED_HIGH = 2, 253  # grey levels counted as black / white (compression moves exact 0 and 255)


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def thumbnail(frame: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """Float grey frame shrunk (area average) so its longer side is at most ``side``: the frame's content, without
    the pixel-level change that motion and compression noise cause."""
    import cv2

    grey = _grey(frame).astype(np.float32)
    height, width = grey.shape
    scale = side / max(height, width)
    if scale >= 1:
        return grey
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def frame_changes(frames: list[np.ndarray]) -> np.ndarray:
    """Mean absolute grey change between each frame and the next (thumbnails, 0-255)."""
    small = [thumbnail(frame) for frame in frames]
    return np.array([float(np.abs(b - a).mean()) for a, b in zip(small, small[1:])])


def check_shot_cut(frames: list[np.ndarray], config: FilterConfig, start: int = 0) -> str | None:
    """A cut is a spike: one frame-to-frame change that is large and several times the changes next to it. Steady
    motion (a pan, a moving object) changes every frame about equally, and a motion that starts is a step, not a
    spike. A clip of one step (stride 1) has nothing beside it: it is compared with ``cut_min_diff`` instead, so
    only a change of ``cut_ratio`` times that counts. ``start`` numbers the frames as in the video."""
    changes = frame_changes(frames)
    for i, change in enumerate(changes):
        beside = max(changes[max(0, i - 1):i].tolist() + changes[i + 1:i + 2].tolist(), default=config.cut_min_diff)
        if change >= config.cut_min_diff and change >= config.cut_ratio * beside:
            return (f"shot cut between frames {start + i} and {start + i + 1}: mean grey change {change:.1f} "
                    f">= {config.cut_min_diff} and >= {config.cut_ratio} x {beside:.1f} beside it")
    return None


def exposure(frame: np.ndarray) -> tuple[float, float]:
    """Mean grey (0-255) and the fraction of pixels near black or white."""
    grey = _grey(frame)
    return float(grey.mean()), float(np.mean((grey <= CLIPPED_LOW) | (grey >= CLIPPED_HIGH)))


def check_exposure(first: np.ndarray, last: np.ndarray, config: FilterConfig) -> str | None:
    """I1 and I2 must be neither too dark nor too bright nor largely clipped, and lit alike: an edit should not
    have to change the exposure."""
    means = []
    for name, frame in (("I1", first), ("I2", last)):
        mean, clipped = exposure(frame)
        if mean < config.dark_max:
            return f"too dark: {name} mean grey {mean:.1f} < {config.dark_max}"
        if mean > config.bright_min:
            return f"too bright: {name} mean grey {mean:.1f} > {config.bright_min}"
        if clipped > config.clipped_max:
            return f"clipped: {clipped:.0%} of {name} is black or white (> {config.clipped_max:.0%})"
        means.append(mean)
    if abs(means[1] - means[0]) > config.exposure_change_max:
        return (f"exposure changed: mean grey {means[0]:.1f} in I1, {means[1]:.1f} in I2 "
                f"(> {config.exposure_change_max} apart)")
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
