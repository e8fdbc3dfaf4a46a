"""Images for the judge: drag points drawn as arrows on the source, and PNG data URLs for the chat API."""

from __future__ import annotations

import base64
import math
from typing import Iterable

from PIL import Image, ImageDraw

from tvbench.io import encode_png

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
