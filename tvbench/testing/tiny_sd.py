"""Tiny, randomly initialised Stable Diffusion pipelines (and a tiny CLIP), laid out as on the Hugging Face hub.

Tests and benchmarks build these in memory and ``save_pretrained`` them into a folder with the hub's layout
(``unet/ vae/ text_encoder/ tokenizer/ scheduler/``), then load them back through the same ``from_pretrained``
path that real checkpoints take. Two shapes:

- ``"sd15"``: Stable Diffusion 1.5's architecture in miniature (four UNet levels, conv ``proj_in``, one head
  count for every block, ``CLIPTextModel`` with quick-GELU, 77-token prompts), the base model of the drag methods;
- ``"sd21"``: Stable Diffusion 2.1's (linear ``proj_in``, per-block head counts), used for DIFT features. It has
  three UNet levels so that odd latent sides exercise the upsample sizes the UNet forwards.

The weights are random: outputs are meaningless as images and fine for checking the code paths, never for numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tvbench.testing.tiny_editors import clip_tokenizer

TEXT_DIM = 32
SHAPES = ("sd15", "sd21")


def _text_config(tokenizer, max_length: int, hidden_act: str):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(hidden_size=TEXT_DIM, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                          vocab_size=len(tokenizer), max_position_embeddings=max_length, projection_dim=TEXT_DIM,
                          bos_token_id=len(tokenizer) - 2, eos_token_id=len(tokenizer) - 1,
                          pad_token_id=len(tokenizer) - 1, hidden_act=hidden_act)


def _unet(shape: str):
    from diffusers import UNet2DConditionModel

    if shape == "sd21":
        # Three levels (two upsamplers, overall factor 4) so odd latent sides exercise the forwarded upsample sizes.
        return UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32, 32),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=TEXT_DIM, attention_head_dim=(2, 4, 4), use_linear_projection=True, norm_num_groups=8)
    # SD 1.5: three cross-attention levels and a plain one, up_blocks[2] at the second-finest resolution.
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 16, 32, 32),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM, attention_head_dim=4, use_linear_projection=False, norm_num_groups=8)


def tiny_sd_components(shape: str = "sd15", seed: int = 0) -> dict[str, Any]:
    """``unet``, ``vae``, ``text_encoder`` (eval mode), ``tokenizer`` and ``scheduler`` of a tiny pipeline."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextModel

    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    max_length = 77 if shape == "sd15" else 16
    torch.manual_seed(seed)
    tokenizer = clip_tokenizer(max_length)
    text_encoder = CLIPTextModel(_text_config(tokenizer, max_length, "quick_gelu" if shape == "sd15" else "gelu"))
    unet = _unet(shape)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16, 16),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=8, sample_size=64)
    # Stable Diffusion's own noise schedule (scheduler/scheduler_config.json of the SD 1.5 and 2.1 repositories).
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder.eval(), "tokenizer": tokenizer,
            "scheduler": scheduler}


def save_tiny_sd(folder: str | Path, shape: str = "sd15", seed: int = 0) -> Path:
    """Write a tiny pipeline in the hub's diffusers layout; returns the folder."""
    folder = Path(folder)
    for name, part in tiny_sd_components(shape, seed).items():
        part.save_pretrained(folder / name)
    return folder


def save_tiny_clip(folder: str | Path, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny ``CLIPModel`` (vision and text towers) with its tokenizer, as ``openai/clip-vit-*`` repositories hold."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    text = _text_config(tokenizer, 77, "quick_gelu").to_dict()
    vision = {"hidden_size": TEXT_DIM, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "image_size": image_size, "patch_size": 8, "projection_dim": TEXT_DIM, "hidden_act": "quick_gelu"}
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=TEXT_DIM)).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
