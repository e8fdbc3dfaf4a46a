"""The edits of the sample benchmark as exact maps of the image plane, with their inverses and their records.

``forward`` takes a source-image point to where the edit puts it (used for drag targets and dense points);
``inverse`` takes a target-image point back to the source (used to render the target by pulling each output
sub-sample back to the object at rest). Both accept floats or numpy arrays. ``to_meta`` is what a case
records under ``meta["transform"]`` and :func:`transform_from_meta` rebuilds the same map from it, so anyone
can recompute ground truth from ``cases.jsonl`` alone.

Conventions: image coordinates, x to the right and y down. A positive ``angle_deg`` turns *clockwise* as seen
on screen (the usual rotation matrix with y pointing down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, TypeVar

import numpy as np

from tvbench.cases.sample.textures import smoothstep

Coord = TypeVar("Coord", float, np.ndarray)

MAX_CONTRACTION = 0.8
"""Largest allowed ``|d| * max|grad w|`` for a bend; below 1 the fixed-point inverse converges, and the
margin keeps it fast (error shrinks at least 5x every 7 iterations) and the map visibly fold-free."""


class Transform(Protocol):
    kind: str

    def forward(self, x: Coord, y: Coord) -> tuple[Coord, Coord]: ...

    def inverse(self, x: Coord, y: Coord) -> tuple[Coord, Coord]: ...

    def to_meta(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Translate:
    dx: float
    dy: float
    kind: str = "translate"

    def forward(self, x: Coord, y: Coord) -> tuple[Coord, Coord]:
        return x + self.dx, y + self.dy

    def inverse(self, x: Coord, y: Coord) -> tuple[Coord, Coord]:
        return x - self.dx, y - self.dy

    def to_meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "offset": [self.dx, self.dy]}


@dataclass(frozen=True)
class Rotate:
    """Rotation by ``angle_deg`` (clockwise on screen when positive) about ``(cx, cy)``."""

    angle_deg: float
    cx: float
    cy: float
    kind: str = "rotate"

    def _cos_sin(self) -> tuple[float, float]:
        a = math.radians(self.angle_deg)
        return math.cos(a), math.sin(a)

    def forward(self, x: Coord, y: Coord) -> tuple[Coord, Coord]:
        c, s = self._cos_sin()
        dx, dy = x - self.cx, y - self.cy
        return self.cx + c * dx - s * dy, self.cy + s * dx + c * dy

    def inverse(self, x: Coord, y: Coord) -> tuple[Coord, Coord]:
        c, s = self._cos_sin()
        dx, dy = x - self.cx, y - self.cy
        return self.cx + c * dx + s * dy, self.cy - s * dx + c * dy

    def to_meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "angle_deg": self.angle_deg, "center": [self.cx, self.cy],
                "positive": "clockwise on screen (y down)"}


@dataclass(frozen=True)
class Scale:
    """Uniform scaling by ``factor`` about ``(cx, cy)`` (> 1 enlarges)."""

    factor: float
    cx: float
    cy: float
    kind: str = "scale"

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(f"scale factor must be positive, got {self.factor}")

    def forward(self, x: Coord, y: Coord) -> tuple[Coord, Coord]:
        return self.cx + self.factor * (x - self.cx), self.cy + self.factor * (y - self.cy)

    def inverse(self, x: Coord, y: Coord) -> tuple[Coord, Coord]:
        return self.cx + (x - self.cx) / self.factor, self.cy + (y - self.cy) / self.factor

    def to_meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "factor": self.factor, "center": [self.cx, self.cy]}


@dataclass(frozen=True)
class Bend:
    """A non-rigid bend ``p = q + d * w(q)`` that keeps the base fixed and moves the handle by exactly ``d``.

    ``w(q) = smoothstep(s)`` with ``s = (q - base) . (handle - base) / |handle - base|^2`` clipped to ``[0, 1]``:
    0 at and below the base, 1 at and beyond the handle, smooth in between, so the part past the handle moves
    rigidly and the part between bends. ``max|grad w| = 1.5 / |handle - base|``; the inverse solves
    ``q = p - d * w(q)`` by fixed-point iteration, a contraction because ``|d| * max|grad w| <= MAX_CONTRACTION``,
    which the constructor enforces. Since ``w`` depends on ``q`` only through the scalar ``s``, the iteration
    runs on ``s`` (the same sequence, a third of the arithmetic).
    """

    dx: float
    dy: float
    base: tuple[float, float]
    handle: tuple[float, float]
    kind: str = "bend"

    def __post_init__(self) -> None:
        length = math.hypot(self.handle[0] - self.base[0], self.handle[1] - self.base[1])
        if length <= 0:
            raise ValueError("bend handle and base must differ")
        contraction = math.hypot(self.dx, self.dy) * 1.5 / length
        if not contraction <= MAX_CONTRACTION:
            raise ValueError(f"bend by {math.hypot(self.dx, self.dy):.1f} px over a {length:.1f} px lever has "
                             f"|d|*max|grad w| = {contraction:.3f} > {MAX_CONTRACTION}; the inverse would not "
                             "be guaranteed to converge (shorten the drag or lengthen the lever)")

    @property
    def contraction(self) -> float:
        length = math.hypot(self.handle[0] - self.base[0], self.handle[1] - self.base[1])
        return math.hypot(self.dx, self.dy) * 1.5 / length

    def _axis(self) -> tuple[float, float, float]:
        ax, ay = self.handle[0] - self.base[0], self.handle[1] - self.base[1]
        return ax, ay, ax * ax + ay * ay

    def _s(self, x: Coord, y: Coord) -> Coord:
        ax, ay, length2 = self._axis()
        return ((x - self.base[0]) * ax + (y - self.base[1]) * ay) / length2

    def weight(self, x: Coord, y: Coord) -> Coord:
        return _smoothstep(self._s(x, y))

    def forward(self, x: Coord, y: Coord) -> tuple[Coord, Coord]:
        w = self.weight(x, y)
        return x + self.dx * w, y + self.dy * w

    def inverse(self, x: Coord, y: Coord, *, tol: float = 1e-12, max_iter: int = 500) -> tuple[Coord, Coord]:
        ax, ay, length2 = self._axis()
        s_p = self._s(x, y)
        c = (self.dx * ax + self.dy * ay) / length2  # s(q + d*w) = s(q) + c*w
        s = s_p
        for _ in range(max_iter):
            s_next = s_p - c * _smoothstep(s)
            change = float(np.max(np.abs(s_next - s))) if np.ndim(s_next) else abs(s_next - s)
            s = s_next
            if change <= tol:
                break
        else:  # pragma: no cover - excluded by the contraction bound
            raise ArithmeticError("bend inverse did not converge")
        w = _smoothstep(s)
        return x - self.dx * w, y - self.dy * w

    def to_meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "offset": [self.dx, self.dy], "base": list(self.base), "handle": list(self.handle),
                "weight": "smoothstep(clip((q-base).(handle-base)/|handle-base|^2, 0, 1))"}


def _smoothstep(s: Coord) -> Coord:
    if np.ndim(s):
        return smoothstep(s)
    t = min(max(float(s), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def transform_from_meta(meta: Mapping[str, Any]) -> Transform:
    """Rebuild the map a case recorded under ``meta["transform"]``."""
    kind = meta.get("kind")
    if kind == "translate":
        dx, dy = meta["offset"]
        return Translate(float(dx), float(dy))
    if kind == "rotate":
        cx, cy = meta["center"]
        return Rotate(float(meta["angle_deg"]), float(cx), float(cy))
    if kind == "scale":
        cx, cy = meta["center"]
        return Scale(float(meta["factor"]), float(cx), float(cy))
    if kind == "bend":
        dx, dy = meta["offset"]
        bx, by = meta["base"]
        hx, hy = meta["handle"]
        return Bend(float(dx), float(dy), (float(bx), float(by)), (float(hx), float(hy)))
    raise ValueError(f"unknown transform kind {kind!r}")
