"""One writer per results folder: two processes must never write the same result files at once.

Two ``tvbench score`` runs on one results folder would each write ``scores.jsonl`` and ``summary.json``, and the
last writer would silently drop the other's rows. :func:`folder_lock` holds :func:`tvbench.io.file_lock` on a
small file in the folder (released by the OS when its holder exits, even on ``kill -9``), records the holder in
it, and names that holder to a second process, which stops at once or, asked to wait, starts when it is free.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from tvbench.errors import ResultsError
from tvbench.io import file_lock


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return f" ({text})" if text else ""


def _busy_error(folder: Path, command: str, path: Path) -> ResultsError:
    return ResultsError(f"{folder}: another `tvbench {command}` is writing here{_holder(path)}; wait for it to "
                        "finish, or pass --wait to start when it does")


def refuse_if_busy(folder: Path, command: str) -> None:
    """Fail at once, creating nothing, when another process holds ``folder``'s lock for ``command``: lets a
    command that must load something first (a network) refuse before it does, and before it writes anything."""
    try:
        import fcntl
    except ImportError:
        return
    path = Path(folder) / f".tvbench-{command}.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy_error(Path(folder), command, path) from None
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def folder_lock(folder: Path, command: str, *, wait: bool = False,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``folder/.tvbench-<command>.lock`` for the duration, or fail at once with a :class:`ResultsError`
    naming the holder; with ``wait``, queue behind the holder instead (``on_wait`` is told once)."""
    path = Path(folder) / f".tvbench-{command}.lock"

    def busy() -> None:
        if not wait:
            raise _busy_error(Path(folder), command, path)
        if on_wait is not None:
            on_wait(f"{folder}: waiting for another `tvbench {command}`{_holder(path)} to finish")

    with file_lock(path, on_busy=busy):
        # A second descriptor writes the note: flock belongs to the first one, which stays open (and locked).
        path.write_text(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%H:%M:%S')}\n",
                        encoding="utf-8")
        yield
