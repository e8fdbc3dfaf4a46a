"""Procedural textures for the bundled sample benchmark, in pure numpy.

Why procedural: the sample ships with tvbench under CC0 and must be rebuilt bit for bit anywhere, so its
pixels come from small formulas, not photographs. Why textured at all: the metrics match self-supervised
ViT (DINOv3) patch features between images, and flat colour blobs give such features nothing distinctive
to match; every surface here therefore varies in colour at several scales, down to a few pixels.

A texture is a function of continuous coordinates ``(x, y) -> RGB in [0, 1]`` (an ``(N, 3)`` array). Object
textures are evaluated in object coordinates, so the pattern moves, turns, scales and bends with the object,
which is what makes the rendered targets exact.

Determinism: textures use only ``+ - * /``, ``sqrt``, ``floor``, comparisons and table look-ups, which IEEE 754
rounds exactly, so the same inputs give the same bits on every CPU (numpy's SIMD ``sin``/``exp``/``arctan2``
can differ in the last bit between machines). Random tables come from ``np.random.default_rng(seed).random``,
which is stable across platforms and numpy versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

_SHIFT = 7
TABLE_SIZE = 1 << _SHIFT  # a power of two: look-ups wrap with a mask and index rows with a shift
"""Side of the random lattice behind value noise: patterns repeat only every ``TABLE_SIZE`` features."""


class Texture(Protocol):
    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Colours at the points ``(x[i], y[i])``: an ``(N, 3)`` float array in ``[0, 1]``."""
        ...


def rgb(hex_colour: str) -> tuple[float, float, float]:
    """``"#rrggbb"`` to floats in ``[0, 1]``; colours are written as hex so palettes read like a design."""
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16) / 255.0, int(value[2:4], 16) / 255.0, int(value[4:6], 16) / 255.0)


def palette(colours: Sequence[str]) -> np.ndarray:
    return np.array([rgb(c) for c in colours], dtype=np.float64)


def smoothstep(t: np.ndarray) -> np.ndarray:
    """``3t^2 - 2t^3`` on ``t`` clipped to ``[0, 1]``: a polynomial ease (no transcendental functions)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ease(t: np.ndarray) -> np.ndarray:
    """``smoothstep`` for ``t`` already in ``[0, 1)`` (a fractional part): skips the clip on the hot path."""
    return t * t * (3.0 - 2.0 * t)


def wave(u: np.ndarray) -> np.ndarray:
    """A smooth periodic profile with period 1 and range ``[0, 1]``, a cosine look-alike built from floor."""
    return smoothstep(np.abs(2.0 * (u - np.floor(u)) - 1.0))


def ramp(t: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour map of ``t`` in ``[0, 1]`` through the rows of ``colours``."""
    k = len(colours)
    pos = np.clip(t, 0.0, 1.0) * (k - 1)
    index = np.minimum(np.floor(pos).astype(np.int64), k - 2)
    frac = (pos - index)[:, None]
    return colours[index] * (1.0 - frac) + colours[index + 1] * frac


_WRAP = TABLE_SIZE - 1  # TABLE_SIZE is a power of two, so "& _WRAP" is a (fast) modulo, negatives included


