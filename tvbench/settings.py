"""Where tvbench keeps files it can rebuild (the bundled benchmark, tiny test backbones).

Model weights are never stored here: they live in the Hugging Face cache (``HF_HOME``) and torch's cache
(``TORCH_HOME``), which tvbench uses as is.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$TVBENCH_CACHE``, else ``$XDG_CACHE_HOME/tvbench``, else ``~/.cache/tvbench``."""
    if os.environ.get("TVBENCH_CACHE"):
        return Path(os.environ["TVBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tvbench"


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
