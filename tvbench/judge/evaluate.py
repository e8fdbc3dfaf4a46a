"""Judge many items concurrently: cache first, then bounded parallel requests, one result per item.

An item is one (edit, prompt) pair to grade ``repeats`` times. Its images are produced lazily inside the worker
(decoded, arrows drawn, PNG-encoded), so memory holds at most ``concurrency`` items' images at once. Each
worker runs one request at a time, so at most ``concurrency`` requests are in flight.

An item is ``ok`` only when all its repeats are ``ok``; otherwise it takes the first of error, refused,
unparseable among them (an error first, since a rerun may fix it), with no value: a score is never made up
from part of the repeats.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Sequence

from PIL import Image

from tvbench.errors import one_line
from tvbench.judge.cache import CachedReply, JudgeCache, judgment_key
from tvbench.judge.client import JudgeClient, Reply
from tvbench.judge.config import JudgeConfig
from tvbench.judge.images import PngMemo, data_url
from tvbench.judge.parsing import parse_reply
from tvbench.judge.preflight import ErrorBudget, JudgeAbort
from tvbench.judge.prompts import Prompt
from tvbench.metrics.base import ERROR, OK, REFUSED, UNPARSEABLE
from tvbench.progress import track

STATUS_PRIORITY = (ERROR, REFUSED, UNPARSEABLE)


@dataclass
class JudgeItem:
    id: str
    prompt: Prompt
    instruction: str | None
    images: Callable[[], Sequence[Image.Image]]  # in the prompt's layout order


@dataclass
class Judgment:
    """One repeat: its status and score, the raw reply, tokens, and how it was obtained."""

    status: str
    score: int | None
    raw: str | None
    detail: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    attempts: int = 0

    def to_dict(self) -> dict:
        return {"status": self.status, "score": self.score, "raw": self.raw, "detail": self.detail,
                "tokens": [self.prompt_tokens, self.completion_tokens], "cached": self.cached,
                "attempts": self.attempts}


@dataclass
class ItemResult:
    id: str
    status: str
    judgments: list[Judgment]
    detail: str | None = None

    @property
    def scores(self) -> list[int | None]:
        return [j.score for j in self.judgments]

    @property
    def value(self) -> float | None:
        """Mean score over repeats, normalised by 4 (the paper's per-case score), for ok items only."""
        if self.status != OK:
            return None
        return statistics.fmean(self.scores) / 4.0  # type: ignore[arg-type]

    @property
    def std(self) -> float | None:
        """Population std of the repeats' scores / 4 (0 with one repeat)."""
        return statistics.pstdev(self.scores) / 4.0 if self.status == OK else None  # type: ignore[arg-type]

    @property
    def tokens(self) -> tuple[int, int]:
        return (sum(j.prompt_tokens for j in self.judgments), sum(j.completion_tokens for j in self.judgments))


@dataclass
class RunStats:
    """What one evaluation cost: requests sent (retries included), cache hits, retries, tokens spent now."""

    items: int = 0
    judgments: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    served_models: Counter = field(default_factory=Counter)  # the completions' "model", over this run's replies
    system_fingerprints: Counter = field(default_factory=Counter)  # their "system_fingerprint"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, judgment: Judgment, reply: Reply | None) -> None:
        with self._lock:
            self.judgments += 1
            if judgment.cached:
                self.cache_hits += 1
            if reply is not None:
                self.requests += reply.attempts
                self.retries += max(0, reply.attempts - 1)
                self.errors += reply.error is not None
                self.prompt_tokens += reply.prompt_tokens
                self.completion_tokens += reply.completion_tokens
                if reply.error is None:
                    self.served_models[reply.model or "(not reported)"] += 1
                    self.system_fingerprints[reply.system_fingerprint or "(not reported)"] += 1

    def describe(self, config: JudgeConfig) -> dict:
        return {"items": self.items, "judgments": self.judgments, "cache_hits": self.cache_hits,
                "requests": self.requests, "retries": self.retries, "failed_requests": self.errors,
                "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
                "cost_usd": config.cost(self.prompt_tokens, self.completion_tokens),
                "seconds": round(self.seconds, 3)}


def build_messages(prompt: Prompt, instruction: str | None, pngs: Sequence[bytes]) -> list[dict]:
    """One user message: the images in layout order, then the prompt text (which names them by position)."""
    parts: list[dict] = [{"type": "image_url", "image_url": {"url": data_url(png)}} for png in pngs]
    parts.append({"type": "text", "text": prompt.render(instruction)})
    return [{"role": "user", "content": parts}]


class Evaluator:
    """Grades items with a client and a cache; reusable across calls (stats accumulate per call)."""

    def __init__(self, config: JudgeConfig, cache: JudgeCache, client_factory: Callable[[], JudgeClient] | None = None,
                 on_connect: Callable[[JudgeClient], None] | None = None):
        self.config = config
        self.cache = cache
        self._client: JudgeClient | None = None
        self._client_factory = client_factory or (lambda: JudgeClient(config))
        self._on_connect = on_connect  # runs once, before the first request (the pre-flight); may raise JudgeAbort
        self._abort: JudgeAbort | None = None
        self._client_lock = threading.Lock()
        self._pngs = PngMemo()  # each image encoded once per evaluator, whatever number of requests carry it
        self._budget = ErrorBudget(None, "", "")

    @property
    def client(self) -> JudgeClient:
        """Built on first use, so a run served entirely from the cache needs neither openai nor a server."""
        with self._client_lock:
            if self._abort is not None:
                raise self._abort
            if self._client is None:
                client = self._client_factory()
                if self._on_connect is not None:
                    try:
                        self._on_connect(client)
                    except JudgeAbort as exc:
                        self._abort = exc
                        client.close()
                        raise
                self._client = client
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _one(self, item: JudgeItem, stats: RunStats) -> ItemResult:
        try:
            encoded = [self._pngs.get(image) for image in item.images()]
        except Exception as exc:  # an unreadable image must not stop the other items
            return ItemResult(item.id, ERROR, [], f"cannot prepare the images: {one_line(exc)}")
        pngs, shas = [png for png, _ in encoded], [sha for _, sha in encoded]
        messages = None
        judgments = []
        decoding = self.config.decoding()
        for repeat in range(self.config.repeats):
            key = judgment_key(image_shas=shas, instruction=item.instruction, prompt_id=item.prompt.id,
                               prompt_sha=item.prompt.sha256, model=str(self.config.model), decoding=decoding,
                               repeat=repeat, layout="+".join(item.prompt.layout))
            cached = self.cache.get(key)
            reply = None
            if cached is None:
                messages = messages or build_messages(item.prompt, item.instruction, pngs)
                seed = None if self.config.seed is None else self.config.seed + repeat
                self._budget.check()  # spent: send nothing more
                reply = self.client.chat(messages, seed=seed)
                if reply.error is None:
                    cached = CachedReply(reply.content, reply.refusal, reply.finish_reason, reply.prompt_tokens,
                                         reply.completion_tokens)
                    self.cache.put(key, model=str(self.config.model), prompt_id=item.prompt.id, reply=cached)
            if cached is None:
                assert reply is not None
                judgment = Judgment(ERROR, None, None, f"{reply.error} (after {reply.attempts} attempt(s))",
                                    attempts=reply.attempts)
            else:
                parsed = parse_reply(cached.content, cached.refusal, cached.finish_reason)
                raw = cached.content if cached.refusal is None else f"[refusal] {cached.refusal}"
                judgment = Judgment(parsed.status, parsed.score, raw, parsed.detail, cached.prompt_tokens,
                                    cached.completion_tokens, cached=reply is None,
                                    attempts=reply.attempts if reply else 0)
            stats.add(judgment, reply)
            judgments.append(judgment)
            if reply is not None and judgment.status in (ERROR, UNPARSEABLE):
                self._budget.fail(f"{item.id} repeat {repeat}", judgment.detail)
        statuses = {j.status for j in judgments}
        status = next((s for s in STATUS_PRIORITY if s in statuses), OK)
        detail = next((f"repeat {k}: {j.detail}" for k, j in enumerate(judgments) if j.status == status), None)
        return ItemResult(item.id, status, judgments, detail if status != OK else None)

    def evaluate(self, items: Sequence[JudgeItem], progress: bool = False,
                 description: str = "judging") -> tuple[list[ItemResult], RunStats]:
        """Results in the order of ``items``, and what the run cost. Raises :class:`JudgeAbort` when the pre-flight
        fails or more judgments fail than ``config.max_errors`` allows (the queue is dropped at once)."""
        stats = RunStats(items=len(items))
        self._budget = ErrorBudget(self.config.error_budget(len(items) * self.config.repeats),
                                   self.config.describe_budget(), self.config.server())
        start = time.perf_counter()
        results: list[ItemResult | None] = [None] * len(items)
        if items:
            pool = ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(items)),
                                      thread_name_prefix="tvbench-judge")
            try:
                futures = {pool.submit(self._one, item, stats): k for k, item in enumerate(items)}
                for future in track(as_completed(futures), description, enabled=progress, total=len(futures)):
                    k = futures[future]
                    try:
                        results[k] = future.result()
                    except JudgeAbort:  # pre-flight failed or the error budget is spent: stop the phase
                        raise
                    except Exception as exc:  # a bug or an unexpected failure: recorded, the others go on
                        results[k] = ItemResult(items[k].id, ERROR, [], one_line(exc))
            except BaseException:  # Ctrl-C: drop the queue at once; replies already received are in the cache
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
        stats.seconds = time.perf_counter() - start
        return [r for r in results if r is not None], stats
