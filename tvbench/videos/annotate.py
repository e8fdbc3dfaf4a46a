"""Paired textual annotation: the sparse points rendered on I1 and I2, the MLLM asked for the forward (I1 -> I2)
and backward (I2 -> I1) instruction, and a second call that verifies the forward one (generate-then-verify).

Requests go through the judge's client (:class:`tvbench.judge.client.JudgeClient`: OpenAI-compatible, our retries,
rate limit) and its reply cache (:class:`tvbench.judge.cache.JudgeCache`). Prompts are versioned files in
``prompts/`` whose sha256 is recorded. A reply that is not the asked-for JSON, an empty or implausible
instruction, a failed request or a verification that disagrees is an :class:`Rejected` -- never an instruction.
"""

from __future__ import annotations

import colorsys
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tvbench.io import sha256_hex

PROMPT_DIR = Path(__file__).parent / "prompts"
INSTRUCT_PROMPT, VERIFY_PROMPT = "instruct-v1", "verify-v1"
LAYOUT = "video-points-v1"  # what the images are: I1 and I2 with the sparse points drawn


class Rejected(Exception):
    """The MLLM stage gave no usable instruction; ``str()`` is the recorded reason."""


@dataclass(frozen=True)
class VideoPrompt:
    id: str
    text: str
    sha256: str


def load_video_prompt(prompt_id: str) -> VideoPrompt:
    data = (PROMPT_DIR / f"{prompt_id}.txt").read_bytes()
    return VideoPrompt(prompt_id, data.decode("utf-8"), sha256_hex(data))


def colours(n: int) -> list[tuple[int, int, int]]:
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(n, 1), 1.0, 1.0)) for i in range(n)]


def render_points(first: np.ndarray, last: np.ndarray, pairs: list[list[float]]) -> tuple[Image.Image, Image.Image]:
    """I1 with each pair's start and I2 with its end, one distinct colour per pair (white outline)."""
    out = []
    palette = colours(len(pairs))
    radius = max(2, round(min(first.shape[:2]) / 40))
    for frame, offset in ((first, 0), (last, 2)):
        image = Image.fromarray(frame).convert("RGB")
        draw = ImageDraw.Draw(image)
        for pair, colour in zip(pairs, palette):
            x, y = pair[offset], pair[offset + 1]
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(255, 255, 255))
        out.append(image)
    return out[0], out[1]


def _json_object(content: str | None) -> dict:
    if not content:
        raise Rejected("empty reply")
    start = content.find("{")
    while start != -1:
        try:
            obj, _ = json.JSONDecoder().raw_decode(content[start:])
            if isinstance(obj, dict):
                return obj
        except ValueError:
            pass
        start = content.find("{", start + 1)
    raise Rejected(f"reply is not a JSON object: {content[:80]!r}")


def _instruction(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None:
        raise Rejected(f"the MLLM saw no describable motion ({key} is null)")
    if not isinstance(value, str):
        raise Rejected(f"{key}: not a string: {value!r}"[:120])
    text = " ".join(value.split())
    words = text.split()
    if not 2 <= len(words) <= 60 or sum(c.isalpha() for c in text) < 0.6 * len(text.replace(" ", "")):
        raise Rejected(f"{key}: not a plausible instruction: {text[:80]!r}")
    return text


class Annotator:
    """Forward/backward instructions for a clip, verified; cached by images, prompt sha256, model and decoding."""

    def __init__(self, base_url: str, model: str, cache_path: Path, *, api_key: str | None = None,
                 max_attempts: int = 3, timeout_s: float = 120.0):
        from tvbench.judge.cache import JudgeCache
        from tvbench.judge.client import JudgeClient
        from tvbench.judge.config import JudgeConfig

        config = JudgeConfig(base_url=base_url, model=model, api_key=api_key, structured=False, max_tokens=512,
                             max_attempts=max_attempts, timeout_s=timeout_s, preflight=False).resolved()
        config.check_paid()
        self.config = config
        self.client = JudgeClient(config)
        self.cache = JudgeCache(Path(cache_path))
        self.instruct = load_video_prompt(INSTRUCT_PROMPT)
        self.verify = load_video_prompt(VERIFY_PROMPT)

    def describe(self) -> dict:
        return {"model": self.config.model,
                "prompts": {p.id: p.sha256 for p in (self.instruct, self.verify)}, "layout": LAYOUT}

    def _ask(self, prompt: VideoPrompt, images: list[bytes], instruction: str | None) -> str | None:
        from tvbench.judge.cache import CachedReply, judgment_key
        from tvbench.judge.images import data_url

        decoding = {"temperature": self.config.temperature, "max_tokens": self.config.max_tokens,
                    "seed": self.config.seed}
        key = judgment_key(image_shas=[sha256_hex(b) for b in images], instruction=instruction, prompt_id=prompt.id,
                           prompt_sha=prompt.sha256, model=self.config.model, decoding=decoding, repeat=0,
                           layout=LAYOUT)
        cached = self.cache.get(key)
        if cached is not None:
            return cached.content
        text = prompt.text.replace("{{instruction}}", json.dumps(instruction or ""))
        content = [{"type": "image_url", "image_url": {"url": data_url(b)}} for b in images]
        content.append({"type": "text", "text": text})
        reply = self.client.chat([{"role": "user", "content": content}], seed=self.config.seed)
        if reply.error is not None:
            raise Rejected(f"MLLM request failed: {reply.error}")
        if reply.refusal:
            raise Rejected(f"MLLM refused: {reply.refusal[:80]}")
        self.cache.put(key, model=self.config.model, prompt_id=prompt.id,
                       reply=CachedReply(reply.content, reply.refusal, reply.finish_reason, reply.prompt_tokens,
                                         reply.completion_tokens))
        return reply.content

    def annotate(self, first: np.ndarray, last: np.ndarray, pairs: list[list[float]]) -> tuple[str, str]:
        """(forward, backward), or :class:`Rejected` with the reason."""
        from tvbench.judge.images import png_bytes

        images = [png_bytes(im) for im in render_points(first, last, pairs)]
        answer = _json_object(self._ask(self.instruct, images, None))
        forward, backward = _instruction(answer, "forward"), _instruction(answer, "backward")
        if forward.lower() == backward.lower():
            raise Rejected("forward and backward instructions are identical")
        verdict = _json_object(self._ask(self.verify, images, forward))
        agrees = verdict.get("agrees")
        if agrees is not True:
            reason = verdict.get("reason") if isinstance(verdict.get("reason"), str) else ""
            raise Rejected(f"verification disagrees ({agrees!r}): {reason[:80]}" if isinstance(agrees, bool)
                           else f"verification reply has no boolean 'agrees': {str(verdict)[:80]}")
        return forward, backward

    def close(self) -> None:
        self.client.close()
