"""Reading an edit file: its content hash (what decides reuse of a row), its pixels, and its fit to the case."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image


def file_sha(path: Path) -> str:
    """sha256 of the file's bytes: a row is reused only while its edit file is byte-identical."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_edit(path: Path) -> Image.Image:
    """The edit as RGB, decoded now (the file handle is closed on return)."""
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def fit_edit(edit: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, bool]:
    """The edit at the case's size (bicubic), and whether it had to be resized."""
    edit = edit.convert("RGB")
    if edit.size == size:
        return edit, False
    return edit.resize(size, Image.BICUBIC), True
