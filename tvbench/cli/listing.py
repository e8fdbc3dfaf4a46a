"""``tvbench ls`` (what methods and metrics exist) and ``tvbench validate`` (check a benchmark)."""

from __future__ import annotations

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from tvbench.cli.app import app, console, say
from tvbench.errors import ConfigError


PROSE_MIN_WIDTH = 14


def _table(title: str, columns: dict[str, bool], rows: list[tuple[str, ...]]) -> Table:
    """A borderless table whose identifier columns (``columns[header]`` true) are never wrapped or cut.

    Users type these names (``ds_global_tgt``), so they must survive an 80-column pipe whole; the prose columns
    wrap at spaces instead, and fold (never cut) a word longer than their width.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for index, (header, identifier) in enumerate(columns.items()):
        longest_word = max((len(word) for row in rows for word in row[index].split()), default=0)
        widest = max((len(row[index]) for row in rows), default=0)
        # prose keeps ordinary words whole; a path longer than PROSE_MIN_WIDTH folds rather than push the table
        # past the terminal, where rich would crop it
        table.add_column(header, no_wrap=identifier, overflow="fold",
                         min_width=widest if identifier else min(longest_word, PROSE_MIN_WIDTH))
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # plain text: a plugin's "[red]" is not markup
    return table


LISTS = ("methods", "metrics", "trackers", "flows", "all")


@app.command("ls", short_help="List methods, metrics, and data build's trackers and flows.")
def list_components(what: str = typer.Argument("all", metavar="WHAT",
                                               help="methods, metrics, trackers, flows or all.")) -> None:
    """List methods (inputs as in Table 1, availability), metrics (direction, range, needs), and the trackers and
    flow estimators of tvbench data build (options)."""
    if what not in LISTS:
        from tvbench.registry import suggest

        raise ConfigError(f"tvbench ls {what!r}{suggest(what, LISTS)}: choose {', '.join(LISTS[:-1])} or all")
    if what in ("all", "methods"):
        from tvbench.methods import list_methods

        rows = []
        waiting = False  # some method is installed but lacks weights or a key
        for info in list_methods():
            about = info.summary if info.available else info.reason
            if info.origin != "tvbench" and info.origin.split()[-1] not in about:  # where it comes from, once
                about = f"{about} [{info.origin}]"
            if info.needs:  # what it needs with its defaults, each here or not: "needs: Qwen/... (not in the HF cache)"
                about = f"{about}; needs: {', '.join(str(need) for need in info.needs)}"
            waiting = waiting or (info.available and not info.ready)
            rows.append((info.name, info.inputs, "yes" if info.ready else "no", about))
        console.print(_table("methods (input: M mask, P prompt, T trajectory, I instruction, GT ground truth; ready: "
                             "installed, weights here, key set)",
                             {"method": True, "input": True, "ready": True, "about": False}, rows))
        if waiting:
            console.print(Text("not ready: fetch weights once with `hf download ID` (or pass a folder: --set "
                               "model=PATH), export the key named, give a required option (--set controller=...)"))
    if what in ("all", "metrics"):
        from tvbench.metrics import METRICS

        rows = []
        for name in METRICS.names():
            spec = METRICS.load(name)
            low, high = spec.range
            rows.append((name, f"{spec.label} {'↑' if spec.higher_is_better else '↓'}", f"[{low:.3g}, {high:.3g}]",
                         ", ".join(sorted(spec.requires | spec.models)), spec.reference.partition(";")[0]))
        console.print(_table("metrics (↑ higher is better, ↓ lower)",
                             {"metric": True, "label": False, "range": True, "needs": False, "paper": False}, rows))
    for kind, header in (("trackers", "tracker"), ("flows", "flow")):
        if what in ("all", kind):
            from tvbench.videos.tracking import AUTO, describe_registry

            rows = [(name, entry["description"], ", ".join(entry["options"]) or "-")
                    for name, entry in describe_registry()[kind].items()]
            with_gpu, without = AUTO["tracker" if kind == "trackers" else "flow estimator"]
            rows.insert(0, ("auto", f"the default: {with_gpu} where a CUDA GPU is seen, {without} elsewhere", "-"))
            console.print(_table(f"{kind} of tvbench data build (--{header} NAME --{header}-option KEY=VALUE)",
                                 {header: True, "about": False, "options": False}, rows))


@app.command(short_help="Check every case of a benchmark.")
def validate(bench: str = typer.Argument(..., metavar="BENCH",
                                         help="'sample', a benchmark folder, or hf:ID[@split].")) -> None:
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
