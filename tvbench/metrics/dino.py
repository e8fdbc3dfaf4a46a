"""DINOv3 feature-similarity metrics of TV-Edit-Bench (paper Sec. 4.2, Appendix C.2)."""

from __future__ import annotations

from tvbench.metrics.base import Metric
from tvbench.metrics.functional import ds_global


class DSGlobalTarget(Metric):
    name = "ds_global_tgt"
    label = "DS_global^tgt"
    latex = r"DS$_{\mathrm{global}}^{\mathrm{tgt}}$"
    higher_is_better = True
    range = (-1.0, 1.0)
    requires = frozenset({"target"})
    models = frozenset({"dino"})
    summary = "cosine of the DINOv3 CLS tokens of the target and the edit"
    reference = "eq. C.8"

    def compute(self, ctx) -> float:
        return ds_global(ctx.dino("target").cls, ctx.dino("edit").cls)
