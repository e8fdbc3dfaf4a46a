"""Qwen-Image-Edit (August 2025), Qwen-Image-Edit-2509 and -2511, and MotionEdit (a LoRA on 2509).

Qwen-Image-Edit is a 20B MMDiT (Qwen-Image) conditioned on a Qwen2.5-VL-7B encoding of the instruction and
the source image, plus the source's VAE latents; Apache-2.0 weights. Defaults come from the official usage
code in the QwenLM/Qwen-Image README (https://github.com/QwenLM/Qwen-Image, sections "Qwen-Image-Edit",
"Qwen-Image-Edit-2509", "Qwen-Image-Edit-2511"), the same snippets as the Hugging Face model cards:

====================  ===========================  =====  ==============  ===============
method                pipeline                     steps  true_cfg_scale  negative_prompt
====================  ===========================  =====  ==============  ===============
qwen-image-edit       QwenImageEditPipeline        50     4.0             " "
qwen-image-edit-2509  QwenImageEditPlusPipeline    40     4.0             " "
qwen-image-edit-2511  QwenImageEditPlusPipeline    40     4.0             " "
motionedit            QwenImageEditPlusPipeline    28     4.0             " "
====================  ===========================  =====  ==============  ===============

The 2509/2511 snippets also pass ``guidance_scale=1.0``; their transformers have no guidance embedding, so
diffusers ignores it (with a warning) and it is not passed here. 2511's transformer is built with
``zero_cond_t`` (diffusers >= 0.37); the adapters check that the weights match the method's name.

**Lightning** (``--set lightning=true``): the 4-step distilled LoRA of lightx2v, with the scheduler the
authors distilled with and true CFG off, as in ModelTC/Qwen-Image-Lightning's ``generate_with_diffusers.py``
(FlowMatchEulerDiscreteScheduler with base_shift = max_shift = ln 3 "We use shift=3 in distillation",
exponential time shift, shift_terminal None, base/max image sequence 256/8192) and its README's "Run 4-step
Edit Model" (``--steps 4 --cfg 1.0``). Files: ``lightx2v/Qwen-Image-Lightning``
``Qwen-Image-Edit-Lightning-4steps-V1.0-bf16.safetensors`` (plain),
``Qwen-Image-Edit-2509/Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors`` (2509), and
``lightx2v/Qwen-Image-Edit-2511-Lightning`` ``Qwen-Image-Edit-2511-Lightning-4steps-V1.0-bf16.safetensors``
(2511). ``steps`` and ``true_cfg_scale`` left unset follow the card (50/40 and 4.0) or Lightning (4 and 1.0).

**MotionEdit** (Wan et al., CVPR 2026, arXiv:2512.10284): the MotionNFT LoRA ``elaine1wan/motionedit``
(``adapter_model_converted.safetensors``, weight 1) on Qwen-Image-Edit-2509, called with 28 steps, true CFG
4.0 and negative prompt " " as in elainew728/motion-edit ``examples/run_inference_single.py``.

Working size: the pipelines scale the source to about 1024^2 pixels with its aspect ratio (multiples of
32) inside ``__call__``; ``working_area`` changes that area for this adapter's calls only (see ``sizing.py``).
QwenImageEditPipeline batches images of one size (``--batch-size``); QwenImageEditPlusPipeline refuses
batches larger than one, so 2509, 2511 and MotionEdit edit one case per call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from tvbench.errors import ConfigError
from tvbench_adapters.editors.base import DiffusersEditor, EditRequest
from tvbench_adapters.editors.lora import activate, load_lora

# ModelTC/Qwen-Image-Lightning, generate_with_diffusers.py (the scheduler the 4- and 8-step LoRAs were distilled for).
LIGHTNING_SCHEDULER = {
    "base_image_seq_len": 256, "base_shift": math.log(3), "invert_sigmas": False, "max_image_seq_len": 8192,
    "max_shift": math.log(3), "num_train_timesteps": 1000, "shift": 1.0, "shift_terminal": None,
    "stochastic_sampling": False, "time_shift_type": "exponential", "use_beta_sigmas": False,
    "use_dynamic_shifting": True, "use_exponential_sigmas": False, "use_karras_sigmas": False,
}
LIGHTNING_STEPS = 4
LIGHTNING_TRUE_CFG = 1.0


@dataclass
class QwenImageEdit(DiffusersEditor):
    """Qwen-Image-Edit: 50 steps, true CFG 4.0, negative prompt " " (QwenLM/Qwen-Image README)."""

    name = "qwen-image-edit"
    summary = "Qwen-Image-Edit (20B MMDiT + Qwen2.5-VL-7B), instruction editing; Apache-2.0"
    licence = "Apache-2.0"
    pipeline_class = "QwenImageEditPipeline"
    area_module = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit"
    max_batch_size = 8  # the pipeline batches images of one size; --batch-size picks how many fit in memory
    card_steps: ClassVar[int] = 50
    card_true_cfg: ClassVar[float] = 4.0
    zero_cond_t: ClassVar[bool] = False
    lightning_file: ClassVar[str] = ("lightx2v/Qwen-Image-Lightning/"
                                     "Qwen-Image-Edit-Lightning-4steps-V1.0-bf16.safetensors")

    model: str = "Qwen/Qwen-Image-Edit"
    steps: int | None = None  # None: the card's (50 here), or 4 with lightning
    true_cfg_scale: float | None = None  # None: the card's 4.0, or 1.0 with lightning
    negative_prompt: str = " "
    lora: str = ""  # a LoRA file (.safetensors path, or org/name/file.safetensors on the hub); "" = none
    lora_scale: float = 1.0
    lightning: bool = False  # the 4-step Lightning LoRA with its scheduler, true CFG 1.0 and 4 steps
    lightning_lora: str = ""  # another Lightning file than the official one for this model

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lightning_lora and not self.lightning:
            raise ConfigError(f"method {self.name!r}: lightning_lora is set but lightning is off; "
                              "add --set lightning=true")

    def inference_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return LIGHTNING_STEPS if self.lightning else self.card_steps

    def cfg_scale(self) -> float:
        if self.true_cfg_scale is not None:
            return self.true_cfg_scale
        return LIGHTNING_TRUE_CFG if self.lightning else self.card_true_cfg

    def lora_files(self) -> list[tuple[str, str, str]]:
        return ([("lightning_lora", self.lightning_lora or self.lightning_file, "lightning LoRA")] if self.lightning
                else []) + ([("lora", self.lora, "option lora")] if self.lora else [])

    def configure_pipeline(self, pipe: Any) -> None:
        super().configure_pipeline(pipe)
        has_zero_cond_t = bool(getattr(pipe.transformer.config, "zero_cond_t", False))
        if has_zero_cond_t != self.zero_cond_t:
            raise ConfigError(f"{self.model}: its transformer {'has' if has_zero_cond_t else 'lacks'} zero_cond_t, "
                              f"so it is not the model {self.name} stands for (default {self.model_default()})")
        weights: dict[str, float] = {}
        if self.lightning:
            from diffusers import FlowMatchEulerDiscreteScheduler

            pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(LIGHTNING_SCHEDULER)
            load_lora(pipe, self.lightning_lora or self.lightning_file, adapter="lightning", what="lightning LoRA")
            weights["lightning"] = 1.0
        if self.lora:
            load_lora(pipe, self.lora, adapter="lora", what="option lora")
            weights["lora"] = self.lora_scale
        activate(pipe, weights)

    def call_arguments(self, request: EditRequest) -> dict[str, Any]:
        kwargs = super().call_arguments(request)
        scale = self.cfg_scale()
        kwargs["true_cfg_scale"] = scale
        if scale > 1:  # the negative prompt only matters (and is only encoded) under true CFG
            batch = len(request.cases)
            kwargs["negative_prompt"] = [self.negative_prompt] * batch if self.max_batch_size > 1 \
                else self.negative_prompt
        return kwargs


@dataclass
class QwenImageEdit2509(QwenImageEdit):
    """Qwen-Image-Edit-2509: 40 steps, true CFG 4.0, negative prompt " " (QwenLM/Qwen-Image README)."""

    name = "qwen-image-edit-2509"
    summary = "Qwen-Image-Edit-2509 (20B MMDiT + Qwen2.5-VL-7B), instruction editing; Apache-2.0"
    pipeline_class = "QwenImageEditPlusPipeline"
    area_module = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus"
    max_batch_size = 1  # QwenImageEditPlusPipeline raises for batches larger than one
    card_steps = 40
    lightning_file = ("lightx2v/Qwen-Image-Lightning/Qwen-Image-Edit-2509/"
                      "Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors")

    model: str = "Qwen/Qwen-Image-Edit-2509"


@dataclass
class QwenImageEdit2511(QwenImageEdit2509):
    """Qwen-Image-Edit-2511: 40 steps, true CFG 4.0, negative prompt " " (QwenLM/Qwen-Image README)."""

    name = "qwen-image-edit-2511"
    summary = "Qwen-Image-Edit-2511 (20B MMDiT + Qwen2.5-VL-7B, zero_cond_t), instruction editing; Apache-2.0"
    zero_cond_t = True
    lightning_file = ("lightx2v/Qwen-Image-Edit-2511-Lightning/"
                      "Qwen-Image-Edit-2511-Lightning-4steps-V1.0-bf16.safetensors")

    model: str = "Qwen/Qwen-Image-Edit-2511"


MOTIONEDIT_LORA = "elaine1wan/motionedit/adapter_model_converted.safetensors"


@dataclass
class MotionEdit(QwenImageEdit2509):
    """MotionEdit (MotionNFT LoRA on Qwen-Image-Edit-2509): 28 steps, true CFG 4.0, negative " ", LoRA weight 1.

    Defaults from elainew728/motion-edit ``examples/run_inference_single.py``. The LoRA goes through the same
    checked loading as ``lora``: if its keys do not reach the transformer the run is refused, never run as
    plain 2509.
    """

    name = "motionedit"
    summary = "MotionEdit: MotionNFT LoRA on Qwen-Image-Edit-2509, motion-centric instruction editing"
    card_steps = 28

    lora: str = MOTIONEDIT_LORA

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lora.strip():
            raise ConfigError(f"method {self.name!r} is its LoRA on Qwen-Image-Edit-2509: option lora cannot be "
                              f"empty (default {MOTIONEDIT_LORA}); use qwen-image-edit-2509 for the base model")
