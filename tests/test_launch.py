"""Multi-process runs: torchrun / accelerate launch split the cases by rank into one folder, no --shard needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import textured, write_bench
from tvbench.cases import load_benchmark
from tvbench.errors import ConfigError
from tvbench.io import file_lock, read_jsonl
from tvbench.launch import launcher_process
from tvbench.methods import Runtime, create_method
from tvbench.runner import Shard, run_method, select_cases


@pytest.fixture
def bench_dir(tmp_path) -> Path:
    records, images = [], {}
    for k in range(8):
        images[f"img/c{k}.png"] = textured(64, 48, seed=k)
        mask = textured(64, 48, seed=100)[..., 0] * 0
        mask[10:38, 12:50] = 255
        images[f"img/c{k}.mask.png"] = mask
        records.append({"id": f"c{k}", "source": f"img/c{k}.png", "mask_source": f"img/c{k}.mask.png",
                        "instruction": "move it", "points": [[20, 24, 26 + k, 24]]})
    return write_bench(tmp_path / "bench", records, images)


def test_launcher_environment():
    assert launcher_process({}) is None and launcher_process({"WORLD_SIZE": "1", "RANK": "0"}) is None
    assert launcher_process({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}) == Shard(3, 4)
    for env, message in [({"WORLD_SIZE": "2"}, "RANK is not set"), ({"WORLD_SIZE": "2", "RANK": "2"}, "outside 0..1"),
                         ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE='two'")]:
        with pytest.raises(ConfigError, match=message):
            launcher_process(env)


def test_ranks_split_exactly_what_one_process_would_run(bench_dir):
    bench = load_benchmark(str(bench_dir))
    for options in [{}, {"limit": 5}, {"shard": Shard(1, 2)}, {"shard": Shard(2, 2), "limit": 3}]:
        alone = [case.id for case in select_cases(bench, **options)]
        ranks = [[case.id for case in select_cases(bench, process=Shard(r, 3), **options)] for r in (1, 2, 3)]
        assert sorted(sum(ranks, [])) == sorted(alone) and sum(map(len, ranks)) == len(alone)


def test_overwrite_under_a_launcher_is_refused(bench_dir, tmp_path):
    bench = load_benchmark(str(bench_dir))
    with pytest.raises(ConfigError, match="--overwrite under a multi-process launcher"):
        run_method(create_method("identity"), bench, tmp_path, overwrite=True, process=Shard(1, 2), progress=False)


def test_manifest_lock_orders_processes(tmp_path):
    order = []
    with file_lock(tmp_path / ".lock"):
        waiter = threading.Thread(target=lambda: (file_lock(tmp_path / ".lock").__enter__(), order.append("second")))
        waiter.start()
        time.sleep(0.2)
        order.append("first")
    waiter.join(5)
    assert order == ["first", "second"]


def test_torchrun_fills_one_folder_equal_to_a_single_process_run(bench_dir, tmp_path):
    single = run_method(create_method("tps-warp"), load_benchmark(str(bench_dir)), tmp_path / "single",
                        progress=False, runtime=Runtime("cpu"))
    assert single.done == 8
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command = ["-m", "tvbench", "run", "-m", "tps-warp", "-b", str(bench_dir), "-o", str(tmp_path / "launched"), "-q",
               "--device", "cpu"]  # no torch import in the workers: the test stays fast
    result = subprocess.run(torchrun + command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "process 1 of 2" in result.stderr and "process 2 of 2" in result.stderr
    one, two = tmp_path / "single" / "tps-warp", tmp_path / "launched" / "tps-warp"
    images = sorted(p.name for p in one.glob("*.png"))
    assert images == sorted(p.name for p in two.glob("*.png")) and len(images) == 8
    assert all((one / name).read_bytes() == (two / name).read_bytes() for name in images)
    merged = json.loads((two / "manifest.json").read_text())
    alone = json.loads((one / "manifest.json").read_text())
    assert merged["counts"] == alone["counts"] == {"done": 8, "refused": 0, "failed": 0, "pending": 0}
    assert merged["config_hash"] == alone["config_hash"]
    log = [record["case"] for record in read_jsonl(two / "status.jsonl")]
    assert sorted(log) == sorted(name[:-4] for name in images)  # every case once, no torn or doubled line
