"""A fake OpenAI-compatible judge server for tests and benchmarks (not for scoring).

It speaks just enough of ``POST /v1/chat/completions`` for :mod:`tvbench.judge.client`, on 127.0.0.1 in a
background thread, and answers from a script: a list of :class:`Scripted` replies used in request order, or a
function ``(request_json, index) -> Scripted``; with no script it grades deterministically (a score derived
from a hash of the request). It counts requests and the largest number in flight at once, so tests can check
retries, caching and the concurrency bound against real HTTP.

    with FakeJudgeServer([http_error(429, retry_after=0), json_score(3)]) as server:
        JudgeConfig(base_url=server.base_url, ...)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence


@dataclass
class Scripted:
    """One scripted answer: an HTTP status and chat message, after ``delay`` seconds, or a dropped connection."""

    status: int = 200
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # raw body instead of a completion (garbage, error JSON)
    drop: bool = False  # close the connection without answering
    cut_body: bool = False  # send the headers and half the body, then close the connection
    usage: tuple[int, int] = (1200, 80)  # prompt, completion tokens


def json_score(score, reasoning: str = "The change matches the reference.", **kw) -> Scripted:
    return Scripted(content=json.dumps({"reasoning": reasoning, "score": score}), **kw)


def prose(text: str, **kw) -> Scripted:
    return Scripted(content=text, **kw)


def refusal(text: str = "I can't help with grading this image.", **kw) -> Scripted:
    return Scripted(content=None, refusal=text, **kw)


def http_error(status: int, retry_after: float | None = None, **kw) -> Scripted:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    body = json.dumps({"error": {"message": f"scripted HTTP {status}", "type": "scripted", "code": status}})
    return Scripted(status=status, headers=headers, body=body.encode(), **kw)


def hang(seconds: float) -> Scripted:
    """Answer only after ``seconds``: longer than the client's timeout, this is a timeout."""
    return json_score(2, delay=seconds)


def dropped() -> Scripted:
    return Scripted(drop=True)


def cut_midway(score=3) -> Scripted:
    """A reply whose connection drops halfway through the body."""
    return json_score(score, cut_body=True)


def default_grader(request: dict, index: int) -> Scripted:
    """A deterministic grade from the request's content: same request, same score."""
    sampled = request.get("seed") if (request.get("temperature") or 0) > 0 else None  # repeats may then differ
    digest = hashlib.sha256(json.dumps([request.get("messages"), sampled], sort_keys=True).encode()).digest()
    return json_score(digest[0] % 5)


Script = Sequence[Scripted] | Callable[[dict, int], Scripted] | None


class FakeJudgeServer:
    def __init__(self, script: Script = None, latency: float = 0.0):
        self.script = script
        self.latency = latency  # added to every answer
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stall

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    request = json.loads(raw)
                except ValueError:
                    request = {}
                server._answer(self, request)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _pick(self, request: dict, index: int) -> Scripted:
        if callable(self.script):
            return self.script(request, index)
        if self.script:
            return self.script[index] if index < len(self.script) else default_grader(request, index)
        return default_grader(request, index)

    def _answer(self, handler: BaseHTTPRequestHandler, request: dict) -> None:
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self._pick(request, index)
            self._stop.wait(self.latency + reply.delay)
            if reply.drop:
                handler.close_connection = True
                return
            body = reply.body if reply.body is not None else json.dumps(self._completion(request, reply)).encode()
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if reply.cut_body:
                handler.wfile.write(body[:len(body) // 2])
                handler.close_connection = True
                return
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)
        finally:
            with self._lock:
                self.in_flight -= 1

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

    def start(self) -> "FakeJudgeServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeJudgeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
