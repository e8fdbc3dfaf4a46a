"""Videos in, clips out: list the inputs, decode with PyAV, cut windows at the given strides.

A clip is a window ``(video, start, start + stride)`` of one decoded video; I1 is its first frame, I2 its last,
and every frame in between is kept for tracking. Windows of one stride do not overlap. Bad input never stops
the build: :class:`BadVideo` carries one line naming the file and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tvbench.errors import UnavailableError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv")


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
    frames: list  # RGB uint8 arrays, frames[0] = I1, frames[-1] = I2
    fps: float | None = None

    @property
    def end(self) -> int:
        return self.start + self.stride


def list_videos(source: Path) -> list[Path]:
    """The videos of a folder (sorted, by extension) or of a text file of paths (one a line, '#' comments)."""
    source = Path(source)
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if source.is_file() and source.suffix.lower() in VIDEO_EXTENSIONS:
        return [source]
    if source.is_file():
        paths = []
        for line in source.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                path = Path(line)
                paths.append(path if path.is_absolute() else source.parent / path)
        return paths
    raise FileNotFoundError(f"{source}: no such folder or file")


def _av():
    try:
        import av
    except ImportError as exc:
        raise UnavailableError("tvbench data build needs PyAV: pip install 'tvbench[video]'") from exc
    return av


def iter_frames(path: Path, warn: Callable[[str], None] | None = None) -> Iterator[tuple[np.ndarray, float | None]]:
    """Each frame (RGB uint8) of the first video stream in decoding order, with the stream's average fps.

    A file that breaks after some frames (truncated) ends the stream there; ``warn`` gets one line about it.
    Rotation metadata is not applied (PyAV reports it, does not rotate).
    """
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise BadVideo(path, "no such file")
    if path.stat().st_size == 0:
        raise BadVideo(path, "zero-length file")
    count, shape = 0, None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadVideo(path, "no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            for frame in container.decode(stream):
                array = frame.to_ndarray(format="rgb24")
                if shape is not None and array.shape != shape:
                    raise BadVideo(path, f"frame size changes within the video at frame {count}")
                shape = array.shape
                count += 1
                yield array, fps
    except BadVideo:
        raise
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds (InvalidDataError, EOFError, ...)
        if not count:
            raise BadVideo(path, f"cannot decode: {type(exc).__name__}: {exc}") from None
        if warn is not None:
            warn(f"{path}: damaged after frame {count} ({type(exc).__name__}); the frames before it are used")
    if not count:
        raise BadVideo(path, "no decodable frames")


def decode(path: Path) -> tuple[list[np.ndarray], float | None]:
    """Every frame in memory and the fps (for tests and short videos; the builder streams with :func:`iter_clips`)."""
    frames, fps = [], None
    for frame, fps in iter_frames(path):
        frames.append(frame)
    return frames, fps


def iter_clips(path: Path, strides: list[int], max_clips: int | None = None,
               warn: Callable[[str], None] | None = None) -> Iterator[Clip]:
    """The clips of one video as decoding reaches their last frame, holding only ``max(strides) + 1`` frames.

    Windows of one stride do not overlap: stride s gives starts 0, s, 2s, ... . :class:`BadVideo` if the video
    cannot be decoded or is shorter than the shortest stride (raised after the stream ends).
    """
    strides = sorted(set(strides))
    buffer: deque = deque(maxlen=max(strides) + 1)
    made, count = 0, 0
    for index, (frame, fps) in enumerate(iter_frames(path, warn)):
        buffer.append(frame)
        count = index + 1
        for stride in strides:
            if index >= stride and index % stride == 0:
                yield Clip(Path(path), index - stride, stride, list(buffer)[-(stride + 1):], fps)
                made += 1
                if max_clips is not None and made >= max_clips:
                    return
    if count <= strides[0]:
        raise BadVideo(path, f"{count} frame(s), shorter than the shortest stride ({strides[0]} + 1 frames)")


def clips_of(path: Path, strides: list[int], max_clips: int | None = None) -> list[Clip]:
    return list(iter_clips(path, strides, max_clips))


def iter_groups(path: Path, strides: list[int], max_groups: int | None = None,
                warn: Callable[[str], None] | None = None) -> Iterator[list[Clip]]:
    """Magnitude groups: for each start frame ``t`` of the largest stride S (t = 0, S, 2S, ...; groups do not
    overlap), the clips ``(t, t + s)`` for every stride s, smallest first, all sharing I1 = frame t. Yielded when
    decoding reaches t + S; holds ``S + 1`` frames. :class:`BadVideo` as :func:`iter_clips` (shorter than S + 1
    frames: no group)."""
    strides = sorted(set(strides))
    largest = strides[-1]
    buffer: deque = deque(maxlen=largest + 1)
    made, count = 0, 0
    for index, (frame, fps) in enumerate(iter_frames(path, warn)):
        buffer.append(frame)
        count = index + 1
        if index >= largest and index % largest == 0:
            held = list(buffer)
            yield [Clip(Path(path), index - largest, s, held[:s + 1], fps) for s in strides]
            made += 1
            if max_groups is not None and made >= max_groups:
                return
    if count <= largest:
        raise BadVideo(path, f"{count} frame(s), shorter than the largest stride ({largest} + 1 frames) that "
                             f"--magnitude-groups needs")
