"""Working size and the grids a drag lives on: source pixels, working pixels, supervision cells.

The originals run each DragBench image at its native size: ``drag_bench_evaluation/run_drag_diffusion.py`` of
DragDiffusion (GoodDrag, CLIPDrag and DragNoise likewise) takes ``full_h, full_w = source_image.shape[:2]`` and
feeds the image to the VAE as it is, and DragBench was labelled with a tool that sets the *width* to 512 and keeps
the aspect ratio (``labeling_tool.py`` / ``utils/ui_utils.py: store_img``: ``resize((512, int(512 * h / w)),
BILINEAR)``). So: the working width is ``resolution`` and the height follows the aspect ratio, truncated as
``store_img`` does; an image already ``resolution`` wide is not resampled.

Heights that are not a multiple of 8 (DragBench has 512 x 534 ... 512 x 815) are not rounded before encoding in
any original: Stable Diffusion's VAE encoder pads each of its three stride-2 convolutions by one row and column at
the bottom and right, so ``n`` rows give ``n // 2`` at each level and the latent has ``h // 8`` rows covering the
whole image; the decoder returns ``8 * (h // 8)`` rows, which the originals resize bilinearly back to the full size
("shape of gen_image will be rounded to multipliers of 8"). The port does the same: the latent's own shape is the
latent grid. Motion supervision and point tracking work on UNet features resized to ``int(0.5 * full)`` of the
working size; a point ``p`` of an image of side ``full`` sits at ``round(p / full * sup_res)`` there, the rounding
of the official code.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvbench.cases.case import DragPair


def working_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """``(w, h)``: width ``resolution``, height by the aspect ratio, truncated (``store_img``)."""
    return resolution, max(1, int(resolution * height / width))


@dataclass(frozen=True)
class DragGeometry:
    """Sizes of one case's grids and the conversions between them."""

    source_size: tuple[int, int]  # (w, h) of the case's image
    work_size: tuple[int, int]  # (w, h) the image enters the VAE at

    @classmethod
    def of(cls, width: int, height: int, resolution: int) -> "DragGeometry":
        return cls((width, height), working_size(width, height, resolution))

    @property
    def supervision_size(self) -> tuple[int, int]:
        """``(rows, cols)`` of the feature grid: half the working size, truncated (official ``int(0.5 * full)``)."""
        w, h = self.work_size
        return int(0.5 * h), int(0.5 * w)

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
