"""``tvbench compare``: are two methods' scores really different? Paired bootstrap and Wilcoxon, Holm-corrected."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from tvbench.cli.app import _split, app, check_choice

FORMATS = ("markdown", "csv", "json")


@app.command()
def compare(
    results: Path = typer.Argument(Path("results"), help="Results folder holding scores.jsonl and summary.json."),
    methods: str = typer.Option(..., "--methods", "-m", help="The two methods to compare: A,B (difference = A - B)."),
    metrics: Optional[str] = typer.Option(None, help="Comma-separated metrics (default: every metric both have)."),
    ci: float = typer.Option(0.95, "--ci", help="Confidence level of the interval of the difference."),
    bootstrap: int = typer.Option(10_000, "--bootstrap", help="Bootstrap resamples."),
    ci_method: str = typer.Option("bca", "--ci-method", help="bca (default) or percentile."),
    seed: int = typer.Option(0, help="Seed of the resampling."),
    alpha: float = typer.Option(0.05, help="Significance level after Holm's correction across metrics."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown, csv or json."),
) -> None:
    """Paired comparison of two methods on the cases both have: difference of the headline statistics with its
    paired-bootstrap interval, Wilcoxon signed-rank p-value, Holm-corrected across metrics."""
    from tvbench.errors import ConfigError

    names = _split(methods)
    if len(names) != 2 or names[0] == names[1]:
        raise ConfigError(f"--methods {methods!r}: name two different methods, e.g. --methods tps-warp,identity")
    check_choice("--format", fmt, FORMATS)
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"--alpha {alpha}: must lie strictly between 0 and 1")
    from tvbench.analysis.compare import compare_results, render_comparison
    from tvbench.analysis.paired import Settings

    table = compare_results(results, names[0], names[1], _split(metrics) or None,
                            Settings(ci, bootstrap, ci_method, seed, alpha))
    sys.stdout.write(render_comparison(table, fmt))
