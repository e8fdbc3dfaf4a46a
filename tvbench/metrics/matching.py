"""Geometric accuracy of TV-Edit-Bench: sparse and dense matching distance (paper Sec. 4.2).

Each handle point's feature in the source is matched into the edit within a restricted window around the handle
and its target (:func:`~tvbench.metrics.functional.search_window`), using high-resolution DINOv3 features: the
images are encoded at ``match_resolution`` (long side, default 896 px) and the patch grid is upsampled
bilinearly to the pixel grid. The distance from the match to the target point is measured in coordinates
normalised by the image's width and height. A case's value is the mean over its points; the summary also gives
the mean over all points pooled.
"""

from __future__ import annotations

from typing import ClassVar

from tvbench.metrics.base import OK, Metric, MetricResult
# The formulas (tvbench.metrics.functional) need torch: they are imported inside compute(), so that reading a
# metric's declaration (`tvbench ls`, reports) does not load torch.


class _MatchingDistance(Metric):
    field: ClassVar[str]
    higher_is_better = False
    range = (0.0, 2 ** 0.5)
    models = frozenset({"dino"})
    features = frozenset({("source", "match"), ("edit", "match")})
    reference = "Sec. 4.2"

    def compute(self, ctx) -> MetricResult:
        from tvbench.metrics.functional import matching_distances

        pairs = getattr(ctx.case, self.field)
        distances = matching_distances(ctx.match_grid("source"), ctx.match_grid("edit"), pairs, ctx.edit.size)
        return MetricResult(float(distances.mean()), OK, extra={"points": len(pairs)})


class MDSparse(_MatchingDistance):
    name = "md_s"
    label = "MD_s"
    latex = r"MD$_{s}$"
    field = "points"
    requires = frozenset({"points"})
    summary = "normalised distance from each drag point's windowed DINOv3 match in the edit to its target point"


class MDDense(_MatchingDistance):
    name = "md_d"
    label = "MD_d"
    latex = r"MD$_{d}$"
    field = "dense_points"
    requires = frozenset({"dense_points"})
    summary = "as MD_s over the dense tracked points of the edited region"
