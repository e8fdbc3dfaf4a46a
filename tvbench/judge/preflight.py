"""Guards on spending: the paid-endpoint opt-in, one pre-flight request before the first real one, and the error
budget that stops a phase that keeps failing.

The pre-flight runs when a judge phase is about to send its first request (a phase served entirely from the
cache sends nothing, pre-flight included). It sends one ``GET /models`` (what the server says it serves: the
identity, :mod:`tvbench.judge.identity`; a server without that endpoint is fine) and one chat request shaped
like the real ones: the configured model, decoding and structured output, a small grey image and a text asking
for ``{"reasoning": ..., "score": 0}``. It fails, in one line naming the server and what failed, when the server
cannot be reached, refuses the key, does not serve the model, rejects structured output (``response_format``),
refuses, or answers without one score the strict parser reads. Its replies are never cached and never graded.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tvbench.errors import ConfigError, TvbenchError, one_line
from tvbench.retry import call_with_retries

if TYPE_CHECKING:
    from tvbench.judge.client import JudgeClient

# A fake server recognises the pre-flight request by this text (tvbench.judge.testing answers it apart).
PREFLIGHT_MARKER = "tvbench pre-flight check"
PREFLIGHT_TEXT = (f"{PREFLIGHT_MARKER}: this is not a grading request. Reply with exactly this JSON object and "
                  'nothing else: {"reasoning": "ready", "score": 0}')
PREFLIGHT_IMAGE_SIDE = 64  # pixels; large enough for vision encoders with 28- or 32-pixel patches after merging


class JudgeAbort(TvbenchError):
    """A judge phase stopped before its end (nothing graded by it is lost: replies already received are cached)."""


class PreflightError(JudgeAbort, ConfigError):
    """The pre-flight request showed the server cannot grade as configured."""


class BudgetExceeded(JudgeAbort):
    """More failed judgments than ``--judge-max-errors`` allows."""

    exit_code = 1


class ErrorBudget:
    """Counts failed judgments (errors after every retry, unparseable replies; not refusals, not cache hits) and
    stops the phase at the first one over the limit: later requests are not sent."""

    def __init__(self, limit: int | None, spec: str, server: str):
        self.limit, self.spec, self.server = limit, spec, server
        self.failed = 0
        self.tripped: BudgetExceeded | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise if the budget is spent (called before each request)."""
        if self.tripped is not None:
            raise self.tripped

    def fail(self, item_id: str, detail: str | None) -> None:
        if self.limit is None:
            return
        with self._lock:
            self.failed += 1
            if self.failed > self.limit and self.tripped is None:
                self.tripped = BudgetExceeded(
                    f"judge phase stopped after {self.failed} failed judgments (--judge-max-errors {self.spec}) "
                    f"at {self.server}; last: {item_id}: {detail or 'failed'}; replies received are cached, rerun "
                    "to resume")
        self.check()


def preflight(client: "JudgeClient") -> dict:
    """Check the server with one chat request (after ``GET /models``); return what the server said about itself
    (:func:`tvbench.judge.identity.build_identity`'s inputs). Raises :class:`PreflightError` in one line."""
    import openai

    from tvbench.judge.client import JudgeClient, Reply, rejects_schema
    from tvbench.judge.identity import build_identity
    from tvbench.judge.images import data_url, png_bytes
    from tvbench.judge.parsing import parse_reply
    from tvbench.metrics.base import OK, REFUSED

    config = client.config
    where = config.server()

    def fail(what: str) -> PreflightError:
        return PreflightError(f"judge pre-flight failed at {where}: {what}")

    listing, listing_headers = models_listing(client, fail)
    served = [str(m.get("id")) for m in listing or [] if isinstance(m, dict) and m.get("id")]
    image = data_url(png_bytes(_grey_image()))
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                             {"type": "text", "text": PREFLIGHT_TEXT}]}]
    last: list[Exception] = []

    def attempt():
        client.limiter.acquire()
        try:
            return client.exchange("/chat/completions", client.options(messages, config.seed))
        except Exception as exc:
            last[:] = [exc]
            raise

    outcome = call_with_retries(attempt, client._classify, client.policy, client._sleep)
    if outcome.error is not None:
        exc = last[0] if last else None
        if isinstance(exc, openai.APIStatusError):
            from tvbench.retry import openai_error_message

            status, message = exc.status_code, openai_error_message(exc)
            if status in (400, 422) and config.structured and rejects_schema(exc):
                raise fail(f"the server rejects structured output (response_format json_schema: HTTP {status}: "
                           f"{message}); pass --no-judge-structured to grade in plain text")
            if status in (401, 403):
                raise fail(f"the server refused the API key (HTTP {status}: {message}); set TVBENCH_JUDGE_API_KEY")
            if status == 404 or (status in (400, 422) and "model" in message.lower()):
                serves = f"; it serves {', '.join(served[:10])}" if served else ""
                raise fail(f"model {config.model!r} is not served here (HTTP {status}: {message}){serves}")
        if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
            raise fail(f"cannot reach the server ({outcome.error}, after {outcome.attempts} attempt(s))")
        raise fail(f"the check request failed: {outcome.error} (after {outcome.attempts} attempt(s))")
    body, headers = outcome.value
    try:
        reply = JudgeClient._read(body, Reply())
    except Exception as exc:  # a 200 that is not a chat completion
        raise fail(f"the reply is not a chat completion ({one_line(exc)})") from None
    parsed = parse_reply(reply.content, reply.refusal, reply.finish_reason)
    if parsed.status == REFUSED:
        raise fail(f"the model refused the check request ({parsed.detail})")
    if parsed.status != OK:
        if config.structured:
            raise fail(f"structured output is not honoured: the reply to a JSON-schema request has no score "
                       f"({parsed.detail}); pass --no-judge-structured if the server ignores response_format")
        raise fail(f"the reply has no score the parser reads ({parsed.detail}); the model does not follow the "
                   "grading format")
    return build_identity(config, listing, {**listing_headers, **headers}, reply, source="pre-flight")


def models_listing(client: "JudgeClient", fail=None) -> tuple[list[dict] | None, dict[str, str]]:
    """``GET /models``: the entries and headers, or (None, {}) where the server has no such endpoint. With
    ``fail`` (the pre-flight), an unreachable server or a refused key raises ``fail(message)``."""
    import openai

    try:
        body, headers = client.exchange("/models")
    except openai.APIStatusError as exc:
        if fail is not None and exc.status_code in (401, 403):
            raise fail(f"the server refused the API key (HTTP {exc.status_code}); set TVBENCH_JUDGE_API_KEY") \
                from None
        return None, {}
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        if fail is not None:
            raise fail(f"cannot reach the server ({one_line(exc.__cause__ or exc)})") from None
        return None, {}
    except Exception:  # a body that is not JSON: the endpoint is not what we think
        return None, {}
    data = body.get("data") if isinstance(body, dict) else None
    return ([m for m in data if isinstance(m, dict)] if isinstance(data, list) else None), headers


def _grey_image():
    from PIL import Image

    return Image.new("RGB", (PREFLIGHT_IMAGE_SIDE, PREFLIGHT_IMAGE_SIDE), (128, 128, 128))
