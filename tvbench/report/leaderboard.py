"""The leaderboard model: methods x metrics from a scoring summary, ranked per column.

Ranking follows the paper's Table 1: per metric, the best value is bold and the second underlined,
direction-aware, among the methods scored on every applicable case (so all on the same cases: a mean over 5 of
23 cases is shown with its coverage but never bolded). Methods that read the ground truth (the ``oracle``; input
``GT``) are listed last and never ranked, since they bound the metrics rather than compete. Where the summary
has them (schema 2), each cell
carries its bootstrap confidence interval, and a best and second place that a paired test cannot tell apart
are marked as tied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tvbench.analysis.uncertainty import competing_values, group_coverage, reads_ground_truth, top_two
from tvbench.errors import ConfigError
from tvbench.metrics import column_order
from tvbench.scoring.files import read_summary as load_summary  # noqa: F401  (the report's reader of summaries)


@dataclass
class Column:
    name: str
    label: str
    latex: str
    higher_is_better: bool

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


@dataclass
class Cell:
    mean: float | None
    n: int
    applicable: int
    rank: int | None = None  # 1 best, 2 second best
    judged: bool = False  # a judge metric: coverage is always shown
    flagged: bool = False  # judge coverage below the threshold
    std: float | None = None  # std over judge repeats
    threshold: float | None = None  # the judge's coverage threshold
    ci: tuple[float, float] | None = None  # bootstrap confidence interval of the value
    undefined: bool = False  # the statistic does not exist for these edits (e.g. a correlation of constants)
    tied: bool = False  # best or second place, not significantly different from the other
    groups: tuple[int, int] | None = None  # sub-task metrics: (groups where defined, groups scored)
    units: int | None = None  # how many units (cases or groups) the interval resamples (or would)
    range: tuple[float | None, float | None] = (None, None)  # the metric's range (None: unbounded)
    published: dict | None = None  # ``report --reference``: the published cell (tvbench.reference.Comparison)

    @property
    def partial(self) -> bool:
        return (self.applicable > 0 and self.n < self.applicable) or self.partial_groups

    @property
    def partial_groups(self) -> bool:
        return self.groups is not None and 0 < self.groups[0] < self.groups[1]


@dataclass
class Row:
    method: str
    inputs: str
    cells: dict[str, Cell]
    ranked: bool


CI_STYLES = ("pm", "bounds", "none")


@dataclass
class Leaderboard:
    columns: list[Column]
    rows: list[Row]
    benchmark: dict
    scorer: dict
    uncertainty: dict | None = None  # how the intervals and ties were computed (summary schema 2)
    reference: Any = None  # the tvbench.reference.Reference the cells are compared with (report --reference)
    uncompared: list[str] = field(default_factory=list)  # what of the reference the results lack
    judge_identity: str | None = None  # what the judge's server said it is (summary judge.identity_line)
    without_edits: list[str] = field(default_factory=list)  # method folders with no edit (a failed run): not rows
    ci_style: str = "pm"  # "pm": value ± half-width where symmetric (else bounds), "bounds": value [low, high], "none"

    @property
    def smoke(self) -> bool:
        return bool(self.scorer.get("smoke"))


def _rank(rows: list[Row], column: Column, competing: dict[str, float | None]) -> None:
    ranks = top_two(competing, column.higher_is_better)
    for row in rows:
        row.cells[column.name].rank = ranks.get(row.method)


def _mark_ties(rows: list[Row], columns: list[Column], leaders: dict) -> None:
    """Tied cells, all marked alike: every best and second place where the summary's paired test found the two
    not significantly different, and every place several methods hold with the same value."""
    for column in columns:
        ranked = [row.cells[column.name] for row in rows if row.cells[column.name].rank in (1, 2)]
        if (leaders.get(column.name) or {}).get("tied"):
            for cell in ranked:
                cell.tied = True
        for rank in (1, 2):
            shared = [cell for cell in ranked if cell.rank == rank]
            if len(shared) > 1:
                for cell in shared:
                    cell.tied = True


def _attach_reference(rows: list[Row], summary: dict, reference) -> list[str]:
    """Each cell the reference has gets its published value, the difference and the verdict; returns what of
    the reference the results lack (one line each)."""
    from tvbench.reference import compare_to_reference, uncompared

    for comparison in compare_to_reference(summary, reference):
        for row in rows:
            if row.method == comparison["method"] and comparison["metric"] in row.cells:
                row.cells[comparison["metric"]].published = dict(comparison)
    return uncompared(summary, reference)


def build_leaderboard(summary: dict, ci_style: str = "pm", reference=None) -> Leaderboard:
    if ci_style not in CI_STYLES:
        raise ConfigError(f"--ci-style {ci_style!r}: choose one of {', '.join(CI_STYLES)}")
    metrics = summary.get("metrics", {})
    columns = [Column(name, metrics[name].get("label", name), metrics[name].get("latex", name),
                      bool(metrics[name].get("higher_is_better", True))) for name in column_order(metrics)]
    rows = []
    for method, info in summary.get("methods", {}).items():
        cells = {}
        for column in columns:
            stats = info.get("metrics", {}).get(column.name, {})
            headline = metrics[column.name].get("headline", "mean")  # e.g. DragBench's MD is pooled over points
            judge = stats.get("judge") or {}
            ci = stats.get("ci") or {}
            cells[column.name] = Cell(stats.get(headline), int(stats.get("n", 0)), int(stats.get("applicable", 0)),
                                      judged=bool(judge), flagged=bool(judge.get("flagged")),
                                      std=judge.get("std_over_repeats"), threshold=judge.get("coverage_threshold"),
                                      ci=(ci["low"], ci["high"]) if "low" in ci else None,
                                      undefined=stats.get("headline_status") == "undefined",
                                      groups=group_coverage(stats, metrics[column.name]), units=stats.get("units"),
                                      range=tuple(metrics[column.name].get("range") or (None, None)))
        inputs = info.get("inputs", "?")
        rows.append(Row(method, inputs, cells, ranked=not reads_ground_truth(inputs)))
    # A metric that applies to no case of this benchmark (target metrics on DragBench) is left out of the table.
    columns = [c for c in columns if any(row.cells[c.name].applicable for row in rows)] if rows else columns
    rows.sort(key=lambda row: not row.ranked)  # stable: references last, others in summary order
    for column in columns:
        _rank(rows, column, competing_values(summary, column.name))
    _mark_ties(rows, columns, (summary.get("significance") or {}).get("leaders", {}))
    missing = _attach_reference(rows, summary, reference) if reference is not None else []
    return Leaderboard(columns, rows, summary.get("benchmark", {}), summary.get("scorer", {}),
                       summary.get("uncertainty"), reference=reference, uncompared=missing,
                       judge_identity=(summary.get("judge") or {}).get("identity_line"),
                       without_edits=list(summary.get("without_edits") or []), ci_style=ci_style)
