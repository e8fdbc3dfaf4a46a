"""Paired comparison of two methods on the units (cases, or groups) both have, metric by metric.

For each metric: the difference of the headline statistics with its paired-bootstrap interval (both methods
resampled with the same units), and a Wilcoxon signed-rank test of the per-unit differences (two-sided, zero
differences dropped as in Wilcoxon's original procedure). The p-values of one comparison's metrics are
Holm-corrected together (Holm 1979, "A simple sequentially rejective multiple test procedure", Scand. J.
Statist. 6:65-70): a difference is called significant when its corrected p-value is below ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from tvbench.analysis.bootstrap import MIN_UNITS, BootstrapSettings, paired_difference
from tvbench.analysis.subtasks import average_ranks
from tvbench.analysis.units import align, units_for

DEFAULT_ALPHA = 0.05
EXACT_LIMIT = 50  # differences up to which the exact null distribution is used (as scipy does)
FLIP_LIMIT = 13  # with zeros or ties: differences up to which every sign flip is enumerated (as scipy does)
COMPARE_COLUMNS = ["metric", "label", "higher_is_better", "units", "a", "b", "difference", "ci_low", "ci_high",
                   "p_value", "p_holm", "significant", "better", "note"]


@dataclass(frozen=True)
class Settings(BootstrapSettings):
    """How uncertainty is estimated; recorded in the summary so that a number can be reproduced."""

    alpha: float = DEFAULT_ALPHA

    def describe(self) -> dict:
        return {**super().describe(), "alpha": self.alpha,
                "test": "Wilcoxon signed-rank on per-unit differences, Holm-corrected across metrics",
                "units": "cases (groups for sub-task metrics); pooled means weight cases by points; judge metrics "
                         "graded K > 1 times also resample the K repeats within each case"}


def wilcoxon_p(differences) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zeros dropped); None when all are zero.

    The rules of ``scipy.stats.wilcoxon`` (method "auto", zero_method "wilcox", no continuity correction), which the
    tests compare against: for up to 50 differences, the exact null distribution when there are no zeros or tied
    magnitudes, all sign flips enumerated for up to 13 differences otherwise; else the normal approximation with
    the tie-corrected variance. Written here because importing ``scipy.stats`` costs seconds.
    """
    d = np.asarray(differences, dtype=np.float64)
    total, has_zeros = d.size, bool(np.any(d == 0))
    d = d[d != 0]
    n = d.size
    if n == 0:
        return None
    ranks = average_ranks(np.abs(d))
    r_plus = float(ranks[d > 0].sum())
    _, tie_sizes = np.unique(np.abs(d), return_counts=True)
    ties = bool(np.any(tie_sizes > 1))
    if total <= EXACT_LIMIT and not (ties or has_zeros):
        counts = np.zeros(n * (n + 1) // 2 + 1)  # counts[s]: subsets of the ranks 1..n summing to s
        counts[0] = 1.0
        for rank in range(1, n + 1):
            counts[rank:] = counts[rank:] + counts[:-rank].copy()
        smaller = min(r_plus, n * (n + 1) / 2.0 - r_plus)
        return float(min(1.0, 2.0 * counts[: int(smaller) + 1].sum() / 2.0 ** n))
    if total <= FLIP_LIMIT:  # every sign assignment of the observed ranks, equally likely under the null
        signs = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
        null = signs @ ranks
        tolerance = 1e-12 * max(1.0, r_plus)
        below, above = np.mean(null <= r_plus + tolerance), np.mean(null >= r_plus - tolerance)
        return float(min(1.0, 2.0 * min(below, above)))
    mean = n * (n + 1) / 4.0
    variance = (n * (n + 1) * (2 * n + 1) - float(np.sum(tie_sizes ** 3 - tie_sizes)) / 2.0) / 24.0
    if variance <= 0:
        return None
    z = (r_plus - mean) / np.sqrt(variance)
    return float(min(1.0, 2.0 * NormalDist().cdf(-abs(z))))


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (same order; None stays None and does not count towards the family size)."""
    present = sorted((p, k) for k, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, k) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[k] = running
    return adjusted


def compare_metric(scores: pd.DataFrame, a: str, b: str, metric: str, declaration: dict,
                   settings: Settings) -> dict:
    """One metric's paired comparison of methods ``a`` and ``b`` (difference = a - b), before correction."""
    grouped = bool(declaration.get("group_statistic"))
    units = {name: units_for(scores, name, metric, declaration, complete_groups_only=grouped) for name in (a, b)}
    first, second = align(units[a], units[b])
    difference, interval = paired_difference(first, second, settings.level, settings.resamples, settings.method,
                                             settings.seed)
    note = ""
    if grouped:
        everyone = {name: len(units_for(scores, name, metric, declaration)) for name in (a, b)}
        if any(everyone[name] > len(units[name]) for name in (a, b)):
            note = "groups with an unscored case left out"
    if len(first) == 0:
        empty = [name for name in (a, b) if len(units[name]) == 0]
        scope = "groups" if declaration.get("group_statistic") else "cases"
        note = f"no {scope} with a value for {' and '.join(empty)}" if empty else f"no common {scope}"
    elif len(first) < 2:
        note = "one common unit: no interval or test"
    elif interval is None:
        note = f"{len(first)} common units: too few for an interval (at least {MIN_UNITS})"
    p_value = wilcoxon_p(first.values - second.values) if len(first) >= 2 else None
    if p_value is None and len(first) >= 2:
        note = "identical on every common unit"
    return {"metric": metric, "label": declaration.get("label", metric),
            "higher_is_better": bool(declaration.get("higher_is_better", True)), "units": len(first),
            "a": first.statistic(), "b": second.statistic(), "difference": difference,
            "ci_low": interval.low if interval else None, "ci_high": interval.high if interval else None,
            "p_value": p_value, "note": note}


def compare_methods(scores: pd.DataFrame, metrics: dict[str, dict], a: str, b: str,
                    settings: Settings = Settings()) -> pd.DataFrame:
    """Every metric's paired comparison of ``a`` and ``b`` as a frame (``COMPARE_COLUMNS``), Holm across metrics."""
    records = [compare_metric(scores, a, b, name, declaration, settings) for name, declaration in metrics.items()]
    for record, adjusted in zip(records, holm([r["p_value"] for r in records])):
        record["p_holm"] = adjusted
        record["significant"] = adjusted is not None and adjusted < settings.alpha
        better = None
        if record["significant"] and record["difference"]:
            a_higher = record["difference"] > 0
            better = a if a_higher == record["higher_is_better"] else b
        record["better"] = better
        excludes_zero = record["ci_low"] is not None and (record["ci_low"] > 0 or record["ci_high"] < 0)
        if excludes_zero and not record["significant"] and record["p_value"] is not None:
            # never an interval that excludes 0 beside a test that finds no difference: the two disagree, and the
            # test (exact at small n, Holm-corrected) is the one the verdict rests on
            record["ci_low"] = record["ci_high"] = None
            record["note"] = "; ".join(filter(None, [record["note"], "interval hidden: it excludes 0 where the "
                                                     "test finds no significant difference"]))
    return pd.DataFrame.from_records(records, columns=COMPARE_COLUMNS)
