"""A fake OpenAI-compatible judge server for tests and benchmarks (not for scoring).

It speaks just enough of ``POST /v1/chat/completions`` for :mod:`tvbench.judge.client`, on top of
:class:`tvbench.testing.http_server.FakeHTTPServer` (scripted replies, delays, dropped connections, request and
concurrency counts). With no script it grades deterministically (a score derived from a hash of the request).

    with FakeJudgeServer([http_error(429, retry_after=0), json_score(3)]) as server:
        JudgeConfig(base_url=server.base_url, ...)
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from tvbench.testing.http_server import FakeHTTPServer, dropped, http_error
from tvbench.testing.http_server import Scripted as HTTPReply

__all__ = ["FakeJudgeServer", "Scripted", "cut_midway", "default_grader", "dropped", "hang", "http_error",
           "json_score", "prose", "refusal"]


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


class FakeJudgeServer(FakeHTTPServer):
    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def default_reply(self, request: dict, index: int) -> Scripted:
        return default_grader(request, index)

    def render(self, request: dict, reply: HTTPReply) -> bytes:
        if reply.body is not None or reply.json is not None or not isinstance(reply, Scripted):
            return super().render(request, reply)
        return json.dumps(self._completion(request, reply)).encode()

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
