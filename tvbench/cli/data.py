"""``tvbench data export`` and ``tvbench data import``: benchmarks between formats."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tvbench.cli.app import check_choice, data_app, say
from tvbench.errors import ConfigError, TvbenchError


@data_app.command("export", short_help="Write a benchmark as a folder or a Hugging Face dataset.")
def export(
    bench: str = typer.Argument(..., metavar="BENCH", help="'sample', a benchmark folder, or hf:ID[@split]."),
    out: Path = typer.Argument(..., metavar="OUT", help="Destination folder."),
    fmt: str = typer.Option("folder", "--format", "-f", help="folder (cases.jsonl + images) or hf (save_to_disk)."),
    overwrite: bool = typer.Option(False, help="Replace an existing benchmark at the destination."),
) -> None:
    """Write a benchmark in the folder format or as a Hugging Face dataset."""
    from tvbench.cases import load_benchmark, write_folder, write_hf

    check_choice("--format", fmt, ("folder", "hf"))
    benchmark = load_benchmark(bench)
    if fmt == "folder":
        write_folder(benchmark, out, overwrite=overwrite, progress=True)
    else:
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise TvbenchError(f"{out}: not empty; pass --overwrite to replace it")
        write_hf(benchmark, out, progress=True)
    say(f"wrote {len(benchmark)} cases to {out} ({fmt}), hash {benchmark.hash}")


# --- data import (importers subpackage) ---
@data_app.command("import", short_help="Import DragBench, Drag100 or a Hugging Face dataset.")
def import_(
    fmt: Optional[str] = typer.Argument(None, metavar="FORMAT", help="dragbench, drag100 or hf; omit to list them."),
    src: Optional[str] = typer.Argument(None, metavar="SRC", help="The folder (or hf:ID) to import."),
    out: Optional[Path] = typer.Argument(None, metavar="OUT", help="Destination folder benchmark."),
    overwrite: bool = typer.Option(False, help="Replace an existing benchmark at the destination."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Import another benchmark's layout (DragBench, Drag100, a HF dataset) as a folder benchmark."""
    from tvbench.cases.importers import DESCRIPTIONS, IMPORTERS, ImportFailed, import_benchmark

    if fmt is None:
        for name in IMPORTERS.names():
            typer.echo(f"{name}: {DESCRIPTIONS.get(name, '')}")
        return
    IMPORTERS.entry(fmt)  # an unknown format fails here, with a did-you-mean
    if src is None or out is None:
        raise ConfigError(f"tvbench data import {fmt} SRC OUT: give the source and the destination folder")
    try:
        benchmark = import_benchmark(fmt, src, out, overwrite=overwrite, progress=not quiet)
    except ImportFailed as exc:
        if len(exc.errors) == 1:
            raise
        for problem in exc.errors:
            say(f"{src}: {problem}")
        raise TvbenchError(f"{src}: {len(exc.errors)} case(s) cannot be imported; nothing was written") from None
    say(f"imported {len(benchmark)} cases to {out}, hash {benchmark.hash}")
# --- end data import ---
