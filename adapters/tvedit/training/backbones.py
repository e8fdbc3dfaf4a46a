"""The frozen parts of each backbone, used the way its diffusers edit pipeline uses them (diffusers 0.42).

For training, a pair becomes: the target's packed latent tokens Z0, the source's packed latent tokens (the
condition image), the text states of the instruction, and the token grid. ``transformer_call`` then builds the
keyword arguments the pipeline would pass the transformer (noised latent tokens first, condition second), so
training and inference see the controller through the same arguments.

- Qwen-Image-Edit (``QwenImageEditPipeline``): the text encoder (Qwen2.5-VL) reads the instruction *with* the
  condition image, so the text states depend on both; latents are normalised with the VAE's
  ``latents_mean``/``latents_std`` (``_encode_vae_image``) and packed 2x2 (``_pack_latents``).
- FLUX.1 Kontext (``FluxKontextPipeline``): CLIP (pooled) + T5 states of the instruction alone; latents shifted
  and scaled by the VAE config, packed 2x2; condition tokens carry image id 1 in the first rope axis. The
  guidance-distilled transformer gets ``guidance`` (default 3.5, the pipeline's ``guidance_scale`` default).

Working size: ``squash`` resizes both images to ``resolution`` x ``resolution`` (the official inference size,
1024); ``keep`` keeps the source's aspect at about ``resolution``^2 pixels with sides rounded to multiples of 32
(the rule of Qwen-Image-Edit's ``calculate_dimensions``). The target is resized to the source's working size.
Every resize (source, target, and the condition image Qwen's text encoder reads) uses the filter inference uses,
the official one (:func:`~tvbench_adapters.tvedit.points.resize_image`, bicubic as the authors' demo); the
pipeline's image processor (Lanczos by default) then gets images already at the working size and leaves them be.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import torch
from PIL import Image

from tvbench.errors import ConfigError
from tvbench_adapters.tvedit.points import check_resize_mode, resize_image
from tvbench_adapters.tvedit.spec import backbone_of

PIPELINE_CLASSES = {"qwen": ("QwenImageEditPipeline",), "kontext": ("FluxKontextPipeline",)}
KONTEXT_GUIDANCE = 3.5  # FluxKontextPipeline.__call__ default guidance_scale (diffusers 0.42)
SIZE_MULTIPLE = 32


def working_size(image_size: tuple[int, int], resize: str, resolution: int) -> tuple[int, int]:
    """(width, height) the images are encoded at for training."""
    if check_resize_mode(resize) == "squash":
        side = max(SIZE_MULTIPLE, round(resolution / SIZE_MULTIPLE) * SIZE_MULTIPLE)
        return side, side
    ratio = image_size[0] / image_size[1]
    width = math.sqrt(resolution * resolution * ratio)
    height = width / ratio
    return (max(SIZE_MULTIPLE, round(width / SIZE_MULTIPLE) * SIZE_MULTIPLE),
            max(SIZE_MULTIPLE, round(height / SIZE_MULTIPLE) * SIZE_MULTIPLE))


def _fingerprint(module: torch.nn.Module) -> str:
    """Cheap identity of a module's weights: its config and the sums of its first and last tensors."""
    tensors = list(module.state_dict().values())
    sums = [float(t.double().sum()) for t in (tensors[0], tensors[-1])] if tensors else []
    config = getattr(module, "config", None)
    record = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256((type(module).__name__ + text + repr(sums)).encode()).hexdigest()[:16]


