"""The runner: manifests, resume after interruption or SIGKILL, failures, shards, identity checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import shifted_cases, write_bench
from PIL import Image

from tvbench.cases import Case, load_benchmark
from tvbench.errors import ConfigError, ResultsError, UnknownNameError
from tvbench.io import read_jsonl
from tvbench.methods import Method, create_method
from tvbench.runner import Shard, run_method, select_cases


@dataclass
class Counting(Method):
    """Identity that counts its calls and can fail or be interrupted on chosen cases.

    The controls are plain attributes, not options, so every instance is the same run configuration.
    """

    name = "counting"
    inputs = frozenset({"image"})

    def __post_init__(self):
        self.calls: list[str] = []
        self.fail_on = ""
        self.interrupt_on = ""

    def edit(self, case: Case, *, seed: int) -> Image.Image:
        assert case.target is None and case.dense_points == () and case.instruction is None  # undeclared inputs
        if case.id == self.interrupt_on:
            raise KeyboardInterrupt
        self.calls.append(case.id)
        if case.id == self.fail_on:
            raise RuntimeError("model exploded\nsecond line")
        return case.open_image("source")


@pytest.fixture
def bench(small_bench):
    return load_benchmark(small_bench)


def test_run_writes_images_and_manifest(bench, tmp_path):
    report = run_method(Counting(), bench, tmp_path, seed=7, progress=False)
    run_dir = tmp_path / "counting"
    assert report.ok and report.done == 3 and report.run_dir == run_dir
    assert sorted(p.name for p in run_dir.glob("*.png")) == ["case-0.png", "case-1.png", "case-2.png"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["method"] == "counting" and manifest["seed"] == 7
    assert manifest["benchmark_hash"] == bench.hash and manifest["benchmark"]["n_cases"] == 3
    assert len(manifest["config_hash"]) == 16 and manifest["config"] == {"method": "counting", "version": "1",
                                                                         "options": {}}
    assert {"torch", "numpy", "tvbench"} <= set(manifest["environment"]["packages"])
    assert "git_commit" in manifest["environment"]
    assert manifest["counts"] == {"done": 3, "refused": 0, "failed": 0, "pending": 0}
    assert all(c["status"] == "done" and c["seconds"] >= 0 for c in manifest["cases"].values())


def test_rerun_skips_finished_cases(bench, tmp_path):
    run_method(Counting(), bench, tmp_path, progress=False)
    again = Counting()
    report = run_method(again, bench, tmp_path, progress=False)
    assert again.calls == [] and report.skipped == 3 and report.done == 0


def test_interrupted_run_resumes_without_recomputing(bench, tmp_path):
    first = Counting()
    first.interrupt_on = "case-1"
    with pytest.raises(KeyboardInterrupt):
        run_method(first, bench, tmp_path, progress=False)
    manifest = json.loads((tmp_path / "counting/manifest.json").read_text())
    assert manifest["counts"] == {"done": 1, "refused": 0, "failed": 0, "pending": 2}
    second = Counting()
    run_method(second, bench, tmp_path, progress=False)
    assert first.calls == ["case-0"] and second.calls == ["case-1", "case-2"]


def test_failing_case_is_recorded_and_retried(bench, tmp_path):
    failing = Counting()
    failing.fail_on = "case-1"
    report = run_method(failing, bench, tmp_path, progress=False)
    assert [case for case, _ in report.failed] == ["case-1"]
    message = report.failed[0][1]
    assert message == "case 'case-1': RuntimeError: model exploded"
    manifest = json.loads((tmp_path / "counting/manifest.json").read_text())
    assert manifest["cases"]["case-1"] == {"status": "failed", "error": message}
    assert manifest["counts"]["done"] == 2
    retry = Counting()
    run_method(retry, bench, tmp_path, progress=False)
    assert retry.calls == ["case-1"]


def test_shards_partition_cases_and_fill_one_folder(small_bench, tmp_path):
    records, images = shifted_cases(n=12)
    bench = load_benchmark(write_bench(tmp_path / "b12", records, images))
    shards = [select_cases(bench, shard=Shard(k, 3)) for k in (1, 2, 3)]
    ids = [case.id for part in shards for case in part]
    assert sorted(ids) == sorted(case.id for case in bench) and len(set(ids)) == 12
    assert all(part for part in shards)  # a hash split of 12 ids leaves no shard empty here
    for k in (1, 2, 3):
        run_method(Counting(), bench, tmp_path / "out", shard=Shard(k, 3), progress=False)
    manifest = json.loads((tmp_path / "out/counting/manifest.json").read_text())
    assert manifest["counts"]["done"] == 12


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "1"])
def test_bad_shard_specs(text):
    with pytest.raises(ConfigError):
        Shard.parse(text)


def test_case_selection(bench):
    assert [c.id for c in select_cases(bench, ids=["case-2", "case-0"])] == ["case-0", "case-2"]
    assert [c.id for c in select_cases(bench, limit=1)] == ["case-0"]
    with pytest.raises(UnknownNameError, match="has no case 'case-l'; did you mean"):
        select_cases(bench, ids=["case-l"])


def test_a_different_run_in_the_same_folder_is_refused(bench, tmp_path):
    run_method(create_method("tps-warp"), bench, tmp_path, progress=False)
    other = create_method("tps-warp", {"anchor_spacing": "16"})
    with pytest.raises(ResultsError, match=r"options differ: anchor_spacing 32.0 -> 16.0"):
        run_method(other, bench, tmp_path, progress=False)
    with pytest.raises(ResultsError, match="seed"):
        run_method(create_method("tps-warp"), bench, tmp_path, seed=1, progress=False)
    report = run_method(other, bench, tmp_path, overwrite=True, progress=False)
    assert report.done == 3


def test_a_failed_write_leaves_no_image(bench, tmp_path, monkeypatch):
    import tvbench.io as io

    original = os.replace

    def broken_replace(src, dst):
        if str(dst).endswith(".png"):
            raise OSError("disk full")
        original(src, dst)

    monkeypatch.setattr(io.os, "replace", broken_replace)
    report = run_method(Counting(), bench, tmp_path, progress=False)
    monkeypatch.undo()
    assert len(report.failed) == 3 and "disk full" in report.failed[0][1]
    leftovers = [p.name for p in (tmp_path / "counting").iterdir() if p.suffix == ".png" or "partial" in p.name]
    assert leftovers == []


SLOW_METHOD = '''
import time
from dataclasses import dataclass
from tvbench.methods import Method

@dataclass
class Slow(Method):
    name = "slow"
    def edit(self, case, *, seed):
        time.sleep(0.15)
        return case.open_image("source")
'''

DRIVER = '''
import sys
sys.path.insert(0, {plugin_dir!r})
from tvbench.methods import METHODS
METHODS.register("slow", "slow_method:Slow")
from tvbench.cli import main
main(["run", "--method", "slow", "--bench", {bench!r}, "--out", {out!r}, "--quiet"])
'''


def test_sigkilled_cli_run_resumes_with_no_case_computed_twice(tmp_path):
    records, images = shifted_cases(n=10)
    bench_dir = write_bench(tmp_path / "b10", records, images)
    (tmp_path / "slow_method.py").write_text(SLOW_METHOD)
    driver = tmp_path / "driver.py"
    out = tmp_path / "out"
    driver.write_text(DRIVER.format(plugin_dir=str(tmp_path), bench=str(bench_dir), out=str(out)))
    log = out / "slow" / "status.jsonl"
    process = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(read_jsonl(log))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = {p.stem for p in (out / "slow").glob("*.png")}
    assert 3 <= len(done_before) < 10
    for path in (out / "slow").glob("*.png"):
        Image.open(path).load()  # no truncated image counts as done
    finished = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    done = [r["case"] for r in read_jsonl(log) if r["status"] == "done"]
    assert len(done) == len(set(done)) and set(done) <= {r["id"] for r in records}
    assert f"{10 - len(done_before)} edited, {len(done_before)} already done" in finished.stderr
    manifest = json.loads((out / "slow/manifest.json").read_text())
    assert manifest["counts"]["done"] == 10


def test_cli_run_exit_code_reports_failures(tmp_path):
    records, images = shifted_cases(n=2)
    del records[1]["target"]
    bench_dir = write_bench(tmp_path / "b", records, images)
    result = subprocess.run([sys.executable, "-m", "tvbench", "run", "-m", "oracle", "-b", str(bench_dir),
                             "-o", str(tmp_path / "out"), "-q"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "case 'case-1': target: oracle needs a ground-truth target" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out/oracle/case-0.png").is_file()


def test_cli_run_rejects_unknown_method_and_option(small_bench, tmp_path):
    result = subprocess.run([sys.executable, "-m", "tvbench", "run", "-m", "tps-wrap", "-b", str(small_bench)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "did you mean 'tps-warp'" in result.stderr
    result = subprocess.run([sys.executable, "-m", "tvbench", "run", "-m", "tps-warp", "--set", "radius=big",
                             "-b", str(small_bench)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "option 'radius' must be float" in result.stderr
    assert not (Path(tmp_path) / "results").exists()
