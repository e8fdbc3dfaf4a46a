"""``{name}`` placeholders in a spec's command, env and output, and which ones exist where.

A placeholder is ``{identifier}``; ``{{`` and ``}}`` are literal braces, ``${VAR}`` is an environment variable
(expanded by :mod:`.spec`), and any other brace (JSON in an argument, say) is left alone. Which names exist
depends on the mode (a worker's command starts once, before any case), the layout (its files) and the declared
inputs (``{caption}`` needs ``caption``), so a spec that asks for something it will never get fails when it is
read, not halfway through a benchmark.
"""

from __future__ import annotations

import re
from typing import Mapping

PLACEHOLDERS: dict[str, str] = {
    # known before any case
    "cwd": "the folder the command runs in (the spec's cwd)",
    "spec_dir": "the folder holding the spec file (for scripts shipped beside it)",
    "device": "the run's device, e.g. cuda:0 or cpu (tvbench run --device)",
    "work_root": "this run's scratch folder (one sub-folder per case)",
    # per case
    "case_id": "the case id",
    "seed": "the case's seed (< 2**63; the same in reruns and shards)",
    "seed32": "the case's seed modulo 2**32 (for numpy.random.seed and friends)",
    "work_dir": "the case's scratch folder",
    "input_root": "the folder holding the case's input folder and nothing else (for scripts that walk a dataset)",
    "input_dir": "the case's input folder (the layout's files)",
    "output": "where tvbench reads the edited image (the spec's output)",
    "source": "the source image file of the layout",
    "mask": "mask.png (0 = keep, 255 = may change)",
    "case_json": "tvbench layout: case.json",
    "meta": "dragbench layout: meta_data.pkl",
    "category": "dragbench layout: the DragBench category folder the case sits in",
    "points_json": "gooddrag layout: points.json",
    "image_with_points": "gooddrag layout: image_with_points.jpg",
    "caption": "the case's caption ('' if none)",
    "instruction": "the case's instruction ('' if none)",
    "prompt": "the caption if the spec declares caption, else the instruction ('' if none)",
    "points": "the drag pairs as JSON, [[x_handle, y_handle, x_target, y_target], ...] in source pixels",
}

STATIC = frozenset({"cwd", "spec_dir", "device", "work_root"})
_PER_CASE = frozenset({"case_id", "seed", "seed32", "work_dir", "input_root", "input_dir", "output"})
_LAYOUT_FILES = {
    "tvbench": frozenset({"source", "case_json"}),
    "dragbench": frozenset({"source", "meta", "category"}),
    "gooddrag": frozenset({"source", "mask", "points_json", "image_with_points"}),
}
_TOKEN = re.compile(r"\{\{|\}\}|(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ${VAR} is the environment's


def allowed_placeholders(layout: str, inputs: frozenset[str], *, per_case: bool,
                         output: bool = False) -> frozenset[str]:
    """The names a template may use: ``per_case`` False for a worker's command and env."""
    if not per_case:
        return STATIC
    names = set(STATIC | _PER_CASE | _LAYOUT_FILES[layout])
    if layout == "tvbench" and "mask" in inputs:
        names.add("mask")
    if output:  # where the output appears may depend on the case's folders, not on its text
        names -= {"output", "source", "mask", "case_json", "meta", "points_json", "image_with_points"}
        return frozenset(names)
    for text in ("caption", "instruction", "points"):
        if text in inputs:
            names.add(text)
    if inputs & {"caption", "instruction"}:
        names.add("prompt")
    return frozenset(names)


def names_in(template: str) -> list[str]:
    """The placeholder names a template uses, in order."""
    return [match.group(1) for match in _TOKEN.finditer(template) if match.group(1)]


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace each ``{name}`` by ``values[name]``; a name without a value (text that came from an environment
    variable, say) is left as it is."""

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values.get(match.group(1), token)

    return _TOKEN.sub(replace, template)
