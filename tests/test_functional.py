"""The metric formulas on precomputed features, checked against independent brute-force implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tvbench.metrics.functional import (disc_mask, ds_local, mask_coverage, match_points, matching_distances,
                                        patch_mask, sample_features, search_window)


def upsampled(patches: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """The reference high-resolution map (H, W, D), float64, pixel by pixel: bilinear between patch centres, the
    border patch's value beyond the outer centres (F.interpolate's align_corners=False convention)."""
    width, height = size
    grid = patches.double().numpy()
    rows, cols = grid.shape[:2]

    def taps(position: int, pixels: int, cells: int) -> tuple[int, int, float]:
        source = min(max((position + 0.5) * cells / pixels - 0.5, 0.0), cells - 1.0)
        low = int(math.floor(source))
        return low, min(low + 1, cells - 1), source - low

    out = np.empty((height, width, grid.shape[2]))
    for y in range(height):
        y0, y1, fy = taps(y, height, rows)
        for x in range(width):
            x0, x1, fx = taps(x, width, cols)
            out[y, x] = ((1 - fy) * ((1 - fx) * grid[y0, x0] + fx * grid[y0, x1])
                         + fy * ((1 - fx) * grid[y1, x0] + fx * grid[y1, x1]))
    return out


def interpolated(patches: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    grid = patches.double().permute(2, 0, 1).unsqueeze(0)
    return F.interpolate(grid, (height, width), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()


def brute_match(query: np.ndarray, full: np.ndarray, box, anchor) -> tuple[int, int]:
    """Independent window matching: cosine at every pixel of the box; ties to the nearest to the anchor."""
    x0, y0, x1, y1 = box
    region = full[y0:y1 + 1, x0:x1 + 1]
    cos = region @ query / (np.linalg.norm(region, axis=2) * np.linalg.norm(query))
    best = cos.max()
    candidates = [(x0 + x, y0 + y) for y, x in zip(*np.nonzero(cos == best))]
    return min(candidates, key=lambda p: ((p[0] - anchor[0]) ** 2 + (p[1] - anchor[1]) ** 2, p[1], p[0]))


def test_mask_pooling_is_average_pooling_with_exact_area_weights():
    rng = np.random.default_rng(0)
    mask = rng.random((32, 48)) > 0.5
    pooled = F.avg_pool2d(torch.tensor(mask, dtype=torch.float64)[None, None], 8)[0, 0]
    assert torch.allclose(mask_coverage(mask, (4, 6)), pooled, atol=1e-12)
    odd = rng.random((30, 50)) > 0.5  # cells of 7.5 x 12.5 px: supersampling x2 makes them whole
    fine = np.kron(odd, np.ones((2, 2)))
    expected = F.avg_pool2d(torch.tensor(fine, dtype=torch.float64)[None, None], (15, 25))[0, 0]
    assert torch.allclose(mask_coverage(odd, (4, 4)), expected, atol=1e-12)


def test_patch_mask_threshold_and_fallback_for_tiny_masks():
    mask = np.zeros((32, 32), dtype=bool)
    mask[0:16, 0:8] = True  # exactly half of patch (0, 0)
    assert patch_mask(mask, (2, 2)).tolist() == [[True, False], [False, False]]
    tiny = np.zeros((32, 32), dtype=bool)
    tiny[20, 20] = True  # far below half of any patch: the patch it touches still counts
    assert patch_mask(tiny, (2, 2)).tolist() == [[False, False], [False, True]]


def test_ds_local_matches_a_brute_force_implementation():
    rng = np.random.default_rng(1)
    reference = torch.tensor(rng.normal(size=(5, 7, 16)), dtype=torch.float32)
    edit = torch.tensor(rng.normal(size=(6, 4, 16)), dtype=torch.float32)
    selected = torch.tensor(rng.random((5, 7)) > 0.4)
    ref, ed = reference.double().numpy(), edit.double().numpy().reshape(-1, 16)
    best = [max(float(ref[i, j] @ e / (np.linalg.norm(ref[i, j]) * np.linalg.norm(e))) for e in ed)
            for i, j in zip(*np.nonzero(selected.numpy()))]
    assert ds_local(reference, edit, selected) == pytest.approx(float(np.mean(best)), abs=1e-12)
    assert ds_local(reference, reference, selected) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="selects no patch"):
        ds_local(reference, edit, torch.zeros((5, 7), dtype=torch.bool))


@pytest.mark.parametrize("size,grid", [((64, 48), (3, 4)), ((77, 53), (4, 5)), ((100, 30), (2, 7))])
def test_sampled_features_are_the_bilinearly_upsampled_grid(size, grid):
    patches = torch.randn(*grid, 8, generator=torch.Generator().manual_seed(2))
    full = upsampled(patches, size)
    width, height = size
    points = [(0, 0), (width - 1, height - 1), (width // 3, height // 2), (1, height - 2)]
    sampled = sample_features(patches, size, points).numpy()
    assert np.allclose(sampled, [full[y, x] for x, y in points], atol=1e-12)
    assert np.allclose(full, interpolated(patches, size), atol=1e-12)  # the convention DragDiffusion's script uses
    between = torch.tensor([[10.5, 7.25], [width - 1.5, 0.75]], dtype=torch.float64)  # positions between pixels
    normalised = torch.stack([(between[:, 0] + 0.5) / width * 2 - 1, (between[:, 1] + 0.5) / height * 2 - 1], 1)
    expected = F.grid_sample(patches.double().permute(2, 0, 1)[None], normalised.view(1, 1, -1, 2),
                             mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0].T
    assert torch.allclose(sample_features(patches, size, between), expected, atol=1e-12)


def test_search_window_rule():
    assert search_window((50, 50), (60, 50), (200, 100)) == (40, 40, 70, 60)  # floor: 0.05 x 200 = 10 px
    assert search_window((20, 20), (120, 20), (200, 100)) == (0, 0, 170, 70)  # 0.5 x 100 px, clipped
    assert search_window((10.2, 5), (10.2, 5), (100, 100)) == (6, 0, 15, 10)


@pytest.mark.parametrize("seed", range(4))
def test_window_matching_matches_a_brute_force_implementation(seed):
    rng = np.random.default_rng(seed)
    size = (int(rng.integers(60, 120)), int(rng.integers(40, 100)))
    source = torch.tensor(rng.normal(size=(5, 6, 12)), dtype=torch.float32)
    edit = source + 0.6 * torch.tensor(rng.normal(size=(5, 6, 12)), dtype=torch.float32)
    width, height = size
    pairs = [(float(rng.integers(0, width)), float(rng.integers(0, height)), float(rng.integers(0, width)),
              float(rng.integers(0, height))) for _ in range(5)]
    full_source, full_edit = upsampled(source, size), upsampled(edit, size)
    for restricted in (True, False):
        distances = matching_distances(source, edit, pairs, size, restricted=restricted, normalized=False)
        for (hx, hy, tx, ty), distance in zip(pairs, distances.tolist()):
            box = search_window((hx, hy), (tx, ty), size) if restricted else (0, 0, width - 1, height - 1)
            mx, my = brute_match(full_source[int(hy), int(hx)], full_edit, box, (hx, hy))
            assert distance == pytest.approx(math.hypot(mx - tx, my - ty), abs=1e-9)


def test_identity_md_is_the_drag_length_even_at_the_borders():
    rng = np.random.default_rng(5)
    patches = torch.tensor(rng.normal(size=(6, 8, 16)), dtype=torch.float32)
    size = (128, 96)
    pairs = [(3.0, 2.0, 40.0, 30.0), (127.0, 95.0, 100.0, 60.0), (64.0, 48.0, 70.0, 48.0), (5.0, 90.0, 5.0, 10.0)]
    expected = [math.hypot((tx - hx) / 128, (ty - hy) / 96) for hx, hy, tx, ty in pairs]
    assert matching_distances(patches, patches, pairs, size).tolist() == pytest.approx(expected, abs=1e-12)
    full_image = matching_distances(patches, patches, pairs, size, restricted=False, normalized=False)
    assert full_image.tolist() == pytest.approx([math.hypot(tx - hx, ty - hy) for hx, hy, tx, ty in pairs])


def test_an_exact_copy_of_a_feature_is_always_found():
    rng = np.random.default_rng(6)
    source = torch.tensor(rng.normal(size=(8, 8, 16)), dtype=torch.float32)
    edit = torch.roll(source, shifts=(1, 2), dims=(0, 1))  # content moved 2 patches right, 1 down
    size = (128, 128)  # 16 px per patch: the move is (32, 16) px
    for hx, hy in [(40, 40), (50, 60), (70, 30), (33, 90)]:
        query = sample_features(source, size, [(hx, hy)])
        found = match_points(query, edit, size, anchors=[(hx, hy)])[0].tolist()
        assert found == [hx + 32, hy + 16]


def test_disc_mask():
    mask = disc_mask([(5, 5)], (20, 10), 2)
    assert mask.sum() == 13 and mask[5, 5] and not mask[5, 8]
