"""What made a result: package versions, platform and the tvbench git commit, recorded in every result file."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import tvbench

TRACKED_PACKAGES = ("torch", "torchvision", "timm", "transformers", "diffusers", "lpips", "numpy", "pillow",
                    "scikit-image", "datasets", "huggingface_hub", "accelerate", "openai")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    versions = {"tvbench": tvbench.__version__}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the tvbench checkout this code runs from, with ``+dirty`` for local changes."""
    root = Path(tvbench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    return repo_commit(root)


def repo_commit(folder: Path) -> str | None:
    """HEAD of the git checkout holding ``folder``, with ``+dirty`` when tracked files changed (untracked files,
    such as outputs a script writes into its clone, do not count); None outside a checkout or without git."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def environment() -> dict:
    return {
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_commit": git_commit(),
    }
