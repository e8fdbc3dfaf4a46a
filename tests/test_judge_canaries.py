"""Canary judgments (issue 23, item 2): drift against the expected grades and the folder's previous run, the gate."""

from __future__ import annotations

import json

import pytest

from conftest import run_tvbench
from tvbench.gate import run_gate
from tvbench.judge.canaries import CANARIES, canary_drift, canary_report
from tvbench.judge.images import png_bytes
from tvbench.judge.testing import FakeJudgeServer, canary_grader, vllm_model

FAST = ["--quiet", "--judge-max-attempts", "1", "--judge-concurrency", "1"]
N_CANARIES = sum(len(c.expected) for c in CANARIES)  # pf and cp, each canary whose grade the rubric pins down


@pytest.fixture
def results(identity_oracle_results):
    return identity_oracle_results


def score_cli(results, server, *extra, model="judge-a"):
    return run_tvbench("score", str(results), "--metrics", "pf,cp", "--judge-base-url", server.base_url,
                       "--judge-model", model, *FAST, *extra, env={"OMP_NUM_THREADS": "1"})


def canaries_of(results) -> dict:
    return json.loads((results / "summary.json").read_text())["judge"]["canaries"]


def test_the_canaries_are_deterministic_small_and_span_the_scale():
    grades = {kind: {c.expected[kind] for c in CANARIES if kind in c.expected} for kind in ("pf", "cp")}
    assert grades["pf"] == {0, 1, 2, 3, 4} and grades["cp"] == {0, 2, 3, 4}
    for canary in CANARIES:
        first, again = canary.images(("source", "target", "edit")), canary.images(("source", "target", "edit"))
        assert [png_bytes(i) for i in first] == [png_bytes(i) for i in again]
    assert len({png_bytes(c.edit()) for c in CANARIES}) == len(CANARIES)
    assert sum(len(png_bytes(c.edit())) for c in CANARIES) < 20_000


def test_a_provider_switch_shows_as_canary_drift_and_fails_the_gate(results, tmp_path):
    with FakeJudgeServer(models=[vllm_model("judge-a")]) as a:  # grades the canaries as constructed
        first = score_cli(results, a)
        assert first.returncode == 0, first.stderr
        assert len(a.canaries) == N_CANARIES and len(a.requests) == 12  # canaries kept apart from the grading
        canaries = canaries_of(results)
        assert canaries["drift"]["vs_expected"] == 0 and canaries["drift"]["vs_previous"] is None
        assert {i["got"] for i in canaries["items"]} == {i["expected"] for i in canaries["items"]}
        assert all(i["previous"] is None for i in canaries["items"])
        baseline = json.loads((results / "summary.json").read_text())
        (tmp_path / "baseline.json").write_text(json.dumps(baseline))

        again = score_cli(results, a, "--rescore")  # same judge: the cache answers, no new canary request
        assert again.returncode == 0, again.stderr
        assert len(a.canaries) == N_CANARIES
        canaries = canaries_of(results)
        assert canaries["drift"]["vs_expected"] == 0 and canaries["drift"]["vs_previous"] == 0
        assert canaries["this_run"]["requests"] == 0 and canaries["this_run"]["cache_hits"] == N_CANARIES
        assert all(i["previous"] == i["got"] for i in canaries["items"])
    same = run_gate(json.loads((results / "summary.json").read_text()), baseline, ["1"], max_canary_drift=0.1)
    assert all(f.passed for f in same), [f.message for f in same if not f.passed]

    # another provider: another model id (so the reply cache cannot answer) that grades every canary one higher
    with FakeJudgeServer(models=[vllm_model("judge-b")], canary=canary_grader(+1)) as b:
        switched = score_cli(results, b, model="judge-b")
        assert switched.returncode == 0, switched.stderr
        assert len(b.canaries) == N_CANARIES
    canaries = canaries_of(results)
    items = {(i["canary"], i["metric"]): i for i in canaries["items"]}
    assert items[("unchanged", "pf")] == {"canary": "unchanged", "metric": "pf", "expected": 0, "got": 1.0,
                                          "previous": 0.0, "status": "ok"}
    assert items[("exact", "cp")]["got"] == 4.0  # clamped at the top of the scale
    off = sum(i["expected"] < 4 for i in canaries["items"]) / N_CANARIES
    assert canaries["drift"]["vs_expected"] == pytest.approx(off)
    assert canaries["drift"]["vs_previous"] == pytest.approx(off)
    current = json.loads((results / "summary.json").read_text())
    assert canary_drift(current, baseline) == (pytest.approx(off), N_CANARIES)

    failing = [f for f in run_gate(current, baseline, ["1"], max_canary_drift=0.1) if not f.passed]
    assert ("*", "canaries") in [(f.method, f.metric) for f in failing]
    gate = run_tvbench("gate", str(results), "--baseline", str(tmp_path / "baseline.json"), "--tolerance", "1",
                       "--max-canary-drift", "0.1")
    assert gate.returncode == 1
    assert any(line.startswith("FAIL * canaries: ") and "drift" in line for line in gate.stderr.splitlines()), \
        gate.stderr
    same_gate = run_tvbench("gate", str(tmp_path / "baseline.json"), "--baseline", str(tmp_path / "baseline.json"),
                            "--max-canary-drift", "0.1")
    assert same_gate.returncode == 0, same_gate.stderr


def test_canary_report_without_replies_or_previous_run():
    report = canary_report({("exact", "pf"): (None, "error", "HTTP 500")}, None)
    assert report["drift"]["vs_expected"] is None and report["drift"]["answered"] == 0
    assert report["items"][0] == {"canary": "exact", "metric": "pf", "expected": 4, "got": None, "previous": None,
                                  "status": "error", "detail": "HTTP 500"}
