"""From score rows to the units a headline statistic averages (see :mod:`tvbench.analysis.bootstrap`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tvbench.analysis.bootstrap import Units
from tvbench.analysis.subtasks import group_outcomes
from tvbench.scoring.rows import NOT_APPLICABLE, OK


def metric_rows(scores: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    """The ``ok`` rows of one method and metric."""
    return scores[(scores["method"] == method) & (scores["metric"] == metric) & (scores["status"] == OK)]


def _repeats(rows: pd.DataFrame) -> np.ndarray | None:
    """Per-repeat values (grade / 4) of judge rows graded K > 1 times, when every row has its K grades and their
    mean is the row's value; else None (then only the cases are resampled)."""
    grades = rows["judge_scores"].tolist()
    if not grades or any(not isinstance(g, list) for g in grades):
        return None
    k = len(grades[0])
    if k < 2 or any(len(g) != k for g in grades):
        return None
    repeats = np.asarray(grades, dtype=np.float64) / 4.0
    if not np.allclose(repeats.mean(axis=1), rows["value"].to_numpy(), atol=1e-9):
        return None
    return repeats


def incomplete_groups(scores: pd.DataFrame, method: str, metric: str) -> set[str]:
    """Groups in which some applicable case of ``method`` has no ``ok`` row for ``metric`` (failed, unscored)."""
    rows = scores[(scores["method"] == method) & (scores["metric"] == metric) & (scores["status"] != NOT_APPLICABLE)]
    return {str(group) for group, members in rows.groupby(rows["group"].astype(str))
            if (members["status"] != OK).any()} if "group" in rows else set()


def units_for(scores: pd.DataFrame, method: str, metric: str, declaration: dict,
              complete_groups_only: bool = False) -> Units:
    """The units of one method's headline statistic of ``metric`` (declared as in ``summary["metrics"]``):
    groups for sub-task metrics, cases weighted by points for pooled means, cases otherwise.

    ``complete_groups_only`` keeps the groups whose every applicable case was scored: a paired comparison must not
    pair a group's statistic over fewer cases with the same group's over all of them."""
    rows = metric_rows(scores, method, metric)
    statistic = declaration.get("group_statistic")
    if statistic:
        outcomes = group_outcomes(rows.to_dict("records"), statistic)
        left_out = incomplete_groups(scores, method, metric) if complete_groups_only else set()
        defined = {group: o["value"] for group, o in outcomes.items() if o["value"] is not None
                   and group not in left_out}
        return Units.of(list(defined.values()), ids=list(defined))
    weights = None
    if declaration.get("headline") == "pooled_mean":
        weights = pd.to_numeric(rows["points"], errors="coerce").fillna(0.0).to_numpy()
    return Units.of(rows["value"].to_numpy(), weights, ids=rows["case"].astype(str).tolist(), repeats=_repeats(rows))


def align(a: Units, b: Units) -> tuple[Units, Units]:
    """The units both have (by id), in the same order: the pairs of a paired comparison."""
    where_b = {unit: k for k, unit in enumerate(b.ids)}
    common = [(k, where_b[unit]) for k, unit in enumerate(a.ids) if unit in where_b]
    first = [k for k, _ in common]
    second = [k for _, k in common]
    a2, b2 = a.take(first), b.take(second)
    if (a2.repeats is None) != (b2.repeats is None):  # one side graded once: compare unit means only
        a2, b2 = Units(a2.values, a2.weights, a2.ids), Units(b2.values, b2.weights, b2.ids)
    return a2, b2
