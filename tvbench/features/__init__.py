"""Networks that turn images into features for the metrics: DINOv3 (CLS + patches), LPIPS and DIFT.

Models are separate from metrics: a metric asks for features, and the scorer loads each network once per
run and computes each distinct image's features once (:class:`FeatureStore`).

Names are resolved on first use, so reading the defaults (:mod:`tvbench.features.defaults`) imports no torch:
``tvbench score`` reads its options and finds its results folder and benchmark before it pays for torch.
"""

from __future__ import annotations

from tvbench.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_BACKBONE": "defaults", "DEFAULT_RESOLUTION": "defaults", "RANDOM_BACKBONES": "defaults",
    "DiftBackbone": "dift", "DinoBackbone": "dino", "ImageFeatures": "dino", "LpipsModel": "lpips",
    "FeatureStore": "store",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