class FrozenBackbone:
    """The pipeline's VAE, text encoder(s) and transformer, frozen; ``kind`` is ``qwen`` or ``kontext``."""

    def __init__(self, pipe: Any):
        self.pipe = pipe
        self.transformer = pipe.transformer
        self.kind = backbone_of(self.transformer)
        if type(pipe).__name__ not in PIPELINE_CLASSES[self.kind]:
            raise ConfigError(f"pipeline {type(pipe).__name__}: TV-Edit training supports "
                              f"{' / '.join(PIPELINE_CLASSES[self.kind])} for the {self.kind} backbone")
        for module in self.frozen_modules():
            module.requires_grad_(False)
            module.eval()
        self.identity = hashlib.sha256("|".join(_fingerprint(m) for m in self.frozen_modules()).encode()).hexdigest()

    def frozen_modules(self) -> list[torch.nn.Module]:
        names = ("vae", "text_encoder", "text_encoder_2", "transformer")
        return [getattr(self.pipe, name) for name in names if getattr(self.pipe, name, None) is not None]

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    # --- encoding (no gradients) -----------------------------------------------------------------------

    def _pixels(self, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        width, height = size
        processor = self.pipe.image_processor
        tensor = processor.preprocess(resize_image(image, size), height, width)
        vae = self.pipe.vae
        return tensor.to(device=next(vae.parameters()).device, dtype=next(vae.parameters()).dtype)

    @torch.no_grad()
    def encode_image(self, image: Image.Image, size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        """Packed latent tokens ``(n, C)`` (float32, CPU) and the token grid (rows, cols)."""
        pixels = self._pixels(image.convert("RGB"), size)
        if self.kind == "qwen":
            latents = self.pipe._encode_vae_image(pixels.unsqueeze(2), generator=None)  # (1, C, 1, h, w)
        else:
            latents = self.pipe._encode_vae_image(pixels, generator=None)  # (1, C, h, w)
        channels, height, width = latents.shape[1], latents.shape[-2], latents.shape[-1]
        packed = self.pipe._pack_latents(latents, 1, channels, height, width)
        return packed[0].float().cpu(), (height // 2, width // 2)

    @torch.no_grad()
    def encode_text(self, instruction: str, image: Image.Image, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Text states of one instruction (float32, CPU); Qwen's depend on the condition image as well."""
        device = next(self.pipe.text_encoder.parameters()).device
        if self.kind == "qwen":
            prompt_image = resize_image(image.convert("RGB"), size)
            embeds, mask = self.pipe.encode_prompt(prompt=instruction, image=prompt_image, device=device)
            mask = mask if mask is not None else torch.ones(embeds.shape[:2], dtype=torch.long)
            return {"prompt_embeds": embeds[0].float().cpu(), "prompt_mask": mask[0].long().cpu()}
        embeds, pooled, _ = self.pipe.encode_prompt(prompt=instruction, prompt_2=None, device=device)
        return {"prompt_embeds": embeds[0].float().cpu(), "pooled": pooled[0].float().cpu()}

    def text_depends_on_image(self) -> bool:
        return self.kind == "qwen"

    # --- the transformer call --------------------------------------------------------------------------

    def transformer_call(self, text: dict[str, torch.Tensor], grid: tuple[int, int], sigma: torch.Tensor,
                         guidance: float = KONTEXT_GUIDANCE) -> dict[str, Any]:
        """Keyword arguments for the transformer (and the controller) besides ``hidden_states``; ``text`` holds
        batched tensors (``prompt_embeds`` (B, L, D) and ``prompt_mask`` (B, L) or ``pooled`` (B, P))."""
        device, dtype = self.device, self.dtype
        batch = sigma.shape[0]
        call: dict[str, Any] = {"encoder_hidden_states": text["prompt_embeds"].to(device, dtype),
                                "timestep": sigma.to(device, dtype), "return_dict": False}
        rows, cols = grid
        if self.kind == "qwen":
            call["encoder_hidden_states_mask"] = text["prompt_mask"].to(device)
            call["img_shapes"] = [[(1, rows, cols), (1, rows, cols)]] * batch
            return call
        latent_ids = self.pipe._prepare_latent_image_ids(batch, rows, cols, device, dtype)
        image_ids = latent_ids.clone()
        image_ids[..., 0] = 1
        call["img_ids"] = torch.cat([latent_ids, image_ids], dim=0)
        call["txt_ids"] = torch.zeros(text["prompt_embeds"].shape[1], 3, device=device, dtype=dtype)
        call["pooled_projections"] = text["pooled"].to(device, dtype)
        if self.transformer.config.guidance_embeds:
            call["guidance"] = torch.full((batch,), float(guidance), device=device, dtype=torch.float32)
        return call
