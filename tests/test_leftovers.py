"""Leave nothing behind: a killed writer's partial files are removed by the next run that touches the place, a
refused command writes nothing, and equal content is written as equal bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_tvbench, tvbench_command

from tvbench.io import (PARTIAL_PREFIX, _owner, atomic_save_safetensors, atomic_write_bytes, atomic_write_json,
                        build_folder_once, remove_stale_partials)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def partial_name(name: str, pid: int) -> str:
    host = _owner().partition("@")[2]
    return f"{PARTIAL_PREFIX}{name}.{pid}@{host}.0123456789ab"


def leftovers(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob(f"{PARTIAL_PREFIX}*")]


def test_a_dead_writers_partial_goes_at_once_a_live_ones_stays_a_foreign_one_ages_out(tmp_path):
    dead = tmp_path / partial_name("a.png", dead_pid())
    dead.write_bytes(b"half")
    live = tmp_path / partial_name("a.png", os.getpid())
    live.write_bytes(b"in progress")
    foreign = tmp_path / f"{PARTIAL_PREFIX}a.png.123@ffffffff.0123456789ab"  # another machine's writer
    foreign.write_bytes(b"?")
    remove_stale_partials(tmp_path, "a.png.")
    assert not dead.exists() and live.exists() and foreign.exists()
    old = time.time() - 3600
    os.utime(foreign, (old, old))
    remove_stale_partials(tmp_path, "a.png.")
    assert not foreign.exists() and live.exists()


def test_writing_a_file_removes_a_killed_writers_copy_of_it(tmp_path):
    orphan = tmp_path / partial_name("scores.jsonl", dead_pid())
    orphan.write_bytes(b"torn")
    atomic_write_bytes(tmp_path / "scores.jsonl", b"rows\n")
    assert (tmp_path / "scores.jsonl").read_bytes() == b"rows\n" and leftovers(tmp_path) == []


def test_a_finished_folder_still_cleans_a_killed_builds_leftover(tmp_path):
    def build(folder: Path) -> None:
        (folder / "done").write_text("yes")

    build_folder_once(tmp_path / "sample-v1", build, "done")
    orphan = tmp_path / partial_name("sample-v1", dead_pid())
    orphan.mkdir()
    (orphan / "half.png").write_bytes(b"x")
    build_folder_once(tmp_path / "sample-v1", build, "done")  # already built: returns at once, and cleans
    assert leftovers(tmp_path) == []


def test_a_sample_build_killed_midway_leaves_nothing_after_the_rerun(tmp_path):
    """SIGKILL while the bundled sample is generated, then the same command again: nothing partial remains."""
    cache, out = tmp_path / "cache", tmp_path / "results"
    env = {**os.environ, "TVBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    command = [*tvbench_command(), "run", "-m", "identity", "--bench", "sample", "--out", str(out), "-q"]
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not leftovers(cache) and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if killed.poll() is not None:
        pytest.skip("the sample was generated before a partial folder could be seen")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert leftovers(cache), "the kill did not land during the sample's generation"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(cache, out) == []


def test_a_refused_score_writes_nothing(tmp_path):
    run = tmp_path / "results" / "identity"
    run.mkdir(parents=True)
    (run / "real-move-ball.png").write_bytes(b"not read")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_tvbench("score", str(tmp_path / "results"), "--bench", str(tmp_path / "no-such-bench"), "--smoke")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_refused_training_run_creates_no_output_folder(tmp_path):
    output = tmp_path / "runs" / "qwen"
    result = run_tvbench("train", "tvedit", "--backbone", "qwen", "--data", "sample", "--output", str(output),
                         "--model", str(tmp_path / "no-such-model"), timeout=300)
    assert result.returncode != 0, result.stdout
    assert not output.exists() and not output.parent.exists()


def test_equal_content_is_written_as_equal_bytes(tmp_path):
    import torch

    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(4, dtype=torch.float16)}
    metadata = {f"key{i}": str(i) for i in range(8)}  # safetensors writes these from a hash map
    files = []
    for i in range(6):
        atomic_save_safetensors(tmp_path / f"{i}.safetensors", tensors, metadata)
        files.append((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(set(files)) == 1
    from safetensors import safe_open

    with safe_open(str(tmp_path / "0.safetensors"), "pt") as handle:
        assert handle.metadata() == metadata and torch.equal(handle.get_tensor("b"), tensors["b"])
    atomic_write_json(tmp_path / "x.json", {"b": 1, "a": {"d": 2, "c": 3}})
    atomic_write_json(tmp_path / "y.json", {"a": {"c": 3, "d": 2}, "b": 1})
    assert (tmp_path / "x.json").read_bytes() == (tmp_path / "y.json").read_bytes()
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": {"c": 3, "d": 2}, "b": 1}


def test_a_score_killed_while_writing_leaves_nothing_after_the_rerun(tmp_path):
    """SIGKILL the moment a partial file appears under the results or the feature cache, then score again."""
    results, cache = tmp_path / "results", tmp_path / "cache"
    env = {**os.environ, "TVBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    made = run_tvbench("run", "-m", "identity,tps-warp", "--bench", "sample", "--out", str(results), "-q", env=env,
                       timeout=300)
    assert made.returncode == 0, made.stderr
    command = [*tvbench_command(), "score", str(results), "--smoke", "--metrics", "ds_global_tgt,lpips_tgt,md_s"]
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not leftovers(results, cache / "features") and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the scorer finished before a partial file could be seen"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(results, cache) == [] and (results / "summary.json").is_file()
