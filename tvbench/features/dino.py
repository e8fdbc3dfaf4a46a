"""DINOv3 feature extraction (CLS token and patch grid) through timm or transformers.

The default is timm's ``vit_base_patch16_dinov3.lvd1689m`` (``timm/vit_base_patch16_dinov3.lvd1689m`` on the
hub): the official DINOv3 ViT-B/16 weights under the DINOv3 licence, published by timm without the access
gate that Meta's ``facebook/dinov3-*`` repositories have (see facebookresearch/dinov3#145), so a fresh
machine can score without an approval step. Meta's transformers checkpoints and any local folder saved by
``save_pretrained`` or timm's ``save_for_hf`` load through the same class.

Images are resized (bicubic, antialiased) so that the long side is ``resolution`` pixels and both sides are
multiples of the patch size, keeping the aspect ratio, then normalised with the checkpoint's mean and std.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from tvbench.device import torch_device, torch_dtype
from tvbench.errors import UnavailableError
from tvbench.features.defaults import DEFAULT_BACKBONE, DEFAULT_RESOLUTION, RANDOM_BACKBONES  # noqa: F401
from tvbench.features.random_init import deterministic_init_
from tvbench.features.weights import folder_revision, resolve_weights
from tvbench.io import build_folder_once
from tvbench.settings import cache_dir

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MARKER = "tvbench.json"  # written beside randomly initialised weights so results say so
# On the CPU, same-size images share a batch only with several torch threads and up to this many tokens each
# (448 px: 784). benchmarks/batch_bench.py, 2-core CPU, 2026-11-27, batch / singles time per image: one thread,
# 1.18 at 448 px and 0.99 at 896 px; two threads, 0.88 at 448 px and 0.97 (0.83-1.07) at 896 px, where a batch
# also holds more memory (issue 13 had measured 1.19-1.22 at 896 px). On a GPU a batch is always used.
CPU_BATCH_MAX_TOKENS = 1024

RANDOM_SEED = 0


@dataclass
class ImageFeatures:
    """One image's features: the CLS token ``(D,)`` and the patch grid ``(rows, cols, D)``, float32 on CPU."""

    cls: torch.Tensor
    patches: torch.Tensor


def materialize_random_backbone(name: str) -> Path:
    """Build a deterministic random DINOv3 once, saved like a real checkpoint, and return its folder."""
    import timm
    from timm.models import save_for_hf

    architecture, args = RANDOM_BACKBONES[name]

    def build(staging: Path) -> None:
        model = timm.create_model(architecture, pretrained=False, **args)
        deterministic_init_(model, RANDOM_SEED)
        save_for_hf(model, str(staging), model_args=dict(args), safe_serialization=True)
        marker = {"random_init": True, "seed": RANDOM_SEED, "architecture": architecture, "model_args": args}
        (staging / MARKER).write_text(json.dumps(marker, indent=2))  # written last: marks the folder complete

    return build_folder_once(cache_dir() / "backbones" / f"{name}-seed{RANDOM_SEED}-v1", build, MARKER)


