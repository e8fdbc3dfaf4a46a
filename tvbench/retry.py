"""Retries for calls to HTTP APIs (the judge, the API editors): one policy, one loop, counted and bounded.

The SDKs' own retries are switched off by their callers (``max_retries=0`` for ``openai``, one attempt for
``google-genai``) so that every retry is made here: exponential backoff ``base * 2**(attempt-1)``, capped,
with jitter (half fixed, half random, so many workers hit by the same outage do not come back in lockstep).
A server's ``Retry-After`` (seconds or an HTTP date, RFC 9110 section 10.2.3) or ``retry-after-ms`` header is
honoured instead of the backoff when present, up to ``retry_after_max_s``. What counts as worth retrying is
the caller's ``classify`` function: 429, 5xx, 408, 409, timeouts, dropped connections and malformed bodies
are; other 4xx answers are not (they would fail the same way).
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from tvbench.errors import one_line

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # the first one included
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 300.0  # a server asking to wait longer than this is waited for this long

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) when the server named no wait."""
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)

    def delay(self, attempt: int, asked: float | None) -> float:
        return min(asked, self.retry_after_max_s) if asked is not None else self.backoff(attempt)


@dataclass(frozen=True)
class Failure:
    """What one failed attempt means: a one-line message, whether to try again, and the wait the server asked for."""

    message: str
    retry: bool = True
    wait: float | None = None


@dataclass
class Attempts(Generic[T]):
    """The value of the first successful attempt, or the last failure's message after every attempt."""

    value: T | None = None
    error: str | None = None
    attempts: int = 0
    waits: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def call_with_retries(call: Callable[[], T], classify: Callable[[Exception], Failure | None], policy: RetryPolicy,
                      sleep: Callable[[float], Any] = time.sleep) -> Attempts[T]:
    """Call ``call`` until it returns, a failure is final, or ``policy.max_attempts`` are spent.

    ``classify`` turns an exception into a :class:`Failure`, or returns ``None`` for one that is not a
    failure of the remote side (a bug): that exception propagates. Never sleeps after the last attempt.
    """
    outcome: Attempts[T] = Attempts()
    while outcome.attempts < policy.max_attempts:
        outcome.attempts += 1
        try:
            outcome.value = call()
            outcome.error = None
            return outcome
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
        outcome.error = failure.message
        if not failure.retry:
            return outcome
        if outcome.attempts < policy.max_attempts:
            delay = policy.delay(outcome.attempts, failure.wait)
            outcome.waits.append(delay)
            sleep(delay)
    return outcome


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


def retryable_status(status: int) -> bool:
    """429, 5xx, 408 (request timeout) and 409 (conflict, e.g. a lock) may succeed when sent again."""
    return status >= 500 or status in (408, 409, 429)


def status_failure(status: int, message: str, headers) -> Failure:
    """The failure of an HTTP error answer, with the server's ``Retry-After`` where it gave one."""
    if status == 429:
        return Failure("HTTP 429 (rate limited)", True, retry_after_seconds(headers))
    retry = retryable_status(status)
    return Failure(f"HTTP {status}: {message}", retry, retry_after_seconds(headers) if retry else None)


def openai_failure(exc: Exception, timeout_s: float) -> Failure | None:
    """Classify an exception raised by an ``openai`` client call (``None``: not a transport or server failure)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return Failure(f"timed out after {timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(f"connection failed: {one_line(exc.__cause__ or exc)}")
    if isinstance(exc, openai.APIStatusError):
        return status_failure(exc.status_code, openai_error_message(exc), exc.response.headers)
    if isinstance(exc, (ValueError, TypeError, AttributeError, KeyError)):  # a 200 whose body is not what we asked
        return Failure(f"malformed response: {one_line(exc)}")
    return None


def openai_error_message(exc) -> str:
    """The server's own error message (``{"error": {"message": ...}}``), first line, at most 200 characters."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        text = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(text, str):
            return text.strip().splitlines()[0][:200] if text.strip() else ""
    return one_line(exc)[:200]
