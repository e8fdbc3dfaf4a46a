"""The judge client encodes each image once per evaluation, whatever number of requests carry it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from tvbench.io import sha256_hex
from tvbench.judge.images import PngMemo, png_bytes


def photo(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8))


def test_png_memo_gives_the_encoder_bytes_and_encodes_each_image_once_across_threads():
    memo = PngMemo(max_items=8)
    images = [photo(k % 3) for k in range(24)]  # three distinct images, as distinct objects
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(memo.get, images))
    for image, (png, sha) in zip(images, got):
        assert png == png_bytes(image) and sha == sha256_hex(png)  # same bytes, so judge cache keys are unchanged
    assert memo.encoded == 3


def test_png_memo_is_bounded_and_does_not_keep_failures(monkeypatch):
    memo = PngMemo(max_items=2)
    for k in range(4):
        memo.get(photo(k))
    memo.get(photo(0))  # evicted: encoded again
    assert memo.encoded == 5
    monkeypatch.setattr("tvbench.judge.images.png_bytes", lambda image: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        memo.get(photo(9))
    monkeypatch.undo()
    assert memo.get(photo(9))[0] == png_bytes(photo(9))
