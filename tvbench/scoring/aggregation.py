"""Aggregation: per method and metric, the statistics of the summary from the rows."""

from __future__ import annotations

from tvbench.scoring.rows import NOT_APPLICABLE, OK, STATUSES
from tvbench.scoring.runs import MethodRun


def aggregate(rows: list[dict], runs: list[MethodRun], metric_names: list[str], n_cases: int) -> dict:
    """Per method and metric: mean over ``ok`` rows, coverage = ok / applicable cases, status counts."""
    methods: dict[str, dict] = {}
    for run in runs:
        per_metric = {}
        run_rows = [r for r in rows if r["method"] == run.name]
        for name in metric_names:
            metric_rows = [r for r in run_rows if r["metric"] == name]
            counts = {status: sum(1 for r in metric_rows if r["status"] == status) for status in STATUSES}
            ok_rows = [r for r in metric_rows if r["status"] == OK]
            values = [r["value"] for r in ok_rows]
            applicable = n_cases - counts[NOT_APPLICABLE]
            per_metric[name] = {
                "mean": sum(values) / len(values) if values else None,
                "n": len(values),
                "applicable": applicable,
                "coverage": len(values) / applicable if applicable else None,
                "status_counts": counts,
            }
            if any("points" in r for r in ok_rows):  # point metrics: the mean over all points pooled, too
                points = sum(r.get("points", 0) for r in ok_rows)
                per_metric[name]["pooled_mean"] = \
                    sum(r["value"] * r.get("points", 0) for r in ok_rows) / points if points else None
                per_metric[name]["points"] = points
            derived = sum(1 for r in ok_rows if r.get("mask") == "derived")
            if derived:
                per_metric[name]["derived_masks"] = derived
        resized = len({r["case"] for r in run_rows if r.get("resized")})
        methods[run.name] = {**run.describe(), "resized_edits": resized, "metrics": per_metric}
    return methods
