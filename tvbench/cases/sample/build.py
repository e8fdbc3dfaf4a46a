"""Turn the case list into images and records: render source and target, derive masks, drag and dense points.

Sources shared by a magnitude or semantic group are rendered once, and backgrounds once per (texture, size),
which both saves time and guarantees the group really shares identical source pixels. Every geometric
promise the benchmark makes (points inside the image and away from its border, handles on the object with
texture around them, identical drags across a semantic group) is checked here, so a bad edit to the catalog
fails at generation time rather than as a puzzling score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from PIL import Image

from tvbench.cases.sample.catalog import BACKGROUNDS, GENERATOR, POINT_DECIMALS, CaseSpec, Scene, case_specs
from tvbench.cases.sample.render import render_background, render_object
from tvbench.cases.sample.shapes import SceneObject
from tvbench.cases.sample.transforms import Transform

IMAGE_ROLES = ("source", "target", "mask_source", "mask_target")
BORDER = 8.0  # px: drag handles and targets keep at least this far from the image border
DENSE_MARGIN = 4.0  # px: both ends of a dense pair keep this far from the border
DENSE_MIN, DENSE_MAX, DENSE_AIM = 16, 48, 24
NEIGHBOURHOOD = 3  # px: a handle's (and its target's) 7x7 neighbourhood lies on the object
INTERIOR = 2.0  # px: dense points sit this far inside the object (checked along x and y)


@dataclass
class BuiltCase:
    """A case's record (without image paths) and its four images."""

    record: dict[str, Any]
    images: dict[str, Image.Image]


