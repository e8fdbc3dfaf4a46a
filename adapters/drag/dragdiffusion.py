"""DragDiffusion (Shi et al., CVPR 2024, arXiv:2306.14435): optimise the inverted latent, then denoise with the
source's keys and values.

Defaults, all from Yujun-Shi/DragDiffusion (commit ebe659a; ``drag_ui.py``, ``utils/ui_utils.py: run_drag`` and
``drag_bench_evaluation/run_drag_diffusion.py`` / ``run_lora_training.py``): Stable Diffusion 1.5; LoRA rank 16,
80 steps, lr 5e-4, batch 4; 50 DDIM steps, inversion strength 0.7 (35 steps); up to 80 drag steps (``n_pix_step``),
Adam lr 0.01, mask weight ``lam`` 0.1, ``r_m`` 1, ``r_p`` 3, features of ``up_blocks[2]`` (``unet_feature_idx 3``)
at half the image size; mutual self-attention from step 0 and layer 10 while denoising.
"""

from __future__ import annotations

from dataclasses import dataclass

from .attention import self_attention_names
from .method import DiffusionDragMethod, DragContext, DragOutcome
from .optimise import DragRule, optimise_drag


def latent_forward(ctx: DragContext):
    """``z -> (x_{t-1}, features)`` at the inverted timestep: the forward pass DragDiffusion optimises through."""

    def forward(latent):
        eps, features = ctx.features(latent, ctx.t)
        x_prev, _ = ctx.schedule.step(eps, ctx.t, latent)
        return x_prev, features

    return forward


def denoise_with_source(ctx: DragContext, edited, kv_start_layer: int):
    """Denoise ``[source, edited]`` from ``t`` with source key/value control; returns the edited row."""
    import torch

    pair = torch.cat([ctx.latent, edited])
    return ctx.engine.denoise(pair, ctx.text, ctx.schedule, ctx.remaining_steps, kv_start_layer=kv_start_layer)[1:]


def controlled_layers(ctx: DragContext, kv_start_layer: int) -> int:
    """How many self-attention layers the key/value control reaches (0: none, e.g. a small UNet and layer 10)."""
    return len(self_attention_names(ctx.engine.unet)[kv_start_layer:])


@dataclass
class DragDiffusion(DiffusionDragMethod):
    """DragDiffusion on Stable Diffusion 1.5 (native port; defaults in the module docstring)."""

    name = "dragdiffusion"
    version = "1"
    summary = "DragDiffusion (Shi et al. 2024): identity LoRA, latent optimisation at t=35/50, source-KV denoising"

    drag_steps: int = 80  # maximum motion-supervision steps (n_pix_step)
    r_m: int = 1  # motion-supervision patch radius (supervision cells)
    r_p: int = 3  # point-tracking window radius
    kv_start_layer: int = 10  # first self-attention layer reading the source's keys and values while denoising

    def rule(self) -> DragRule:
        return DragRule(steps=self.drag_steps, lr=self.lr, lam=self.lam, r_m=self.r_m, r_p=self.r_p)

    def drag_and_denoise(self, ctx: DragContext) -> DragOutcome:
        with ctx.timer.phase("drag"):
            result = optimise_drag(ctx, ctx.latent.clone(), latent_forward(ctx), self.rule(), self.gradient_hook(ctx))
        with ctx.timer.phase("denoise"):
            latent = denoise_with_source(ctx, result.parameter, self.kv_start_layer)
        return DragOutcome(latent, result.iterations, result.handles, result.reached,
                           facts={"kv_layers": controlled_layers(ctx, self.kv_start_layer), **self.extra_facts(ctx)})

    def gradient_hook(self, ctx: DragContext):
        """A hook that may rewrite the latent's gradient before each step (CLIPDrag's fusion); none here."""
        return None

    def extra_facts(self, ctx: DragContext) -> dict:
        return {}
