"""``tvbench train``: training of trainable methods (today the TV-Edit controller)."""

from __future__ import annotations

import typer

from tvbench.cli.app import app

train_app = typer.Typer(no_args_is_help=True, help="Train a method's trainable part on a benchmark folder.")
app.add_typer(train_app, name="train")
