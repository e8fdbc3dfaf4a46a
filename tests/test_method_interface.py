"""The method interface grown for real editors: runtime, outcomes with facts, refusals, batches, seeds, teardown."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import shifted_cases, write_bench
from PIL import Image

from tvbench.cases import Case, load_benchmark
from tvbench.errors import ConfigError
from tvbench.io import read_jsonl
from tvbench.methods import EditResult, Method, Runtime, case_seed, runtime_option
from tvbench.runner import batches, run_method


@pytest.fixture
def bench(tmp_path):
    records, images = shifted_cases(n=6)
    return load_benchmark(write_bench(tmp_path / "b6", records, images))


def noise_image(seed: int, size=(16, 12)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))


@dataclass
class Seeded(Method):
    """An image drawn from the case's seed; batches of cases of equal width; counts setup/teardown."""

    name = "seeded"
    uses_dtype = True
    max_batch_size = 4
    strength: float = 1.0
    concurrency: int = runtime_option(4)

    def __post_init__(self):
        self.log: list[str] = []
        self.batch_sizes: list[int] = []
        self.refuse = ""
        self.explode = ""

    def setup(self):
        self.log.append(f"setup {self.runtime.device} {self.runtime.dtype}")

    def teardown(self):
        self.log.append("teardown")

    def batch_key(self, case):
        return case.id[-1] in "024"  # two groups

    def edit(self, case: Case, *, seed: int):
        if case.id == self.explode:
            raise RuntimeError("boom")
        if case.id == self.refuse:
            return EditResult.refusal("safety filter", tokens=3)
        return EditResult(noise_image(seed), facts={"native_size": [16, 12], "phases": {"denoise": 0.01}})

    def edit_batch(self, cases, seeds):
        self.batch_sizes.append(len(cases))
        if any(case.id == self.explode for case in cases):
            raise RuntimeError("batch exploded")
        return [self.edit(case, seed=seed) for case, seed in zip(cases, seeds)]


def images(run_dir):
    return {p.stem: np.asarray(Image.open(p)) for p in sorted(run_dir.glob("*.png"))}


def test_case_seed_depends_on_run_seed_and_case_only():
    assert case_seed(0, "a") == case_seed(0, "a") != case_seed(1, "a") != case_seed(0, "b")
    assert 0 <= case_seed(123, "x") < 2**63


def test_batches_group_by_key_and_size(bench):
    method = Seeded()
    groups = [[case.id for case in batch] for batch in batches(method, list(bench.cases), 2)]
    assert groups == [["case-0", "case-2"], ["case-1", "case-3"], ["case-4"], ["case-5"]]
    assert [len(b) for b in batches(method, list(bench.cases), 1)] == [1] * 6


def test_batched_run_equals_single_run_and_resume_on_other_runtime_is_the_same_run(bench, tmp_path):
    single = Seeded()
    run_method(single, bench, tmp_path / "a", progress=False, runtime=Runtime("cpu", None, 1))
    batched = Seeded(concurrency=16)
    run_method(batched, bench, tmp_path / "b", progress=False, runtime=Runtime("cpu", None, 3))
    assert batched.batch_sizes == [3, 3]
    first, second = images(tmp_path / "a/seeded"), images(tmp_path / "b/seeded")
    assert first.keys() == second.keys() and len(first) == 6
    assert all(np.array_equal(first[k], second[k]) for k in first)
    # another batch size and runtime option: same identity, nothing left to do
    again = Seeded(concurrency=1)
    report = run_method(again, bench, tmp_path / "a", progress=False, runtime=Runtime("cpu", None, 4))
    assert report.skipped == 6 and report.done == 0 and again.log == ["teardown"]
    manifest = json.loads((tmp_path / "a/seeded/manifest.json").read_text())
    assert manifest["config"]["options"] == {"strength": 1.0} and manifest["config"]["dtype"] == "float32"
    assert manifest["runtime_options"] == {"concurrency": 1}
    assert manifest["runtime"] == {"device": "cpu", "dtype": "float32", "batch_size": 4, "threads": None}
    assert manifest["cases"]["case-3"]["facts"] == {"native_size": [16, 12], "phases": {"denoise": 0.01}}


def test_dtype_is_part_of_the_identity(bench, tmp_path):
    from tvbench.errors import ResultsError

    run_method(Seeded(), bench, tmp_path, progress=False, limit=1)
    with pytest.raises(ResultsError, match="config_hash"):
        run_method(Seeded(), bench, tmp_path, progress=False, runtime=Runtime("cpu", "bfloat16", 1))


