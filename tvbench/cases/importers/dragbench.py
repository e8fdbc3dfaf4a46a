"""DragBench (DragDiffusion, Shi et al. 2024) as tvbench cases.

Layout: ``<category>/<case>/{original_image.png, meta_data.pkl}``, where the pickle holds a dict with ``prompt`` (a
caption of the image, not an edit instruction), ``points`` (``[[x, y], ...]``, alternating handle and target) and
``mask`` (a ``uint8`` array of the image's size, 1 where the image may change). SRC may be the folder holding the
categories, a folder above it (e.g. holding ``drag_bench_data/``), one category, or one case.

Mapping: id ``<category>__<case>`` (characters an id may not hold become ``-``), ``source`` = the image (bytes
unchanged), ``caption`` = the prompt, ``points`` = the pairs (border rule in :mod:`.common`), ``mask_source`` =
the mask as a 0/255 PNG, no target, no instruction, no subtask (DragBench is not one of TV-Edit-Bench's
sub-tasks); ``meta`` keeps the dataset, category and ``<category>/<case>`` path. The pickles are untrusted and
read with :mod:`.safe_pickle`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from tvbench.cases.benchmark import Benchmark, build_benchmark
from tvbench.cases.case import Case, ImageRef, parse_case
from tvbench.cases.importers.common import (
    EMPTY_MASK_NOTE, drag_pairs, find_case_dirs, image_size, keep_ref, mask_png, require_folder, safe_id,
)
from tvbench.cases.importers.safe_pickle import UnsafePickleError, load_untrusted_file
from tvbench.errors import CaseError
from tvbench.progress import track

IMAGE_FILE = "original_image.png"
META_FILE = "meta_data.pkl"
LAYOUT = f"<category>/<case>/{{{IMAGE_FILE}, {META_FILE}}}"
WHAT = "DragBench"


def read_meta(case_id: str, path: Path) -> dict[str, Any]:
    """The pickled dict, through the restricted unpickler; any problem is one :class:`CaseError`."""
    if not path.is_file():
        raise CaseError(case_id, META_FILE, f"missing: {path}")
    try:
        meta = load_untrusted_file(path)
    except UnsafePickleError as exc:
        raise CaseError(case_id, META_FILE, f"refused, nothing in it was run: {exc}") from None
    except pickle.UnpicklingError as exc:
        raise CaseError(case_id, META_FILE, f"cannot unpickle: {exc}") from None
    except OSError as exc:
        raise CaseError(case_id, META_FILE, f"cannot read: {exc.strerror or exc}") from None
    if not isinstance(meta, dict):
        raise CaseError(case_id, META_FILE, f"must hold a dict, got {type(meta).__name__}")
    missing = [key for key in ("prompt", "points", "mask") if key not in meta]
    if missing:
        raise CaseError(case_id, META_FILE, f"lacks key(s) {', '.join(missing)}; expected prompt, points and mask")
    return meta


def dragbench_case(case_dir: Path) -> Case:
    """One DragBench case folder as a :class:`Case` (see the module doc for the mapping)."""
    category, name = case_dir.parent.name, case_dir.name
    case_id = safe_id([category, name])
    meta = read_meta(case_id, case_dir / META_FILE)
    image_path = case_dir / IMAGE_FILE
    width, height = image_size(case_id, IMAGE_FILE, image_path)
    prompt = meta["prompt"]
    if not isinstance(prompt, str):
        raise CaseError(case_id, "prompt", f"must be a string, got {type(prompt).__name__}")
    pairs, clamps = drag_pairs(case_id, meta["points"], width, height)
    mask = mask_png(case_id, "mask", meta["mask"], width, height)
    case_meta: dict[str, Any] = {"dataset": WHAT, "category": category, "path": f"{category}/{name}"}
    if clamps:
        case_meta["clamped_points"] = clamps
    if mask is None:
        case_meta["mask"] = EMPTY_MASK_NOTE
    record: dict[str, Any] = {
        "id": case_id,
        "source": ImageRef(label=str(image_path), path=image_path),
        "caption": prompt.strip() or None,
        "points": pairs,
        "meta": case_meta,
    }
    if mask is not None:
        record["mask_source"] = ImageRef(label=f"mask of {case_dir / META_FILE}", data=mask)
    return parse_case(record, keep_ref)


def read_dragbench(src: str | Path, *, progress: bool = False) -> Benchmark:
    """Every DragBench case under ``src``; per-case problems are kept for :meth:`Benchmark.validate`."""
    root = require_folder(src, WHAT, LAYOUT)
    cases: list[Case] = []
    errors: list[CaseError] = []
    for case_dir in track(find_case_dirs(root, META_FILE, WHAT, LAYOUT), "reading DragBench", enabled=progress):
        try:
            cases.append(dragbench_case(case_dir))
        except CaseError as exc:
            errors.append(exc)
    info = {"description": "DragBench (DragDiffusion, Shi et al. 2024), imported with tvbench data import dragbench",
            "imported_from": {"format": "dragbench", "path": str(root)}}
    return build_benchmark(root.resolve().name, str(root), cases, errors, info)
