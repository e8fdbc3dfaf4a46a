"""FLUX.1 Kontext [dev]: Black Forest Labs' 12B flow transformer for in-context image editing.

The weights (``black-forest-labs/FLUX.1-Kontext-dev``, gated: accept the licence on the hub and set
``HF_TOKEN``) are under the **FLUX.1 [dev] Non-Commercial License**: research and personal use; read the
licence before using them or their outputs commercially.

Defaults: 28 steps (FluxKontextPipeline's default) and ``guidance_scale=2.5`` (the distilled-guidance value
in the model card's and diffusers' usage example). No true CFG, no negative prompt, as in the card.

Working size: by default the pipeline snaps the condition image to the nearest of its preferred ~1 MP
resolutions (``_auto_resize=True``), changing the aspect ratio. This adapter calls it with
``_auto_resize=False``, resizes the source itself to ``working_area`` pixels with the source's aspect ratio
(multiples of 16) and asks for the same output size with ``max_area``: nothing global is touched. Batches of
one source size share one call (``--batch-size``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from tvbench_adapters.editors.base import DiffusersEditor, EditRequest
from tvbench_adapters.editors.lora import activate, load_lora
from tvbench_adapters.editors.sizing import kontext_dimensions


@dataclass
class FluxKontext(DiffusersEditor):
    """FLUX.1 Kontext [dev]: 28 steps, guidance 2.5 (model card); non-commercial licence."""

    name = "flux-kontext"
    summary = ("FLUX.1 Kontext [dev] (12B), instruction editing; weights under the FLUX.1 [dev] "
               "Non-Commercial License")
    licence = "FLUX.1 [dev] Non-Commercial License"
    pipeline_class = "FluxKontextPipeline"
    max_batch_size = 8  # prompts and images batch; --batch-size picks how many fit in memory

    model: str = "black-forest-labs/FLUX.1-Kontext-dev"
    steps: int = 28
    guidance_scale: float = 2.5
    lora: str = ""  # a LoRA file (.safetensors path, or org/name/file.safetensors on the hub); "" = none
    lora_scale: float = 1.0

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        return kontext_dimensions(self.working_area, width, height)

    def prepare_image(self, source: Image.Image, working_size: tuple[int, int]) -> Image.Image:
        return source if source.size == working_size else source.resize(working_size, Image.LANCZOS)

    def lora_files(self) -> list[tuple[str, str, str]]:
        return [("lora", self.lora, "option lora")] if self.lora else []

    def configure_pipeline(self, pipe: Any) -> None:
        super().configure_pipeline(pipe)
        if self.lora:
            load_lora(pipe, self.lora, adapter="lora", what="option lora")
            activate(pipe, {"lora": self.lora_scale})

    def call_arguments(self, request: EditRequest) -> dict[str, Any]:
        width, height = request.working_size
        kwargs = super().call_arguments(request)
        kwargs.update(width=width, height=height, max_area=self.working_area, _auto_resize=False,
                      guidance_scale=self.guidance_scale)
        return kwargs
