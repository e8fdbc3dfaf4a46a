"""Metric formulas on precomputed features, for users who already hold features (and for checking ours).

Everything here is pure tensor math in float64, independent of how the features were made.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two vectors in float64, within [-1, 1], exactly 1 for identical vectors."""
    a64 = a.detach().double().flatten()
    b64 = b.detach().double().flatten()
    if torch.equal(a64, b64) and bool(a64.any()):
        return 1.0
    value = float(a64 @ b64 / (a64.norm() * b64.norm()).clamp_min(1e-12))
    return min(1.0, max(-1.0, value))


def ds_global(cls_reference: torch.Tensor, cls_edit: torch.Tensor) -> float:
    """Global DINO score (paper eq. C.8): cosine of the CLS tokens of the reference (target) and the edit."""
    return cosine(cls_reference, cls_edit)


# --- DS_local (eq. C.9-C.10) ------------------------------------------------------------------------------------

MASK_THRESHOLD = 0.5  # a patch is "masked" when at least half of its area lies inside the mask
_TOLERANCE = 1e-9


def _cell_weights(n_pixels: int, n_cells: int) -> torch.Tensor:
    """(n_cells, n_pixels): how much of each cell each pixel covers, as a fraction of the cell (rows sum to 1).

    Cells tile the image evenly (cell ``i`` spans ``[i * n_pixels / n_cells, (i + 1) * n_pixels / n_cells)``), as the
    patch grid does after the image is resized to the network's input, so a pixel may straddle two cells.
    """
    length = n_pixels / n_cells
    edges = torch.arange(n_cells + 1, dtype=torch.float64) * length
    pixels = torch.arange(n_pixels, dtype=torch.float64)[None, :]
    overlap = torch.minimum(edges[1:, None], pixels + 1) - torch.maximum(edges[:-1, None], pixels)
    return overlap.clamp_min(0) / length


def mask_coverage(mask, grid: tuple[int, int]) -> torch.Tensor:
    """Average pooling of a pixel mask ``(H, W)`` to a ``(rows, cols)`` patch grid: the masked fraction of each
    patch's area. Equals ``avg_pool2d`` when the grid divides the image; exact area weights otherwise."""
    values = torch.as_tensor(np.asarray(mask), dtype=torch.float64)
    if values.ndim != 2:
        raise ValueError(f"a mask is 2-D (H, W), got shape {tuple(values.shape)}")
    rows, cols = grid
    return _cell_weights(values.shape[0], rows) @ values @ _cell_weights(values.shape[1], cols).T


def patch_mask(mask, grid: tuple[int, int], threshold: float = MASK_THRESHOLD) -> torch.Tensor:
    """Boolean ``(rows, cols)``: patches whose masked fraction is at least ``threshold``.

    A mask too small to fill half of any patch falls back to every patch it touches, so a thin region still counts.
    """
    coverage = mask_coverage(mask, grid)
    selected = coverage >= threshold - _TOLERANCE
    if not bool(selected.any()):
        selected = coverage > _TOLERANCE
    return selected


def _unit_rows(features: torch.Tensor) -> torch.Tensor:
    flat = features.detach().double().reshape(-1, features.shape[-1])
    return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)


def ds_local(reference_patches: torch.Tensor, edit_patches: torch.Tensor, selected: torch.Tensor) -> float:
    """Local DINO score (eq. C.9-C.10): for each selected reference patch, the best cosine over every patch of the
    edit; the mean over selected patches.

    ``reference_patches`` ``(rows, cols, D)``, ``edit_patches`` ``(rows', cols', D)`` (grids may differ), ``selected``
    a boolean ``(rows, cols)`` (see :func:`patch_mask`).
    """
    selected = torch.as_tensor(selected, dtype=torch.bool)
    if tuple(selected.shape) != tuple(reference_patches.shape[:2]):
        raise ValueError(f"mask grid {tuple(selected.shape)} != reference grid {tuple(reference_patches.shape[:2])}")
    if not bool(selected.any()):
        raise ValueError("the mask selects no patch")
    reference = _unit_rows(reference_patches[selected])
    best = (reference @ _unit_rows(edit_patches).T).max(dim=1).values.clamp(-1.0, 1.0)
    return float(best.mean())


