"""Motion supervision and point tracking on the supervision grid (UNet features at half the image's size).

Points are ``(row, col)`` cells of that grid. The rules follow DragDiffusion (``utils/drag_utils.py``):

- *motion supervision*: for each handle ``p`` not yet within 2 cells of its target ``t``, the features of the
  ``(2 r_m + 1)^2`` patch around ``p + step * (t - p) / |t - p|`` (sampled bilinearly, so they depend
  differentiably on the latent) are pulled toward a reference patch with stop-gradient: the current patch around
  ``p`` (DragDiffusion, ``step = 1``) or, GoodDrag's information-preserving variant, the *original* features around
  the *initial* handle (``step = min(d, |t - p|)``); the loss is ``weight * mean |moved - reference|``;
- *point tracking*: the new handle is the cell within ``r_p`` of the current one (window clipped to the grid)
  whose feature is nearest, in L1, to the original feature at the initial handle; CLIPDrag's fast tracking only
  admits cells strictly closer to the target than the current handle, gives the window's centre cell the squared
  distance to the target when that is at most 1, and falls to the window's top-left cell when no cell is admitted
  (``fast_point_tracking``: ``argmin`` of all-infinite distances is 0);
- a drag is done when every handle is within 2 cells of its target.

At the grid's border, where the official code clips the window (DragDiffusion) or indexes past it (GoodDrag),
patch samples are clamped to the border, so a patch always has ``(2 r + 1)^2`` samples.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch

Point = tuple[float, float]
REACHED = 2.0  # cells: check_handle_reach_target in every official repository


def sample_patch(features: "torch.Tensor", row: float, col: float, radius: int) -> "torch.Tensor":
    """``(1, C, 2r+1, 2r+1)`` features around ``(row, col)``, bilinear, coordinates clamped to the grid."""
    import torch
    import torch.nn.functional as F

    height, width = features.shape[-2:]
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=features.device)
    rows = (row + offsets).clamp(0, height - 1) / max(height - 1, 1) * 2 - 1
    cols = (col + offsets).clamp(0, width - 1) / max(width - 1, 1) * 2 - 1
    grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)[None]  # (1, rows, cols, [x, y])
    return F.grid_sample(features, grid.to(features.dtype), mode="bilinear", padding_mode="border",
                         align_corners=True)


def motion_supervision_loss(features: "torch.Tensor", handles: Sequence[Point], targets: Sequence[Point], *,
                            radius: int, weight: float, max_step: float = 1.0,
                            reference: "torch.Tensor | None" = None,
                            reference_points: Sequence[Point] | None = None) -> "torch.Tensor":
    """The summed patch loss over handles that have not arrived (see the module docstring)."""
    import torch.nn.functional as F

    loss = features.new_zeros(())
    for k, (handle, target) in enumerate(zip(handles, targets)):
        distance = math.dist(handle, target)
        if distance < REACHED:
            continue
        step = min(max_step, distance) / distance
        moved = sample_patch(features, handle[0] + (target[0] - handle[0]) * step,
                             handle[1] + (target[1] - handle[1]) * step, radius)
        if reference is None:
            anchor = sample_patch(features, handle[0], handle[1], radius).detach()
        else:
            origin = reference_points[k] if reference_points is not None else handle
            anchor = sample_patch(reference, origin[0], origin[1], radius).detach()
        loss = loss + weight * F.l1_loss(moved, anchor)
    return loss


def track_points(reference: "torch.Tensor", features: "torch.Tensor", handles: Sequence[Point],
                 initial: Sequence[Point], radius: int, targets: Sequence[Point] | None = None) -> list[Point]:
    """New handle positions: nearest neighbour (L1) of each initial handle's reference feature near the handle.

    ``targets`` given: CLIPDrag's fast tracking (only cells strictly closer to the target are candidates; the
    original's edge rules, see the module docstring).
    """
    import torch

    height, width = features.shape[-2:]
    moved = []
    with torch.no_grad():
        for k, (handle, origin) in enumerate(zip(handles, initial)):
            wanted = reference[0, :, int(origin[0]), int(origin[1])]
            r1, r2 = max(0, int(handle[0]) - radius), min(height, int(handle[0]) + radius + 1)
            c1, c2 = max(0, int(handle[1]) - radius), min(width, int(handle[1]) + radius + 1)
            distance = (features[0, :, r1:r2, c1:c2] - wanted[:, None, None]).abs().sum(dim=0).float()
            if targets is not None:
                rows = torch.arange(r1, r2, device=distance.device, dtype=torch.float32)[:, None]
                cols = torch.arange(c1, c2, device=distance.device, dtype=torch.float32)[None, :]
                to_target = (rows - targets[k][0]) ** 2 + (cols - targets[k][1]) ** 2
                current = (handle[0] - targets[k][0]) ** 2 + (handle[1] - targets[k][1]) ** 2
                distance = distance.masked_fill(to_target >= current, float("inf"))
                if current <= 1 and radius < min(distance.shape):  # (the original indexes past a smaller window)
                    distance[radius, radius] = current
            row, col = divmod(int(distance.argmin()), distance.shape[1])
            moved.append((float(r1 + row), float(c1 + col)))
    return moved


def all_reached(handles: Sequence[Point], targets: Sequence[Point]) -> bool:
    return all(math.dist(h, t) < REACHED for h, t in zip(handles, targets))
