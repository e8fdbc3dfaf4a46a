"""LongCat-Image-Edit: Meituan's 6B flow transformer with a Qwen2.5-VL-7B encoder; Apache-2.0 weights.

Defaults: 50 steps and ``guidance_scale=4.5`` (classifier-free guidance against the negative prompt) as in
diffusers' LongCatImageEditPipeline example and the ``meituan-longcat/LongCat-Image-Edit`` model card; the
negative prompt is empty, as in meituan-longcat/LongCat-Image ``scripts/inference_edit.py`` (whose lower
``cfg = 2.5`` and ``steps = 30`` are marked there as a faster choice, "original 4.5" and "original 50").

One case per call: the pipeline encodes only ``prompt[0]`` of a batch (diffusers 0.37-0.42), so a batch
would edit every image with the first instruction. It has no size argument: it scales the source to about
1024^2 pixels (multiples of 16) itself; ``working_area`` changes that for this adapter's calls only (see
``sizing.py``). The pipeline has no LoRA loader, so there is no ``lora`` option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tvbench_adapters.editors.base import DiffusersEditor, EditRequest


@dataclass
class LongCatImageEdit(DiffusersEditor):
    """LongCat-Image-Edit: 50 steps, CFG 4.5, empty negative prompt (model card)."""

    name = "longcat-image-edit"
    summary = "LongCat-Image-Edit (6B DiT + Qwen2.5-VL-7B), instruction editing; Apache-2.0"
    licence = "Apache-2.0"
    pipeline_class = "LongCatImageEditPipeline"
    area_module = "diffusers.pipelines.longcat_image.pipeline_longcat_image_edit"
    max_batch_size = 1  # the pipeline encodes only the first prompt of a batch

    model: str = "meituan-longcat/LongCat-Image-Edit"
    steps: int = 50
    guidance_scale: float = 4.5
    negative_prompt: str = ""

    def call_arguments(self, request: EditRequest) -> dict[str, Any]:
        kwargs = super().call_arguments(request)
        kwargs.update(guidance_scale=self.guidance_scale, negative_prompt=self.negative_prompt)
        return kwargs
