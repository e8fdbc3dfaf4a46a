"""Bootstrap confidence intervals of a headline statistic, resampling the units it is computed from.

A headline statistic is a weighted mean over units: cases with weight 1 (``mean``), cases weighted by their
number of points (``pooled_mean``, DragBench's MD: resampled by case, never by point, since a case's points are
not independent), or groups (``group_mean`` of the sub-task metrics). A judge metric graded K > 1 times carries
each unit's K per-repeat values; each bootstrap replicate then redraws the cases and, within each drawn case, K
repeats with replacement (a two-stage bootstrap), so the interval holds both the sampling of cases and the judge's
spread over repeats.

Intervals are percentile or BCa (bias-corrected and accelerated; Efron 1987, "Better bootstrap confidence
intervals", JASA 82:171-185), seeded, so a summary is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from tvbench.errors import ConfigError

CI_METHODS = ("percentile", "bca")
# BCa by default: benchmarks/coverage_bench.py measured it closer to nominal than percentile for skewed and 0/1
# data (n = 10: 0.83 vs 0.80 lognormal, n = 23: 0.88 vs 0.86) and equal elsewhere.
DEFAULT_METHOD = "bca"
DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
# The fewest units an interval is shown for. benchmarks/coverage_bench.py measures the coverage of nominal 95%
# intervals by number of units and data shape; below this the value is shown with its n and no interval.
MIN_UNITS = 10
_BLOCK_VALUES = 4_000_000  # resampled values held at once: bounds memory on large benchmarks


@dataclass(frozen=True)
class BootstrapSettings:
    """What makes a bootstrap interval reproducible; each command's settings add their own (a test's alpha, a
    minimum of units) to these."""

    level: float = DEFAULT_LEVEL
    resamples: int = DEFAULT_RESAMPLES
    method: str = DEFAULT_METHOD
    seed: int = DEFAULT_SEED

    def describe(self) -> dict:
        return {"level": self.level, "resamples": self.resamples, "method": self.method, "seed": self.seed}


@dataclass(frozen=True)
class Units:
    """The units a headline statistic averages: ``values`` (n,), ``weights`` (n,), optional ``repeats`` (n, K)
    (a judge metric's per-repeat values; ``values`` is then their mean), ``ids`` naming each unit (for pairing)."""

    values: np.ndarray
    weights: np.ndarray
    ids: tuple[str, ...] = ()
    repeats: np.ndarray | None = None

    @classmethod
    def of(cls, values, weights=None, ids=(), repeats=None) -> "Units":
        values = np.asarray(values, dtype=np.float64)
        weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
        repeats = None if repeats is None else np.asarray(repeats, dtype=np.float64)
        return cls(values, weights, tuple(ids), repeats)

    def __len__(self) -> int:
        return len(self.values)

    def statistic(self) -> float | None:
        total = float(self.weights.sum())
        return float(self.values @ self.weights / total) if len(self) and total > 0 else None

    def take(self, index) -> "Units":
        index = np.asarray(index, dtype=np.int64)
        return Units(self.values[index], self.weights[index], tuple(self.ids[i] for i in index) if self.ids else (),
                     None if self.repeats is None else self.repeats[index])


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    method: str
    resamples: int
    seed: int
    units: int
    repeats: int | None = None  # judge repeats resampled within each unit (two-stage bootstrap)
    notes: list[str] = field(default_factory=list)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def to_dict(self) -> dict:
        out = {"low": self.low, "high": self.high, "level": self.level, "method": self.method,
               "resamples": self.resamples, "seed": self.seed, "units": self.units,
               **({"repeats": self.repeats} if self.repeats else {})}
        return {**out, "notes": self.notes} if self.notes else out


def resampled_values(units: Units, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The units' values for a block of resampled indices ``(B, n)``; with repeats, each drawn unit's K repeats
    redrawn with replacement and averaged."""
    if units.repeats is None:
        return units.values[index]
    k = units.repeats.shape[1]
    picks = rng.integers(0, k, size=(*index.shape, k))
    return units.repeats[index[..., None], picks].mean(axis=-1)


def _weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    totals = weights.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, (values * weights).sum(axis=-1) / np.where(totals > 0, totals, 1.0), np.nan)


def bootstrap_distribution(samples: list[Units], resamples: int, seed: int, combine=None) -> np.ndarray:
    """``resamples`` replicates of ``combine(stat_1, ..., stat_m)`` where the m aligned unit sets (same units,
    e.g. two methods on the cases both have) are resampled with the same indices (a paired bootstrap).
    Default ``combine``: the first set's statistic."""
    rng = np.random.default_rng(seed)
    n = len(samples[0])
    combine = combine or (lambda first, *_: first)
    block = max(1, _BLOCK_VALUES // max(1, n * max((u.repeats.shape[1] if u.repeats is not None else 1)
                                                   for u in samples)))
    out = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        index = rng.integers(0, n, size=(size, n))
        stats = [resampled_values(u, index, rng).mean(axis=-1) if np.all(u.weights == 1.0)
                 else _weighted(resampled_values(u, index, rng), u.weights[index]) for u in samples]
        out[start:start + size] = combine(*stats)
    return out


