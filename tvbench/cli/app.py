"""The ``tvbench`` Typer application and the helpers every command shares.

Commands live one group per module beside this one (``run``, ``score``, ``report``, ``listing``, ``data``)
and register themselves on :data:`app` when :mod:`tvbench.cli` imports them.

Help is rendered as plain click text (``rich_markup_mode=None``): rich markup would eat the brackets of
``hf:ID[@split]`` and label every flag ``<bool>``, and plain text reads the same in a pipe, a log or a terminal.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console

from tvbench import __version__
from tvbench.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Benchmark and evaluation harness for text-vision co-instructed image editing (TV-Edit-Bench).")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Convert benchmarks between formats.")
app.add_typer(data_app, name="data")

console = Console()


def say(message: str) -> None:
    """A plain line on stderr: never wrapped, never styled (one error = one line, also in logs)."""
    typer.echo(message, err=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tvbench {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", is_eager=True, callback=_print_version,
                                                 help="Print the tvbench version and exit.")) -> None:
    """Options that apply before any command (``--version``)."""


def _split(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _parse_settings(items: list[str]) -> dict[str, str]:
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value")
        settings[key.strip()] = value
    return settings
