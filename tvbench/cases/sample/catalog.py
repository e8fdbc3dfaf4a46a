"""The case list of the bundled ``sample`` benchmark: scenes (background + object) and the edits applied to them.

The three sub-tasks follow the paper's TV-Edit-Bench (Sec. 4.2, App. C):

* ``real``: one edit per scene, covering translation, rotation, scaling up and down, and a non-rigid bend;
* ``magnitude``: the same scene and the *same instruction* at three motion magnitudes, so only the drag tells
  how far to go;
* ``semantic``: the same scene and the *same drag* (identical handle and target) under three instructions with
  three different ground truths, so only the text tells which edit is meant.

Everything is data here; :mod:`tvbench.cases.sample.build` renders it. Changing anything that alters pixels or
records must bump :data:`SAMPLE_VERSION` (it names the cache folder, so old caches are not reused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tvbench.cases.sample.shapes import Ellipse, Gear, Polygon, RoundedRect, SceneObject, Union, disc, \
    regular_polygon, star_polygon, polar
from tvbench.cases.sample.textures import Checker, Dots, Grain, Marble, Noise, Quadrants, Rings, Shifted, Split, \
    Stripes, Texture, Wood, palette
from tvbench.cases.sample.transforms import Bend, Rotate, Scale, Transform, Translate

SAMPLE_VERSION = 1
GENERATOR = f"tvbench-sample-v{SAMPLE_VERSION}"
POINT_DECIMALS = 6
"""Stored coordinates are rounded to 1e-6 px: far below any metric's resolution, and it keeps ``cases.jsonl``
(hence the benchmark hash) identical even where two machines' ``cos`` differ in the last bit."""


@dataclass(frozen=True, eq=False)
class Scene:
    """A source image: one textured object at rest on a full-image background."""

    key: str
    width: int
    height: int
    background: str  # a key of BACKGROUNDS
    obj: SceneObject
    caption: str


@dataclass(frozen=True, eq=False)
class CaseSpec:
    id: str
    subtask: str
    group: str | None  # ties the variants of a magnitude or semantic sub-task together; None for real cases
    instruction: str
    scene: Scene
    transform: Transform
    handles: tuple[str, ...]  # anchor names of scene.obj, the drag handles in order


# ---------------------------------------------------------------- backgrounds


def _grain(seed: int, strength: float = 0.25, scale: float = 4.0) -> Callable[[Texture], Texture]:
    return lambda base: Grain(base, Noise(seed, scale=scale, octaves=2), strength)


BACKGROUNDS: dict[str, Callable[[], Texture]] = {
    "wood": lambda: Wood(palette(["#4a2f18", "#7d4f27", "#b37d45", "#d3a46a"]), seed=11),
    "tablecloth": lambda: _grain(22)(Checker(palette(["#3f8f5a", "#eee6cf"]), 18.0, Noise(21, 6.0, 3))),
    "stone": lambda: _grain(32, 0.3)(Marble(Noise(31, 40.0, 5, contrast=2.0),
                                            palette(["#55555a", "#8c8a83", "#c6c0b2", "#7f868c"]))),
    "grass": lambda: _grain(42, 0.35, 2.0)(Marble(Noise(41, 22.0, 5, contrast=2.2),
                                                  palette(["#1c4416", "#3a7a27", "#79ad45", "#2b6421"]))),
    "wallpaper": lambda: Stripes(palette(["#d8c8a2", "#b9a57d", "#e9ddc2", "#a3b5ab"]), 13.0, (1.0, 0.0),
                                 Noise(51, 6.0, 3)),
    "sand": lambda: _grain(62, 0.3, 2.0)(Marble(Noise(61, 18.0, 5), palette(["#b39360", "#dcc38b", "#c9a873",
                                                                             "#9c7d4f"]))),
    "fabric": lambda: Dots(Marble(Noise(71, 20.0, 4), palette(["#26365a", "#34497a", "#2b3f6b"])),
                           palette(["#e8e2cf", "#c9b46a"]), 16.0, 3.5, seed=72),
    "sky": lambda: _grain(82, 0.15)(Marble(Noise(81, 64.0, 5, contrast=1.6),
                                           palette(["#6fa6dc", "#a6cbef", "#eef4fb", "#8dbbe6"]))),
}


# ---------------------------------------------------------------- objects
# Object coordinates: origin at the centre, or at the bottom of the base for tall objects (lamp, flower).


