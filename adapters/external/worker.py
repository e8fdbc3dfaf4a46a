"""The client side of the worker protocol: one long-lived process edits many cases, so models load once.

Protocol 1 (JSON lines; every protocol line is one JSON object with a ``"tvbench"`` key):

1. The worker starts (the spec's command, in its cwd) and, once its models are loaded, writes
   ``{"tvbench": "ready", "protocol": 1}`` on stdout, within ``startup_timeout_s``.
2. For each case tvbench writes one request on the worker's stdin:
   ``{"tvbench": "edit", "protocol": 1, "id": CASE_ID, "seed": ..., "output": PATH, ...}`` carrying every
   per-case placeholder as a field (files, texts, ``points`` as a list; see :mod:`.placeholders`) plus
   ``width`` and ``height`` (and ``device`` when the worker's command passes ``{device}``).
3. The worker answers on stdout, within ``timeout_s``, with one of
   ``{"tvbench": "done", "id": CASE_ID}`` (the image is at the request's ``output``; an ``"output"`` field may
   name another path, and ``"facts"`` a JSON object recorded in the manifest),
   ``{"tvbench": "error", "id": CASE_ID, "message": "..."}`` (this case failed; the worker carries on) or
   ``{"tvbench": "refused", "id": CASE_ID, "reason": "..."}`` (a safety filter declined).
4. When tvbench closes the worker's stdin, the worker exits.

Anything else on stdout (library prints, progress bars) is ignored but kept for error messages; stderr goes to a
log file. A worker that exits, breaks the protocol or misses its deadline has its process group killed; the case
fails and the next case starts a fresh worker.
"""

from __future__ import annotations

import collections
import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from tvbench_adapters.external.process import TAIL_LINES, file_tail, kill_group, start, tail

PROTOCOL = 1
EXIT_GRACE_S = 10.0
"""After closing its stdin, how long a worker gets to exit on its own before its group is killed."""


class WorkerError(Exception):
    """The worker is unusable (did not start, exited, timed out, broke the protocol); the message is one line."""


class Worker:
    """One running worker process and the reader thread that drains its stdout."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stderr_log: Path):
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self.stderr_log = stderr_log
        self.process: subprocess.Popen | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._noise: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def start(self, timeout: float) -> float:
        """Start and wait for the ready line; returns the seconds it took. Raises :class:`WorkerError`."""
        started = time.perf_counter()
        with open(self.stderr_log, "ab") as err:
            try:
                self.process = start(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err)
            except OSError as exc:
                raise WorkerError(f"cannot start the worker {self.argv[0]!r}: {exc.strerror or exc}") from None
        threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()
        message = self._next_message(timeout, "its ready line")
        if message.get("tvbench") != "ready":
            raise WorkerError(f"the worker's first message was {_short(message)}, not "
                              f'{{"tvbench": "ready", "protocol": {PROTOCOL}}}')
        if message.get("protocol") != PROTOCOL:
            raise WorkerError(f"the worker speaks protocol {message.get('protocol')!r}; tvbench speaks {PROTOCOL}")
        return time.perf_counter() - started

    def edit(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request; return the worker's done/error/refused answer for it."""
        assert self.process is not None and self.process.stdin is not None
        line = json.dumps({"tvbench": "edit", "protocol": PROTOCOL, **request}, allow_nan=False) + "\n"
        try:
            self.process.stdin.write(line.encode("utf-8"))
            self.process.stdin.flush()
        except OSError:  # BrokenPipeError: it is gone
            raise WorkerError(self._death_notice()) from None
        message = self._next_message(timeout, f"its answer for case {request['id']!r}")
        if message.get("tvbench") not in ("done", "error", "refused"):
            raise WorkerError(f"expected a done, error or refused message, got {_short(message)}")
        if message.get("id") != request["id"]:
            raise WorkerError(f"answered for case {message.get('id')!r} while case {request['id']!r} was asked")
        return message

    def stop(self, grace: float = EXIT_GRACE_S) -> None:
        """Close stdin (the signal to exit), wait up to ``grace`` seconds, then kill the process group."""
        if self.process is None:
            return
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        kill_group(self.process)

    def output_tail(self) -> str:
        """The tail of stderr, or, if the worker wrote none, of its non-protocol stdout."""
        errors = file_tail(self.stderr_log)
        if errors:
            return f"stderr: {errors}"
        noise = tail("\n".join(self._noise))
        return f"stdout: {noise}" if noise else "no output on stderr"

    def _drain(self, stream) -> None:
        for raw in stream:
            self._lines.put(raw)
        self._lines.put(None)

    def _next_message(self, timeout: float, waiting_for: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                raw = self._lines.get(timeout=remaining)
            except queue.Empty:
                raise WorkerError(f"timed out after {timeout:g} s waiting for {waiting_for}") from None
            if raw is None:
                raise WorkerError(self._death_notice())
            message = _protocol_message(raw)
            if message is None:
                self._noise.append(raw.decode("utf-8", errors="replace").rstrip())
                continue
            return message

    def _death_notice(self) -> str:
        assert self.process is not None
        try:
            code = self.process.wait(EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            return "the worker closed its stdout but did not exit"
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the worker {how}"


def _protocol_message(raw: bytes) -> dict[str, Any] | None:
    text = raw.strip()
    if not text.startswith(b"{"):
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) and "tvbench" in message else None


def _short(message: dict[str, Any]) -> str:
    text = json.dumps(message)
    return text if len(text) <= 200 else text[:197] + "..."
