"""The leaderboard model: methods x metrics from a scoring summary, ranked per column.

Ranking follows the paper's Table 1: per metric, the best value is bold and the second underlined,
direction-aware, among the methods scored on every applicable case (so all on the same cases). Methods that
read the ground truth (the ``oracle``; input ``GT``) are listed last and never ranked, since they bound the
metrics rather than compete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tvbench.errors import ResultsError
from tvbench.io import read_json_object
from tvbench.metrics import COLUMN_ORDER
from tvbench.scoring.files import SUMMARY_FILE


def load_summary(path: Path) -> dict:
    """A scoring summary from its file, or from the results folder that holds it."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    if not path.is_file():
        raise ResultsError(f"{path}: no scoring summary; run `tvbench score` first")
    summary = read_json_object(path, ResultsError)
    if summary.get("kind") != "tvbench.scores":
        raise ResultsError(f"{path}: not a tvbench scoring summary (kind {summary.get('kind')!r})")
    return summary


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

    @property
    def partial(self) -> bool:
        return self.applicable > 0 and self.n < self.applicable


@dataclass
class Row:
    method: str
    inputs: str
    cells: dict[str, Cell]
    ranked: bool


@dataclass
class Leaderboard:
    columns: list[Column]
    rows: list[Row]
    benchmark: dict
    scorer: dict

    @property
    def smoke(self) -> bool:
        return bool(self.scorer.get("smoke"))


def _ordered_metrics(metrics: dict) -> list[str]:
    known = [name for name in COLUMN_ORDER if name in metrics]
    return known + [name for name in metrics if name not in known]


def _rankable(row: Row, column: Column) -> bool:
    """Competing, scored, and scored on every applicable case: a mean over a subset of the cases (5 of 23) is not
    comparable with means over all of them, so it is shown with its coverage but never bolded."""
    cell = row.cells[column.name]
    return row.ranked and cell.mean is not None and not cell.partial


def _rank(rows: list[Row], column: Column) -> None:
    values = sorted({row.cells[column.name].mean for row in rows if _rankable(row, column)},
                    reverse=column.higher_is_better)
    for row in rows:
        cell = row.cells[column.name]
        if _rankable(row, column) and cell.mean in values[:2]:
            cell.rank = values.index(cell.mean) + 1


def build_leaderboard(summary: dict) -> Leaderboard:
    metrics = summary.get("metrics", {})
    columns = [Column(name, metrics[name].get("label", name), metrics[name].get("latex", name),
                      bool(metrics[name].get("higher_is_better", True))) for name in _ordered_metrics(metrics)]
    rows = []
    for method, info in summary.get("methods", {}).items():
        cells = {}
        for column in columns:
            stats = info.get("metrics", {}).get(column.name, {})
            headline = metrics[column.name].get("headline", "mean")  # e.g. DragBench's MD is pooled over points
            judge = stats.get("judge") or {}
            cells[column.name] = Cell(stats.get(headline), int(stats.get("n", 0)), int(stats.get("applicable", 0)),
                                      judged=bool(judge), flagged=bool(judge.get("flagged")),
                                      std=judge.get("std_over_repeats"), threshold=judge.get("coverage_threshold"))
        inputs = info.get("inputs", "?")
        rows.append(Row(method, inputs, cells, ranked="GT" not in inputs.split("+")))
    # A metric that applies to no case of this benchmark (target metrics on DragBench) is left out of the table.
    columns = [c for c in columns if any(row.cells[c.name].applicable for row in rows)] if rows else columns
    rows.sort(key=lambda row: not row.ranked)  # stable: references last, others in summary order
    for column in columns:
        _rank(rows, column)
    return Leaderboard(columns, rows, summary.get("benchmark", {}), summary.get("scorer", {}))
