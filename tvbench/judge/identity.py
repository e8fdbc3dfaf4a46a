"""What the judge server says it is, recorded with every judge phase, and the check that two results folders were
judged by the same one.

The identity holds what an OpenAI-compatible server reveals without being asked anything special:
  - the model asked for, and the ``model`` its completions say answered (OpenAI answers ``gpt-4o`` with a dated
    snapshot such as ``gpt-4o-2024-08-06``);
  - the completion's ``system_fingerprint`` (the backend configuration, where the server reports one);
  - the ``GET /models`` entry of that model: ``root`` (vLLM: the weights' path or hub id), ``parent``,
    ``owned_by``, ``revision`` where given, ``max_model_len`` (vLLM's context length);
  - a few response headers that name the server or the model (:data:`IDENTITY_HEADERS`; never cookies,
    request ids, organisation or rate-limit headers; ``server`` is shown, not compared).
The pre-flight request (:mod:`tvbench.judge.preflight`) observes it; it is stored in the reply cache, so a phase
served entirely from the cache reports the identity last observed for that model (``source: judge cache``).

Two identities are the same when every field of :func:`identity_key` agrees (a field one server reports and the
other does not counts as a difference: the same server reports the same fields). The server's address is shown
but not compared: the same weights behind another port are the same judge.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tvbench.judge.client import Reply
    from tvbench.judge.config import JudgeConfig

IDENTITY_HEADERS = ("server", "openai-model", "openai-version", "x-model", "x-model-id", "x-model-version",
                    "x-served-model", "x-vllm-version")
LISTING_FIELDS = ("id", "root", "parent", "owned_by", "revision", "max_model_len")
COMPARED = ("model", "served_model", "system_fingerprint", "listing", "headers")


def build_identity(config: "JudgeConfig", listing: list[dict] | None, headers: dict[str, str],
                   reply: "Reply | None", source: str) -> dict:
    """The identity record from a ``GET /models`` listing, response headers and one completion."""
    entry = None
    if listing is not None:
        entry = next((m for m in listing if m.get("id") == config.model), None)
    served = reply.model if reply is not None else None
    return {
        "model": config.model,
        "served_model": served,
        "system_fingerprint": reply.system_fingerprint if reply is not None else None,
        "listing": {k: entry[k] for k in LISTING_FIELDS if entry.get(k) is not None} if entry else None,
        "models_endpoint": "absent" if listing is None else ("lists the model" if entry else
                                                             f"does not list the model ({len(listing)} entries)"),
        "headers": {name: headers[name] for name in IDENTITY_HEADERS if name in headers},
        "server": config.server(),
        "observed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
    }


def with_run(identity: dict | None, served_models: Counter, fingerprints: Counter) -> dict | None:
    """The identity with what this run's completions reported (counts over requests; the pre-flight's excluded)."""
    if identity is None:
        return None
    return {**identity, "this_run": {"served_models": dict(served_models),
                                     "system_fingerprints": dict(fingerprints)}}


def identity_key(identity: dict) -> dict:
    """The fields compared between two identities (of the headers, those naming the model: ``server`` names the
    HTTP software, which a provider may change under the same model)."""
    key = {name: identity.get(name) for name in COMPARED}
    key["headers"] = {k: v for k, v in (identity.get("headers") or {}).items() if k != "server"}
    return key


def identity_line(identity: dict | None, model: str | None = None) -> str:
    """One line for a report legend: the model, what answered, where, and when it was observed."""
    if not identity:
        return (f"judge {model or '?'}: identity not observed (every reply came from a cache made before tvbench "
                "recorded identities)")
    parts = []
    served = identity.get("served_model")
    if served and served != identity.get("model"):
        parts.append(f"served as {served}")
    listing = identity.get("listing") or {}
    for name in ("root", "revision", "owned_by", "max_model_len"):
        if listing.get(name) is not None and not (name == "root" and listing.get(name) == identity.get("model")):
            parts.append(f"{name} {listing[name]}")
    if identity.get("system_fingerprint"):
        parts.append(f"fingerprint {identity['system_fingerprint']}")
    if identity.get("headers", {}).get("server"):
        parts.append(f"server {identity['headers']['server']}")
    details = f" ({'; '.join(parts)})" if parts else ""
    day = str(identity.get("observed") or "")[:10]
    return f"judge {identity.get('model')}{details} at {identity.get('server')}, observed {day}" + \
        (" (from the cache)" if identity.get("source") == "judge cache" else "")


def identity_of(summary: dict) -> tuple[bool, dict | None]:
    """(whether the summary has a judge phase, its identity or None)."""
    judge = summary.get("judge")
    if not isinstance(judge, dict):
        return False, None
    identity = judge.get("identity")
    return True, identity if isinstance(identity, dict) else None


def identity_mismatch(summary_a: dict, summary_b: dict, names: tuple[str, str] = ("first", "second")) -> str | None:
    """One line saying how the judges of two summaries differ, or None when they agree or neither was judged.

    A summary with a judge phase but no identity (scored before identities were recorded) cannot be shown to
    agree: that is a mismatch too, which rescoring it (the reply cache answers, at no cost) resolves.
    """
    judged_a, a = identity_of(summary_a)
    judged_b, b = identity_of(summary_b)
    if not (judged_a and judged_b):
        return None
    if a is None or b is None:
        missing = [name for name, identity in zip(names, (a, b)) if identity is None]
        return (f"judge identity not recorded in the {' and the '.join(missing)} (scored before tvbench recorded "
                "it, or from an older cache): rescore to compare the judges")
    key_a, key_b = identity_key(a), identity_key(b)
    differences = [f"{field} {_show(key_a[field])} vs {_show(key_b[field])}"
                   for field in COMPARED if key_a[field] != key_b[field]]
    if not differences:
        return None
    return f"judged by different identities ({names[0]} vs {names[1]}): " + "; ".join(differences)


def _show(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in sorted(value.items())) + "}" if value else "{}"
    return "none" if value is None else repr(value)
