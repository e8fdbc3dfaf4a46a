"""The Qwen3-VL judge scores of TV-Edit-Bench: prompt following (PF) and concept preservation (CP).

Paper Appendix C.2: an MLLM judge sees the source, the ground-truth reference, the edited result and the
instruction, reasons, and grades 0-4; a method's score is the mean grade / 4. PF looks at operation type, target
object, spatial accuracy and magnitude; CP at whether identity, background and unedited regions are kept.

These metrics are not computed per case by the image scorer: the judge phase (:mod:`tvbench.judge.phase`)
sends them to an OpenAI-compatible server, concurrently and cached. ``pf``/``cp`` need the case's target;
``pf_drag``/``cp_drag`` are the variant for benchmarks without one (DragBench): the drag points are drawn as
arrows on the source instead. They are separate metrics (own prompt ids, own columns), so their grades are
never averaged with the main ones.
"""

from __future__ import annotations

from typing import ClassVar

from tvbench.errors import ConfigError
from tvbench.metrics.base import Metric


class JudgeMetric(Metric):
    higher_is_better = True
    range = (0.0, 1.0)
    models = frozenset({"judge"})
    prompt_id: ClassVar[str]
    reference = "Appendix C.2"

    def compute(self, ctx) -> float:
        raise ConfigError(f"{self.name} is graded by the judge phase of `tvbench score`, not per image")


class PromptFollowing(JudgeMetric):
    name = "pf"
    label = "PF"
    latex = "PF"
    requires = frozenset({"target", "instruction"})
    prompt_id = "pf-v1"
    summary = "judge's 0-4 grade / 4: operation, target object, spatial accuracy, magnitude vs the reference"


class ConceptPreservation(JudgeMetric):
    name = "cp"
    label = "CP"
    latex = "CP"
    requires = frozenset({"target", "instruction"})
    prompt_id = "cp-v1"
    summary = "judge's 0-4 grade / 4: identity, background and unedited regions kept"


class PromptFollowingDrag(JudgeMetric):
    name = "pf_drag"
    label = "PF_drag"
    latex = r"PF$_{\mathrm{drag}}$"
    requires = frozenset({"points"})
    prompt_id = "pf-drag-v1"
    summary = "PF without a reference: drag points drawn as arrows on the source (DragBench)"


class ConceptPreservationDrag(JudgeMetric):
    name = "cp_drag"
    label = "CP_drag"
    latex = r"CP$_{\mathrm{drag}}$"
    requires = frozenset({"points"})
    prompt_id = "cp-drag-v1"
    summary = "CP without a reference: drag points drawn as arrows on the source (DragBench)"