def _cell_hash(table: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """A per-cell random number in ``[0, 1)`` for integer cell indices, periodic in ``TABLE_SIZE``."""
    return table[((iy & _WRAP) << _SHIFT) | (ix & _WRAP)]


@dataclass(frozen=True, eq=False)
class Noise:
    """Multi-octave value noise in ``[0, 1]``: ``scale`` is the feature size (px) of the coarsest octave.

    Value noise (random values on a lattice, eased bilinear interpolation) rather than gradient noise, because
    it needs no trigonometry; ``contrast`` stretches the result, since sums of octaves crowd around 0.5.
    """

    seed: int
    scale: float
    octaves: int = 4
    persistence: float = 0.5
    contrast: float = 1.8
    stretch: float = 1.0  # > 1 elongates features along x (wood fibres)
    _tables: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tables = np.random.default_rng(self.seed).random((self.octaves, TABLE_SIZE * TABLE_SIZE))
        object.__setattr__(self, "_tables", tables)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        total = np.zeros(np.shape(x), dtype=np.float64)
        weight = 0.0
        amplitude = 1.0
        size = float(self.scale)
        for octave in range(self.octaves):
            fx = x / (size * self.stretch)
            fy = y / size
            x0 = np.floor(fx)
            y0 = np.floor(fy)
            sx = _ease(fx - x0)
            sy = _ease(fy - y0)
            ix = x0.astype(np.int64)
            iy = y0.astype(np.int64)
            col0, col1 = ix & _WRAP, (ix + 1) & _WRAP
            row0, row1 = (iy & _WRAP) << _SHIFT, ((iy + 1) & _WRAP) << _SHIFT
            table = self._tables[octave]
            top = table[row0 | col0] * (1.0 - sx) + table[row0 | col1] * sx
            bottom = table[row1 | col0] * (1.0 - sx) + table[row1 | col1] * sx
            total += amplitude * (top * (1.0 - sy) + bottom * sy)
            weight += amplitude
            amplitude *= self.persistence
            size /= 2.0
        return np.clip((total / weight - 0.5) * self.contrast + 0.5, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Marble:
    """Value noise pushed through a colour ramp: stone, sand, grass, brushed metal, mottled paint."""

    noise: Noise
    colours: np.ndarray

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ramp(self.noise(x, y), self.colours)


@dataclass(frozen=True, eq=False)
class Wood:
    """Horizontal planks with wavy grain, fibres and dark seams: the "wooden table" of many captions."""

    colours: np.ndarray  # dark to light
    seed: int
    plank: float = 34.0
    ring: float = 9.0
    _warp: Noise = field(init=False, repr=False)
    _fibre: Noise = field(init=False, repr=False)
    _planks: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_warp", Noise(self.seed, scale=48.0, octaves=3, contrast=1.0))
        object.__setattr__(self, "_fibre", Noise(self.seed + 1, scale=6.0, octaves=3, stretch=5.0))
        object.__setattr__(self, "_planks", np.random.default_rng(self.seed + 2).random(TABLE_SIZE * TABLE_SIZE))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        row = np.floor(y / self.plank)
        local = y - row * self.plank
        rows = row.astype(np.int64)
        shift = _cell_hash(self._planks, rows, rows * 7 + 3)
        grain = wave(local / self.ring + 2.5 * self._warp(x + 97.0 * shift, y) + 3.0 * shift)
        tone = 0.55 * grain + 0.45 * self._fibre(x + 211.0 * shift, y)
        colour = ramp(tone, self.colours) * (0.86 + 0.28 * shift)[:, None]
        seam = (local < 1.5) | (local > self.plank - 0.75)
        colour[seam] *= 0.45
        return np.clip(colour, 0.0, 1.0)


def _shaded(colours: np.ndarray, index: np.ndarray, grain: np.ndarray, low: float = 0.78,
            span: float = 0.44) -> np.ndarray:
    """Palette colours picked by ``index``, darkened or lightened by ``grain`` (in [0, 1]) for a fabric-like look."""
    return np.clip(colours[index] * (low + span * grain)[:, None], 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Stripes:
    """Bands of ``colours`` across direction ``(cos_a, sin_a)``, with wavy edges and a fine grain."""

    colours: np.ndarray
    period: float
    direction: tuple[float, float]  # unit vector across the stripes; given, not computed, to avoid trig here
    grain: Noise
    wobble: float = 3.0

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        grain = self.grain(x, y)
        u = (x * self.direction[0] + y * self.direction[1] + self.wobble * (grain - 0.5)) / self.period
        index = np.floor(u).astype(np.int64) % len(self.colours)
        return _shaded(self.colours, index, grain)


@dataclass(frozen=True, eq=False)
class Checker:
    """A two-colour checkerboard (tablecloth, tiles) shaded by a fine grain."""

    colours: np.ndarray
    size: float
    grain: Noise

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        parity = (np.floor(x / self.size) + np.floor(y / self.size)).astype(np.int64) % 2
        return _shaded(self.colours, parity, self.grain(x, y), low=0.75, span=0.5)


@dataclass(frozen=True, eq=False)
class Rings:
    """Concentric bands around the coordinate origin (the object's centre): plates, targets, gear faces."""

    colours: np.ndarray
    period: float
    grain: Noise

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        grain = self.grain(x, y)
        radius = np.sqrt(x * x + y * y) + 2.0 * (grain - 0.5)
        index = np.floor(radius / self.period).astype(np.int64) % len(self.colours)
        return _shaded(self.colours, index, grain)


@dataclass(frozen=True, eq=False)
class Dots:
    """Jittered polka dots of several colours on a mottled ground (balls, fabric)."""

    ground: Texture
    colours: np.ndarray
    spacing: float
    radius: float
    seed: int
    _table: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_table", np.random.default_rng(self.seed).random(TABLE_SIZE * TABLE_SIZE))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        cx = np.floor(x / self.spacing)
        cy = np.floor(y / self.spacing)
        ix = cx.astype(np.int64)
        iy = cy.astype(np.int64)
        jitter = self.spacing - 2.0 * self.radius
        px = (cx + 0.5) * self.spacing + jitter * (_cell_hash(self._table, ix, iy) - 0.5)
        py = (cy + 0.5) * self.spacing + jitter * (_cell_hash(self._table, iy + 5, ix + 11) - 0.5)
        dot = (x - px) ** 2 + (y - py) ** 2 < self.radius * self.radius
        colour = self.ground(x, y)
        pick = np.floor(_cell_hash(self._table, ix + 17, iy + 29) * len(self.colours)).astype(np.int64)
        colour[dot] = self.colours[pick[dot]]
        return colour


@dataclass(frozen=True, eq=False)
class Grain:
    """Multiplies a texture's brightness by fine noise, so even its uniform areas carry detail."""

    base: Texture
    noise: Noise
    strength: float = 0.3

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        factor = 1.0 - 0.5 * self.strength + self.strength * self.noise(x, y)
        return np.clip(self.base(x, y) * factor[:, None], 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Split:
    """``upper`` where ``y < at`` and ``lower`` elsewhere: different materials for the parts of one object."""

    at: float
    upper: Texture
    lower: Texture

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), 3), dtype=np.float64)
        up = y < self.at
        if up.any():
            out[up] = self.upper(x[up], y[up])
        if not up.all():
            out[~up] = self.lower(x[~up], y[~up])
        return out


@dataclass(frozen=True, eq=False)
class Shifted:
    """``base`` with its origin moved to ``(dx, dy)``: centres a ring pattern on a flower head, say."""

    base: Texture
    dx: float
    dy: float

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.base(x - self.dx, y - self.dy)


@dataclass(frozen=True, eq=False)
class Quadrants:
    """A different texture in each quadrant around the origin (the blades of a pinwheel), without angles.

    Order: x >= 0 & y < 0 (upper right), x < 0 & y < 0, x < 0 & y >= 0, x >= 0 & y >= 0.
    """

    parts: tuple[Texture, Texture, Texture, Texture]

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), 3), dtype=np.float64)
        right = x >= 0.0
        down = y >= 0.0
        for part, select in zip(self.parts, (right & ~down, ~right & ~down, ~right & down, right & down)):
            if select.any():
                out[select] = part(x[select], y[select])
        return out
