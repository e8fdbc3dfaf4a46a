"""Object shapes in object coordinates, each an exact inside-test, plus the textured objects built from them.

Why inside-tests rather than sprites: a target is rendered by pulling every output sub-sample back through the
inverse transform and asking "is this point inside the object, and what colour is it there?". A closed-form
inside-test answers that at any real coordinate, so rotated, scaled and bent targets are exact (up to the
anti-aliasing), with no resampling of a raster.

Object coordinates are pixels, x to the right and y down, with the origin at the object's reference point (its
centre, or the bottom of its base for tall objects). Shapes use only arithmetic and comparisons per point;
angles become cosines and sines once per shape (Python's ``math``), never per pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Protocol

import numpy as np

from tvbench.cases.sample.textures import Texture

Point = tuple[float, float]
Bounds = tuple[float, float, float, float]  # x_min, y_min, x_max, y_max


class Shape(Protocol):
    bounds: Bounds

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Boolean array: which points ``(x[i], y[i])`` lie inside the shape."""
        ...


@dataclass(frozen=True)
class Ellipse:
    """An ellipse centred at ``(cx, cy)`` with semi-axes ``rx, ry``, turned by ``angle_deg`` (clockwise)."""

    cx: float
    cy: float
    rx: float
    ry: float
    angle_deg: float = 0.0

    @property
    def bounds(self) -> Bounds:
        r = max(self.rx, self.ry)
        return (self.cx - r, self.cy - r, self.cx + r, self.cy + r)

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        c, s = math.cos(math.radians(self.angle_deg)), math.sin(math.radians(self.angle_deg))
        dx, dy = x - self.cx, y - self.cy
        u = (dx * c + dy * s) / self.rx
        v = (dy * c - dx * s) / self.ry
        return u * u + v * v <= 1.0


def disc(radius: float, cx: float = 0.0, cy: float = 0.0) -> Ellipse:
    return Ellipse(cx, cy, radius, radius)


@dataclass(frozen=True)
class RoundedRect:
    """An axis-aligned rectangle ``[x0, x1] x [y0, y1]`` with corners rounded to ``radius``."""

    x0: float
    y0: float
    x1: float
    y1: float
    radius: float = 0.0

    @property
    def bounds(self) -> Bounds:
        return (self.x0, self.y0, self.x1, self.y1)

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = self.radius
        # distance beyond the inner rectangle shrunk by r; inside when within r of it
        dx = np.maximum(np.maximum(self.x0 + r - x, x - (self.x1 - r)), 0.0)
        dy = np.maximum(np.maximum(self.y0 + r - y, y - (self.y1 - r)), 0.0)
        in_box = (x >= self.x0) & (x <= self.x1) & (y >= self.y0) & (y <= self.y1)
        return in_box & (dx * dx + dy * dy <= r * r)


@dataclass(frozen=True)
class Polygon:
    """A simple polygon (convex or not) by the even-odd crossing rule, vectorised over its edges."""

    vertices: tuple[Point, ...]

    @property
    def bounds(self) -> Bounds:
        xs = [v[0] for v in self.vertices]
        ys = [v[1] for v in self.vertices]
        return (min(xs), min(ys), max(xs), max(ys))

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = np.zeros(np.shape(x), dtype=bool)
        n = len(self.vertices)
        for k in range(n):
            (xa, ya), (xb, yb) = self.vertices[k], self.vertices[(k + 1) % n]
            if ya == yb:
                continue  # a horizontal edge never crosses a horizontal ray
            straddles = (ya > y) != (yb > y)
            x_cross = xa + (y - ya) * ((xb - xa) / (yb - ya))
            result ^= straddles & (x < x_cross)
        return result


def regular_polygon(sides: int, radius: float, start_deg: float = -90.0) -> Polygon:
    step = 360.0 / sides
    return Polygon(tuple(polar(radius, start_deg + k * step) for k in range(sides)))


def star_polygon(tips: int, r_outer: float, r_inner: float, start_deg: float = -90.0) -> Polygon:
    step = 180.0 / tips
    return Polygon(tuple(polar(r_outer if k % 2 == 0 else r_inner, start_deg + k * step) for k in range(2 * tips)))


def polar(radius: float, angle_deg: float) -> Point:
    """Angle measured clockwise on screen from the +x axis (y points down)."""
    a = math.radians(angle_deg)
    return (radius * math.cos(a), radius * math.sin(a))


@dataclass(frozen=True)
class Gear:
    """A spur gear: a hub disc with a hole and ``teeth`` tapered teeth, the first pointing along ``start_deg``."""

    teeth: int
    r_root: float
    r_tip: float
    half_width_root: float
    half_width_tip: float
    hole: float
    start_deg: float = 0.0

    @property
    def bounds(self) -> Bounds:
        return (-self.r_tip, -self.r_tip, self.r_tip, self.r_tip)

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r2 = x * x + y * y
        result = r2 <= self.r_root * self.r_root
        taper = (self.half_width_tip - self.half_width_root) / (self.r_tip - self.r_root)
        for k in range(self.teeth):
            a = math.radians(self.start_deg + 360.0 * k / self.teeth)
            c, s = math.cos(a), math.sin(a)
            along = x * c + y * s
            across = np.abs(y * c - x * s)
            half = self.half_width_root + taper * (along - self.r_root)
            result |= (along > 0.0) & (along <= self.r_tip) & (across <= half)
        return result & (r2 >= self.hole * self.hole)


@dataclass(frozen=True)
class Union:
    """Several parts that make one object (a lamp's foot, stem and shade)."""

    parts: tuple[Shape, ...]

    @property
    def bounds(self) -> Bounds:
        boxes = [p.bounds for p in self.parts]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = self.parts[0].inside(x, y)
        for part in self.parts[1:]:
            result |= part.inside(x, y)
        return result


@dataclass(frozen=True, eq=False)
class SceneObject:
    """A textured shape placed with its object origin at ``origin`` in the source image.

    ``anchors`` name distinctive object points (a tooth, a tip, the lamp shade) in object coordinates; drag
    handles are picked from them so that they sit on parts a user would grab.
    """

    name: str
    shape: Shape
    texture: Texture
    origin: Point
    anchors: Mapping[str, Point] = field(default_factory=dict)

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Inside-test at source-image coordinates (the object at rest)."""
        return self.shape.inside(x - self.origin[0], y - self.origin[1])

    def colour(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Texture at source-image coordinates; the texture lives in object coordinates."""
        return self.texture(x - self.origin[0], y - self.origin[1])

    def anchor(self, name: str) -> Point:
        ax, ay = self.anchors[name]
        return (self.origin[0] + ax, self.origin[1] + ay)

    def image_bounds(self) -> Bounds:
        x0, y0, x1, y1 = self.shape.bounds
        ox, oy = self.origin
        return (x0 + ox, y0 + oy, x1 + ox, y1 + oy)

