"""Uncertainty in a scoring summary: a confidence interval per method and metric, and whether each metric's
best and second-best methods (the leaderboard's bold and underlined) are significantly different."""

from __future__ import annotations

import pandas as pd

from tvbench.analysis.bootstrap import confidence_interval
from tvbench.analysis.paired import Settings, compare_metric, holm
from tvbench.analysis.units import units_for


def reads_ground_truth(inputs: str | None) -> bool:
    """Methods that read the ground truth (input ``GT``, the oracle) bound the metrics: they are never ranked."""
    return "GT" in str(inputs or "").split("+")


def top_two(values: dict[str, float | None], higher_is_better: bool) -> dict[str, int]:
    """Rank 1 for the methods holding the best value, 2 for those holding the next distinct value."""
    distinct = sorted({v for v in values.values() if v is not None}, reverse=higher_is_better)[:2]
    return {method: distinct.index(v) + 1 for method, v in values.items() if v is not None and v in distinct}


def headline(stats: dict, declaration: dict) -> float | None:
    return stats.get(declaration.get("headline", "mean"))


def competing_values(summary: dict, metric: str) -> dict[str, float | None]:
    """The headline values that compete for a metric's best and second place (the leaderboard's bold and
    underline, and the pair the significance test compares): methods that do not read the ground truth, scored
    on every applicable case and, for a sub-task metric, defined in every group. A mean over a subset of the
    cases (or groups) is not comparable with means over all of them."""
    declaration = summary.get("metrics", {}).get(metric, {})
    values = {}
    for method, info in summary.get("methods", {}).items():
        stats = info.get("metrics", {}).get(metric, {})
        if not reads_ground_truth(info.get("inputs")) and complete(stats, declaration):
            values[method] = headline(stats, declaration)
    return values


def group_coverage(stats: dict, declaration: dict) -> tuple[int, int] | None:
    """``(groups where the statistic is defined, groups scored)`` of a sub-task metric, else None."""
    if not declaration.get("group_statistic") or "groups" not in stats:
        return None
    return int(stats.get("n_groups", 0)), len(stats.get("groups") or {})


def complete(stats: dict, declaration: dict) -> bool:
    """Scored on every applicable case, and (sub-task metrics) defined in every group."""
    applicable, n = int(stats.get("applicable", 0)), int(stats.get("n", 0))
    groups = group_coverage(stats, declaration)
    return applicable > 0 and n == applicable and (groups is None or (groups[1] > 0 and groups[0] == groups[1]))


def add_intervals(summary: dict, scores: pd.DataFrame, settings: Settings) -> None:
    """``ci`` for every method and metric with at least ``MIN_UNITS`` units (None otherwise), and ``units``."""
    for method, info in summary.get("methods", {}).items():
        for metric, stats in info.get("metrics", {}).items():
            declaration = summary["metrics"].get(metric, {})
            if headline(stats, declaration) is None:
                stats["ci"] = None
                continue
            units = units_for(scores, method, metric, declaration)
            interval = confidence_interval(units, settings.level, settings.resamples, settings.method, settings.seed)
            stats["ci"] = interval.to_dict() if interval else None
            stats["units"] = len(units)  # below MIN_UNITS no interval: the value is shown with this n


def leader_comparisons(summary: dict, scores: pd.DataFrame, settings: Settings) -> dict[str, dict]:
    """Per metric, the first best and first second-best ranked method compared (paired, Holm across metrics)."""
    leaders = {}
    for metric, declaration in summary.get("metrics", {}).items():
        ranks = top_two(competing_values(summary, metric), bool(declaration.get("higher_is_better", True)))
        best = next((m for m, r in ranks.items() if r == 1), None)
        second = next((m for m, r in ranks.items() if r == 2), None)
        if best is None or second is None:
            continue
        result = compare_metric(scores, best, second, metric, declaration, settings)
        leaders[metric] = {"best": best, "second": second, "difference": result["difference"],
                           "ci": [result["ci_low"], result["ci_high"]], "units": result["units"],
                           "p_value": result["p_value"], "note": result["note"]}
    for entry, adjusted in zip(leaders.values(), holm([e["p_value"] for e in leaders.values()])):
        entry["p_holm"] = adjusted
        entry["tied"] = adjusted is None or adjusted >= settings.alpha
    return leaders


def annotate(summary: dict, scores: pd.DataFrame, settings: Settings = Settings()) -> dict:
    """Add intervals, the settings that made them, and the leaders' comparisons to ``summary`` (in place)."""
    add_intervals(summary, scores, settings)
    summary["uncertainty"] = settings.describe()
    summary["significance"] = {"alpha": settings.alpha, "leaders": leader_comparisons(summary, scores, settings)}
    return summary
