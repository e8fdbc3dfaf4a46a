"""Bootstrap intervals (coverage of a known mean, pooled means, judge repeats), the Wilcoxon test against scipy,
Holm's correction, and the sub-task group statistics."""

from __future__ import annotations

import numpy as np
import pytest

from tvbench.analysis.bootstrap import Units, confidence_interval, paired_difference
from tvbench.analysis.paired import holm, wilcoxon_p
from tvbench.analysis.subtasks import fully_ordered, group_outcomes, spearman
from tvbench.errors import ConfigError


@pytest.mark.parametrize("method,distribution", [("percentile", "normal"), ("bca", "exponential")])
def test_interval_of_a_mean_covers_the_true_value_at_about_the_nominal_rate(method, distribution):
    trials, covered = 200, 0
    for trial in range(trials):
        rng = np.random.default_rng(10_000 + trial)
        sample = rng.normal(0.5, 0.2, 40) if distribution == "normal" else rng.exponential(1.0, 40)
        interval = confidence_interval(Units.of(sample), level=0.9, resamples=1000, method=method, seed=trial)
        covered += interval.low <= (0.5 if distribution == "normal" else 1.0) <= interval.high
    assert 0.84 <= covered / trials <= 0.96  # nominal 0.90; 200 trials: binomial sd 0.021


def test_intervals_are_seeded_and_need_two_units():
    units = Units.of(np.random.default_rng(0).normal(size=30))
    assert confidence_interval(units, seed=3) == confidence_interval(units, seed=3)
    assert confidence_interval(units, seed=3) != confidence_interval(units, seed=4)
    assert confidence_interval(Units.of([0.7])) is None
    with pytest.raises(ConfigError, match="--ci"):
        confidence_interval(units, level=95)
    with pytest.raises(ConfigError, match="--ci-method"):
        confidence_interval(units, method="student")


def test_pooled_mean_is_resampled_by_case():
    # one case with many points and a large error dominates the pooled mean; resampling whole cases keeps that
    values, points = np.array([1.0, 2.0, 30.0]), np.array([1, 1, 8])
    units = Units.of(values, points)
    assert units.statistic() == pytest.approx((1 + 2 + 240) / 10)
    interval = confidence_interval(units, resamples=2000, min_units=2)  # the mechanics, below the display minimum
    assert interval.units == 3 and interval.low < units.statistic() < interval.high
    assert interval.low == pytest.approx(1.0) or interval.low < 5  # some resamples hold no large case at all


def test_judge_repeats_widen_the_interval():
    rng = np.random.default_rng(1)
    agree = np.repeat(rng.integers(0, 5, (60, 1)) / 4.0, 3, axis=1)  # every repeat gives the same grade
    noisy = agree + rng.choice([-0.5, 0.0, 0.5], agree.shape)
    noisy -= noisy.mean(axis=1, keepdims=True) - agree.mean(axis=1, keepdims=True)  # same case means as `agree`
    cases_only = confidence_interval(Units.of(agree.mean(axis=1)), resamples=4000, seed=5)
    with_repeats = confidence_interval(Units.of(noisy.mean(axis=1), repeats=noisy), resamples=4000, seed=5)
    same = confidence_interval(Units.of(agree.mean(axis=1), repeats=agree), resamples=4000, seed=5)
    assert same.high - same.low == pytest.approx(cases_only.high - cases_only.low, rel=0.1)
    assert with_repeats.high - with_repeats.low > 1.08 * (cases_only.high - cases_only.low)


def test_paired_difference_of_a_constant_shift_is_exact():
    a = Units.of(np.linspace(0, 1, 25), ids=[f"c{k}" for k in range(25)])
    b = Units.of(a.values - 0.1, ids=a.ids)
    difference, interval = paired_difference(a, b, resamples=500)
    assert difference == pytest.approx(0.1)
    assert (interval.low, interval.high) == pytest.approx((0.1, 0.1))


def test_wilcoxon_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for trial in range(36):  # scipy enumerates sign flips slowly: few of the small tied samples
        n = int(rng.integers(2, 10)) if trial % 6 in (1, 2) else int(rng.integers(14, 70))
        d = rng.normal(0.3, 1.0, n)
        if trial % 3 == 1:
            d = np.round(d, 1)  # ties (and zeros)
        elif trial % 3 == 2:
            d[: n // 4] = 0.0  # zeros
        if not np.any(d):
            continue
        assert wilcoxon_p(d) == pytest.approx(stats.wilcoxon(d).pvalue, abs=1e-12), (trial, d)
    assert wilcoxon_p([0.0, 0.0]) is None


def test_holm():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None], nan_ok=True)
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_group_statistics():
    assert spearman([1, 2, 3], [0.1, 0.3, 0.2]) == (0.5, None)
    assert spearman([1, 2, 3], [5, 5, 5])[0] is None  # nothing moved: undefined, never 0
    assert fully_ordered([3, 1, 2], [0.3, 0.1, 0.2]) == (1.0, None)
    assert fully_ordered([1, 2, 3], [0.1, 0.1, 0.3]) == (0.0, None)  # a tie is not the requested order
    rows = [{"group": "g", "requested": r, "value": v} for r, v in ((1, 0.1), (2, 0.2), (3, 0.2))] + \
           [{"group": "h", "requested": r, "value": 0.5} for r in (1, 2)]
    outcomes = group_outcomes(rows, "spearman")
    assert outcomes["g"]["value"] == pytest.approx(0.8660254) and outcomes["g"]["n"] == 3
    assert outcomes["h"] == {"value": None, "status": "undefined", "n": 2,
                             "detail": "the achieved displacement is the same for every case of the group "
                                       "(nothing to rank)"}
