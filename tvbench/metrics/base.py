"""The metric interface: what a metric declares (direction, range, needed inputs) and how it reports.

A metric that cannot be computed for a case never returns a made-up number: the scorer records a status.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

# Statuses and results are a score row's vocabulary, shared with the judge: they live in tvbench.scoring.rows.
from tvbench.scoring.rows import (ERROR, MISSING, NOT_APPLICABLE, OK, REFUSED, STATUSES, UNPARSEABLE,  # noqa: F401
                                  MetricResult)

if TYPE_CHECKING:
    from tvbench.scoring.context import EditContext

class Metric(ABC):
    """A per-case score of an edit. Subclasses set the class attributes and implement :meth:`compute`."""

    name: ClassVar[str]  # registry id, e.g. "ds_global_tgt"
    label: ClassVar[str]  # table header, e.g. "DS_global^tgt"
    latex: ClassVar[str]  # LaTeX header
    higher_is_better: ClassVar[bool]
    range: ClassVar[tuple[float, float]]
    requires: ClassVar[frozenset[str]] = frozenset()  # case fields that must be present, e.g. {"target"}
    models: ClassVar[frozenset[str]] = frozenset()  # networks it needs: "dino", "lpips", "judge"
    version: ClassVar[str] = "1"  # bump when the same inputs would now give a different number
    summary: ClassVar[str] = ""
    reference: ClassVar[str] = ""  # where the paper defines it
    # DINOv3 features it reads, as (role, scale): role "source", "target" or "edit"; scale "global" (the scoring
    # resolution) or "match" (the matching resolution). The scorer encodes them in batches before computing.
    features: ClassVar[frozenset[tuple[str, str]]] = frozenset()
    headline: ClassVar[str] = "mean"  # the statistic tables show: "mean", "pooled_mean" or "group_mean"
    # Sub-task metrics are about a group of cases (tvbench/metrics/subtasks.py): each case's row holds a per-case
    # measurement (``case_value`` says which), and the score is a statistic per group (``group_statistic``, a name
    # in tvbench.analysis.subtasks.GROUP_STATISTICS), averaged over groups ("group_mean").
    group_statistic: ClassVar[str | None] = None
    case_value: ClassVar[str] = ""

    def not_applicable_reason(self, case) -> str | None:
        for field in sorted(self.requires):
            if not getattr(case, field):
                return f"the case has no {field}"
        return None

    @abstractmethod
    def compute(self, ctx: "EditContext") -> "float | MetricResult":
        """The score of ``ctx.edit`` for ``ctx.case`` (a :class:`MetricResult` when the row needs more facts)."""

    @classmethod
    def describe(cls) -> dict:
        bounds = [bound if math.isfinite(bound) else None for bound in cls.range]  # JSON: null = unbounded
        return {"label": cls.label, "latex": cls.latex, "higher_is_better": cls.higher_is_better, "range": bounds,
                "requires": sorted(cls.requires), "models": sorted(cls.models), "version": cls.version,
                "reference": cls.reference, "summary": cls.summary, "headline": cls.headline,
                **({"group_statistic": cls.group_statistic, "case_value": cls.case_value} if cls.group_statistic
                   else {})}
