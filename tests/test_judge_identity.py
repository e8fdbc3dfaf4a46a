"""A judge you can trust over time: its identity recorded with every phase and compared by the gate, a pre-flight
request before any grading request, an error budget, and an opt-in for paid endpoints (issue 23, items 1 and 3)."""

from __future__ import annotations

import json
import shutil
import socket

import pytest

from conftest import run_tvbench
from tvbench.errors import ConfigError
from tvbench.gate import run_gate
from tvbench.judge import JudgeConfig
from tvbench.judge.config import parse_max_errors
from tvbench.judge.identity import identity_line, identity_mismatch
from tvbench.judge.preflight import BudgetExceeded, PreflightError
from tvbench.judge.testing import FakeJudgeServer, http_error, prose, vllm_model
from tvbench.scoring import ScoringConfig, score_results

FAST = ["--quiet", "--judge-max-attempts", "1", "--judge-concurrency", "1"]


@pytest.fixture
def results(identity_oracle_results):
    return identity_oracle_results


def score_cli(results, server_url, *extra, model="judge-a", metrics="pf,cp"):
    return run_tvbench("score", str(results), "--metrics", metrics, "--judge-base-url", server_url,
                       "--judge-model", model, *FAST, *extra, env={"OMP_NUM_THREADS": "1"})


def summary_of(results) -> dict:
    return json.loads((results / "summary.json").read_text())


def provider(fingerprint="fp_a1", root="/weights/qwen3-vl-8b@rev1", served=None, **kw) -> FakeJudgeServer:
    return FakeJudgeServer(models=[vllm_model("judge-a", root=root, max_model_len=32768)], served_model=served,
                           system_fingerprint=fingerprint, headers={"x-model-id": "judge-a", "x-request-id": "r1"},
                           **kw)


def test_identity_is_recorded_with_the_phase_and_kept_by_a_rerun_from_the_cache(results):
    with provider() as server:
        first = score_cli(results, server.base_url)
        assert first.returncode == 0, first.stderr
        assert len(server.requests) == 12  # grading requests only: 2 methods x 3 cases x 2 metrics
        assert [(a["method"], a["path"]) for a in server.asides] == [("GET", "/v1/models"),
                                                                     ("POST", "/v1/chat/completions")]
        identity = summary_of(results)["judge"]["identity"]
        rescored = score_cli(results, server.base_url, "--rescore")  # the reply cache answers: no request at all
        assert rescored.returncode == 0, rescored.stderr
        assert len(server.requests) == 12 and len(server.asides) == 2
    assert identity["model"] == identity["served_model"] == "judge-a"
    assert identity["system_fingerprint"] == "fp_a1" and identity["source"] == "pre-flight"
    assert identity["listing"] == {"id": "judge-a", "root": "/weights/qwen3-vl-8b@rev1", "owned_by": "vllm",
                                   "max_model_len": 32768}
    assert identity["headers"]["x-model-id"] == "judge-a" and "x-request-id" not in identity["headers"]
    assert identity["this_run"] == {"served_models": {"judge-a": 12}, "system_fingerprints": {"fp_a1": 12}}
    judge = summary_of(results)["judge"]
    assert judge["identity"]["source"] == "judge cache" and judge["identity"]["system_fingerprint"] == "fp_a1"
    line = judge["identity_line"]
    assert "\n" not in line and line.startswith("judge judge-a (")
    for part in ("root /weights/qwen3-vl-8b@rev1", "owned_by vllm", "max_model_len 32768", "fingerprint fp_a1",
                 "(from the cache)"):
        assert part in line, line
    assert identity_line(None, "m").startswith("judge m: identity not observed")


