"""Comparing two methods of a results folder (what ``tvbench compare`` prints)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from tvbench.analysis.bootstrap import MIN_UNITS
from tvbench.analysis.frames import load_scores, read_summary
from tvbench.analysis.paired import Settings, compare_methods
from tvbench.errors import ConfigError
from tvbench.metrics import column_order


@dataclass
class Comparison:
    a: str
    b: str
    settings: Settings
    table: pd.DataFrame  # paired.COMPARE_COLUMNS
    benchmark: dict


def compare_results(results: Path | str, a: str, b: str, metrics: list[str] | None = None,
                    settings: Settings = Settings()) -> Comparison:
    """The paired comparison of methods ``a`` and ``b`` over every metric both were scored on (or ``metrics``)."""
    summary = read_summary(results)
    methods = summary.get("methods", {})
    for name in (a, b):
        if name not in methods:
            raise ConfigError(f"--methods: no method {name!r} in {results} (it has {', '.join(methods) or 'none'})")
    declared = summary.get("metrics", {})
    unknown = [m for m in metrics or [] if m not in declared]
    if unknown:
        raise ConfigError(f"--metrics: {', '.join(unknown)} not scored in {results} (it has {', '.join(declared)})")
    chosen = {name: declared[name] for name in (metrics or column_order(declared))
              if any(methods[m].get("metrics", {}).get(name, {}).get("applicable") for m in (a, b))}
    table = compare_methods(load_scores(results), chosen, a, b, settings)
    return Comparison(a, b, settings, table, summary.get("benchmark", {}))


def _number(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _p(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"


def verdict(row, a: str, b: str) -> str:
    """The test's verdict, with what qualifies it; the note alone where there was no test."""
    if row["p_value"] is None or (isinstance(row["p_value"], float) and math.isnan(row["p_value"])):
        return row["note"] or "no test"
    said = f"{row['better']} better" if row["significant"] else "no significant difference"
    return f"{said} ({row['note']})" if row["note"] else said


def _plain(value):
    """A JSON value at full precision (numpy scalars to Python, NaN to null)."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def render_comparison(comparison: Comparison, fmt: str = "markdown") -> str:
    table, a, b, settings = comparison.table, comparison.a, comparison.b, comparison.settings
    if fmt == "csv":
        return table.to_csv(index=False, lineterminator="\n")
    if fmt == "json":
        records = [{key: _plain(value) for key, value in record.items()} for record in table.to_dict("records")]
        return json.dumps({"a": a, "b": b, "benchmark": comparison.benchmark, "settings": settings.describe(),
                           "metrics": records}, indent=2) + "\n"
    level = f"{settings.level:.0%} CI"
    rows = [[r["label"] + (" ↑" if r["higher_is_better"] else " ↓"), r["units"], _number(r["a"]), _number(r["b"]),
             _number(r["difference"]) + (f" [{_number(r['ci_low'])}, {_number(r['ci_high'])}]"
                                         if _number(r["ci_low"]) != "–" else ""), _p(r["p_value"]),
             _p(r["p_holm"]), verdict(r, a, b)] for r in table.to_dict("records")]
    headers = ["metric", "units", a, b, f"{a} − {b} [{level}]", "p (Wilcoxon)", "p (Holm)", "verdict"]
    text = tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True)
    footer = (f"Paired over the cases both methods have (groups for the sub-task metrics, each scored on every "
              f"case); {settings.resamples} bootstrap resamples ({settings.method}, seed {settings.seed}; an interval "
              f"needs {MIN_UNITS} units or more); Wilcoxon signed-rank test, "
              f"Holm-corrected across the {table['p_value'].notna().sum()} metrics tested; significant when "
              f"p (Holm) < {settings.alpha}.")
    return f"{text}\n\n{footer}\n"
