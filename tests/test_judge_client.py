"""The judge client, cache and evaluator against a real HTTP server on 127.0.0.1 with scripted replies."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from tvbench.errors import ConfigError
from tvbench.judge import Evaluator, JudgeCache, JudgeClient, JudgeConfig, JudgeItem, load_prompt
from tvbench.judge.cache import CachedReply
from tvbench.judge.client import retry_after_seconds
from tvbench.judge.images import draw_drag_arrows
from tvbench.judge.prompts import PROMPT_DIR, available_prompts
from tvbench.ratelimit import RateLimiter
from tvbench.judge.testing import (FakeJudgeServer, Scripted, cut_midway, dropped, hang, http_error, json_score,
                                   prose, refusal)

PROMPT = load_prompt("pf-v1")


def config(server, **kw) -> JudgeConfig:
    options = dict(base_url=server.base_url, model="test-judge", backoff_base_s=0.01, backoff_max_s=0.02,
                   timeout_s=5.0, max_attempts=3, concurrency=4)
    options.update(kw)
    return JudgeConfig(**options).resolved()


def image(seed: int) -> Image.Image:
    return Image.new("RGB", (16, 12), (seed * 40 % 256, 90, 200))


def item(name: str, seed: int = 0, prompt=PROMPT) -> JudgeItem:
    """An item whose instruction is its name, so a script can answer per item whatever the request order."""
    return JudgeItem(name, prompt, name, lambda: [image(seed), image(seed + 1), image(seed + 2)])


def by_instruction(answers: dict[str, list[Scripted]]):
    """A script answering each item's k-th request with ``answers[name][k]`` (the last one repeated)."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def script(request: dict, index: int) -> Scripted:
        text = request["messages"][0]["content"][-1]["text"]
        name = next(n for n in answers if f'"{n}"' in text)
        with lock:
            k = seen[name] = seen.get(name, -1) + 1
        replies = answers[name]
        return replies[min(k, len(replies) - 1)]

    return script


def evaluate(server, items, tmp_path, **kw):
    cache = JudgeCache(tmp_path / "judge.sqlite")
    evaluator = Evaluator(config(server, **kw), cache)
    try:
        results, stats = evaluator.evaluate(items)
    finally:
        evaluator.close()
        cache.close()
    return {r.id: r for r in results}, stats


ANSWERS = {
    "json": [json_score(3)],
    "prose": [prose("The edit is close to the reference. Score: 2")],
    "garbage": [prose("lorem ipsum ###")],
    "refusal": [refusal()],
    "two-numbers": [prose("Score: 3, though one could argue Score: 1.")],
    "off-scale": [json_score(7)],
    "rate-limited": [http_error(429, retry_after=0), json_score(4)],
    "flaky": [http_error(500), http_error(503), json_score(1)],
    "down": [http_error(500)],
    "dropped": [dropped(), json_score(2)],
    "cut-midway": [cut_midway(4), json_score(2)],
    "bad-request": [http_error(404)],
    "not-json-body": [Scripted(body=b"<html>oops</html>"), json_score(0)],
}


def test_statuses_retries_and_raw_replies(tmp_path):
    with FakeJudgeServer(by_instruction(ANSWERS)) as server:
        results, stats = evaluate(server, [item(name, k) for k, name in enumerate(ANSWERS)], tmp_path)
    got = {name: (r.status, r.scores) for name, r in results.items()}
    assert got == {
        "json": ("ok", [3]), "prose": ("ok", [2]), "garbage": ("unparseable", [None]),
        "refusal": ("refused", [None]), "two-numbers": ("unparseable", [None]), "off-scale": ("unparseable", [None]),
        "rate-limited": ("ok", [4]), "flaky": ("ok", [1]), "down": ("error", [None]), "dropped": ("ok", [2]),
        "cut-midway": ("ok", [2]), "bad-request": ("error", [None]), "not-json-body": ("ok", [0]),
    }
    attempts = {name: r.judgments[0].attempts for name, r in results.items()}
    assert attempts["json"] == 1 and attempts["rate-limited"] == 2 and attempts["flaky"] == 3
    assert attempts["down"] == 3 and attempts["dropped"] == 2 and attempts["bad-request"] == 1  # 4xx: not retried
    assert attempts["cut-midway"] == 2  # half a body is a failed request, never read
    assert results["json"].value == 0.75 and results["garbage"].value is None
    assert results["garbage"].judgments[0].raw == "lorem ipsum ###"  # the raw reply is kept
    assert "refusal" in results["refusal"].judgments[0].raw
    assert "HTTP 500" in results["down"].detail and "3 attempt" in results["down"].detail
    assert stats.requests == len(server.requests) == 13 + 1 + 2 + 2 + 1 + 1 + 1  # first tries + retries
    assert stats.retries == 8 and stats.prompt_tokens == 1200 * 11  # eleven replies came back


