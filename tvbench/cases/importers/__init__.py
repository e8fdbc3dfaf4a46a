"""Importers: other benchmarks' layouts read as tvbench cases and written as folder benchmarks.

Each format is a reader ``(src, *, progress) -> Benchmark`` registered by name; :func:`import_benchmark` reads,
validates every case (all problems reported, one line each) and only then writes the folder with
:func:`~tvbench.cases.folder.write_folder`, whose ``cases.jsonl`` is written last and atomically, so a crash
never leaves a folder that looks complete and rerunning with ``--overwrite`` gives the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tvbench.cases.benchmark import Benchmark
from tvbench.cases.folder import write_folder
from tvbench.cases.loaders import load_benchmark
from tvbench.errors import CaseError, TvbenchError
from tvbench.registry import Registry

Reader = Callable[..., Benchmark]

IMPORTERS: Registry[Reader] = Registry("import format")
IMPORTERS.register("dragbench", "tvbench.cases.importers.dragbench:read_dragbench")
IMPORTERS.register("drag100", "tvbench.cases.importers.drag100:read_drag100")
IMPORTERS.register("hf", "tvbench.cases.importers:read_hf_source")

DESCRIPTIONS = {
    "dragbench": "DragBench (DragDiffusion): <category>/<case>/{original_image.png, meta_data.pkl}",
    "drag100": "Drag100 (GoodDrag): <case>/{original.jpg, mask.png, points.json}",
    "hf": "a Hugging Face datasets benchmark: a save_to_disk folder, or hf:ID[@split]",
}


class ImportFailed(TvbenchError):
    """Some cases of the source could not be imported; carries every problem, one line each. Nothing was written."""

    def __init__(self, src: str, errors: list[CaseError]):
        self.src = src
        self.errors = errors
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        super().__init__(f"{src}: {errors[0]}{more}; nothing was written")


def read_hf_source(src: str | Path, *, progress: bool = False) -> Benchmark:
    """A benchmark stored as a ``datasets`` dataset (what ``tvbench data export --format hf`` writes)."""
    from tvbench.cases.loaders import read_benchmark

    spec = str(src)
    return read_benchmark(spec if spec.startswith("hf:") else f"hf:{spec}")


def read_source(fmt: str, src: str | Path, *, progress: bool = False) -> Benchmark:
    """Read ``src`` with the importer registered as ``fmt`` (unknown names get a did-you-mean)."""
    return IMPORTERS.load(fmt)(src, progress=progress)


def import_benchmark(fmt: str, src: str | Path, out: str | Path, *, overwrite: bool = False,
                     progress: bool = False) -> Benchmark:
    """Read ``src`` as ``fmt``, validate every case, then write a folder benchmark at ``out`` and return it.

    Raises :class:`ImportFailed` (every bad case, one line each) before writing anything.
    """
    reader = IMPORTERS.load(fmt)
    out = Path(out)
    if (out / "cases.jsonl").exists() and not overwrite:  # fail before the slow part, as write_folder would after
        raise TvbenchError(f"{out}: already holds a benchmark; pass --overwrite to replace it")
    bench = reader(src, progress=progress)
    errors = bench.validate(progress=progress)
    if errors:
        raise ImportFailed(str(src), errors)
    write_folder(bench, out, overwrite=overwrite, progress=progress)
    return load_benchmark(out)  # the written copy: runs and scores then refer to it, not to the raw source


__all__ = ["DESCRIPTIONS", "IMPORTERS", "ImportFailed", "import_benchmark", "read_hf_source", "read_source"]
