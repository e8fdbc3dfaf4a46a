"""What every closed-API editor shares: a key from the environment, bounded concurrency, retries, costs, sizes.

An API editor sends the source image and the instruction, gets an image back, and maps it to the source's
size (recording the size the service returned as ``native_size``). Per case the manifest gets ``attempts``,
``seconds``, the ``images`` and ``tokens`` the reply reported and, when prices are known, ``cost_usd``.

- **Keys** come from the environment only (:attr:`ApiEditor.key_variables`): never an option (options land in
  shell history and in the manifest), never printed, logged or written; an error message that quotes the key
  has it replaced by ``***``.
- **Concurrency**: the runner hands :meth:`ApiEditor.edit_batch` up to ``max(--batch-size, 2 * concurrency)``
  cases; at most ``concurrency`` requests are in flight, and ``rpm`` spaces their starts. A case whose request
  fails fails alone.
- **Retries** are ours (:mod:`tvbench.retry`, shared with the judge); the SDKs' own are switched off. 429, 5xx,
  timeouts, dropped connections and malformed bodies are retried with exponential backoff and jitter, a
  ``Retry-After`` is honoured; a case still failing after ``max_attempts`` fails with one line, and a rerun
  tries it again.
- **Refusals**: a safety block, or a reply without an image, is ``refused`` (kept, not retried on a rerun
  unless ``tvbench run --retry failed,refused``).

None of these options can change an image, so they are runtime options: resuming a run with another
concurrency, timeout, base URL or price is the same run. What does change images (model, size, quality) is
hashed into the run's identity.
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import time
from queue import Empty, SimpleQueue
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence
from urllib.parse import urlsplit

from PIL import Image

from tvbench.cases import Case
from tvbench.errors import CaseError, ConfigError, TvbenchError, one_line
from tvbench.io import encode_png
from tvbench.judge.config import redact_url
from tvbench.methods.base import EditResult, Method, Outcome, Runtime, at_source_size, runtime_option
from tvbench.ratelimit import RateLimiter
from tvbench.retry import Failure, RetryPolicy, call_with_retries


class RequestFailed(TvbenchError):
    """A case's request failed on every attempt (the message is the last failure, in one line)."""


class Malformed(Exception):
    """A 200 whose body is not the reply the API documents (retried like a server error)."""


class Interrupted(Exception):
    """The run is stopping (Ctrl-C): no further attempt is made."""


@dataclass
class ApiReply:
    """What one successful exchange gave: an image, or why there is none, and what the service counted."""

    image: Image.Image | None = None
    refused: str | None = None
    images: int = 0  # final images in the reply
    tokens: dict[str, int] = field(default_factory=dict)  # "input", "output" and any breakdown the API gave
    cost_usd: float | None = None
    model_version: str | None = None


def per_million(tokens: int, price: float | None) -> float:
    return tokens * (price or 0.0) / 1e6


