"""The MLLM judge (PF / CP): prompts, an OpenAI-compatible client with retries, a SQLite reply cache, and the
concurrent evaluation the scorer's judge phase runs. See README "Judge metrics"."""

from tvbench.judge.cache import JudgeCache, judgment_key
from tvbench.judge.client import JudgeClient, Reply
from tvbench.judge.config import JudgeConfig
from tvbench.judge.evaluate import Evaluator, ItemResult, JudgeItem, Judgment, RunStats
from tvbench.judge.parsing import Parsed, parse_reply
from tvbench.judge.prompts import Prompt, available_prompts, load_prompt

__all__ = ["Evaluator", "ItemResult", "JudgeCache", "JudgeClient", "JudgeConfig", "JudgeItem", "Judgment", "Parsed",
           "Prompt", "Reply", "RunStats", "available_prompts", "judgment_key", "load_prompt", "parse_reply"]
