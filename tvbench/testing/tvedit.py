"""Tiny backbone transformers and the call arguments an edit pipeline would pass them, for TV-Edit tests and
benchmarks (random weights: never for reported quality numbers).

The configs follow the recipes measured in ENVIRONMENT.md (diffusers 0.42): a Qwen-Image transformer and a
FLUX transformer with guidance embedding, as FLUX.1 Kontext has. ``transformer_call`` builds the keyword
arguments that QwenImageEditPipeline / FluxKontextPipeline hand the transformer for one step: the noised
latent tokens followed by the condition image's tokens, on the given token grids.
"""

from __future__ import annotations

from typing import Any

TINY_QWEN = dict(patch_size=2, in_channels=16, out_channels=4, num_layers=4, attention_head_dim=16,
                 num_attention_heads=2, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4))
TINY_FLUX = dict(patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
                 num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
                 axes_dims_rope=(4, 4, 8))


def tiny_transformer(backbone: str, seed: int = 0, **overrides: Any):
    """A randomly initialised tiny Qwen-Image (``qwen``) or FLUX (``kontext``) transformer in eval mode."""
    import torch
    from diffusers import FluxTransformer2DModel, QwenImageTransformer2DModel

    torch.manual_seed(seed)
    if backbone == "qwen":
        model = QwenImageTransformer2DModel(**{**TINY_QWEN, **overrides})
    elif backbone == "kontext":
        model = FluxTransformer2DModel(**{**TINY_FLUX, **overrides})
    else:
        raise ValueError(f"unknown backbone {backbone!r}")
    return model.eval()


def transformer_call(transformer, grids: list[tuple[int, int]], *, batch: int = 1, text_tokens: int = 5,
                     sigma: float = 0.7, seed: int = 0) -> dict[str, Any]:
    """Keyword arguments of one edit-pipeline transformer call: image grids in order (noised latent first)."""
    import torch

    config = transformer.config
    generator = torch.Generator().manual_seed(seed)
    tokens = sum(rows * cols for rows, cols in grids)
    call: dict[str, Any] = {
        "hidden_states": torch.randn(batch, tokens, config.in_channels, generator=generator),
        "encoder_hidden_states": torch.randn(batch, text_tokens, config.joint_attention_dim, generator=generator),
        "timestep": torch.full((batch,), sigma),
        "return_dict": False,
    }
    if type(transformer).__name__.startswith("Qwen"):
        call["encoder_hidden_states_mask"] = torch.ones(batch, text_tokens, dtype=torch.long)
        call["img_shapes"] = [[(1, rows, cols) for rows, cols in grids]] * batch
    else:
        ids = []
        for part, (rows, cols) in enumerate(grids):
            grid = torch.zeros(rows, cols, 3)
            grid[..., 0] = part
            grid[..., 1] = torch.arange(rows)[:, None]
            grid[..., 2] = torch.arange(cols)[None, :]
            ids.append(grid.reshape(-1, 3))
        call["img_ids"] = torch.cat(ids)
        call["txt_ids"] = torch.zeros(text_tokens, 3)
        call["pooled_projections"] = torch.randn(batch, config.pooled_projection_dim, generator=generator)
        if config.guidance_embeds:
            call["guidance"] = torch.full((batch,), 2.5)
    return call
