"""The training objective: Z0 prediction through the frozen backbone (paper eq. 6 and B.1-B.7).

For a clean target latent Z0, Gaussian noise Z1 and t ~ Beta: Z_t = (1 - t) Z0 + t Z1; the backbone (with the
controller's residuals) predicts the velocity v; Z0_hat = Z_t - t v; the loss is the mean squared error
between Z0_hat and Z0 over a sample's latent tokens, i.e. the velocity loss weighted by t^2 (eq. B.7).
Only the noised-latent tokens are scored: the condition image's tokens ride along as context, as in the
edit pipelines (``noise_pred[:, :latents.size(1)]``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tvbench_adapters.tvedit.controller import TVEditController
from tvbench_adapters.tvedit.injection import transformer_kwargs


class ControlledBackbone(nn.Module):
    """Frozen transformer + trainable controller in one module (what ``accelerate.prepare`` wraps)."""

    def __init__(self, transformer: nn.Module, controller: TVEditController):
        super().__init__()
        self.transformer = transformer
        self.controller = controller

    def forward(self, z0: torch.Tensor, cond: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor,
                target_maps: torch.Tensor, handle_maps: torch.Tensor, call: dict[str, Any]) -> torch.Tensor:
        """Per-sample losses ``(B,)`` (float32)."""
        spec = self.controller.spec
        backbone_dtype = next(self.transformer.parameters()).dtype
        s = sigma.view(-1, 1, 1).to(z0.dtype)
        z_t = (1 - s) * z0 + s * noise
        hidden = torch.cat([z_t, cond], dim=1)
        controller_dtype = self.controller.point_encoder.out.weight.dtype
        tokens = self.controller.point_tokens(target_maps, handle_maps)
        residuals = self.controller.casc(hidden.to(controller_dtype), tokens, **call)
        residuals = [r.to(backbone_dtype) for r in residuals]
        extra = transformer_kwargs(residuals, spec.main_double_blocks, spec.main_single_blocks)
        velocity = self.transformer(hidden_states=hidden.to(backbone_dtype), **call, **extra)[0]
        velocity = velocity[:, : z0.shape[1]].float()
        z0_hat = z_t.float() - s.float() * velocity
        return (z0_hat - z0.float()).pow(2).flatten(1).mean(dim=1)
