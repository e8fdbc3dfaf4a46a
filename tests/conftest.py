"""Shared fixtures. Everything is offline: the hub is switched off before any library reads the setting."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Tiny models on few cores: one thread per process. torch's default threads only spin on them (the README's smoke
# scoring used 4.5x the CPU with them on 2 cores). Set before numpy or torch load; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import numpy as np
import pytest
from PIL import Image

from tvbench.testing.data import dragbench_dev_folder  # noqa: E402

# The 50 real DragBench cases shipped beside the repository (shared/data/dragbench-dev), or where the variable says.
DRAGBENCH_DEV = dragbench_dev_folder()


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """tvbench's cache (bundled benchmark, random backbones) and the HF cache live in a temp dir."""
    root = tmp_path_factory.mktemp("cache")
    os.environ["TVBENCH_CACHE"] = str(root / "tvbench")
    os.environ["HF_HOME"] = str(root / "hf")
    yield root


def textured(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth colourful texture (upsampled noise), so features and warps have structure to work with."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((height // 8 + 1, width // 8 + 1, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


def write_bench(root: Path, records: list[dict], images: dict[str, np.ndarray]) -> Path:
    """A folder benchmark from records (image fields are relative paths) and the arrays behind the paths."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, array in images.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)
    (root / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def shifted_cases(n: int = 3, width: int = 96, height: int = 80) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Cases whose target is the source shifted right by 6, 12, 18 or 24 px, with exact drag points and masks."""
    records, images = [], {}
    for k in range(n):
        source = textured(width, height, seed=k)
        shift = 6 * (k % 4 + 1)
        target = np.roll(source, shift, axis=1)
        mask = np.zeros((height, width), np.uint8)
        mask[20:60, 20:70] = 255
        cid = f"case-{k}"
        images.update({f"img/{cid}.src.png": source, f"img/{cid}.tgt.png": target,
                       f"img/{cid}.mask.png": mask, f"img/{cid}.mask_t.png": np.roll(mask, shift, axis=1)})
        records.append({"id": cid, "source": f"img/{cid}.src.png", "target": f"img/{cid}.tgt.png",
                        "mask_source": f"img/{cid}.mask.png", "mask_target": f"img/{cid}.mask_t.png",
                        "instruction": "Move the content to the right", "points": [[30, 40, 30 + shift, 40]],
                        "dense_points": [[25, 30, 25 + shift, 30], [40, 50, 40 + shift, 50]],
                        "subtask": "real"})
    return records, images


@pytest.fixture
def small_bench(tmp_path) -> Path:
    records, images = shifted_cases()
    return write_bench(tmp_path / "bench", records, images)


@pytest.fixture
def identity_oracle_results(small_bench, tmp_path) -> Path:
    """``tmp_path/results`` with ``identity`` and ``oracle`` run on :func:`small_bench` (the judge tests' folder)."""
    from tvbench.cases import load_benchmark
    from tvbench.methods import create_method
    from tvbench.runner import run_method

    bench = load_benchmark(small_bench)
    out = tmp_path / "results"
    for name in ("identity", "oracle"):
        run_method(create_method(name), bench, out, progress=False)
    return out


def tvbench_command() -> list[str]:
    """The installed ``tvbench`` entry point (the console script beside this interpreter), as users run it."""
    script = Path(sys.executable).parent / ("tvbench.exe" if os.name == "nt" else "tvbench")
    found = str(script) if script.is_file() else shutil.which("tvbench")
    assert found, "the tvbench console script is not installed beside this Python"
    return [found]


def run_tvbench(*args: str, cwd: Path | None = None, env: dict | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*tvbench_command(), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=timeout)
