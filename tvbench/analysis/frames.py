"""Results as pandas DataFrames: per-case rows (``load_scores``) and per method-and-metric statistics
(``load_summary``). Reports, ``tvbench compare`` and the plots are built from these frames.

    import tvbench
    scores = tvbench.load_scores("results")      # case, method, metric, value, status, subtask, group, category, ...
    scores.pivot_table(index="case", columns="method", values="value").query(...)
    summary = tvbench.load_summary("results")    # method, metric, headline, value, ci_low, ci_high, n, coverage, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from tvbench.errors import ResultsError
from tvbench.io import read_jsonl
from tvbench.scoring.files import SCORES_FILE, SUMMARY_FILE, read_summary

SCORE_COLUMNS = ["case", "method", "metric", "value", "status", "detail", "subtask", "group", "category", "points",
                 "requested", "judge_scores", "edit_sha", "resized"]
SUMMARY_COLUMNS = ["method", "inputs", "metric", "label", "higher_is_better", "headline", "value", "ci_low",
                   "ci_high", "ci_level", "mean", "n", "applicable", "coverage", "status", "complete"]
def results_folder(path: Path | str) -> Path:
    """The results folder of a path that names it, its summary.json or its scores.jsonl."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def scores_frame(rows: Iterable[dict], cases: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per (case, method, metric) from ``scores.jsonl`` rows; ``cases`` (the summary's case index) adds
    subtask, group and category. A judge row's per-repeat grades become ``judge_scores``."""
    cases = cases or {}
    records = []
    for row in rows:
        info = cases.get(row.get("case"), {})
        judge = row.get("judge") or {}
        records.append({
            "case": row.get("case"), "method": row.get("method"), "metric": row.get("metric"),
            "value": row.get("value"), "status": row.get("status"), "detail": row.get("detail"),
            "subtask": info.get("subtask"), "group": row.get("group", info.get("group")),
            "category": info.get("category"), "points": row.get("points"), "requested": row.get("requested"),
            "judge_scores": judge.get("scores"), "edit_sha": row.get("edit_sha"), "resized": row.get("resized"),
        })
    frame = pd.DataFrame.from_records(records, columns=SCORE_COLUMNS)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    return frame


def load_scores(results: Path | str) -> pd.DataFrame:
    """Every score row of a results folder (``scores.jsonl``) as a DataFrame: one row per case, method and metric
    with its ``value`` (NaN unless ``status`` is ``ok``), ``status`` and ``detail``, the case's ``subtask``,
    ``group`` and ``category`` (from ``summary.json``, when it records them), and per-row facts (``points`` of
    point metrics, ``requested`` drag length of magnitude rows, ``judge_scores`` per repeat)."""
    folder = results_folder(results)
    path = folder / SCORES_FILE
    if not path.is_file():
        raise ResultsError(f"{path}: no score rows; run `tvbench score {folder}` first")
    summary_path = folder / SUMMARY_FILE
    cases = read_summary(summary_path).get("cases", {}) if summary_path.is_file() else {}
    return scores_frame(read_jsonl(path), cases)


def summary_frame(summary: dict) -> pd.DataFrame:
    """One row per (method, metric) of a summary: the headline statistic (``value``) and its confidence interval,
    the per-case ``mean``, counts and coverage, ``status`` (``ok``, ``undefined`` or ``none``) and ``complete``
    (scored on every applicable case and, for a sub-task metric, defined in every group: only these are ranked)."""
    from tvbench.analysis.uncertainty import complete

    metrics = summary.get("metrics", {})
    records = []
    for method, info in summary.get("methods", {}).items():
        for metric, stats in info.get("metrics", {}).items():
            declared = metrics.get(metric, {})
            headline = declared.get("headline", "mean")
            ci = stats.get("ci") or {}
            value = stats.get(headline)
            records.append({
                "method": method, "inputs": info.get("inputs"), "metric": metric,
                "label": declared.get("label", metric), "higher_is_better": declared.get("higher_is_better"),
                "headline": headline, "value": value, "ci_low": ci.get("low"), "ci_high": ci.get("high"),
                "ci_level": ci.get("level"), "mean": stats.get("mean"), "n": stats.get("n"),
                "applicable": stats.get("applicable"), "coverage": stats.get("coverage"),
                "status": stats.get("headline_status") or ("ok" if value is not None else "none"),
                "complete": complete(stats, declared),
            })
    frame = pd.DataFrame.from_records(records, columns=SUMMARY_COLUMNS)
    for column in ("value", "ci_low", "ci_high", "ci_level", "mean", "coverage"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def load_summary(results: Path | str) -> pd.DataFrame:
    """The scoring summary of a results folder (or the summary.json itself) as a DataFrame (see
    :func:`summary_frame`); the full record, with provenance, is ``json.load`` of the file."""
    return summary_frame(read_summary(results))
