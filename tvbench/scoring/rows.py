"""A score row: the statuses a metric result can have, the result itself, the row written to ``scores.jsonl``,
and the memo of rows computed before.

These are the parts every scorer shares (the image loop, the judge phase, the sub-task metrics), so they live
below metrics and judge: both import from here, and nothing here imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tvbench.io import append_jsonl, read_jsonl

if TYPE_CHECKING:
    from tvbench.cases import Case
    from tvbench.scoring.runs import MethodRun

OK = "ok"
NOT_APPLICABLE = "not_applicable"  # the case lacks an input the metric needs (e.g. no target)
MISSING = "missing"  # the method produced no image for the case
ERROR = "error"  # computing failed; the row carries the message
UNPARSEABLE = "unparseable"  # a judge replied, but without one unambiguous score; the row keeps the reply
REFUSED = "refused"  # a judge declined to grade; the row keeps the reply
STATUSES = (OK, NOT_APPLICABLE, MISSING, ERROR, UNPARSEABLE, REFUSED)


@dataclass(frozen=True)
class MetricResult:
    value: float | None
    status: str
    detail: str | None = None
    extra: dict | None = None  # per-row facts, e.g. {"points": 3} (pooled means) or {"mask": "derived"}


def make_row(run: "MethodRun", case: "Case", metric: str, key: str, result: MetricResult, edit_sha: str | None,
             resized: bool) -> dict:
    """The ``scores.jsonl`` row of one metric on one method's edit of one case."""
    return {"case": case.id, "method": run.name, "metric": metric, "value": result.value, "status": result.status,
            "detail": result.detail, "edit_sha": edit_sha, "resized": resized, "key": key, **(result.extra or {})}


class ScoreMemo:
    """Rows computed before, keyed by (method, case, metric, metric key, edit hash); append-only on disk."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = path
        self.reused = 0
        self._rows: dict[tuple, dict] = {}
        if enabled:
            for row in read_jsonl(path):
                if row.get("status") in (OK, NOT_APPLICABLE):
                    self._rows[self._key(row)] = row

    @staticmethod
    def _key(row: dict) -> tuple:
        return row.get("method"), row.get("case"), row.get("metric"), row.get("key"), row.get("edit_sha")

    def get(self, method: str, case: str, metric: str, key: str, edit_sha: str | None) -> dict | None:
        row = self._rows.get((method, case, metric, key, edit_sha))
        self.reused += row is not None
        return row

    def add(self, row: dict) -> None:
        if row["status"] in (OK, NOT_APPLICABLE):
            self._rows[self._key(row)] = row
            append_jsonl(self.path, row)
