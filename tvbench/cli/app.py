"""The ``tvbench`` Typer application and the helpers every command shares.

Commands live one group per module beside this one (``run``, ``score``, ``report``, ``listing``, ``data``)
and register themselves on :data:`app` when :mod:`tvbench.cli` imports them.

Help is rendered as plain click text (``rich_markup_mode=None``): rich markup would eat the brackets of
``hf:ID[@split]`` and label every flag ``<bool>``, and plain text reads the same in a pipe, a log or a terminal.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Optional, Sequence

import typer
from rich.console import Console

from tvbench import __version__
from tvbench.errors import ConfigError
from tvbench.registry import suggest

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Benchmark and evaluation harness for text-vision co-instructed image editing (TV-Edit-Bench).")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Convert benchmarks between formats.")
app.add_typer(data_app, name="data")

console = Console()


def say(message: str) -> None:
    """A plain line on stderr: never wrapped, never styled (one error = one line, also in logs)."""
    typer.echo(message, err=True)


def emit(text: str, output: Optional[Path]) -> None:
    """A command's document: to stdout, or written atomically to ``output`` (and said so on stderr)."""
    if output is None:
        typer.echo(text, nl=False)
        return
    from tvbench.io import atomic_write_text

    atomic_write_text(output, text)
    say(f"wrote {output}")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tvbench {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", is_eager=True, callback=_print_version,
                                                 help="Print the tvbench version and exit.")) -> None:
    """Options that apply before any command (``--version``)."""


_METAVARS = {int: "INTEGER", float: "FLOAT", Path: "PATH"}  # click's own names; anything else is TEXT


def plain_metavars(command: Any) -> Any:
    """``--help`` in click's words: typer >= 0.2x prints Python's type names (``<str>``, ``<list[Path]>``), so every
    option without a metavar gets click's name for its value (``TEXT``, ``INTEGER``, ``PATH``) and an argument shows
    its name alone (``RESULTS``). Returns ``command``."""
    for param in command.params:
        descriptor = getattr(param, "type_descriptor", None)  # only the typer versions that print type names
        if descriptor is None or getattr(param, "is_flag", False):
            continue
        if param.param_type_name == "argument":
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = lambda ctx: None  # the name column already says what goes there
        elif param.metavar is None:
            annotation = descriptor.annotation
            element = typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else annotation
            param.metavar = _METAVARS.get(element, "TEXT")
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)
    return command


def check_choice(option: str, value: str, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices``; else one line with what it most likely meant (``md``: markdown)."""
    if value not in choices:
        raise ConfigError(f"{option} {value!r}{suggest(value, choices)} (choose one of {', '.join(choices)})")
    return value


def _split(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _parse_settings(items: list[str], option: str = "--set") -> dict[str, str]:
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item!r}: expected key=value")
        settings[key.strip()] = value
    return settings
