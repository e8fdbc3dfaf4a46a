"""The benchmark case: schema, parsing from plain records, and content validation.

A case is the unit every part of tvbench agrees on. Its record (what ``cases.jsonl`` holds, one per line) is

    {"id": "gear-rotate-30", "source": "images/gear-rotate-30.src.png", "target": "...", "instruction": "...",
     "points": [[x_src, y_src, x_tgt, y_tgt], ...], "dense_points": [...], "mask_source": "...",
     "mask_target": "...", "subtask": "magnitude", "group": "gear-rotate", "caption": "...", "meta": {...}}

Coordinates are pixels of the source image: x to the right, y down, and pixel ``(i, j)`` has its centre at
``(x=i, y=j)`` (as DragBench's integer points assume). A point must lie within the grid of pixel centres,
``0 <= x <= width - 1`` and ``0 <= y <= height - 1``; floats are allowed. Every problem is reported as a
:class:`~tvbench.errors.CaseError` naming the case and the field.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from PIL import Image, UnidentifiedImageError

from tvbench.errors import CaseError
from tvbench.io import sha256_hex

if TYPE_CHECKING:  # numpy is imported where masks are read, so that `tvbench ls` does not load it
    import numpy as np

SUBTASKS = ("real", "magnitude", "semantic")
IMAGE_FIELDS = ("source", "target", "mask_source", "mask_target")
TEXT_FIELDS = ("instruction", "caption", "group")
POINT_FIELDS = ("points", "dense_points")
RECORD_FIELDS = ("id", *IMAGE_FIELDS, *TEXT_FIELDS, *POINT_FIELDS, "subtask", "meta")
MAX_ID_LENGTH = 128
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

DragPair = tuple[float, float, float, float]


def check_case_id(case_id: Any, line: int | None = None) -> str:
    """Ids become file names (``<id>.png``), so only a conservative alphabet is accepted."""
    if case_id is None or case_id == "":
        raise CaseError(None, "id", "missing or empty; every case needs an id", line=line)
    if not isinstance(case_id, str):
        raise CaseError(None, "id", f"must be a string, got {case_id!r}", line=line)
    if len(case_id) > MAX_ID_LENGTH:
        raise CaseError(case_id[:40] + "...", "id", f"longer than {MAX_ID_LENGTH} characters", line=line)
    if not _ID_PATTERN.fullmatch(case_id):
        raise CaseError(case_id, "id", "unsafe as a file name; use letters, digits, '-', '_' and '.', "
                        "starting with a letter or digit (no '/', '..' or spaces)", line=line)
    return case_id


@dataclass(frozen=True)
class ImageRef:
    """Where a case image comes from: a file on disk or encoded bytes held in memory (datasets rows)."""

    label: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def open(self, mode: str = "RGB") -> Image.Image:
        """Decode fully (not lazily) so a truncated file fails here, not halfway through a metric."""
        image = Image.open(io.BytesIO(self.read_bytes()))
        image.load()
        return image.convert(mode)


def pixel_digest(image: Image.Image) -> str:
    """Identity of decoded pixels: re-encoding a PNG losslessly does not change a benchmark's hash."""
    header = f"{image.mode}:{image.width}x{image.height}:".encode()
    return sha256_hex(header + image.tobytes())


def mask_to_array(image: Image.Image) -> np.ndarray:
    """A mask is a single-channel image with two values; the larger value marks the region."""
    import numpy as np

    values = np.asarray(image.convert("L"))
    return values > (int(values.max()) / 2.0)


@dataclass(frozen=True)
class Case:
    id: str
    source: ImageRef
    target: ImageRef | None = None
    instruction: str | None = None
    caption: str | None = None
    points: tuple[DragPair, ...] = ()
    dense_points: tuple[DragPair, ...] = ()
    mask_source: ImageRef | None = None
    mask_target: ImageRef | None = None
    subtask: str | None = None
    group: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def category(self) -> str | None:
        """What reports filter on beside the subtask: an imported category (DragBench's), else the kind of edit
        (the ``sample`` benchmark's transform: translate, rotate, scale, bend)."""
        transform = self.meta.get("transform") if self.meta else None
        return (self.meta or {}).get("category") or (transform.get("kind") if isinstance(transform, dict) else None)

    def image(self, role: str) -> ImageRef | None:
        if role not in IMAGE_FIELDS:
            raise KeyError(role)
        return getattr(self, role)

    def open_image(self, role: str) -> Image.Image:
        ref = self.image(role)
        if ref is None:
            raise CaseError(self.id, role, "not provided by this case")
        return ref.open("RGB")

    def open_mask(self, role: str) -> np.ndarray:
        ref = self.image(role)
        if ref is None:
            raise CaseError(self.id, role, "not provided by this case")
        return mask_to_array(ref.open("L"))

    def text_record(self) -> dict[str, Any]:
        """Everything but the images, as stored in ``cases.jsonl`` (and hashed)."""
        record: dict[str, Any] = {"id": self.id}
        for name in TEXT_FIELDS + ("subtask",):
            if getattr(self, name) is not None:
                record[name] = getattr(self, name)
        record["points"] = [list(p) for p in self.points]
        if self.dense_points:
            record["dense_points"] = [list(p) for p in self.dense_points]
        if self.meta:
            record["meta"] = dict(self.meta)
        return record


