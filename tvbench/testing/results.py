"""Scored results folders with known numbers (``scores.jsonl`` and ``summary.json``, no images), for testing
comparisons, reports and plots without running any network."""

from __future__ import annotations

from pathlib import Path

from tvbench.analysis.frames import scores_frame
from tvbench.analysis.paired import Settings
from tvbench.analysis.uncertainty import annotate
from tvbench.io import atomic_write_json, atomic_write_text, jsonl_line
from tvbench.scoring.aggregation import aggregate
from tvbench.scoring.files import SCORES_FILE, SCORES_SCHEMA_VERSION, SUMMARY_FILE, SUMMARY_KIND
from tvbench.scoring.rows import OK
from tvbench.scoring.runs import MethodRun


def declaration(label: str, higher_is_better: bool = True, **extra) -> dict:
    """A metric's entry of ``summary["metrics"]``."""
    return {"label": label, "latex": label, "higher_is_better": higher_is_better, "headline": "mean", **extra}


def write_results(folder: Path, values: dict[str, dict[str, list[float]]], metrics: dict[str, dict],
                  inputs: dict[str, str] | None = None, extras: dict[str, dict[str, list[dict]]] | None = None,
                  settings: Settings = Settings(resamples=1000)) -> dict:
    """Write rows and a summary where ``values[method][metric][k]`` is case ``case-k``'s value (None: missing);
    ``extras[method][metric][k]`` adds per-row fields (``points``, ``requested``, ``group``, ``judge``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    n_cases = 0
    for method, per_metric in values.items():
        for metric, series in per_metric.items():
            n_cases = max(n_cases, len(series))
            facts = (extras or {}).get(method, {}).get(metric) or [{}] * len(series)
            for k, (value, fact) in enumerate(zip(series, facts)):
                rows.append({"case": f"case-{k}", "method": method, "metric": metric, "value": value,
                             "status": OK if value is not None else "missing", "detail": None, "key": "synthetic",
                             "edit_sha": None, "resized": False, **fact})
    runs = [MethodRun(name, folder / name, {"method": name, "inputs": (inputs or {}).get(name, "I+T")})
            for name in values]
    cases = {f"case-{k}": {"subtask": "real", "group": None, "category": None} for k in range(n_cases)}
    summary = {"schema_version": SCORES_SCHEMA_VERSION, "kind": SUMMARY_KIND,
               "benchmark": {"name": "synthetic", "hash": "sha256:" + "0" * 64, "n_cases": n_cases},
               "scorer": {"models": {}, "smoke": False}, "metrics": metrics,
               "methods": aggregate(rows, runs, metrics, n_cases), "cases": cases}
    annotate(summary, scores_frame(rows, cases), settings)
    atomic_write_text(folder / SCORES_FILE, "".join(jsonl_line(row) for row in rows))
    atomic_write_json(folder / SUMMARY_FILE, summary)
    return summary
