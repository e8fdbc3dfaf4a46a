"""Run discovery: the method folders under a results folder, and the benchmark their edits answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tvbench.cases import Benchmark, load_benchmark
from tvbench.errors import ResultsError
from tvbench.io import iter_files
from tvbench.runner import read_manifest
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


def discover_runs(results: Path) -> list[MethodRun]:
    """Method folders under ``results``: subfolders with a manifest or PNG edits (not the report's ``plots`` and
    ``gallery``), or ``results`` itself."""
    results = Path(results)
    if not results.is_dir():
        raise ResultsError(f"{results}: no such results folder")
    if _has_edits(results):
        return [MethodRun(results.resolve().name, results, read_manifest(results))]
    runs = []
    for folder in sorted(p for p in results.iterdir()
                         if p.is_dir() and not p.name.startswith(".") and p.name not in REPORT_FOLDERS):
        manifest = read_manifest(folder)
        if manifest is not None or _has_edits(folder):
            runs.append(MethodRun(folder.name, folder, manifest))
    if not runs:
        raise ResultsError(f"{results}: no method folders here (folders of <case_id>.png, e.g. from tvbench run)")
    return runs


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
