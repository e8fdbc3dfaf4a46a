"""Networks that turn images into features for the metrics: DINOv3 (CLS + patches), LPIPS and DIFT.

Models are separate from metrics: a metric asks for features, and the scorer loads each network once per
run and computes each distinct image's features once (:class:`FeatureStore`).
"""

from tvbench.features.dift import DiftBackbone  # imports diffusers only when a model is loaded
from tvbench.features.dino import (DEFAULT_BACKBONE, DEFAULT_RESOLUTION, RANDOM_BACKBONES, DinoBackbone,
                                   ImageFeatures)
from tvbench.features.lpips import LpipsModel
from tvbench.features.store import FeatureStore

__all__ = ["DEFAULT_BACKBONE", "DEFAULT_RESOLUTION", "RANDOM_BACKBONES", "DiftBackbone", "DinoBackbone", "FeatureStore",
           "ImageFeatures", "LpipsModel"]
