"""CLIPDrag (Jiang et al., ICLR 2025, arXiv:2410.03097): DragDiffusion whose latent update also follows a CLIP
gradient toward the edit text, fused with the drag gradient (global-local motion supervision), plus fast point
tracking.

Each drag iteration: the local gradient ``g_l`` of the motion-supervision loss (moved patch ``min(4, |t - p|)``
ahead, reference = the initial features at the initial handle, patch weight ``(2 r_m + 1)^2``) and the global
gradient ``g_g`` of ``clip_loss_weight * (1 - cos(CLIP(image), CLIP(text)))``, where the image is the VAE decoding
of the DDIM estimate ``x0`` of the current latent (resized by adaptive average pooling to CLIP's input size and
normalised with CLIP's mean and std). With ``c = cos(g_l, g_g)`` and ``s = sqrt(1 - c^2)`` the step uses
``g_l + fuse * s * g_g`` when ``c >= 0`` and ``g_l + fuse * c * g_g`` otherwise. Fast point tracking only admits cells
closer to the target than the current handle.

The edit text is the case's ``instruction``, else its caption (the original's "drag prompt" falls back to the LoRA
prompt, ``utils/ui_utils.py: run_drag``); the UNet and the LoRA are conditioned on the caption. A case with neither
runs without the CLIP term (``clip_guidance`` false in the manifest).

Defaults, from HKUST-LongGroup/CLIPDrag (commit 8fa32ff): its DragBench script
``drag_bench_evaluation/run_clip_drag.py: run_drag_final`` runs 40 iterations with ``r_m`` 4, ``r_p`` 12, fusion
0.3, ``lam`` 0.1, lr 0.01, inversion 0.7, LoRA 80 steps, layer 10 (so the LoRA is DragDiffusion's and is shared
through the cache). The update it calls (``drag_diffusion_update_final``) is missing from the repository; the rule
above is ``utils/drag_utils.py: drag_diffusion_update`` (the UI's path), with ``clip_loss_coef`` 300 and CLIP
ViT-B/16 from ``utils/ui_utils.py`` (here ``openai/clip-vit-base-patch16`` through transformers). As in the
original, the decoded image in [0, 1] is mapped to [0.5, 1] (``.add(1).div(2)``) before CLIP's normalisation, which
sets the size and direction of the CLIP gradient the fusion combines with the drag gradient unnormalised;
``clip_input=unit`` sends the [0, 1] image itself (a corrected variant: its run is named ``clipdrag-unit``). Fast
tracking follows the original exactly, including its edge rules (a handle within one cell of its target may stay;
a window with no closer cell falls to its top-left corner, where ``argmin`` of all-infinite distances points).
Where the original is broken, the port chooses: its DragBench script calls ``drag_diffusion_update_final``, which is
not in the repository (the benchmark set-up here is a reconstruction from that script's arguments and the UI's
update), and with an empty edit text its update never calls ``backward`` (the latent would not move); here such a
case drags without the CLIP term. The UI's defaults differ (800 iterations, ``r_m`` 1, ``r_p`` 3, fusion 0.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tvbench.cases import Case
from tvbench.errors import UnavailableError, one_line

from .dragdiffusion import DragDiffusion
from .method import DragContext
from .optimise import DragRule

DEFAULT_CLIP = "openai/clip-vit-base-patch16"
# OpenAI CLIP's normalisation (the constants of CLIPImageProcessor and of the `clip` package).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_PATTERNS = ("*.json", "*.txt", "model.safetensors")
CLIP_INPUTS = ("original", "unit")


@dataclass
class ClipDrag(DragDiffusion):
    """CLIPDrag on Stable Diffusion 1.5 (native port; defaults in the module docstring)."""

    name = "clipdrag"
    version = "1"
    summary = "CLIPDrag (Jiang et al. 2025): DragDiffusion plus a CLIP gradient toward the instruction, fused"
    inputs = frozenset({"image", "mask", "points", "caption", "instruction"})

    drag_steps: int = 40
    r_m: int = 4
    r_p: int = 12
    fuse: float = 0.3  # weight of the global (CLIP) gradient in the fusion (fuse_cof)
    clip_loss_weight: float = 300.0  # clip_loss_coef
    clip_model: str = DEFAULT_CLIP  # hub id or local folder of a transformers CLIPModel with its tokenizer
    clip_input: str = "original"  # original: [0, 1] -> [0.5, 1] before CLIP's normalisation; unit: [0, 1] as is
    grad_scaler = False  # the original creates a GradScaler and steps without it

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clip_input not in CLIP_INPUTS:
            raise ValueError(f"clip_input must be one of {', '.join(CLIP_INPUTS)}, got {self.clip_input!r}")

    def default_run_name(self) -> str:
        return self.name if self.clip_input == "original" else f"{self.name}-{self.clip_input}"

    def setup(self) -> None:
        super().setup()
        self._clip, self._clip_tokenizer = _load_clip(self.clip_model, self._engine.device, self._engine.dtype)

    def teardown(self) -> None:
        super().teardown()
        self._clip = self._clip_tokenizer = None

    def edit_text(self, case: Case) -> str:
        return case.instruction or case.caption or ""

    def rule(self) -> DragRule:
        return DragRule(steps=self.drag_steps, lr=self.lr, lam=self.lam, r_m=self.r_m, r_p=self.r_p, max_step=4.0,
                        reference_is_original=True, fast_tracking=True)

    def gradient_hook(self, ctx: DragContext):
        text = self.edit_text(ctx.case)
        return self._fusion_hook(ctx, text) if text else None

    def extra_facts(self, ctx: DragContext) -> dict:
        return {"clip_guidance": bool(self.edit_text(ctx.case))}

    def _fusion_hook(self, ctx: DragContext, text: str):
        import torch

        tokens = self._clip_tokenizer([text], padding="max_length", truncation=True, return_tensors="pt",
                                      max_length=self._clip_tokenizer.model_max_length)
        with torch.no_grad():
            text_features = _features(self._clip.get_text_features(input_ids=tokens.input_ids.to(ctx.engine.device)))
            text_features = torch.nn.functional.normalize(text_features.float(), dim=-1)

        def fuse(latent: Any) -> None:
            local = latent.grad
            global_ = self._clip_gradient(ctx, latent, text_features)
            cosine = torch.nn.functional.cosine_similarity(global_.flatten()[None], local.flatten()[None])[0]
            factor = (1 - cosine ** 2).clamp(min=0).sqrt() if cosine >= 0 else cosine
            latent.grad = local + self.fuse * factor * global_

        return fuse

    def _clip_gradient(self, ctx: DragContext, latent, text_features):
        import torch
        import torch.nn.functional as F

        probe = latent.detach().requires_grad_(True)
        with torch.enable_grad():
            eps = ctx.engine.eps(probe, ctx.t, ctx.text)
            _, x0 = ctx.schedule.step(eps, ctx.t, probe)
            image = ctx.engine.decode(x0)
            pixels = clip_pixels(image, self._clip.config.vision_config.image_size, self.clip_input)
            pixels = pixels.to(self._clip.dtype)
            image_features = F.normalize(_features(self._clip.get_image_features(pixel_values=pixels)).float(), dim=-1)
            loss = self.clip_loss_weight * (1 - (image_features * text_features).sum())
            return torch.autograd.grad(loss, probe)[0]


def clip_pixels(image, size: int, clip_input: str = "original"):
    """CLIP's input from a decoded image in [0, 1]: average-pooled to ``size`` (the original's ``ImageAugmentations``
    returns its pooled batch before any augmentation), mapped to [0.5, 1] as the original does (``clip_input``
    ``original``) or left in [0, 1] (``unit``), then normalised with CLIP's mean and std."""
    import torch
    import torch.nn.functional as F

    image = F.adaptive_avg_pool2d(image, (size, size))
    if clip_input == "original":
        image = image.add(1).div(2)  # utils/drag_utils.py: image_aug(pred_image).add(1).div(2)
    mean = torch.tensor(CLIP_MEAN, device=image.device, dtype=image.dtype)[None, :, None, None]
    std = torch.tensor(CLIP_STD, device=image.device, dtype=image.dtype)[None, :, None, None]
    return (image - mean) / std


def _features(output):
    """transformers 5 returns the projected embedding as ``pooler_output``; 4.x returns the tensor itself."""
    return output if hasattr(output, "shape") else output.pooler_output


def _load_clip(spec: str, device, dtype):
    from transformers import CLIPModel, CLIPTokenizer
    from transformers.utils import logging as transformers_logging

    from tvbench.features.stable_diffusion import place
    from tvbench.features.weights import resolve_weights

    transformers_logging.disable_progress_bar()
    weights = resolve_weights(spec, what="CLIP model (clipdrag)", marker="config.json", patterns=CLIP_PATTERNS)
    try:
        model = CLIPModel.from_pretrained(str(weights.path), dtype=dtype)
        tokenizer = CLIPTokenizer.from_pretrained(str(weights.path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnavailableError(f"CLIP model {spec}: cannot load from {weights.path} ({one_line(exc)}); pass a folder "
                               "saved with CLIPModel.save_pretrained and its tokenizer") from None
    return place(model, device, dtype), tokenizer
