"""The one-timestep drag optimisation of DragDiffusion (``utils/drag_utils.py: drag_diffusion_update``).

At the inverted timestep ``t``, one tensor (the latent ``z_t``; DragNoise: the UNet's bottleneck feature) is
optimised with Adam. Each iteration runs the UNet, tracks the handles (from the second iteration on), stops when
every handle has arrived, else takes a step on the motion-supervision loss plus ``lam`` times the L1 change of
the next latent ``x_{t-1}`` outside the mask. The settings that differ between methods are a :class:`DragRule`.
Each iteration's forward pass, tracking and loss run in the method's drag precision (:mod:`.precision`: float16
autocast on CUDA, with a GradScaler where the original has one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .motion import all_reached, motion_supervision_loss, track_points

if TYPE_CHECKING:
    import torch

    from .method import DragContext
    from .motion import Point

# forward(parameter) -> (x_{t-1}, features): one UNet pass with the optimised tensor in place
Forward = Callable[["torch.Tensor"], tuple["torch.Tensor", "torch.Tensor"]]
# called after backward, before the optimiser step: may rewrite parameter.grad (CLIPDrag's gradient fusion)
GradientHook = Callable[["torch.Tensor"], None]


@dataclass(frozen=True)
class DragRule:
    steps: int  # maximum optimisation steps
    lr: float
    lam: float
    r_m: int  # motion-supervision patch radius
    r_p: int  # point-tracking window radius
    max_step: float = 1.0  # how far the moved patch sits from the handle (DragDiffusion: one unit step)
    reference_is_original: bool = False  # True: pull toward the initial features at the initial handle
    fast_tracking: bool = False  # CLIPDrag: only cells closer to the target may become the handle

    @property
    def loss_weight(self) -> float:
        return float((2 * self.r_m + 1) ** 2)


@dataclass
class DragResult:
    parameter: "torch.Tensor"
    iterations: int
    handles: list["Point"]
    reached: bool
    losses: list[float]


def optimise_drag(ctx: "DragContext", parameter: "torch.Tensor", forward: Forward, rule: DragRule,
                  gradient_hook: GradientHook | None = None) -> DragResult:
    """Run the loop on ``parameter`` (a leaf tensor, optimised in place); see the module docstring."""
    import torch

    with torch.no_grad():
        x_prev_0, reference = forward(parameter)
    parameter.requires_grad_(True)
    stepper = ctx.precision.stepper(ctx.engine, torch.optim.Adam([parameter], lr=rule.lr))
    handles, initial = list(ctx.handles), list(ctx.handles)
    fast_targets = ctx.targets if rule.fast_tracking else None
    losses: list[float] = []
    reached = False
    for step in range(rule.steps + 1):  # the extra pass only tracks: it tells whether the last step arrived
        with torch.set_grad_enabled(step < rule.steps), ctx.precision.context(ctx.engine):
            x_prev, features = forward(parameter)
            if step:
                handles = track_points(reference, features, handles, initial, rule.r_p, fast_targets)
            reached = all_reached(handles, ctx.targets)
            if reached or step == rule.steps:
                break
            loss = motion_supervision_loss(features, handles, ctx.targets, radius=rule.r_m, weight=rule.loss_weight,
                                           max_step=rule.max_step,
                                           reference=reference if rule.reference_is_original else None,
                                           reference_points=initial)
            if ctx.mask is not None:
                loss = loss + rule.lam * ((x_prev - x_prev_0) * (1.0 - ctx.mask)).abs().sum()
        losses.append(loss.item())
        stepper.step(loss, parameter, gradient_hook)
    parameter.requires_grad_(False)
    return DragResult(parameter.detach(), len(losses), handles, reached, losses)
