"""Run discovery: the method folders under a results folder, and the benchmark their edits answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tvbench.cases import Benchmark, load_benchmark
from tvbench.errors import ResultsError
from tvbench.io import iter_files
from tvbench.runner import MANIFEST, read_manifest
from tvbench.scoring.edits import IMAGE_SUFFIXES, EditFiles
from tvbench.scoring.files import REPORT_FOLDERS

EDIT_SUFFIXES = IMAGE_SUFFIXES  # any usual image format, matched to cases in tvbench.scoring.edits


@dataclass
class MethodRun:
    """A folder of edits to score, with the manifest ``tvbench run`` wrote (absent for outside edits)."""

    name: str
    folder: Path
    manifest: dict | None = None
    files: EditFiles | None = None  # the folder's images matched to cases (bind_edit_files)

    def edit_path(self, case_id: str) -> Path:
        found = self.files.by_case.get(case_id) if self.files is not None else None
        return found or self.folder / f"{case_id}.png"

    def describe(self) -> dict:
        manifest = self.manifest or {}
        return {"method": manifest.get("method", self.name), "inputs": manifest.get("inputs", "?"),
                "config_hash": manifest.get("config_hash"), "seed": manifest.get("seed"),
                "folder": self.folder.name, "source": "tvbench run" if self.manifest else "external edits",
                **({"unmatched_files": self.files.unmatched} if self.files and self.files.unmatched else {})}


def _has_edits(folder: Path) -> bool:
    return bool(iter_files(folder, EDIT_SUFFIXES))


def _method_folders(results: Path) -> list[Path]:
    """The subfolders that may hold a method's edits (not hidden ones, nor the report's ``plots`` and ``gallery``)."""
    return sorted(p for p in results.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name not in REPORT_FOLDERS)


def discover_runs(results: Path) -> list[MethodRun]:
    """Method folders under ``results``: subfolders holding edits, or ``results`` itself.

    A folder of a ``tvbench run`` that made no edit (its method failed to start or failed every case) is no method
    to rank: it is left out here and named by :func:`runs_without_edits`.
    """
    results = Path(results)
    if not results.is_dir():
        raise ResultsError(f"{results}: no such results folder")
    if _has_edits(results):
        return [MethodRun(results.resolve().name, results, read_manifest(results))]
    runs = [MethodRun(folder.name, folder, read_manifest(folder)) for folder in _method_folders(results)
            if _has_edits(folder)]
    if not runs:
        empty = runs_without_edits(results)
        why = (f"no edit in {', '.join(empty)}: the run failed; its manifest.json says why"
               if empty else "folders of <case_id>.png, e.g. from tvbench run")
        raise ResultsError(f"{results}: no method folders with edits here ({why})")
    return runs


def runs_without_edits(results: Path) -> list[str]:
    """The run folders under ``results`` whose ``tvbench run`` made no edit: not scored, not ranked, but named
    (a leaderboard row of nothing would read as a method that scored nothing)."""
    results = Path(results)
    if not results.is_dir() or _has_edits(results):
        return []
    return [folder.name for folder in _method_folders(results)
            if (folder / MANIFEST).is_file() and not _has_edits(folder)]


def resolve_benchmark(runs: list[MethodRun], bench_spec: str | None, progress: bool = False) -> Benchmark:
    """The benchmark the edits answer: ``--bench`` if given, else the one named by the run manifests."""
    recorded = {run.name: run.manifest.get("benchmark", {}) for run in runs if run.manifest}
    if bench_spec is None:
        if not recorded:
            raise ResultsError("these edits were made outside tvbench (no manifest.json); pass --bench to say "
                               "which benchmark they answer")
        specs = {(info.get("spec"), info.get("hash")) for info in recorded.values()}
        if len(specs) > 1:
            listing = "; ".join(f"{name}: {info.get('name')} {str(info.get('hash'))[7:19]}"
                                for name, info in recorded.items())
            raise ResultsError(f"the method folders answer different benchmarks ({listing}); score them separately")
        bench_spec = next(iter(specs))[0]
    bench = load_benchmark(bench_spec, progress=progress)
    for name, info in recorded.items():
        if info.get("hash") != bench.hash:
            raise ResultsError(f"{name} was run on benchmark {info.get('name')} ({str(info.get('hash'))[7:19]}) but "
                               f"{bench.spec} is now {bench.short_hash}; rerun the method or pass the right --bench")
    return bench
