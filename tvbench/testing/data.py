"""Where the real data for tests and benchmarks lives: the 50 DragBench cases kept beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

DRAGBENCH_DEV_ENV = "TVBENCH_DRAGBENCH_DEV"


def dragbench_dev_folder() -> Path:
    """``$TVBENCH_DRAGBENCH_DEV``, else ``/work/shared/data/dragbench-dev``, else ``shared/data/dragbench-dev`` beside
    the repository; the folder may not exist (callers skip or say so)."""
    folder = Path(os.environ.get(DRAGBENCH_DEV_ENV, "/work/shared/data/dragbench-dev"))
    if not folder.is_dir():
        folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "dragbench-dev"
    return folder
