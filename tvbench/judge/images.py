"""Images for the judge: drag points drawn as arrows on the source, and PNG data URLs for the chat API."""

from __future__ import annotations

import base64
import math
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Iterable

from PIL import Image, ImageDraw

from tvbench.cases.case import pixel_digest
from tvbench.io import encode_png, sha256_hex

HANDLE_COLOUR = (230, 25, 25)
TARGET_COLOUR = (30, 90, 255)


def draw_drag_arrows(image: Image.Image, points: Iterable[tuple[float, float, float, float]]) -> Image.Image:
    """A copy of ``image`` with each drag pair drawn as a red arrow from a red dot (handle) to a blue head (target).

    Sizes scale with the image (about 1/150 of its diagonal for the line), so arrows stay visible at any resolution.
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    diagonal = math.hypot(*out.size)
    width = max(2, round(diagonal / 150))
    radius = max(3, round(diagonal / 90))
    head = max(6, round(diagonal / 40))
    for xs, ys, xt, yt in points:
        length = math.hypot(xt - xs, yt - ys)
        if length > 0:
            ux, uy = (xt - xs) / length, (yt - ys) / length
            back = min(head, length)
            base = (xt - ux * back, yt - uy * back)
            draw.line([(xs, ys), base], fill=HANDLE_COLOUR, width=width)
            half = back * 0.5
            draw.polygon([(xt, yt), (base[0] - uy * half, base[1] + ux * half),
                          (base[0] + uy * half, base[1] - ux * half)], fill=TARGET_COLOUR)
        draw.ellipse([xs - radius, ys - radius, xs + radius, ys + radius], fill=HANDLE_COLOUR)
    return out


def png_bytes(image: Image.Image) -> bytes:
    return encode_png(image.convert("RGB"))


def data_url(png: bytes) -> str:
    """A base64 ``data:image/png`` URL, which OpenAI-compatible servers accept in ``image_url`` parts."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class PngMemo:
    """PNG bytes and their sha256 for recently seen images, keyed by decoded pixels, shared by worker threads.

    Encoding dominates the client's own cost (a 512 x 512 photograph takes about 0.1 CPU-s at PIL's default level,
    against 3 ms to hash its pixels), and requests repeat images: the source and the source with arrows go with
    every method's edit of a case, and PF and CP send the same three images. So each image is encoded once; a
    thread asking for an image another thread is encoding waits for that result. Bytes are exactly what
    :func:`png_bytes` gives, so cache keys do not change. Holds at most ``max_items`` images (about 0.5 MB each).
    """

    def __init__(self, max_items: int = 64):
        self.max_items = max_items
        self.encoded = 0  # images actually encoded (the rest were found here)
        self._entries: OrderedDict[str, Future] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, image: Image.Image) -> tuple[bytes, str]:
        """``(png, sha256 of png)`` of ``image``."""
        key = pixel_digest(image)
        with self._lock:
            future = self._entries.get(key)
            owner = future is None
            if owner:
                future = self._entries[key] = Future()
                while len(self._entries) > self.max_items:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        if owner:
            try:
                png = png_bytes(image)
            except BaseException as exc:  # the waiting threads get the same error; a later call tries again
                with self._lock:
                    if self._entries.get(key) is future:
                        del self._entries[key]
                future.set_exception(exc)
                raise
            with self._lock:
                self.encoded += 1
            future.set_result((png, sha256_hex(png)))
        return future.result()
