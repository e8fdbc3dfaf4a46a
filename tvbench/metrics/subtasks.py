"""The two controlled sub-tasks of TV-Edit-Bench as numbers (the paper, Sec. 4.2, shows them only as figures).

- *Magnitude control*: cases sharing a ``group`` with the same instruction and source and drags of different
  lengths. Per case, the displacement the edit achieved: each handle's feature is matched into the edit with
  MD_s's windowed matching, and the distance from the handle to its match is averaged over the case's handles
  (normalised by width and height, like MD_s); the requested length is the mean drag length. Per group:
  ``magnitude_rho`` is the Spearman rank correlation between requested and achieved (ties get average ranks;
  undefined, not 0, when either side is constant, e.g. an edit that moves nothing), and ``magnitude_order`` is
  1 when the achieved displacements are strictly in the requested order (every pair with a shorter requested drag
  moved less), else 0. A method's score is the mean over groups.
- *Semantic disambiguation*: cases sharing source and drag points under different instructions and targets.
  ``semantic_acc`` is 1 for a case whose edit is closer (DS_global) to its own target than to every sibling's
  target, else 0; per group the fraction of its cases right, and the score is the mean over groups. Groups, not
  cases, are the independent units (the siblings share a source and points), so the interval resamples groups
  and ``compare`` pairs and tests groups. An edit that ignores the text (the same image for every sibling) is
  right for at most one sibling: chance level, 1/3 for groups of three.

A handle whose match lies less than one pixel from it counts as not moved (displacement 0): the match is located
on the pixel grid, so a smaller offset is the matching's own jitter, not motion. An edit that moves nothing thus
has no magnitude correlation (undefined) instead of one read from noise.
"""

from __future__ import annotations

from typing import ClassVar

from tvbench.metrics.base import NOT_APPLICABLE, OK, Metric, MetricResult

MIN_MOTION_PX = 1.0  # a handle matched closer than this to itself did not move (module docstring)

# The formulas (tvbench.metrics.functional) need torch: they are imported inside compute(), so that reading a
# metric's declaration (tvbench ls, --help) imports no torch.


class _SubtaskMetric(Metric):
    subtask: ClassVar[str]
    reference = "Sec. 4.2 (figures only)"

    def not_applicable_reason(self, case) -> str | None:
        if case.subtask != self.subtask or not case.group:
            return f"not a {self.subtask} case with a group"
        return super().not_applicable_reason(case)


class _MagnitudeControl(_SubtaskMetric):
    subtask = "magnitude"
    requires = frozenset({"points"})
    models = frozenset({"dino"})
    features = frozenset({("source", "match"), ("edit", "match")})
    headline = "group_mean"
    case_value = "displacement achieved from the handles (normalised, mean over handles); 'requested': drag length"

    version = "2"  # 2: sub-pixel displacements count as no motion

    def compute(self, ctx) -> MetricResult:
        from tvbench.metrics.functional import displacements

        source, edit = ctx.match_grid("source"), ctx.match_grid("edit")
        achieved, requested = displacements(source, edit, ctx.case.points, ctx.edit.size)
        pixels, _ = displacements(source, edit, ctx.case.points, ctx.edit.size, normalized=False)
        achieved = achieved.masked_fill(pixels < MIN_MOTION_PX, 0.0)
        return MetricResult(float(achieved.mean()), OK, extra={"requested": float(requested.mean()),
                                                               "achieved_px": float(pixels.mean()),
                                                               "group": ctx.case.group})


class MagnitudeRho(_MagnitudeControl):
    name = "magnitude_rho"
    label = "Mag. ρ"
    latex = r"Mag.~$\rho$"
    higher_is_better = True
    range = (-1.0, 1.0)
    group_statistic = "spearman"
    summary = ("magnitude groups: Spearman correlation of requested drag length and achieved displacement (windowed "
               "DINOv3 match of each handle), mean over groups; undefined where the edit moves nothing")


class MagnitudeOrder(_MagnitudeControl):
    name = "magnitude_order"
    label = "Mag. order"
    latex = r"Mag.~order"
    higher_is_better = True
    range = (0.0, 1.0)
    group_statistic = "ordered"
    summary = "magnitude groups: fraction of groups whose achieved displacements are strictly in the requested order"


class SemanticAccuracy(_SubtaskMetric):
    name = "semantic_acc"
    label = "Sem. acc."
    latex = r"Sem.~acc."
    higher_is_better = True
    range = (0.0, 1.0)
    subtask = "semantic"
    requires = frozenset({"target"})
    models = frozenset({"dino"})
    features = frozenset({("target", "global"), ("edit", "global")})
    version = "2"  # 2: a statistic per group (the fraction of the group's cases right), averaged over groups
    headline = "group_mean"
    group_statistic = "mean"
    case_value = "1 if the edit is closer (DS_global) to its own target than to every sibling's target, else 0"
    summary = ("semantic groups: per group the fraction of cases whose edit is closer (DS_global) to its own target "
               "than to every sibling's target, mean over groups")

    def compute(self, ctx) -> MetricResult:
        from tvbench.metrics.functional import ds_global

        siblings = [case for case in ctx.siblings if case.target is not None]
        if not siblings:
            return MetricResult(None, NOT_APPLICABLE, "no sibling case with a target in this group")
        edit = ctx.dino("edit").cls
        own = ds_global(ctx.dino("target").cls, edit)
        closest = max(ds_global(ctx.dino(ctx.sibling_image(case, "target")).cls, edit) for case in siblings)
        return MetricResult(1.0 if own > closest else 0.0, OK,
                            extra={"margin": own - closest, "siblings": len(siblings), "group": ctx.case.group})
