"""The standing cross-check of the drag ports against their originals (``benchmarks/crosscheck.py``).

The originals are not part of tvbench; a checkout of each is named by ``TVBENCH_ORIGINALS`` (a folder holding
``dragdiffusion/``, ``clipdrag/``, ``dragnoise/``, ``gooddrag/``, ``tvedit/``), and the stage-by-stage comparison runs only where they are.
Without them, the script's refusal of a folder that is not a checkout is still tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "crosscheck.py"
ORIGINALS = Path(os.environ.get("TVBENCH_ORIGINALS", "/nonexistent"))


def test_a_folder_that_is_not_the_original_is_refused_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "dragdiffusion", "--original", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "not a checkout of dragdiffusion's repository" in result.stderr


@pytest.mark.parametrize("method", ["dragdiffusion", "clipdrag", "dragnoise", "gooddrag", "tvedit-qwen"])
def test_the_port_equals_its_original_stage_by_stage(method, tmp_path):
    pytest.importorskip("einops", reason="the originals' attention code needs einops")
    original = ORIGINALS / ("tvedit" if method == "tvedit-qwen" else method)
    marker = "demo/tvedit_qwen" if method == "tvedit-qwen" else "utils/drag_utils.py"
    if not (original / marker).exists():
        pytest.skip(f"no checkout of {method}'s original under TVBENCH_ORIGINALS")
    result = subprocess.run([sys.executable, str(SCRIPT), method, "--original", str(original), "--json",
                             str(tmp_path / "table.json")], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " NO" not in result.stdout and result.stdout.count(" yes") >= 8