def _ball_dots() -> SceneObject:
    texture = Dots(Marble(Noise(101, 10.0, 3), palette(["#d4561a", "#f29a2e", "#bb3d17"])),
                   palette(["#5a2d82", "#f6f1e1", "#2b6fb3"]), 11.0, 3.2, seed=102)
    return SceneObject("ball", disc(34.0), texture, (96.0, 116.0),
                       {"upper-left": (-13.0, -13.0), "lower-right": (14.0, 11.0)})


def _beach_ball() -> SceneObject:
    stripes = Stripes(palette(["#e63946", "#f4f6ee", "#1d70b8", "#ffd23f"]), 8.0, (0.8, 0.6), Noise(111, 5.0, 3))
    return SceneObject("ball", disc(30.0), _grain(112, 0.2)(stripes), (80.0, 140.0),
                       {"upper-left": (-11.0, -11.0), "right": (15.0, 6.0)})


def _star_checker() -> SceneObject:
    texture = _grain(122)(Checker(palette(["#f5c518", "#e2661b"]), 7.0, Noise(121, 5.0, 3)))
    return SceneObject("star", star_polygon(5, 50.0, 22.0), texture, (150.0, 150.0),
                       {"top tip": (0.0, -30.0), "right tip": polar(28.0, -18.0), "centre": (0.0, 0.0)})


def _star_dotted() -> SceneObject:
    ground = Marble(Noise(131, 12.0, 4), palette(["#5b1787", "#8e24aa", "#c06fd1"]))
    texture = Dots(ground, palette(["#ffd54f", "#ffffff", "#4dd0e1"]), 9.0, 2.2, seed=132)
    return SceneObject("star", star_polygon(6, 54.0, 28.0), texture, (128.0, 128.0),
                       {"top tip": (0.0, -36.0), "right tip": polar(36.0, -30.0)})


def _gear() -> SceneObject:
    stripes = Stripes(palette(["#2f5fb3", "#5b8fdc", "#1d3f7a", "#9cc0ee"]), 6.0, (0.6, 0.8), Noise(141, 6.0, 3))
    texture = _grain(142, 0.3)(stripes)
    shape = Gear(teeth=9, r_root=50.0, r_tip=64.0, half_width_root=8.0, half_width_tip=5.0, hole=13.0,
                 start_deg=-90.0)
    return SceneObject("gear", shape, texture, (128.0, 128.0),
                       {"top tooth": (0.0, -53.0), "lower-right tooth": polar(53.0, 30.0)})


def _card() -> SceneObject:
    stripes = Stripes(palette(["#d6336c", "#f3f0ea", "#2f9e8f", "#f3f0ea"]), 9.0, (0.6, 0.8), Noise(151, 5.0, 3))
    return SceneObject("card", RoundedRect(-52.0, -80.0, 52.0, 80.0, 12.0), _grain(152)(stripes), (112.0, 160.0),
                       {"top-right corner": (38.0, -66.0), "bottom-left corner": (-38.0, 66.0)})


def _plate() -> SceneObject:
    rings = Rings(palette(["#f4efe4", "#1f6fb2", "#f4efe4", "#e0a31b", "#c0392b"]), 4.5, Noise(161, 5.0, 3))
    return SceneObject("plate", disc(46.0), _grain(162)(rings), (128.0, 128.0),
                       {"rim": (30.0, -22.0), "inner ring": (-12.0, 10.0)})


def _tile() -> SceneObject:
    marble = Marble(Noise(171, 14.0, 4, contrast=2.2), palette(["#0b4a40", "#23a08a", "#a6e3d2", "#0f6b5c"]))
    return SceneObject("tile", regular_polygon(6, 72.0), _grain(172, 0.3)(marble), (128.0, 132.0),
                       {"top corner": (0.0, -52.0), "right corner": polar(52.0, -30.0)})


def _pinwheel() -> SceneObject:
    blades = []
    for k in range(4):
        a = -90.0 + 90.0 * k + 5.0
        blades.append(Polygon(((0.0, 0.0), polar(80.0, a), polar(54.0, a + 42.0))))
    shape = Union((*blades, disc(9.0)))
    colours = (["#e53935", "#ffcdd2"], ["#fdd835", "#fff59d"], ["#43a047", "#c8e6c9"], ["#1e88e5", "#bbdefb"])
    parts = tuple(_grain(181 + k)(Stripes(palette(c), 6.0, (0.8, -0.6) if k % 2 else (0.6, 0.8),
                                          Noise(185 + k, 5.0, 3))) for k, c in enumerate(colours))
    return SceneObject("pinwheel", shape, Quadrants(parts), (128.0, 128.0),  # type: ignore[arg-type]
                       {"top blade": polar(46.0, -64.0), "bottom blade": polar(46.0, 116.0)})


