"""The metric interface: what a metric declares (direction, range, needed inputs) and how it reports.

A metric that cannot be computed for a case never returns a made-up number: the scorer records a status.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from tvbench.scoring import EditContext

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
    headline: ClassVar[str] = "mean"  # the summary statistic tables show: "mean" (over cases) or "pooled_mean"

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
                "reference": cls.reference, "summary": cls.summary, "headline": cls.headline}
