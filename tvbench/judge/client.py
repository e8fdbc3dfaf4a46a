"""One chat-completions request with our own retries: timeouts, dropped connections, 429 and 5xx.

The ``openai`` client is built with ``max_retries=0`` so that every retry is ours, counted and bounded:
exponential backoff ``base * 2**(attempt-1)``, capped, with jitter (half fixed, half random, so many workers
hit by the same outage do not come back in lockstep). A 429's ``Retry-After`` (seconds or an HTTP date,
RFC 9110 section 10.2.3) or ``retry-after-ms`` header is honoured instead of the backoff when present. Other
4xx answers are not retried: they would fail the same way. A 400 that rejects ``response_format`` switches
structured output off for the rest of the run and the request is sent again as plain text.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from dataclasses import dataclass, field

from tvbench.errors import UnavailableError, one_line
from tvbench.judge.config import JudgeConfig
from tvbench.judge.ratelimit import RateLimiter

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
    attempts: int = 0
    error: str | None = None
    waits: list[float] = field(default_factory=list)


def retry_after_seconds(headers) -> float | None:
    """The wait a server asked for, from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when is not None else None


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

    def backoff(self, attempt: int) -> float:
        delay = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)

    def _send(self, messages: list[dict], seed: int | None):
        config = self.config
        options: dict = {"model": config.model, "messages": messages, "temperature": config.temperature,
                         "max_tokens": config.max_tokens}
        if config.top_p is not None:
            options["top_p"] = config.top_p
        if seed is not None:
            options["seed"] = seed
        if self.structured:
            options["response_format"] = {"type": "json_schema", "json_schema": JSON_SCHEMA}
        with self._lock:
            self.requests += 1
        # client.post (the openai README's way to reach any endpoint) skips chat.completions.create's recursive
        # TypedDict transform of the messages, about 3 ms of CPU per request with three images, and the raw
        # response skips building a pydantic ChatCompletion (another 0.3 ms): with many requests in flight the
        # client's CPU time is what limits throughput. Errors, timeouts and auth behave exactly as with create().
        body = self.client.post("/chat/completions", body=options, cast_to=object)  # the parsed JSON, or the text
        return json.loads(body) if isinstance(body, str) else body  # a JSON body sent as another content type

    def chat(self, messages: list[dict], seed: int | None = None) -> Reply:
        """The reply to ``messages``, retried as the module docstring says; never raises for server trouble."""
        openai = self._openai
        reply = Reply()
        attempt = 0
        while attempt < self.config.max_attempts:
            attempt += 1
            reply.attempts = attempt
            self.limiter.acquire()
            wait = None
            try:
                response = self._send(messages, seed)
                return self._read(response, reply)
            except openai.APITimeoutError:
                reply.error = f"timed out after {self.config.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                reply.error = f"connection failed: {one_line(exc.__cause__ or exc)}"
            except openai.RateLimitError as exc:
                reply.error = "HTTP 429 (rate limited)"
                wait = retry_after_seconds(exc.response.headers)
                if wait is not None:
                    wait = min(wait, self.config.retry_after_max_s)
            except openai.APIStatusError as exc:
                reply.error = f"HTTP {exc.status_code}: {_message(exc)}"
                if exc.status_code in (400, 422) and self.structured and _rejects_schema(exc):
                    self.structured = False  # this server cannot do structured output: plain text from now on
                    attempt -= 1
                    continue
                if exc.status_code < 500 and exc.status_code not in (408, 409):
                    return reply  # the request itself is wrong: retrying cannot help
                wait = retry_after_seconds(exc.response.headers)  # a 503 may say when to come back too
                if wait is not None:
                    wait = min(wait, self.config.retry_after_max_s)
            except _Malformed as exc:
                reply.error = f"malformed response: {exc}"
            except (ValueError, TypeError, AttributeError, KeyError) as exc:  # a 200 whose body is not a completion
                reply.error = f"malformed response: {one_line(exc)}"
            if attempt < self.config.max_attempts:
                delay = wait if wait is not None else self.backoff(attempt)
                reply.waits.append(delay)
                self._sleep(delay)
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
        reply.error = None
        return reply

    def close(self) -> None:
        self.client.close()


class _Malformed(Exception):
    pass


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(text, str):
            return text.strip().splitlines()[0][:200] if text.strip() else ""
    return one_line(exc)[:200]


def _rejects_schema(exc) -> bool:
    text = (_message(exc) + " " + str(getattr(exc, "body", ""))).lower()
    return any(word in text for word in ("response_format", "json_schema", "structured", "guided"))