def test_timeouts_are_retried_then_recorded_as_errors(tmp_path):
    answers = {"slow-once": [hang(2.0), json_score(3)], "always-slow": [hang(2.0)]}
    with FakeJudgeServer(by_instruction(answers)) as server:
        start = time.perf_counter()
        results, _ = evaluate(server, [item("slow-once"), item("always-slow", 5)], tmp_path, timeout_s=0.3,
                              max_attempts=2)
        elapsed = time.perf_counter() - start
    assert results["slow-once"].status == "ok" and results["slow-once"].judgments[0].attempts == 2
    assert results["always-slow"].status == "error" and "timed out" in results["always-slow"].detail
    assert elapsed < 3.0


def test_retry_after_is_honoured(tmp_path):
    with FakeJudgeServer([http_error(429, retry_after=1), json_score(2)]) as server:
        client = JudgeClient(config(server))
        start = time.perf_counter()
        reply = client.chat([{"role": "user", "content": "hi"}])
        waited = time.perf_counter() - start
        client.close()
    assert reply.error is None and reply.attempts == 2 and reply.waits == [1.0] and waited >= 0.95
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert retry_after_seconds({}) is None


def test_second_run_makes_no_request_and_a_rerun_retries_only_failures(tmp_path):
    answers = {"a": [json_score(1)], "b": [prose("no idea")], "c": [refusal()], "d": [http_error(500)]}
    with FakeJudgeServer(by_instruction(answers)) as server:
        items = [item(name, k) for k, name in enumerate(answers)]
        first, _ = evaluate(server, items, tmp_path, max_attempts=2)
        sent = len(server.requests)
        assert {k: r.status for k, r in first.items()} == {"a": "ok", "b": "unparseable", "c": "refused", "d": "error"}
        answers["d"] = [json_score(4)]  # the server recovers
        second, stats = evaluate(server, items, tmp_path, max_attempts=2)
        assert len(server.requests) == sent + 1  # only the failed item was asked again
        assert second["d"].status == "ok" and second["d"].scores == [4]
        assert stats.cache_hits == 3 and stats.requests == 1
        third, stats = evaluate(server, items, tmp_path)
        assert len(server.requests) == sent + 1 and stats.requests == 0 and stats.cache_hits == 4
        assert third["a"].judgments[0].cached and third["a"].scores == [1] and third["b"].status == "unparseable"
        # another model, prompt or decoding is another judgment
        evaluate(server, items[:1], tmp_path, temperature=0.5)
        evaluate(server, items[:1], tmp_path, model="other-judge")
        evaluate(server, [item("a", 0, load_prompt("cp-v1"))], tmp_path)
        assert len(server.requests) == sent + 4


def test_repeats_record_every_score_and_their_spread(tmp_path):
    scores = iter([1, 3, 2, 2])

    def script(request, index):
        return json_score(next(scores))

    with FakeJudgeServer(script) as server:
        results, _ = evaluate(server, [item("x"), item("y", 3)], tmp_path, repeats=2, temperature=0.7,
                              concurrency=1)
        seeds = [r["seed"] for r in server.requests]
    assert seeds == [0, 1, 0, 1]  # repeat k sends seed + k
    assert results["x"].scores == [1, 3] and results["x"].value == 0.5 and results["x"].std == 0.25
    assert results["y"].scores == [2, 2] and results["y"].std == 0.0


def test_a_failed_repeat_leaves_no_value(tmp_path):
    with FakeJudgeServer([json_score(3), prose("hmm")]) as server:
        results, _ = evaluate(server, [item("x")], tmp_path, repeats=2, temperature=0.7)
    assert results["x"].status == "unparseable" and results["x"].value is None and results["x"].scores == [3, None]


def test_concurrency_bound_holds_and_is_used(tmp_path):
    with FakeJudgeServer(latency=0.05) as server:
        items = [item(f"i{k}", k) for k in range(24)]
        results, _ = evaluate(server, items, tmp_path, concurrency=3)
    assert server.max_in_flight == 3 and len(server.requests) == 24
    assert all(r.status == "ok" for r in results.values())


def test_rate_limit_spaces_requests():
    now = [0.0]
    waits = []
    limiter = RateLimiter(120, clock=lambda: now[0], sleep=waits.append)
    for _ in range(3):
        limiter.acquire()
    assert waits == [0.5, 1.0]
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_structured_output_is_requested_and_dropped_when_the_server_rejects_it(tmp_path):
    rejection = Scripted(status=400, body=b'{"error": {"message": "response_format json_schema is not supported"}}')
    with FakeJudgeServer([rejection, prose("Score: 2"), prose("Score: 1")]) as server:
        client = JudgeClient(config(server))
        first = client.chat([{"role": "user", "content": "a"}])
        second = client.chat([{"role": "user", "content": "b"}])
        client.close()
        requests = server.requests
    assert requests[0]["response_format"]["type"] == "json_schema"
    assert "response_format" not in requests[1] and "response_format" not in requests[2]
    assert first.content == "Score: 2" and first.attempts == 1 and second.content == "Score: 1"