def test_a_provider_switch_is_flagged_and_fails_the_gate(results, tmp_path):
    other, same = tmp_path / "switched", tmp_path / "same"
    shutil.copytree(results, other)
    shutil.copytree(results, same)
    with provider() as a:
        assert score_cli(results, a.base_url).returncode == 0
    with provider() as again:  # the same weights behind another port: the same judge
        assert score_cli(same, again.base_url).returncode == 0
    with provider(fingerprint="fp_b7", root="/weights/qwen3-vl-8b@rev2", served="judge-a-2025-06") as b:
        assert score_cli(other, b.base_url).returncode == 0
    base, switched = summary_of(results), summary_of(other)
    message = identity_mismatch(base, switched, names=("baseline", "scores"))
    assert message is not None and "\n" not in message
    assert message.startswith("judged by different identities (baseline vs scores): ")
    assert "served_model 'judge-a' vs 'judge-a-2025-06'" in message and "'fp_a1' vs 'fp_b7'" in message
    assert "root=/weights/qwen3-vl-8b@rev1" in message and "root=/weights/qwen3-vl-8b@rev2" in message
    assert identity_mismatch(base, summary_of(same)) is None
    assert identity_mismatch(base, {"methods": {}}) is None  # nothing judged on one side: nothing to compare
    unrecorded = {**base, "judge": {k: v for k, v in base["judge"].items() if k != "identity"}}
    assert "not recorded in the second" in identity_mismatch(base, unrecorded)

    failing = [f for f in run_gate(switched, base, ["1"]) if not f.passed]
    assert [(f.method, f.metric) for f in failing] == [("*", "judge")]  # the scores agree, the judges do not
    gate = run_tvbench("gate", str(other), "--baseline", str(results / "summary.json"), "--tolerance", "1")
    assert gate.returncode == 1
    fails = [line for line in gate.stderr.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and fails[0].startswith("FAIL * judge: judged by different identities"), gate.stderr
    passed = run_tvbench("gate", str(same), "--baseline", str(results / "summary.json"))
    assert passed.returncode == 0, passed.stderr


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("kind, server_kw, model, expected", [
    ("unknown model", {}, "judge-b", "model 'judge-b' is not served here (HTTP 404: The model `judge-b` does not "
                                     "exist.); it serves judge-a"),
    ("no structured output", {"structured": False}, "judge-a", "the server rejects structured output"),
    ("no score", {"preflight": prose("Ready when you are.")}, "judge-a", "structured output is not honoured"),
    ("key refused", {"preflight": http_error(401, message="invalid key")}, "judge-a",
     "the server refused the API key (HTTP 401: invalid key)"),
    ("server down", None, "judge-a", "cannot reach the server"),
])
def test_preflight_fails_in_one_line_before_any_grading_request(results, kind, server_kw, model, expected):
    if server_kw is None:
        url = closed_port_url()
        done = score_cli(results, url, model=model)
        requests = []
    else:
        with FakeJudgeServer(models=[vllm_model("judge-a")], **server_kw) as server:
            url = server.base_url
            done = score_cli(results, url, model=model)
            requests = server.requests
    assert done.returncode == 2, (kind, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: judge pre-flight failed at {url}: "), (kind, lines)
    assert expected in lines[0], (kind, lines[0])
    assert requests == []  # nothing was graded, nothing queued


def test_without_preflight_a_server_without_structured_output_falls_back_to_plain_text(results):
    with FakeJudgeServer(structured=False) as server:
        done = score_cli(results, server.base_url, "--no-judge-preflight", metrics="pf")
        assert done.returncode == 0, done.stderr
        assert server.preflights == [] and [a["method"] for a in server.asides] == ["GET"]
    identity = summary_of(results)["judge"]["identity"]
    assert identity["source"] == "first request (no pre-flight)" and identity["served_model"] == "judge-a"
    assert identity["models_endpoint"] == "absent"


def test_a_failing_server_stops_after_the_error_budget(results):
    with FakeJudgeServer(lambda request, index: http_error(500)) as server:
        done = score_cli(results, server.base_url, "--judge-max-errors", "2")
        assert done.returncode == 1, done.stderr
        assert len(server.requests) == 3  # one at a time: the third failure is one over the budget
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: judge phase stopped after 3 failed judgments (--judge-max-errors 2) at "
                               f"{server.base_url}; last: ") and "HTTP 500" in lines[0]


def test_a_fractional_budget_and_a_rerun_that_resumes(results):
    down = True

    def script(request, index):
        return http_error(503) if down else prose('{"reasoning": "fine", "score": 3}')

    with FakeJudgeServer(script) as server:
        config = JudgeConfig(base_url=server.base_url, model="judge-a", max_attempts=1, concurrency=1,
                             max_errors=0.25)  # of 12 judgments: 3 may fail, the fourth stops the phase
        with pytest.raises(BudgetExceeded, match=r"after 4 failed judgments \(--judge-max-errors 0.25 of the "):
            score_results(results, ScoringConfig(metrics=["pf", "cp"], judge=config), progress=False)
        assert len(server.requests) == 4
        down = False
        summary = score_results(results, ScoringConfig(metrics=["pf", "cp"], judge=config), progress=False)
        assert len(server.requests) == 4 + 12
    assert summary["methods"]["oracle"]["metrics"]["pf"]["coverage"] == 1.0


def test_unparseable_replies_count_against_the_budget(results):
    with FakeJudgeServer(lambda request, index: prose("Looks fine.")) as server:
        config = JudgeConfig(base_url=server.base_url, model="judge-a", max_attempts=1, concurrency=1, max_errors=0)
        with pytest.raises(BudgetExceeded, match="after 1 failed judgments"):
            score_results(results, ScoringConfig(metrics=["pf"], judge=config), progress=False)
        assert len(server.requests) == 1


def test_paid_endpoints_need_an_explicit_opt_in(results, monkeypatch):
    done = run_tvbench("score", str(results), "--metrics", "pf", "--judge-base-url", "https://api.example.com/v1",
                       env={"TVBENCH_JUDGE_ALLOW_PAID": ""})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: judge server https://api.example.com/v1 is not local (localhost, 127.0.0.1, ::1) and may bill every "
        "request: pass --judge-allow-paid (or set TVBENCH_JUDGE_ALLOW_PAID=1) to send to it"]
    assert not (results / "scores.jsonl").exists()  # refused before any scoring
    monkeypatch.delenv("TVBENCH_JUDGE_ALLOW_PAID", raising=False)
    for url in ("http://localhost:8000/v1", "http://127.0.0.1:8000/v1", "http://[::1]:8000/v1"):
        JudgeConfig(base_url=url).resolved().check_paid()
    for url in ("https://api.openai.com/v1", "http://10.0.0.5:8000/v1", "http://localhost.example.com/v1"):
        with pytest.raises(ConfigError, match="--judge-allow-paid"):
            JudgeConfig(base_url=url).resolved().check_paid()
        JudgeConfig(base_url=url, allow_paid=True).resolved().check_paid()
    monkeypatch.setenv("TVBENCH_JUDGE_ALLOW_PAID", "1")
    JudgeConfig(base_url="https://api.openai.com/v1").resolved().check_paid()
    # the library refuses too, before any request (the scorer builds no client for a paid URL without the opt-in)
    monkeypatch.delenv("TVBENCH_JUDGE_ALLOW_PAID")
    with pytest.raises(ConfigError, match="is not local"):
        score_results(results, ScoringConfig(metrics=["pf"], judge=JudgeConfig(base_url="http://10.9.9.9:1/v1")),
                      progress=False)


def test_max_errors_is_a_count_or_a_fraction():
    assert parse_max_errors(None) is None and parse_max_errors("0") == 0 and parse_max_errors("20") == 20
    assert parse_max_errors("0.1") == 0.1
    for bad in ("1.5", "-1", "abc", "nan"):
        with pytest.raises(ConfigError, match="--judge-max-errors"):
            parse_max_errors(bad)
    assert JudgeConfig(max_errors=0.1).error_budget(45) == 4 and JudgeConfig(max_errors=3).error_budget(45) == 3
    assert JudgeConfig().error_budget(45) is None


def test_preflight_error_is_a_config_error():
    assert issubclass(PreflightError, ConfigError) and PreflightError("x").exit_code == 2
    assert BudgetExceeded("x").exit_code == 1
