"""Fake image-editing APIs for tests and benchmarks: Gemini ``generateContent`` and OpenAI ``images/edits``.

Both are :class:`~tvbench.testing.http_server.FakeHTTPServer` subclasses: the real SDKs talk to them over HTTP
on 127.0.0.1. Unscripted requests get an "edit": the uploaded source, mirrored left-right and resized to
``native_size`` (so a test sees that the image really went up, came back, and was mapped to the source's
size). The helpers build scripted replies: an image, a refusal in each API's own shape, a timeout, garbage.

    with FakeGeminiServer([http_error(429, retry_after=0.2), gemini_image()]) as server:
        tvbench run -m nanobanana-pro --set base_url=<server.base_url> ...
"""

from __future__ import annotations

import base64
import io
import threading
from typing import Callable

from PIL import Image, ImageOps

from tvbench.testing.http_server import FakeHTTPServer, Scripted, http_error

NATIVE_SIZE = (64, 48)


def fake_edit(source_png: bytes | None, size: tuple[int, int] = NATIVE_SIZE) -> bytes:
    """The fake service's edit: the source mirrored and resized to ``size`` (a grey image without a source)."""
    if source_png:
        image = ImageOps.mirror(Image.open(io.BytesIO(source_png)).convert("RGB")).resize(size, Image.BILINEAR)
    else:
        image = Image.new("RGB", size, (128, 128, 128))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# -- Gemini (google-genai: POST {base}/{version}/models/{model}:generateContent, camelCase JSON) --------------------

def gemini_source(request: dict) -> bytes | None:
    """The first image the request uploaded (``contents[].parts[].inlineData``)."""
    for content in request.get("contents") or []:
        for part in content.get("parts") or []:
            data = (part.get("inlineData") or part.get("inline_data") or {}).get("data")
            if data:  # google-genai sends URL-safe base64 without padding
                return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return None


def gemini_usage(prompt: int = 1290, image: int = 1120, text: int = 12, thoughts: int = 200) -> dict:
    return {"promptTokenCount": prompt, "candidatesTokenCount": image + text, "thoughtsTokenCount": thoughts,
            "totalTokenCount": prompt + image + text + thoughts,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": image}, {"modality": "TEXT",
                                                                                      "tokenCount": text}]}


def gemini_image(size: tuple[int, int] = NATIVE_SIZE, thought_image: bool = True, usage: dict | None = None,
                 **kw) -> Scripted:
    """A reply with an interim thought image (must be skipped), a line of text and the final image."""

    def payload(request: dict) -> dict:
        edit = base64.b64encode(fake_edit(gemini_source(request), size)).decode()
        parts = []
        if thought_image:
            draft = base64.b64encode(fake_edit(None, (8, 8))).decode()
            parts.append({"inlineData": {"mimeType": "image/png", "data": draft}, "thought": True})
        parts += [{"text": "Here is the edited image."}, {"inlineData": {"mimeType": "image/png", "data": edit}}]
        return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage or gemini_usage(), "modelVersion": "fake-gemini"}

    return Scripted(json=payload, **kw)


def gemini_blocked(reason: str = "PROHIBITED_CONTENT", **kw) -> Scripted:
    """The prompt blocked before generation: no candidates, a ``promptFeedback.blockReason``."""
    return Scripted(json={"promptFeedback": {"blockReason": reason},
                          "usageMetadata": {"promptTokenCount": 1290, "totalTokenCount": 1290}}, **kw)


def gemini_finish(reason: str = "IMAGE_SAFETY", text: str | None = None, **kw) -> Scripted:
    """A candidate that stopped without an image (``IMAGE_SAFETY``; or ``STOP`` with only text)."""
    parts = [{"text": text}] if text else []
    candidate = {"finishReason": reason, "index": 0, "content": {"role": "model", "parts": parts}}
    return Scripted(json={"candidates": [candidate], "usageMetadata": gemini_usage(image=0)}, **kw)


class FakeGeminiServer(FakeHTTPServer):
    """Answers ``...:generateContent``; ``base_url`` is what ``google-genai``'s ``HttpOptions(base_url=...)`` takes."""

    def __init__(self, script=None, latency: float = 0.0, native_size: tuple[int, int] = NATIVE_SIZE):
        super().__init__(script, latency)
        self.native_size = native_size

    def default_reply(self, request: dict, index: int) -> Scripted:
        return gemini_image(self.native_size)


# -- OpenAI images (openai: POST {base}/images/edits, multipart form) ---------------------------------------------

def openai_usage(text_in: int = 20, image_in: int = 323, image_out: int = 4160) -> dict:
    return {"input_tokens": text_in + image_in, "output_tokens": image_out, "total_tokens": text_in + image_in
            + image_out, "input_tokens_details": {"text_tokens": text_in, "image_tokens": image_in},
            "output_tokens_details": {"image_tokens": image_out, "text_tokens": 0}}


def openai_image(size: tuple[int, int] = NATIVE_SIZE, usage: dict | None = None, **kw) -> Scripted:
    def payload(request: dict) -> dict:
        source = request.get("image") if isinstance(request.get("image"), bytes) else None
        edit = base64.b64encode(fake_edit(source, size)).decode()
        return {"created": 1767225600, "data": [{"b64_json": edit}], "output_format": "png",
                "usage": usage or openai_usage()}

    return Scripted(json=payload, **kw)


def openai_moderation_blocked(**kw) -> Scripted:
    """How the Images API declines: HTTP 400, ``error.code == "moderation_blocked"``."""
    return http_error(400, code="moderation_blocked", message="Your request was rejected by the safety system. "
                      "safety_violations=[scripted].", **kw)


def openai_empty(**kw) -> Scripted:
    """A well-formed reply with no image in it."""
    return Scripted(json={"created": 1767225600, "data": [], "usage": openai_usage(image_out=0)}, **kw)


class FakeOpenAIImagesServer(FakeHTTPServer):
    """Answers ``/v1/images/edits``; ``base_url`` ends in ``/v1`` as the openai client expects."""

    def __init__(self, script=None, latency: float = 0.0, native_size: tuple[int, int] = NATIVE_SIZE):
        super().__init__(script, latency)
        self.native_size = native_size

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def default_reply(self, request: dict, index: int) -> Scripted:
        return openai_image(self.native_size)


def by_prompt(answers: dict[str, list[Scripted]], prompt_of: Callable[[dict], str]):
    """A script answering the k-th request whose prompt contains a key with ``answers[key][k]`` (last repeated).

    Requests arrive in any order when sent concurrently; keying the script by the instruction keeps each case's
    story (429 then success, 500 forever, ...) whatever the order.
    """
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def script(request: dict, index: int) -> Scripted:
        text = prompt_of(request)
        key = next((k for k in answers if k in text), None)
        if key is None:
            return Scripted(status=404, body=b'{"error": {"message": "no scripted answer for this prompt"}}')
        with lock:
            k = seen[key] = seen.get(key, -1) + 1
        replies = answers[key]
        return replies[min(k, len(replies) - 1)]

    return script


def gemini_prompt(request: dict) -> str:
    return " ".join(part.get("text", "") for content in request.get("contents") or []
                    for part in content.get("parts") or [])


def openai_prompt(request: dict) -> str:
    prompt = request.get("prompt")
    return prompt if isinstance(prompt, str) else ""
