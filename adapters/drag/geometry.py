"""Working resolution and the three grids a drag lives on: source pixels, working pixels, supervision cells.

The drag methods run Stable Diffusion 1.5 at a working size whose long side is ``resolution`` (512 by default, the
size DragDiffusion's UI resizes to, ``utils/ui_utils.py: store_img``), both sides multiples of 8 (the VAE's
factor); an image already at that size is not resampled (DragBench's 512-pixel-wide images run as they are, as in
``drag_bench_evaluation/run_drag_diffusion.py``). Motion supervision and point tracking work on UNet features
resized to half the working size (``sup_res = int(0.5 * full)``); a point ``p`` of an image of side ``full`` sits
at ``round(p / full * sup_res)`` there, the rounding of the official code. The edit is decoded at the working size
and resized bilinearly back to the source's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvbench.cases.case import DragPair

VAE_FACTOR = 8


def working_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """``(w, h)`` with the long side ``resolution`` (rounded to a multiple of 8) and the aspect kept."""
    scale = resolution / max(width, height)
    w = max(VAE_FACTOR, int(round(width * scale / VAE_FACTOR)) * VAE_FACTOR)
    h = max(VAE_FACTOR, int(round(height * scale / VAE_FACTOR)) * VAE_FACTOR)
    return w, h


@dataclass(frozen=True)
class DragGeometry:
    """Sizes of one case's grids and the conversions between them."""

    source_size: tuple[int, int]  # (w, h) of the case's image
    work_size: tuple[int, int]  # (w, h) the pipeline runs at

    @classmethod
    def of(cls, width: int, height: int, resolution: int) -> "DragGeometry":
        return cls((width, height), working_size(width, height, resolution))

    @property
    def supervision_size(self) -> tuple[int, int]:
        """``(rows, cols)`` of the feature grid: half the working size, truncated (official ``int(0.5 * full)``)."""
        w, h = self.work_size
        return int(0.5 * h), int(0.5 * w)

    @property
    def latent_size(self) -> tuple[int, int]:
        w, h = self.work_size
        return h // VAE_FACTOR, w // VAE_FACTOR

    def to_supervision(self, x: float, y: float) -> tuple[float, float]:
        """A source pixel ``(x, y)`` as a ``(row, col)`` cell of the supervision grid (rounded, as the original)."""
        rows, cols = self.supervision_size
        w, h = self.source_size
        return float(round(y / h * rows)), float(round(x / w * cols))

    def to_source(self, row: float, col: float) -> tuple[float, float]:
        """A supervision cell back to source pixels ``(x, y)`` (for reporting where a handle ended up)."""
        rows, cols = self.supervision_size
        w, h = self.source_size
        return col / cols * w, row / rows * h

    def handles_and_targets(self, points: tuple[DragPair, ...]) -> tuple[list[tuple[float, float]],
                                                                          list[tuple[float, float]]]:
        handles = [self.to_supervision(xs, ys) for xs, ys, _, _ in points]
        targets = [self.to_supervision(xt, yt) for _, _, xt, yt in points]
        return handles, targets

