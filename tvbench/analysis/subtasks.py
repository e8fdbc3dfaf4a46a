"""Group statistics of the sub-task metrics (tvbench/metrics/subtasks.py): one number per group of cases.

A statistic that the data cannot define (a correlation where one side is constant, a group with fewer than two
scored cases) is ``None`` with a reason: never a 0 that would read as "no correlation".
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from tvbench.scoring.rows import OK

UNDEFINED = "undefined"  # the group's statistic does not exist for this edit (e.g. nothing moved)
GroupOutcome = tuple[float | None, str | None]  # (value, reason it is undefined)


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span (the convention of Spearman's rho with ties)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        stop = start
        while stop + 1 < len(values) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2.0 + 1.0
        start = stop + 1
    return ranks


def spearman(requested: Sequence[float], achieved: Sequence[float]) -> GroupOutcome:
    """Spearman's rho (Pearson correlation of average ranks); undefined when either side is constant."""
    if len(requested) < 2:
        return None, "fewer than two scored cases in the group"
    x, y = average_ranks(requested), average_ranks(achieved)
    if np.all(y == y[0]):
        return None, "the achieved displacement is the same for every case of the group (nothing to rank)"
    if np.all(x == x[0]):
        return None, "every case of the group requests the same drag length"
    x, y = x - x.mean(), y - y.mean()
    return float(np.clip((x @ y) / np.sqrt((x @ x) * (y @ y)), -1.0, 1.0)), None


def fully_ordered(requested: Sequence[float], achieved: Sequence[float]) -> GroupOutcome:
    """1.0 when every pair of cases with different requested lengths moved in that order (strictly), else 0.0."""
    if len(requested) < 2:
        return None, "fewer than two scored cases in the group"
    x, y = np.asarray(requested, dtype=np.float64), np.asarray(achieved, dtype=np.float64)
    shorter, longer = np.nonzero(x[:, None] < x[None, :])  # every pair (i, j) with requested i < requested j
    if len(shorter) == 0:
        return None, "every case of the group requests the same drag length"
    return (1.0 if bool(np.all(y[shorter] < y[longer])) else 0.0), None


def group_mean(requested: Sequence[float | None], achieved: Sequence[float]) -> GroupOutcome:
    """The mean of the group's case values (semantic accuracy: the fraction of the group's cases right)."""
    if len(achieved) == 0:
        return None, "no scored case in the group"
    return float(np.mean(np.asarray(achieved, dtype=np.float64))), None


GROUP_STATISTICS: dict[str, Callable[[Sequence[float], Sequence[float]], GroupOutcome]] = {
    "spearman": spearman,
    "ordered": fully_ordered,
    "mean": group_mean,
}


def group_outcomes(rows: list[dict], statistic: str) -> dict[str, dict]:
    """Per group, from the ``ok`` rows of one method and metric: ``{"value", "status", "detail", "n"}``."""
    compute = GROUP_STATISTICS[statistic]
    by_group: dict[str, list[dict]] = {}
    for row in rows:
        by_group.setdefault(str(row.get("group")), []).append(row)
    outcomes = {}
    for group, members in sorted(by_group.items()):
        value, reason = compute([r.get("requested") for r in members], [r["value"] for r in members])
        outcomes[group] = {"value": value, "status": OK if value is not None else UNDEFINED, "detail": reason,
                           "n": len(members)}
    return outcomes
