"""One chat-completions request with our own retries: timeouts, dropped connections, 429 and 5xx.

The ``openai`` client is built with ``max_retries=0`` so that every retry is ours (:mod:`tvbench.retry`, the
policy shared with the API editors): exponential backoff with jitter, a 429's or 503's ``Retry-After``
honoured, other 4xx answers not retried. A 400 that rejects ``response_format`` switches structured output
off for the rest of the run and the request is sent again as plain text, within the same attempt.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from dataclasses import dataclass, field

from tvbench.errors import UnavailableError
from tvbench.judge.config import JudgeConfig
from tvbench.ratelimit import RateLimiter
from tvbench.retry import Failure, RetryPolicy, call_with_retries, openai_error_message, openai_failure
from tvbench.retry import retry_after_seconds  # noqa: F401  (re-exported: part of this module's interface)

JSON_SCHEMA = {
    "name": "judgment",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"reasoning": {"type": "string"}, "score": {"type": "integer", "minimum": 0, "maximum": 4}},
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    },
}


@dataclass
class Reply:
    """What came back: a reply (``error is None``) or the last failure after every attempt."""

    content: str | None = None
    refusal: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None  # the model the server says answered (may be a dated snapshot of the one asked for)
    system_fingerprint: str | None = None  # the backend configuration, where the server reports one
    attempts: int = 0
    error: str | None = None
    waits: list[float] = field(default_factory=list)


class JudgeClient:
    """Sends chat requests to an OpenAI-compatible server; thread-safe (one HTTP pool shared by the workers)."""

    def __init__(self, config: JudgeConfig, limiter: RateLimiter | None = None, sleep=time.sleep):
        try:
            import openai
        except ImportError as exc:
            raise UnavailableError("judge metrics need the openai package: pip install 'tvbench[judge]'") from exc
        self._openai = openai
        self.config = config
        self.client = openai.OpenAI(base_url=config.base_url, api_key=config.api_key or "EMPTY",
                                    timeout=config.timeout_s, max_retries=0)
        self.limiter = limiter or RateLimiter(config.rpm)
        self.structured = config.structured
        self._lock = threading.Lock()
        self._sleep = sleep
        self.requests = 0  # HTTP requests sent, retries included

    @property
    def policy(self) -> RetryPolicy:
        c = self.config
        return RetryPolicy(c.max_attempts, c.backoff_base_s, c.backoff_max_s, c.retry_after_max_s)

    def options(self, messages: list[dict], seed: int | None) -> dict:
        """The body of a chat-completions request for ``messages``, with this run's model and decoding."""
        config = self.config
        options: dict = {"model": config.model, "messages": messages, "temperature": config.temperature,
                         "max_tokens": config.max_tokens}
        if config.top_p is not None:
            options["top_p"] = config.top_p
        if seed is not None:
            options["seed"] = seed
        if self.structured:
            options["response_format"] = {"type": "json_schema", "json_schema": JSON_SCHEMA}
        return options

    def exchange(self, path: str, body: dict | None = None) -> tuple[object, dict[str, str]]:
        """One GET (no ``body``) or POST to ``path`` under the base URL, with no retry: the parsed JSON body and
        the response headers (names in lower case). HTTP errors raise as with :meth:`chat`'s requests."""
        with self._lock:
            self.requests += 1
        response_type = _response_type()
        if body is None:
            response = self.client.get(path, cast_to=response_type)
        else:
            response = self.client.post(path, body=body, cast_to=response_type)
        try:
            data = response.json()
        except ValueError:
            raise _Malformed("the reply is not JSON") from None
        return data, {str(k).lower(): str(v) for k, v in response.headers.items()}

    def _send(self, messages: list[dict], seed: int | None):
        options = self.options(messages, seed)
        with self._lock:
            self.requests += 1
        # client.post (the openai README's way to reach any endpoint) skips chat.completions.create's recursive
        # TypedDict transform of the messages, about 3 ms of CPU per request with three images, and the raw
        # response skips building a pydantic ChatCompletion (another 0.3 ms): with many requests in flight the
        # client's CPU time is what limits throughput. Errors, timeouts and auth behave exactly as with create().
        body = self.client.post("/chat/completions", body=options, cast_to=object)  # the parsed JSON, or the text
        return json.loads(body) if isinstance(body, str) else body  # a JSON body sent as another content type

    def _attempt(self, messages: list[dict], seed: int | None) -> Reply:
        """One attempt; a server that rejects structured output is asked again in plain text, within it."""
        self.limiter.acquire()
        try:
            response = self._send(messages, seed)
        except self._openai.APIStatusError as exc:
            if not (exc.status_code in (400, 422) and self.structured and _rejects_schema(exc)):
                raise
            self.structured = False  # this server cannot do structured output: plain text from now on
            self.limiter.acquire()
            response = self._send(messages, seed)
        return self._read(response, Reply())

    def _classify(self, exc: Exception) -> Failure | None:
        if isinstance(exc, _Malformed):
            return Failure(f"malformed response: {exc}")
        return openai_failure(exc, self.config.timeout_s)

    def chat(self, messages: list[dict], seed: int | None = None) -> Reply:
        """The reply to ``messages``, retried as the module docstring says; never raises for server trouble."""
        outcome = call_with_retries(lambda: self._attempt(messages, seed), self._classify, self.policy, self._sleep)
        reply = outcome.value or Reply(error=outcome.error)
        reply.attempts, reply.waits = outcome.attempts, outcome.waits
        return reply

    @staticmethod
    def _read(response: dict, reply: Reply) -> Reply:
        """Fields of a chat-completion body, read defensively: anything missing or of the wrong type is absent."""
        if not isinstance(response, dict):
            raise _Malformed("the reply is not a JSON object")
        choices = response.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _Malformed("no choices in the reply")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise _Malformed("no message in the reply")
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        content, refusal, finish = message.get("content"), message.get("refusal"), choices[0].get("finish_reason")
        reply.content = content if isinstance(content, str) else None
        reply.refusal = refusal if isinstance(refusal, str) else None
        reply.finish_reason = finish if isinstance(finish, str) else None
        reply.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        reply.completion_tokens = int(usage.get("completion_tokens") or 0)
        model, fingerprint = response.get("model"), response.get("system_fingerprint")
        reply.model = model if isinstance(model, str) else None
        reply.system_fingerprint = fingerprint if isinstance(fingerprint, str) else None
        return reply

    def close(self) -> None:
        self.client.close()


class _Malformed(Exception):
    pass


def _response_type():
    """The HTTP response class of the openai client's HTTP library (httpx2 for openai >= 3, httpx before): asked
    for as ``cast_to``, the client returns the raw response, headers included."""
    for name in ("httpx2", "httpx"):
        try:
            return importlib.import_module(name).Response
        except ImportError:
            continue
    raise UnavailableError("the openai package's HTTP library (httpx) is missing")


def rejects_schema(exc) -> bool:
    """Whether an HTTP 400/422 answer rejects ``response_format`` (structured output)."""
    return _rejects_schema(exc)


def _rejects_schema(exc) -> bool:
    text = (openai_error_message(exc) + " " + str(getattr(exc, "body", ""))).lower()
    return any(word in text for word in ("response_format", "json_schema", "structured", "guided"))
