"""Resolve a benchmark spec (``sample``, a folder, ``hf:ID[@split]``) to a validated :class:`Benchmark`."""

from __future__ import annotations

from pathlib import Path

from tvbench.cases.benchmark import Benchmark
from tvbench.cases.folder import is_folder_benchmark, read_folder
from tvbench.cases.hf import is_saved_dataset, read_hf
from tvbench.errors import BenchmarkError
from tvbench.registry import suggest

BUNDLED = ("sample",)


def check_benchmark_spec(spec: str) -> None:
    """Refuse a spec that names nothing (with a did-you-mean), cheaply: commands call it before any heavy import."""
    if spec in BUNDLED:
        return
    if spec.startswith("hf:"):
        if not spec[3:].partition("@")[0]:
            raise BenchmarkError(f"{spec!r}: give a dataset id or folder after 'hf:'")
        return
    path = Path(spec).expanduser()
    if not path.exists():
        folders = [child.name for child in path.parent.iterdir() if child.is_dir()] if path.parent.is_dir() else []
        choices = [*BUNDLED, *folders] if path.parent == Path(".") else folders
        raise BenchmarkError(f"no benchmark at {spec!r}{suggest(path.name, choices, abbreviations=False)} "
                             f"(expected one of {', '.join(BUNDLED)}, a folder with cases.jsonl, or hf:ID)")


def read_benchmark(spec: str) -> Benchmark:
    """Read a benchmark without decoding its images (see :func:`load_benchmark`)."""
    check_benchmark_spec(spec)
    if spec == "sample":
        from tvbench.cases.sample import load_sample

        return load_sample()
    if spec.startswith("hf:"):
        source, _, split = spec[3:].partition("@")
        return read_hf(source, split or None, spec=spec)
    path = Path(spec).expanduser()
    absolute = str(path.resolve())
    if is_folder_benchmark(path):
        return read_folder(path, spec=absolute)
    if is_saved_dataset(path):
        return read_hf(str(path), spec=absolute)
    raise BenchmarkError(f"{spec}: not a benchmark (no cases.jsonl, and not a datasets save_to_disk folder)")


def load_benchmark(spec: str | Path, *, validate: bool = True, progress: bool = False) -> Benchmark:
    """Read a benchmark; with ``validate`` (the default) decode every image and compute its content hash.

    Raises :class:`~tvbench.errors.InvalidBenchmark` listing every bad case, or
    :class:`~tvbench.errors.BenchmarkError` when nothing can be read.
    """
    bench = read_benchmark(str(spec))
    if validate:
        bench.require_valid(progress=progress)
    return bench
