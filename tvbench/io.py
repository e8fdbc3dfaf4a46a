"""Crash-safe file writes and the JSON conventions shared by every tvbench file.

A run can be killed at any instant. Files therefore appear either complete or not at all: each write goes
to a hidden temporary file in the same folder, is flushed to disk, and is renamed over the final name
(``os.replace`` is atomic on POSIX and Windows). Append-only logs use one ``write`` call per line on a file
opened with ``O_APPEND``, so concurrent writers (shards) never interleave within a line.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import secrets
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from PIL import Image

PARTIAL_PREFIX = ".partial-"
T = TypeVar("T")
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # O_BINARY: Windows


@functools.lru_cache(maxsize=1)
def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _owner() -> str:
    """This process as a partial's owner: ``<pid>@<host digest>`` (the host, so a cache shared over a network
    file system never mistakes another machine's live writer for a dead one here)."""
    return f"{os.getpid()}@{_host()}"


def _partial_sibling(path: Path, create: Callable[[Path], T]) -> tuple[Path, T]:
    """Create a fresh hidden ``.partial-<name>.<owner>.<random>`` sibling of ``path`` with ``create`` (which must fail
    if the name exists). Unlike ``tempfile``, whose files are private (0600), the permissions follow the umask, so
    results and the shared feature cache read like any other file the user writes. The owner
    (:func:`_owner`) lets :func:`remove_stale_partials` tell a dead writer's leftovers from a live one's."""
    for _ in range(100):
        candidate = path.parent / f"{PARTIAL_PREFIX}{path.name}.{_owner()}.{secrets.token_hex(6)}"
        try:
            return candidate, create(candidate)
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: cannot create a temporary file for {path.name}")


def _owner_state(name: str) -> str:
    """``dead``, ``alive`` or ``unknown`` (another machine's, or a name without an owner) for a partial's name."""
    parts = name.rsplit(".", 2)
    pid, _, host = (parts[-2] if len(parts) == 3 else "").partition("@")
    if not pid.isdigit() or host != _host():
        return "unknown"
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "dead"
    except OSError:
        pass  # it exists, owned by another user
    return "alive"


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never observed half-written; mode 0666 minus the umask.

    ``durable=False`` skips the flush to disk: for caches, where an entry lost to a power cut is recomputed (the
    rename still keeps readers from seeing half a file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent, path.name + ".")  # a killed writer's copy of this very file
    tmp, fd = _partial_sibling(path, lambda name: os.open(name, _NEW_FILE_FLAGS, 0o666))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_partials(folder: Path, stem: str = "", older_than: float = 600.0,
                          abandoned_after: float = 86400.0) -> None:
    """Delete what killed writers left behind: ``.partial-<stem>*`` files or folders whose owner process on this
    machine is gone, and those older than ``older_than`` s whose owner cannot be checked (another machine's).

    Every writer calls this for the name it is about to write, and :func:`build_folder_once` for the folder it
    guards, so the next run that touches a place cleans it, however young the leftover. A partial whose owner is
    alive is a write in progress and is left alone (unless older than ``abandoned_after``: its pid was reused).
    """
    now = time.time()
    for leftover in Path(folder).glob(PARTIAL_PREFIX + stem + "*"):
        try:
            limit = {"dead": -1.0, "alive": abandoned_after}.get(_owner_state(leftover.name), older_than)
            if now - leftover.stat().st_mtime <= limit:
                continue
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink()
        except OSError:
            pass


def build_folder_once(path: Path, build: Callable[[Path], None], done_marker: str) -> Path:
    """Make ``path`` with ``build`` unless it holds ``done_marker`` already; crash- and race-safe.

    ``build`` fills a hidden sibling folder, which is then renamed into place, so readers never see half a
    folder. When two processes race, the first rename wins and the other uses its (identical) folder. A folder
    without its marker (interrupted by hand) is moved aside and rebuilt.
    """
    path = Path(path)
    if path.parent.is_dir():
        remove_stale_partials(path.parent, path.name + ".")  # a killed build's folder, whether or not one finished
    if (path / done_marker).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    work, _ = _partial_sibling(path, lambda name: os.mkdir(name, 0o777))  # mode per the umask, like mkdir
    try:
        build(work)
        if path.exists() and not (path / done_marker).is_file():
            aside = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{path.name}.stale.", dir=path.parent))
            try:
                os.replace(path, aside / path.name)
            except FileNotFoundError:
                pass  # another process already moved it
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.replace(work, path)
        except OSError:
            if not (path / done_marker).is_file():
                raise
            # another process renamed its complete copy into place first: use theirs
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


@contextmanager
def file_lock(path: Path, on_busy: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) across processes; POSIX only.

    Atomic writes keep a file whole, but a read-then-write (a manifest rebuilt from the files on disk) by two
    processes can still land the older view last; taking this lock around the pair orders them. Where
    ``fcntl`` does not exist (Windows) the block runs unlocked. When another process holds the lock,
    ``on_busy`` is called once before waiting for it, and may raise to give up instead. The OS releases the
    lock when its holder exits, even on ``kill -9``: no stale lock survives a crash.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_busy is not None:
                on_busy()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Sorted keys: equal content has equal bytes, whatever order the dictionary was built in."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def canonical_safetensors(data: bytes) -> bytes:
    """A safetensors file with its header's keys sorted. The writer stores ``__metadata__`` from a hash map, in
    an order that changes from one save to the next; sorted, equal tensors and metadata give equal bytes."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + data[8 + length:]


def atomic_save_safetensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None, *,
                            durable: bool = True) -> None:
    """``safetensors.torch.save_file`` made atomic and byte-stable (:func:`canonical_safetensors`)."""
    from safetensors.torch import save

    atomic_write_bytes(path, canonical_safetensors(save(tensors, metadata=metadata)), durable=durable)


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def atomic_save_png(path: Path, image: Image.Image) -> None:
    """Encode in memory first, so an encoder failure leaves nothing behind."""
    atomic_write_bytes(path, encode_png(image))


def jsonl_line(record: dict[str, Any]) -> str:
    return json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line with a single ``write`` (safe with concurrent appenders)."""
    line = jsonl_line(record).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of an append-only log, skipping a torn last line left by a killed writer."""
    if not Path(path).exists():
        return
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return  # torn final line: the writer died mid-append
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def read_json_object(path: Path, error: type[Exception], hint: str = "") -> dict[str, Any]:
    """The JSON object stored in ``path``; anything else raises ``error`` with one line naming the file."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{path}: invalid JSON ({exc}){hint}") from None
    if not isinstance(obj, dict):
        raise error(f"{path}: must hold a JSON object{hint}")
    return obj


def canonical_json(obj: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no whitespace, floats as JSON writes them."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def config_hash(obj: Any) -> str:
    """Short, stable identifier of a configuration dictionary."""
    return sha256_hex(canonical_json(obj))[:16]


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: non-finite numbers are stored as null (and carry a status saying why)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def iter_files(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    wanted = {s.lower() for s in suffixes}
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in wanted
                  and not p.name.startswith(PARTIAL_PREFIX))
