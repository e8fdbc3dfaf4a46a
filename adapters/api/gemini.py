"""``nanobanana-pro``: Nano Banana Pro (Gemini 3 Pro Image) through the Gemini API and ``google-genai``.

The paper's closed instruction-based baseline (Table 1, ref. [8]: "Nano banana pro (gemini 3 pro image)",
Google DeepMind, November 2025). The request is the one Google documents for editing ("Edit images with
Gemini", cloud.google.com/vertex-ai/generative-ai/docs/multimodal/gemini-edit-images): ``generate_content``
with the source image and the instruction as contents and ``response_modalities=["TEXT", "IMAGE"]``.

Reading the reply: Gemini 3 Pro Image thinks in images first; parts marked ``thought`` are interim images and
are skipped; the last other image part is the edit. A prompt blocked before generation
(``prompt_feedback.block_reason``), a candidate stopped for safety (``finish_reason`` such as ``IMAGE_SAFETY``
or ``PROHIBITED_CONTENT``), or a reply with text but no image is a refusal. A 200 without candidates or whose
image does not decode is malformed (retried).

Key: ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY`` (the SDK's own order: ``GOOGLE_API_KEY`` first). Server:
option ``base_url`` or ``TVBENCH_GEMINI_BASE_URL``, else Google's endpoint. The SDK's retries are off
(``HttpRetryOptions(attempts=1)``); :mod:`tvbench.retry` retries instead, honouring ``Retry-After`` and the
``RetryInfo.retryDelay`` Google puts in a 429's body.

Costs: ``price_input``, ``price_output_text`` (text and thinking) and ``price_output_image`` in USD per million
tokens; left unset, the list price of a known model applies (:data:`LIST_PRICES`), else no cost is recorded.
Output tokens come from ``usage_metadata``: image tokens from ``candidates_tokens_details`` (all candidate
tokens count as image tokens when the API gives no breakdown and an image came back), thinking tokens from
``thoughts_token_count``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tvbench.errors import UnavailableError, one_line
from tvbench.methods.base import runtime_option
from tvbench.retry import Failure, status_failure
from tvbench_adapters.api.base import ApiEditor, ApiReply, Malformed, decode_image, per_million, short

# USD per million tokens: (input, output text and thinking, output image). Gemini Developer API list prices,
# https://ai.google.dev/gemini-api/docs/pricing as listed in March 2026 (Gemini 3 Pro Image Preview: a 1K or 2K
# image is 1120 output tokens, $0.134; a 4K image 2000 tokens, $0.24). Check the page before trusting a total.
LIST_PRICES: dict[str, tuple[float, float, float]] = {
    "gemini-3-pro-image-preview": (2.00, 12.00, 120.00),
    "gemini-2.5-flash-image": (0.30, 2.50, 30.00),
}
# finish reasons that mean "declined", as opposed to an image that simply did not come
BLOCKING_FINISH = {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII",
                   "RECITATION", "IMAGE_RECITATION"}


@dataclass
class NanoBananaPro(ApiEditor):
    """Gemini 3 Pro Image edits the source from the instruction (closed model, paid API; no drag points)."""

    name = "nanobanana-pro"
    summary = "Nano Banana Pro (Gemini 3 Pro Image) via the Gemini API; paid, key from env"
    key_variables = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    base_url_variables = ("TVBENCH_GEMINI_BASE_URL",)

    model: str = "gemini-3-pro-image-preview"
    image_size: str | None = None  # "1K", "2K" or "4K"; None: the API's default (1K)
    aspect_ratio: str | None = None  # e.g. "4:3"; None: the model keeps the source's aspect when editing
    price_input: float | None = runtime_option(None)
    price_output_text: float | None = runtime_option(None)
    price_output_image: float | None = runtime_option(None)

    def connect(self, api_key: str, base_url: str | None) -> Any:
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise UnavailableError(f"{self.name} needs google-genai: pip install 'tvbench[api]'") from exc
        self._types = types
        options = types.HttpOptions(base_url=base_url, timeout=int(self.timeout_s * 1000),
                                    retry_options=types.HttpRetryOptions(attempts=1))
        return genai.Client(api_key=api_key, vertexai=False, http_options=options)

    def send(self, png: bytes, instruction: str, seed: int) -> ApiReply:
        types = self._types
        image_config = None
        if self.image_size or self.aspect_ratio:
            image_config = types.ImageConfig(image_size=self.image_size, aspect_ratio=self.aspect_ratio)
        config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"], image_config=image_config,
                                             seed=seed % 2**31)
        response = self._client.models.generate_content(
            model=self.model, contents=[types.Part.from_bytes(data=png, mime_type="image/png"), instruction],
            config=config)
        return self.read(response)

    def read(self, response) -> ApiReply:
        reply = ApiReply(model_version=getattr(response, "model_version", None))
        usage = getattr(response, "usage_metadata", None)
        feedback = getattr(response, "prompt_feedback", None)
        candidates = getattr(response, "candidates", None) or []
        block = _name(getattr(feedback, "block_reason", None))
        if block:
            message = getattr(feedback, "block_reason_message", None)
            reply.refused = f"prompt blocked ({block})" + (f": {message}" if message else "")
        elif not candidates:
            raise Malformed("no candidates and no block reason in the reply")
        else:
            candidate = candidates[0]
            parts = getattr(getattr(candidate, "content", None), "parts", None) or []
            finals = [p for p in parts if not getattr(p, "thought", False)]
            images = [p.inline_data for p in finals
                      if p.inline_data is not None and (p.inline_data.mime_type or "").startswith("image/")]
            text = " ".join(p.text.strip() for p in finals if p.text).strip()
            finish = _name(getattr(candidate, "finish_reason", None)) or "unspecified"
            reply.images = len(images)
            if images:
                reply.image = decode_image(images[-1].data)
            elif finish in BLOCKING_FINISH:
                detail = getattr(candidate, "finish_message", None) or text
                reply.refused = f"blocked ({finish})" + (f": {short(detail)}" if detail else "")
            else:
                reply.refused = f"no image in the reply (finish reason {finish})" + (
                    f": {short(text)}" if text else "")
        reply.tokens, image_tokens = _tokens(usage, reply.image is not None)
        reply.cost_usd = self.cost(reply.tokens, image_tokens)
        return reply

    def prices(self) -> tuple[float, float, float] | None:
        given = (self.price_input, self.price_output_text, self.price_output_image)
        if any(price is not None for price in given):
            return tuple(price or 0.0 for price in given)  # type: ignore[return-value]
        return LIST_PRICES.get(self.model)

    def cost(self, tokens: dict[str, int], image_tokens: int) -> float | None:
        prices = self.prices()
        if prices is None or not tokens:
            return None
        price_in, price_text, price_image = prices
        return (per_million(tokens.get("input", 0), price_in) + per_million(image_tokens, price_image)
                + per_million(tokens.get("output", 0) - image_tokens, price_text))

    def classify(self, exc: Exception) -> Failure | None:
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            response = getattr(exc, "response", None)
            failure = status_failure(int(exc.code or 0), short(exc.message or exc.status or ""),
                                     getattr(response, "headers", None))
            if failure.retry and failure.wait is None:
                failure = Failure(failure.message, True, _retry_delay(exc.details))
            return failure
        timeouts, transport = _httpx_errors()
        if isinstance(exc, timeouts):
            return Failure(f"timed out after {self.timeout_s:g} s")
        if isinstance(exc, transport):
            return Failure(f"connection failed: {one_line(exc)}")
        if isinstance(exc, (ValueError, TypeError, AttributeError, KeyError)):  # not JSON, or not a reply
            return Failure(f"malformed response: {short(one_line(exc))}")
        return None


def _name(value) -> str | None:
    """An SDK enum or string as its plain name (``FinishReason.IMAGE_SAFETY`` -> ``IMAGE_SAFETY``)."""
    if value is None:
        return None
    return str(getattr(value, "value", value)) or None


def _tokens(usage, has_image: bool) -> tuple[dict[str, int], int]:
    """``{"input", "output", "output_image", "thoughts"}`` from ``usage_metadata``, and the image tokens."""
    if usage is None:
        return {}, 0
    prompt = int(getattr(usage, "prompt_token_count", None) or 0)
    candidates = int(getattr(usage, "candidates_token_count", None) or 0)
    thoughts = int(getattr(usage, "thoughts_token_count", None) or 0)
    details = getattr(usage, "candidates_tokens_details", None)
    if details:
        image = sum(int(d.token_count or 0) for d in details if _name(getattr(d, "modality", None)) == "IMAGE")
    else:
        image = candidates if has_image else 0
    tokens = {"input": prompt, "output": candidates + thoughts, "output_image": image}
    if thoughts:
        tokens["thoughts"] = thoughts
    return tokens, image


def _retry_delay(details) -> float | None:
    """``retryDelay`` ("12s", "1.5s") of a ``google.rpc.RetryInfo`` in an error body, if any."""
    error = details.get("error", details) if isinstance(details, dict) else None
    for item in (error or {}).get("details", None) or []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _httpx_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Timeout and transport exception classes of whichever httpx flavours google-genai uses."""
    timeouts, transport = [], []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)

