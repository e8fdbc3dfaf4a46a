"""One controlled edit through an unmodified diffusers edit pipeline (validation during training; the methods).

The source is sized by the ``resize`` mode (:mod:`.points`), the controller is attached with the case's drag
points for the call and detached afterwards, and the output is returned at the pipeline's native size.
Classifier-free guidance: Qwen-Image-Edit uses true CFG (``true_cfg_scale`` with a negative prompt, " " as
the official demo passes); FLUX.1 Kontext uses its distilled ``guidance_scale``.
"""

from __future__ import annotations

from typing import Any, Sequence

from PIL import Image

from tvbench_adapters.tvedit.attach import attach
from tvbench_adapters.tvedit.controller import TVEditController
from tvbench_adapters.tvedit.points import prepare_source

NEGATIVE_PROMPT = " "  # the official demo's negative prompt (gradio_demo.py, on_run)


def controlled_edit(pipe: Any, controller: TVEditController, source: Image.Image, instruction: str,
                    pairs: Sequence[Sequence[float]], *, steps: int, seed: int, cfg: float,
                    resize: str = "squash", conditioning_scale: float = 1.0, area: int = 0) -> Image.Image:
    """The edited image (PIL, the pipeline's working size). ``area`` > 0 asks for another working area (in
    squash mode the square of it)."""
    import contextlib
    import importlib

    import torch

    from tvbench_adapters.editors.sizing import working_area
    from tvbench_adapters.tvedit.spec import backbone_of

    image = prepare_source(source.convert("RGB"), resize)
    scope = contextlib.nullcontext()
    device = next(pipe.transformer.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    kwargs: dict[str, Any] = {"image": image, "prompt": instruction, "num_inference_steps": steps,
                              "generator": generator}
    if backbone_of(pipe.transformer) == "qwen":
        kwargs.update(true_cfg_scale=cfg, negative_prompt=NEGATIVE_PROMPT)
        if area:  # the pipeline hard-codes ~1 MP; the editors' thread-scoped override changes it for this call
            scope = working_area(area, importlib.import_module(type(pipe).__module__))
    else:
        kwargs.update(guidance_scale=cfg)
        if area:
            kwargs.update(max_area=area, _auto_resize=False)
    with scope, attach(pipe, controller, pairs, source.size, conditioning_scale=conditioning_scale):
        return pipe(**kwargs).images[0]
