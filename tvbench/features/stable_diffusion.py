"""Stable Diffusion components (UNet, VAE, CLIP text encoder, tokenizer, scheduler) from the hub's diffusers layout.

Shared by the DIFT features (SD 2.1) and the native drag methods (SD 1.5). A hub id goes through the Hugging Face
cache (:func:`tvbench.features.weights.resolve_weights`, honouring ``HF_HOME`` and ``HF_HUB_OFFLINE``); a local
folder written with ``save_pretrained`` loads as is. Only what these users read is fetched: no fp16 variants, no
``.bin`` duplicates, no single-file checkpoints, no safety checker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tvbench.errors import UnavailableError, one_line
from tvbench.features.weights import LocalWeights, resolve_weights

if TYPE_CHECKING:
    import torch

PIPELINE_MARKER = "unet/config.json"
PIPELINE_PATTERNS = (
    "model_index.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/config.json", "text_encoder/model.safetensors",
    "tokenizer/*", "scheduler/*",
)
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def resolve_pipeline(spec: str, what: str) -> LocalWeights:
    """The local folder of a diffusers-layout pipeline (hub id through the cache, or a local folder)."""
    return resolve_weights(spec, what=what, marker=PIPELINE_MARKER, patterns=PIPELINE_PATTERNS)


def require_diffusers(what: str) -> None:
    """One line naming the missing package, before any weights are read."""
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise UnavailableError(f"{what} needs diffusers and transformers ({exc.name} is missing): "
                               "pip install 'tvbench[diffusers]'") from None


def load_components(folder: str, label: str, dtype: "torch.dtype",
                    scheduler_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each component from its sub-folder; the scheduler as a ``DDIMScheduler`` (``scheduler_overrides`` applied)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from diffusers.utils import logging as diffusers_logging
    from transformers import CLIPTextModel, CLIPTokenizer
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    loaders = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel,
               "tokenizer": CLIPTokenizer, "scheduler": DDIMScheduler}
    extra = {"unet": {"torch_dtype": dtype}, "vae": {"torch_dtype": dtype}, "text_encoder": {"dtype": dtype},
             "scheduler": dict(scheduler_overrides or {})}
    parts = {}
    for name in COMPONENTS:
        try:
            parts[name] = loaders[name].from_pretrained(folder, subfolder=name, **extra.get(name, {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UnavailableError(f"{label}: cannot load {name}/ from {folder} ({one_line(exc)}); pass a folder "
                                   "in the diffusers layout with safetensors weights") from None
    return parts


def place(module: "torch.nn.Module", device: "torch.device", dtype: "torch.dtype") -> "torch.nn.Module":
    """Frozen, in eval mode, on ``device``; cast only when loading did not already give ``dtype``."""
    module.requires_grad_(False)
    module = module.eval().to(device)
    return module if next(module.parameters()).dtype == dtype else module.to(dtype)
