"""Resolve a benchmark spec (``sample``, a folder, ``hf:ID[@split]``) to a validated :class:`Benchmark`."""

from __future__ import annotations

from pathlib import Path

from tvbench.cases.benchmark import Benchmark
from tvbench.cases.folder import is_folder_benchmark, read_folder
from tvbench.cases.hf import is_saved_dataset, read_hf
from tvbench.errors import BenchmarkError

BUNDLED = ("sample",)


def read_benchmark(spec: str) -> Benchmark:
    """Read a benchmark without decoding its images (see :func:`load_benchmark`)."""
    if spec == "sample":
        from tvbench.cases.sample import load_sample

        return load_sample()
    if spec.startswith("hf:"):
        source, _, split = spec[3:].partition("@")
        if not source:
            raise BenchmarkError(f"{spec!r}: give a dataset id or folder after 'hf:'")
        return read_hf(source, split or None, spec=spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise BenchmarkError(f"no benchmark at {spec!r}: expected one of {', '.join(BUNDLED)}, "
                             "a folder with cases.jsonl, or hf:ID")
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
