"""Running other people's commands safely: their own process group, a deadline, and the tail of what they said.

Each command starts in a new session (its own process group), so a timeout can kill it *and* everything it
spawned (``bash -c "a && b"``, dataloader workers) with one signal, without touching tvbench. A finished
command's group is killed too, so nothing it left running in the background keeps the GPU. Ctrl-C while a
command runs kills its group before the interrupt goes on. (A tvbench killed with SIGKILL cannot clean up:
the running case's command then finishes on its own; a worker sees its stdin close and exits.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

TERMINATE_GRACE_S = 3.0
"""After SIGTERM, how long a process group gets to exit before SIGKILL."""
TAIL_LINES = 6
TAIL_CHARS = 600


@dataclass(frozen=True)
class Finished:
    returncode: int | None  # None when it timed out
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def kill_group(process: subprocess.Popen, grace: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM the process's group, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(process, signal.SIGKILL)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state); nothing more to do
        pass


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, sig)  # start_new_session made the pid the group id
        elif process.poll() is None:  # pragma: no cover - not POSIX
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass


def start(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], **streams) -> subprocess.Popen:
    """Start ``argv`` in its own session; a missing executable is an OSError naming it."""
    return subprocess.Popen(list(argv), cwd=str(cwd), env=dict(env), start_new_session=True, **streams)


def run_command(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float, stdout: Path,
                stderr: Path) -> Finished:
    """Run to completion or to ``timeout`` seconds (then kill its group); output goes to the two files."""
    started = time.perf_counter()
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = start(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            kill_group(process)  # on timeout, on Ctrl-C, and any background leftovers after a normal exit
    return Finished(code, time.perf_counter() - started)


def tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last non-empty lines of ``text`` on one line (`` | `` between lines), at most ``chars`` long."""
    kept = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= chars else "..." + joined[-(chars - 3):]


def file_tail(path: Path, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """:func:`tail` of a log file, reading only its end (logs of long runs can be large)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return ""
    return tail(data.decode("utf-8", errors="replace"), lines, chars)
