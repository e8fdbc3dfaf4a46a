"""Perceptual distance to the ground truth (paper Sec. 4.2, image fidelity)."""

from __future__ import annotations

from tvbench.metrics.base import Metric


class LpipsTarget(Metric):
    name = "lpips_tgt"
    label = "LPIPS^tgt"
    latex = r"LPIPS$^{\mathrm{tgt}}$"
    higher_is_better = False
    range = (0.0, float("inf"))
    requires = frozenset({"target"})
    models = frozenset({"lpips"})
    summary = "LPIPS (AlexNet, inputs in [-1, 1]) between the edit and the target, at the target's size"
    reference = "Sec. 4.2"

    def compute(self, ctx) -> float:
        return ctx.lpips.distance(ctx.edit, ctx.image("target"))
