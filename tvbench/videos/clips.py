"""Videos in, clips out: list the inputs, decode with PyAV, cut windows at the given strides.

A clip is a window ``(video, start, start + stride)`` of one decoded video; I1 is its first frame, I2 its last,
and every frame in between is kept for tracking. Windows of one stride do not overlap. Bad input never stops
the build: :class:`BadVideo` carries one line naming the file and the reason.

Decoding hands out frames as a viewer shows them: the display rotation (phone videos) is applied, frames whose
longer side is above ``max_side`` are downscaled (the factor is kept on the clip), and videos whose shorter side is
below ``min_side`` are refused. A variable frame rate is detected from the timestamps and said in one line; each
clip keeps its frames' times, since a stride in frames then spans unequal times.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tvbench.errors import UnavailableError

MIN_SIDE = 64  # px: a shorter side below this is too small to track and to edit
MAX_SIDE = 2048  # px: a longer side above this is downscaled on decode
VFR_RATIO = 1.5  # largest / smallest interval between frames above this: variable frame rate


class BadVideo(Exception):
    """A video that cannot be used; ``str()`` is the reason, :attr:`path` the file."""

    def __init__(self, path: Path, reason: str):
        super().__init__(reason)
        self.path = Path(path)
        self.reason = reason

    def line(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Clip:
    video: Path
    start: int
    stride: int
    frames: list  # RGB uint8 arrays, frames[0] = I1, frames[-1] = I2; upright, downscaled by `scale`
    fps: float | None = None
    rotation: int = 0  # degrees counter-clockwise applied to the decoded frames (display matrix; phones: -90)
    scale: float = 1.0  # frame pixels per source pixel (< 1 when downscaled to fit max_side)
    vfr: bool = False  # the video has a variable frame rate: a stride in frames spans unequal times
    frame_times: list | None = None  # presentation time in seconds of each frame (None where unknown)
    index: int = 0  # the n-th clip (n-th group for iter_groups) cut from its video; 0 = the video's first

    @property
    def end(self) -> int:
        return self.start + self.stride

    @property
    def times(self) -> tuple[float | None, float | None]:
        """Presentation times of I1 and I2 in seconds: what a stride really spans (it varies when VFR)."""
        if not self.frame_times:
            return (None, None)
        return (self.frame_times[0], self.frame_times[-1])


def _av():
    try:
        import av
    except ImportError as exc:
        raise UnavailableError("tvbench data build needs PyAV: pip install 'tvbench[video]'") from exc
    return av


def right_angle(degrees: float) -> int:
    """``degrees`` rounded to a multiple of 90 in (-180, 180]: frames can only be turned by quarter turns."""
    turned = int(round(degrees / 90.0)) % 4 * 90
    return turned - 360 if turned > 180 else turned


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """``image`` as a viewer shows it: turned ``rotation`` degrees counter-clockwise. ``rotation`` is PyAV's
    ``VideoFrame.rotation`` (FFmpeg's display-matrix angle; a phone held upright records -90); the direction was
    checked against OpenCV's own autorotation."""
    turns = right_angle(rotation) // 90 % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int, float]:
    """``(width, height, scale)`` after shrinking so the longer side is at most ``max_side`` (scale 1: as is)."""
    longer = max(width, height)
    if longer <= max_side:
        return width, height, 1.0
    scale = max_side / longer
    return max(1, round(width * scale)), max(1, round(height * scale)), scale


def frame_intervals(path: Path) -> np.ndarray:
    """Seconds between consecutive presentation times of the first video stream, read by demuxing only (no
    decoding), so the frame-rate verdict is known before the first clip. Times are sorted (B-frames arrive out of
    order); a damaged file gives the intervals read before the damage."""
    av = _av()
    times: list[float] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.pts is not None and packet.time_base is not None:
                    times.append(float(packet.pts * packet.time_base))
    except Exception:  # noqa: BLE001 - the decoding pass reports what is wrong with the file
        pass
    intervals = np.diff(np.unique(np.asarray(times, float)))
    return intervals[intervals > 0]


class VideoReader:
    """Decodes the first video stream of one file into upright RGB frames (longer side at most ``max_side``) with
    their presentation times. :attr:`fps`, :attr:`rotation`, :attr:`scale` and :attr:`vfr` hold once the first
    frame is out. Warnings (downscaled, variable frame rate, damaged after frame n) go to ``warn``, one line each,
    naming the video by ``label`` (default: its path)."""

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None, *, min_side: int = MIN_SIDE,
                 max_side: int = MAX_SIDE, vfr_ratio: float = VFR_RATIO, label: str | None = None):
        self.path, self.warn = Path(path), warn
        self.label = label if label is not None else str(self.path)
        self.min_side, self.max_side, self.vfr_ratio = min_side, max_side, vfr_ratio
        self.fps: float | None = None
        self.rotation, self.scale, self.vfr = 0, 1.0, False
        self._size: tuple[int, int] | None = None  # (width, height) of the decoded frames before turning

    def _say(self, text: str) -> None:
        if self.warn is not None:
            self.warn(f"{self.label}: {text}")

    def _stream(self, container):
        if not container.streams.video:
            raise BadVideo(self.path, "no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # PyAV opens the stream but has no decoder for its codec
            raise BadVideo(self.path, "unsupported codec (no decoder for it in this PyAV/FFmpeg build)")
        return stream

    def _check_frame_rate(self) -> None:
        intervals = frame_intervals(self.path)
        if len(intervals) < 2:
            return
        shortest, longest = float(intervals.min()), float(intervals.max())
        self.vfr = longest / shortest > self.vfr_ratio
        if self.vfr:
            self._say(f"variable frame rate: frame intervals {shortest * 1000:.1f}-{longest * 1000:.1f} ms (ratio "
                      f"{longest / shortest:.2f} > {self.vfr_ratio}); a stride in frames spans unequal times, the "
                      f"clips keep their I1/I2 times")

    def _setup(self, frame) -> None:
        """Rotation and size from the first frame: refuse tiny videos, plan the downscale of huge ones."""
        angle = float(getattr(frame, "rotation", 0) or 0)
        self.rotation = right_angle(angle)
        if abs(angle - self.rotation) > 1 and abs(abs(angle - self.rotation) - 360) > 1:
            self._say(f"rotation {angle:g} degrees is not a quarter turn; turned by {self.rotation}")
        width, height, self.scale = fitted_size(frame.width, frame.height, self.max_side)
        if min(width, height) < self.min_side:
            shown = f"{frame.width}x{frame.height}" + (f" (downscaled to {width}x{height} to fit {self.max_side} "
                                                      f"px)" if self.scale != 1.0 else "")
            raise BadVideo(self.path, f"too small: {shown}, the shorter side must be at least {self.min_side} px")
        if self.scale != 1.0:
            self._say(f"{frame.width}x{frame.height} is larger than {self.max_side} px: frames downscaled to "
                      f"{width}x{height} (scale {self.scale:.4g}); points are in the downscaled pixels")
        self._size = (width, height)

    def _image(self, frame) -> np.ndarray:
        image = frame.to_ndarray(format="rgb24")
        if self.scale != 1.0:
            import cv2

            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        return upright(image, self.rotation)

    def __iter__(self) -> Iterator[tuple[np.ndarray, float | None]]:
        av, path = _av(), self.path
        if not path.is_file():
            raise BadVideo(path, "no such file")
        if path.stat().st_size == 0:
            raise BadVideo(path, "zero-length file")
        count, size = 0, None
        try:
            with av.open(str(path)) as container:
                stream = self._stream(container)
                self.fps = float(stream.average_rate) if stream.average_rate else None
                self._check_frame_rate()
                for frame in container.decode(stream):
                    if not count:
                        self._setup(frame)
                    if size is not None and (frame.width, frame.height) != size:
                        raise BadVideo(path, f"frame size changes within the video at frame {count}")
                    size = (frame.width, frame.height)
                    count += 1
                    yield self._image(frame), frame.time
        except BadVideo:
            raise
        except av.DecoderNotFoundError:
            raise BadVideo(path, "unsupported codec (no decoder for it in this PyAV/FFmpeg build)") from None
        except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds (InvalidDataError, EOFError, ...)
            if not count:
                raise BadVideo(path, f"cannot decode: {type(exc).__name__}: {exc}") from None
            self._say(f"damaged after frame {count} ({type(exc).__name__}); the frames before it are used")
        if not count:
            raise BadVideo(path, "no decodable frames")

    def clip(self, start: int, held: list[tuple[np.ndarray, float | None]], index: int) -> Clip:
        """The clip of the held ``(frame, time)`` pairs starting at frame ``start``."""
        return Clip(self.path, start, len(held) - 1, [f for f, _ in held], self.fps, self.rotation, self.scale,
                    self.vfr, [t for _, t in held], index)


def iter_frames(path: Path, warn: Callable[[str], None] | None = None, *, min_side: int = MIN_SIDE,
                max_side: int = MAX_SIDE) -> Iterator[tuple[np.ndarray, float | None]]:
    """Each frame (RGB uint8, upright, fitted to ``max_side``) of the first video stream, with the stream's
    average fps. A file that breaks after some frames (truncated) ends the stream there; ``warn`` gets one line."""
    reader = VideoReader(path, warn, min_side=min_side, max_side=max_side)
    for image, _ in reader:
        yield image, reader.fps


def decode(path: Path, **limits) -> tuple[list[np.ndarray], float | None]:
    """Every frame in memory and the fps (for tests and short videos; the builder streams with :func:`iter_clips`)."""
    frames, fps = [], None
    for frame, fps in iter_frames(path, **limits):
        frames.append(frame)
    return frames, fps


def iter_clips(path: Path, strides: list[int], max_clips: int | None = None,
               warn: Callable[[str], None] | None = None, *, min_side: int = MIN_SIDE, max_side: int = MAX_SIDE,
               vfr_ratio: float = VFR_RATIO, label: str | None = None) -> Iterator[Clip]:
    """The clips of one video as decoding reaches their last frame, holding only ``max(strides) + 1`` frames.

    Windows of one stride do not overlap: stride s gives starts 0, s, 2s, ... . :class:`BadVideo` if the video
    cannot be decoded, is smaller than ``min_side``, or is shorter than the shortest stride (raised after the
    stream ends). ``max_side``, ``vfr_ratio`` and ``label``: see :class:`VideoReader`.
    """
    strides = sorted(set(strides))
    reader = VideoReader(path, warn, min_side=min_side, max_side=max_side, vfr_ratio=vfr_ratio, label=label)
    buffer: deque = deque(maxlen=max(strides) + 1)
    made, count = 0, 0
    for index, timed in enumerate(reader):
        buffer.append(timed)
        count = index + 1
        for stride in strides:
            if index >= stride and index % stride == 0:
                yield reader.clip(index - stride, list(buffer)[-(stride + 1):], made)
                made += 1
                if max_clips is not None and made >= max_clips:
                    return
    if count <= strides[0]:
        raise BadVideo(path, f"{count} frame(s), shorter than the shortest stride ({strides[0]} + 1 frames)")


def clips_of(path: Path, strides: list[int], max_clips: int | None = None, **limits) -> list[Clip]:
    return list(iter_clips(path, strides, max_clips, **limits))


def iter_groups(path: Path, strides: list[int], max_groups: int | None = None,
                warn: Callable[[str], None] | None = None, *, min_side: int = MIN_SIDE, max_side: int = MAX_SIDE,
                vfr_ratio: float = VFR_RATIO, label: str | None = None) -> Iterator[list[Clip]]:
    """Magnitude groups: for each start frame ``t`` of the largest stride S (t = 0, S, 2S, ...; groups do not
    overlap), the clips ``(t, t + s)`` for every stride s, smallest first, all sharing I1 = frame t. Yielded when
    decoding reaches t + S; holds ``S + 1`` frames. :class:`BadVideo` as :func:`iter_clips` (shorter than S + 1
    frames: no group)."""
    strides = sorted(set(strides))
    largest = strides[-1]
    reader = VideoReader(path, warn, min_side=min_side, max_side=max_side, vfr_ratio=vfr_ratio, label=label)
    buffer: deque = deque(maxlen=largest + 1)
    made, count = 0, 0
    for index, timed in enumerate(reader):
        buffer.append(timed)
        count = index + 1
        if index >= largest and index % largest == 0:
            held = list(buffer)
            yield [reader.clip(index - largest, held[:s + 1], made) for s in strides]
            made += 1
            if max_groups is not None and made >= max_groups:
                return
    if count <= largest:
        raise BadVideo(path, f"{count} frame(s), shorter than the largest stride ({largest} + 1 frames) that "
                             f"--magnitude-groups needs")