def disc_mask(centres, size: tuple[int, int], radius: float) -> np.ndarray:
    """Boolean ``(H, W)`` mask: pixels whose centre lies within ``radius`` of any centre ``(x, y)``."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=bool)
    for x, y in centres:
        mask |= (xs - x) ** 2 + (ys - y) ** 2 <= radius ** 2
    return mask


# --- point matching (MD_s, MD_d, DragBench MD) -----------------------------------------------------------------

WINDOW_RATIO = 0.5  # padding of the search window, as a fraction of the drag length
WINDOW_FLOOR = 0.05  # least padding, as a fraction of the image's long side
_CHUNK_VALUES = 1 << 22  # values held at once per chunk of rows: bounds memory on large images


def _axis_taps(positions: torch.Tensor, n_pixels: int, n_cells: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two grid cells (low, high) and the weight of the high one, reading a grid of ``n_cells`` cells stretched
    over ``n_pixels`` pixels at pixel ``positions``: the source index of ``F.interpolate(..., mode="bilinear",
    align_corners=False)`` (clamped at the borders, where low == high)."""
    source = ((positions.double() + 0.5) * (n_cells / n_pixels) - 0.5).clamp(0.0, n_cells - 1)
    low = source.floor()
    # past the last cell centre the value is that cell's, exactly (not (1 - f) * v + f * v), so the border band's
    # pixels tie exactly and the tie rule, not rounding, picks among them
    return low.long(), (low + 1).clamp(max=n_cells - 1).long(), source - low


def sample_features(patches: torch.Tensor, size: tuple[int, int], points) -> torch.Tensor:
    """Features ``(N, D)`` (float64) at pixel positions ``points`` ``(N, 2)`` = ``(x, y)`` of an image of ``size``
    ``(W, H)`` whose patch grid is ``patches`` ``(rows, cols, D)``.

    This is the patch grid upsampled bilinearly to the pixel grid, i.e. ``F.interpolate(grid, (H, W),
    mode="bilinear", align_corners=False)`` read at pixel ``(x, y)`` (pixel centres at integers; positions between
    pixels interpolate further; past the outer pixel centres the border value holds).
    """
    width, height = size
    xy = torch.as_tensor(points, dtype=torch.float64).reshape(-1, 2)
    rows, cols = patches.shape[:2]
    r0, r1, fy = _axis_taps(xy[:, 1], height, rows)
    c0, c1, fx = _axis_taps(xy[:, 0], width, cols)
    grid = patches.detach().double()
    ky, kx, fy, fx = (1.0 - fy)[:, None], (1.0 - fx)[:, None], fy[:, None], fx[:, None]
    return ky * (kx * grid[r0, c0] + fx * grid[r0, c1]) + fy * (kx * grid[r1, c0] + fx * grid[r1, c1])


class _GridProducts:
    """Dot products between each patch and its right, lower, lower-right and lower-left neighbours: enough to get
    the norm of any bilinear mix of four neighbouring patches without forming it."""

    def __init__(self, patches: torch.Tensor):
        grid = patches.detach().double()
        self.grid = grid

        def padded(products: torch.Tensor) -> torch.Tensor:  # zero rows/columns past the edge (weight 0 there)
            rows, cols = grid.shape[:2]
            return torch.nn.functional.pad(products, (0, cols - products.shape[1], 0, rows - products.shape[0]))

        self.square = (grid * grid).sum(dim=2)
        self.right = padded((grid[:, :-1] * grid[:, 1:]).sum(dim=2))
        self.down = padded((grid[:-1] * grid[1:]).sum(dim=2))
        self.diagonal = padded((grid[:-1, :-1] * grid[1:, 1:]).sum(dim=2))  # (r, c) . (r + 1, c + 1)
        self.anti = padded((grid[:-1, 1:] * grid[1:, :-1]).sum(dim=2))  # (r, c + 1) . (r + 1, c)


