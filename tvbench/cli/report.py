"""``tvbench report`` (leaderboards) and ``tvbench gate`` (the CI regression gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from tvbench.cli.app import app, check_choice, console, emit, say


@app.command(short_help="Print or write the leaderboard.")
def report(
    results: Path = typer.Argument(Path("results"), metavar="RESULTS",
                                    help="Results root holding summary.json, or the file itself."),
    fmt: str = typer.Option("markdown", "--format", "-f",
                            help="markdown, latex, csv, json, or html (the gallery: a folder, see --output)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write to this file instead of stdout (html: the gallery folder, "
                                               "default RESULTS/gallery)."),
    ci_style: str = typer.Option("pm", "--ci-style", help="Intervals as 'pm' (value ± half-width), 'bounds' "
                                                          "(value [low, high]) or 'none'."),
    ci: Optional[float] = typer.Option(None, "--ci", help="Recompute the intervals at this level from scores.jsonl "
                                                          "(default: those tvbench score recorded)."),
    bootstrap: Optional[int] = typer.Option(None, "--bootstrap", help="Recompute with this many resamples."),
    ci_method: Optional[str] = typer.Option(None, "--ci-method", help="Recompute with percentile or bca."),
    plots: bool = typer.Option(False, "--plots", help="Also write PNG and SVG plots under RESULTS/plots/."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Published numbers beside each cell, with the "
                                                                      "difference and whether tvbench's interval "
                                                                      "holds them: paper:table1, paper:f5, ... or a "
                                                                      "file in the same format."),
    rate: bool = typer.Option(False, "--rate", help="With --format html: also write rate.html beside the gallery, "
                                                    "where a person grades PF and CP blind (method names hidden, "
                                                    "shuffled) and saves a CSV for `tvbench judge agreement`."),
    rate_seed: int = typer.Option(0, "--rate-seed", help="Seed of the rating page's shuffled order."),
) -> None:
    """Print the leaderboard (best in bold, second underlined, intervals, ties, coverage where partial)."""
    from tvbench.report import RENDERERS, build_leaderboard, load_summary, render

    check_choice("--format", fmt, list(RENDERERS))
    if rate and fmt != "html":
        from tvbench.errors import ConfigError

        raise ConfigError("--rate writes a page beside the HTML gallery: use it with --format html")
    published = None
    if reference is not None:
        from tvbench.reference import load_reference

        published = load_reference(reference)  # a bad id or file is refused before anything is read or written
    summary = load_summary(results)
    if ci is not None or bootstrap is not None or ci_method is not None:
        summary = _recompute_uncertainty(results, summary, ci, bootstrap, ci_method)
    board = build_leaderboard(summary, ci_style, published)
    folder = results if results.is_dir() else results.parent
    if fmt == "html":
        from tvbench.report.gallery import GALLERY_FOLDER, write_gallery

        index = write_gallery(folder, output or folder / GALLERY_FOLDER, summary, board)
        say(f"wrote {index}")
        if rate:
            from tvbench.report.rating import write_rating_page

            say(f"wrote {write_rating_page(folder, index.parent, summary, rate_seed)}")
    else:
        emit(render(board, fmt), output)
    if plots:
        from tvbench.analysis.plots import PLOTS_FOLDER, write_plots

        written = write_plots(folder, summary)
        say(f"wrote {len(written)} plot files under {folder / PLOTS_FOLDER}")


def _recompute_uncertainty(results: Path, summary: dict, ci: float | None, bootstrap: int | None,
                           ci_method: str | None) -> dict:
    """The summary with intervals and ties recomputed from the rows beside it (nothing is written)."""
    from tvbench.analysis.frames import load_scores
    from tvbench.analysis.paired import Settings
    from tvbench.analysis.uncertainty import annotate

    recorded = summary.get("uncertainty") or {}
    default = Settings()
    settings = Settings(level=ci if ci is not None else recorded.get("level", default.level),
                        resamples=bootstrap if bootstrap is not None else recorded.get("resamples", default.resamples),
                        method=ci_method or recorded.get("method", default.method),
                        seed=recorded.get("seed", default.seed), alpha=recorded.get("alpha", default.alpha))
    return annotate(summary, load_scores(results), settings)


@app.command(short_help="Exit 1 when a score is worse than a baseline.")
def gate(
    scores: Path = typer.Argument(..., metavar="SCORES",
                                  help="summary.json (or the results folder holding it) to check."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="The summary.json to compare against."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Instead of a baseline, published numbers: "
                                                                      "paper:ID (e.g. paper:f5) or a reference file; "
                                                                      "fails when |tvbench - published| > tolerance."),
    tolerance: list[str] = typer.Option([], metavar="METRIC=VALUE",
                                        help="METRIC=VALUE, or VALUE for every metric (default 1e-4; with "
                                             "--reference required)."),
    two_sided: bool = typer.Option(False, help="Also fail when a score got better (detects any drift)."),
    max_canary_drift: Optional[float] = typer.Option(None, "--max-canary-drift", metavar="GRADES",
                                                     help="Fail when the judge's canary grades drift by more than "
                                                          "this (mean |difference|, grades 0-4) from the expected "
                                                          "grades, the folder's previous run or the baseline."),
) -> None:
    """Exit 1 when any method's metric is worse than the baseline beyond tolerance, or (--reference) differs from
    the published number by more than the tolerance."""
    from tvbench.errors import ConfigError
    from tvbench.gate import run_gate
    from tvbench.report import load_summary

    if (baseline is None) == (reference is None):
        raise ConfigError("tvbench gate needs --baseline SUMMARY or --reference paper:ID|FILE (one of them)")
    if reference is not None:
        _reference_gate(load_summary(scores), reference, tolerance)
        return
    if max_canary_drift is not None and max_canary_drift < 0:
        raise ConfigError("--max-canary-drift must be >= 0")
    findings = run_gate(load_summary(scores), load_summary(baseline), tolerance, two_sided, max_canary_drift)
    table = Table("method", "metric", "baseline", "current", "verdict", title="tvbench gate")
    for f in findings:
        fmt = lambda v: "–" if v is None else f"{v:.6f}"  # noqa: E731
        verdict = Text("pass", style="green") if f.passed else Text.assemble(("FAIL", "red"), f" {f.message}")
        table.add_row(Text(f.method), Text(f.metric), fmt(f.baseline), fmt(f.current), verdict)  # names: no markup
    console.print(table)
    _gate_verdict(findings, f"gate passed: {len(findings)} comparisons")


def _gate_verdict(findings: list, passed: str) -> None:
    """One line per failing finding and exit 1, else the passing line."""
    failures = [f for f in findings if not f.passed]
    for f in failures:
        say(f"FAIL {f.method} {f.metric}: {f.message}")
    if failures:
        raise typer.Exit(1)
    say(passed)


def _reference_gate(summary: dict, spec: str, tolerance: list[str]) -> None:
    """``gate --reference``: one row per cell present in both; exit 1 with one line per failing cell."""
    from tvbench.gate import run_reference_gate
    from tvbench.reference import load_reference, uncompared

    reference = load_reference(spec)
    findings = run_reference_gate(summary, reference, tolerance)
    table = Table("method", "metric", "published", "tvbench", "verdict",
                  title=f"tvbench gate against {reference.table} ({reference.id})")
    printed = {(row.tvbench_method, row.metric): row.printed for row in reference.rows}
    for f in findings:
        verdict = Text("pass", style="green") if f.passed else Text.assemble(("FAIL", "red"), f" {f.message}")
        shown = printed.get((f.method, f.metric), "–" if f.baseline is None else f"{f.baseline:g}")
        table.add_row(Text(f.method), Text(f.metric), Text(shown),
                      "–" if f.current is None else f"{f.current:.6f}", verdict)
    console.print(table)
    for line in uncompared(summary, reference):
        say(f"not compared: {line}")
    _gate_verdict(findings, f"gate passed: {len(findings)} cells within tolerance of {reference.table}")
