"""GoodDrag (Zhang et al., ICLR 2025, arXiv:2404.07206): alternate drag and denoising (AlDD), and pull the handles
toward their *original* features (information-preserving motion supervision).

Over the first ``drag_end_step`` denoising steps, each step first drags its latent: rounds of up to
``drags_per_track`` Adam steps, each round ending in point tracking, ``tracks_per_step`` rounds per step; then the
source and edited latents are denoised one step together. The motion-supervision reference is the feature of the
*initial* handle in the undragged trajectory at the same step, and the mask term compares with that trajectory's
next latent. Dragging stops for good when every handle has arrived or the handles have not moved in
``max_track_no_change`` consecutive rounds; the remaining steps denoise with source key/value control from layer 10.

Defaults, from zewei-Zhang/GoodDrag (commit fc01bc1) ``bench_gooddrag.py`` (the benchmark entry point) and
``pipeline.py: GoodDragger``: LoRA rank 16, 70 steps, lr 5e-4, batch 4, on the empty prompt; VAE
``stabilityai/sd-vae-ft-mse``; inversion strength 0.75 (38 of 50 steps); lr 0.02; ``lam`` 0.1; ``drag_end_step``
7; ``track_per_step`` 10; ``max_drag_per_track`` 3; ``r1`` 4 (patch weight ``(2 r1)^2``); ``r2`` 12; ``d`` 4
(moved patch at ``min(d, |t - p|)``); ``max_track_no_change`` 5; ``drag_loss_threshold`` 0; ``feature_idx`` 3
(``up_blocks[2]``). The benchmark script passes an empty prompt; ``use_caption=true`` passes the case's caption
instead (its UI has a prompt box). As in ``pipeline.py``, a case without a mask keeps the whole latent close to
the undragged trajectory (the term is always on). The UI's defaults differ (``lam`` 0.2, early stop after 10).
Precision as the original's on CUDA: ``gooddrag_step`` prepares the UNet with accelerate's ``mixed_precision='fp16'``
at the first drag step, which wraps its forward in float16 autocast for good, so every later UNet call (drags and
the final denoising) autocasts, and each step's loss goes through a fresh GradScaler; the inversion and the
undragged trajectory before it run in float32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from tvbench.cases import Case

from .attention import source_kv_control
from .dragdiffusion import controlled_layers
from .method import DiffusionDragMethod, DragContext, DragOutcome
from .motion import all_reached, motion_supervision_loss, track_points


@dataclass
class _DragState:
    handles: list
    initial: list
    dragging: bool = True
    unchanged_rounds: int = 0
    iterations: int = 0
    stop: str = "drag_end_step"


@dataclass
class GoodDrag(DiffusionDragMethod):
    """GoodDrag on Stable Diffusion 1.5 (native port; defaults in the module docstring)."""

    name = "gooddrag"
    version = "1"
    summary = "GoodDrag (Zhang et al. 2025): drag and denoising alternated over the first 7 steps, original features"
    regularize_without_mask = True

    inversion_strength: float = 0.75
    lora_steps: int = 70
    lr: float = 0.02
    vae: str = "stabilityai/sd-vae-ft-mse"  # '' = the base model's own VAE
    use_caption: bool = False  # the benchmark script conditions on the empty prompt
    drag_end_step: int = 7  # denoising steps that start with a drag
    tracks_per_step: int = 10  # point-tracking rounds per drag step (track_per_step)
    drags_per_track: int = 3  # motion-supervision steps per round (max_drag_per_track)
    r1: int = 4  # motion-supervision patch radius
    r2: int = 12  # point-tracking window radius
    d: int = 4  # how far ahead of the handle the moved patch sits (beta)
    max_track_no_change: int = 5  # rounds without handle movement that end the drag
    drag_loss_threshold: float = 0.0  # a round also ends when the drag loss <= this x (2 r1)^2
    kv_start_layer: int = 10  # first self-attention layer reading the source's keys and values (after the drag)

    def vae_spec(self) -> str:
        return self.vae

    def prompt(self, case: Case) -> str:
        return (case.caption or "") if self.use_caption else ""

    def drag_and_denoise(self, ctx: DragContext) -> DragOutcome:
        import torch

        engine, schedule = ctx.engine, ctx.schedule
        steps = list(ctx.remaining_steps)
        with ctx.timer.phase("drag"):
            references = self._undragged_trajectory(ctx, steps[: self.drag_end_step])
        state = _DragState(handles=list(ctx.handles), initial=list(ctx.handles))
        source, edited = ctx.latent, ctx.latent.clone()
        with contextlib.ExitStack() as stack:
            controlled = autocast = False
            for i, index in enumerate(steps):
                t = schedule.timesteps[index]
                if state.dragging and state.unchanged_rounds >= self.max_track_no_change:
                    state.dragging, state.stop = False, "no_change"
                if i < self.drag_end_step and state.dragging:
                    with ctx.timer.phase("drag"):
                        edited = self._drag_step(ctx, edited, t, *references[i], state)
                    if not autocast:  # accelerate's autocast wrapper stays on the UNet from the first drag step
                        stack.enter_context(ctx.precision.context(engine))
                        autocast = True
                elif not controlled:
                    stack.enter_context(source_kv_control(engine.unet, self.kv_start_layer))
                    controlled = True
                with ctx.timer.phase("denoise"), torch.no_grad():
                    pair = torch.cat([source, edited])
                    pair, _ = schedule.step(engine.eps(pair, t, ctx.text), t, pair)
                    source, edited = pair[:1], pair[1:]
        reached = all_reached(state.handles, ctx.targets)
        return DragOutcome(edited, state.iterations, state.handles, reached,
                           facts={"drag_stop": state.stop, "kv_layers": controlled_layers(ctx, self.kv_start_layer)})

    def _undragged_trajectory(self, ctx: DragContext, steps: list[int]) -> list[tuple]:
        """Per drag step: the undragged latent's next latent and its features (``get_original_features``)."""
        import torch

        x, references = ctx.latent, []
        with torch.no_grad():
            for index in steps:
                t = ctx.schedule.timesteps[index]
                eps, features = ctx.features(x, t)
                x, _ = ctx.schedule.step(eps, t, x)
                references.append((x, features))
        return references

    def _drag_step(self, ctx: DragContext, latent, t: int, x_prev_original, original_features, state: _DragState):
        """Rounds of motion supervision and tracking at timestep ``t`` (``GoodDragger.gooddrag_step``)."""
        import torch

        weight = float((2 * self.r1) ** 2)
        latent = latent.clone().requires_grad_(True)
        stepper = ctx.precision.stepper(ctx.engine, torch.optim.Adam([latent], lr=self.lr))  # a scaler per step
        rounds, in_round, first = 0, 0, True
        while rounds < self.tracks_per_step:
            with ctx.precision.context(ctx.engine):  # accelerate's fp16 autocast wraps the UNet's forward
                eps, features = ctx.features(latent, t)
            x_prev, _ = ctx.schedule.step(eps, t, latent)
            if first:
                first = False
                state.handles = track_points(original_features, features, state.handles, state.initial, self.r2)
            if all_reached(state.handles, ctx.targets):
                state.dragging, state.stop = False, "reached"
                break
            if state.unchanged_rounds >= self.max_track_no_change:
                state.dragging, state.stop = False, "no_change"
                break
            drag_loss = motion_supervision_loss(features, state.handles, ctx.targets, radius=self.r1, weight=weight,
                                                max_step=float(self.d), reference=original_features,
                                                reference_points=state.initial)
            loss = drag_loss + self.lam * ((x_prev - x_prev_original) * (1.0 - ctx.mask)).abs().sum()
            stepper.step(loss, latent)
            state.iterations += 1
            in_round += 1
            if in_round == self.drags_per_track or drag_loss.item() <= self.drag_loss_threshold * weight:
                rounds += 1
                in_round = 0
                before = list(state.handles)
                # tracked on the features of this round's last forward, before its update (as the original)
                state.handles = track_points(original_features, features.detach(), state.handles, state.initial,
                                             self.r2)
                state.unchanged_rounds = state.unchanged_rounds + 1 if state.handles == before else 0
        return latent.detach()
