"""Features of each distinct image, computed once and shared by every metric, method and case."""

from __future__ import annotations

from collections import OrderedDict

from PIL import Image

from tvbench.cases.case import pixel_digest
from tvbench.features.cache import FeatureCache
from tvbench.features.dino import DinoBackbone, ImageFeatures


class FeatureStore:
    """Keyed by pixel content and resolution, so identical images share one forward pass: an oracle's edit and
    the target, or the untouched source that a magnitude group's cases have in common.

    Memory holds only the ``max_items`` most recently used entries, so scoring streams through a benchmark of any
    size (the scorer visits a case's images together, and a group's cases one after another). Behind it, an
    optional on-disk :class:`FeatureCache` keeps every entry across runs and processes.
    """

    def __init__(self, backbone: DinoBackbone, resolution: int, max_items: int = 16, disk: FeatureCache | None = None):
        self.backbone = backbone
        self.resolution = resolution
        self.max_items = max_items
        self.disk = disk
        self._features: OrderedDict[tuple[str, int], ImageFeatures] = OrderedDict()
        self._digests: OrderedDict[int, tuple[Image.Image, str]] = OrderedDict()  # id -> (image kept alive, digest)
        self.forwards = 0  # images actually sent through the network

    def digest(self, image: Image.Image) -> str:
        """The image's pixel digest, hashed once per image object (metrics ask for the same images repeatedly)."""
        held = self._digests.get(id(image))
        if held is None or held[0] is not image:
            held = (image, pixel_digest(image))
            self._digests[id(image)] = held
            while len(self._digests) > 4 * self.max_items:
                self._digests.popitem(last=False)
        return held[1]

    def prefetch(self, images: list[Image.Image], resolution: int | None = None) -> None:
        """Make the images' features at ``resolution`` (default: the store's) ready: from memory, from disk, or
        encoded (images of one size as one batch)."""
        resolution = resolution or self.resolution
        pending: dict[tuple[str, int], Image.Image] = {}
        for image in images:
            key = (self.digest(image), resolution)
            if key not in self._features and key not in pending:
                loaded = self._load(key)
                if loaded is not None:
                    self._remember(key, loaded, len(images))
                else:
                    pending[key] = image
        if pending:
            for key, features in zip(pending, self.backbone.encode(list(pending.values()), resolution)):
                self._remember(key, features, len(images))
                if self.disk is not None:
                    self.disk.save(self._disk_key(key), {"cls": features.cls, "patches": features.patches})
            self.forwards += len(pending)

    def __len__(self) -> int:
        """Entries held in memory (never more than ``max_items``, or one batch if a batch is larger)."""
        return len(self._features)

    def get(self, image: Image.Image, resolution: int | None = None) -> ImageFeatures:
        """Features of ``image``; metrics that need finer patch grids ask for a larger ``resolution``."""
        key = (self.digest(image), resolution or self.resolution)
        if key not in self._features:
            self.prefetch([image], key[1])
        self._features.move_to_end(key)
        return self._features[key]

    def _disk_key(self, key: tuple[str, int]) -> str:
        digest, resolution = key
        return self.disk.key(digest, resolution=resolution)

    def _load(self, key: tuple[str, int]) -> ImageFeatures | None:
        if self.disk is None:
            return None
        tensors = self.disk.load(self._disk_key(key))
        if tensors is None or set(tensors) != {"cls", "patches"}:
            return None
        return ImageFeatures(cls=tensors["cls"], patches=tensors["patches"])

    def _remember(self, key: tuple[str, int], features: ImageFeatures, batch: int) -> None:
        self._features[key] = features
        self._features.move_to_end(key)
        while len(self._features) > max(self.max_items, batch):
            self._features.popitem(last=False)
