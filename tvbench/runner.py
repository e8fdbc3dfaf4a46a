"""Run a method over a benchmark: one image per case, resumable, shardable, crash-safe.

Layout of a run folder (``<out>/<run name>/``)::

    manifest.json   what made these images (method config + hash, seed, benchmark hash, versions, commit)
                    and the status and seconds of every case
    status.jsonl    append-only log, one line per finished or failed case (the manifest is rebuilt from it)
    <case_id>.png   the edits

A case is done exactly when its image exists: images are written atomically, so a killed run never
leaves a truncated image behind, and a rerun skips done cases and retries failed ones. Shards pick cases
by a hash of the case id, so any number of shard processes can fill the same folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image
from rich.markup import escape

from tvbench.cases import Benchmark, Case
from tvbench.cases.case import check_case_id
from tvbench.errors import CaseError, ConfigError, ResultsError, one_line
from tvbench.io import (PARTIAL_PREFIX, append_jsonl, atomic_save_png, atomic_write_json, config_hash,
                        read_json_object, read_jsonl, remove_stale_partials, sha256_hex)
from tvbench.methods import Method, input_letters, restrict_case
from tvbench.progress import stderr, track
from tvbench.provenance import environment, now

MANIFEST = "manifest.json"
STATUS_LOG = "status.jsonl"
RUN_SCHEMA_VERSION = 1
_IDENTITY_FIELDS = ("method", "config_hash", "seed", "benchmark_hash")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``K/N`` with ``1 <= K <= N``."""
        try:
            k, n = (int(part) for part in text.split("/"))
        except ValueError:
            raise ConfigError(f"--shard {text!r}: expected K/N, e.g. 1/4") from None
        if not 1 <= k <= n:
            raise ConfigError(f"--shard {text!r}: need 1 <= K <= N (shards are numbered from 1)")
        return cls(k, n)

    def owns(self, case_id: str) -> bool:
        return int(sha256_hex(case_id)[:12], 16) % self.count == self.index - 1


def select_cases(bench: Benchmark, ids: Sequence[str] | None = None, limit: int | None = None,
                 shard: Shard | None = None) -> list[Case]:
    """The cases to run, in benchmark order: an id list, then the shard, then the first ``limit``."""
    cases = list(bench.cases)
    if ids:
        wanted = set(ids)
        for case_id in ids:
            bench[case_id]  # raises with a did-you-mean for an unknown id
        cases = [case for case in cases if case.id in wanted]
    if shard is not None:
        cases = [case for case in cases if shard.owns(case.id)]
    if limit is not None:
        if limit < 0:
            raise ConfigError("--limit must be >= 0")
        cases = cases[:limit]
    return cases


@dataclass
class RunReport:
    run_dir: Path
    selected: int = 0
    skipped: int = 0
    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def run_identity(method: Method, bench: Benchmark, seed: int) -> dict:
    config = method.config()
    return {"method": method.name, "config": config, "config_hash": config_hash(config), "seed": seed,
            "benchmark_hash": bench.hash}


def _difference(manifest: dict, identity: dict, key: str) -> str:
    if key == "config_hash":
        before = manifest.get("config", {}).get("options", {})
        after = identity["config"]["options"]
        changed = [f"{name} {before.get(name)!r} -> {after.get(name)!r}" for name in sorted(set(before) | set(after))
                   if before.get(name) != after.get(name)]
        if changed:
            return "options differ: " + ", ".join(changed)
    return f"{key}: {manifest.get(key)!r}, this run: {identity[key]!r}"


def _check_compatible(run_dir: Path, manifest: dict, identity: dict) -> None:
    for key in _IDENTITY_FIELDS:
        if manifest.get(key) != identity[key]:
            raise ResultsError(f"{run_dir} holds a different run ({_difference(manifest, identity, key)}); "
                               "choose another --run-name or --out, or pass --overwrite to replace it")


def read_manifest(run_dir: Path) -> dict | None:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return None
    return read_json_object(path, ResultsError, "; delete it to rebuild the run from its images")


def _clear_run(run_dir: Path) -> None:
    for path in run_dir.iterdir():
        if path.is_file() and (path.suffix == ".png" or path.name in (MANIFEST, STATUS_LOG)
                               or path.name.startswith(PARTIAL_PREFIX)):
            path.unlink()


