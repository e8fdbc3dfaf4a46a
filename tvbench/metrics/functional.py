"""Metric formulas on precomputed features, for users who already hold features (and for checking ours).

Everything here is pure tensor math in float64, independent of how the features were made.
"""

from __future__ import annotations

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
