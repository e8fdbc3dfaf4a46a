"""Edit files: which image in a method folder is the edit of which case, and reading one (hash, pixels, fit).

An edit is the file ``<case_id>.<ext>`` in the method's folder, in any usual image format (``tvbench run``
writes PNG). Matching is exact, since a case id is a file name; a file that names no case is never silently
dropped: it is reported, with the case it most likely meant (``Real_Move_Ball.png``: did you mean
``real-move-ball.png``?), and a folder whose images name no case at all is an error, not a table of zero coverage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from PIL import Image

from tvbench.errors import ResultsError
from tvbench.io import iter_files
from tvbench.registry import close_matches

# Formats PIL decodes without plugins; `tvbench run` writes PNG.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside ``folder`` (hidden partial writes excluded)."""
    return iter_files(folder, IMAGE_SUFFIXES)


def did_you_mean(stem: str, case_ids: Iterable[str]) -> str | None:
    """The case a file name most likely meant, or None."""
    close = close_matches(stem, case_ids, n=1, cutoff=0.75, abbreviations=False)
    return close[0] if close else None


@dataclass
class EditFiles:
    """The edits found in one method folder: case id -> file, and the images that name no case."""

    folder: Path
    by_case: dict[str, Path] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)  # "Real_Move_Ball.png (did you mean real-move-ball.png?)"


def match_edit_files(folder: Path, case_ids: Iterable[str]) -> EditFiles:
    """Pair each image in ``folder`` with the case it is named after.

    Two images for one case (``a.png`` and ``a.jpg``) are ambiguous: a :class:`ResultsError` names both.
    """
    ids = list(case_ids)
    known = set(ids)
    found = EditFiles(Path(folder))
    for path in image_files(folder):
        if path.stem in known:
            if path.stem in found.by_case:
                raise ResultsError(f"{folder}: case {path.stem!r} has two edits, {found.by_case[path.stem].name} and "
                                   f"{path.name}; keep one")
            found.by_case[path.stem] = path
            continue
        guess = did_you_mean(path.stem, ids)
        hint = f"{guess}{path.suffix}" if guess else None
        found.unmatched.append(f"{path.name} (did you mean {hint}?)" if hint else path.name)
    return found


def require_some_match(files: EditFiles, bench_name: str) -> None:
    """A folder of images none of which is named after a case answers another benchmark, or is misnamed."""
    if files.by_case or not files.unmatched:
        return
    more = len(files.unmatched) - 3
    shown = ", ".join(files.unmatched[:3]) + (f" and {more} more" if more > 0 else "")
    raise ResultsError(f"{files.folder}: none of its {len(files.unmatched)} image(s) is named <case_id>.<ext> after a "
                       f"case of {bench_name}: {shown}")


def bind_edit_files(runs: Iterable, case_ids: Iterable[str], bench_name: str) -> None:
    """Give each method run (``.folder``, ``.files``) its matched edit files; refuse folders that match nothing."""
    ids = list(case_ids)
    for run in runs:
        run.files = match_edit_files(run.folder, ids)
        require_some_match(run.files, bench_name)


def file_sha(path: Path) -> str:
    """sha256 of the file's bytes: a row is reused only while its edit file is byte-identical."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_edit(path: Path) -> Image.Image:
    """The edit as RGB, decoded now (the file handle is closed on return)."""
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def fit_edit(edit: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, bool]:
    """The edit at the case's size (bicubic), and whether it had to be resized."""
    edit = edit.convert("RGB")
    if edit.size == size:
        return edit, False
    return edit.resize(size, Image.BICUBIC), True
