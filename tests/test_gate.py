"""The regression gate: direction-aware, tolerance, two-sided drift, identity and coverage checks."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from tvbench.errors import ConfigError
from tvbench.gate import run_gate


def stats(mean, n=3):
    return {"mean": mean, "n": n, "applicable": 3, "coverage": n / 3}


@pytest.fixture
def baseline():
    return {
        "kind": "tvbench.scores",
        "benchmark": {"hash": "sha256:aaa"},
        "scorer": {"models": {"dino": {"id": "random-tiny"}}},
        "metrics": {"ds_global_tgt": {"higher_is_better": True}, "lpips_tgt": {"higher_is_better": False}},
        "methods": {"tps-warp": {"metrics": {"ds_global_tgt": stats(0.90), "lpips_tgt": stats(0.20)}}},
    }


def failures(findings):
    return [(f.method, f.metric) for f in findings if not f.passed]


def test_identical_scores_pass(baseline):
    assert failures(run_gate(copy.deepcopy(baseline), baseline)) == []


@pytest.mark.parametrize("metric, value, fails", [
    ("ds_global_tgt", 0.89, True),   # lower DINO score is worse
    ("ds_global_tgt", 0.91, False),  # higher is better
    ("lpips_tgt", 0.21, True),       # higher LPIPS is worse
    ("lpips_tgt", 0.19, False),
    ("lpips_tgt", 0.20005, False),   # within the default tolerance 1e-4
])
def test_direction_aware(baseline, metric, value, fails):
    current = copy.deepcopy(baseline)
    current["methods"]["tps-warp"]["metrics"][metric]["mean"] = value
    assert bool(failures(run_gate(current, baseline))) == fails


def test_tolerances_and_two_sided(baseline):
    current = copy.deepcopy(baseline)
    current["methods"]["tps-warp"]["metrics"]["lpips_tgt"]["mean"] = 0.21
    assert failures(run_gate(current, baseline, ["lpips_tgt=0.02"])) == []
    assert failures(run_gate(current, baseline, ["0.05"])) == []
    better = copy.deepcopy(baseline)
    better["methods"]["tps-warp"]["metrics"]["lpips_tgt"]["mean"] = 0.10
    assert failures(run_gate(better, baseline)) == []
    findings = run_gate(better, baseline, two_sided=True)
    assert failures(findings) == [("tps-warp", "lpips_tgt")] and "update the baseline" in findings[-1].message
    with pytest.raises(ConfigError, match="no metric 'md_s'"):
        run_gate(current, baseline, ["md_s=1"])
    with pytest.raises(ConfigError, match="METRIC=VALUE"):
        run_gate(current, baseline, ["lpips_tgt=abc"])


def test_missing_method_metric_and_coverage_fail(baseline):
    current = copy.deepcopy(baseline)
    current["methods"]["tps-warp"]["metrics"]["lpips_tgt"] = stats(0.20, n=2)
    del current["methods"]["tps-warp"]["metrics"]["ds_global_tgt"]
    assert failures(run_gate(current, baseline)) == [("tps-warp", "ds_global_tgt"), ("tps-warp", "lpips_tgt")]
    current["methods"] = {}
    assert failures(run_gate(current, baseline)) == [("tps-warp", "*")]


def test_other_benchmark_or_networks_fail(baseline):
    current = copy.deepcopy(baseline)
    current["benchmark"]["hash"] = "sha256:bbb"
    current["scorer"]["models"]["dino"]["id"] = "timm/vit_base_patch16_dinov3.lvd1689m"
    assert failures(run_gate(current, baseline)) == [("*", "benchmark"), ("*", "scorer")]


def test_cli_gate_exit_codes(baseline, tmp_path):
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    degraded = copy.deepcopy(baseline)
    degraded["methods"]["tps-warp"]["metrics"]["ds_global_tgt"]["mean"] = 0.5
    (tmp_path / "bad.json").write_text(json.dumps(degraded))

    def gate(scores):
        return subprocess.run([sys.executable, "-m", "tvbench", "gate", str(tmp_path / scores), "--baseline",
                               str(tmp_path / "base.json")], capture_output=True, text=True)

    passed, failed = gate("base.json"), gate("bad.json")
    assert passed.returncode == 0 and "gate passed" in passed.stderr
    assert failed.returncode == 1
    assert "FAIL tps-warp ds_global_tgt: worse by 0.4 > tolerance 0.0001 (higher is better)" in failed.stderr


def test_gate_table_shows_a_method_name_as_text_not_markup(baseline, tmp_path):
    from typer.testing import CliRunner

    from tvbench.cli.app import app

    baseline["methods"]["[red]m[/red]"] = baseline["methods"].pop("tps-warp")
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    result = CliRunner().invoke(app, ["gate", str(tmp_path / "base.json"), "--baseline", str(tmp_path / "base.json")],
                                env={"COLUMNS": "120"})
    assert result.exit_code == 0 and "[red]m[/red]" in result.stdout
