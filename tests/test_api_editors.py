"""API editors (nanobanana-pro, gpt-image) against fake Gemini and OpenAI servers on 127.0.0.1.

The real SDKs (google-genai, openai) send real HTTP; the servers answer from scripts keyed by each case's
instruction, so concurrent requests keep each case's story: an image, a refusal, 429 then success, 500
forever, a timeout, a malformed body, a dropped connection. The runs go through the installed ``tvbench``
command, so the manifest is checked the way users read it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import textured, write_bench
from tvbench.cases import Case
from tvbench.cases.case import ImageRef
from tvbench.errors import ConfigError
from tvbench.io import encode_png
from tvbench.methods import Runtime, create_method
from tvbench.testing.http_server import Scripted, dropped, http_error
from tvbench.testing.image_apis import (FakeGeminiServer, FakeOpenAIImagesServer, by_prompt, gemini_blocked,
                                        gemini_finish, gemini_image, gemini_prompt, openai_empty, openai_image,
                                        openai_moderation_blocked, openai_prompt)

pytest.importorskip("google.genai")
pytest.importorskip("openai")

GEMINI_KEY = "AIza-test-key-that-must-never-be-written-7f3c"
OPENAI_KEY = "sk-test-key-that-must-never-be-written-91ab"
FAST = ["--set", "max_attempts=3", "--set", "backoff_base_s=0.01", "--set", "backoff_max_s=0.02",
        "--set", "timeout_s=1"]


def tvbench_command() -> list[str]:
    """The installed entry point of this environment (as users run it), else the module."""
    script = Path(sys.executable).with_name("tvbench")
    return [str(script)] if script.exists() else ([shutil.which("tvbench")] if shutil.which("tvbench")
                                                  else [sys.executable, "-m", "tvbench"])


def tvbench(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")}
    return subprocess.run([*tvbench_command(), *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**clean, **env})


def tvbench_in_process(*args: str, monkeypatch, capsys, env: dict[str, str]) -> tuple[int, str]:
    """The same command in this process (for reruns, where the subprocess's start-up would dominate)."""
    from tvbench.cli import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    return exit_.value.code, captured.out + captured.err


def scenario_bench(root: Path, names: list[str]) -> Path:
    """One case per scenario; the instruction names the scenario, which is what the fake servers key on."""
    records, images = [], {}
    for k, name in enumerate(names):
        images[f"img/{name}.png"] = textured(96, 80, seed=k)
        records.append({"id": name, "source": f"img/{name}.png", "instruction": f"Scenario [{name}]: move it"})
    return write_bench(root, records, images)


def key(name: str) -> str:
    return f"[{name}]"


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def sent(server, name: str, prompt_of) -> int:
    return sum(key(name) in prompt_of(request) for request in server.requests)


def assert_key_never_written(out: Path, result: subprocess.CompletedProcess, secret: str) -> None:
    for path in out.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in result.stdout and secret not in result.stderr


def is_mirrored_source(edit: Path, source: np.ndarray) -> bool:
    """The fake service mirrors the source: the edit is much closer to the mirror than to the source."""
    pixels = np.asarray(Image.open(edit).convert("RGB"), dtype=float)
    mirrored = np.asarray(ImageOps.mirror(Image.fromarray(source)), dtype=float)
    return np.abs(pixels - mirrored).mean() < 0.5 * np.abs(pixels - source.astype(float)).mean()


GEMINI_STORIES = {
    "image": [gemini_image()],
    "rate-limited": [http_error(429, retry_after=0.3), gemini_image()],
    "prompt-blocked": [gemini_blocked("PROHIBITED_CONTENT")],
    "image-safety": [gemini_finish("IMAGE_SAFETY")],
    "text-only": [gemini_finish("STOP", "I can't edit this image.")],
    "down": [http_error(500)],
    "slow-once": [gemini_image(delay=3.0), gemini_image()],
    "garbage": [Scripted(body=b"<html>502 Bad Gateway</html>")],
    "dropped-once": [dropped(), gemini_image()],
}


def test_nanobanana_pro_statuses_facts_retries_and_reruns(tmp_path, monkeypatch, capsys, keys):
    names = list(GEMINI_STORIES)
    bench = scenario_bench(tmp_path / "bench", names)
    stories = {key(name): replies for name, replies in GEMINI_STORIES.items()}
    out = tmp_path / "results"
    env = {"GEMINI_API_KEY": GEMINI_KEY}
    with FakeGeminiServer(by_prompt(stories, gemini_prompt)) as server:
        args = ["run", "-m", "nanobanana-pro", "-b", str(bench), "-o", str(out), "-q",
                "--set", f"base_url={server.base_url}", *FAST]
        first = tvbench(*args, cwd=tmp_path, env=env)
        assert first.returncode == 1, first.stderr  # some cases failed; the others are kept
        run_dir = out / "nanobanana-pro"
        cases = manifest(run_dir)["cases"]
        assert {name: cases[name]["status"] for name in names} == {
            "image": "done", "rate-limited": "done", "prompt-blocked": "refused", "image-safety": "refused",
            "text-only": "refused", "down": "failed", "slow-once": "done", "garbage": "failed",
            "dropped-once": "done"}
        assert manifest(run_dir)["counts"] == {"done": 4, "refused": 3, "failed": 2, "pending": 0}

        facts = cases["image"]["facts"]
        assert facts["native_size"] == [64, 48] and facts["images"] == 1 and facts["attempts"] == 1
        assert facts["tokens"] == {"input": 1290, "output": 1332, "output_image": 1120, "thoughts": 200}
        # list prices of gemini-3-pro-image-preview: $2 / $12 / $120 per million input / text out / image out tokens
        assert facts["cost_usd"] == pytest.approx((1290 * 2 + 212 * 12 + 1120 * 120) / 1e6)
        source = np.asarray(Image.open(bench / "img" / "image.png").convert("RGB"))
        edit = run_dir / "image.png"
        assert Image.open(edit).size == (96, 80) and is_mirrored_source(edit, source)  # the final, not the thought
        assert cases["rate-limited"]["facts"]["attempts"] == 2
        assert cases["rate-limited"]["facts"]["seconds"] >= 0.3  # Retry-After: 0.3 honoured over a 0.01 s backoff
        assert cases["slow-once"]["facts"]["attempts"] == 2 and cases["dropped-once"]["facts"]["attempts"] == 2
        assert cases["prompt-blocked"]["reason"] == "prompt blocked (PROHIBITED_CONTENT)"
        assert cases["image-safety"]["reason"] == "blocked (IMAGE_SAFETY)"
        assert "no image in the reply" in cases["text-only"]["reason"] and "can't edit" in cases["text-only"]["reason"]
        assert cases["down"]["error"] == ("case 'down': nanobanana-pro: HTTP 500: scripted HTTP 500 "
                                          "(after 3 attempt(s))")
        assert "malformed response" in cases["garbage"]["error"]
        assert "\n" not in cases["down"]["error"]
        # exactly our attempts reach the server: the SDK's own retries are off
        assert sent(server, "down", gemini_prompt) == 3 and sent(server, "rate-limited", gemini_prompt) == 2
        assert sent(server, "image", gemini_prompt) == 1
        assert all(r["headers"].get("x-goog-api-key") == GEMINI_KEY for r in server.received)

        # a rerun asks again for the failed cases only; refused ones stay refused
        before = len(server.requests)
        code, second = tvbench_in_process(*args, monkeypatch=monkeypatch, capsys=capsys, env=env)
        assert code == 1
        resent = server.requests[before:]
        assert sorted({name for name in names if any(key(name) in gemini_prompt(r) for r in resent)}) == \
            ["down", "garbage"]
        assert "3 refused (--retry refused asks again)" in second

        # --retry failed,refused asks the refused ones again too
        before = len(server.requests)
        code, third = tvbench_in_process(*args, "--retry", "failed,refused", monkeypatch=monkeypatch, capsys=capsys,
                                         env=env)
        resent = server.requests[before:]
        assert {name for name in names if any(key(name) in gemini_prompt(r) for r in resent)} == \
            {"down", "garbage", "prompt-blocked", "image-safety", "text-only"}
    assert_key_never_written(out, first, GEMINI_KEY)
    assert GEMINI_KEY not in second + third
    runtime = manifest(run_dir)["runtime_options"]
    assert runtime["base_url"] == server.base_url and runtime["concurrency"] == 4  # recorded, not hashed
    assert manifest(run_dir)["runtime"]["batch_size"] == 8  # the runner's queue: 2 x concurrency


OPENAI_STORIES = {
    "image": [openai_image()],
    "rate-limited": [http_error(429, retry_after=0.3), openai_image()],
    "moderation": [openai_moderation_blocked()],
    "empty": [openai_empty()],
    "down": [http_error(503)],
    "slow-once": [openai_image(delay=3.0), openai_image()],
    "garbage": [Scripted(body=b"not json at all")],
    "dropped-once": [dropped(), openai_image()],
    "bad-request": [http_error(400, message="Invalid size")],
}


def test_gpt_image_statuses_facts_and_retries(tmp_path):
    names = list(OPENAI_STORIES)
    bench = scenario_bench(tmp_path / "bench", names)
    stories = {key(name): replies for name, replies in OPENAI_STORIES.items()}
    out = tmp_path / "results"
    with FakeOpenAIImagesServer(by_prompt(stories, openai_prompt)) as server:
        result = tvbench("run", "-m", "gpt-image", "-b", str(bench), "-o", str(out), "-q", *FAST,
                         "--set", "concurrency=3", cwd=tmp_path,
                         env={"TVBENCH_OPENAI_API_KEY": OPENAI_KEY, "TVBENCH_OPENAI_BASE_URL": server.base_url})
    assert result.returncode == 1, result.stderr
    run_dir = out / "gpt-image"
    cases = manifest(run_dir)["cases"]
    assert {name: cases[name]["status"] for name in names} == {
        "image": "done", "rate-limited": "done", "moderation": "refused", "empty": "refused", "down": "failed",
        "slow-once": "done", "garbage": "failed", "dropped-once": "done", "bad-request": "failed"}
    facts = cases["image"]["facts"]
    assert facts["native_size"] == [64, 48] and facts["tokens"]["output_image"] == 4160
    # list prices of gpt-image-1.5: $5 text in, $8 image in, $32 image out per million tokens
    assert facts["cost_usd"] == pytest.approx((20 * 5 + 323 * 8 + 4160 * 32) / 1e6)
    assert Image.open(run_dir / "image.png").size == (96, 80)
    assert cases["moderation"]["reason"].startswith("moderation_blocked: Your request was rejected")
    assert cases["rate-limited"]["facts"]["seconds"] >= 0.3
    assert sent(server, "down", openai_prompt) == 3 and sent(server, "bad-request", openai_prompt) == 1  # 4xx: final
    assert cases["bad-request"]["error"].endswith("HTTP 400: Invalid size (after 1 attempt(s))")
    upload = next(r for r in server.requests if key("image") in openai_prompt(r))
    assert upload["model"] == "gpt-image-1.5" and upload["n"] == "1" and isinstance(upload["image"], bytes)
    assert all(r["headers"].get("authorization") == f"Bearer {OPENAI_KEY}" for r in server.received)
    assert_key_never_written(out, result, OPENAI_KEY)
    assert "base_url" not in json.dumps(manifest(run_dir)["runtime_options"]).replace('"base_url": null', "")


# -- in-process checks: fast, no subprocess --------------------------------------------------------------------

def case(name: str, size=(40, 30), instruction: str | None = None) -> Case:
    png = encode_png(Image.new("RGB", size, (200, 30, 30)))
    return Case(id=name, source=ImageRef("source", data=png), instruction=instruction or f"do [{name}]")


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    for variable in ("GOOGLE_API_KEY", "TVBENCH_OPENAI_API_KEY", "TVBENCH_OPENAI_BASE_URL", "OPENAI_BASE_URL",
                     "TVBENCH_GEMINI_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)


def editor(name: str, server, **options):
    method = create_method(name, {"base_url": server.base_url, "backoff_base_s": "0.01", "backoff_max_s": "0.02",
                                  **{k: str(v) for k, v in options.items()}})
    method.runtime = method.resolve_runtime(Runtime())
    method.setup()
    return method


@pytest.mark.parametrize("name, server_class", [("nanobanana-pro", FakeGeminiServer),
                                                ("gpt-image", FakeOpenAIImagesServer)])
def test_concurrency_is_bounded_and_each_failure_stays_with_its_case(keys, name, server_class):
    with server_class(latency=0.15) as server:
        method = editor(name, server, concurrency=3)
        cases = [case(f"c{k}") for k in range(7)]
        cases.append(Case(id="no-text", source=cases[0].source, instruction=None))
        results = method.edit_batch(cases, list(range(len(cases))))
        method.teardown()
    assert server.max_in_flight == 3 and len(server.requests) == 7
    assert all(r.image.size == (40, 30) for r in results[:7])
    assert isinstance(results[-1], Exception) and "has none" in str(results[-1])


@pytest.mark.parametrize("name, server_class", [("nanobanana-pro", FakeGeminiServer),
                                                ("gpt-image", FakeOpenAIImagesServer)])
def test_the_sdks_do_not_retry_behind_our_back(keys, name, server_class):
    script = [http_error(500), http_error(429), dropped(), Scripted(delay=2.0)]
    with server_class(script) as server:
        method = editor(name, server, max_attempts=1, timeout_s=0.5)
        messages = []
        for k in range(4):
            with pytest.raises(Exception) as error:
                method.edit(case(f"c{k}"), seed=k)
            messages.append(str(error.value))
        method.teardown()
        assert len(server.requests) == 4  # one request per case: no hidden SDK retry
    assert [m.split(": ", 1)[1] for m in messages[:2]] == ["HTTP 500: scripted HTTP 500 (after 1 attempt(s))",
                                                           "HTTP 429 (rate limited) (after 1 attempt(s))"]
    assert "connection failed" in messages[2] and "timed out after 0.5 s" in messages[3]


def test_google_retry_info_is_honoured_and_a_quoted_key_is_scrubbed(keys):
    retry_info = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
                            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.4s"}]}}
    quoting = http_error(403, message=f"API key {GEMINI_KEY} is not valid")
    with FakeGeminiServer([Scripted(status=429, body=json.dumps(retry_info).encode()), gemini_image(),
                           quoting]) as server:
        method = editor("nanobanana-pro", server)
        result = method.edit(case("a"), seed=1)
        with pytest.raises(Exception) as error:
            method.edit(case("b"), seed=2)
        method.teardown()
    assert result.facts["attempts"] == 2 and result.facts["seconds"] >= 0.4
    assert GEMINI_KEY not in str(error.value) and "API key *** is not valid" in str(error.value)


def test_costs_follow_the_given_prices_and_unknown_models_have_none(keys):
    with FakeGeminiServer() as server:
        priced = editor("nanobanana-pro", server, price_input=1, price_output_text=0, price_output_image=100)
        unknown = editor("nanobanana-pro", server, model="some-future-image-model")
        assert priced.edit(case("a"), seed=1).facts["cost_usd"] == pytest.approx((1290 + 1120 * 100) / 1e6)
        assert "cost_usd" not in unknown.edit(case("b"), seed=1).facts
        priced.teardown()
        unknown.teardown()
    assert priced.config() == create_method("nanobanana-pro").config()  # prices, server, retries: not hashed


def test_missing_key_and_bad_base_url_are_one_line_errors(monkeypatch, tmp_path):
    for variable in ("GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    method = create_method("nanobanana-pro")
    with pytest.raises(ConfigError, match="set GOOGLE_API_KEY or GEMINI_API_KEY"):
        method.setup()
    with pytest.raises(ConfigError, match="option base_url"):
        create_method("gpt-image", {"base_url": "ftp://example.org"})
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        create_method("gpt-image", {"concurrency": "0"})
