"""The metric registry. Each metric is a small class declaring its direction, range and needed inputs.

Python API on in-memory images (the scorer loads the networks, so it lives in :mod:`tvbench.scoring`)::

    from tvbench.scoring import score_images
    score_images(edit, target=target, metrics=["ds_global_tgt", "lpips_tgt"], backbone="random-tiny")

and on precomputed features: :mod:`tvbench.metrics.functional`.
"""

from __future__ import annotations

from tvbench.metrics.base import (ERROR, MISSING, NOT_APPLICABLE, OK, REFUSED, STATUSES, UNPARSEABLE, Metric,
                                  MetricResult)
from tvbench.registry import Registry

METRICS: Registry[type[Metric]] = Registry("metric")
METRICS.register("ds_global_tgt", "tvbench.metrics.dino:DSGlobalTarget")
METRICS.register("ds_local_tgt", "tvbench.metrics.dino:DSLocalTarget")
METRICS.register("ds_local_src", "tvbench.metrics.dino:DSLocalSource")
METRICS.register("lpips_tgt", "tvbench.metrics.lpips:LpipsTarget")
METRICS.register("md_s", "tvbench.metrics.matching:MDSparse")
METRICS.register("md_d", "tvbench.metrics.matching:MDDense")
METRICS.register("dragbench_md", "tvbench.metrics.dragbench:DragBenchMD")
METRICS.register("dragbench_md_dift", "tvbench.metrics.dragbench:DragBenchMDDift")
METRICS.register("dragbench_if", "tvbench.metrics.dragbench:DragBenchIF")
# the two controlled sub-tasks as numbers (magnitude control, semantic disambiguation)
METRICS.register("magnitude_rho", "tvbench.metrics.subtasks:MagnitudeRho")
METRICS.register("magnitude_order", "tvbench.metrics.subtasks:MagnitudeOrder")
METRICS.register("semantic_acc", "tvbench.metrics.subtasks:SemanticAccuracy")
# judge metrics: opt-in, they need an OpenAI-compatible server (see tvbench/judge/)
METRICS.register("pf", "tvbench.metrics.judge:PromptFollowing")
METRICS.register("cp", "tvbench.metrics.judge:ConceptPreservation")
METRICS.register("pf_drag", "tvbench.metrics.judge:PromptFollowingDrag")
METRICS.register("cp_drag", "tvbench.metrics.judge:ConceptPreservationDrag")

# Column order of the paper's Table 1, the sub-task numbers, then the source-side and DragBench (Table F.5)
# metrics; others follow.
TABLE1_ORDER = ("ds_global_tgt", "ds_local_tgt", "lpips_tgt", "md_s", "md_d", "pf", "cp")
SUBTASK_ORDER = ("magnitude_rho", "magnitude_order", "semantic_acc")
COLUMN_ORDER = TABLE1_ORDER + SUBTASK_ORDER + ("ds_local_src", "dragbench_md", "dragbench_md_dift", "dragbench_if")
IMAGE_MODELS = frozenset({"dino", "lpips"})


def column_order(names) -> list[str]:
    """Metric names in table order: the known ones in :data:`COLUMN_ORDER`, then the others as given."""
    names = list(names)
    return [name for name in COLUMN_ORDER if name in names] + [name for name in names if name not in COLUMN_ORDER]


def get_metric(name: str) -> Metric:
    return METRICS.load(name)()


def default_metrics() -> list[str]:
    """Every metric computable from images alone (judge metrics need a server, so they are opt-in)."""
    return [name for name in METRICS.names() if METRICS.load(name).models <= IMAGE_MODELS]


__all__ = ["COLUMN_ORDER", "ERROR", "METRICS", "MISSING", "NOT_APPLICABLE", "OK", "REFUSED", "STATUSES",
           "SUBTASK_ORDER", "TABLE1_ORDER", "UNPARSEABLE", "Metric", "MetricResult", "column_order", "default_metrics",
           "get_metric"]
