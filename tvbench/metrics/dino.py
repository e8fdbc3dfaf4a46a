"""DINOv3 feature-similarity metrics of TV-Edit-Bench (paper Sec. 4.2, Appendix C.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from tvbench.metrics.base import OK, Metric, MetricResult

if TYPE_CHECKING:
    import numpy as np

# The formulas (tvbench.metrics.functional) need torch: they are imported inside compute(), so that reading a
# metric's declaration (`tvbench ls`, reports) does not load torch.

DERIVED_MASK_RADIUS = 0.1  # fraction of the image's long side


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
    features = frozenset({("target", "global"), ("edit", "global")})

    def compute(self, ctx) -> float:
        from tvbench.metrics import functional as F

        return F.ds_global(ctx.dino("target").cls, ctx.dino("edit").cls)


def reference_mask(ctx, role: str) -> tuple[np.ndarray, str | None]:
    """The mask of the edited region on the ``role`` image ("source" or "target"), and how it was derived if the
    case has none: discs of radius 0.1 x the long side around the drag points on that image (handles on the
    source, targets on the target)."""
    from tvbench.metrics import functional as F

    case, size = ctx.case, ctx.image(role).size
    mask_role = "mask_source" if role == "source" else "mask_target"
    if case.image(mask_role) is not None:
        return ctx.mask(mask_role), None
    radius = DERIVED_MASK_RADIUS * max(size)
    centres = [(p[0], p[1]) if role == "source" else (p[2], p[3]) for p in case.points]
    return F.disc_mask(centres, size, radius), f"no {mask_role}: discs of radius {radius:g} px around the drag points"


class _DSLocal(Metric):
    """eq. C.9-C.10 with the mask average-pooled to the reference's patch grid (patch masked when >= half inside)."""

    role: ClassVar[str]
    higher_is_better = True
    range = (-1.0, 1.0)
    models = frozenset({"dino"})
    reference = "eq. C.9-C.10"

    def not_applicable_reason(self, case) -> str | None:
        reason = super().not_applicable_reason(case)
        mask_role = "mask_source" if self.role == "source" else "mask_target"
        if reason is None and case.image(mask_role) is None and not case.points:
            reason = f"the case has no {mask_role} and no drag points to derive one from"
        return reason

    def compute(self, ctx) -> MetricResult:
        from tvbench.metrics import functional as F

        reference = ctx.dino(self.role).patches
        mask, derived = reference_mask(ctx, self.role)
        value = F.ds_local(reference, ctx.dino("edit").patches, F.patch_mask(mask, tuple(reference.shape[:2])))
        return MetricResult(value, OK, derived, {"mask": "derived"} if derived else None)


class DSLocalTarget(_DSLocal):
    name = "ds_local_tgt"
    label = "DS_local^tgt"
    latex = r"DS$_{\mathrm{local}}^{\mathrm{tgt}}$"
    role = "target"
    requires = frozenset({"target"})
    features = frozenset({("target", "global"), ("edit", "global")})
    summary = ("mean over the target's masked patches (mask_target pooled to the patch grid, >= 50% inside) of the "
               "best cosine with any patch of the edit")


class DSLocalSource(_DSLocal):
    name = "ds_local_src"
    label = "DS_local^src"
    latex = r"DS$_{\mathrm{local}}^{\mathrm{src}}$"
    role = "source"
    features = frozenset({("source", "global"), ("edit", "global")})
    summary = ("mean over the source's masked patches (mask_source pooled to the patch grid, >= 50% inside) of the "
               "best cosine with any patch of the edit")
