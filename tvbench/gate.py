"""The regression gate: fail when a score is worse than a committed baseline beyond a tolerance.

Compares two scoring summaries method by method and metric by metric, direction-aware (a higher LPIPS is
worse, a higher DINO score is better). It refuses to compare scores of different benchmarks, made by different
networks, or judged by servers that say they are different (:func:`tvbench.judge.identity.identity_mismatch`), and
fails when a method, a metric or coverage went missing. ``two_sided`` also fails on changes for the better, which
is how the repository's own CI detects any drift in metric code.

With a published table instead of a baseline (:func:`run_reference_gate`, ``tvbench gate --reference paper:f5``)
it fails every cell present in both whose |tvbench - published| exceeds the tolerance, in either direction: a port
that drifts away from the published number, better or worse.
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


def parse_tolerances(items: list[str] | None, known_metrics: set[str],
                     owner: str = "the baseline") -> tuple[float, dict[str, float]]:
    """``["0.01", "lpips_tgt=0.005"]`` -> (default, per-metric); ``owner`` names what holds ``known_metrics``."""
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
            raise ConfigError(f"--tolerance {item!r}: {owner} has no metric {name!r} "
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
    from tvbench.judge.identity import identity_mismatch  # light: no client, no cache

    judged = identity_mismatch(baseline, current, names=("baseline", "scores"))
    if judged is not None:
        findings.append(Finding("*", "judge", None, None, False, judged))
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


def check_canaries(current: dict, baseline: dict | None, max_drift: float) -> list[Finding]:
    """``--max-canary-drift``: the canary grades (:mod:`tvbench.judge.canaries`) must stay within ``max_drift``
    (mean absolute difference, grades 0-4) of the expected grades, of the folder's previous run and of the
    baseline's canaries. A summary without canaries fails: the drift cannot be checked."""
    from tvbench.judge.canaries import canary_drift

    canaries = (current.get("judge") or {}).get("canaries")
    if not canaries:
        return [Finding("*", "canaries", None, None, False,
                        "no canary judgments recorded in the scores (no judge phase, or scored before canaries)")]
    drift = canaries.get("drift") or {}
    findings = []
    checks = [("expected grades", drift.get("vs_expected")), ("the folder's previous run", drift.get("vs_previous"))]
    if baseline is not None and (baseline.get("judge") or {}).get("canaries"):
        checks.append(("the baseline", canary_drift(current, baseline)[0]))
    for against, value in checks:
        if value is None:
            continue
        passed = value <= max_drift + 1e-12
        message = (f"canary drift vs {against}: mean |grade difference| {value:.3g} "
                   f"{'<=' if passed else '>'} {max_drift:g}")
        findings.append(Finding("*", "canaries", None, value, passed, message))
    if drift.get("answered", 0) < drift.get("n", 0):
        findings.append(Finding("*", "canaries", None, None, False,
                                f"only {drift.get('answered')} of {drift.get('n')} canary judgments were answered"))
    return findings


def run_gate(current: dict, baseline: dict, tolerances: list[str] | None = None,
             two_sided: bool = False, max_canary_drift: float | None = None) -> list[Finding]:
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
    if max_canary_drift is not None:
        findings += check_canaries(current, baseline, max_canary_drift)
    return findings


def run_reference_gate(current: dict, reference, tolerances: list[str] | None = None) -> list[Finding]:
    """Every cell (method, metric) of ``reference`` (a :class:`tvbench.reference.Reference`) that the scores also
    have, checked as |tvbench - published| <= tolerance.

    Published numbers are rounded (0.88, 32.13), so there is no default tolerance: every compared metric needs
    one (``VALUE`` for all, ``METRIC=VALUE`` for one). No cell in common fails: a gate that compared nothing must
    not pass.
    """
    from tvbench.reference import compare_to_reference

    rows = compare_to_reference(current, reference)
    metrics = set(reference.metric_ids())
    default, per_metric = parse_tolerances(tolerances, metrics, owner=f"{reference.table} ({reference.id})")
    has_default = any("=" not in item for item in tolerances or [])
    missing = sorted({row["metric"] for row in rows if row["metric"] not in per_metric and not has_default})
    if missing:
        raise ConfigError(f"--reference needs a tolerance for {', '.join(missing)} (--tolerance VALUE, or "
                          f"METRIC=VALUE): published numbers are rounded, so the default {DEFAULT_TOLERANCE:g} "
                          "would fail them all")
    if not rows:
        methods = ", ".join(sorted((current.get("methods") or {}))) or "none"
        wanted = ", ".join(m.tvbench for m in reference.methods if m.tvbench)
        return [Finding("*", "*", None, None, False,
                        f"no cell in common with {reference.table}: the scores have methods {methods}; the table "
                        f"has {wanted} with metrics {', '.join(reference.metric_ids())}")]
    findings = []
    for row in rows:
        tolerance = per_metric.get(row["metric"], default)
        published, value = row["published"], row["tvbench"]
        if value is None:
            findings.append(Finding(row["method"], row["metric"], published, None, False,
                                    "no tvbench value (no case could be scored)"))
            continue
        off = abs(value - published)
        slack = 1e-12 * max(1.0, abs(published))  # |0.89 - 0.88| is 0.010000000000000009 in floating point
        if off > tolerance + slack:
            findings.append(Finding(row["method"], row["metric"], published, value, False,
                                    f"|{value:.6g} - {row['published_printed']}| = {off:.6g} > tolerance "
                                    f"{tolerance:g} ({reference.table})"))
        else:
            findings.append(Finding(row["method"], row["metric"], published, value, True, f"within {tolerance:g}"))
    return findings
