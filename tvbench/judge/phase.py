"""The judge phase of ``tvbench score``: every (method, case) edit the judge metrics still need, graded at once.

The image scorer goes case by case; judge metrics instead collect every edit whose row is not in the score
memo and send them to the server concurrently (:class:`~tvbench.judge.evaluate.Evaluator`), behind the SQLite
reply cache. Rows keep the scorer's keys plus a ``judge`` field: prompt id and sha256, per-repeat scores,
statuses and raw replies, std over repeats, tokens. The summary gains, per method and judge metric, the mean
grade, the std over repeats, how often repeats disagree, coverage against the threshold, tokens and cost, and
the judge section records what the server said it was (``identity``, and ``identity_line`` for a legend).

Before its first request the phase checks that it may spend (a server that is not local needs ``allow_paid``)
and sends the pre-flight request (:mod:`tvbench.judge.preflight`); ``max_errors`` stops it when it keeps failing.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from tvbench.io import config_hash
from tvbench.judge.cache import JudgeCache
from tvbench.judge.config import JudgeConfig
from tvbench.judge.client import JudgeClient
from tvbench.judge.evaluate import Evaluator, ItemResult, JudgeItem, RunStats
from tvbench.judge.identity import build_identity, identity_line, with_run
from tvbench.judge.images import draw_drag_arrows
from tvbench.judge.prompts import Prompt, load_prompt
from tvbench.metrics.base import Metric
from tvbench.scoring.edits import file_sha, fit_edit, open_edit
from tvbench.scoring.rows import MISSING, NOT_APPLICABLE, OK, MetricResult, ScoreMemo, make_row

if TYPE_CHECKING:
    from tvbench.cases import Benchmark, Case
    from tvbench.scoring.runs import MethodRun

CACHE_FILE = "judge.cache.sqlite"
MESSAGE_LAYOUT = "v1: one user message, the images in the prompt's order, then the prompt text"


class JudgeSession:
    """The judge metrics of one scoring run: their prompts, keys, the phase itself and the summary fields."""

    def __init__(self, config: JudgeConfig | None, metrics: Iterable[Metric]):
        self.config = (config or JudgeConfig()).resolved()
        self.metrics = list(metrics)
        self.prompts: dict[str, Prompt] = {
            m.name: load_prompt(self.config.prompts.get(m.name, getattr(m, "prompt_id", m.name))) for m in self.metrics}
        self.stats: RunStats | None = None
        self.identity: dict | None = None  # what the server said it was (see tvbench.judge.identity)
        self.canaries: dict | None = None  # the canary replies and their drift (see tvbench.judge.canaries)

    def describe(self) -> dict:
        """What decides the grades (the scorer's ``models.judge``): model, decoding, repeats, prompts."""
        config = self.config
        return {"model": config.model, "decoding": config.decoding(), "repeats": config.repeats,
                "message_layout": MESSAGE_LAYOUT,
                "prompts": {name: prompt.describe() for name, prompt in self.prompts.items()}}

    def describe_run(self) -> dict:
        """How this run reached the judge (no API key, no credentials in the URL) and what it cost."""
        config = self.config
        return {"server": config.server(), "concurrency": config.concurrency, "rpm": config.rpm,
                "coverage_threshold": config.coverage_threshold,
                "price_usd_per_million_tokens": {"prompt": config.price_in, "completion": config.price_out},
                "preflight": config.preflight, "max_errors": config.max_errors,
                "identity": self.identity, "identity_line": identity_line(self.identity, config.model),
                "this_run": self.stats.describe(config) if self.stats else None}

    def keys(self) -> dict[str, str]:
        """Metric keys: change with the model, the prompt text, the decoding or the repeats (not with the server)."""
        config = self.config
        return {m.name: config_hash({"metric": m.name, "version": m.version, "judge": {
                    "model": config.model, "decoding": config.decoding(), "repeats": config.repeats,
                    "prompt": self.prompts[m.name].describe(), "layout": MESSAGE_LAYOUT}})
                for m in self.metrics}

    def score(self, bench: "Benchmark", runs: list["MethodRun"], memo: ScoreMemo, keys: dict[str, str],
              results: Path, progress: bool = True) -> list[dict]:
        """Rows of every judge metric for every method and case; requests only for what memo and cache lack."""
        rows: list[dict] = []
        items: list[JudgeItem] = []
        pending: list[tuple] = []
        resized: dict[str, bool] = {}
        for case in bench.cases:
            for run in runs:
                path = run.edit_path(case.id)
                sha = file_sha(path) if path.is_file() else None
                for metric in self.metrics:
                    key = keys[metric.name]
                    reason = metric.not_applicable_reason(case)
                    if reason or sha is None:
                        result = MetricResult(None, NOT_APPLICABLE, reason) if reason else \
                            MetricResult(None, MISSING, "no edit image")
                        rows.append(make_row(run, case, metric.name, key, result, sha, False))
                        continue
                    cached = memo.get(run.name, case.id, metric.name, key, sha)
                    if cached is not None:
                        rows.append(cached)
                        continue
                    prompt = self.prompts[metric.name]
                    item_id = f"{run.name}/{case.id}/{metric.name}"
                    items.append(JudgeItem(item_id, prompt, case.instruction,
                                           _image_maker(case, path, prompt.layout, resized, item_id)))
                    pending.append((run, case, metric.name, key, sha, prompt))
        cache = JudgeCache(Path(self.config.cache_path) if self.config.cache_path else Path(results) / CACHE_FILE)
        observed: list[dict] = []
        evaluator = Evaluator(self.config, cache, on_connect=lambda client: observed.append(self._connect(client)))
        try:
            self.canaries = self._canaries(evaluator, results)  # first: a changed judge shows before the rest
            outcomes, self.stats = evaluator.evaluate(items, progress=progress)
            self.identity = self._identity(observed[0] if observed else None, cache)
        finally:
            evaluator.close()
            cache.close()
        for (run, case, name, key, sha, prompt), outcome in zip(pending, outcomes):
            row = make_row(run, case, name, key, MetricResult(outcome.value, outcome.status, outcome.detail), sha,
                       resized.get(outcome.id, False))
            row["judge"] = judge_fields(outcome, prompt, str(self.config.model))
            memo.add(row)
            rows.append(row)
        return rows

    def _canaries(self, evaluator: Evaluator, results: Path) -> dict:
        """Send the canaries (through the cache) and compare with the expected grades and the previous summary's."""
        from tvbench.judge.canaries import CANARIES, INSTRUCTION, canary_report, metric_kind

        wanted, items = [], []
        for metric in self.metrics:
            kind = metric_kind(metric.name)
            prompt = self.prompts[metric.name]
            for canary in CANARIES:
                if kind in canary.expected:
                    wanted.append((canary.id, metric.name))
                    items.append(JudgeItem(f"canary/{canary.id}/{metric.name}", prompt, INSTRUCTION,
                                           lambda canary=canary, layout=prompt.layout: canary.images(layout)))
        outcomes, stats = evaluator.evaluate(items, progress=False, description="canaries")
        replies = {key: (None if outcome.value is None else outcome.value * 4.0, outcome.status, outcome.detail)
                   for key, outcome in zip(wanted, outcomes)}
        return canary_report(replies, _previous_canaries(Path(results)), stats.describe(self.config))

    def _connect(self, client: JudgeClient) -> dict:
        """Before the first request: may we spend, and can the server grade as configured? What it says it is."""
        from tvbench.errors import ConfigError
        from tvbench.judge.preflight import PreflightError, models_listing, preflight

        try:
            self.config.check_paid()
        except ConfigError as exc:  # stops the phase (a plain ConfigError would be recorded per item)
            raise PreflightError(str(exc)) from None
        if self.config.preflight:
            return preflight(client)

        listing, headers = models_listing(client)
        return build_identity(self.config, listing, headers, None, source="first request (no pre-flight)")

    def _identity(self, observed: dict | None, cache: JudgeCache) -> dict | None:
        """This phase's identity: observed now (and recorded in the cache), else the cache's last one."""
        model = str(self.config.model)
        stats = self.stats or RunStats()
        if observed is None:
            return cache.latest_identity(model)
        if observed.get("served_model") is None and stats.served_models:  # no pre-flight: the replies say
            served = stats.served_models.most_common(1)[0][0]
            fingerprint = stats.system_fingerprints.most_common(1)[0][0]
            observed = {**observed, "served_model": None if served == "(not reported)" else served,
                        "system_fingerprint": None if fingerprint == "(not reported)" else fingerprint}
        cache.put_identity(model, {**observed, "source": "judge cache"})
        return with_run(observed, stats.served_models, stats.system_fingerprints)

    def annotate(self, summary: dict, rows: list[dict]) -> None:
        """Add the judge aggregates to ``summary`` (per method and judge metric) and the run's cost."""
        threshold = self.config.coverage_threshold
        for method, info in summary.get("methods", {}).items():
            for metric in self.metrics:
                stats = info.get("metrics", {}).get(metric.name)
                if stats is None:
                    continue
                metric_rows = [r for r in rows if r["method"] == method and r["metric"] == metric.name]
                stats["judge"] = judge_aggregate(metric_rows, stats, self.config, self.prompts[metric.name],
                                                 threshold)
        summary["judge"] = {**self.describe(), **self.describe_run()}
        if self.canaries is not None:
            summary["judge"]["canaries"] = self.canaries


def _previous_canaries(results: Path) -> dict | None:
    """The canaries the folder's summary recorded before this run (None: none, or an unreadable summary)."""
    import json

    path = results / "summary.json"
    try:
        return (json.loads(path.read_text(encoding="utf-8")).get("judge") or {}).get("canaries")
    except (OSError, ValueError, AttributeError):
        return None


def judge_fields(outcome: ItemResult, prompt: Prompt, model: str) -> dict:
    prompt_tokens, completion_tokens = outcome.tokens
    return {"prompt_id": prompt.id, "prompt_sha256": prompt.sha256, "model": model, "scores": outcome.scores,
            "std": outcome.std, "tokens": {"prompt": prompt_tokens, "completion": completion_tokens},
            "repeats": [j.to_dict() for j in outcome.judgments]}


def judge_aggregate(rows: list[dict], stats: dict, config: JudgeConfig, prompt: Prompt, threshold: float) -> dict:
    """Mean grade, std over repeats (of the method's per-repeat means), disagreement, coverage flag, tokens."""
    ok = [r for r in rows if r["status"] == OK and r.get("judge")]
    repeats = config.repeats
    repeat_means = [statistics.fmean(r["judge"]["scores"][k] / 4.0 for r in ok) for k in range(repeats)] if ok else []
    tokens_in = sum(r.get("judge", {}).get("tokens", {}).get("prompt", 0) for r in rows)
    tokens_out = sum(r.get("judge", {}).get("tokens", {}).get("completion", 0) for r in rows)
    applicable, coverage = stats.get("applicable", 0), stats.get("coverage")
    return {
        "prompt_id": prompt.id, "prompt_sha256": prompt.sha256, "repeats": repeats,
        "mean_grade": stats["mean"] * 4.0 if stats.get("mean") is not None else None,
        "repeat_means": repeat_means,
        "std_over_repeats": statistics.stdev(repeat_means) if len(repeat_means) > 1 else None,
        "disagreement_rate": (sum(len(set(r["judge"]["scores"])) > 1 for r in ok) / len(ok))
        if ok and repeats > 1 else None,
        "coverage": coverage, "coverage_threshold": threshold,
        "flagged": bool(applicable) and (coverage is None or coverage < threshold),
        "tokens": {"prompt": tokens_in, "completion": tokens_out},
        "cost_usd": config.cost(tokens_in, tokens_out),
    }


def _image_maker(case: "Case", path: Path, layout: tuple[str, ...], resized: dict[str, bool], item_id: str):
    """The item's images in layout order, decoded when a worker needs them (the edit at the source's size)."""

    def make():
        source = case.open_image("source")
        edit, was_resized = fit_edit(open_edit(path), source.size)
        resized[item_id] = was_resized
        images = {"source": source, "edit": edit}
        out = []
        for role in layout:
            if role == "source+arrows":
                out.append(draw_drag_arrows(source, case.points))
            elif role in images:
                out.append(images[role])
            else:
                out.append(case.open_image(role))
        return out

    return make
