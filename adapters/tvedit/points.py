"""Drag points -> the point maps of paper eq. 2, and the two ways of sizing the image the backbone sees.

A point map holds, at each rounded point, the 1-based index of its pair and 0 elsewhere. Points are given in
source-image pixels and scaled to the map as ``x * map_width / image_width`` (and likewise for y), then
rounded half-to-even and clipped into the map: the official demo's rule (``remap_coordinates`` then
``point2disk`` in PolyU-VCLab/TVEdit ``demo/gradio_demo.py``), which maps to 1024 first and rounds once.
When two pairs round to the same pixel, the later pair's index wins.

Image sizing (``resize`` option of the methods and of training):

- ``squash`` (the official inference): the source is resized to 1024 x 1024 whatever its aspect, as the
  weights published by the authors were used;
- ``keep``: the source is resized to the pipeline's ~1 MP working size with the aspect kept. The point maps
  follow the token grid of each transformer call in both modes.

One filter, the official one (:data:`RESIZE_FILTER`), for every resize of an input image, at inference
(methods, ``controlled_edit``) and in training (``training/backbones.py``: source, target and the text encoder's
condition image): :func:`resize_image` where the TV-Edit code resizes, and :func:`pipeline_filter` around
pipeline calls, which sets the pipeline's own image processor (diffusers' ``VaeImageProcessor``, Lanczos by
default) to the same filter. That matters in ``keep`` mode on Qwen-Image-Edit, whose pipeline picks its working
size from the image it gets (a pre-resized image could be snapped to another size and resized twice), so there
the source goes in unchanged and the pipeline resizes it once.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from PIL import Image

from tvbench.errors import ConfigError

if TYPE_CHECKING:  # torch loads on first use: `tvbench ls` imports this module through the methods
    import torch

OFFICIAL_SIZE = 1024  # the official demo resizes every source to 1024 x 1024 (gradio_demo.py, on_run)
RESIZE_MODES = ("squash", "keep")
# The official filter. PolyU-VCLab/TVEdit ``demo/gradio_demo.py``, ``on_run``: ``original_img.resize((1024, 1024))``
# with no filter named, i.e. PIL's default, which is BICUBIC for RGB images (Pillow >= 7). That demo is the only
# resize in the authors' code: their training code is not released (README: "Release training code" unchecked),
# and the pipeline's own resize (``image_processor.resize``, Lanczos) is a no-op on an image already at 1024 x 1024.
RESIZE_FILTER = Image.Resampling.BICUBIC
RESIZE_FILTER_NAME = "bicubic"  # recorded in the training cache keys and run.json

DragPair = Sequence[float]  # (x_handle, y_handle, x_target, y_target) in source pixels


def check_resize_mode(mode: str) -> str:
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize {mode!r}: choose squash (official, 1024x1024) or keep (aspect kept)")
    return mode


def resize_image(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` at ``size = (w, h)`` with the official filter (:data:`RESIZE_FILTER`, bicubic); unchanged if
    already that size. The one resize of TV-Edit's inputs, at inference and in training."""
    size = (int(size[0]), int(size[1]))
    return image if image.size == size else image.resize(size, RESIZE_FILTER)


@contextlib.contextmanager
def pipeline_filter(pipe: Any) -> Iterator[None]:
    """For the block: ``pipe.image_processor`` resizes PIL images with :data:`RESIZE_FILTER` (restored after)."""
    processor = getattr(pipe, "image_processor", None)
    config = getattr(processor, "config", None)
    if config is None or "resample" not in config:
        yield
        return
    before = config["resample"]
    processor.register_to_config(resample=RESIZE_FILTER_NAME)
    try:
        yield
    finally:
        processor.register_to_config(resample=before)


def prepare_source(image: Image.Image, mode: str, size: tuple[int, int] | None = None) -> Image.Image:
    """The image handed to the pipeline, resized with the official filter to ``size`` (the working size); without
    ``size``: squashed to 1024 x 1024 (official) or unchanged (``keep``)."""
    if check_resize_mode(mode) == "squash":
        return resize_image(image, size or (OFFICIAL_SIZE, OFFICIAL_SIZE))
    return resize_image(image, size) if size else image


def point_map(points: Sequence[Sequence[float]], image_size: tuple[int, int],
              map_size: tuple[int, int]) -> "torch.Tensor":
    """A ``(1, H, W)`` float map of size ``map_size = (W, H)`` for points ``(x, y)`` in an image of ``image_size``."""
    import torch

    image_w, image_h = image_size
    map_w, map_h = map_size
    canvas = torch.zeros(1, map_h, map_w)
    if len(points) == 0:
        return canvas
    xy = torch.tensor([[float(x), float(y)] for x, y in points], dtype=torch.float64)
    xs = torch.round(xy[:, 0] * map_w / image_w).clamp(0, map_w - 1).long()
    ys = torch.round(xy[:, 1] * map_h / image_h).clamp(0, map_h - 1).long()
    for index, (x, y) in enumerate(zip(xs.tolist(), ys.tolist()), start=1):  # in order: a later pair overwrites
        canvas[0, y, x] = float(index)
    return canvas


def drag_maps(pairs: Sequence[DragPair], image_size: tuple[int, int], handle_size: tuple[int, int],
              target_size: tuple[int, int]) -> "tuple[torch.Tensor, torch.Tensor]":
    """Handle and target maps of one case; handles index the condition image, targets the edited one."""
    handles = [(p[0], p[1]) for p in pairs]
    targets = [(p[2], p[3]) for p in pairs]
    return point_map(handles, image_size, handle_size), point_map(targets, image_size, target_size)


def reverse_pairs(pairs: Sequence[DragPair]) -> list[tuple[float, float, float, float]]:
    """The backward drag (p2 -> p1) of a forward one, for bidirectional training pairs (paper Sec. 3.2)."""
    return [(float(p[2]), float(p[3]), float(p[0]), float(p[1])) for p in pairs]
