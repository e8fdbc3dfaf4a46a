"""The regression gate: fail when a score is worse than a committed baseline beyond a tolerance.

Compares two scoring summaries method by method and metric by metric, direction-aware (a higher LPIPS is
worse, a higher DINO score is better). It refuses to compare scores of different benchmarks or made by
different networks, and fails when a method, a metric or coverage went missing. ``two_sided`` also fails
on changes for the better, which is how the repository's own CI detects any drift in metric code.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvbench.errors import ConfigError

DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Finding:
    method: str
    metric: str
    baseline: float | None
    current: float | None
    passed: bool
    message: str


def parse_tolerances(items: list[str] | None, known_metrics: set[str]) -> tuple[float, dict[str, float]]:
    """``["0.01", "lpips_tgt=0.005"]`` -> (default, per-metric)."""
    default, per_metric = DEFAULT_TOLERANCE, {}
    for item in items or []:
        name, sep, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"--tolerance {item!r}: expected METRIC=VALUE or VALUE") from None
        if number < 0:
            raise ConfigError(f"--tolerance {item!r}: must be >= 0")
        if not sep:
            default = number
        elif name not in known_metrics:
            raise ConfigError(f"--tolerance {item!r}: the baseline has no metric {name!r} "
                              f"(it has {', '.join(sorted(known_metrics))})")
        else:
            per_metric[name] = number
    return default, per_metric


def _compare_identity(current: dict, baseline: dict) -> list[Finding]:
    findings = []
    if current.get("benchmark", {}).get("hash") != baseline.get("benchmark", {}).get("hash"):
        findings.append(Finding("*", "benchmark", None, None, False,
                                f"benchmark differs: baseline {baseline.get('benchmark', {}).get('hash')}, "
                                f"scores {current.get('benchmark', {}).get('hash')}"))
    base_models = baseline.get("scorer", {}).get("models")
    models = current.get("scorer", {}).get("models")
    if base_models != models:
        findings.append(Finding("*", "scorer", None, None, False,
                                f"scored with different networks: baseline {base_models}, scores {models}"))
    return findings


def _compare_metric(method: str, metric: str, base: dict, cur: dict | None, higher_is_better: bool,
                    tolerance: float, two_sided: bool, headline: str = "mean") -> Finding:
    base_mean = base.get(headline)
    if cur is None:
        return Finding(method, metric, base_mean, None, False, "metric missing from the scores")
    mean = cur.get(headline)
    if (cur.get("coverage") or 0) < (base.get("coverage") or 0) - 1e-12:
        return Finding(method, metric, base_mean, mean, False,
                       f"coverage fell from {base.get('n')}/{base.get('applicable')} "
                       f"to {cur.get('n')}/{cur.get('applicable')}")
    if base_mean is None or mean is None:
        same = base_mean is None and mean is None
        return Finding(method, metric, base_mean, mean, same, "no value on both sides" if same else "value missing")
    worse_by = (base_mean - mean) if higher_is_better else (mean - base_mean)
    direction = "higher is better" if higher_is_better else "lower is better"
    if worse_by > tolerance:
        return Finding(method, metric, base_mean, mean, False,
                       f"worse by {worse_by:.6g} > tolerance {tolerance:g} ({direction})")
    if two_sided and -worse_by > tolerance:
        return Finding(method, metric, base_mean, mean, False,
                       f"changed (better by {-worse_by:.6g} > tolerance {tolerance:g}); "
                       "update the baseline if intended")
    return Finding(method, metric, base_mean, mean, True, f"within {tolerance:g}")


def run_gate(current: dict, baseline: dict, tolerances: list[str] | None = None,
             two_sided: bool = False) -> list[Finding]:
    """Every comparison the gate made; the gate passes when all findings passed."""
    metrics = baseline.get("metrics", {})
    default, per_metric = parse_tolerances(tolerances, set(metrics))
    findings = _compare_identity(current, baseline)
    for method, base_info in baseline.get("methods", {}).items():
        cur_info = current.get("methods", {}).get(method)
        if cur_info is None:
            findings.append(Finding(method, "*", None, None, False, "method missing from the scores"))
            continue
        for metric, base in base_info.get("metrics", {}).items():
            higher = bool(metrics.get(metric, {}).get("higher_is_better", True))
            headline = metrics.get(metric, {}).get("headline", "mean")  # the statistic the tables show
            findings.append(_compare_metric(method, metric, base, cur_info.get("metrics", {}).get(metric), higher,
                                            per_metric.get(metric, default), two_sided, headline))
    return findings
