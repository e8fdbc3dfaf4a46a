"""DragNoise (Liu et al., CVPR 2024, arXiv:2404.01050): optimise the UNet's bottleneck feature instead of the latent,
then propagate it: the optimised mid-block output replaces the mid block's own output at the following steps.

The drag loop is DragDiffusion's (:mod:`.optimise`) with the mid-block output ``h`` as the optimised tensor; the
latent stays the inverted one. Denoising substitutes ``h`` at every step except the last ``end_step`` of the
``n_steps`` schedule. The original denoises the batch ``[z, z]`` with ``h`` in both rows and keeps the second;
without key/value control the rows are identical, so one row is denoised here.

Defaults, from haofengl/DragNoise (commit 1072731) ``drag_bench_evaluation/run_drag_diffusion.py`` (its DragBench
script) and ``utils/drag_utils.py``: inversion strength 0.7, ``end_step`` 0, ``lam`` 0.2, lr 0.02, 80 drag steps,
``r_m`` 1, ``r_p`` 3, features of ``up_blocks[2]``; LoRA from ``run_lora_training.py``: 200 steps, lr 2e-4, rank 16.
That call omits the batch size its ``train_lora`` requires; batch 1 is the default that signature had (left commented
out in ``utils/lora_utils.py``). As in the original, a case without a mask keeps the whole next latent close (the
term is always on), and no source key/value control is used. The UI's defaults differ (60 steps, ``lam`` 0.1, lr
0.01, LoRA 60 steps at 5e-4 with batch 4).
"""

from __future__ import annotations

from dataclasses import dataclass

from .hooks import override_mid_block
from .method import DiffusionDragMethod, DragContext, DragOutcome
from .optimise import DragRule, optimise_drag


@dataclass
class DragNoise(DiffusionDragMethod):
    """DragNoise on Stable Diffusion 1.5 (native port; defaults in the module docstring)."""

    name = "dragnoise"
    version = "1"
    summary = "DragNoise (Liu et al. 2024): optimise the UNet bottleneck feature and propagate it over the denoising"
    regularize_without_mask = True

    lora_steps: int = 200
    lora_lr: float = 2e-4
    lora_batch_size: int = 1
    lr: float = 0.02
    lam: float = 0.2
    drag_steps: int = 80  # maximum motion-supervision steps (n_pix_step)
    r_m: int = 1
    r_p: int = 3
    end_step: int = 0  # the last end_step steps of the schedule run without the substituted bottleneck

    def drag_and_denoise(self, ctx: DragContext) -> DragOutcome:
        import torch

        engine = ctx.engine
        rule = DragRule(steps=self.drag_steps, lr=self.lr, lam=self.lam, r_m=self.r_m, r_p=self.r_p)
        with override_mid_block(engine.unet) as mid:

            def forward(bottleneck):
                mid.value = bottleneck
                eps, features = ctx.features(ctx.latent, ctx.t)
                x_prev, _ = ctx.schedule.step(eps, ctx.t, ctx.latent)
                return x_prev, features

            with ctx.timer.phase("drag"):
                with torch.no_grad():
                    forward(None)  # records the mid block's own output: the starting point
                result = optimise_drag(ctx, mid.last_output.detach().float().clone(), forward, rule)
            with ctx.timer.phase("denoise"):
                last = ctx.schedule.n_steps - self.end_step
                steps = list(ctx.remaining_steps)
                mid.value = result.parameter
                latent = engine.denoise(ctx.latent, ctx.text, ctx.schedule, [i for i in steps if i < last])
                mid.value = None
                latent = engine.denoise(latent, ctx.text, ctx.schedule, [i for i in steps if i >= last])
        return DragOutcome(latent, result.iterations, result.handles, result.reached)
