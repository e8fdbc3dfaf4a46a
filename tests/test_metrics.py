"""Metric declarations, formulas on precomputed features, and the in-memory image API."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import textured
from PIL import Image

from tvbench.metrics import METRICS, NOT_APPLICABLE, OK, default_metrics, get_metric
from tvbench.metrics.functional import cosine, ds_global
from tvbench.scoring import Scorer, ScoringConfig, score_images


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_declares_what_it_is(name):
    metric = get_metric(name)
    assert metric.label and metric.latex and isinstance(metric.higher_is_better, bool)
    low, high = metric.range
    assert low < high and metric.models and metric.reference
    description = metric.describe()
    assert all(bound is None or math.isfinite(bound) for bound in description["range"])


def test_default_metrics_are_the_image_metrics():
    assert set(default_metrics()) >= {"ds_global_tgt", "lpips_tgt"}


def test_ds_global_known_answers():
    v = torch.tensor([1.0, 2.0, 3.0])
    assert ds_global(v, v) == 1.0
    assert ds_global(v, 5 * v) == pytest.approx(1.0, abs=1e-15)
    assert ds_global(v, -v) == pytest.approx(-1.0, abs=1e-15)
    assert ds_global(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])) == 0.0


def test_cosine_matches_an_independent_float64_implementation():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.standard_normal(384).astype(np.float32), rng.standard_normal(384).astype(np.float32)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        expected = float(np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64)))
        assert cosine(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, abs=1e-12)


@pytest.fixture(scope="module")
def scorer():
    return Scorer(ScoringConfig(smoke=True, resolution=128, match_resolution=128, device="cpu", feature_cache=None))


def test_oracle_edit_scores_perfectly_and_identity_does_not(scorer):
    source = Image.fromarray(textured(128, 96, seed=1))
    target = Image.fromarray(np.roll(np.asarray(source), 12, axis=1))
    points = [(40, 50, 52, 50)]
    perfect = scorer.score_images(target, target=target, source=source, points=points)
    assert perfect["ds_global_tgt"].value == 1.0 and perfect["lpips_tgt"].value == 0.0
    assert perfect["ds_local_tgt"].value == pytest.approx(1.0, abs=1e-12)
    unchanged = scorer.score_images(source, target=target, source=source, points=points)
    assert unchanged["ds_global_tgt"].value < 1.0 and unchanged["lpips_tgt"].value > 0.0
    assert unchanged["ds_local_src"].value == pytest.approx(1.0, abs=1e-12)  # the source is left as it was
    assert unchanged["md_s"].value == pytest.approx(12 / 128)  # the handle's feature is found where it was
    assert unchanged["dragbench_md"].value == pytest.approx(12.0) and unchanged["dragbench_if"].value == 1.0
    not_scored = {name for name, r in unchanged.items() if r.status != OK}  # no dense points, no sub-task group
    assert not_scored == {"md_d", "magnitude_rho", "magnitude_order", "semantic_acc"}


def test_without_target_the_target_metrics_say_not_applicable(scorer):
    image = Image.fromarray(textured(64, 64, seed=2))
    results = scorer.score_images(image, source=image)
    for name in ("ds_global_tgt", "ds_local_tgt", "lpips_tgt"):
        assert results[name].status == NOT_APPLICABLE and "no target" in results[name].detail
    assert all(r.value is None for r in results.values() if r.status == NOT_APPLICABLE)
    assert results["dragbench_if"].status == OK  # DragBench's protocol needs no target


def test_edits_of_another_size_are_resized(scorer):
    source = Image.fromarray(textured(128, 96, seed=4))
    small = source.resize((64, 48), Image.BICUBIC)
    results = scorer.score_images(small, target=source, source=source)
    assert results["ds_global_tgt"].status == OK and results["lpips_tgt"].value > 0


def test_module_level_api_loads_networks_itself():
    image = Image.fromarray(textured(64, 64, seed=5))
    results = score_images(image, target=image, metrics=["ds_global_tgt"], smoke=True, resolution=64, device="cpu")
    assert list(results) == ["ds_global_tgt"] and results["ds_global_tgt"].value == 1.0
