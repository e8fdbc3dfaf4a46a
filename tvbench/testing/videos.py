"""Synthetic videos for tests and benchmarks: smooth textures and an H.264 encoder (PyAV), so that the video stage
(`tvbench data build`) is exercised on clips whose motion is known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def texture(width: int, height: int, seed: int) -> np.ndarray:
    """``(height, width, 3)`` uint8 blurred noise: structure for trackers and flow to lock onto."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.2) * 1.6 - 76, 0, 255).astype(np.uint8)


def encode_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """RGB frames as a near-lossless H.264 file (libx264, crf 4), sized by the first frame."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "4", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)