def test_images_go_as_png_data_urls_and_the_key_is_never_sent_elsewhere(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TVBENCH_JUDGE_API_KEY", "sk-secret-123")
    with FakeJudgeServer() as server:
        cfg = config(server)
        assert "sk-secret-123" not in repr(cfg) and "sk-secret-123" not in str(cfg.decoding())
        evaluate(server, [item("x")], tmp_path)
        parts = server.requests[0]["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 3 + ["text"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert '"x"' in parts[-1]["text"] and "{{instruction}}" not in parts[-1]["text"]
    assert b"sk-secret-123" not in (tmp_path / "judge.sqlite").read_bytes()
    assert "sk-secret-123" not in capsys.readouterr().err


def test_config_errors_are_one_line(monkeypatch):
    for name in ("TVBENCH_JUDGE_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="--judge-base-url"):
        JudgeConfig().resolved()
    with pytest.raises(ConfigError, match="expected http"):
        JudgeConfig(base_url="localhost:8000").resolved()
    with pytest.raises(ConfigError, match="concurrency"):
        JudgeConfig(base_url="http://h/v1", concurrency=0).resolved()
    assert JudgeConfig(base_url="http://user:pw@h:8000/v1?key=x").resolved().server() == "http://h:8000/v1"


def test_prompts_are_versioned_files_with_their_sha256():
    assert set(available_prompts()) >= {"pf-v1", "cp-v1", "pf-drag-v1", "cp-drag-v1"}
    prompt = load_prompt("pf-v1")
    import hashlib

    assert prompt.sha256 == hashlib.sha256((PROMPT_DIR / "pf-v1.txt").read_bytes()).hexdigest()
    assert prompt.layout == ("source", "target", "edit")
    assert load_prompt("pf-drag-v1").layout == ("source", "source+arrows", "edit")
    assert "(none given" in load_prompt("cp-drag-v1").render(None)
    with pytest.raises(ConfigError, match="not found"):
        load_prompt("pf-v999")


def test_drag_arrows_are_drawn_on_a_copy():
    source = Image.new("RGB", (64, 48), (255, 255, 255))
    drawn = draw_drag_arrows(source, [(10, 10, 50, 30)])
    assert source.getpixel((10, 10)) == (255, 255, 255)  # untouched
    assert drawn.getpixel((10, 10)) == (230, 25, 25)  # handle dot
    assert drawn.getpixel((48, 29)) == (30, 90, 255)  # arrowhead near the target


def _write_many(path: str, start: int, n: int) -> None:
    from tvbench.judge.cache import CachedReply, JudgeCache

    cache = JudgeCache(Path(path))
    for k in range(start, start + n):
        cache.put(f"key-{k}", model="m", prompt_id="pf-v1", reply=CachedReply(f"Score: {k % 5}", None, "stop", 1, 1))
    cache.close()


def test_cache_is_shared_safely_by_processes_and_threads(tmp_path):
    import multiprocessing

    path = str(tmp_path / "shared.sqlite")
    JudgeCache(Path(path)).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(path, k * 150, 150)) for k in range(2)]
    threads = [threading.Thread(target=_write_many, args=(path, 300 + k * 150, 150)) for k in range(2)]
    for worker in procs + threads:
        worker.start()
    for worker in procs + threads:
        worker.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    cache = JudgeCache(Path(path))
    assert len(cache) == 600 and cache.get("key-451").content == "Score: 1" and cache.get("nope") is None
    assert cache.journal_mode() == "wal"
    cache.close()


def test_closing_the_cache_while_workers_write_neither_crashes_nor_loses_their_replies(tmp_path):
    """Ctrl-C closes the cache while requests in flight still finish and write (once a segfault)."""
    cache = JudgeCache(tmp_path / "judge.sqlite")
    reply = CachedReply("Score: 2", None, "stop", 10, 5)
    stop = threading.Event()
    written: list[str] = []

    def writer(name: str) -> None:
        k = 0
        while not stop.is_set() or k < 50:
            key = f"{name}-{k}"
            cache.put(key, model="m", prompt_id="p", reply=reply)
            written.append(key)
            k += 1

    workers = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.05)
    cache.close()  # the workers keep writing after this
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    reopened = JudgeCache(tmp_path / "judge.sqlite")
    assert len(reopened) == len(written) and reopened.get(written[-1]) == reply
    reopened.close()


def test_an_interrupt_stops_the_queue_and_keeps_what_came_back(tmp_path):
    def interrupted():
        time.sleep(0.2)
        raise KeyboardInterrupt

    work = [item(f"i{k}", k) for k in range(40)]
    work[3] = JudgeItem("stop", PROMPT, "stop", interrupted)
    with FakeJudgeServer(latency=0.02) as server:
        with pytest.raises(KeyboardInterrupt):
            evaluate(server, work, tmp_path, concurrency=2)
        sent = len(server.requests)
        assert 0 < sent < 30
        _, stats = evaluate(server, work[:3], tmp_path)  # the first replies were cached before the interrupt
    assert stats.requests == 0 and stats.cache_hits == 3
