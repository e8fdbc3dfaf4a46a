"""Find model weights on disk: a local folder as is, a Hugging Face id through the HF cache.

Hub ids are resolved with ``huggingface_hub.snapshot_download``, which honours ``HF_HOME``, ``HF_TOKEN`` and
``HF_HUB_OFFLINE``. The cache is tried first (no network request at all when the snapshot is there), then the
hub. Every failure becomes one line that says what to do. Whatever the origin, loading then goes through the
same local-folder code path, which is the path the tests exercise on tiny models.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tvbench.errors import UnavailableError, WeightsUnavailable
from tvbench.settings import hf_offline

WEIGHT_PATTERNS = ["*.json", "*.safetensors"]


@dataclass(frozen=True)
class LocalWeights:
    path: Path
    id: str  # what the user asked for (hub id or path)
    revision: str  # hub commit, or "sha256:<16 hex>" of the weight files of a local folder


def split_revision(spec: str) -> tuple[str, str | None]:
    """``org/name@revision`` -> (``org/name``, ``revision``)."""
    name, _, revision = spec.partition("@")
    return name, revision or None


def looks_like_hub_id(spec: str) -> bool:
    name, _ = split_revision(spec)
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(name).exists() and not name.startswith((".", "/", "~"))


def looks_like_path(spec: str) -> bool:
    """Whether ``spec`` names a file or folder rather than a hub id: it starts with ``.``, ``/`` or ``~``, is
    absolute, or its parent folder exists (``models/qwen`` where ``models/`` is). A missing one is then a typo to
    report as such, not a hub id to look for in the cache."""
    path = Path(os.path.expanduser(spec))
    if spec.startswith((".", "/", "~")) or path.is_absolute():
        return True
    return path.parent != Path(".") and path.parent.is_dir()


def require_existing(spec: str, what: str) -> None:
    """Refuse a path-like ``spec`` that does not exist, in the words of a typo rather than of a hub lookup."""
    if looks_like_path(spec) and not Path(os.path.expanduser(spec)).exists():
        raise UnavailableError(f"{what} {spec}: no such file or folder")


def download_command(repo_id: str, *, revision: str | None = None, patterns: Sequence[str] = (),
                     filename: str | None = None) -> str:
    """The ``hf download`` command (huggingface_hub's CLI) that puts exactly these files into the cache tvbench
    reads, so an error can say what to type."""
    words = ["hf", "download", repo_id]
    if filename:
        words.append(filename)
    if revision:
        words += ["--revision", revision]
    for pattern in patterns:
        words += ["--include", pattern]
    return shlex.join(words)


def hub_unavailable(exc: BaseException, *, what: str, spec: str, repo_id: str, download: str,
                    local: str = "folder") -> WeightsUnavailable:
    """The one-line error for hub weights that cannot be had here (gated, unknown, not cached while offline),
    shared by whole repositories (:func:`resolve_weights`) and single files (LoRA files)."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(exc, GatedRepoError):
        return WeightsUnavailable(f"{what} {repo_id} is gated", spec=spec, local=local,
                                  fix=f"accept its licence at https://huggingface.co/{repo_id} and set HF_TOKEN (or "
                                      "`hf auth login`)")
    if isinstance(exc, RepositoryNotFoundError):
        return WeightsUnavailable(f"{what} {repo_id} does not exist on the Hugging Face hub (or needs HF_TOKEN)",
                                  spec=spec, local=local, fix="check the id")
    if isinstance(exc, RevisionNotFoundError):
        return WeightsUnavailable(f"{what} {repo_id} has no revision {split_revision(spec)[1]!r}", spec=spec,
                                  local=local, fix="check the revision after '@'")
    if hf_offline():
        return WeightsUnavailable(f"{what} {spec} is not in the Hugging Face cache (HF_HOME) and HF_HUB_OFFLINE is set",
                                  spec=spec, local=local,
                                  fix=f"download it once online, without HF_HUB_OFFLINE, with `{download}`")
    return WeightsUnavailable(f"{what} {spec} is not in the Hugging Face cache (HF_HOME) and the hub cannot be reached "
                              f"({type(exc).__name__})", spec=spec, local=local,
                              fix=f"download it once online with `{download}`")


def _weight_files(path: Path, recursive: bool) -> list[Path]:
    glob = path.rglob if recursive else path.glob
    return sorted(glob("*.safetensors")) + sorted(glob("*.bin"))


@lru_cache(maxsize=16)
def _folder_fingerprint(path: str, stamp: tuple, recursive: bool = False) -> str:
    digest = hashlib.sha256()
    for file in _weight_files(Path(path), recursive):
        digest.update(file.relative_to(path).as_posix().encode())  # the bare name for top-level files
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def folder_revision(path: Path, recursive: bool = False) -> str:
    """Content fingerprint of a local folder's weights (local folders have no commit to name).

    ``recursive`` also covers sub-folders (a diffusers pipeline keeps each component in its own folder).
    """
    root = path.resolve()
    files = _weight_files(root, recursive)
    stamp = tuple((f.relative_to(root).as_posix(), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _folder_fingerprint(str(root), stamp, recursive)


def resolve_weights(spec: str, what: str = "model", *, marker: str = "config.json",
                    patterns: Sequence[str] = tuple(WEIGHT_PATTERNS), fingerprint: bool = True) -> LocalWeights:
    """A local folder holding ``marker`` and weights, for a local path or a hub id.

    ``patterns`` are the hub files to fetch; a multi-folder layout (``marker="unet/config.json"``) is
    fingerprinted over all its sub-folders. ``fingerprint=False`` skips hashing a local folder (revision
    ``"local"``): reading 50 GB of editor weights to name them costs minutes.
    """
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        if not (path / marker).is_file():
            raise UnavailableError(f"{what} folder {spec} has no {marker} (save it with save_pretrained / "
                                   "timm's save_for_hf)")
        revision = folder_revision(path, recursive="/" in marker) if fingerprint else "local"
        return LocalWeights(path, spec, revision)
    require_existing(spec, what)
    if not looks_like_hub_id(spec):
        raise UnavailableError(f"{what} {spec!r} is neither a local folder nor a Hugging Face id (org/name)")
    repo_id, revision = split_revision(spec)
    folder = _download(spec, what, list(patterns))
    return LocalWeights(Path(folder), repo_id, Path(folder).name)


def _download(spec: str, what: str, patterns: list[str] = WEIGHT_PATTERNS) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id, revision = split_revision(spec)
    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass  # not cached yet
    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
    except (OSError, ValueError) as exc:  # the hub's errors are OSErrors (HTTP) or ValueErrors (offline)
        command = download_command(repo_id, revision=revision, patterns=patterns)
        raise hub_unavailable(exc, what=what, spec=spec, repo_id=repo_id, download=command) from None


# -- is it here? (``tvbench ls``: no network, no download, no model import) ------------------------------------

FILE = "file"  # the marker of a single weights file (a LoRA: ``org/name/path/in/repo.safetensors`` or a path)


def weights_here(spec: str, marker: str) -> tuple[bool, str]:
    """Whether the weights ``spec`` names are on this machine, looked up without any network request, and where.

    ``spec`` is a local folder (holding ``marker``), a hub id ``org/name[@revision]`` (whose ``marker`` file must be
    in the Hugging Face cache, ``HF_HOME`` / ``HF_HUB_CACHE``, with at least one weight file beside it), or, with
    ``marker`` :data:`FILE`, a file: a local path or ``org/name/path/in/repo`` in the cache. Returns
    ``(ready, where)``: ``where`` is ``"local folder"``, ``"in the HF cache"``, ``"not in the HF cache"``, ...
    """
    path = Path(os.path.expanduser(spec))
    if marker == FILE:
        if path.is_file():
            return True, "local file"
        if looks_like_path(spec) or path.exists():
            return False, "no such file"
        parts = spec.split("/")
        if len(parts) < 3 or not all(parts):
            return False, "neither a file nor org/name/file on the hub"
        found = _cached_file("/".join(parts[:2]), "/".join(parts[2:]), None)
        return (True, "in the HF cache") if found else (False, "not in the HF cache")
    if path.is_dir():
        return (True, "local folder") if (path / marker).is_file() else (False, f"local folder without {marker}")
    if looks_like_path(spec) or path.exists():
        return False, "no such folder"
    if not looks_like_hub_id(spec):
        return False, "neither a folder nor a Hugging Face id"
    repo_id, revision = split_revision(spec)
    found = _cached_file(repo_id, marker, revision)
    if found is None:
        return False, "not in the HF cache"
    snapshot = found.parents[len(Path(marker).parts) - 1]
    if not any(snapshot.rglob("*.safetensors")) and not any(snapshot.rglob("*.bin")):
        return False, "in the HF cache without its weight files"
    return True, "in the HF cache"


def _cached_file(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """``huggingface_hub.try_to_load_from_cache``: the cached file's path, or ``None`` (never a request)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename, revision=revision)
    except (ImportError, ValueError, OSError):  # no huggingface_hub, an id it refuses (HFValidationError), ...
        return None
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None
