"""Judge metrics inside `tvbench score`: rows, summary aggregates, memo and cache reuse, coverage flag, drag variant."""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from tvbench.cases import load_benchmark
from tvbench.cli import app
from tvbench.judge import JudgeConfig
from tvbench.judge.testing import FakeJudgeServer, default_grader, http_error, prose
from tvbench.methods import create_method
from tvbench.metrics import default_metrics
from tvbench.report import build_leaderboard, render
from tvbench.runner import run_method
from tvbench.scoring import Scorer, ScoringConfig, score_results

from conftest import shifted_cases, write_bench


@pytest.fixture
def results(identity_oracle_results):
    return identity_oracle_results


def rows_of(out):
    return [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]


def judge_config(server, **kw) -> JudgeConfig:
    return JudgeConfig(base_url=server.base_url, model="test-judge", backoff_base_s=0.01, backoff_max_s=0.02,
                       max_attempts=2, **kw)


def test_judge_metrics_are_opt_in():
    assert not {"pf", "cp", "pf_drag", "cp_drag"} & set(default_metrics())


def test_cli_scores_pf_and_cp_and_a_rerun_sends_nothing(results, monkeypatch):
    monkeypatch.setenv("TVBENCH_JUDGE_API_KEY", "sk-never-shown")
    runner = CliRunner()
    with FakeJudgeServer() as server:
        args = ["score", str(results), "--metrics", "pf,cp", "--quiet", "--judge-base-url", server.base_url,
                "--judge-model", "test-judge", "--judge-concurrency", "4", "--judge-price-in", "0.5",
                "--judge-price-out", "2"]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        assert len(server.requests) == 2 * 3 * 2  # methods x cases x metrics
        assert server.requests[0]["model"] == "test-judge"
        again = runner.invoke(app, args)
        rescored = runner.invoke(app, args + ["--rescore"])  # past the row memo: the reply cache answers
        assert again.exit_code == 0 and rescored.exit_code == 0 and len(server.requests) == 12
    rows = [r for r in rows_of(results) if r["metric"] in ("pf", "cp")]
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    row = rows[0]
    assert set(row) >= {"case", "method", "metric", "value", "status", "detail", "edit_sha", "resized", "key", "judge"}
    assert row["judge"]["prompt_id"] in ("pf-v1", "cp-v1") and len(row["judge"]["prompt_sha256"]) == 64
    assert row["value"] == row["judge"]["scores"][0] / 4 and row["judge"]["repeats"][0]["raw"].startswith("{")
    summary = json.loads((results / "summary.json").read_text())
    pf = summary["methods"]["oracle"]["metrics"]["pf"]
    assert pf["coverage"] == 1.0 and pf["judge"]["flagged"] is False and pf["judge"]["prompt_id"] == "pf-v1"
    assert pf["judge"]["tokens"] == {"prompt": 3 * 1200, "completion": 3 * 80}
    assert pf["judge"]["cost_usd"] == pytest.approx((3 * 1200 * 0.5 + 3 * 80 * 2) / 1e6)
    assert summary["scorer"]["models"]["judge"]["model"] == "test-judge"
    assert summary["judge"]["this_run"]["requests"] == 0 and summary["judge"]["this_run"]["cache_hits"] == 12
    assert summary["judge"]["server"] == server.base_url
    board = runner.invoke(app, ["report", str(results)])
    everything = first.output + again.output + board.output + (results / "scores.jsonl").read_text() \
        + json.dumps(summary)
    assert "sk-never-shown" not in everything
    assert "(3/3)" in board.output  # coverage next to PF/CP even when complete


def test_low_coverage_is_flagged_and_errors_are_retried_on_rerun(results):
    down = threading.Event()
    down.set()

    def script(request, index):
        # the identity method's edits: the request's first image (source) equals its third (edit)
        urls = [p["image_url"]["url"] for p in request["messages"][0]["content"] if p["type"] == "image_url"]
        if down.is_set() and urls[0] == urls[2]:
            return http_error(500)
        return default_grader(request, index)

    with FakeJudgeServer(script) as server:
        config = ScoringConfig(metrics=["pf"], smoke=True, device="cpu", judge=judge_config(server))
        summary = score_results(results, config, progress=False)
        stats = summary["methods"]["identity"]["metrics"]["pf"]  # all three identity judgments failed
        assert stats["status_counts"]["error"] == 3 and stats["coverage"] == 0.0 and stats["judge"]["flagged"]
        assert summary["methods"]["oracle"]["metrics"]["pf"]["judge"]["flagged"] is False
        text = render(build_leaderboard(summary), "markdown")
        assert "(0/3, low coverage)" in text and "below 95%" in text
        sent = len(server.requests)
        down.clear()  # the server recovers: a rerun asks only for the three failed judgments
        summary = score_results(results, config, progress=False)
        assert len(server.requests) == sent + 3
    assert summary["methods"]["identity"]["metrics"]["pf"]["coverage"] == 1.0


