"""Canary judgments: a small fixed set of edits whose correct grades are known by construction, sent first by every
judge phase so that a change of judge (provider, model, snapshot) shows at once as drift.

No reference run decides the expected grades: each canary is drawn here (deterministically, with PIL) so that the
judge's own rubric (``prompts/pf-v1.txt``, ``prompts/cp-v1.txt``) leaves one answer. The scene is a red square and a
blue circle on a plain background with a green ground band; the instruction asks to move the red square to the
right. An edit identical to the source has PF 0; the exact target has PF 4 and CP 4; a square left halfway has
PF 2; a target with a small blotch keeps PF 4 with CP 3; a recoloured background CP 2; an unrelated pattern PF 0
and CP 0. A grade the rubric does not pin down (CP of an edit that moved the wrong object) is not asked for.

The canaries go through the phase's own client and reply cache (:class:`tvbench.judge.evaluate.Evaluator`), so a
rerun with the same judge sends nothing. :func:`canary_report` compares the replies with the expected grades and
with the canary replies that the folder's previous ``summary.json`` recorded; the gate can fail on the drift
(``tvbench gate --max-canary-drift``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

from PIL import Image, ImageDraw

CANARY_SET = "canaries-v1"
SIZE = 96
INSTRUCTION = "Move the red square to the right side of the picture, keeping its height."
BACKGROUND = (236, 231, 220)
GROUND = (96, 160, 88)
RED = (210, 40, 40)
BLUE = (40, 80, 200)
SQUARE = 20
SQUARE_Y = 44
START_X, END_X = 10, 66  # the square's left edge in the source and in the target
CIRCLE = (62, 8, 84, 30)  # the blue circle's box in the source


def _scene(square_x: int, background=BACKGROUND, circle=CIRCLE) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 72, SIZE - 1, SIZE - 1), fill=GROUND)
    draw.ellipse(circle, fill=BLUE)
    draw.rectangle((square_x, SQUARE_Y, square_x + SQUARE - 1, SQUARE_Y + SQUARE - 1), fill=RED)
    return image


def source() -> Image.Image:
    return _scene(START_X)


def target() -> Image.Image:
    return _scene(END_X)


def _blotch() -> Image.Image:
    image = target()
    ImageDraw.Draw(image).rectangle((20, 12, 24, 16), fill=(60, 60, 60))
    return image


def _unrelated() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (250, 220, 40))
    draw = ImageDraw.Draw(image)
    for y in range(0, SIZE, 12):
        for x in range((y // 12) % 2 * 12, SIZE, 24):
            draw.rectangle((x, y, x + 11, y + 11), fill=(120, 40, 150))
    return image


@dataclass(frozen=True)
class Canary:
    id: str
    what: str
    edit: Callable[[], Image.Image]
    expected: dict[str, int]  # "pf" / "cp": the grade the rubric leaves

    def images(self, layout: tuple[str, ...]) -> list[Image.Image]:
        from tvbench.judge.images import draw_drag_arrows

        half = SQUARE / 2
        points = [(START_X + half, SQUARE_Y + half, END_X + half, SQUARE_Y + half)]
        roles = {"source": source, "target": target, "edit": self.edit,
                 "source+arrows": lambda: draw_drag_arrows(source(), points)}
        return [roles[role]() for role in layout]


CANARIES: tuple[Canary, ...] = (
    Canary("unchanged", "the edit is the source: nothing moved", source, {"pf": 0, "cp": 4}),
    Canary("exact", "the edit is the target", target, {"pf": 4, "cp": 4}),
    Canary("nearly", "the square stopped 6 px short of the target", lambda: _scene(END_X - 6), {"pf": 3, "cp": 4}),
    Canary("halfway", "the square moved half the distance", lambda: _scene((START_X + END_X) // 2),
           {"pf": 2, "cp": 4}),
    Canary("wrong-object", "the blue circle moved instead of the square",
           lambda: _scene(START_X, circle=(8, 8, 30, 30)), {"pf": 1}),
    Canary("blotch", "the target with a small grey blotch in the sky", _blotch, {"pf": 4, "cp": 3}),
    Canary("recoloured", "the target with the background turned blue",
           lambda: _scene(END_X, background=(150, 185, 235)), {"pf": 4, "cp": 2}),
    Canary("unrelated", "a checkerboard with nothing of the scene", _unrelated, {"pf": 0, "cp": 0}),
)


def metric_kind(metric: str) -> str | None:
    """Which rubric a judge metric uses: ``pf`` (pf, pf_drag), ``cp`` (cp, cp_drag), else None."""
    for kind in ("pf", "cp"):
        if metric == kind or metric.startswith(kind + "_"):
            return kind
    return None


def _mad(pairs: list[tuple[float, float]]) -> float | None:
    return statistics.fmean(abs(a - b) for a, b in pairs) if pairs else None


def canary_report(results: dict[tuple[str, str], tuple[float | None, str, str | None]],
                  previous: dict | None, stats: dict | None = None) -> dict:
    """``summary["judge"]["canaries"]``: per canary and metric the expected grade, the one got now (mean over
    repeats; None when the reply failed) and the one the folder's previous summary recorded; and the drift."""
    before = {}
    for item in (previous or {}).get("items", []):
        before[(item.get("canary"), item.get("metric"))] = item.get("got")
    items = []
    for (canary_id, metric), (got, status, detail) in results.items():
        canary = next(c for c in CANARIES if c.id == canary_id)
        item = {"canary": canary_id, "metric": metric, "expected": canary.expected[metric_kind(metric)],
                "got": got, "previous": before.get((canary_id, metric)), "status": status}
        if detail:
            item["detail"] = detail
        items.append(item)
    to_expected = [(i["got"], i["expected"]) for i in items if i["got"] is not None]
    to_previous = [(i["got"], i["previous"]) for i in items if i["got"] is not None and i["previous"] is not None]
    same_set = previous is None or previous.get("set") == CANARY_SET
    return {
        "set": CANARY_SET, "instruction": INSTRUCTION,
        "items": items,
        "drift": {"n": len(items), "answered": len(to_expected),
                  "vs_expected": _mad(to_expected),
                  "vs_previous": _mad(to_previous) if same_set else None,
                  "compared_with_previous": len(to_previous) if same_set else 0,
                  "max_vs_expected": max((abs(a - b) for a, b in to_expected), default=None),
                  "max_vs_previous": max((abs(a - b) for a, b in to_previous), default=None) if same_set else None},
        "this_run": stats,
    }


def canary_drift(current: dict, other: dict) -> tuple[float | None, int]:
    """Mean absolute difference of the canary grades two summaries recorded (canaries answered in both)."""
    mine = (current.get("judge") or {}).get("canaries") or {}
    theirs = (other.get("judge") or {}).get("canaries") or {}
    if mine.get("set") != theirs.get("set"):
        return None, 0
    got = {(i["canary"], i["metric"]): i.get("got") for i in theirs.get("items", [])}
    pairs = [(i["got"], got[(i["canary"], i["metric"])]) for i in mine.get("items", [])
             if i.get("got") is not None and got.get((i["canary"], i["metric"])) is not None]
    return _mad(pairs), len(pairs)
