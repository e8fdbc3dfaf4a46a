"""A fake OpenAI-compatible judge server for tests and benchmarks (not for scoring).

It speaks just enough of ``POST /v1/chat/completions`` for :mod:`tvbench.judge.client`, on top of
:class:`tvbench.testing.http_server.FakeHTTPServer` (scripted replies, delays, dropped connections, request and
concurrency counts). With no script it grades deterministically (a score derived from a hash of the request).

    with FakeJudgeServer([http_error(429, retry_after=0), json_score(3)]) as server:
        JudgeConfig(base_url=server.base_url, ...)

It can also say what it is, as a vLLM or OpenAI server would: ``models`` (the ``GET /v1/models`` entries; None:
no such endpoint, and any model name is served), ``served_model`` (the completions' ``model``; default: the one
asked for), ``system_fingerprint`` and ``headers`` (sent with every answer). With ``models`` given, a chat
request for another model gets vLLM's 404; with ``structured=False``, a request with ``response_format`` gets a
400. The pre-flight request (:data:`tvbench.judge.preflight.PREFLIGHT_MARKER` in its text) is answered by
``preflight`` (a :class:`Scripted`, or a function of the request; default: a valid grade) after those checks, and
recorded in ``preflights`` and ``asides``, not in ``requests``: scripts and request counts see the grading
requests only. The canary requests (:mod:`tvbench.judge.canaries`) are answered by ``canary`` (a function of the
request; default :func:`canary_grader`: the grade each canary's construction expects) and recorded in
``canaries`` only, so neither scripts nor ``requests`` nor ``asides`` see them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Callable

from tvbench.judge.preflight import PREFLIGHT_MARKER

from tvbench.testing.http_server import FakeHTTPServer, dropped, http_error
from tvbench.testing.http_server import Scripted as HTTPReply

__all__ = ["FakeJudgeServer", "Scripted", "canary_grader", "cut_midway", "default_grader", "dropped", "hang", "http_error",
           "is_preflight", "json_score", "prose", "refusal", "vllm_model"]


@dataclass
class Scripted(HTTPReply):
    """A scripted chat completion (or, with ``body``, any answer at all)."""

    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    usage: tuple[int, int] = (1200, 80)  # prompt, completion tokens


def json_score(score, reasoning: str = "The change matches the reference.", **kw) -> Scripted:
    return Scripted(content=json.dumps({"reasoning": reasoning, "score": score}), **kw)


def prose(text: str, **kw) -> Scripted:
    return Scripted(content=text, **kw)


def refusal(text: str = "I can't help with grading this image.", **kw) -> Scripted:
    return Scripted(content=None, refusal=text, **kw)


def hang(seconds: float) -> Scripted:
    """Answer only after ``seconds``: longer than the client's timeout, this is a timeout."""
    return json_score(2, delay=seconds)


def cut_midway(score=3) -> Scripted:
    """A reply whose connection drops halfway through the body."""
    return json_score(score, cut_body=True)


def default_grader(request: dict, index: int) -> Scripted:
    """A deterministic grade from the request's content: same request, same score."""
    sampled = request.get("seed") if (request.get("temperature") or 0) > 0 else None  # repeats may then differ
    digest = hashlib.sha256(json.dumps([request.get("messages"), sampled], sort_keys=True).encode()).digest()
    return json_score(digest[0] % 5)


def vllm_model(model_id: str, root: str | None = None, max_model_len: int = 32768, **extra) -> dict:
    """A ``GET /v1/models`` entry as vLLM writes it."""
    return {"id": model_id, "object": "model", "created": int(time.time()), "owned_by": "vllm",
            "root": root or model_id, "parent": None, "max_model_len": max_model_len, "permission": [], **extra}


def is_preflight(request: dict) -> bool:
    messages = request.get("messages") or []
    parts = messages[0].get("content") if messages and isinstance(messages[0], dict) else None
    texts = [p.get("text", "") for p in parts if isinstance(p, dict)] if isinstance(parts, list) else [str(parts)]
    return any(PREFLIGHT_MARKER in str(text) for text in texts)


def _texts(request: dict) -> list[str]:
    messages = request.get("messages") or []
    parts = messages[0].get("content") if messages and isinstance(messages[0], dict) else None
    return [str(p.get("text", "")) for p in parts if isinstance(p, dict)] if isinstance(parts, list) else [str(parts)]