def _lamp(origin: tuple[float, float], shade: list[str], metal: list[str], seed: int,
          bands: tuple[float, float] = (1.0, 0.0)) -> SceneObject:
    shape = Union((
        RoundedRect(-30.0, -14.0, 30.0, 0.0, 6.0),  # foot
        RoundedRect(-6.0, -116.0, 6.0, -10.0),  # stem
        Polygon(((-38.0, -112.0), (38.0, -112.0), (20.0, -152.0), (-20.0, -152.0))),  # shade
        disc(5.0, 0.0, -155.0),  # finial
    ))
    upper = _grain(seed)(Stripes(palette(shade), 7.0, bands, Noise(seed + 1, 5.0, 3), wobble=2.0))
    lower = _grain(seed + 2, 0.3)(Marble(Noise(seed + 3, 16.0, 3, stretch=0.35), palette(metal)))
    return SceneObject("lamp", shape, Split(-112.0, upper, lower), origin,
                       {"shade": (0.0, -132.0), "stem": (0.0, -64.0)})


def _flower(origin: tuple[float, float], petals: list[str], seed: int) -> SceneObject:
    head = -128.0
    parts: list = [RoundedRect(-4.0, -106.0, 4.0, 0.0),  # stem
                   Ellipse(-15.0, -48.0, 15.0, 7.5, 30.0), Ellipse(15.0, -66.0, 15.0, 7.5, -30.0)]  # leaves
    for k in range(6):
        px, py = polar(17.0, 60.0 * k - 90.0)
        parts.append(Ellipse(px, head + py, 14.0, 8.5, 60.0 * k - 90.0))
    parts.append(disc(11.0, 0.0, head))
    rings = Shifted(Rings(palette(petals), 4.0, Noise(seed, 5.0, 3)), 0.0, head)
    stem = Marble(Noise(seed + 1, 14.0, 3, stretch=0.35), palette(["#1f5e1a", "#3f8f2c", "#77b84a"]))
    texture = _grain(seed + 2)(Split(-104.0, rings, stem))
    return SceneObject("flower", Union(tuple(parts)), texture, origin,
                       {"head": (0.0, head), "leaf": (15.0, -66.0)})


# ---------------------------------------------------------------- cases


def _rounded(value: float) -> float:
    return round(value, POINT_DECIMALS)


def _drag_of(transform: Transform, handle: tuple[float, float]) -> tuple[float, float]:
    """The (rounded) displacement ``transform`` gives ``handle``: the one drag a semantic group shares."""
    target = [_rounded(v) for v in transform.forward(*handle)]
    return _rounded(target[0] - handle[0]), _rounded(target[1] - handle[1])


