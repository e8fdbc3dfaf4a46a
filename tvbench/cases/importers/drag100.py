"""Drag100 (GoodDrag, Zhang et al. 2024) as tvbench cases.

Layout: one folder per case holding ``original.jpg`` (``.jpeg``/``.png`` accepted too), ``mask.png`` (mode L,
0 and 255: the region that may change) and ``points.json`` = ``{"points": [[x, y], ...]}``, alternating handle and
target. There is no text at all. SRC may be any folder above the case folders, or one case folder.

Mapping: id = the case folder's path below SRC joined with ``__`` (the folder's own name when SRC is the case),
``source`` = the image (bytes unchanged), ``points`` = the pairs (border rule in :mod:`.common`), ``mask_source``
= the mask re-encoded as a 0/255 PNG, no target, caption, instruction or subtask; ``meta`` keeps the dataset and
the path. A case without ``mask.png``, or with an all-zero mask, imports without ``mask_source`` and says so in
``meta``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tvbench.cases.benchmark import Benchmark, build_benchmark
from tvbench.cases.case import Case, ImageRef, parse_case
from tvbench.cases.importers.common import (
    EMPTY_MASK_NOTE, drag_pairs, find_case_dirs, image_size, keep_ref, mask_png, require_folder, safe_id,
)
from tvbench.errors import CaseError
from tvbench.progress import track

POINTS_FILE = "points.json"
MASK_FILE = "mask.png"
IMAGE_NAMES = ("original.jpg", "original.jpeg", "original.png")
LAYOUT = f"<case>/{{original.jpg, {MASK_FILE}, {POINTS_FILE}}}"
WHAT = "Drag100"


def _read_points(case_id: str, path: Path) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CaseError(case_id, POINTS_FILE, f"cannot read: {reason}") from None
    if not isinstance(data, dict) or "points" not in data:
        raise CaseError(case_id, POINTS_FILE, 'must be a JSON object {"points": [[x, y], ...]}')
    return data["points"]


def _read_mask(case_id: str, path: Path, width: int, height: int) -> tuple[bytes | None, str | None]:
    """The mask as the 0/255 PNG of :func:`mask_png`, and a note when it had to be binarised.

    Masks saved with antialiasing or JPEG-like noise hold a few values besides 0 and their maximum; they are
    thresholded at half the maximum (the folder format's rule) when under 1% of pixels lie far from both levels.
    More than that is not a mask: an error names the case.
    """
    try:
        with Image.open(path) as image:
            values = np.asarray(image.convert("L"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CaseError(case_id, MASK_FILE, f"cannot decode {path}: {reason}") from None
    top = int(values.max())
    stray = int(((values != 0) & (values != top)).sum())
    far = float(((values > 0.1 * top) & (values < 0.9 * top)).mean()) if top else 0.0
    if far > 0.01:
        levels = np.unique(values)
        raise CaseError(case_id, MASK_FILE, f"is not binary (values {', '.join(map(str, levels[:5].tolist()))}"
                        f"{', ...' if len(levels) > 5 else ''}); expected 0 and 255")
    note = f"binarised at {top / 2:g}: {stray} pixels were neither 0 nor {top}" if stray else None
    return mask_png(case_id, MASK_FILE, (values > top / 2.0).astype(np.uint8), width, height), note


def drag100_case(case_dir: Path, root: Path) -> Case:
    """One Drag100 case folder as a :class:`Case` (see the module doc for the mapping)."""
    relative = case_dir.relative_to(root).parts or (case_dir.name,)
    case_id = safe_id(relative)
    image_path = next((case_dir / name for name in IMAGE_NAMES if (case_dir / name).is_file()), None)
    if image_path is None:
        raise CaseError(case_id, "original.jpg", f"missing: no {' or '.join(IMAGE_NAMES)} in {case_dir}")
    width, height = image_size(case_id, image_path.name, image_path)
    pairs, clamps = drag_pairs(case_id, _read_points(case_id, case_dir / POINTS_FILE), width, height)
    meta: dict[str, Any] = {"dataset": WHAT, "path": "/".join(relative)}
    mask = None
    if (case_dir / MASK_FILE).is_file():
        mask, note = _read_mask(case_id, case_dir / MASK_FILE, width, height)
        if mask is None:
            meta["mask"] = EMPTY_MASK_NOTE
        elif note:
            meta["mask"] = note
    else:
        meta["mask"] = f"no {MASK_FILE} in the source data; mask_source left out"
    if clamps:
        meta["clamped_points"] = clamps
    record: dict[str, Any] = {
        "id": case_id,
        "source": ImageRef(label=str(image_path), path=image_path),
        "points": pairs,
        "meta": meta,
    }
    if mask is not None:
        record["mask_source"] = ImageRef(label=str(case_dir / MASK_FILE), data=mask)
    return parse_case(record, keep_ref)


def read_drag100(src: str | Path, *, progress: bool = False) -> Benchmark:
    """Every Drag100 case under ``src``; per-case problems are kept for :meth:`Benchmark.validate`."""
    root = require_folder(src, WHAT, LAYOUT)
    cases: list[Case] = []
    errors: list[CaseError] = []
    for case_dir in track(find_case_dirs(root, POINTS_FILE, WHAT, LAYOUT), "reading Drag100", enabled=progress):
        try:
            cases.append(drag100_case(case_dir, root))
        except CaseError as exc:
            errors.append(exc)
    info = {"description": "Drag100 (GoodDrag, Zhang et al. 2024), imported with tvbench data import drag100",
            "imported_from": {"format": "drag100", "path": str(root)}}
    return build_benchmark(root.resolve().name, str(root), cases, errors, info)
