"""How to reach the judge and how to decode: CLI flags, else environment variables, else defaults.

The API key is read from ``TVBENCH_JUDGE_API_KEY`` or ``OPENAI_API_KEY`` only: it is never a flag (flags land
in shell history and process lists), never printed, logged, hashed into a key, or written to a summary.

Spending is guarded: a server that is not on this machine (``localhost``, a loopback address such as 127.0.0.1
or ::1) may bill per request, so sending to it needs ``allow_paid`` (``--judge-allow-paid`` or
``TVBENCH_JUDGE_ALLOW_PAID=1``); ``max_errors`` stops a phase that keeps failing (see :meth:`error_budget`).
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tvbench.errors import ConfigError

ENV_BASE_URL = "TVBENCH_JUDGE_BASE_URL"
ENV_MODEL = "TVBENCH_JUDGE_MODEL"
ENV_API_KEYS = ("TVBENCH_JUDGE_API_KEY", "OPENAI_API_KEY")
ENV_ALLOW_PAID = "TVBENCH_JUDGE_ALLOW_PAID"
DEFAULT_MODEL = "Qwen/Qwen3-VL-8B-Instruct"
DEFAULT_COVERAGE_THRESHOLD = 0.95


@dataclass
class JudgeConfig:
    base_url: str | None = None  # e.g. http://localhost:8000/v1; default $TVBENCH_JUDGE_BASE_URL, $OPENAI_BASE_URL
    model: str | None = None  # default $TVBENCH_JUDGE_MODEL, else DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)  # default from ENV_API_KEYS; never stored
    concurrency: int = 8
    rpm: float | None = None  # requests per minute, None: unlimited
    repeats: int = 1
    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int = 1024
    seed: int | None = 0  # repeat k sends seed + k, so sampled repeats differ but reruns are reproducible
    structured: bool = True  # ask for response_format json_schema
    timeout_s: float = 120.0
    max_attempts: int = 5  # per request, the first one included
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 300.0  # a server asking to wait longer than this is waited for this long
    price_in: float | None = None  # USD per million prompt tokens
    price_out: float | None = None  # USD per million completion tokens
    cache_path: str | None = None  # default: <results>/judge.cache.sqlite
    coverage_threshold: float = DEFAULT_COVERAGE_THRESHOLD
    prompts: dict[str, str] = field(default_factory=dict)  # metric -> prompt id override, e.g. {"pf": "pf-v2"}
    preflight: bool = True  # one check request (server, model, structured output) before the first real one
    max_errors: float | None = None  # failed judgments a phase tolerates: a count (integer >= 0) or a fraction in
    #                                  (0, 1) of the phase's judgments; None: no limit
    allow_paid: bool | None = None  # send to a server that is not local; None: $TVBENCH_JUDGE_ALLOW_PAID

    def resolved(self) -> "JudgeConfig":
        """A copy with environment defaults filled in and values checked."""
        base_url = self.base_url or os.environ.get(ENV_BASE_URL) or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError(f"judge metrics need an OpenAI-compatible server: pass --judge-base-url or set "
                              f"{ENV_BASE_URL} (e.g. http://localhost:8000/v1 for `vllm serve`)")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--judge-base-url: expected http(s)://host[:port]/v1, got {redact_url(base_url)!r}")
        api_key = self.api_key or next((os.environ[k] for k in ENV_API_KEYS if os.environ.get(k)), None)
        checks = [(self.concurrency >= 1, "--judge-concurrency must be at least 1"),
                  (self.repeats >= 1, "--judge-repeats must be at least 1"),
                  (self.rpm is None or self.rpm > 0, "--judge-rpm must be positive"),
                  (self.max_attempts >= 1, "--judge-max-attempts must be at least 1"),
                  (self.timeout_s > 0, "--judge-timeout must be positive"),
                  (0 <= self.coverage_threshold <= 1, "--judge-coverage-threshold must lie in [0, 1]"),
                  (self.temperature >= 0, "--judge-temperature must be >= 0"),
                  (self.max_errors is None or _valid_budget(self.max_errors),
                   f"--judge-max-errors {self.max_errors!r}: give a count (0, 1, 2, ...) or a fraction such as 0.1")]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        allow_paid = self.allow_paid if self.allow_paid is not None else _env_allows_paid()
        copy = JudgeConfig(**{**self.__dict__, "base_url": base_url, "api_key": api_key, "allow_paid": allow_paid,
                              "model": self.model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL})
        return copy

    def is_local(self) -> bool:
        """Whether the server runs on this machine: ``localhost`` or a loopback address (127.0.0.1, ::1)."""
        return is_local_url(self.base_url or "")

    def check_paid(self) -> None:
        """Refuse a server that may bill per request unless the user opted in (``allow_paid``)."""
        allowed = self.allow_paid if self.allow_paid is not None else _env_allows_paid()
        if not self.is_local() and not allowed:
            raise ConfigError(f"judge server {self.server()} is not local (localhost, 127.0.0.1, ::1) and may bill "
                              f"every request: pass --judge-allow-paid (or set {ENV_ALLOW_PAID}=1) to send to it")

    def error_budget(self, judgments: int) -> int | None:
        """How many failed judgments a phase of ``judgments`` tolerates (None: no limit); one more stops it."""
        if self.max_errors is None:
            return None
        if 0 < self.max_errors < 1:
            return math.floor(self.max_errors * judgments)
        return int(self.max_errors)

    def describe_budget(self) -> str:
        if self.max_errors is None:
            return "no limit"
        return f"{self.max_errors:g} of the judgments" if 0 < self.max_errors < 1 else f"{int(self.max_errors)}"

    def decoding(self) -> dict:
        """What decides a reply besides the inputs: part of the cache key and of the metric key."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "seed": self.seed, "structured": self.structured}

    def server(self) -> str:
        return redact_url(self.base_url or "")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return (prompt_tokens * (self.price_in or 0.0) + completion_tokens * (self.price_out or 0.0)) / 1e6


def parse_max_errors(text: str | None) -> float | None:
    """``--judge-max-errors``: ``"20"`` (failed judgments) or ``"0.1"`` (a fraction of the phase's judgments)."""
    if text is None or not str(text).strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--judge-max-errors {text!r}: give a count (0, 1, 2, ...) or a fraction such as 0.1") \
            from None
    if not _valid_budget(value):
        raise ConfigError(f"--judge-max-errors {text!r}: give a count (0, 1, 2, ...) or a fraction such as 0.1")
    return value


def _env_allows_paid() -> bool:
    return os.environ.get(ENV_ALLOW_PAID, "").strip().lower() in ("1", "true", "yes", "on")


def _valid_budget(value: float) -> bool:
    return math.isfinite(value) and (0 < value < 1 or (value >= 0 and float(value).is_integer()))


def is_local_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """scheme://host[:port]/path without user, password or query (which may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else host
