"""What every drag-benchmark importer shares: finding case folders, safe ids, the point rule, mask encoding.

The point rule. Our cases require every point inside the grid of pixel centres, ``0 <= x <= W-1`` and
``0 <= y <= H-1`` (see :mod:`tvbench.cases.case`). Drag benchmarks are clicked by hand in a GUI, and DragBench has
points on the far border (``x == W``), one pixel outside that grid. A coordinate at most
:data:`BORDER_TOLERANCE` pixels outside is moved onto the nearest border pixel centre and the move is recorded in
the case's ``meta["clamped_points"]`` (``index`` counts the source's flat ``[x, y]`` list, handle and target
alternating); a point further outside is an error naming the case, since it is no longer a click on the border.
"""

from __future__ import annotations

import math
import numbers
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tvbench.errors import BenchmarkError, CaseError
from tvbench.io import encode_png

BORDER_TOLERANCE = 2.0
"""Pixels a point may lie outside the pixel-centre grid and still be clamped onto its border."""

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SKIPPED_DIRS = ("__MACOSX",)  # resource-fork folders that macOS zips carry beside the real files


def require_folder(src: str | Path, what: str, layout: str) -> Path:
    root = Path(src).expanduser()
    if not root.exists():
        raise BenchmarkError(f"{src}: no such folder; expected {what} laid out as {layout}")
    if not root.is_dir():
        raise BenchmarkError(f"{src}: not a folder; expected {what} laid out as {layout}")
    return root


def find_case_dirs(root: Path, marker: str, what: str, layout: str) -> list[Path]:
    """Every folder under ``root`` (``root`` included) holding ``marker``, sorted, skipping hidden and macOS
    metadata folders. Searching the whole tree accepts the dataset root, one category, or a single case."""
    found = []
    for path in root.rglob(marker):
        parts = path.relative_to(root).parts[:-1]
        if any(part.startswith(".") or part in _SKIPPED_DIRS for part in parts) or not path.is_file():
            continue
        found.append(path.parent)
    if not found:
        raise BenchmarkError(f"{root}: no {marker} found under it; expected {what} laid out as {layout}")
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def safe_id(parts: list[str] | tuple[str, ...]) -> str:
    """Join path components with ``__`` after replacing characters an id may not hold (ids become file names)."""
    cleaned = [_UNSAFE_ID_CHARS.sub("-", part).strip("-") or "x" for part in parts]
    return "__".join(cleaned).lstrip("._-") or "case"


def _coordinate(case_id: str, where: str, value: Any) -> float | int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise CaseError(case_id, where, f"coordinates must be numbers, got {value!r}")
    number = value.item() if isinstance(value, np.generic) else value
    if not math.isfinite(number):
        raise CaseError(case_id, where, f"coordinates must be finite, got {value!r}")
    return number


def _clamp(value: float | int, high: int) -> float | int:
    return 0 if value < 0 else (high if value > high else value)


def drag_pairs(case_id: str, points: Any, width: int, height: int) -> tuple[list[list[float | int]], list[dict]]:
    """``[[x, y], ...]`` alternating handle, target -> ``[[x_h, y_h, x_t, y_t], ...]``, with the border rule.

    Returns the pairs and the clamps made (for ``meta``); raises :class:`CaseError` for anything malformed.
    """
    if not isinstance(points, (list, tuple)):
        raise CaseError(case_id, "points", f"must be a list of [x, y], got {type(points).__name__}")
    if not points:
        raise CaseError(case_id, "points", "is empty; a drag case needs at least one handle/target pair")
    if len(points) % 2:
        raise CaseError(case_id, "points", f"has {len(points)} points; expected an even number "
                        "(handle, target, handle, target, ...)")
    flat: list[tuple[float | int, float | int]] = []
    clamps: list[dict] = []
    for index, item in enumerate(points):
        where = f"points[{index}]"
        if isinstance(item, np.ndarray):
            item = item.tolist()
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise CaseError(case_id, where, f"must be [x, y], got {item!r}")
        x, y = (_coordinate(case_id, where, v) for v in item)
        outside = max(-x, x - (width - 1), -y, y - (height - 1))
        if outside > BORDER_TOLERANCE:
            raise CaseError(case_id, where, f"({x:g}, {y:g}) lies {outside:g} px outside the {width}x{height} "
                            f"image; only points at most {BORDER_TOLERANCE:g} px outside are moved onto the border")
        if outside > 0:
            moved = (_clamp(x, width - 1), _clamp(y, height - 1))
            clamps.append({"index": index, "from": [x, y], "to": list(moved)})
            x, y = moved
        flat.append((x, y))
    pairs = [[*flat[k], *flat[k + 1]] for k in range(0, len(flat), 2)]
    return pairs, clamps


def mask_png(case_id: str, field: str, mask: Any, width: int, height: int) -> bytes | None:
    """A {0, 1} (or boolean, or {0, 255}) 2-D array as the PNG the folder format expects (mode L, 0 and 255).

    Returns ``None`` for an all-zero mask: an empty region is not a mask the folder format can hold, so the
    importer leaves ``mask_source`` out and says so in ``meta``.
    """
    if not isinstance(mask, np.ndarray):
        raise CaseError(case_id, field, f"must be a 2-D array, got {type(mask).__name__}")
    if mask.ndim != 2:
        raise CaseError(case_id, field, f"must be 2-D (height, width), got shape {mask.shape}")
    if mask.shape != (height, width):
        raise CaseError(case_id, field, f"is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height}")
    if mask.dtype.kind not in "biuf":
        raise CaseError(case_id, field, f"must hold numbers, got dtype {mask.dtype}")
    values = np.unique(mask)
    if len(values) > 2 or (len(values) == 2 and values[0] != 0) or (len(values) == 1 and values[0] < 0):
        shown = ", ".join(f"{v:g}" for v in values[:5].tolist())
        raise CaseError(case_id, field, f"must hold only 0 and 1 (or 0 and one other value), got {shown}"
                        f"{', ...' if len(values) > 5 else ''}")
    if not values.any():
        return None
    return encode_png(Image.fromarray((mask != 0).astype(np.uint8) * 255, mode="L"))


def image_size(case_id: str, field: str, path: Path) -> tuple[int, int]:
    """Width and height from the header (pixels are decoded and checked later, by validation)."""
    if not path.is_file():
        raise CaseError(case_id, field, f"missing: {path}")
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CaseError(case_id, field, f"cannot read {path}: {reason}") from None


def keep_ref(case_id: str, field: str, value: Any) -> Any:
    """The image resolver for records whose image fields already hold :class:`~tvbench.cases.case.ImageRef`."""
    return value


EMPTY_MASK_NOTE = "empty (all 0) in the source data; mask_source left out"