def test_setup_sees_the_runtime_and_teardown_runs_after_a_crash(bench, tmp_path):
    method = Seeded()

    def interrupt(cases, seeds):
        raise KeyboardInterrupt

    method.edit_batch = interrupt
    method.edit = lambda case, seed: (_ for _ in ()).throw(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_method(method, bench, tmp_path, progress=False, runtime=Runtime("cpu", "bfloat16", 2))
    assert method.log == ["setup cpu bfloat16", "teardown"]


def test_refusals_have_their_own_status_and_are_not_retried_unless_asked(bench, tmp_path):
    method = Seeded()
    method.refuse = "case-1"
    report = run_method(method, bench, tmp_path, progress=False)
    assert report.ok and report.done == 5 and report.refused == [("case-1", "safety filter")]
    manifest = json.loads((tmp_path / "seeded/manifest.json").read_text())
    assert manifest["counts"] == {"done": 5, "refused": 1, "failed": 0, "pending": 0}
    assert manifest["cases"]["case-1"] == {"status": "refused", "reason": "safety filter", "facts": {"tokens": 3}}
    again = Seeded()
    report = run_method(again, bench, tmp_path, progress=False)
    assert report.done == 0 and report.refused_before == 1 and again.log == ["teardown"]
    asked = Seeded()
    report = run_method(asked, bench, tmp_path, progress=False, retry=("failed", "refused"))
    assert report.done == 1 and not report.refused
    assert json.loads((tmp_path / "seeded/manifest.json").read_text())["counts"]["refused"] == 0


def test_a_batch_that_raises_is_redone_case_by_case(bench, tmp_path):
    method = Seeded()
    method.explode = "case-2"
    report = run_method(method, bench, tmp_path, progress=False, runtime=Runtime("cpu", None, 3))
    assert [case for case, _ in report.failed] == ["case-2"] and report.done == 5
    assert report.failed[0][1] == "case 'case-2': RuntimeError: boom"
    statuses = [r["status"] for r in read_jsonl(tmp_path / "seeded/status.jsonl")]
    assert statuses.count("done") == 5 and statuses.count("failed") == 1


@dataclass
class BadFacts(Method):
    name = "bad-facts"

    def edit(self, case, *, seed):
        return EditResult(case.open_image("source"), facts={"when": object()})


def test_facts_that_are_not_json_fail_the_case_not_the_run(bench, tmp_path):
    report = run_method(BadFacts(), bench, tmp_path, progress=False, limit=2)
    assert len(report.failed) == 2 and "not JSON" in report.failed[0][1]


def test_methods_without_dtype_keep_their_config(bench, tmp_path):
    from tvbench.methods import create_method

    method = create_method("tps-warp")
    run_method(method, bench, tmp_path, progress=False, limit=1, runtime=Runtime("cpu", "bfloat16", 1))
    manifest = json.loads((tmp_path / "tps-warp/manifest.json").read_text())
    assert "dtype" not in manifest["config"] and manifest["runtime"]["dtype"] is None


def test_unknown_retry_status_is_a_config_error(bench, tmp_path):
    with pytest.raises(ConfigError, match="--retry"):
        run_method(Seeded(), bench, tmp_path, progress=False, retry=("done",))


def tvbench(*args, cwd):
    exe = [sys.executable, "-c", "from tvbench.cli import main; main()"]
    return subprocess.run([*exe, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_cli_run_on_a_missing_gpu_is_one_line_before_any_work(small_bench, tmp_path):
    result = tvbench("run", "-m", "identity", "-b", str(small_bench), "--device", "cuda", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "no CUDA GPU" in result.stderr
    assert not (tmp_path / "results").exists()


def test_cli_run_several_methods_with_runtime_flags(small_bench, tmp_path):
    result = tvbench("run", "-m", "identity,tps-warp", "-b", str(small_bench), "--device", "cpu",
                     "--dtype", "bf16", "--batch-size", "2", "--threads", "1", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("identity", "tps-warp"):
        manifest = json.loads((tmp_path / "results" / name / "manifest.json").read_text())
        assert manifest["runtime"] == {"device": "cpu", "dtype": None, "batch_size": 2, "threads": 1}
        assert manifest["counts"]["done"] == 3


@dataclass
class PartlyFailing(Method):
    name = "partly-failing"
    max_batch_size = 8

    def __post_init__(self):
        self.single_calls = 0

    def edit(self, case, *, seed):
        self.single_calls += 1
        return case.open_image("source")

    def edit_batch(self, cases, seeds):
        return [ValueError("HTTP 500 after 5 attempts") if case.id == "case-3" else case.open_image("source")
                for case in cases]


def test_edit_batch_may_fail_one_case_without_failing_the_others(bench, tmp_path):
    method = PartlyFailing()
    report = run_method(method, bench, tmp_path, progress=False, runtime=Runtime("cpu", None, 8))
    assert report.done == 5 and report.failed == [("case-3", "case 'case-3': ValueError: HTTP 500 after 5 attempts")]
    assert method.single_calls == 0


@dataclass
class BrokenSetup(Method):
    name = "broken-setup"
    oom_hint = "--set offload=model"
    problem: str = "missing"

    def setup(self):
        if self.problem == "missing":
            raise OSError("weights/model.safetensors: No such file or directory\nsecond line")
        raise RuntimeError("CUDA out of memory. Tried to allocate 40 GiB")

    def edit(self, case, *, seed):
        return case.open_image("source")


def test_setup_failures_are_one_line_naming_the_method_and_the_fix(bench, tmp_path):
    from tvbench.errors import UnavailableError

    with pytest.raises(UnavailableError) as info:
        run_method(BrokenSetup(), bench, tmp_path, progress=False)
    assert str(info.value) == ("method 'broken-setup': setup on cpu failed: OSError: weights/model.safetensors: "
                               "No such file or directory")
    with pytest.raises(UnavailableError) as info:
        run_method(BrokenSetup(problem="oom"), bench, tmp_path / "b", progress=False)
    assert str(info.value) == ("method 'broken-setup': setup on cpu failed: out of memory; try --set offload=model, "
                               "--dtype bfloat16, a device with more memory")