def case_specs() -> list[CaseSpec]:
    """Every case, in the order of ``cases.jsonl``."""
    specs: list[CaseSpec] = []

    def add(case_id: str, subtask: str, group: str | None, instruction: str, scene: Scene, transform: Transform,
            *handles: str) -> None:
        specs.append(CaseSpec(case_id, subtask, group, instruction, scene, transform, handles))

    def add_semantic(group: str, scene: Scene, anchor: str, move: str, edit: tuple[str, str, Transform],
                     bend: tuple[str, str, tuple[float, float]]) -> None:
        """Three cases with one drag: a move, ``edit`` (whose drag it is) and a bend about ``bend``'s base."""
        handle = scene.obj.anchor(anchor)
        drag = _drag_of(edit[2], handle)
        add(f"{group}-move", "semantic", group, move, scene, Translate(*drag), anchor)
        add(f"{group}-{edit[0]}", "semantic", group, edit[1], scene, edit[2], anchor)
        add(f"{group}-{bend[0]}", "semantic", group, bend[1], scene, Bend(*drag, base=bend[2], handle=handle), anchor)

    # --- real: two edits of each kind, each on its own scene
    ball = Scene("ball-lawn", 320, 224, "grass", _ball_dots(), "an orange polka-dot ball on a lawn")
    add("real-move-ball", "real", None, "Move the ball to the right", ball, Translate(104.0, 0.0),
        "upper-left", "lower-right")
    star = Scene("star-fabric", 256, 256, "fabric", _star_checker(),
                 "a yellow and orange checkered star on a blue dotted fabric")
    add("real-move-star", "real", None, "Move the star up and to the left", star,
        Translate(-54.0, -46.0), "top tip", "centre")
    gear = Scene("gear-wood", 256, 256, "wood", _gear(), "a blue striped gear on a wooden table")
    add("real-rotate-gear", "real", None, "Rotate the gear clockwise", gear,
        Rotate(30.0, 128.0, 128.0), "top tooth", "lower-right tooth")
    card = Scene("card-stone", 224, 320, "stone", _card(), "a pink and teal striped card on a stone floor")
    add("real-rotate-card", "real", None, "Rotate the card counterclockwise", card,
        Rotate(-25.0, 112.0, 160.0), "top-right corner", "bottom-left corner")
    plate = Scene("plate-tablecloth", 256, 256, "tablecloth", _plate(),
                  "a plate with blue, yellow and red rings on a green checkered tablecloth")
    add("real-enlarge-plate", "real", None, "Make the plate bigger", plate,
        Scale(1.4, 128.0, 128.0), "rim", "inner ring")
    tile = Scene("tile-sand", 256, 256, "sand", _tile(), "a green marble hexagonal tile on sand")
    add("real-shrink-tile", "real", None, "Make the hexagonal tile smaller", tile,
        Scale(0.65, 128.0, 132.0), "top corner", "right corner")
    lamp = Scene("lamp-wallpaper", 256, 256, "wallpaper",
                 _lamp((128.0, 236.0), ["#f2d16b", "#e8893a", "#f7ecc8"], ["#3b2f2a", "#7a5c3e", "#b08d57"], 191,
                       bands=(0.0, 1.0)),
                 "a table lamp with an orange banded shade in front of a striped wallpaper")
    add("real-bend-lamp", "real", None, "Bend the top of the lamp to the left", lamp,
        Bend(-50.0, 8.0, base=(128.0, 222.0), handle=lamp.obj.anchor("shade")), "shade", "stem")  # foot stays
    flower = Scene("flower-stone", 256, 256, "stone", _flower((120.0, 236.0), ["#c2185b", "#f06292", "#f8bbd0",
                                                                                "#fdd835"], 201),
                   "a pink flower with a green stem on a stone floor")
    add("real-bend-flower", "real", None, "Bend the flower to the right", flower,
        Bend(44.0, 10.0, base=(120.0, 236.0), handle=flower.obj.anchor("head")), "head", "leaf")

    # --- magnitude: same scene, same instruction, three magnitudes
    pinwheel = Scene("pinwheel-sky", 256, 256, "sky", _pinwheel(),
                     "a pinwheel with red, yellow, green and blue blades against a cloudy sky")
    for angle in (15, 30, 45):
        add(f"mag-rotate-pinwheel-{angle}", "magnitude", "mag-rotate-pinwheel", "Rotate the pinwheel clockwise",
            pinwheel, Rotate(float(angle), 128.0, 128.0), "top blade", "bottom blade")
    beach = Scene("beachball-sand", 256, 256, "sand", _beach_ball(), "a striped beach ball on sand")
    for offset in (24, 48, 72):
        add(f"mag-move-ball-{offset}", "magnitude", "mag-move-ball", "Move the ball to the right", beach,
            Translate(float(offset), 0.0), "upper-left", "right")
    star6 = Scene("star-tablecloth", 256, 256, "tablecloth", _star_dotted(),
                  "a purple star with yellow, white and cyan dots on a green checkered tablecloth")
    for factor in (1.15, 1.3, 1.45):
        add(f"mag-enlarge-star-{round(factor * 100)}", "magnitude", "mag-enlarge-star", "Make the star bigger",
            star6, Scale(factor, 128.0, 128.0), "top tip", "right tip")

    # --- semantic: same scene and the same single drag, three different edits
    lamp2 = Scene("lamp-wood", 256, 256, "wood",
                  _lamp((96.0, 232.0), ["#1e5aa8", "#f3f3f3", "#78a9e0"], ["#1c1c1f", "#4a4a52", "#8d8f99"], 211,
                        bands=(0.8, -0.6)),
                  "a table lamp with a blue and white striped shade on a wooden table")
    pivot = lamp2.obj.origin  # the bottom of the foot: the lamp tips over about it
    add_semantic("sem-lamp", lamp2, "shade", "Move the lamp to the right",
                 ("tilt", "Tilt the lamp clockwise", Rotate(24.0, *pivot)),
                 ("bend", "Bend the top of the lamp to the right", (pivot[0], pivot[1] - 14.0)))  # top of the foot

    flower2 = Scene("flower-wallpaper", 256, 256, "wallpaper",
                    _flower((140.0, 232.0), ["#f9a825", "#fdd835", "#fff59d", "#6d4c41"], 221),
                    "a yellow flower with a green stem in front of a striped wallpaper")
    base = flower2.obj.origin
    add_semantic("sem-flower", flower2, "head", "Move the flower up",
                 ("enlarge", "Make the flower bigger", Scale(1.3, *base)),
                 ("stretch", "Make the flower's stem longer", base))
    return specs
