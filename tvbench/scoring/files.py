"""The files scoring writes into a results folder, and how readers (reports, loaders, the gate) open them.

Only light imports here: reading a summary must not load any network.
"""

from __future__ import annotations

from pathlib import Path

from tvbench.errors import ResultsError
from tvbench.io import read_json_object

SCORES_FILE = "scores.jsonl"  # one row per (case, method, metric)
SUMMARY_FILE = "summary.json"  # per method and metric statistics, and what scored them
CACHE_FILE = "scores.cache.jsonl"  # append-only memo of computed rows
SCORES_SCHEMA_VERSION = 2
# 2: confidence intervals ("ci" per method and metric, "uncertainty", "significance"), sub-task metrics' group
#    statistics ("group_mean", "groups"), and the case index ("cases": subtask, group, category). Version 1
#    summaries have none of these and stay readable by report, gate, compare and the loaders.
SUMMARY_KIND = "tvbench.scores"
# Folders `tvbench report` writes into a results folder (plots, the HTML gallery): never taken for method folders.
REPORT_FOLDERS = ("plots", "gallery")


def read_summary(path: Path | str) -> dict:
    """A scoring summary from its file, or from the results folder that holds it."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    if not path.is_file():
        raise ResultsError(f"{path}: no scoring summary; run `tvbench score` first")
    summary = read_json_object(path, ResultsError)
    if summary.get("kind") != SUMMARY_KIND:
        raise ResultsError(f"{path}: not a tvbench scoring summary (kind {summary.get('kind')!r})")
    return summary
