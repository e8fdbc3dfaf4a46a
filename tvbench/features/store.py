"""Features of each distinct image, computed once and shared by every metric, method and case."""

from __future__ import annotations

from collections import OrderedDict

from PIL import Image

from tvbench.cases.case import pixel_digest
from tvbench.features.dino import DinoBackbone, ImageFeatures


class FeatureStore:
    """Keyed by pixel content and resolution, so identical images share one forward pass: an oracle's edit and
    the target, or the untouched source that a magnitude group's cases have in common.

    It keeps the ``max_items`` most recently used entries, so scoring streams through a benchmark of any size
    in bounded memory (the scorer visits a case's images together, and a group's cases one after another).
    """

    def __init__(self, backbone: DinoBackbone, resolution: int, max_items: int = 64):
        self.backbone = backbone
        self.resolution = resolution
        self.max_items = max_items
        self._features: OrderedDict[tuple[str, int], ImageFeatures] = OrderedDict()
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
            while len(self._features) > max(self.max_items, len(pending)):
                self._features.popitem(last=False)

    def get(self, image: Image.Image, resolution: int | None = None) -> ImageFeatures:
        """Features of ``image``; metrics that need finer patch grids ask for a larger ``resolution``."""
        key = (pixel_digest(image), resolution or self.resolution)
        if key not in self._features:
            self.prefetch([image], key[1])
        self._features.move_to_end(key)
        return self._features[key]