def _check_text(case_id: str, name: str, value: Any, line: int | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CaseError(case_id, name, f"must be a string, got {type(value).__name__}", line=line)
    if not value.strip():
        raise CaseError(case_id, name, "is empty; omit the field instead", line=line)
    return value


def _check_number(case_id: str, where: str, value: Any, line: int | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaseError(case_id, where, f"must be a number, got {value!r}", line=line)
    if not math.isfinite(value):
        raise CaseError(case_id, where, f"must be finite, got {value!r}", line=line)
    return float(value)


def parse_points(case_id: str, name: str, value: Any, line: int | None = None) -> tuple[DragPair, ...]:
    """Drag pairs as ``[[x_src, y_src, x_tgt, y_tgt], ...]``."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise CaseError(case_id, name, f"must be a list of [x_src, y_src, x_tgt, y_tgt], got {type(value).__name__}",
                        line=line)
    pairs = []
    for k, item in enumerate(value):
        where = f"{name}[{k}]"
        if not isinstance(item, (list, tuple)) or len(item) != 4:
            raise CaseError(case_id, where, f"must be [x_src, y_src, x_tgt, y_tgt], got {item!r}", line=line)
        pairs.append(tuple(_check_number(case_id, where, v, line) for v in item))
    return tuple(pairs)  # type: ignore[return-value]


ImageResolver = Callable[[str, str, Any], ImageRef]
"""(case_id, field, raw value) -> ImageRef; each reader knows how its format stores images."""


def parse_case(raw: Any, resolve_image: ImageResolver, line: int | None = None) -> Case:
    """Build a :class:`Case` from a plain record, checking structure (not pixels; see :func:`check_content`)."""
    if not isinstance(raw, dict):
        raise CaseError(None, "record", f"must be a JSON object, got {type(raw).__name__}", line=line)
    case_id = check_case_id(raw.get("id"), line)
    unknown = sorted(set(raw) - set(RECORD_FIELDS))
    if unknown:
        raise CaseError(case_id, unknown[0], f"unknown field; allowed fields are {', '.join(RECORD_FIELDS)} "
                        "(put anything else under 'meta')", line=line)
    if raw.get("source") is None:
        raise CaseError(case_id, "source", "missing; every case needs a source image", line=line)
    try:
        images = {name: resolve_image(case_id, name, raw[name]) for name in IMAGE_FIELDS if raw.get(name) is not None}
    except CaseError as exc:
        if exc.line is not None or line is None:
            raise
        raise CaseError(exc.case_id, exc.field, exc.problem, line=line) from None
    subtask = raw.get("subtask")
    if subtask is not None and subtask not in SUBTASKS:
        raise CaseError(case_id, "subtask", f"must be one of {', '.join(SUBTASKS)} (or absent), got {subtask!r}",
                        line=line)
    meta = raw.get("meta") or {}
    if not isinstance(meta, dict):
        raise CaseError(case_id, "meta", f"must be a JSON object, got {type(meta).__name__}", line=line)
    texts = {name: _check_text(case_id, name, raw.get(name), line) for name in TEXT_FIELDS}
    return Case(
        id=case_id,
        points=parse_points(case_id, "points", raw.get("points"), line),
        dense_points=parse_points(case_id, "dense_points", raw.get("dense_points"), line),
        subtask=subtask,
        meta=meta,
        **images,
        **texts,
    )


def _decode(case: Case, role: str, mode: str) -> Image.Image:
    ref = case.image(role)
    assert ref is not None
    try:
        return ref.open(mode)
    except FileNotFoundError:
        raise CaseError(case.id, role, f"file not found: {ref.label}") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CaseError(case.id, role, f"cannot decode {ref.label}: {reason}") from None


def _points_outside(points: tuple[DragPair, ...], width: int, height: int) -> Iterator[tuple[int, str, float, float]]:
    for k, (xs, ys, xt, yt) in enumerate(points):
        for end, x, y in (("handle", xs, ys), ("target", xt, yt)):
            if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
                yield k, end, x, y


def check_content(case: Case) -> dict[str, str]:
    """Decode every image and check sizes, masks and point bounds.

    Returns the pixel digest of each image (for the benchmark hash); raises the first problem found.
    """
    digests: dict[str, str] = {}
    source = _decode(case, "source", "RGB")
    digests["source"] = pixel_digest(source)
    size = source.size
    if case.target is not None:
        target = _decode(case, "target", "RGB")
        if target.size != size:
            raise CaseError(case.id, "target", f"is {target.width}x{target.height} but the source is "
                            f"{size[0]}x{size[1]}; a target must have the source's size")
        digests["target"] = pixel_digest(target)
    for role in ("mask_source", "mask_target"):
        if case.image(role) is None:
            continue
        mask = _decode(case, role, "L")
        if mask.size != size:
            raise CaseError(case.id, role, f"is {mask.width}x{mask.height} but the image is {size[0]}x{size[1]}")
        values = [value for _, value in mask.getcolors(256)]  # mode L: at most 256
        if len(values) > 2:
            raise CaseError(case.id, role, f"is not binary ({len(values)} distinct values); "
                            "save masks losslessly (PNG) with two values, e.g. 0 and 255")
        if max(values) == 0:
            raise CaseError(case.id, role, "is empty (no pixel set)")
        digests[role] = pixel_digest(mask)
    for name in POINT_FIELDS:
        for k, end, x, y in _points_outside(getattr(case, name), *size):
            raise CaseError(case.id, f"{name}[{k}]", f"{end} ({x:g}, {y:g}) lies outside the "
                            f"{size[0]}x{size[1]} source image")
    return digests