def test_unparseable_replies_are_counted_not_scored(results):
    with FakeJudgeServer(lambda request, index: prose("It looks fine, maybe 3 or 4.")) as server:
        summary = score_results(results, ScoringConfig(metrics=["cp"], judge=judge_config(server)), progress=False)
    cp = summary["methods"]["oracle"]["metrics"]["cp"]
    assert cp["mean"] is None and cp["status_counts"]["unparseable"] == 3 and cp["judge"]["flagged"]
    assert all(r["value"] is None and r["judge"]["repeats"][0]["raw"] for r in rows_of(results))


def test_repeats_give_std_and_disagreement(results):
    with FakeJudgeServer() as server:
        config = ScoringConfig(metrics=["pf"], judge=judge_config(server, repeats=3, temperature=1.0))
        summary = score_results(results, config, progress=False)
        assert len(server.requests) == 2 * 3 * 3
    judge = summary["methods"]["identity"]["metrics"]["pf"]["judge"]
    assert judge["repeats"] == 3 and len(judge["repeat_means"]) == 3
    assert judge["std_over_repeats"] is not None and 0 <= judge["disagreement_rate"] <= 1
    assert summary["scorer"]["models"]["judge"]["decoding"]["temperature"] == 1.0
    stats = summary["methods"]["identity"]["metrics"]["pf"]
    assert stats["ci"] is None and stats["units"] == 3  # 3 cases: fewer than an interval needs (MIN_UNITS)
    from tvbench.analysis import confidence_interval, load_scores, units_for

    # the two-stage bootstrap itself (cases, and the 3 repeats within each), below the display minimum
    ci = confidence_interval(units_for(load_scores(results), "identity", "pf", summary["metrics"]["pf"]),
                             min_units=2)
    assert ci.repeats == 3 and ci.units == 3 and ci.low <= stats["mean"] <= ci.high
    text = render(build_leaderboard(summary), "markdown")
    assert " ± " in text and "3 repeats" in text  # mean ± std over repeats, and the repeats in the provenance line
    board = build_leaderboard(summary)
    assert r"$\pm$" in render(board, "latex") and "pf_std" in render(board, "csv")
    assert json.loads(render(board, "json"))["rows"][0]["metrics"]["pf"]["flagged"] is False
    assert "±" in render(board, "html")


def test_metric_keys_follow_model_prompt_and_decoding_but_not_the_server():
    def keys(**kw):
        return Scorer(ScoringConfig(metrics=["pf", "cp"], judge=JudgeConfig(**{"base_url": "http://a:1/v1", **kw})))\
            .keys

    base = keys()
    assert keys(base_url="http://b:2/v1") == base
    assert keys(model="other")["pf"] != base["pf"]
    assert keys(temperature=0.3)["pf"] != base["pf"]
    assert keys(repeats=2)["pf"] != base["pf"]
    changed = keys(prompts={"pf": "pf-drag-v1"})
    assert changed["pf"] != base["pf"] and changed["cp"] == base["cp"]


def test_drag_variant_scores_benchmarks_without_targets(tmp_path):
    records, images = shifted_cases(2)
    for record in records:
        del record["target"], record["mask_target"]
    bench = load_benchmark(write_bench(tmp_path / "bench", records, images))
    run_method(create_method("identity"), bench, tmp_path / "results", progress=False)
    with FakeJudgeServer() as server:
        config = ScoringConfig(metrics=["pf", "pf_drag", "cp_drag"], judge=judge_config(server))
        summary = score_results(tmp_path / "results", config, progress=False)
        parts = server.requests[0]["messages"][0]["content"]
    metrics = summary["methods"]["identity"]["metrics"]
    assert metrics["pf"]["status_counts"]["not_applicable"] == 2 and metrics["pf"]["mean"] is None
    assert metrics["pf_drag"]["n"] == 2 and metrics["pf_drag"]["judge"]["prompt_id"] == "pf-drag-v1"
    assert metrics["cp_drag"]["judge"]["prompt_id"] == "cp-drag-v1"
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"] and "red arrow" in parts[-1]["text"]
    assert parts[0]["image_url"]["url"] != parts[1]["image_url"]["url"]  # the arrows are drawn on the second


def test_missing_edits_are_missing_not_sent(results):
    (results / "identity" / "case-0.png").unlink()
    with FakeJudgeServer() as server:
        summary = score_results(results, ScoringConfig(metrics=["pf"], judge=judge_config(server)), progress=False)
        assert len(server.requests) == 5
    assert summary["methods"]["identity"]["metrics"]["pf"]["status_counts"]["missing"] == 1
