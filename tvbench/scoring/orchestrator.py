"""The orchestrator: score every method folder of a results folder, case by case, then the judge phase, then
write ``scores.jsonl`` and ``summary.json``.

It depends on scoring's parts, on the metrics and on the judge; none of them depends on it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from PIL import Image, UnidentifiedImageError

from tvbench.analysis.frames import scores_frame
from tvbench.analysis.paired import Settings
from tvbench.analysis.uncertainty import annotate
from tvbench.cases import Benchmark, Case
from tvbench.errors import CaseError, one_line
from tvbench.io import atomic_write_json, atomic_write_text, jsonl_line
from tvbench.locks import folder_lock, refuse_if_busy
from tvbench.metrics import Metric
from tvbench.progress import track
from tvbench.provenance import environment, now
from tvbench.scoring.aggregation import aggregate
from tvbench.scoring.config import ScoringConfig
from tvbench.scoring.context import CaseImages
from tvbench.scoring.edits import bind_edit_files, file_sha, fit_edit, open_edit
from tvbench.scoring.files import CACHE_FILE, SCORES_FILE, SCORES_SCHEMA_VERSION, SUMMARY_FILE
from tvbench.scoring.rows import ERROR, MetricResult, ScoreMemo, make_row
from tvbench.scoring.runs import MethodRun, discover_runs, resolve_benchmark, runs_without_edits
from tvbench.scoring.scorer import Scorer

if TYPE_CHECKING:
    from tvbench.features import FeatureStore


def _prefetch(scorer: Scorer, store: FeatureStore, images: CaseImages,
              pending: list[tuple[MethodRun, str, Image.Image, Image.Image, bool, list[Metric]]]) -> None:
    """Encode what the pending metrics will read, one batch per resolution, before computing them."""
    resolutions = {"global": scorer.config.resolution, "match": scorer.config.match_resolution}
    wanted: dict[int, list[Image.Image]] = {}
    for *_, edit, _original, _resized, todo in pending:
        applicable = [m for m in todo if m.not_applicable_reason(images.case) is None]
        for role, scale in set().union(*(m.features for m in applicable)):
            batch = wanted.setdefault(resolutions[scale], [])
            if role == "edit":
                batch.append(edit)
            elif not any(image is images.get(role) for image in batch):
                batch.insert(0, images.get(role))
    for resolution, batch in wanted.items():
        store.prefetch(batch, resolution)


def score_case(scorer: Scorer, case: Case, runs: list[MethodRun], memo: ScoreMemo,
               store: FeatureStore | None, siblings: Sequence[Case] = ()) -> list[dict]:
    """Every image metric's row for every method's edit of one case (reusing the memo's rows); ``siblings`` are
    the other cases of its group (the sub-task metrics compare with them)."""
    images = CaseImages(case, siblings)
    rows: list[dict] = []
    pending: list[tuple[MethodRun, str, Image.Image, Image.Image, bool, list[Metric]]] = []
    for run in runs:
        path = run.edit_path(case.id)
        if not path.is_file():
            rows += [make_row(run, case, name, scorer.keys[name], result, None, False)
                     for name, result in scorer.without_edit(case).items()]
            continue
        sha = file_sha(path)
        todo = []
        for metric in scorer.image_metrics:
            cached = memo.get(run.name, case.id, metric.name, scorer.keys[metric.name], sha)
            if cached is not None:
                rows.append(cached)
            else:
                todo.append(metric)
        if not todo:
            continue
        try:
            original = open_edit(path)
            edit, resized = fit_edit(original, images.get("source").size)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            error = MetricResult(None, ERROR, f"cannot decode {path.name}: {one_line(exc)}")
            rows += [make_row(run, case, m.name, scorer.keys[m.name], error, sha, False) for m in todo]
            continue
        pending.append((run, sha, edit, original, resized, todo))
    if store is not None:
        try:
            _prefetch(scorer, store, images, pending)
        except CaseError:
            pass  # the case's own image is unreadable: each metric reports it below
    for run, sha, edit, original, resized, todo in pending:
        for name, result in scorer.score(case, edit, images, store, todo, original).items():
            row = make_row(run, case, name, scorer.keys[name], result, sha, resized)
            memo.add(row)
            rows.append(row)
    return rows


def group_members(cases: Sequence[Case]) -> dict[str, list[Case]]:
    """The cases of each group, in benchmark order."""
    groups: dict[str, list[Case]] = {}
    for case in cases:
        if case.group:
            groups.setdefault(case.group, []).append(case)
    return groups


def case_index(cases: Sequence[Case]) -> dict[str, dict]:
    """Per case what analyses group by: subtask, group, category (the summary's ``cases``)."""
    return {case.id: {"subtask": case.subtask, "group": case.group, "category": case.category}
            for case in cases}


def score_results(results: Path, config: ScoringConfig | None = None, bench_spec: str | None = None,
                  progress: bool = True, *, wait: bool = False, on_wait: Callable[[str], None] | None = None) -> dict:
    """Score every method folder under ``results``; write rows and summary there; return the summary.

    One scorer per folder at a time (:func:`~tvbench.locks.folder_lock`): another one fails at once naming the
    holder, or with ``wait`` starts when the holder is done, so no scorer's rows are overwritten unseen.
    """
    # A missing or empty folder, a benchmark or a network that cannot be loaded, and a folder another scorer holds
    # are refused before anything is written (the lock file included): a refused command leaves the file system
    # as it found it.
    bench = resolve_benchmark(discover_runs(results), bench_spec, progress=progress)
    if not wait:
        refuse_if_busy(Path(results), "score")
    scorer = Scorer(config or ScoringConfig())
    with folder_lock(Path(results), "score", wait=wait, on_wait=on_wait):
        return _score_results(Path(results), scorer, bench, progress)


def _score_results(results: Path, scorer: Scorer, bench: Benchmark, progress: bool) -> dict:
    config = scorer.config
    runs = discover_runs(results)  # again under the lock: what a scorer that held it may have changed
    bind_edit_files(runs, [case.id for case in bench.cases], bench.name)
    memo = ScoreMemo(results / CACHE_FILE, enabled=not config.rescore)
    store = scorer.new_store()
    rows: list[dict] = []
    started = time.perf_counter()
    groups = group_members(bench.cases)
    for case in track(bench.cases, "scoring", enabled=progress):
        siblings = [other for other in groups.get(case.group, ()) if other.id != case.id] if case.group else ()
        rows += score_case(scorer, case, runs, memo, store, siblings)
    if scorer.judge is not None:  # the judge phase: every judge row still needed, concurrently (tvbench/judge/)
        rows += scorer.judge.score(bench, runs, memo, scorer.keys, results, progress=progress)
    work = {"seconds": round(time.perf_counter() - started, 3),
            "rows_reused": memo.reused, "rows_computed": len(rows) - memo.reused}
    if store is not None:
        work.update(dino_forwards=store.forwards, feature_cache_hits=store.disk.hits if store.disk else 0,
                    feature_cache=str(store.disk.folder) if store.disk else None)
    declarations = {m.name: m.describe() for m in scorer.metrics}
    cases = case_index(bench.cases)
    summary = {
        "schema_version": SCORES_SCHEMA_VERSION,
        "kind": "tvbench.scores",
        "created": now(),
        "benchmark": bench.describe(),
        "scorer": scorer.describe(),
        "metrics": declarations,
        "edits_resized_to": "source size (bicubic) before scoring, when an edit's size differs",
        "methods": aggregate(rows, runs, declarations, len(bench)),
        "without_edits": runs_without_edits(results),  # run folders that made no edit: not scored, not ranked
        "work": work,  # what this run computed (reused rows and cached features cost nothing)
        "environment": environment(),
    }
    if scorer.judge is not None:
        scorer.judge.annotate(summary, rows)
    settings = Settings(config.ci_level, config.bootstrap, config.ci_method, config.ci_seed)
    annotate(summary, scores_frame(rows, cases), settings)
    summary["cases"] = cases
    atomic_write_text(results / SCORES_FILE, "".join(jsonl_line(r) for r in rows))
    atomic_write_json(results / SUMMARY_FILE, summary)
    return summary
