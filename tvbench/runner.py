"""Run a method over a benchmark: one image per case, resumable, shardable, crash-safe.

Layout of a run folder (``<out>/<run name>/``)::

    manifest.json   what made these images (method config + hash, seed, benchmark hash, versions, commit),
                    the runtime (device, dtype, batch size), and every case's status, seconds and facts
    status.jsonl    append-only log, one line per finished, refused or failed case (the manifest is rebuilt
                    from it)
    <case_id>.png   the edits

The folder is made once the method has set up, so a method that cannot start leaves nothing behind; a folder
whose run made no edit at all (every case failed) is replaced by the next run, whatever its options, without
``--overwrite``: there is nothing to lose. Scoring leaves such a folder out (``tvbench.scoring.runs``).

A case is done exactly when its image exists: images are written atomically, so a killed run never
leaves a truncated image behind, and a rerun skips done cases and retries failed ones (refused ones only
with ``retry=("failed", "refused")``). Shards pick cases by a hash of the case id, so any number of shard
processes can fill the same folder. Each case gets its own seed (:func:`~tvbench.methods.case_seed`), so
batching, sharding and resuming never change an image.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Iterable, Iterator, Sequence

from PIL import Image
from rich.markup import escape

from tvbench.cases import Benchmark, Case
from tvbench.cases.case import check_case_id
from tvbench.errors import CaseError, ConfigError, ResultsError, one_line
from tvbench.io import (PARTIAL_PREFIX, append_jsonl, atomic_save_png, atomic_write_json, config_hash, file_lock,
                        read_json_object, read_jsonl, remove_stale_partials, sha256_hex)
from tvbench.device import release_memory
from tvbench.methods import (EditResult, Method, Outcome, Runtime, case_seed, check_method, input_letters,
                             restrict_case, setup_method)
from tvbench.threads import set_torch_threads
from tvbench.progress import progress_bar, stderr
from tvbench.provenance import environment, now

MANIFEST = "manifest.json"
MANIFEST_LOCK = ".manifest.lock"
STATUS_LOG = "status.jsonl"
RUN_SCHEMA_VERSION = 1
CASE_STATUSES = ("done", "refused", "failed", "pending")
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
                 shard: Shard | None = None, process: Shard | None = None) -> list[Case]:
    """The cases to run, in benchmark order: an id list, then the shard, then the first ``limit``, then this
    process's share when a launcher started several (``process``: rank + 1 of the world size), so the
    processes of one launch split exactly the cases a single process would run."""
    cases = list(bench.cases)
    if ids:
        wanted = set(ids)
        for case_id in ids:
            bench[case_id]  # raises with a did-you-mean for an unknown id
        cases = [case for case in cases if case.id in wanted]
    if shard is not None:
        cases = [case for case in cases if shard.owns(case.id)]
    if limit is not None:
        check_limit(limit)
        cases = cases[:limit]
    if process is not None:
        cases = [case for case in cases if process.owns(case.id)]
    return cases


def check_limit(limit: int | None) -> None:
    """``--limit N`` edits the first N cases; 0 or less would edit nothing and look like success."""
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit}: must be at least 1 (leave it out to run every case)")


def check_retry(retry: Iterable[str]) -> set[str]:
    """The statuses a rerun edits again: failed always, refused when asked."""
    statuses = set(retry) | {"failed"}
    unknown = statuses - {"failed", "refused"}
    if unknown:
        raise ConfigError(f"--retry {','.join(sorted(unknown))}: choose failed or refused")
    return statuses


@dataclass
class RunReport:
    run_dir: Path
    selected: int = 0
    skipped: int = 0  # already done, or refused earlier and not retried
    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    refused_before: int = 0  # of the skipped: refused in an earlier run (``--retry refused`` asks again)

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


def _compatible(manifest: dict, identity: dict) -> bool:
    return all(manifest.get(key) == identity[key] for key in _IDENTITY_FIELDS)


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


def _last_records(run_dir: Path) -> dict[str, dict]:
    last: dict[str, dict] = {}
    for record in read_jsonl(run_dir / STATUS_LOG):
        if isinstance(record.get("case"), str):
            last[record["case"]] = record
    return last


def case_statuses(run_dir: Path, bench: Benchmark) -> dict[str, dict]:
    """Per-case status from the images on disk and the log: done / refused / failed / pending.

    A case is done exactly when its image exists; ``facts`` (what the method reported) come from the log.
    """
    last = _last_records(run_dir)
    statuses = {}
    for case in bench.cases:
        record = last.get(case.id, {})
        status = record.get("status")
        if (run_dir / f"{case.id}.png").is_file():
            entry: dict = {"status": "done", "seconds": record.get("seconds") if status == "done" else None}
            if status == "done" and record.get("facts"):
                entry["facts"] = record["facts"]
        elif status == "failed":
            entry = {"status": "failed", "error": record.get("error")}
        elif status == "refused":
            entry = {"status": "refused", "reason": record.get("reason")}
            if record.get("facts"):
                entry["facts"] = record["facts"]
        else:
            entry = {"status": "pending"}
        statuses[case.id] = entry
    return statuses


def write_manifest(run_dir: Path, identity: dict, method: Method, bench: Benchmark, run_name: str,
                   created: str | None = None) -> dict:
    """Rebuild the manifest from the images and the log on disk.

    Processes filling one folder (shards, ranks of a launcher) each rewrite it; the lock orders their
    read-then-write, so the last process to finish writes a manifest that has every case.
    """
    with file_lock(run_dir / MANIFEST_LOCK):
        if created is None:
            try:
                created = (read_manifest(run_dir) or {}).get("created")
            except ResultsError:
                created = None
        statuses = case_statuses(run_dir, bench)
        counts = {key: sum(1 for s in statuses.values() if s["status"] == key) for key in CASE_STATUSES}
        manifest = {
            "schema_version": RUN_SCHEMA_VERSION,
            "kind": "tvbench.run",
            "run_name": run_name,
            **identity,
            "inputs": input_letters(method.inputs),
            "runtime": method.runtime.describe(),
            "runtime_options": method.runtime_options(),
            "benchmark": bench.describe(),
            "environment": environment(),
            "created": created or now(),
            "updated": now(),
            "counts": counts,
            "cases": statuses,
        }
        atomic_write_json(run_dir / MANIFEST, manifest)
    return manifest


def batches(method: Method, cases: Sequence[Case], size: int) -> Iterator[list[Case]]:
    """Cases grouped by :meth:`Method.batch_key` into batches of at most ``size``, first come first served."""
    if size <= 1:
        yield from ([case] for case in cases)
        return
    open_batches: dict[Hashable, list[Case]] = {}
    for case in cases:
        group = open_batches.setdefault(method.batch_key(case), [])
        group.append(case)
        if len(group) == size:
            yield open_batches.pop(method.batch_key(case))
    yield from open_batches.values()


def _as_result(case: Case, outcome: Outcome) -> EditResult:
    """Normalise what ``edit`` returned, and check it, so a wrong return type fails that case alone."""
    result = outcome if isinstance(outcome, EditResult) else EditResult(image=outcome)  # type: ignore[arg-type]
    if result.refused is None and not isinstance(result.image, Image.Image):
        raise TypeError(f"edit() returned {type(result.image).__name__}, not a PIL image")
    if not isinstance(result.facts, dict):
        raise TypeError(f"edit() returned facts of type {type(result.facts).__name__}, not a dict")
    try:
        json.dumps(result.facts, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"edit() returned facts that are not JSON: {exc}") from None
    return result


def _edit_batch(method: Method, batch: list[Case], seed: int) -> list[EditResult | Exception]:
    """Each case's result or exception. A batch that raises is redone one case at a time, so the bad case
    names itself and the good ones are kept."""
    seen = [restrict_case(case, method.inputs) for case in batch]
    seeds = [case_seed(seed, case.id) for case in batch]
    if len(batch) > 1:
        try:
            outcomes = method.edit_batch(seen, seeds)
            if len(outcomes) != len(batch):
                raise TypeError(f"edit_batch() returned {len(outcomes)} results for {len(batch)} cases")
            return [_checked(case, outcome) for case, outcome in zip(batch, outcomes)]
        except Exception:  # noqa: BLE001 - fall back to single edits, which report per case
            pass
    results: list[EditResult | Exception] = []
    for case, view, case_seed_ in zip(batch, seen, seeds):
        try:
            results.append(_as_result(case, method.edit(view, seed=case_seed_)))
        except Exception as exc:  # one bad case must not stop the run
            results.append(exc)
    return results


def _checked(case: Case, outcome: Outcome | Exception) -> EditResult | Exception:
    if isinstance(outcome, Exception):  # edit_batch may report one case's failure without failing the batch
        return outcome
    try:
        return _as_result(case, outcome)
    except Exception as exc:
        return exc


def run_method(method: Method, bench: Benchmark, out: Path, *, run_name: str | None = None, seed: int = 0,
               case_ids: Sequence[str] | None = None, limit: int | None = None, shard: Shard | None = None,
               overwrite: bool = False, progress: bool = True, runtime: Runtime | None = None,
               retry: Iterable[str] = ("failed",), process: Shard | None = None) -> RunReport:
    """Edit every selected case that has no image yet; record each failure and refusal and keep going.

    ``retry`` names the statuses that a rerun edits again: failed cases always are; refused ones only
    when asked (``retry=("failed", "refused")``), since a refusal is usually the method's final word.
    ``runtime`` (device, dtype, batch size) defaults to the CPU, one case at a time. The method is set up
    before the first edit and torn down at the end, whatever happens. ``process`` is this process's share
    under a multi-process launcher (:func:`tvbench.launch.launcher_process`); ``overwrite`` is refused then,
    since each process would delete the others' images.
    """
    if bench.hash is None:
        raise ConfigError("validate the benchmark before running (load_benchmark(..., validate=True))")
    if process is not None and process.count > 1 and overwrite:
        raise ConfigError("--overwrite under a multi-process launcher would let each process delete the others' "
                          "images; delete the run folder first, or run once without the launcher")
    retry = check_retry(retry)
    run_name = run_name or method.default_run_name()
    try:
        check_case_id(run_name)
    except CaseError:
        raise ConfigError(f"run name {run_name!r} is unsafe as a folder name; use letters, digits, '-', '_', '.'") \
            from None
    check_method(method)  # files and options the method names, before any folder is made or model loaded
    method.runtime = method.resolve_runtime(runtime or Runtime())
    if method.runtime.threads is not None:
        set_torch_threads(method.runtime.threads)
    selected = select_cases(bench, case_ids, limit, shard, process)
    run_dir = Path(out) / run_name
    identity = run_identity(method, bench, seed)
    existing = _existing_run(run_dir, identity, overwrite)
    created = existing.get("created") if existing else None
    last = _last_records(run_dir)
    todo = [case for case in selected if not (run_dir / f"{case.id}.png").is_file()
            and (last.get(case.id, {}).get("status") != "refused" or "refused" in retry)]
    report = RunReport(run_dir, selected=len(selected), skipped=len(selected) - len(todo))
    todo_ids = {case.id for case in todo}
    report.refused_before = sum(1 for case in selected if case.id not in todo_ids
                                and not (run_dir / f"{case.id}.png").is_file())
    if not todo and not run_dir.is_dir():
        return report  # nothing to edit here (another shard's or process's cases): no folder of no edits
    size = max(1, min(method.runtime.batch_size, method.max_batch_size))
    try:
        if todo:
            setup_method(method)  # before the folder exists: a method that cannot start leaves nothing behind
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(run_dir)
        created = write_manifest(run_dir, identity, method, bench, run_name, created)["created"]
        with progress_bar(run_name, len(todo), enabled=progress) as bar:
            for batch in batches(method, todo, size):
                started = time.perf_counter()
                results = _edit_batch(method, batch, seed)
                seconds = round((time.perf_counter() - started) / len(batch), 4)
                for case, result in zip(batch, results):
                    _record(run_dir, case, result, seconds, method.runtime, report)
                bar.advance(len(batch))
    finally:
        try:
            method.teardown()
        finally:
            release_memory()
            if (run_dir / MANIFEST).is_file():
                write_manifest(run_dir, identity, method, bench, run_name, created)
            else:
                _remove_if_empty(run_dir)
    return report


def _existing_run(run_dir: Path, identity: dict, overwrite: bool) -> dict | None:
    """The manifest of the run already in ``run_dir`` that this run continues, or None for a fresh start.

    Another run's folder is cleared with ``overwrite``, and without asking when it holds no edit (its method
    failed to start or failed every case: there is nothing to lose); one with edits is refused.
    """
    existing = read_manifest(run_dir)
    if existing is not None and (overwrite or (not _has_images(run_dir) and not _compatible(existing, identity))):
        _clear_run(run_dir)
        return None
    if existing is not None:
        _check_compatible(run_dir, existing, identity)
    elif _has_images(run_dir) and not overwrite:
        raise ResultsError(f"{run_dir} holds images but no {MANIFEST}; pass --overwrite or choose another --out")
    return existing


def _remove_if_empty(run_dir: Path) -> None:
    """Remove a run folder a failed start left empty (a cleared run of no edits), lock file aside."""
    try:
        if {path.name for path in run_dir.iterdir()} <= {MANIFEST_LOCK}:
            (run_dir / MANIFEST_LOCK).unlink(missing_ok=True)
            run_dir.rmdir()
    except OSError:  # absent, or another process's files appeared meanwhile: leave it
        pass


def _has_images(run_dir: Path) -> bool:
    return run_dir.is_dir() and any(run_dir.glob("*.png"))


def _record(run_dir: Path, case: Case, result: EditResult | Exception, seconds: float, runtime: Runtime,
            report: RunReport) -> None:
    """Write one case's image and its line in the status log."""
    if isinstance(result, EditResult) and result.refused is None:
        try:
            atomic_save_png(run_dir / f"{case.id}.png", result.image.convert("RGB"))
        except Exception as exc:  # a full disk fails this case, not the run
            result = exc
    if isinstance(result, Exception):
        message = one_line(result)
        if not message.startswith(f"case {case.id!r}"):
            message = f"case {case.id!r}: {message}"
        append_jsonl(run_dir / STATUS_LOG, {"case": case.id, "status": "failed", "error": message, "at": now()})
        stderr.print(f"[red]failed[/red] {escape(message)}", highlight=False)
        report.failed.append((case.id, message))
        return
    record = {"case": case.id, "status": "done" if result.refused is None else "refused", "seconds": seconds,
              "device": runtime.device, "at": now()}
    if result.facts:
        record["facts"] = result.facts
    if result.refused is not None:
        record["reason"] = result.refused
        stderr.print(f"[yellow]refused[/yellow] case {escape(repr(case.id))}: {escape(result.refused)}",
                     highlight=False)
        report.refused.append((case.id, result.refused))
    else:
        report.done += 1
    append_jsonl(run_dir / STATUS_LOG, record)