def case_statuses(run_dir: Path, bench: Benchmark) -> dict[str, dict]:
    """Per-case status from the images on disk and the log: done / failed / pending."""
    last: dict[str, dict] = {}
    for record in read_jsonl(run_dir / STATUS_LOG):
        if isinstance(record.get("case"), str):
            last[record["case"]] = record
    statuses = {}
    for case in bench.cases:
        record = last.get(case.id, {})
        if (run_dir / f"{case.id}.png").is_file():
            statuses[case.id] = {"status": "done", "seconds": record.get("seconds") if record.get("status") == "done"
                                 else None}
        elif record.get("status") == "failed":
            statuses[case.id] = {"status": "failed", "error": record.get("error")}
        else:
            statuses[case.id] = {"status": "pending"}
    return statuses


def write_manifest(run_dir: Path, identity: dict, method: Method, bench: Benchmark, run_name: str,
                   created: str | None = None) -> dict:
    statuses = case_statuses(run_dir, bench)
    counts = {key: sum(1 for s in statuses.values() if s["status"] == key) for key in ("done", "failed", "pending")}
    manifest = {
        "schema_version": RUN_SCHEMA_VERSION,
        "kind": "tvbench.run",
        "run_name": run_name,
        **identity,
        "inputs": input_letters(method.inputs),
        "benchmark": bench.describe(),
        "environment": environment(),
        "created": created or now(),
        "updated": now(),
        "counts": counts,
        "cases": statuses,
    }
    atomic_write_json(run_dir / MANIFEST, manifest)
    return manifest


def run_method(method: Method, bench: Benchmark, out: Path, *, run_name: str | None = None, seed: int = 0,
               case_ids: Sequence[str] | None = None, limit: int | None = None, shard: Shard | None = None,
               overwrite: bool = False, progress: bool = True) -> RunReport:
    """Edit every selected case that has no image yet; record each failure and keep going."""
    if bench.hash is None:
        raise ConfigError("validate the benchmark before running (load_benchmark(..., validate=True))")
    run_name = run_name or method.name
    try:
        check_case_id(run_name)
    except CaseError:
        raise ConfigError(f"run name {run_name!r} is unsafe as a folder name; use letters, digits, '-', '_', '.'") \
            from None
    run_dir = Path(out) / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    identity = run_identity(method, bench, seed)
    existing = read_manifest(run_dir)
    if existing is not None and overwrite:
        _clear_run(run_dir)
        existing = None
    if existing is not None:
        _check_compatible(run_dir, existing, identity)
    elif any(run_dir.glob("*.png")) and not overwrite:
        raise ResultsError(f"{run_dir} holds images but no {MANIFEST}; pass --overwrite or choose another --out")
    created = existing.get("created") if existing else None
    remove_stale_partials(run_dir)
    manifest = write_manifest(run_dir, identity, method, bench, run_name, created)
    created = manifest["created"]

    selected = select_cases(bench, case_ids, limit, shard)
    todo = [case for case in selected if not (run_dir / f"{case.id}.png").is_file()]
    report = RunReport(run_dir, selected=len(selected), skipped=len(selected) - len(todo))
    try:
        if todo:
            method.setup()
        for case in track(todo, f"{run_name}", enabled=progress):
            started = time.perf_counter()
            try:
                edited = method.edit(restrict_case(case, method.inputs), seed=seed)
                if not isinstance(edited, Image.Image):
                    raise TypeError(f"edit() returned {type(edited).__name__}, not a PIL image")
                atomic_save_png(run_dir / f"{case.id}.png", edited.convert("RGB"))
            except Exception as exc:  # one bad case must not stop the run
                message = one_line(exc)
                if not message.startswith(f"case {case.id!r}"):
                    message = f"case {case.id!r}: {message}"
                append_jsonl(run_dir / STATUS_LOG, {"case": case.id, "status": "failed", "error": message,
                                                    "at": now()})
                stderr.print(f"[red]failed[/red] {escape(message)}", highlight=False)
                report.failed.append((case.id, message))
                continue
            seconds = round(time.perf_counter() - started, 4)
            append_jsonl(run_dir / STATUS_LOG, {"case": case.id, "status": "done", "seconds": seconds, "at": now()})
            report.done += 1
    finally:
        write_manifest(run_dir, identity, method, bench, run_name, created)
    return report
