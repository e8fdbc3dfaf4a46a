"""The README's first command, as a user runs it, gated against the committed baseline (CI's drift check)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "baselines" / "sample-smoke.json"


def readme_commands() -> list[str]:
    """The tvbench steps of the README's first command (the install steps are what this suite runs in)."""
    block = re.search(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S).group(1)
    steps = [step.strip() for step in block.split("&&")]
    return [step for step in steps if step.startswith("tvbench ")]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quickstart")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for command in readme_commands():
        result = subprocess.run(command + " --quiet" * command.startswith(("tvbench run", "tvbench score")),
                                shell=True, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        outputs.append(result.stdout)
    return workdir, outputs


def test_readme_quickstart_is_run_score_report():
    commands = readme_commands()
    assert [c.split()[1] for c in commands] == ["run", "score", "report"]


def test_quickstart_runs_and_reports(quickstart):
    workdir, outputs = quickstart
    report = outputs[-1]
    assert "| tps-warp | M+T" in report and "*oracle*" in report and "smoke scoring" in report
    manifest = json.loads((workdir / "results/tps-warp/manifest.json").read_text())
    assert manifest["counts"] == {"done": 23, "refused": 0, "failed": 0, "pending": 0}


def test_oracle_is_perfect_and_identity_worse_on_every_case(quickstart):
    workdir, _ = quickstart
    rows = [json.loads(line) for line in (workdir / "results/scores.jsonl").read_text().splitlines()]
    values = {(r["method"], r["case"], r["metric"]): r["value"] for r in rows}
    cases = {r["case"] for r in rows}
    assert len(cases) == 23
    for case in cases:  # every sample case is a real change
        assert values["oracle", case, "ds_global_tgt"] == 1.0 and values["oracle", case, "lpips_tgt"] == 0.0
        assert values["identity", case, "ds_global_tgt"] < 1.0
        assert values["identity", case, "lpips_tgt"] > 0.0


def test_scores_match_the_committed_baseline(quickstart):
    workdir, _ = quickstart
    result = subprocess.run([sys.executable, "-m", "tvbench", "gate", str(workdir / "results"), "--baseline",
                             str(BASELINE), "--two-sided"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gate_fails_on_a_degraded_score_file(quickstart, tmp_path):
    workdir, _ = quickstart
    summary = json.loads((workdir / "results/summary.json").read_text())
    summary["methods"]["tps-warp"]["metrics"]["lpips_tgt"]["mean"] += 0.01
    degraded = tmp_path / "degraded.json"
    degraded.write_text(json.dumps(summary))
    result = subprocess.run([sys.executable, "-m", "tvbench", "gate", str(degraded), "--baseline", str(BASELINE)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "FAIL tps-warp lpips_tgt" in result.stderr


def test_subtask_metrics_have_exact_answers_on_sample(quickstart):
    workdir, outputs = quickstart
    methods = json.loads((workdir / "results/summary.json").read_text())["methods"]
    oracle, identity = methods["oracle"]["metrics"], methods["identity"]["metrics"]
    assert oracle["magnitude_rho"]["applicable"] == 9 and oracle["semantic_acc"]["applicable"] == 6
    # the ground truth moves by exactly the requested amounts and is its own target
    assert [g["value"] for g in oracle["magnitude_rho"]["groups"].values()] == [1.0, 1.0, 1.0]
    assert oracle["magnitude_rho"]["group_mean"] == 1.0 and oracle["magnitude_order"]["group_mean"] == 1.0
    assert oracle["semantic_acc"]["mean"] == 1.0
    # the unchanged source moves nothing: the correlation does not exist (a status, never 0), the order is never right
    rho = identity["magnitude_rho"]
    assert rho["group_mean"] is None and rho["headline_status"] == "undefined" and rho["ci"] is None
    assert [g["status"] for g in rho["groups"].values()] == ["undefined"] * 3
    assert identity["magnitude_order"]["group_mean"] == 0.0
    # one image for every sibling of a semantic group is closest to exactly one sibling's target: chance, 1/3
    assert identity["semantic_acc"]["mean"] == 1 / 3 and methods["tps-warp"]["metrics"]["semantic_acc"]["mean"] == 1 / 3
    assert "undefined" in outputs[-1] and "±" in outputs[-1]