@dataclass
class ApiEditor(Method):
    """Base of the API editors; subclasses implement :meth:`connect` and :meth:`send`."""

    inputs = frozenset({"image", "instruction"})
    uses_device = False  # the edit happens on the provider's machines; nothing here needs torch
    max_batch_size = 4096  # the batch is only a queue: concurrency bounds what is in flight
    key_variables: ClassVar[tuple[str, ...]] = ()  # environment variables holding the key, first set wins
    base_url_variables: ClassVar[tuple[str, ...]] = ()  # environment variables that may name the server

    model: str = ""
    base_url: str | None = runtime_option(None)  # None: the variables above, else the SDK's default endpoint
    concurrency: int = runtime_option(4)  # requests in flight at once
    rpm: float | None = runtime_option(None)  # requests started per minute; None: no limit
    timeout_s: float = runtime_option(300.0)  # per request: an edit at 2K takes tens of seconds
    max_attempts: int = runtime_option(5)  # per case, the first included
    backoff_base_s: float = runtime_option(2.0)
    backoff_max_s: float = runtime_option(60.0)
    retry_after_max_s: float = runtime_option(300.0)

    def __post_init__(self) -> None:
        checks = [(self.concurrency >= 1, "concurrency must be at least 1"),
                  (self.max_attempts >= 1, "max_attempts must be at least 1"),
                  (self.timeout_s > 0, "timeout_s must be positive"),
                  (self.rpm is None or self.rpm > 0, "rpm must be positive"),
                  (self.backoff_base_s >= 0 and self.backoff_max_s >= 0, "backoff times must be >= 0"),
                  (bool(self.model), "model must not be empty")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.base_url is not None:
            check_base_url(self.base_url, "option base_url")
        self._client: Any = None
        self._secret: str | None = None
        self._stop = threading.Event()
        self._limiter = RateLimiter(self.rpm)

    # -- what subclasses provide ------------------------------------------------------------------------------
    def connect(self, api_key: str, base_url: str | None) -> Any:
        """The SDK client, with its own retries off and ``timeout_s`` applied."""
        raise NotImplementedError

    def send(self, png: bytes, instruction: str, seed: int) -> ApiReply:
        """One request; raises on a transport, server or body failure (classified by :meth:`classify`)."""
        raise NotImplementedError

    def classify(self, exc: Exception) -> Failure | None:
        """A failure of the remote side (retried or not), or ``None`` for an exception that is a bug."""
        raise NotImplementedError

    # -- the run --------------------------------------------------------------------------------------------------
    def resolve_runtime(self, runtime: Runtime) -> Runtime:
        runtime = super().resolve_runtime(runtime)
        return dataclasses.replace(runtime, batch_size=max(runtime.batch_size, 2 * self.concurrency))

    def runtime_options(self) -> dict[str, Any]:
        options = super().runtime_options()
        if options.get("base_url"):
            options["base_url"] = redact_url(options["base_url"])  # never a password or token in the manifest
        return options

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff_base_s, self.backoff_max_s, self.retry_after_max_s)

    def api_key(self) -> str:
        for variable in self.key_variables:
            value = os.environ.get(variable, "").strip()
            if value:
                return value
        raise ConfigError(f"{self.name} needs an API key in the environment: set {' or '.join(self.key_variables)}")

    def server(self) -> str | None:
        for value, where in [(self.base_url, "option base_url")] + [(os.environ.get(v), v)
                                                                    for v in self.base_url_variables]:
            if value:
                check_base_url(value, where)
                return value
        return None

    def check(self) -> None:
        """The key and the server address are in place, before any method of the run starts."""
        self.api_key()
        self.server()

    def setup(self) -> None:
        self._secret = self.api_key()
        self._stop.clear()
        self._client = self.connect(self._secret, self.server())

    def teardown(self) -> None:
        self._stop.set()  # a retry waiting in another thread gives up
        client, self._client = self._client, None
        close = getattr(client, "close", None)
        if callable(close):
            close()

    def edit(self, case: Case, *, seed: int) -> EditResult:
        return self._edit(case, seed)

    def edit_batch(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[Outcome | Exception]:
        """Every case's request sent from ``concurrency`` threads; a failure fails its case only.

        The threads are daemons: on Ctrl-C the queue is dropped, waiting retries stop, and the process exits
        without waiting for requests still in flight (their images were not recorded, so a rerun asks again).
        """
        results: list[Outcome | Exception | None] = [None] * len(cases)
        queue: SimpleQueue[int] = SimpleQueue()
        for index in range(len(cases)):
            queue.put(index)

        def work() -> None:
            while not self._stop.is_set():
                try:
                    index = queue.get_nowait()
                except Empty:
                    return
                results[index] = self._edit_or_error(cases[index], seeds[index])

        threads = [threading.Thread(target=work, name=f"{self.name}-{k}", daemon=True)
                   for k in range(min(self.concurrency, len(cases)))]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except BaseException:
            self._stop.set()
            raise
        return [result if result is not None else Interrupted("the run is stopping") for result in results]

    def _edit_or_error(self, case: Case, seed: int) -> Outcome | Exception:
        try:
            return self._edit(case, seed)
        except Exception as exc:
            return exc

    def _edit(self, case: Case, seed: int) -> EditResult:
        if not case.instruction:
            raise CaseError(case.id, "instruction", f"{self.name} edits from an instruction and this case has none")
        if self._client is None:
            raise RuntimeError(f"{self.name}: setup() was not called")
        source = case.open_image("source")
        png = encode_png(source)
        started = time.perf_counter()
        outcome = call_with_retries(lambda: self._attempt(png, case.instruction, seed), self._classify_scrubbed,
                                    self.policy, self._wait)
        facts: dict[str, Any] = {"attempts": outcome.attempts, "seconds": round(time.perf_counter() - started, 3)}
        if not outcome.ok or outcome.value is None:
            raise RequestFailed(f"{self.name}: {outcome.error} (after {outcome.attempts} attempt(s))")
        reply = outcome.value
        facts.update(images=reply.images, tokens=reply.tokens)
        if reply.cost_usd is not None:
            facts["cost_usd"] = round(reply.cost_usd, 6)
        if reply.model_version:
            facts["model_version"] = reply.model_version
        if reply.refused is not None or reply.image is None:
            return EditResult.refusal(self.scrub(reply.refused or "no image in the reply"), **facts)
        image, facts["native_size"] = at_source_size(reply.image.convert("RGB"), source.size)
        return EditResult(image, facts)

    def _attempt(self, png: bytes, instruction: str, seed: int) -> ApiReply:
        if self._stop.is_set():
            raise Interrupted("the run is stopping")
        self._limiter.acquire()
        return self.send(png, instruction, seed)

    def _classify_scrubbed(self, exc: Exception) -> Failure | None:
        if isinstance(exc, Interrupted):
            return Failure("interrupted", retry=False)
        if isinstance(exc, Malformed):
            failure: Failure | None = Failure(f"malformed response: {exc}")
        else:
            failure = self.classify(exc)
        return dataclasses.replace(failure, message=self.scrub(failure.message)) if failure else None

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def scrub(self, text: str) -> str:
        """``text`` with the key replaced by ``***`` (servers sometimes quote a key they reject)."""
        return text.replace(self._secret, "***") if self._secret else text


def short(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters (a server's message can be a page long)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def decode_image(data: bytes | None) -> Image.Image:
    """The image in ``data``, or :class:`Malformed` (a reply whose image does not decode is retried)."""
    if not data:
        raise Malformed("an image without data")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:
        raise Malformed(f"the image does not decode ({one_line(exc)})") from None
    return image


def check_base_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact_url(url) if "://" in url else url  # only a full URL can carry a password
        raise ConfigError(f"{where}: expected http(s)://host[:port][/path], got {shown!r}")
