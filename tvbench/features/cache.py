"""An on-disk, content-addressed cache of image features, shared by every scoring run on the machine.

A file's name is the sha256 of what determines its content: the image's decoded pixels, the network (id,
revision, library, dtype), the input resolution and, for text-conditioned features, the text. So adding one
method to a results folder and rescoring encodes only that method's edits; the sources and targets come from
here. Files are written to a temporary name and renamed into place, so two scorers running at once never see a
half-written file (both may compute the same entry; the second rename replaces identical content). A file that
cannot be read is treated as absent and rewritten.

Layout: ``<root>/<namespace>/<key[:2]>/<key>.safetensors``, with ``<namespace>/namespace.json`` describing the
network. A float32 ViT-B/16 patch grid at 448 px costs about 2.4 MB per image, at 896 px about 9.6 MB; delete the
folder to reclaim space (it is only a cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tvbench.io import atomic_write_bytes, atomic_write_text, canonical_json, config_hash, sha256_hex
from tvbench.settings import cache_dir

FORMAT_VERSION = 1


def default_feature_cache_dir() -> Path:
    return cache_dir() / "features"


class FeatureCache:
    """Tensors of one network, keyed by image content and the inputs that shaped them."""

    def __init__(self, root: Path, namespace: dict):
        self.namespace = {**namespace, "format": FORMAT_VERSION}
        self.folder = Path(root) / config_hash(self.namespace)
        self.hits = 0
        self.writes = 0
        description = self.folder / "namespace.json"
        if not description.is_file():
            atomic_write_text(description, json.dumps(self.namespace, indent=2, sort_keys=True) + "\n")

    def key(self, digest: str, **inputs) -> str:
        return sha256_hex(canonical_json({"image": digest, **inputs}).encode())

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def load(self, key: str) -> dict[str, torch.Tensor] | None:
        from safetensors import SafetensorError
        from safetensors.torch import load

        path = self._path(key)
        try:
            tensors = load(path.read_bytes())
        except (OSError, SafetensorError, ValueError):
            return None
        self.hits += 1
        return tensors

    def save(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save

        data = save({name: t.contiguous() for name, t in tensors.items()})
        atomic_write_bytes(self._path(key), data, durable=False)  # a cache: an entry lost in a crash is recomputed
        self.writes += 1
