"""Classical, training-free drag editing by image warping: a real baseline that runs on a CPU in a fraction of a second.

A thin-plate spline (scikit-image) maps every drag target back to its handle, while anchor points hold the
rest of the image in place: the image border always, plus everything outside the case's editable mask
when the case has one, or everything farther than ``radius`` from the drag when it has none. The warp is
a backward map (output pixel -> source pixel), so the output has no holes.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from tvbench.cases import Case
from tvbench.errors import CaseError
from tvbench.methods.base import Method


@dataclass
class ThinPlateSplineWarp(Method):
    """Drag by thin-plate-spline warping, anchored outside the editable region."""

    name = "tps-warp"
    inputs = frozenset({"image", "points", "mask"})
    summary = "classical thin-plate-spline warp driven by the drag points (CPU, ~0.2 s per image)"

    anchor_spacing: float = 32.0  # pixels between anchor points, on the border and on the grid
    radius: float = 0.0  # maskless cases: anchors farther than this from the drag; 0 = max(64, 2 x longest drag)
    clearance: float = 12.0  # no anchor closer than this to a handle or a target (prevents folds)
    use_mask: bool = True  # anchor everything outside the case's editable mask when it has one
    order: int = 1  # resampling: 0 nearest, 1 bilinear, 3 bicubic

    def __post_init__(self) -> None:
        if self.anchor_spacing < 4:
            raise ValueError("anchor_spacing must be at least 4 pixels")
        if self.order not in (0, 1, 3):
            raise ValueError("order must be 0, 1 or 3")

    def edit(self, case: Case, *, seed: int) -> Image.Image:
        from tvbench_adapters.tps import warp_by_points

        image = case.open_image("source")
        if not case.points:
            return image
        mask = case.open_mask("mask_source") if (self.use_mask and case.mask_source is not None) else None
        warped = warp_by_points(image, case.points, mask, spacing=self.anchor_spacing, radius=self.radius,
                                clearance=self.clearance, order=self.order)
        if warped is None:
            raise CaseError(case.id, "points", "the thin-plate spline has no solution for these drag points")
        return warped
