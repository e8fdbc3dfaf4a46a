"""Progress bars for loops over cases (rich), written to stderr so stdout stays machine-readable."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, Protocol, Sequence, TypeVar

from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")

stderr = Console(stderr=True, soft_wrap=True)


class Bar(Protocol):
    def advance(self, steps: int = 1) -> None: ...

    def note(self, text: str) -> None: ...


class _NoBar:
    def advance(self, steps: int = 1) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class _RichBar:
    def __init__(self, progress: Progress, task: int):
        self._progress, self._task = progress, task

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def note(self, text: str) -> None:
        self._progress.update(self._task, note=text)


class _NotedProgress(Progress):
    """Progress with each task's ``note`` under the bars, wrapped at the console's width, never cut."""

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        import textwrap

        for task in self.tasks:  # wrapped here: the live display gives each renderable a single line
            for line in textwrap.wrap(task.fields.get("note") or "", max(20, self.console.width - 1)):
                yield Text(line)


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool = True,
                 notes: bool = False) -> Iterator[Bar]:
    """A bar advanced by hand (``bar.advance(n)``), for loops that finish several items at once (batches);
    with ``notes``, a line under it that ``bar.note(text)`` replaces (``data build``'s funnel as it fills)."""
    if not enabled:
        yield _NoBar()
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with (_NotedProgress if notes else Progress)(*columns, console=stderr, transient=False) as progress:
        yield _RichBar(progress, progress.add_task(description, total=total, note=""))


def track(items: Sequence[T] | Iterable[T], description: str, *, enabled: bool = True,
          total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar when ``enabled`` and stderr is a terminal."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(description, total, enabled=enabled) as bar:
        for item in items:
            yield item
            bar.advance()


def silence_library_progress() -> None:
    """Turn off diffusers' and transformers' own bars (loading components, writing shards, denoising steps).

    Under tvbench the bar that counts cases is the one to read; a second bar per pipeline call garbles it.
    Process-wide and idempotent, like the libraries' own switches; hub download bars stay on (a first
    download of 50 GB deserves one). The libraries are imported only if installed.
    """
    import importlib.util

    for module in ("diffusers.utils.logging", "transformers.utils.logging"):
        if importlib.util.find_spec(module.partition(".")[0]) is not None:
            importlib.import_module(module).disable_progress_bar()


@contextmanager
def datasets_progress_off() -> Iterator[None]:
    """The datasets library's own bars (saving shards, casting columns) off for the duration, then as they were.

    tvbench's bar already counts the cases; a second bar for the same job printed a duplicated 100% line. Scoped,
    unlike :func:`silence_library_progress`, so that a hub download that follows keeps its bar.
    """
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()
