"""The sub-task metrics in the registry: declared like every metric, applicable only to their groups."""

from __future__ import annotations

import os
import subprocess
import sys

from tvbench.cases.case import Case, ImageRef
from tvbench.metrics import METRICS, default_metrics, get_metric

SUBTASK_METRICS = ("magnitude_rho", "magnitude_order", "semantic_acc")


def case(**fields) -> Case:
    image = ImageRef(label="x", data=b"")
    return Case(id="c", source=image, target=image, points=((1.0, 1.0, 5.0, 1.0),), **fields)


def test_declared_with_direction_range_and_group_statistic():
    for name in SUBTASK_METRICS:
        declared = get_metric(name).describe()
        assert declared["higher_is_better"] is True and name in default_metrics()
        assert declared["range"] == ([-1.0, 1.0] if name == "magnitude_rho" else [0.0, 1.0])
    assert get_metric("magnitude_rho").describe()["group_statistic"] == "spearman"
    assert get_metric("magnitude_rho").describe()["headline"] == "group_mean"
    assert get_metric("semantic_acc").describe()["headline"] == "group_mean"  # a statistic per group (18.1)
    assert get_metric("semantic_acc").describe()["group_statistic"] == "mean"
    listing = subprocess.run([sys.executable, "-m", "tvbench", "ls", "metrics"], capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": "200"})
    assert all(name in listing.stdout for name in SUBTASK_METRICS), listing.stdout + listing.stderr


def test_applicable_only_to_their_groups():
    magnitude, semantic = get_metric("magnitude_rho"), get_metric("semantic_acc")
    assert magnitude.not_applicable_reason(case(subtask="magnitude", group="g")) is None
    assert semantic.not_applicable_reason(case(subtask="semantic", group="g")) is None
    for other in (case(subtask="real"), case(subtask="magnitude"), case(subtask="semantic", group="g")):
        assert magnitude.not_applicable_reason(other) is not None
    assert semantic.not_applicable_reason(case(subtask="magnitude", group="g")) is not None
    assert set(SUBTASK_METRICS) <= set(METRICS.names())