class DinoBackbone:
    """A ViT with prefix tokens (CLS, registers) whose outputs are split into CLS and a patch grid."""

    def __init__(self, model: torch.nn.Module, *, library: str, spec: str, revision: str, patch_size: int,
                 num_prefix_tokens: int, mean: Sequence[float], std: Sequence[float], device: torch.device,
                 dtype: torch.dtype, random_init: bool = False):
        self.model = model.eval().to(device=device, dtype=dtype)
        self.library = library
        self.spec = spec
        self.revision = revision
        self.patch_size = patch_size
        self.num_prefix_tokens = num_prefix_tokens
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.device = device
        self.dtype = dtype
        self.random_init = random_init

    @classmethod
    def from_pretrained(cls, spec: str = DEFAULT_BACKBONE, *, device: str = "auto",
                        dtype: str = "float32") -> "DinoBackbone":
        """Load from a hub id, a local folder, or one of :data:`RANDOM_BACKBONES`."""
        if spec in RANDOM_BACKBONES:
            folder = materialize_random_backbone(spec)
            label, revision = spec, folder_revision(folder)
        else:
            weights = resolve_weights(spec, what="DINOv3 backbone")
            folder, label, revision = weights.path, weights.id, weights.revision
        config = json.loads((folder / "config.json").read_text())
        marker = json.loads((folder / MARKER).read_text()) if (folder / MARKER).is_file() else {}
        common = dict(spec=label, revision=revision, device=torch_device(device), dtype=torch_dtype(dtype),
                      random_init=bool(marker.get("random_init")))
        if "architecture" in config:
            return cls._from_timm(folder, **common)
        if "model_type" in config:
            return cls._from_transformers(folder, **common)
        raise UnavailableError(f"{label}: config.json is neither a timm nor a transformers model config")

    @classmethod
    def _from_timm(cls, folder: Path, **common) -> "DinoBackbone":
        import timm

        model = timm.create_model(f"local-dir:{folder}", pretrained=True)
        cfg = model.pretrained_cfg or {}
        patch = model.patch_embed.patch_size
        return cls(model, library="timm", patch_size=int(patch[0] if isinstance(patch, (tuple, list)) else patch),
                   num_prefix_tokens=int(model.num_prefix_tokens), mean=cfg.get("mean", IMAGENET_MEAN),
                   std=cfg.get("std", IMAGENET_STD), **common)

    @classmethod
    def _from_transformers(cls, folder: Path, **common) -> "DinoBackbone":
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        model = AutoModel.from_pretrained(str(folder))
        config = model.config
        processor_file = folder / "preprocessor_config.json"
        processor = json.loads(processor_file.read_text()) if processor_file.is_file() else {}
        return cls(model, library="transformers", patch_size=int(config.patch_size),
                   num_prefix_tokens=1 + int(getattr(config, "num_register_tokens", 0)),
                   mean=processor.get("image_mean", IMAGENET_MEAN), std=processor.get("image_std", IMAGENET_STD),
                   **common)

    def describe(self) -> dict:
        return {"id": self.spec, "revision": self.revision, "library": self.library, "patch_size": self.patch_size,
                "dtype": str(self.dtype).replace("torch.", ""), "random_init": self.random_init}

    def input_size(self, width: int, height: int, resolution: int) -> tuple[int, int]:
        """(width, height) with the long side at ``resolution`` and both sides multiples of the patch size."""
        scale = resolution / max(width, height)
        p = self.patch_size
        return (max(p, int(round(width * scale / p)) * p), max(p, int(round(height * scale / p)) * p))

    def preprocess(self, images: Sequence[Image.Image], resolution: int) -> torch.Tensor:
        width, height = self.input_size(*images[0].size, resolution)
        arrays = [np.asarray(img.convert("RGB").resize((width, height), Image.BICUBIC), dtype=np.float32)
                  for img in images]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0
        return (batch - self.mean) / self.std

    @torch.inference_mode()
    def forward_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = pixels.to(device=self.device, dtype=self.dtype)
        if self.library == "timm":
            return self.model.forward_features(pixels)
        return self.model(pixel_values=pixels).last_hidden_state

    def batches(self, indices: list[int], size: tuple[int, int], resolution: int) -> list[list[int]]:
        """How images of one size go through the network: together, except on the CPU with one thread or above
        :data:`CPU_BATCH_MAX_TOKENS` tokens per image, where one at a time was as fast or faster."""
        width, height = self.input_size(*size, resolution)
        tokens = (width // self.patch_size) * (height // self.patch_size)
        if self.device.type == "cpu" and (tokens > CPU_BATCH_MAX_TOKENS or torch.get_num_threads() == 1):
            return [[index] for index in indices]
        return [indices]

    def encode(self, images: Sequence[Image.Image], resolution: int = DEFAULT_RESOLUTION) -> list[ImageFeatures]:
        """Features of each image; images of one size share a batch where that measured faster (:meth:`batches`)."""
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.size, []).append(index)
        results: list[ImageFeatures | None] = [None] * len(images)
        for size, same_size in by_size.items():
            for indices in self.batches(same_size, size, resolution):
                self._encode_batch(images, indices, resolution, results)
        return results  # type: ignore[return-value]

    def _encode_batch(self, images: Sequence[Image.Image], indices: list[int], resolution: int,
                      results: list) -> None:
        pixels = self.preprocess([images[i] for i in indices], resolution)
        rows, cols = pixels.shape[2] // self.patch_size, pixels.shape[3] // self.patch_size
        tokens = self.forward_tokens(pixels).float().cpu()
        for batch_index, image_index in enumerate(indices):
            patches = tokens[batch_index, self.num_prefix_tokens:]
            results[image_index] = ImageFeatures(cls=tokens[batch_index, 0], patches=patches.reshape(rows, cols, -1))
