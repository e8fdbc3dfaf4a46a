"""``tvbench report`` (leaderboards) and ``tvbench gate`` (the CI regression gate)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from tvbench.cli.app import app, console, say


@app.command(short_help="Print or write the leaderboard.")
def report(
    results: Path = typer.Argument(Path("results"), metavar="RESULTS",
                                    help="Results root holding summary.json, or the file itself."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown, latex, csv, json or html."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Print the leaderboard (best in bold, second underlined, coverage where partial)."""
    from tvbench.io import atomic_write_text
    from tvbench.report import build_leaderboard, load_summary, render

    text = render(build_leaderboard(load_summary(results)), fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)
        say(f"wrote {output}")


@app.command(short_help="Exit 1 when a score is worse than a baseline.")
def gate(
    scores: Path = typer.Argument(..., metavar="SCORES",
                                  help="summary.json (or the results folder holding it) to check."),
    baseline: Path = typer.Option(..., "--baseline", help="The summary.json to compare against."),
    tolerance: list[str] = typer.Option([], metavar="METRIC=VALUE",
                                        help="METRIC=VALUE, or VALUE for every metric (default 1e-4)."),
    two_sided: bool = typer.Option(False, help="Also fail when a score got better (detects any drift)."),
) -> None:
    """Exit 1 when any method's metric is worse than the baseline beyond tolerance."""
    from tvbench.gate import run_gate
    from tvbench.report import load_summary

    findings = run_gate(load_summary(scores), load_summary(baseline), tolerance, two_sided)
    table = Table("method", "metric", "baseline", "current", "verdict", title="tvbench gate")
    for f in findings:
        fmt = lambda v: "–" if v is None else f"{v:.6f}"  # noqa: E731
        verdict = Text("pass", style="green") if f.passed else Text.assemble(("FAIL", "red"), f" {f.message}")
        table.add_row(Text(f.method), Text(f.metric), fmt(f.baseline), fmt(f.current), verdict)  # names: no markup
    console.print(table)
    failures = [f for f in findings if not f.passed]
    for f in failures:
        say(f"FAIL {f.method} {f.metric}: {f.message}")
    if failures:
        raise typer.Exit(1)
    say(f"gate passed: {len(findings)} comparisons")
