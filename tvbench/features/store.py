"""Features of each distinct image, computed once and shared by every metric and every method."""

from __future__ import annotations

from PIL import Image

from tvbench.cases.case import pixel_digest
from tvbench.features.dino import DinoBackbone, ImageFeatures


class FeatureStore:
    """Keyed by pixel content, so identical images (an oracle's edit and the target) share one forward pass.

    The scorer keeps one store per case and drops it afterwards, so memory holds one case's features at a time.
    """

    def __init__(self, backbone: DinoBackbone, resolution: int):
        self.backbone = backbone
        self.resolution = resolution
        self._features: dict[tuple[str, int], ImageFeatures] = {}
        self.forwards = 0  # images actually sent through the network

    def prefetch(self, images: list[Image.Image], resolution: int | None = None) -> None:
        """Encode the images not seen yet at ``resolution`` (default: the store's), as one batch per size."""
        resolution = resolution or self.resolution
        pending: dict[tuple[str, int], Image.Image] = {}
        for image in images:
            key = (pixel_digest(image), resolution)
            if key not in self._features:
                pending.setdefault(key, image)
        if pending:
            for key, features in zip(pending, self.backbone.encode(list(pending.values()), resolution)):
                self._features[key] = features
            self.forwards += len(pending)

    def get(self, image: Image.Image, resolution: int | None = None) -> ImageFeatures:
        """Features of ``image``; metrics that need finer patch grids ask for a larger ``resolution``."""
        key = (pixel_digest(image), resolution or self.resolution)
        if key not in self._features:
            self.prefetch([image], key[1])
        return self._features[key]
