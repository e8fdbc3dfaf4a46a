"""Deterministic DDIM steps in both directions, differentiable, on the scheduler's own noise levels.

DragDiffusion (``drag_pipeline.py``: ``invert``/``inv_step``/``step``) and its descendants invert the image with
DDIM at guidance 1 for ``round(inversion_strength * n_steps)`` of ``n_steps = 50`` steps and denoise back from
there. The scheduler is ``DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
clip_sample=False, set_alpha_to_one=False, steps_offset=1)``, i.e. timesteps 981, 961, ..., 1 for 50 steps, and a
step from ``t`` goes to ``t - 1000 // n_steps`` (below 0: the scheduler's ``final_alpha_cumprod``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# The scheduler settings of every official drag repository (see the module docstring), applied on top of the
# checkpoint's scheduler config so its betas and prediction type are read from the checkpoint itself.
DDIM_OVERRIDES = {"clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1}


class DdimSchedule:
    """The timesteps of an ``n_steps`` schedule and the DDIM move between any two of its noise levels."""

    def __init__(self, scheduler, n_steps: int):
        import torch

        if scheduler.config.prediction_type != "epsilon":
            raise ValueError(f"the drag methods need an epsilon-prediction model; this scheduler predicts "
                             f"{scheduler.config.prediction_type!r}")
        scheduler.set_timesteps(n_steps)
        self.n_steps = n_steps
        self.timesteps = [int(t) for t in scheduler.timesteps]  # descending
        self.stride = scheduler.config.num_train_timesteps // n_steps
        self.alphas = scheduler.alphas_cumprod.to(torch.float64)
        self.final_alpha = float(scheduler.final_alpha_cumprod)

    def alpha(self, t: int) -> float:
        return float(self.alphas[t]) if t >= 0 else self.final_alpha

    @staticmethod
    def move(x: "torch.Tensor", eps: "torch.Tensor", alpha_from: float, alpha_to: float):
        """The DDIM update from noise level ``alpha_from`` to ``alpha_to``; returns ``(x_to, predicted x0)``."""
        x0 = (x - (1 - alpha_from) ** 0.5 * eps) / alpha_from ** 0.5
        return alpha_to ** 0.5 * x0 + (1 - alpha_to) ** 0.5 * eps, x0

    def step(self, eps: "torch.Tensor", t: int, x: "torch.Tensor"):
        """Denoise ``x_t`` to ``x_{t - stride}``; returns ``(x_prev, x0)``."""
        return self.move(x, eps, self.alpha(t), self.alpha(t - self.stride))

    def inverse_step(self, eps: "torch.Tensor", t: int, x: "torch.Tensor"):
        """Noise ``x_{t - stride}`` to ``x_t`` with the noise predicted at ``t`` (DDIM inversion)."""
        return self.move(x, eps, self.alpha(min(t - self.stride, 999)), self.alpha(t))

    def actual_steps(self, strength: float) -> int:
        """``round(strength * n_steps)``: how many steps the image is inverted (and denoised back)."""
        count = round(strength * self.n_steps)
        if not 1 <= count <= self.n_steps:
            raise ValueError(f"inversion_strength {strength} gives {count} of {self.n_steps} steps; it must give "
                             "at least one")
        return count

    def start_index(self, strength: float) -> int:
        """Index in :attr:`timesteps` where denoising starts (the inverted latent's timestep)."""
        return self.n_steps - self.actual_steps(strength)
