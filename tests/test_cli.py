"""The command line as a new user meets it, through the installed ``tvbench`` entry point in a subprocess:
usage mistakes, --version, help text, Ctrl-C, a fast ``ls``, a missing GPU, an unreachable hub."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_tvbench, tvbench_command

from tvbench import __version__

USAGE_MISTAKES = [
    ["data"],  # a group without its command: help text
    ["run"],  # --method missing
    ["run", "-m", "identity", "--limit", "abc"],
    ["--bogus"],
    ["report", "--format"],  # an option without its value
    ["gate", "somewhere"],  # --baseline missing
    ["frobnicate"],
    ["score", "--resolution", "big"],
    ["ls", "--bogus"],
    ["data", "export"],  # arguments missing
]


@pytest.mark.parametrize("args", USAGE_MISTAKES, ids=" ".join)
def test_usage_mistakes_exit_2_with_clicks_message(args, tmp_path):
    result = run_tvbench(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    if args != ["data"]:  # a group shows its help; every other mistake is one error line (click's or ours)
        assert [line for line in result.stderr.splitlines() if line.lower().startswith("error: ")], result.stderr


def test_no_arguments_prints_help_and_is_not_an_error_of_ours(tmp_path):
    result = run_tvbench(cwd=tmp_path)
    assert result.returncode in (0, 2), result.stderr
    assert "Usage: tvbench" in result.stdout + result.stderr and "internal error" not in result.stderr


def test_version(tmp_path):
    result = run_tvbench("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"tvbench {__version__}"


def test_help_text_keeps_brackets_and_has_no_type_labels_for_flags(tmp_path):
    top = run_tvbench("--help", cwd=tmp_path, env={"COLUMNS": "80"})
    run_help = run_tvbench("run", "--help", cwd=tmp_path, env={"COLUMNS": "80"})
    assert top.returncode == 0 and run_help.returncode == 0
    assert "hf:ID[@split]" in run_help.stdout  # rich markup used to eat the brackets
    assert "<bool>" not in top.stdout + run_help.stdout
    assert "--version" in top.stdout and "--set KEY=VALUE" in run_help.stdout
    assert max(len(line) for line in (top.stdout + run_help.stdout).splitlines()) <= 80


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a named pipe to block on")
def test_ctrl_c_says_a_rerun_resumes_and_exits_130(tmp_path):
    """A real SIGINT while the command works (blocked reading a case image from a named pipe)."""
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "cases.jsonl").write_text(json.dumps({"id": "c0", "source": "source.png"}) + "\n")
    fifo = bench / "source.png"
    os.mkfifo(fifo)
    process = subprocess.Popen([*tvbench_command(), "run", "-m", "identity", "-b", str(bench), "--device", "cpu",
                                "-o", str(tmp_path / "results")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    writer = None
    try:
        deadline = time.monotonic() + 60
        while writer is None:  # a writer can open the pipe once the command is inside open() of its image
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO and process.poll() is None and time.monotonic() < deadline, exc
                time.sleep(0.02)
        time.sleep(0.2)  # let it get from open() into read(), where it waits for bytes that never come
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert "Traceback" not in stderr


HEAVY = ("torch", "timm", "transformers", "diffusers", "datasets", "lpips", "torchvision", "openai",
         "numpy", "scipy", "skimage")  # numpy alone is ~0.15 s of a 2-core VM's start-up


def _child_cpu_seconds(command: list[str]) -> float:
    before = os.times()
    subprocess.run(command, capture_output=True, check=True, timeout=120)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def test_ls_imports_no_heavy_stack_and_costs_about_an_import(tmp_path):
    for command in (["ls"], ["--help"]):
        traced = subprocess.run([sys.executable, "-X", "importtime", "-m", "tvbench", *command], capture_output=True,
                                text=True, timeout=120)
        assert traced.returncode == 0, traced.stderr
        imported = {line.split("|")[-1].strip().split(".")[0] for line in traced.stderr.splitlines()
                    if line.startswith("import time:")}
        assert not imported & set(HEAVY), (command, sorted(imported & set(HEAVY)))
    # CPU seconds, not wall time: a loaded machine slows both alike. Before, listing cost ~3 s of CPU (torch).
    baseline = _child_cpu_seconds([sys.executable, "-c", "import tvbench"])
    listing = _child_cpu_seconds([*tvbench_command(), "ls"])
    assert listing < baseline + 1.0, (listing, baseline)


def test_ls_never_cuts_a_name_in_an_80_column_pipe(tmp_path):
    from tvbench.methods import METHODS
    from tvbench.metrics import METRICS

    result = run_tvbench("ls", cwd=tmp_path, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    words = set(result.stdout.split())
    assert set(METHODS.names()) <= words and set(METRICS.names()) <= words
    assert "…" not in result.stdout and max(len(line) for line in result.stdout.splitlines()) <= 80


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_score_on_a_missing_gpu_is_one_line_before_any_work(tmp_path):
    (tmp_path / "results" / "mine").mkdir(parents=True)
    result = run_tvbench("score", "results", "--bench", "sample", "--device", "cuda", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--device cuda" in result.stderr and "no CUDA GPU" in result.stderr
    assert not list((tmp_path / "results").rglob("*.json*"))


def _without_offline_switches() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if key not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")}


def _run_clean_env(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([*tvbench_command(), *args], capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=120)
    return result, time.monotonic() - started


def test_unknown_hub_dataset_offline_is_one_line_at_once(tmp_path):
    pytest.importorskip("datasets")
    env = {**_without_offline_switches(), "HF_HUB_OFFLINE": "1"}
    result, _ = _run_clean_env(["validate", "hf:org/doesnotexist"], env, tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: hf:org/doesnotexist:") and "HF_HOME" in result.stderr


def test_unreachable_hub_is_one_line_without_retries(tmp_path):
    pytest.importorskip("datasets")
    with socket.socket() as closed:  # bound, never listening: every connection is refused at once
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = {**_without_offline_switches(), "HF_ENDPOINT": endpoint}
        result, seconds = _run_clean_env(["validate", "hf:org/doesnotexist"], env, tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot reach the hub at {endpoint}" in result.stderr and "HF_HUB_OFFLINE=1" in result.stderr
    assert "Retrying" not in result.stderr and seconds < 25  # datasets alone retried for ~30 s


def test_export_as_hf_dataset_shows_one_progress_bar(small_bench, tmp_path):
    pytest.importorskip("datasets")
    result = run_tvbench("data", "export", str(small_bench), str(tmp_path / "out"), "--format", "hf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Saving the dataset" not in result.stderr and "examples/s" not in result.stderr
    assert re.search(r"wrote 3 cases to .*out \(hf\)", result.stderr)
