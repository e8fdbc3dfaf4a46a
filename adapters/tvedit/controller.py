"""The content-aware spatial controller (``casc``, paper Sec. 3.3) on either backbone, and the trainable pair.

The controller is a half-width copy of the backbone's own input path and MM-DiT blocks: point tokens are
concatenated channel-wise with the latent tokens (targets with the noised latent, handles with the condition
image, eq. 3), ``img_in`` projects them to the controller width, N blocks of the backbone's block class run
with the controller's own text projection, timestep embedding and rope, and K time-modulated heads turn the
block outputs into residuals for the backbone (eq. 4-5; see :mod:`.injection` for the wiring).

Qwen-Image-Edit: the module names and their order follow the official state dict (PolyU-VCLab/TVEdit,
``demo/tvedit_qwen/content_aware_spatial_controller.py``): ``time_text_embed``, ``time_only_embed``,
``txt_norm``, ``txt_in``, ``img_in``, ``transformer_blocks.{i}``, ``controller_blocks.{k}``,
``controller_blocks_scale.{k}``. FLUX.1 Kontext (no official code): the same names, with FLUX's own text
path (no ``txt_norm``: FLUX feeds T5 states straight into its context embedder; ``time_text_embed`` takes the
pooled CLIP embedding and, for the guidance-distilled Kontext, the guidance value) and ``FluxTransformerBlock``.

Heads and gates start at N(0, 1e-4) with zero bias (as the official ``_init_zero_convs``), so at
initialisation the residuals are tiny and the backbone's output is almost unchanged.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from tvbench_adapters.tvedit.injection import head_source_block
from tvbench_adapters.tvedit.point_encoder import SparsePointEncoder
from tvbench_adapters.tvedit.spec import ControllerSpec

HEAD_INIT_STD = 1e-4
TIME_CHANNELS = 256  # sinusoidal channels of every diffusers timestep embedding used here


class TimestepOnlyEmbedding(nn.Module):
    """e_t for the gates: sinusoids of t in [0, 1] scaled by 1000, then the usual two-layer MLP."""

    def __init__(self, width: int):
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        self.time_proj = Timesteps(TIME_CHANNELS, flip_sin_to_cos=True, downscale_freq_shift=0, scale=1000)
        self.time_embedder = TimestepEmbedding(in_channels=TIME_CHANNELS, time_embed_dim=width)

    def forward(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.time_embedder(self.time_proj(timestep).to(dtype))


class SpatialController(nn.Module):
    """What both backbones share: the heads, the gates and the loop that turns block outputs into residuals."""

    def __init__(self, spec: ControllerSpec):
        super().__init__()
        self.spec = spec
        self.gradient_checkpointing = False

    def _make_heads(self) -> None:
        width, spec = self.spec.width, self.spec
        self.controller_blocks = nn.ModuleList(nn.Linear(width, spec.main_width) for _ in range(spec.injections))
        self.controller_blocks_scale = nn.ModuleList(nn.Linear(width, 1) for _ in range(spec.injections))
        self.reset_heads()

    @torch.no_grad()
    def reset_heads(self) -> None:
        """N(0, 1e-4) weights and zero biases for every head and gate (official ``_init_zero_convs``)."""
        for layer in [*self.controller_blocks, *self.controller_blocks_scale]:
            if layer.weight.is_meta:
                continue
            nn.init.normal_(layer.weight, mean=0.0, std=HEAD_INIT_STD)
            nn.init.zeros_(layer.bias)

    def _heads_by_block(self) -> list[list[int]]:
        groups: list[list[int]] = [[] for _ in range(self.spec.blocks)]
        for k in range(self.spec.injections):
            groups[head_source_block(k, self.spec.blocks, self.spec.injections)].append(k)
        return groups

    def _run_blocks(self, image: torch.Tensor, text: torch.Tensor, t_only: torch.Tensor, scale: float,
                    call_block) -> list[torch.Tensor]:
        residuals: list[torch.Tensor | None] = [None] * self.spec.injections
        for block, heads in zip(self.transformer_blocks, self._heads_by_block()):
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                text, image = checkpoint(call_block, block, image, text, use_reentrant=False)
            else:
                text, image = call_block(block, image, text)
            for k in heads:
                gate = 1 + self.controller_blocks_scale[k](t_only)  # (B, 1)
                residuals[k] = self.controller_blocks[k](image) * gate.unsqueeze(1) * scale
        return residuals  # type: ignore[return-value]


class QwenSpatialController(SpatialController):
    """``casc`` for Qwen-Image-Edit (``QwenImageTransformerBlock``)."""

    def __init__(self, spec: ControllerSpec):
        super().__init__(spec)
        from diffusers.models.normalization import RMSNorm
        from diffusers.models.transformers.transformer_qwenimage import (QwenEmbedRope, QwenImageTransformerBlock,
                                                                          QwenTimestepProjEmbeddings)

        width = spec.width
        self.pos_embed = QwenEmbedRope(theta=10000, axes_dim=list(spec.axes_dims_rope), scale_rope=True)
        self.time_text_embed = QwenTimestepProjEmbeddings(embedding_dim=width)
        self.time_only_embed = TimestepOnlyEmbedding(width)
        self.txt_norm = RMSNorm(spec.text_dim, eps=1e-6)
        self.txt_in = nn.Linear(spec.text_dim, width)
        self.img_in = nn.Linear(spec.latent_channels + spec.point_channels, width)
        self.transformer_blocks = nn.ModuleList(
            QwenImageTransformerBlock(dim=width, num_attention_heads=spec.num_attention_heads,
                                      attention_head_dim=spec.attention_head_dim)
            for _ in range(spec.blocks))
        self._make_heads()

    def forward(self, hidden_states: torch.Tensor, point_tokens: torch.Tensor, *, timestep: torch.Tensor,
                encoder_hidden_states: torch.Tensor, encoder_hidden_states_mask: torch.Tensor | None,
                img_shapes: Any, conditioning_scale: float = 1.0, **_: Any) -> list[torch.Tensor]:
        """K residuals ``(B, tokens, main_width)`` from the arguments of one backbone call."""
        from diffusers.models.transformers.transformer_qwenimage import compute_text_seq_len_from_mask

        image = self.img_in(torch.cat([hidden_states, point_tokens.to(hidden_states.dtype)], dim=2))
        timestep = timestep.to(image.dtype)
        temb = self.time_text_embed(timestep, image)
        t_only = self.time_only_embed(timestep, image.dtype)
        text = self.txt_in(self.txt_norm(encoder_hidden_states))
        text_len, _, mask = compute_text_seq_len_from_mask(text, encoder_hidden_states_mask)
        rope = self.pos_embed(img_shapes, max_txt_seq_len=text_len, device=image.device)

        def call_block(block, image, text):
            return block(hidden_states=image, encoder_hidden_states=text, encoder_hidden_states_mask=mask,
                         temb=temb, image_rotary_emb=rope)

        return self._run_blocks(image, text, t_only, conditioning_scale, call_block)


class FluxSpatialController(SpatialController):
    """``casc`` for FLUX.1 Kontext (``FluxTransformerBlock``); our design, no official counterpart."""

    def __init__(self, spec: ControllerSpec):
        super().__init__(spec)
        from diffusers.models.embeddings import (CombinedTimestepGuidanceTextProjEmbeddings,
                                                 CombinedTimestepTextProjEmbeddings)
        from diffusers.models.transformers.transformer_flux import FluxPosEmbed, FluxTransformerBlock

        width = spec.width
        self.pos_embed = FluxPosEmbed(theta=10000, axes_dim=list(spec.axes_dims_rope))
        embed_cls = CombinedTimestepGuidanceTextProjEmbeddings if spec.guidance_embeds else \
            CombinedTimestepTextProjEmbeddings
        self.time_text_embed = embed_cls(embedding_dim=width, pooled_projection_dim=spec.pooled_projection_dim)
        self.time_only_embed = TimestepOnlyEmbedding(width)
        self.txt_in = nn.Linear(spec.text_dim, width)
        self.img_in = nn.Linear(spec.latent_channels + spec.point_channels, width)
        self.transformer_blocks = nn.ModuleList(
            FluxTransformerBlock(dim=width, num_attention_heads=spec.num_attention_heads,
                                 attention_head_dim=spec.attention_head_dim)
            for _ in range(spec.blocks))
        self._make_heads()

    def forward(self, hidden_states: torch.Tensor, point_tokens: torch.Tensor, *, timestep: torch.Tensor,
                encoder_hidden_states: torch.Tensor, pooled_projections: torch.Tensor, img_ids: torch.Tensor,
                txt_ids: torch.Tensor, guidance: torch.Tensor | None = None, conditioning_scale: float = 1.0,
                **_: Any) -> list[torch.Tensor]:
        image = self.img_in(torch.cat([hidden_states, point_tokens.to(hidden_states.dtype)], dim=2))
        t_only = self.time_only_embed(timestep.to(image.dtype), image.dtype)
        timestep = timestep.to(image.dtype) * 1000  # FLUX embeds t in [0, 1000], as its transformer does
        if self.spec.guidance_embeds:
            guidance = (guidance if guidance is not None else torch.ones_like(timestep)).to(image.dtype) * 1000
            temb = self.time_text_embed(timestep, guidance, pooled_projections)
        else:
            temb = self.time_text_embed(timestep, pooled_projections)
        text = self.txt_in(encoder_hidden_states)
        txt_ids = txt_ids[0] if txt_ids.ndim == 3 else txt_ids
        img_ids = img_ids[0] if img_ids.ndim == 3 else img_ids
        rope = self.pos_embed(torch.cat([txt_ids, img_ids], dim=0))

        def call_block(block, image, text):
            return block(hidden_states=image, encoder_hidden_states=text, temb=temb, image_rotary_emb=rope)

        return self._run_blocks(image, text, t_only, conditioning_scale, call_block)


CONTROLLER_CLASSES = {"qwen": QwenSpatialController, "kontext": FluxSpatialController}


class TVEditController(nn.Module):
    """The trainable part of TV-Edit: ``point_encoder`` and ``casc``, the two dicts of the official checkpoint."""

    def __init__(self, spec: ControllerSpec):
        super().__init__()
        self.spec = spec
        self.point_encoder = SparsePointEncoder()
        self.casc = CONTROLLER_CLASSES[spec.backbone](spec)
        self.source: dict[str, str] | None = None  # where the weights came from (set by the loader)

    def point_tokens(self, target_maps: torch.Tensor, handle_maps: torch.Tensor | None = None,
                     extra_grids: Sequence[tuple[int, int]] = ()) -> torch.Tensor:
        """Tokens in the backbone's image order: targets (noised latent), handles (condition image, when there
        is one), then an empty map's tokens for each further condition image (QwenImageEditPlus takes several)."""
        if handle_maps is None:
            parts = [self.point_encoder.encode_targets(target_maps)]
        else:
            handle_tokens, target_tokens = self.point_encoder(handle_maps, target_maps)
            parts = [target_tokens, handle_tokens]
        for rows, cols in extra_grids:
            step = SparsePointEncoder.pixels_per_token
            empty = target_maps.new_zeros(target_maps.shape[0], 1, rows * step, cols * step)
            parts.append(self.point_encoder.encode_handles(empty))
        return torch.cat(parts, dim=1)

    def forward(self, hidden_states: torch.Tensor, point_tokens: torch.Tensor, **call: Any) -> list[torch.Tensor]:
        return self.casc(hidden_states, point_tokens, **call)

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        self.casc.gradient_checkpointing = enabled

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """The official layout: ``{"point_encoder": ..., "casc": ...}``."""
        return {"point_encoder": self.point_encoder.state_dict(), "casc": self.casc.state_dict()}


def build_controller(spec: ControllerSpec, *, device: str | torch.device | None = None,
                     dtype: torch.dtype | None = None) -> TVEditController:
    """A freshly initialised controller; ``device="meta"`` allocates nothing (for layouts and counts)."""
    if str(device) == "meta":
        with torch.device("meta"):
            return TVEditController(spec)
    controller = TVEditController(spec)
    return controller.to(device=device, dtype=dtype) if (device is not None or dtype is not None) else controller
