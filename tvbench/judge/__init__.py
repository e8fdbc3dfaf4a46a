"""The MLLM judge (PF / CP): prompts, an OpenAI-compatible client with retries, a SQLite reply cache, and the
concurrent evaluation the scorer's judge phase runs. See README "Judge metrics".

Names are resolved on first use, so a light part (``tvbench.judge.config``, which the API editors read for
``redact_url``) does not import the client, the cache and the evaluator: ``tvbench ls`` stays fast.
"""

from __future__ import annotations

from tvbench.lazy import lazy_exports

_EXPORTS = {
    "JudgeCache": "cache", "judgment_key": "cache", "JudgeClient": "client", "Reply": "client",
    "JudgeConfig": "config", "Evaluator": "evaluate", "ItemResult": "evaluate", "JudgeItem": "evaluate",
    "Judgment": "evaluate", "RunStats": "evaluate", "Parsed": "parsing", "parse_reply": "parsing",
    "Prompt": "prompts", "available_prompts": "prompts", "load_prompt": "prompts",
    "identity_line": "identity", "identity_mismatch": "identity", "krippendorff_alpha": "agreement",
    "kendall_tau_b": "agreement", "spearman": "agreement",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
