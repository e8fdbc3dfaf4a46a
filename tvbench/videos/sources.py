"""Where the videos come from: a folder, a text file of paths, one file, or a Hugging Face dataset with a video column.

Each input is a :class:`VideoInput`: a label for messages and provenance, an identity that stays the same across
runs (it names the video's work files, so a rerun finds them), and a way to open it as a file PyAV can decode.
Inputs are small picklable values, so worker processes and Ray actors receive them as they are; a dataset row is
read by the worker that builds it, not by the process that lists the dataset.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from tvbench.errors import BenchmarkError, CaseError, ConfigError
from tvbench.io import atomic_write_bytes, sha256_hex

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv")


@dataclass(frozen=True)
class VideoInput:
    label: str  # what messages and provenance call it: the path, or hf:ID@split[row] name
    identity: str  # stable across runs: the resolved path, or the dataset, split, column and row
    name: str = "video"  # the file name, for readable work-file names
    path: str | None = None  # a file on disk
    dataset: tuple[str, str | None, str] | None = None  # (source, split, column) of a dataset row
    row: int | None = None

    @property
    def key(self) -> str:
        """The name of this video's work files: a readable stem and a hash of the identity."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(self.name).stem).strip("-._")[:60] or "video"
        return f"{stem}-{sha256_hex(self.identity)[:8]}"

    @contextmanager
    def open(self, scratch: Path) -> Iterator[Path]:
        """A file to decode. A dataset row with embedded bytes is written under ``scratch`` for the duration and
        removed after, also when decoding fails."""
        if self.path is not None:
            yield Path(self.path)
            return
        assert self.dataset is not None and self.row is not None
        ref = _row_file(self.dataset, self.row)
        if ref.path is not None:
            yield ref.path
            return
        suffix = Path(ref.label).suffix.lower() if Path(ref.label).suffix.lower() in VIDEO_EXTENSIONS else ".mp4"
        copy = Path(scratch) / f"{self.key}{suffix}"
        atomic_write_bytes(copy, ref.read_bytes())
        try:
            yield copy
        finally:
            copy.unlink(missing_ok=True)


def file_input(path: Path) -> VideoInput:
    path = Path(path)
    return VideoInput(label=str(path), identity=str(path.resolve()), name=path.name, path=str(path))


def list_inputs(source: str | Path, video_column: str | None = None) -> list[VideoInput]:
    """The videos of ``source``: a folder (recursively, by extension, sorted), a video file, a text file of paths
    (one a line, ``#`` comments, relative to the file), or ``hf:ID[@split]`` / a ``save_to_disk`` folder (one
    input per row of the video column)."""
    text = str(source)
    if text.startswith("hf:"):
        name, _, split = text[3:].partition("@")
        if not name:
            raise ConfigError(f"VIDEOS {text!r}: give a dataset id or folder after 'hf:'")
        return _dataset_inputs(name, split or None, video_column)
    path = Path(source).expanduser()
    from tvbench.cases.hf import is_saved_dataset

    if path.is_dir() and is_saved_dataset(path):
        return _dataset_inputs(str(path), None, video_column)
    if path.is_dir():
        return [file_input(p) for p in sorted(p for p in path.rglob("*")
                                              if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)]
    if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
        return [file_input(path)]
    if path.is_file():
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError:
            raise ConfigError(f"VIDEOS {path}: neither a video ({', '.join(VIDEO_EXTENSIONS)}) nor a text file of "
                              "paths") from None
        inputs = []
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                listed = Path(line).expanduser()
                inputs.append(file_input(listed if listed.is_absolute() else path.parent / listed))
        return inputs
    raise ConfigError(f"VIDEOS {source}: no such folder or file (expected a folder of videos, a video, a text file "
                      "of paths, or hf:ID)")


@lru_cache(maxsize=4)
def _split(source: str, split: str | None):
    """The dataset split, opened once per process (listing it and reading its rows share it)."""
    from tvbench.cases.hf import load_dataset_split

    return load_dataset_split(source, split)


@lru_cache(maxsize=4)
def _table(source: str, split: str | None, column: str):
    """The dataset split with its video column as ``{path, bytes}`` (not decoded)."""
    import datasets

    table = _split(source, split)
    if isinstance(table.features.get(column), datasets.Video):
        table = table.cast_column(column, datasets.Video(decode=False))
    return table


def _video_column(source: str, split: str | None, requested: str | None) -> str:
    import datasets

    features = _split(source, split).features
    where = f"hf:{source}"
    if requested is not None:
        if requested not in features:
            raise ConfigError(f"{where}: no column {requested!r}; it has {', '.join(features)}")
        return requested
    videos = [name for name, feature in features.items() if isinstance(feature, datasets.Video)]
    if len(videos) == 1:
        return videos[0]
    if "video" in features:
        return "video"
    raise ConfigError(f"{where}: name the video column with --video-column (columns: {', '.join(features)})")


def _dataset_inputs(source: str, split: str | None, requested: str | None) -> list[VideoInput]:
    try:
        column = _video_column(source, split, requested)
        table = _table(source, split, column)
    except BenchmarkError as exc:
        raise ConfigError(str(exc)) from None
    where = str(Path(source).resolve()) if Path(source).exists() else source
    inputs = []
    for row, value in enumerate(table[column]):
        name = value.get("path") if isinstance(value, dict) else value
        label = f"hf:{source}{'@' + split if split else ''}[{row}]" + (f" {Path(str(name)).name}" if name else "")
        inputs.append(VideoInput(label=label, identity=f"hf:{where}@{split}/{column}/{row}",
                                 name=Path(str(name)).name if name else f"row{row}", dataset=(source, split, column),
                                 row=row))
    return inputs


def _row_file(dataset: tuple[str, str | None, str], row: int):
    """The row's video as an :class:`~tvbench.cases.case.ImageRef` (a checked path, or the embedded bytes)."""
    from tvbench.cases.hf import row_file_resolver
    from tvbench.videos.clips import BadVideo

    source, split, column = dataset
    value = _table(source, split, column)[row][column]
    try:
        return row_file_resolver(source, feature="Video")(f"row {row}", column, value)
    except CaseError as exc:
        raise BadVideo(Path(f"hf:{source}[{row}]"), str(exc)) from None
