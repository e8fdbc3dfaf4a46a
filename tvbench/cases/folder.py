"""The folder format: ``cases.jsonl`` (one case per line) beside the images it names.

Image paths in ``cases.jsonl`` are relative to the folder and must stay inside it. An optional
``benchmark.json`` gives the benchmark a name and a description.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

from PIL import Image

from tvbench.cases.benchmark import Benchmark, build_benchmark
from tvbench.cases.case import IMAGE_FIELDS, Case, ImageRef, parse_case
from tvbench.errors import BenchmarkError, CaseError, TvbenchError
from tvbench.io import atomic_write_json, atomic_write_text, read_json_object
from tvbench.progress import track

CASES_FILE = "cases.jsonl"
INFO_FILE = "benchmark.json"


def is_folder_benchmark(path: Path) -> bool:
    return (Path(path) / CASES_FILE).is_file()


def _folder_resolver(root: Path):
    resolved_root = root.resolve()

    def resolve(case_id: str, field: str, value: Any) -> ImageRef:
        if not isinstance(value, str) or not value:
            raise CaseError(case_id, field, f"must be a relative image path, got {value!r}")
        relative = Path(value)
        if relative.is_absolute():
            raise CaseError(case_id, field, f"{value!r} is absolute; paths must be relative to the benchmark folder")
        try:
            path = (resolved_root / relative).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable folder
            raise CaseError(case_id, field, f"cannot resolve {value!r} ({exc})") from None
        if not path.is_relative_to(resolved_root):
            raise CaseError(case_id, field, f"{value!r} points outside the benchmark folder")
        return ImageRef(label=value, path=path)

    return resolve


def read_folder(root: Path, spec: str | None = None) -> Benchmark:
    """Parse ``cases.jsonl``, collecting every structural error (pixels are checked by ``validate``)."""
    root = Path(root)
    spec = spec or str(root)
    cases_path = root / CASES_FILE
    if not cases_path.is_file():
        raise BenchmarkError(f"{root}: no {CASES_FILE} here; a folder benchmark needs one case per line in it")
    try:
        text = cases_path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark from Windows editors
    except UnicodeDecodeError as exc:
        raise BenchmarkError(f"{cases_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    info = _read_info(root)
    resolve = _folder_resolver(root)
    cases: list[Case] = []
    errors: list[CaseError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            errors.append(CaseError(None, CASES_FILE, f"invalid JSON ({exc})", line=number))
            continue
        try:
            cases.append(parse_case(raw, resolve, line=number))
        except CaseError as exc:
            errors.append(exc)
    name = str(info.get("name") or root.resolve().name)
    return build_benchmark(name, spec, cases, errors, info)


def _read_info(root: Path) -> dict:
    path = root / INFO_FILE
    return read_json_object(path, BenchmarkError) if path.is_file() else {}


def _image_extension(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        fmt = (image.format or "PNG").lower()
    return {"jpeg": ".jpg"}.get(fmt, "." + fmt)


def _place(ref: ImageRef, out: Path, stem: str, link: bool) -> str:
    """Put one image at ``out/images/<stem><ext>``: its bytes unchanged, or with ``link`` a hard link to its file
    (no copy: ``data build`` assembles from its own work files), a copy where linking fails (another file system)."""
    if link and ref.path is not None and ref.path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
        relative = f"images/{stem}{ref.path.suffix.lower()}"
        try:
            os.link(ref.path, out / relative)
            return relative
        except OSError:
            pass
    data = ref.read_bytes()
    relative = f"images/{stem}{_image_extension(data)}"
    (out / relative).write_bytes(data)
    return relative


def write_folder(bench: Benchmark, out: Path, *, overwrite: bool = False, progress: bool = False,
                 link: bool = False) -> Path:
    """Write ``bench`` in the folder format, copying image bytes unchanged (no re-encoding); ``link``: hard-link
    image files instead of copying them, where the file system allows."""
    out = Path(out)
    if (out / CASES_FILE).exists() and not overwrite:
        raise TvbenchError(f"{out}: already holds a benchmark; pass --overwrite to replace it")
    images_dir = out / "images"
    if images_dir.exists() and overwrite:
        shutil.rmtree(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for case in track(bench.cases, "writing", enabled=progress):
        record = case.text_record()
        for role in IMAGE_FIELDS:
            ref = case.image(role)
            if ref is None:
                continue
            record[role] = _place(ref, out, f"{case.id}.{role}", link)
        lines.append(json.dumps(record, ensure_ascii=False, allow_nan=False))
    info = {key: value for key, value in bench.info.items() if key != "hash"}
    info["name"] = bench.name
    if bench.hash:
        info["hash"] = bench.hash
    atomic_write_json(out / INFO_FILE, info)
    atomic_write_text(out / CASES_FILE, "\n".join(lines) + "\n")
    return out
