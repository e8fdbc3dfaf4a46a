"""One controlled edit through an unmodified diffusers edit pipeline (validation during training; the methods).

The source is sized by the ``resize`` mode (:mod:`.points`) with the official filter, by
:func:`.points.resize_image` or by the pipeline's own resize under :func:`.points.pipeline_filter`; the
controller is attached with the case's drag points for the call and detached afterwards, and the output is
returned at the pipeline's native size. Working size: Qwen-Image-Edit's ``calculate_dimensions`` of ``area``
(default 1024^2) for a square (``squash``: resized here) or the source's aspect (``keep``: the pipeline resizes);
FLUX.1 Kontext the area rule of the ``flux-kontext`` editor (``max_area``, multiples of 16, resized here).
Classifier-free guidance: Qwen-Image-Edit uses true CFG (``true_cfg_scale`` with the negative prompt " ", the
authors' README recommendation "CFG 2.5-3.5 with 50 steps"; the demo's 50-step mode passes no negative prompt
and so runs without CFG, see ``methods.py``); FLUX.1 Kontext uses its distilled ``guidance_scale``.
"""

from __future__ import annotations

from typing import Any, Sequence

from PIL import Image

from tvbench_adapters.tvedit.attach import attach
from tvbench_adapters.tvedit.controller import TVEditController
from tvbench_adapters.tvedit.points import check_resize_mode, pipeline_filter, prepare_source

NEGATIVE_PROMPT = " "  # the official demo's negative prompt (gradio_demo.py, on_run; passed with Lightning only)


def controlled_edit(pipe: Any, controller: TVEditController, source: Image.Image, instruction: str,
                    pairs: Sequence[Sequence[float]], *, steps: int, seed: int, cfg: float,
                    resize: str = "squash", conditioning_scale: float = 1.0, area: int = 0) -> Image.Image:
    """The edited image (PIL, the pipeline's working size). ``area`` > 0 asks for another working area (in
    squash mode the square of it)."""
    import contextlib
    import importlib

    import torch

    from tvbench_adapters.editors.sizing import NATIVE_AREA, area_dimensions, kontext_dimensions, working_area
    from tvbench_adapters.tvedit.spec import backbone_of

    source = source.convert("RGB")
    squash = check_resize_mode(resize) == "squash"
    aspect = (1, 1) if squash else source.size
    scope = contextlib.nullcontext()
    device = next(pipe.transformer.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    kwargs: dict[str, Any] = {"prompt": instruction, "num_inference_steps": steps, "generator": generator}
    if backbone_of(pipe.transformer) == "qwen":
        module = importlib.import_module(type(pipe).__module__)
        # keep: the pipeline sizes (and resizes) the source itself, under pipeline_filter
        size = area_dimensions(module, area or NATIVE_AREA, 1, 1) if squash else None
        kwargs.update(true_cfg_scale=cfg, negative_prompt=NEGATIVE_PROMPT)
        if area:  # the pipeline hard-codes ~1 MP; the editors' thread-scoped override changes it for this call
            scope = working_area(area, module)
    else:
        size = kontext_dimensions(area or NATIVE_AREA, *aspect)
        kwargs.update(guidance_scale=cfg, width=size[0], height=size[1], max_area=area or NATIVE_AREA,
                      _auto_resize=False)
    kwargs["image"] = prepare_source(source, resize, size)
    with scope, pipeline_filter(pipe), attach(pipe, controller, pairs, source.size,
                                              conditioning_scale=conditioning_scale):
        return pipe(**kwargs).images[0]
