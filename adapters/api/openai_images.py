"""``gpt-image``: OpenAI's GPT Image models through ``images.edit`` (``POST /v1/images/edits``) and ``openai``.

One source image (PNG) and the instruction as ``prompt``, ``n=1``, ``output_format="png"``; the edit comes back
base64-encoded in ``data[0].b64_json`` (GPT Image models always answer in base64: the openai SDK's
``images.edit`` docstring, openai 3.57). A request the safety system rejects is an HTTP 400 whose error code is
``moderation_blocked`` (older models: ``content_policy_violation``): that, or a reply with an empty ``data``
list, is a refusal. A 200 without ``data`` or whose image does not decode is malformed (retried).

Model: the issue named ``gpt-image-1``, but OpenAI shut it down on 2026-10-23 (the ``model`` docstring of
``images.edit`` in openai 3.57: "GPT Image 1 was shut down on October 23, 2026"); the default is therefore
``gpt-image-1.5``, which takes the same parameters. ``--set model=gpt-image-1`` still sends the old name.
``size``, ``quality`` and ``input_fidelity`` are sent only when set (the API's defaults: ``auto``, ``auto``,
``low``). The API takes no seed, so an edit cannot be reproduced; a rerun keeps the images it has.

Key: ``TVBENCH_OPENAI_API_KEY`` or ``OPENAI_API_KEY``. Server: option ``base_url``, ``TVBENCH_OPENAI_BASE_URL``
or ``OPENAI_BASE_URL``, else OpenAI's. The client is built with ``max_retries=0``: :mod:`tvbench.retry`
retries, as for the judge.

Costs: ``price_input_text``, ``price_input_image``, ``price_output_image`` and ``price_output_text`` in USD per
million tokens, from ``usage`` (``input_tokens_details``, ``output_tokens_details``; all output tokens count as
image tokens without a breakdown). Left unset, the list price of a known model applies (:data:`LIST_PRICES`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from tvbench.errors import UnavailableError
from tvbench.methods.base import runtime_option
from tvbench.retry import Failure, openai_error_message, openai_failure
from tvbench_adapters.api.base import ApiEditor, ApiReply, Malformed, decode_image, per_million, short

# USD per million tokens: (input text, input image, output text, output image). OpenAI list prices
# (https://openai.com/api/pricing, as listed in March 2026: gpt-image-1.5 at 1024x1024 costs $0.009 / $0.034 /
# $0.133 at low / medium / high quality). Models without text output bill every output token as image.
LIST_PRICES: dict[str, tuple[float, float, float, float]] = {
    "gpt-image-1.5": (5.00, 8.00, 10.00, 32.00),
    "gpt-image-1": (5.00, 10.00, 40.00, 40.00),
    "gpt-image-1-mini": (2.00, 2.50, 8.00, 8.00),
}
REFUSAL_CODES = {"moderation_blocked", "content_policy_violation"}


@dataclass
class GptImage(ApiEditor):
    """OpenAI GPT Image edits the source from the instruction (closed model, paid API; no drag points)."""

    name = "gpt-image"
    summary = "OpenAI GPT Image (images.edit, gpt-image-1.5); paid, key from env"
    key_variables = ("TVBENCH_OPENAI_API_KEY", "OPENAI_API_KEY")
    base_url_variables = ("TVBENCH_OPENAI_BASE_URL", "OPENAI_BASE_URL")

    model: str = "gpt-image-1.5"
    size: str | None = None  # e.g. "1024x1024", "1536x1024"; None: the API's "auto"
    quality: str | None = None  # "low", "medium", "high"; None: the API's "auto"
    input_fidelity: str | None = None  # "high" or "low"; None: the API's default
    price_input_text: float | None = runtime_option(None)
    price_input_image: float | None = runtime_option(None)
    price_output_text: float | None = runtime_option(None)
    price_output_image: float | None = runtime_option(None)

    def connect(self, api_key: str, base_url: str | None) -> Any:
        try:
            import openai
        except ImportError as exc:
            raise UnavailableError(f"{self.name} needs openai: pip install 'tvbench[api]'") from exc
        self._openai = openai
        return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=self.timeout_s, max_retries=0)

    def send(self, png: bytes, instruction: str, seed: int) -> ApiReply:
        options = {key: value for key, value in (("size", self.size), ("quality", self.quality),
                                                 ("input_fidelity", self.input_fidelity)) if value is not None}
        try:
            response = self._client.images.edit(model=self.model, image=("source.png", png, "image/png"),
                                                prompt=instruction, n=1, output_format="png", **options)
        except self._openai.BadRequestError as exc:
            code = _error_code(exc)
            if code not in REFUSAL_CODES:
                raise
            return ApiReply(refused=f"{code}: {short(openai_error_message(exc))}")
        return self.read(response)

    def read(self, response) -> ApiReply:
        data = getattr(response, "data", None)
        if not isinstance(data, list):
            raise Malformed("no data in the reply")
        encoded = [getattr(item, "b64_json", None) for item in data]
        encoded = [text for text in encoded if text]
        reply = ApiReply(images=len(encoded))
        if encoded:
            try:
                raw = base64.b64decode(encoded[0], validate=True)
            except (binascii.Error, ValueError):
                raise Malformed("b64_json is not base64") from None
            reply.image = decode_image(raw)
        else:
            reply.refused = "no image in the reply"
        reply.tokens, by_kind = _tokens(getattr(response, "usage", None))
        reply.cost_usd = self.cost(by_kind)
        return reply

    def prices(self) -> tuple[float, float, float, float] | None:
        given = (self.price_input_text, self.price_input_image, self.price_output_text, self.price_output_image)
        if any(price is not None for price in given):
            return tuple(price or 0.0 for price in given)  # type: ignore[return-value]
        return LIST_PRICES.get(self.model)

    def cost(self, by_kind: tuple[int, int, int, int] | None) -> float | None:
        prices = self.prices()
        if prices is None or by_kind is None:
            return None
        return sum(per_million(tokens, price) for tokens, price in zip(by_kind, prices))

    def classify(self, exc: Exception) -> Failure | None:
        return openai_failure(exc, self.timeout_s)


def _error_code(exc) -> str | None:
    code = getattr(exc, "code", None)
    body = getattr(exc, "body", None)
    if code is None and isinstance(body, dict):
        inner = body.get("error", body)
        code = inner.get("code") if isinstance(inner, dict) else None
    return str(code) if code is not None else None


def _tokens(usage) -> tuple[dict[str, int], tuple[int, int, int, int] | None]:
    """The manifest's token counts, and (input text, input image, output text, output image) for the cost."""
    if usage is None:
        return {}, None
    total_in = int(getattr(usage, "input_tokens", None) or 0)
    total_out = int(getattr(usage, "output_tokens", None) or 0)
    details_in = getattr(usage, "input_tokens_details", None)
    details_out = getattr(usage, "output_tokens_details", None)
    image_in = int(getattr(details_in, "image_tokens", None) or 0) if details_in is not None else 0
    text_in = int(getattr(details_in, "text_tokens", None) or 0) if details_in is not None else total_in
    if details_out is not None:
        image_out = int(getattr(details_out, "image_tokens", None) or 0)
        text_out = int(getattr(details_out, "text_tokens", None) or 0)
    else:
        image_out, text_out = total_out, 0
    tokens = {"input": total_in, "output": total_out, "input_image": image_in, "output_image": image_out}
    return tokens, (text_in, image_in, text_out, image_out)
