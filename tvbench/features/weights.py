"""Find model weights on disk: a local folder as is, a Hugging Face id through the HF cache.

Hub ids are resolved with ``huggingface_hub.snapshot_download``, which honours ``HF_HOME``, ``HF_TOKEN`` and
``HF_HUB_OFFLINE``. The cache is tried first (no network request at all when the snapshot is there), then the
hub. Every failure becomes one line that says what to do. Whatever the origin, loading then goes through the
same local-folder code path, which is the path the tests exercise on tiny models.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tvbench.errors import UnavailableError

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
    if not looks_like_hub_id(spec):
        raise UnavailableError(f"{what} {spec!r} is neither a local folder nor a Hugging Face id (org/name)")
    repo_id, revision = split_revision(spec)
    folder = _download(repo_id, revision, what, list(patterns))
    return LocalWeights(Path(folder), repo_id, Path(folder).name)


def _download(repo_id: str, revision: str | None, what: str, patterns: list[str] = WEIGHT_PATTERNS) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass  # not cached yet
    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
    except GatedRepoError:
        raise UnavailableError(f"{what} {repo_id} is gated: accept its licence at https://huggingface.co/{repo_id} "
                               "and set HF_TOKEN (or `hf auth login`), or pass a local folder") from None
    except RepositoryNotFoundError:
        raise UnavailableError(f"{what} {repo_id} does not exist on the Hugging Face hub (or needs HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise UnavailableError(f"{what} {repo_id} has no revision {revision!r}") from None
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        offline = "HF_HUB_OFFLINE is set and " if os.environ.get("HF_HUB_OFFLINE") else ""
        raise UnavailableError(f"{what} {repo_id} is not in the Hugging Face cache (HF_HOME) and {offline}the hub "
                               f"cannot be reached ({type(exc).__name__}); download it once online, or pass a "
                               "local folder") from None
