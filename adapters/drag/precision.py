"""The drag methods' precision, as the originals run: float32 everywhere except the drag loop, autocast there on CUDA.

All four originals load float32 weights and run DDIM inversion and the final denoising in float32. DragDiffusion
and DragNoise (``utils/drag_utils.py: drag_diffusion_update``) wrap each drag iteration in
``torch.autocast(device_type='cuda', dtype=torch.float16)`` and scale the loss with ``torch.cuda.amp.GradScaler``;
CLIPDrag wraps it the same way but steps without the scaler it creates; GoodDrag gets float16 autocast and a scaler
from accelerate's ``mixed_precision='fp16'`` from its first drag step. The optimised tensor stays float32 in every
original. ``torch.autocast(device_type='cuda')`` does nothing on a machine without CUDA, so there the originals run
in float32 throughout, and so does the port.

``--dtype bfloat16`` (or float16) is a documented departure: the weights are cast and nothing is autocast.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch

    from .engine import DragEngine

AUTOCAST_CHOICES = ("float16", "bfloat16", "off")


@dataclass(frozen=True)
class DragPrecision:
    """Autocast of the drag loop (on CUDA, over float32 weights) and whether its loss is scaled."""

    autocast: str = "float16"  # one of AUTOCAST_CHOICES
    grad_scaler: bool = True  # DragDiffusion, DragNoise, GoodDrag: True; CLIPDrag: False

    def __post_init__(self) -> None:
        if self.autocast not in AUTOCAST_CHOICES:
            raise ValueError(f"drag_autocast must be one of {', '.join(AUTOCAST_CHOICES)}, got {self.autocast!r}")

    def active(self, engine: "DragEngine") -> bool:
        """Autocast applies: on CUDA, over float32 weights, not switched off."""
        import torch

        return self.autocast != "off" and engine.device.type == "cuda" and engine.dtype == torch.float32

    def scaling(self, engine: "DragEngine") -> bool:
        return self.active(engine) and self.grad_scaler and self.autocast == "float16"

    def context(self, engine: "DragEngine") -> contextlib.AbstractContextManager:
        """The context one drag iteration's forward passes and loss run in."""
        import torch

        if not self.active(engine):
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=getattr(torch, self.autocast))

    def stepper(self, engine: "DragEngine", optimizer: "torch.optim.Optimizer") -> "DragStepper":
        return DragStepper(self, engine, optimizer)

    def describe(self, engine: "DragEngine") -> dict[str, Any]:
        """What ran, for the manifest: the weights' dtype, the drag loop's autocast (None: none) and the scaler."""
        return {"weights": engine.dtype_name, "drag_autocast": self.autocast if self.active(engine) else None,
                "grad_scaler": self.scaling(engine)}


class DragStepper:
    """Backward, optional gradient rewrite, optimiser step: through a GradScaler where the original has one."""

    def __init__(self, precision: DragPrecision, engine: "DragEngine", optimizer: "torch.optim.Optimizer"):
        import torch

        self.precision, self.engine, self.optimizer = precision, engine, optimizer
        self.scaler = torch.amp.GradScaler("cuda", enabled=precision.scaling(engine))

    def step(self, loss: "torch.Tensor", parameter: "torch.Tensor",
             gradient_hook: Callable[["torch.Tensor"], None] | None = None) -> None:
        self.scaler.scale(loss).backward()
        if gradient_hook is not None:  # CLIPDrag's fusion runs inside the original's autocast block, unscaled
            with self.precision.context(self.engine):
                gradient_hook(parameter)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
