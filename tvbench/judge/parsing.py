"""Strict reading of a judge's reply: one unambiguous integer score from 0 to 4, or a status saying why not.

Never guess. A reply is ``ok`` only when every score it states is the same integer in 0..4:
  - JSON objects anywhere in the text (with or without code fences, in any key order, amid prose) whose
    ``score`` key holds an integer (``3``, ``3.0`` or ``"3"``);
  - labelled scores in prose (``Score: 3``, ``final score is 3/4``, ``**Score (0-4):** 3``);
  - a bare ``3`` or ``3/4`` as the whole reply.
Anything else is ``unparseable``: no score, two different scores, a prose score next to another number that
could be one (``score 2 is too harsh, I give 3``), a score off the scale (``5``, ``-1``, ``2.5``,
``7/10``), or a score the reply was cut off after (``finish_reason == "length"``, as in truncated JSON
``{"score": 3`` that might have gone on as ``3.5``), and any reply holding a JSON object that does not parse
(incomplete, or a score nested in broken JSON): partial JSON is not read. ``refused`` is a reply the model
declined to grade: the API's ``refusal`` field, a ``content_filter`` stop, or a text with no score that reads as
a refusal.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from tvbench.metrics.base import OK, REFUSED, UNPARSEABLE

SCORE_MIN, SCORE_MAX = 0, 4
SCORE_KEYS = ("score", "grade", "rating")
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_LABELLED = re.compile(
    r"\b(?:final\s+)?(?:score|grade|rating)\b"  # the label
    r"(?:\s*\([^)\n]{0,20}\))?"  # an optional "(0-4)"
    r"[\s\"'*_:=\-]*(?:is|of|would be|:)?[\s\"'*_:=]*"  # separators and glue words
    r"(-?\d+(?:\.\d+)?)"  # the number
    r"(?:\s*(?:/|out of)\s*(\d+))?",  # an optional denominator
    re.I)
_BARE = re.compile(r"[\s*_\"'`]*(-?\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?[\s*_\"'`.]*")
_REFUSAL = re.compile(r"\b(?:I\s*(?:'m| am)\s+(?:sorry|unable|not able)|I\s+(?:can(?:'|no)t|cannot|won't|will not|"
                      r"must decline|am not comfortable)|unable to (?:assist|help|evaluate|grade|comply)|"
                      r"as an AI)\b", re.I)


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\d)")


def _cut_spans(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return text


@dataclass(frozen=True)
class Parsed:
    status: str
    score: int | None = None
    reasoning: str | None = None
    detail: str | None = None


def _check(value, denominator: str | None = None) -> tuple[int | None, str | None]:
    """(score, None) for an integer in range on the 0-4 scale, else (None, why)."""
    if denominator is not None and denominator != str(SCORE_MAX):
        return None, f"score {value}/{denominator} is not on the 0-{SCORE_MAX} scale"
    if isinstance(value, bool):
        return None, f"score {value!r} is not a number"
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"-?\d+(?:\.\d+)?", text):
            return None, f"score {value!r} is not a number"
        value = float(text)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"score {value!r} is not a finite number"
    if value != int(value):
        return None, f"score {value:g} is not an integer"
    if not SCORE_MIN <= value <= SCORE_MAX:
        return None, f"score {value:g} is outside {SCORE_MIN}-{SCORE_MAX}"
    return int(value), None


def _json_objects(text: str) -> tuple[list[dict], str, bool]:
    """Every top-level JSON object in ``text``, the text left when they are cut out, and whether an object that
    starts like JSON (``{"``) never parses (incomplete or broken JSON)."""
    decoder = json.JSONDecoder()
    objects, rest, i, broken = [], [], 0, False
    while True:
        start = text.find("{", i)
        if start < 0:
            rest.append(text[i:])
            break
        try:
            obj, end = decoder.raw_decode(text, start)
        except ValueError:
            broken = broken or bool(re.match(r"\s*\"", text[start + 1:]))
            rest.append(text[i:start + 1])
            i = start + 1
            continue
        rest.append(text[i:start])
        if isinstance(obj, dict):
            objects.append(obj)
        i = end
    return objects, " ".join(rest), broken


def _score_field(obj: dict) -> tuple[bool, object]:
    for key, value in obj.items():
        if isinstance(key, str) and key.strip().lower() in SCORE_KEYS:
            return True, value
    return False, None


def _reasoning_field(obj: dict) -> str | None:
    for key, value in obj.items():
        if isinstance(key, str) and key.strip().lower() in ("reasoning", "reason", "explanation", "rationale"):
            return value if isinstance(value, str) else json.dumps(value)
    return None


def parse_reply(content: str | None, refusal: str | None = None, finish_reason: str | None = None) -> Parsed:
    """The status and score of one reply (see the module docstring for the rules)."""
    if isinstance(refusal, str) and refusal.strip():
        return Parsed(REFUSED, detail=f"the model refused: {refusal.strip()[:200]}")
    if finish_reason == "content_filter":
        return Parsed(REFUSED, detail="the server's content filter stopped the reply")
    text = _THINK.sub(" ", content or "").strip()
    cut = finish_reason == "length"
    if not text:
        return Parsed(UNPARSEABLE, detail="empty reply" + (" (cut off at max_tokens)" if cut else ""))
    found: list[tuple[int, str]] = []  # (score, where)
    problems: list[str] = []
    reasoning = None
    objects, prose, broken = _json_objects(text)
    if broken:
        return Parsed(UNPARSEABLE, detail="the reply holds incomplete or invalid JSON" + (" (cut off)" if cut else ""))
    for obj in objects:
        has, value = _score_field(obj)
        if not has:
            continue
        score, why = _check(value)
        if why:
            problems.append(why)
        else:
            found.append((score, "json"))
            reasoning = reasoning or _reasoning_field(obj)
    spans = []
    for match in _LABELLED.finditer(prose):
        spans.append(match.span())
        at_end = match.end() >= len(prose.rstrip())
        if at_end and (cut or "{" in prose[:match.start()] and "}" not in prose[match.start():]):
            problems.append("the reply ends right after its score (cut off or incomplete JSON)")
            continue
        score, why = _check(match.group(1), match.group(2))
        if why:
            problems.append(why)
        else:
            found.append((score, "text"))
    if not found and not problems:
        bare = _BARE.fullmatch(text)
        if bare and not cut:
            score, why = _check(bare.group(1), bare.group(2))
            if why:
                problems.append(why)
            else:
                found.append((score, "bare"))
    if problems:
        return Parsed(UNPARSEABLE, detail=problems[0])
    scores = sorted({score for score, _ in found})
    if scores and all(where == "text" for _, where in found):  # prose only: other 0-4 numbers make it ambiguous
        others = {float(n) for n in _NUMBER.findall(_cut_spans(prose, spans))}
        stray = sorted(n for n in others if SCORE_MIN <= n <= SCORE_MAX and n != scores[0])
        if stray:
            return Parsed(UNPARSEABLE, detail=f"the reply labels score {scores[0]} but also mentions {stray[0]:g}")
    if len(scores) > 1:
        return Parsed(UNPARSEABLE, detail=f"the reply states different scores: {', '.join(map(str, scores))}")
    if scores:
        return Parsed(OK, scores[0], reasoning)
    if _REFUSAL.search(text):
        return Parsed(REFUSED, detail=f"the model declined: {text[:200]}")
    return Parsed(UNPARSEABLE, detail="no score found" + (" (cut off at max_tokens)" if cut else ""))
