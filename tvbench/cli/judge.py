"""``tvbench judge agreement``: how the MLLM judge agrees with people's ratings of the same edits."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tvbench.cli.app import app, emit

judge_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, short_help="Check the MLLM judge (PF, CP).",
                        help="The MLLM judge of PF and CP: its agreement with people.")
app.add_typer(judge_app, name="judge")

FORMATS = ("markdown", "json", "csv")


@judge_app.command("agreement", short_help="Agreement of the judge with human ratings.")
def agreement(
    ratings: Path = typer.Argument(..., metavar="RATINGS.csv",
                                   help="Human ratings: columns case, method, metric, rater, grade (0-4)."),
    results: Path = typer.Option(Path("results"), "--results", "-r",
                                 help="Results folder whose scores.jsonl holds the judge's grades."),
    alpha_level: str = typer.Option("ordinal", "--alpha-level",
                                    help="Krippendorff's alpha among the raters: ordinal, interval or nominal."),
    ci: float = typer.Option(0.95, "--ci", help="Confidence level of the bootstrap intervals."),
    bootstrap: int = typer.Option(10_000, "--bootstrap", help="Bootstrap resamples (of the rated items)."),
    ci_method: str = typer.Option("bca", "--ci-method", help="bca (default) or percentile."),
    seed: int = typer.Option(0, help="Seed of the resampling."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown, json or csv."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Spearman and Kendall tau-b between the judge's grades and the people's, exact and within-one agreement, per
    metric, and Krippendorff's alpha among the people where several rated; bootstrap intervals over the items."""
    from tvbench.errors import ConfigError
    from tvbench.judge.agreement import Settings, agreement_report, render_agreement

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    report = agreement_report(ratings, results, alpha_level, Settings(ci, bootstrap, ci_method, seed))
    emit(render_agreement(report, fmt), output)
