"""Synthetic videos for tests and benchmarks: smooth textures and an H.264 encoder (PyAV), so that the video stage
(`tvbench data build`) is exercised on clips whose motion is known exactly."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

MILLISECOND = Fraction(1, 1000)


def texture(width: int, height: int, seed: int) -> np.ndarray:
    """``(height, width, 3)`` uint8 blurred noise: structure for trackers and flow to lock onto."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.2) * 1.6 - 76, 0, 255).astype(np.uint8)


def encode_video(path: Path, frames: list[np.ndarray], fps: int = 10, *, times: list[float] | None = None,
                 rotation: int = 0) -> Path:
    """RGB frames as a near-lossless H.264 file (libx264, crf 4), sized by the first frame.

    ``times``: each frame's presentation time in seconds (millisecond precision), for a variable frame rate.
    ``rotation``: a display rotation in degrees counter-clockwise, written as the stream's display matrix (what
    PyAV's ``VideoFrame.rotation`` reads back; a phone held upright writes -90), as phone videos carry it.
    """
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "4", "preset": "ultrafast"}
        if times is not None:
            stream.codec_context.time_base = MILLISECOND
        if rotation:
            stream.set_display_rotation(rotation)
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if times is not None:
                picture.pts, picture.time_base = round(times[index] * 1000), MILLISECOND
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def unknown_codec_copy(mkv: Path, path: Path) -> Path:
    """A copy of an H.264 Matroska file (from :func:`encode_video`) whose codec id is one FFmpeg does not know:
    a file that opens but cannot be decoded."""
    data = Path(mkv).read_bytes()
    assert data.count(b"V_MPEG4/ISO/AVC") == 1, f"{mkv}: not an H.264 Matroska file"
    Path(path).write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_UNKNOWN/CODEC"))  # same length: sizes stay valid
    return Path(path)
