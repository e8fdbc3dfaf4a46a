"""Progress bars for loops over cases (rich), written to stderr so stdout stays machine-readable."""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")

stderr = Console(stderr=True, soft_wrap=True)


def track(items: Sequence[T] | Iterable[T], description: str, *, enabled: bool = True,
          total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar when ``enabled`` and stderr is a terminal."""
    if not enabled:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=False) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