class GeneratorError(AssertionError):
    """The catalog asks for something the benchmark must not contain (a bug in the sample, not user input)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise GeneratorError(message)


def build_cases() -> Iterator[BuiltCase]:
    """Render every case of the catalog, in order."""
    backgrounds: dict[tuple[str, int, int], np.ndarray] = {}
    sources: dict[str, tuple[Image.Image, Image.Image]] = {}
    semantic_points: dict[str, list] = {}
    for spec in case_specs():
        scene = spec.scene
        size = (scene.background, scene.width, scene.height)
        if size not in backgrounds:
            backgrounds[size] = render_background(BACKGROUNDS[scene.background](), scene.width, scene.height)
        background = backgrounds[size]
        if scene.key not in sources:
            rest = render_object(background, scene.obj)
            sources[scene.key] = (Image.fromarray(rest.rgb8(), "RGB"), Image.fromarray(rest.mask8(), "L"))
        source, mask_source = sources[scene.key]
        moved = render_object(background, scene.obj, spec.transform)
        _require(not np.array_equal(np.asarray(source), moved.rgb8()), f"{spec.id}: the edit changes nothing")
        points = drag_points(spec)
        if spec.subtask == "semantic":
            first = semantic_points.setdefault(spec.group, points)
            _require(first == points, f"{spec.id}: a semantic group must share its drag points exactly")
        record = {
            "id": spec.id,
            "instruction": spec.instruction,
            "caption": scene.caption,
            "subtask": spec.subtask,
            **({"group": spec.group} if spec.group else {}),
            "points": points,
            "dense_points": dense_points(scene, spec.transform, spec.id),
            "meta": {"transform": spec.transform.to_meta(), "generator": GENERATOR, "scene": scene.key,
                     "object": scene.obj.name, "background": scene.background},
        }
        images = {"source": source, "target": Image.fromarray(moved.rgb8(), "RGB"), "mask_source": mask_source,
                  "mask_target": Image.fromarray(moved.mask8(), "L")}
        yield BuiltCase(record, images)


def _round(value: float) -> float:
    return round(float(value), POINT_DECIMALS)


def _in_image(x: float, y: float, scene: Scene, margin: float) -> bool:
    return margin <= x <= scene.width - 1 - margin and margin <= y <= scene.height - 1 - margin


def _neighbourhood_on_object(obj: SceneObject, transform: Transform | None, x: float, y: float) -> bool:
    """Whether the (2r+1)^2 pixel grid around ``(x, y)`` maps back onto the object (so colours match there)."""
    steps = np.arange(-NEIGHBOURHOOD, NEIGHBOURHOOD + 1, dtype=np.float64)
    gx, gy = np.meshgrid(x + steps, y + steps)
    gx, gy = gx.ravel(), gy.ravel()
    if transform is not None:
        gx, gy = transform.inverse(gx, gy)
    return bool(obj.inside(gx, gy).all())


def drag_points(spec: CaseSpec) -> list[list[float]]:
    """The sparse drags: each handle anchor and its exact image ``T(handle)``."""
    scene, transform = spec.scene, spec.transform
    _require(1 <= len(spec.handles) <= 3, f"{spec.id}: give 1 to 3 drag handles")
    points = []
    for name in spec.handles:
        hx, hy = (_round(v) for v in scene.obj.anchor(name))
        tx, ty = (_round(v) for v in transform.forward(hx, hy))
        for end, x, y in (("handle", hx, hy), ("target", tx, ty)):
            _require(_in_image(x, y, scene, BORDER), f"{spec.id}: {name} {end} ({x:g}, {y:g}) is within "
                     f"{BORDER:g} px of the border")
        _require(_neighbourhood_on_object(scene.obj, None, hx, hy), f"{spec.id}: handle {name} is too close "
                 "to the object's edge")
        _require(_neighbourhood_on_object(scene.obj, transform, tx, ty), f"{spec.id}: target of {name} is too "
                 "close to the moved object's edge")
        points.append([hx, hy, tx, ty])
    return points


def dense_points(scene: Scene, transform: Transform, case_id: str) -> list[list[float]]:
    """A deterministic grid inside the source object, mapped by the edit (for a dense motion metric).

    The grid spacing shrinks until at least ``DENSE_AIM`` pairs survive; a denser result is thinned evenly
    to ``DENSE_MAX``, so every case gets between ``DENSE_MIN`` and ``DENSE_MAX`` pairs spread over the object.
    """
    obj = scene.obj
    x0, y0, x1, y1 = obj.image_bounds()
    pairs: list[list[float]] = []
    for spacing in (24.0, 20.0, 16.0, 14.0, 12.0, 10.0, 8.0, 7.0, 6.0, 5.0, 4.0):
        # a grid of whole-pixel points centred on the object's bounding box
        xs = np.arange(np.ceil(x0 + ((x1 - x0) % spacing) / 2.0), x1, spacing)
        ys = np.arange(np.ceil(y0 + ((y1 - y0) % spacing) / 2.0), y1, spacing)
        gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
        inner = obj.inside(gx, gy)
        for ox, oy in ((INTERIOR, 0.0), (-INTERIOR, 0.0), (0.0, INTERIOR), (0.0, -INTERIOR)):
            inner &= obj.inside(gx + ox, gy + oy)
        gx, gy = gx[inner], gy[inner]
        tx, ty = transform.forward(gx, gy)
        pairs = [[_round(a), _round(b), _round(c), _round(d)] for a, b, c, d in zip(gx, gy, tx, ty)
                 if _in_image(a, b, scene, DENSE_MARGIN) and _in_image(c, d, scene, DENSE_MARGIN)]
        if len(pairs) >= DENSE_AIM:
            break
    if len(pairs) > DENSE_MAX:
        pairs = [pairs[(k * len(pairs)) // DENSE_MAX] for k in range(DENSE_MAX)]
    _require(DENSE_MIN <= len(pairs) <= DENSE_MAX, f"{case_id}: {len(pairs)} dense points, outside "
             f"{DENSE_MIN}..{DENSE_MAX}")
    return pairs


__all__ = ["IMAGE_ROLES", "BuiltCase", "GeneratorError", "build_cases", "dense_points", "drag_points"]
