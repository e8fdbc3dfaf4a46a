"""Per-case identity LoRA: fine-tune the UNet on the one image to edit, so inversion and denoising keep its identity.

The recipe is DragDiffusion's ``utils/lora_utils.py: train_lora`` (the same in GoodDrag, CLIPDrag and DragNoise):
LoRA of rank ``r`` (alpha = r, so scale 1; down-projection Gaussian with std 1/r, up-projection zero, the old
``LoRALinearLayer`` init) on ``to_q``, ``to_k``, ``to_v`` and ``to_out.0`` of every attention; AdamW (betas 0.9 /
0.999, weight decay 1e-2, eps 1e-8) at a constant learning rate; each step a batch of random square crops of the
image resized so its short side is the working resolution (torchvision ``Resize(512)`` + ``RandomCrop(512)``),
encoded with the VAE (sampled latent times the scaling factor), noised at uniform random timesteps and fitted with
the MSE of the predicted noise, conditioned on the prompt; seed 0 (``accelerate.utils.set_seed(0)``).

Here the adapter is PEFT's (``unet.add_adapter``), since the official repositories' ``set_lora_layer`` calls and
``LoRAAttnProcessor`` classes no longer exist in diffusers. A trained adapter is stored in the tvbench cache
(``$TVBENCH_CACHE/drag-lora/``), keyed by a sha256 of the working image's pixels, the prompt, the base weights'
identity (pipeline and VAE revisions), the dtype and the LoRA options: a rerun, or another method with the same
recipe on the same case, loads it instead of training. Files are renamed into place, never seen half-written.
A VAE posterior is computed once per distinct crop (square images have one), which changes nothing but the time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from tvbench.cases.case import pixel_digest
from tvbench.io import atomic_save_safetensors, atomic_write_json
from tvbench.settings import cache_dir

if TYPE_CHECKING:
    import torch

ADAPTER = "identity"
TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
LORA_SEED = 0
CACHE_FORMAT = 1
WEIGHTS_FILE = "adapter.safetensors"


@dataclass(frozen=True)
class LoraRecipe:
    """What decides the trained weights besides the image, the prompt and the base model."""

    steps: int
    lr: float
    rank: int
    batch_size: int
    resolution: int

    def check(self) -> None:
        if self.steps < 0 or self.rank < 1 or self.batch_size < 1 or self.resolution < 8 or self.lr <= 0:
            raise ValueError(f"LoRA options out of range: {asdict(self)} (steps >= 0, rank >= 1, batch size >= 1, "
                             "learning rate > 0)")

def lora_cache_root() -> Path:
    return cache_dir() / "drag-lora"


def lora_key(image: Image.Image, prompt: str, base: dict[str, Any], recipe: LoraRecipe, dtype: str) -> str:
    """Content address of a trained adapter (see the module docstring)."""
    record = {"format": CACHE_FORMAT, "image": pixel_digest(image.convert("RGB")), "prompt": prompt, "base": base,
              "dtype": dtype, "recipe": asdict(recipe), "targets": TARGET_MODULES, "seed": LORA_SEED}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


class IdentityLora:
    """Trains, caches and loads the per-case adapter on an :class:`~tvbench_adapters.drag.engine.DragEngine`."""

    def __init__(self, engine, recipe: LoraRecipe, root: Path | None = None):
        recipe.check()
        self.engine = engine
        self.recipe = recipe
        self.root = root or lora_cache_root()

    def apply(self, image: Image.Image, prompt: str) -> tuple[str, str | None]:
        """Make the UNet carry this case's adapter; returns ``(status, key)``, status ``trained|cached|off``."""
        if self.recipe.steps == 0:
            self._reset(with_adapter=False)
            return "off", None
        key = lora_key(image, prompt, self.engine.identity(), self.recipe, self.engine.dtype_name)
        path = self.root / key[:2] / key / WEIGHTS_FILE
        self._reset(with_adapter=True)
        if path.is_file():
            self._load(path)
            return "cached", key
        self._train(image, prompt)
        self._save(path, image, prompt, key)
        return "trained", key

    # -- adapter life cycle ------------------------------------------------------------------------------

    def _reset(self, with_adapter: bool) -> None:
        """Drop the previous case's adapter; add a freshly initialised one (seeded, so it is the same every time)."""
        import torch
        from peft import LoraConfig

        unet = self.engine.unet
        if ADAPTER in (getattr(unet, "peft_config", None) or {}):
            unet.delete_adapters(ADAPTER)
        if not with_adapter:
            return
        config = LoraConfig(r=self.recipe.rank, lora_alpha=self.recipe.rank, init_lora_weights="gaussian",
                            target_modules=list(TARGET_MODULES))
        devices = [unet.device] if unet.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(LORA_SEED)
            unet.add_adapter(config, adapter_name=ADAPTER)
        unet.set_adapter(ADAPTER)
        for name, parameter in unet.named_parameters():
            parameter.requires_grad_(False)
            if "lora_" in name:  # LoRA weights live in float32 whatever the base dtype (trained and loaded alike)
                parameter.data = parameter.data.float()

    def _load(self, path: Path) -> None:
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        state = load_file(str(path), device=str(self.engine.device))
        result = set_peft_model_state_dict(self.engine.unet, state, adapter_name=ADAPTER)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise RuntimeError(f"cached LoRA {path} does not fit this UNet ({len(unexpected)} unexpected keys, "
                               f"e.g. {unexpected[0]}); delete it to retrain")

    def _save(self, path: Path, image: Image.Image, prompt: str, key: str) -> None:
        from peft.utils import get_peft_model_state_dict

        state = {k: v.detach().contiguous().cpu() for k, v in
                 get_peft_model_state_dict(self.engine.unet, adapter_name=ADAPTER).items()}
        meta = {"prompt": prompt, "image_size": list(image.size), "base": self.engine.identity(),
                "dtype": self.engine.dtype_name, "recipe": asdict(self.recipe)}
        atomic_write_json(path.parent / "meta.json", meta)
        atomic_save_safetensors(path, state, metadata={"key": key})

    # -- training ------------------------------------------------------------------------------------------

    def _train(self, image: Image.Image, prompt: str) -> None:
        import torch
        import torch.nn.functional as F

        engine, recipe = self.engine, self.recipe
        unet = engine.unet
        trainable = [parameter for name, parameter in unet.named_parameters() if "lora_" in name]
        for parameter in trainable:
            parameter.requires_grad_(True)
        optimizer = torch.optim.AdamW(trainable, lr=recipe.lr, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
        generator = torch.Generator("cpu").manual_seed(LORA_SEED)
        crops = _CropSource(engine, image, recipe.resolution)
        text = engine.text_embedding(prompt).expand(recipe.batch_size, -1, -1)
        n_train = engine.scheduler.config.num_train_timesteps
        unet.train()
        try:
            for _ in range(recipe.steps):
                latents = torch.cat([crops.sample(generator) for _ in range(recipe.batch_size)])
                noise = torch.randn(latents.shape, generator=generator).to(engine.device)
                timesteps = torch.randint(0, n_train, (recipe.batch_size,), generator=generator).to(engine.device)
                noisy = engine.scheduler.add_noise(latents, noise, timesteps)
                prediction = unet(noisy.to(engine.dtype), timesteps, encoder_hidden_states=text).sample
                loss = F.mse_loss(prediction.float(), noise.float())
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        finally:
            unet.eval()
            for parameter in unet.parameters():
                parameter.requires_grad_(False)


class _CropSource:
    """Random square crops of the short-side-resized image as sampled VAE latents; one posterior per crop offset."""

    def __init__(self, engine, image: Image.Image, resolution: int):
        width, height = image.size
        # torchvision's Resize(size) sets the short side to `size` and truncates the long one.
        size = (resolution, int(resolution * height / width)) if width <= height else (
            int(resolution * width / height), resolution)
        image = image.convert("RGB")
        self.image = image if size == image.size else image.resize(size, Image.BILINEAR)
        self.engine = engine
        self.resolution = resolution
        self.posteriors: dict[tuple[int, int], Any] = {}

    def sample(self, generator: "torch.Generator") -> "torch.Tensor":
        import torch

        width, height = self.image.size
        top = int(torch.randint(0, height - self.resolution + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - self.resolution + 1, (1,), generator=generator))
        if (top, left) not in self.posteriors:
            crop = self.image.crop((left, top, left + self.resolution, top + self.resolution))
            self.posteriors[(top, left)] = self.engine.posterior(crop)
        mean, std = self.posteriors[(top, left)]
        draw = torch.randn(mean.shape, generator=generator).to(device=mean.device, dtype=mean.dtype)
        return (mean + std * draw) * self.engine.vae.config.scaling_factor
