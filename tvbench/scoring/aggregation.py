"""Aggregation: per method and metric, the statistics of the summary from the rows."""

from __future__ import annotations

from tvbench.analysis.subtasks import UNDEFINED, group_outcomes
from tvbench.scoring.rows import NOT_APPLICABLE, OK, STATUSES
from tvbench.scoring.runs import MethodRun


def group_statistics(ok_rows: list[dict], statistic: str) -> dict:
    """A sub-task metric's summary: per group its statistic (or why it is undefined), and their mean."""
    groups = group_outcomes(ok_rows, statistic)
    defined = [g["value"] for g in groups.values() if g["status"] == OK]
    status = OK if defined else (UNDEFINED if groups else None)
    return {"group_mean": sum(defined) / len(defined) if defined else None, "groups": groups,
            "n_groups": len(defined), **({"headline_status": status} if status else {})}


def aggregate(rows: list[dict], runs: list[MethodRun], metrics: dict[str, dict], n_cases: int) -> dict:
    """Per method and metric (``metrics``: name -> declaration): mean over ``ok`` rows, coverage = ok / applicable
    cases, status counts; pooled means for point metrics, group statistics for sub-task metrics."""
    methods: dict[str, dict] = {}
    for run in runs:
        per_metric = {}
        run_rows = [r for r in rows if r["method"] == run.name]
        for name, declaration in metrics.items():
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
            if declaration.get("group_statistic") and applicable:
                per_metric[name].update(group_statistics(ok_rows, declaration["group_statistic"]))
            derived = sum(1 for r in ok_rows if r.get("mask") == "derived")
            if derived:
                per_metric[name]["derived_masks"] = derived
        resized = len({r["case"] for r in run_rows if r.get("resized")})
        methods[run.name] = {**run.describe(), "resized_edits": resized, "metrics": per_metric}
    return methods
