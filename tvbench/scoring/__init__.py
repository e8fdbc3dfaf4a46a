"""Score folders of edits with the TV-Edit-Bench metrics.

``score_results(results)`` finds every method folder under ``results`` (folders written by ``tvbench run``,
or any folder of ``<case_id>.png`` made elsewhere), scores each edit against its case, and writes

    scores.jsonl        one row per (case, method, metric): value and status
    summary.json        per method and metric: mean, coverage, status counts; plus what scored it
    scores.cache.jsonl  append-only memo of computed rows; a rerun recomputes only rows whose edit or
                        metric configuration changed (or that failed), and a killed run loses nothing

The loop runs case by case: the case's source and target are decoded once, every method's edit of that
case is scored next to them, and each distinct image goes through each network once (a bounded store of
recent features also catches images shared across cases, such as a magnitude group's common source).

One concern per module, in layers (tests/test_scoring_structure.py checks that no import goes upwards):

    files         the names of the files scoring writes (what readers of a results folder import)
    config        ScoringConfig and its defaults
    rows          statuses, MetricResult, make_row, ScoreMemo (the row memo)
    edits         file_sha, open_edit, fit_edit (reading an edit file)
    runs          MethodRun, discover_runs, runs_without_edits, resolve_benchmark (run discovery)
    context       EditContext, CaseImages, in_memory_case (what a metric sees)
    ---- tvbench.metrics and tvbench.judge import only the modules above ----
    scorer        Scorer, score_images (loads the networks; scores one edit)
    aggregation   aggregate (the summary's statistics)
    orchestrator  score_case, score_results (the loop, the judge phase, the files)

This package's own names are resolved on first use, so importing one part (as the judge does) does not import
the orchestrator.
"""

from __future__ import annotations

from tvbench.lazy import lazy_exports

_EXPORTS = {
    "CACHE_FILE": "files", "SCORES_FILE": "files", "SCORES_SCHEMA_VERSION": "files", "SUMMARY_FILE": "files",
    "ScoringConfig": "config",
    "MetricResult": "rows", "ScoreMemo": "rows", "make_row": "rows",
    "file_sha": "edits", "fit_edit": "edits", "open_edit": "edits",
    "MethodRun": "runs", "discover_runs": "runs", "resolve_benchmark": "runs", "runs_without_edits": "runs",
    "CaseImages": "context", "EditContext": "context", "in_memory_case": "context",
    "Scorer": "scorer", "score_images": "scorer",
    "aggregate": "aggregation",
    "score_case": "orchestrator", "score_results": "orchestrator",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
