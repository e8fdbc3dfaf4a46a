"""``tvbench ls`` (what methods and metrics exist) and ``tvbench validate`` (check a benchmark)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from tvbench.cli.app import app, console, say
from tvbench.errors import ConfigError


@app.command("ls")
def list_components(what: str = typer.Argument("all", help="methods, metrics or all.")) -> None:
    """List methods (inputs as in Table 1, availability) and metrics (direction, range, needs)."""
    if what not in ("all", "methods", "metrics"):
        raise ConfigError(f"tvbench ls {what!r}: choose methods, metrics or all")
    if what in ("all", "methods"):
        from tvbench.methods import list_methods

        table = Table("method", "input", "available", "about", title="methods (input: M mask, P prompt, "
                      "T trajectory, I instruction, GT ground truth)")
        for info in list_methods():
            status = "[green]yes[/green]" if info.available else "[red]no[/red]"
            about = info.summary if info.available else info.reason
            if info.origin != "tvbench" and info.origin.split()[-1] not in about:  # where it comes from, once
                about = f"{about} [{info.origin}]"
            table.add_row(info.name, info.inputs, status, escape(about))  # brackets are text, not rich markup
        console.print(table)
    if what in ("all", "metrics"):
        from tvbench.metrics import METRICS

        table = Table("metric", "label", "better", "range", "needs", "paper", title="metrics")
        for name in METRICS.names():
            spec = METRICS.load(name)
            low, high = spec.range
            table.add_row(name, spec.label, "higher ↑" if spec.higher_is_better else "lower ↓", f"[{low:g}, {high:g}]",
                          ", ".join(sorted(spec.requires | spec.models)), spec.reference)
        console.print(table)


@app.command()
def validate(bench: str = typer.Argument(..., help="'sample', a benchmark folder, or hf:ID[@split].")) -> None:
    """Check every case of a benchmark; print one line per problem; exit 1 if any."""
    from tvbench.cases.loaders import read_benchmark

    benchmark = read_benchmark(bench)
    problems = benchmark.validate()
    for problem in problems:
        say(f"{bench}: {problem}")
    if problems:
        say(f"{len(problems)} problem(s) found")
        raise typer.Exit(1)
    typer.echo(f"{bench}: {len(benchmark)} cases OK, hash {benchmark.hash}")