def is_canary(request: dict) -> bool:
    from tvbench.judge.canaries import INSTRUCTION

    return any(INSTRUCTION in text for text in _texts(request))


def canary_grader(offset: int = 0) -> Callable[[dict], Scripted]:
    """Answers a canary request with its expected grade plus ``offset`` (clamped to 0-4): 0 is a judge that
    grades the canaries exactly as constructed; another offset is another judge."""
    from tvbench.judge.canaries import CANARIES, metric_kind
    from tvbench.judge.images import data_url, png_bytes
    from tvbench.judge.prompts import available_prompts, load_prompt

    edits = {data_url(png_bytes(c.edit())): c for c in CANARIES}

    def grade(request: dict) -> Scripted:
        text = next(t for t in _texts(request) if t)
        kind = next((metric_kind(pid.split("-")[0]) for pid in available_prompts()
                     if load_prompt(pid).text.split("{{")[0] in text), None)
        parts = request["messages"][0]["content"]
        urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        canary = edits.get(urls[-1]) if urls else None
        if canary is None or kind not in canary.expected:
            return prose("not a canary I know")
        return json_score(max(0, min(4, canary.expected[kind] + offset)), "canary")

    return grade


class FakeJudgeServer(FakeHTTPServer):
    def __init__(self, script=None, latency: float = 0.0, *, models: list[dict] | None = None,
                 served_model: str | None = None, system_fingerprint: str | None = None,
                 headers: dict[str, str] | None = None, structured: bool = True,
                 preflight: "Scripted | Callable[[dict], HTTPReply] | None" = None,
                 canary: "Callable[[dict], HTTPReply] | None" = None):
        super().__init__(script, latency)
        self.models = models
        self.served_model = served_model
        self.system_fingerprint = system_fingerprint
        self.headers = dict(headers or {})
        self.structured = structured
        self.preflight = preflight
        self.preflights: list[dict] = []  # the pre-flight requests' bodies
        self.canary = canary or canary_grader(0)
        self.canaries: list[dict] = []  # the canary requests' bodies

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def default_reply(self, request: dict, index: int) -> Scripted:
        return default_grader(request, index)

    def _refusal_of(self, request: dict) -> HTTPReply | None:
        """vLLM's answers to a model it does not serve, or to structured output it cannot do."""
        if self.models is not None and request.get("model") not in {m.get("id") for m in self.models}:
            return http_error(404, code=404, message=f"The model `{request.get('model')}` does not exist.")
        if not self.structured and "response_format" in request:
            return http_error(400, message="response_format json_schema is not supported by this server")
        return None

    def aside(self, request: dict, received: dict) -> HTTPReply | None:
        if received.get("method") == "GET":
            if received.get("path", "").rstrip("/").endswith("/v1/models") and self.models is not None:
                return Scripted(json={"object": "list", "data": self.models})
            return super().aside(request, received)
        if is_canary(request):
            self.canaries.append(request)
            refused = self._refusal_of(request)
            return refused if refused is not None else self.canary(request)
        if not is_preflight(request):
            return None
        self.preflights.append(request)
        refused = self._refusal_of(request)
        if refused is not None:
            return refused
        if callable(self.preflight):
            return self.preflight(request)
        return self.preflight or json_score(0, "ready")

    def records_aside(self, request: dict) -> bool:
        return not is_canary(request)

    def _pick(self, request: dict, index: int) -> HTTPReply:
        refused = self._refusal_of(request)
        return refused if refused is not None else super()._pick(request, index)

    def response_headers(self, request: dict, reply: HTTPReply) -> dict[str, str]:
        return {**self.headers, **reply.headers}

    def render(self, request: dict, reply: HTTPReply) -> bytes:
        if reply.body is not None or reply.json is not None or not isinstance(reply, Scripted):
            return super().render(request, reply)
        completion = self._completion(request, reply)
        if self.served_model is not None:
            completion["model"] = self.served_model
        if self.system_fingerprint is not None:
            completion["system_fingerprint"] = self.system_fingerprint
        return json.dumps(completion).encode()

    @staticmethod
    def _completion(request: dict, reply: Scripted) -> dict:
        message = {"role": "assistant", "content": reply.content}
        if reply.refusal is not None:
            message["refusal"] = reply.refusal
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": request.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
                "usage": {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                          "total_tokens": sum(reply.usage)}}
