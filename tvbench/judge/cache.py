"""The judge's reply cache: SQLite in WAL mode, safe for several threads and processes scoring at once.

A judgment is keyed by a sha256 over everything that decides the reply: the sent images' bytes, the
instruction, the prompt's id and sha256, the model id, the decoding parameters and the repeat index. The raw
reply (text, refusal, finish reason) and its token usage are stored, and the status is parsed again on every
read, so a stricter parser applies to old replies without a request. Only replies are stored: a request that
failed (timeout, HTTP error) leaves no row, so a rerun retries exactly those.

A second table keeps what the server said it was (:mod:`tvbench.judge.identity`) each time a phase reached it,
so a phase served entirely from the cache still reports the identity its replies came from.

Each thread has its own connection; WAL lets readers run beside one writer, and a busy timeout makes
concurrent writers wait instead of failing. (SQLite's locking needs a local file system, not NFS.)
:meth:`JudgeCache.close` may come from another thread while workers still write (Ctrl-C drops the queue but
cannot stop a request in flight): closing a connection that another thread is using crashes the process, so
each statement runs under a shared lock that ``close`` takes exclusively, and a worker that finishes after the
close still stores its reply, through a connection of its own that it closes at once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from pathlib import Path

from tvbench.errors import ResultsError
from tvbench.io import canonical_json, sha256_hex

SCHEMA = """CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    content TEXT,
    refusal TEXT,
    finish_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created REAL NOT NULL
)"""
IDENTITY_SCHEMA = """CREATE TABLE IF NOT EXISTS identities (
    model TEXT NOT NULL,
    identity TEXT NOT NULL,
    observed REAL NOT NULL
)"""


def judgment_key(*, image_shas: list[str], instruction: str | None, prompt_id: str, prompt_sha: str, model: str,
                 decoding: dict, repeat: int, layout: str) -> str:
    """The cache key of one request (see the module docstring)."""
    return sha256_hex(canonical_json({"images": image_shas, "instruction": instruction, "prompt": prompt_id,
                                      "prompt_sha256": prompt_sha, "model": model, "decoding": decoding,
                                      "repeat": repeat, "layout": layout}))


@dataclass(frozen=True)
class CachedReply:
    content: str | None
    refusal: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


class JudgeCache:
    def __init__(self, path: Path, busy_timeout_s: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # guards the list of connections
        self._use = _SharedLock()  # statements share it; close() takes it alone
        self._closed = False
        try:
            with self._connection():  # create the table (and fail early on an unwritable or corrupt file)
                pass
        except sqlite3.Error as exc:
            raise ResultsError(f"{self.path}: cannot open the judge cache ({exc}); pass another --judge-cache or "
                               "delete the file") from None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(SCHEMA)
        conn.execute(IDENTITY_SCHEMA)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, held open for the statement; after close(), a one-off connection."""
        with self._use.shared():
            if self._closed:
                conn = self._open()
                try:
                    yield conn
                finally:
                    conn.close()
                return
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._open()
                with self._lock:
                    self._connections.append(conn)
            yield conn

    def get(self, key: str) -> CachedReply | None:
        with self._connection() as conn:
            row = conn.execute("SELECT content, refusal, finish_reason, prompt_tokens, completion_tokens "
                               "FROM judgments WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return CachedReply(row[0], row[1], row[2], int(row[3] or 0), int(row[4] or 0))

    def put(self, key: str, *, model: str, prompt_id: str, reply: CachedReply) -> None:
        with self._connection() as conn:
            conn.execute("INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (key, model, prompt_id, reply.content, reply.refusal, reply.finish_reason,
                          reply.prompt_tokens, reply.completion_tokens, time.time()))

    def put_identity(self, model: str, identity: dict) -> None:
        """Record what the server said it was when a phase reached it for ``model``."""
        with self._connection() as conn:
            conn.execute("INSERT INTO identities VALUES (?, ?, ?)", (model, canonical_json(identity), time.time()))

    def latest_identity(self, model: str) -> dict | None:
        """The identity last recorded for ``model``, or None."""
        with self._connection() as conn:
            row = conn.execute("SELECT identity FROM identities WHERE model = ? ORDER BY observed DESC, rowid DESC "
                               "LIMIT 1", (model,)).fetchone()
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def journal_mode(self) -> str:
        with self._connection() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    def __len__(self) -> int:
        with self._connection() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])

    def close(self) -> None:
        """Close every thread's connection, once no statement is running on any of them."""
        with self._use.exclusive():
            self._closed = True
            with self._lock:
                for conn in self._connections:
                    conn.close()
                self._connections.clear()
            self._local = threading.local()


class _SharedLock:
    """Many holders of the shared side at once, or one of the exclusive side; a waiting exclusive holder goes
    first, so a busy pool of workers cannot keep close() waiting."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            while self._exclusive or self._waiting:
                self._condition.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._condition:
                self._shared -= 1
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._condition.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()
