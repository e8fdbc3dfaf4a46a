"""torch's thread count: one rule (--threads, $TVBENCH_THREADS, $OMP_NUM_THREADS, the cores available), applied
before any network is built and recorded where the results are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tvbench.errors import ConfigError
from tvbench.threads import Threads, available_cores, resolve_threads


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("TVBENCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return monkeypatch


def test_threads_come_from_the_option_then_the_variables_then_the_cores(clean_env):
    clean_env.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert available_cores() == 3
    assert resolve_threads() == Threads(3, "cores")
    assert resolve_threads(small_models=True) == Threads(1, "small models")  # --smoke on the CPU
    clean_env.setenv("OMP_NUM_THREADS", "2")
    assert resolve_threads() == Threads(2, "OMP_NUM_THREADS")
    assert resolve_threads(small_models=True) == Threads(2, "OMP_NUM_THREADS")  # a chosen count wins
    clean_env.setenv("TVBENCH_THREADS", " 5 ")
    assert resolve_threads() == Threads(5, "TVBENCH_THREADS")
    assert resolve_threads(1) == Threads(1, "--threads")


@pytest.mark.parametrize("option, variable, message", [
    (0, None, r"--threads 0: expected at least 1"),
    ("two", None, r"--threads 'two': expected a whole number"),
    (None, "-1", r"TVBENCH_THREADS -1: expected at least 1"),
])
def test_a_bad_thread_count_names_where_it_came_from(clean_env, option, variable, message):
    if variable is not None:
        clean_env.setenv("TVBENCH_THREADS", variable)
    with pytest.raises(ConfigError, match=message):
        resolve_threads(option)


def test_the_count_reaches_torch_even_when_set_before_torch_is_imported():
    code = ("import sys; from tvbench.threads import apply_threads; applied = apply_threads(1); "
            "assert 'torch' not in sys.modules; import torch; print(applied.count, torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "TVBENCH_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


def tvbench(*args, env=None, cwd=None):
    exe = [shutil.which("tvbench")] if shutil.which("tvbench") else [sys.executable, "-m", "tvbench"]
    return subprocess.run([*exe, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_score_records_its_threads_and_rejects_a_bad_count_before_any_work(small_bench, tmp_path):
    from tvbench.cases import load_benchmark
    from tvbench.methods import create_method
    from tvbench.runner import run_method

    results = tmp_path / "results"
    run_method(create_method("identity"), load_benchmark(str(small_bench)), results, progress=False)
    env = {**os.environ, "TVBENCH_THREADS": "zero"}
    bad = tvbench("score", str(results), "--smoke", "-q", env=env)
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "error: TVBENCH_THREADS 'zero': expected a whole number of threads (at least 1)"
    assert not (results / "summary.json").exists()
    done = tvbench("score", str(results), "--smoke", "-q", "--threads", "1", "--metrics", "ds_global_tgt,lpips_tgt",
                   env=env)  # the option wins over the variable
    assert done.returncode == 0, done.stderr
    summary = json.loads((results / "summary.json").read_text())
    assert summary["scorer"]["threads"] == {"count": 1, "source": "--threads"}