def _jackknife(samples: list[Units], combine) -> np.ndarray:
    """Leave-one-unit-out values of the statistic (for BCa's acceleration)."""
    n = len(samples[0])
    keep = ~np.eye(n, dtype=bool)
    stats = []
    for u in samples:
        values = np.broadcast_to(u.values, (n, n))[keep].reshape(n, n - 1)
        weights = np.broadcast_to(u.weights, (n, n))[keep].reshape(n, n - 1)
        stats.append(_weighted(values, weights))
    return combine(*stats)


def interval_from(distribution: np.ndarray, estimate: float, level: float, method: str,
                  jackknife: np.ndarray | None = None) -> tuple[float, float, list[str]]:
    """The (low, high) interval at ``level`` from a bootstrap distribution (percentile, or BCa with jackknife)."""
    notes: list[str] = []
    finite = distribution[np.isfinite(distribution)]
    alpha = (1.0 - level) / 2.0
    quantiles = np.array([alpha, 1.0 - alpha])
    if method == "bca" and jackknife is not None and np.ptp(finite) > 0:
        normal = NormalDist()
        below = (np.sum(finite < estimate) + 0.5 * np.sum(finite == estimate)) / len(finite)
        below = min(max(below, 1.0 / (len(finite) + 1)), len(finite) / (len(finite) + 1))
        z0 = normal.inv_cdf(below)
        spread = jackknife.mean() - jackknife
        denominator = 6.0 * float(np.sum(spread ** 2)) ** 1.5
        acceleration = float(np.sum(spread ** 3)) / denominator if denominator > 0 else 0.0
        z = np.array([normal.inv_cdf(q) for q in quantiles])
        quantiles = np.array([normal.cdf(z0 + (z0 + zq) / (1.0 - acceleration * (z0 + zq))) for zq in z])
    elif method == "bca":
        notes.append("BCa needs a spread; percentile used")
    low, high = np.quantile(finite, quantiles)
    return float(low), float(high), notes


def confidence_interval(units: Units, level: float = DEFAULT_LEVEL, resamples: int = DEFAULT_RESAMPLES,
                        method: str = DEFAULT_METHOD, seed: int = DEFAULT_SEED,
                        min_units: int = MIN_UNITS) -> Interval | None:
    """The interval of ``units.statistic()``; None for fewer than ``min_units`` units (too few for an interval
    that holds what it claims: see :data:`MIN_UNITS`)."""
    check_settings(level, resamples, method)
    estimate = units.statistic()
    if len(units) < max(2, min_units) or estimate is None:
        return None
    distribution = bootstrap_distribution([units], resamples, seed)
    jackknife = _jackknife([units], lambda first: first) if method == "bca" else None
    low, high, notes = interval_from(distribution, estimate, level, method, jackknife)
    repeats = units.repeats.shape[1] if units.repeats is not None else None
    return Interval(low, high, level, method, resamples, seed, len(units), repeats, notes)


def paired_difference(a: Units, b: Units, level: float = DEFAULT_LEVEL, resamples: int = DEFAULT_RESAMPLES,
                      method: str = DEFAULT_METHOD, seed: int = DEFAULT_SEED,
                      min_units: int = MIN_UNITS) -> tuple[float | None, Interval | None]:
    """``statistic(a) - statistic(b)`` on aligned units (same ids, same order) and its paired-bootstrap interval
    (None below ``min_units`` pairs)."""
    check_settings(level, resamples, method)
    if len(a) != len(b):
        raise ValueError("paired units must be aligned")
    sa, sb = a.statistic(), b.statistic()
    if sa is None or sb is None:
        return None, None
    difference = sa - sb
    if len(a) < max(2, min_units):
        return difference, None
    distribution = bootstrap_distribution([a, b], resamples, seed, combine=lambda x, y: x - y)
    jackknife = _jackknife([a, b], lambda x, y: x - y) if method == "bca" else None
    low, high, notes = interval_from(distribution, difference, level, method, jackknife)
    repeats = a.repeats.shape[1] if a.repeats is not None else None
    return difference, Interval(low, high, level, method, resamples, seed, len(a), repeats, notes)


def check_settings(level: float, resamples: int, method: str) -> None:
    if not 0.0 < level < 1.0:
        raise ConfigError(f"--ci {level}: the confidence level must lie strictly between 0 and 1 (e.g. 0.95)")
    if resamples < 100:
        raise ConfigError(f"--bootstrap {resamples}: use at least 100 resamples (10000 is the default)")
    if method not in CI_METHODS:
        raise ConfigError(f"--ci-method {method!r}: choose one of {', '.join(CI_METHODS)}")
