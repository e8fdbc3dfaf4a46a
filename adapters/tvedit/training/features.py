"""Precomputed inputs of the frozen backbone, cached on disk by content (paper: the frozen parts dominate cost).

Per training pair: the target's latent tokens (Z0), the source's latent tokens (condition), the token grid and
the instruction's text states. Each item is one safetensors file named by a sha256 of what determines it:
the frozen modules' identity (configs and a weight checksum), the decoded pixels of the image(s), the working
size and resize filter and, for text, the instruction. Renaming a file or re-encoding a PNG losslessly hits the
same entry; another backbone, size, filter or instruction misses. A killed run leaves at worst a hidden
``.partial-`` file, never a half-written entry, and the next run that writes that entry removes it. With several processes each encodes its share, then all read every entry.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from tvbench.cases.case import ImageRef, pixel_digest
from tvbench_adapters.tvedit.points import RESIZE_FILTER_NAME
from tvbench_adapters.tvedit.training.backbones import FrozenBackbone, working_size
from tvbench_adapters.tvedit.training.data import TrainingPair


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class FeatureStore:
    """Encoded training pairs, computed once and read from ``folder`` afterwards."""

    def __init__(self, backbone: FrozenBackbone, folder: Path, *, resize: str, resolution: int):
        self.backbone, self.folder = backbone, Path(folder)
        self.resize, self.resolution = resize, resolution
        self._digests: dict[int, tuple[str, tuple[int, int]]] = {}
        self.hits = self.misses = 0

    def _image(self, ref: ImageRef) -> tuple[str, tuple[int, int]]:
        """(pixel digest, size) of an image, decoded once per run."""
        if id(ref) not in self._digests:
            image = ref.open("RGB")
            self._digests[id(ref)] = (pixel_digest(image), image.size)
        return self._digests[id(ref)]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def _load_or_make(self, key: str, make) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        from tvbench.io import atomic_save_safetensors

        path = self._path(key)
        if path.is_file():
            self.hits += 1
            return load_file(str(path))
        self.misses += 1
        tensors = {name: value.contiguous() for name, value in make().items()}
        atomic_save_safetensors(path, {name: value.cpu() for name, value in tensors.items()}, durable=False)
        return tensors

    def size_of(self, pair: TrainingPair) -> tuple[int, int]:
        return working_size(self._image(pair.source)[1], self.resize, self.resolution)

    def features(self, pair: TrainingPair) -> dict[str, torch.Tensor]:
        """``z0``, ``cond`` (tokens, channels), ``grid`` (2,), ``image_size`` (2,) and the text tensors."""
        size = self.size_of(pair)
        source_digest, source_size = self._image(pair.source)
        target_digest, _ = self._image(pair.target)
        identity, size_text = self.backbone.identity, f"{size[0]}x{size[1]}/{RESIZE_FILTER_NAME}"

        def latents(ref: ImageRef):
            def make():
                tokens, grid = self.backbone.encode_image(ref.open("RGB"), size)
                return {"tokens": tokens, "grid": torch.tensor(grid)}
            return make

        target = self._load_or_make(_key(identity, "latents", target_digest, size_text), latents(pair.target))
        source = self._load_or_make(_key(identity, "latents", source_digest, size_text), latents(pair.source))
        image_part = source_digest if self.backbone.text_depends_on_image() else ""
        text = self._load_or_make(_key(identity, "text", pair.instruction, image_part, size_text),
                                  lambda: self.backbone.encode_text(pair.instruction, pair.source.open("RGB"), size))
        return {"z0": target["tokens"], "cond": source["tokens"], "grid": source["grid"],
                "image_size": torch.tensor(source_size), **text}

    def prepare(self, pairs: list[TrainingPair], rank: int = 0, world: int = 1, progress: bool = False) -> None:
        """Encode this process's share of the pairs (``i % world == rank``) into the cache."""
        from tvbench.progress import track

        mine = [pair for index, pair in enumerate(pairs) if index % world == rank]
        for pair in track(mine, "encoding pairs", enabled=progress):
            self.features(pair)