def _cosine_rows(products: _GridProducts, size: tuple[int, int], ys: torch.Tensor, xs: torch.Tensor,
                 queries: torch.Tensor) -> torch.Tensor:
    """Cosine of unit ``queries`` ``(N, D)`` with the upsampled feature map (see :func:`sample_features`) at every
    pixel of rows ``ys`` x columns ``xs``, ``(len(ys) * len(xs), N)`` in row-major order.

    The map is never materialised: a pixel's feature is a bilinear mix of four neighbouring patches, so its dot
    product with a query mixes the patches' dot products, and its squared norm is a quadratic form in the
    patches' pairwise products. Cost per pixel does not grow with the feature dimension.
    """
    width, height = size
    rows, cols = products.grid.shape[:2]
    r0, r1, fy = _axis_taps(ys, height, rows)
    c0, c1, fx = _axis_taps(xs, width, cols)
    ky, kx = (1.0 - fy)[:, None], (1.0 - fx)[None, :]
    fy, fx = fy[:, None], fx[None, :]
    w00, w01, w10, w11 = ky * kx, ky * fx, fy * kx, fy * fx  # (h, w); where a tap is clamped its weight is 0

    def at(table: torch.Tensor, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return table[r][:, c]

    sq = products.square
    squared = (w00 ** 2 * at(sq, r0, c0) + w01 ** 2 * at(sq, r0, c1) + w10 ** 2 * at(sq, r1, c0)
               + w11 ** 2 * at(sq, r1, c1)
               + 2 * (w00 * w01 * at(products.right, r0, c0) + w10 * w11 * at(products.right, r1, c0)
                      + w00 * w10 * at(products.down, r0, c0) + w01 * w11 * at(products.down, r0, c1)
                      + w00 * w11 * at(products.diagonal, r0, c0) + w01 * w10 * at(products.anti, r0, c0)))
    projected = products.grid @ queries.T  # (rows, cols, N)
    along_y = ky[:, :, None] * projected[r0] + fy[:, :, None] * projected[r1]  # (h, cols, N)
    dots = kx[:, :, None] * along_y[:, c0] + fx[:, :, None] * along_y[:, c1]  # (h, w, N)
    return (dots / squared.clamp_min(0.0).sqrt().clamp_min(1e-12).unsqueeze(2)).reshape(-1, queries.shape[0])


def search_window(handle, target, size: tuple[int, int], ratio: float = WINDOW_RATIO,
                  floor: float = WINDOW_FLOOR) -> tuple[int, int, int, int]:
    """The restricted search window of one drag: the axis-aligned box spanning handle and target, padded on every
    side by ``max(floor * long side, ratio * |target - handle|)`` pixels, clipped to the image.

    Returns inclusive integer pixel bounds ``(x0, y0, x1, y1)``.
    """
    width, height = size
    (hx, hy), (tx, ty) = handle, target
    pad = max(floor * max(width, height), ratio * math.hypot(tx - hx, ty - hy))
    x0, x1 = max(0, math.ceil(min(hx, tx) - pad)), min(width - 1, math.floor(max(hx, tx) + pad))
    y0, y1 = max(0, math.ceil(min(hy, ty) - pad)), min(height - 1, math.floor(max(hy, ty) + pad))
    return x0, y0, x1, y1


def match_points(queries: torch.Tensor, edit_patches: torch.Tensor, size: tuple[int, int],
                 windows: list[tuple[int, int, int, int]] | None = None, anchors=None) -> torch.Tensor:
    """For each query feature ``(N, D)``, the pixel ``(x, y)`` of the edit whose upsampled feature (see
    :func:`sample_features`) has the highest cosine, searching its window (inclusive ``(x0, y0, x1, y1)``; None:
    the whole image).

    Ties (exactly equal cosines, e.g. the constant border band of an upsampled grid) go to the candidate nearest
    the query's ``anchor`` (the handle, so a tie never flatters an edit), then to the first in row-major order.
    Returns ``(N, 2)`` float64.
    """
    width, height = size
    queries = _unit_rows(queries)
    n = queries.shape[0]
    anchors = torch.as_tensor(anchors if anchors is not None else [[0.0, 0.0]] * n, dtype=torch.float64)
    boxes = torch.tensor(windows if windows is not None else [(0, 0, width - 1, height - 1)] * n, dtype=torch.float64)
    left, top = int(boxes[:, 0].min()), int(boxes[:, 1].min())
    right, bottom = int(boxes[:, 2].max()), int(boxes[:, 3].max())
    columns = torch.arange(left, right + 1, dtype=torch.float64)
    rows_per_chunk = max(1, _CHUNK_VALUES // max(1, len(columns) * n))
    products = _GridProducts(edit_patches)
    best = torch.full((n,), -math.inf, dtype=torch.float64)
    best_xy = torch.zeros((n, 2), dtype=torch.float64)
    best_gap = torch.full((n,), math.inf, dtype=torch.float64)
    for start in range(top, bottom + 1, rows_per_chunk):
        ys = torch.arange(start, min(bottom, start + rows_per_chunk - 1) + 1, dtype=torch.float64)
        sims = _cosine_rows(products, size, ys, columns, queries)  # (candidates, N), row-major candidates
        grid_y, grid_x = torch.meshgrid(ys, columns, indexing="ij")
        xs_flat, ys_flat = grid_x.reshape(-1, 1), grid_y.reshape(-1, 1)
        inside = ((xs_flat >= boxes[:, 0]) & (xs_flat <= boxes[:, 2]) & (ys_flat >= boxes[:, 1])
                  & (ys_flat <= boxes[:, 3]))
        sims = sims.masked_fill(~inside, -math.inf)
        chunk_best = sims.max(dim=0).values
        for k in range(n):
            if not (math.isfinite(chunk_best[k]) and chunk_best[k] >= best[k]):
                continue
            tied = (sims[:, k] == chunk_best[k]).nonzero().flatten()  # ascending: row-major order
            xy = torch.stack([columns[tied % len(columns)], ys[tied // len(columns)]], dim=1)
            gaps = ((xy - anchors[k]) ** 2).sum(dim=1)
            pick = int(gaps.argmin())  # first minimum
            if chunk_best[k] > best[k] or gaps[pick] < best_gap[k]:
                best[k], best_gap[k], best_xy[k] = chunk_best[k], gaps[pick], xy[pick]
    return best_xy


def matching_distances(source_patches: torch.Tensor, edit_patches: torch.Tensor, pairs, size: tuple[int, int],
                       restricted: bool = True, normalized: bool = True) -> torch.Tensor:
    """Per drag pair ``(hx, hy, tx, ty)``: match the source feature at the handle into the edit (within
    :func:`search_window` if ``restricted``, else over the whole image) and return the distance from the match to
    the target point, ``(N,)`` float64.

    ``normalized``: coordinates divided by the image's width and height first (x / W, y / H), so 1 is the image's
    extent along an axis; otherwise pixels. Both feature grids belong to images of ``size`` (the edit is resized to
    the source's size before encoding).
    """
    pairs = torch.as_tensor(pairs, dtype=torch.float64).reshape(-1, 4)
    return _distances(match_handles(source_patches, edit_patches, pairs, size, restricted), pairs[:, 2:], size,
                      normalized)


def match_handles(source_patches: torch.Tensor, edit_patches: torch.Tensor, pairs, size: tuple[int, int],
                  restricted: bool = True) -> torch.Tensor:
    """Where each drag pair's handle ``(hx, hy, tx, ty)`` went: the source feature at the handle matched into the
    edit (within :func:`search_window` if ``restricted``), ``(N, 2)`` pixel positions ``(x, y)``."""
    pairs = torch.as_tensor(pairs, dtype=torch.float64).reshape(-1, 4)
    handles, targets = pairs[:, :2], pairs[:, 2:]
    windows = [search_window(h.tolist(), t.tolist(), size) for h, t in zip(handles, targets)] if restricted else None
    queries = sample_features(source_patches, size, handles)
    return match_points(queries, edit_patches, size, windows, anchors=handles)


def displacements(source_patches: torch.Tensor, edit_patches: torch.Tensor, pairs, size: tuple[int, int],
                  normalized: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per drag pair: the displacement the edit achieved (handle to its windowed match, as MD_s matches) and the
    one requested (handle to target), ``(N,)`` each, normalised as in :func:`matching_distances`."""
    pairs = torch.as_tensor(pairs, dtype=torch.float64).reshape(-1, 4)
    handles = pairs[:, :2]
    matches = match_handles(source_patches, edit_patches, pairs, size)
    return _distances(matches, handles, size, normalized), _distances(pairs[:, 2:], handles, size, normalized)


def _distances(points: torch.Tensor, references: torch.Tensor, size: tuple[int, int], normalized: bool) -> torch.Tensor:
    offset = points - references
    if normalized:
        offset = offset / torch.tensor(size, dtype=torch.float64)
    return offset.norm(dim=1)
