"""Stable Diffusion 1.5 on one device, with the operations every native drag method shares.

Components come from a hub id or a local ``save_pretrained`` folder in the diffusers layout (``unet/ vae/
text_encoder/ tokenizer/ scheduler/``), through the Hugging Face cache (``HF_HOME``, ``HF_HUB_OFFLINE``); a missing
or unreachable checkpoint is one error line. The scheduler is the checkpoint's, as a ``DDIMScheduler`` with the
official repositories' settings (:mod:`.schedule`). An optional separate VAE (GoodDrag's ``stabilityai/sd-vae-ft-mse``)
replaces the pipeline's.

Images enter as RGB in [-1, 1] and are encoded with the posterior *mean* times the VAE's scaling factor
(``drag_pipeline.py: image2latent``); the text condition is the CLIP text encoder's last hidden state of the
prompt padded to the tokenizer's length (77), with no classifier-free guidance (guidance scale 1 in every
official drag script).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from tvbench.errors import UnavailableError, one_line

from .attention import source_kv_control
from .hooks import capture_up_block
from .schedule import DDIM_OVERRIDES, DdimSchedule

if TYPE_CHECKING:
    import torch
    from PIL import Image

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
VAE_PATTERNS = ("config.json", "diffusion_pytorch_model.safetensors")
PROMPT_CACHE_SIZE = 16


class DragEngine:
    """UNet, VAE, text encoder, tokenizer and DDIM scheduler, frozen, on ``device`` in ``dtype``."""

    def __init__(self, *, unet, vae, text_encoder, tokenizer, scheduler, device: "torch.device", dtype: "torch.dtype",
                 base: dict[str, Any]):
        from tvbench.features.stable_diffusion import place

        self.unet, self.vae, self.text_encoder = (place(module, device, dtype) for module in (unet, vae, text_encoder))
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.device, self.dtype = device, dtype
        self.base = base
        self._prompts: dict[str, "torch.Tensor"] = {}

    @classmethod
    def load(cls, model: str = DEFAULT_MODEL, *, vae: str = "", device: str = "cpu",
             dtype: str = "float32") -> "DragEngine":
        """Load from a hub id (``org/name[@revision]``, cache first) or a local diffusers-layout folder."""
        from tvbench.device import torch_device, torch_dtype
        from tvbench.features.stable_diffusion import load_components, require_diffusers, resolve_pipeline
        from tvbench.features.weights import resolve_weights

        require_diffusers("the drag methods")
        try:
            import peft  # noqa: F401
        except ImportError:
            raise UnavailableError("the drag methods need peft for the identity LoRA: pip install "
                                   "'tvbench[diffusers]'") from None
        resolved_dtype = torch_dtype(dtype)
        weights = resolve_pipeline(model, what="Stable Diffusion (drag base model)")
        parts = load_components(str(weights.path), f"Stable Diffusion (drag base model) {weights.id}",
                                resolved_dtype, scheduler_overrides=DDIM_OVERRIDES)
        base = {"model": weights.id, "revision": weights.revision}
        if vae:
            from diffusers import AutoencoderKL

            vae_weights = resolve_weights(vae, what="VAE", marker="config.json", patterns=VAE_PATTERNS)
            try:
                parts["vae"] = AutoencoderKL.from_pretrained(str(vae_weights.path), torch_dtype=resolved_dtype)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UnavailableError(f"VAE {vae}: cannot load from {vae_weights.path} ({one_line(exc)})") from None
            base.update(vae=vae_weights.id, vae_revision=vae_weights.revision)
        return cls(**parts, device=torch_device(device), dtype=resolved_dtype, base=base)

    def identity(self) -> dict[str, Any]:
        """The base weights: pipeline id and revision (hub commit or folder fingerprint), and the VAE's if replaced."""
        return dict(self.base)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).replace("torch.", "")

    # -- text and images ------------------------------------------------------------------------------------

    def text_embedding(self, prompt: str) -> "torch.Tensor":
        """``(1, tokens, D)`` for ``prompt`` (cached per prompt)."""
        import torch

        if prompt not in self._prompts:
            tokens = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length,
                                    truncation=True, return_tensors="pt")
            with torch.no_grad():
                hidden = self.text_encoder(tokens.input_ids.to(self.device))[0]
            if len(self._prompts) >= PROMPT_CACHE_SIZE:
                self._prompts.pop(next(iter(self._prompts)))
            self._prompts[prompt] = hidden
        return self._prompts[prompt]

    def pixels(self, image: "Image.Image") -> "torch.Tensor":
        """``(1, 3, H, W)`` in [-1, 1] on the device, in the engine's dtype."""
        import numpy as np
        import torch

        array = np.asarray(image.convert("RGB"), dtype=np.float32)
        tensor = torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1.0
        return tensor.to(device=self.device, dtype=self.dtype)

    def posterior(self, image: "Image.Image") -> tuple["torch.Tensor", "torch.Tensor"]:
        """Mean and standard deviation of the VAE's latent distribution (unscaled)."""
        import torch

        with torch.no_grad():
            distribution = self.vae.encode(self.pixels(image)).latent_dist
        return distribution.mean, distribution.std

    def encode(self, image: "Image.Image") -> "torch.Tensor":
        """The latent of ``image``: posterior mean times the scaling factor."""
        return self.posterior(image)[0] * self.vae.config.scaling_factor

    def decode(self, latents: "torch.Tensor") -> "torch.Tensor":
        """Images in [0, 1], float32, ``(B, 3, H, W)``; differentiable (wrap in ``no_grad`` when not needed)."""
        images = self.vae.decode((latents / self.vae.config.scaling_factor).to(self.dtype)).sample
        return (images.float() / 2 + 0.5).clamp(0, 1)

    # -- the UNet -------------------------------------------------------------------------------------------

    def eps(self, latents: "torch.Tensor", t: int, text: "torch.Tensor") -> "torch.Tensor":
        """Predicted noise (float32) for a batch of latents, every row conditioned on ``text``."""
        text = text.expand(latents.shape[0], -1, -1)
        return self.unet(latents.to(self.dtype), t, encoder_hidden_states=text).sample.float()

    def eps_and_features(self, latents: "torch.Tensor", t: int, text: "torch.Tensor", block: int,
                         size: tuple[int, int]) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Predicted noise and ``up_blocks[block]``'s output resized bilinearly to ``size`` (float32)."""
        import torch.nn.functional as F

        with capture_up_block(self.unet, block) as output:
            eps = self.eps(latents, t, text)
        features = F.interpolate(output.take().float(), size, mode="bilinear")
        return eps, features

    def invert(self, latents: "torch.Tensor", text: "torch.Tensor", schedule: DdimSchedule,
               strength: float) -> "torch.Tensor":
        """DDIM inversion of ``latents`` through the first ``round(strength * n_steps)`` steps (float32)."""
        import torch

        x = latents.float()
        with torch.no_grad():
            for t in list(reversed(schedule.timesteps))[: schedule.actual_steps(strength)]:
                x, _ = schedule.inverse_step(self.eps(x, t, text), t, x)
        return x

    def denoise(self, latents: "torch.Tensor", text: "torch.Tensor", schedule: DdimSchedule, steps: Sequence[int],
                kv_start_layer: int | None = None) -> "torch.Tensor":
        """DDIM-denoise a batch through ``steps`` (indices into the schedule's timesteps).

        With ``kv_start_layer`` the batch is ``[sources..., edits...]`` and the edits read the sources' keys and
        values in self-attention layers ``kv_start_layer`` and up (:mod:`.attention`).
        """
        import contextlib

        import torch

        x = latents.float()
        control = (source_kv_control(self.unet, kv_start_layer) if kv_start_layer is not None
                   else contextlib.nullcontext())
        with torch.no_grad(), control:
            for index in steps:
                t = schedule.timesteps[index]
                x, _ = schedule.step(self.eps(x, t, text), t, x)
        return x

