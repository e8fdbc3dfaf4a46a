"""Tiny, randomly initialised instruction-editing pipelines, saved like real checkpoints.

Tests and ``benchmarks/`` need Qwen-Image-Edit (plain, 2509, 2511), FLUX.1 Kontext and LongCat-Image-Edit
pipelines without the hub and without 20-billion-parameter weights. The builders here make each pipeline
in memory from the real diffusers/transformers classes (transformer, four-block VAE so latents are 8x
smaller than the image, text encoders in ``eval()`` mode, tokenizers and processors built without any
download) and ``save_pretrained`` it into a folder, so loading goes through the same
``DiffusionPipeline.from_pretrained(folder)`` path as real weights.

API::

    build_tiny_pipeline(kind, folder, *, seed=0) -> Path   # build and save into `folder`, return it
    tiny_pipeline(kind, *, seed=0) -> DiffusionPipeline    # the same pipeline, in memory, unsaved
    tiny_pipeline_dir(kind, *, seed=0) -> Path             # built once per process (temp folder), then reused
    write_tiny_lora(kind, path, *, layout="diffusers", rank=2, seed=0) -> Path  # a LoRA file for that transformer

``kind`` is one of :data:`TINY_KINDS` (the method names of the editors that use them). The same kind and
seed give byte-identical weights on one torch version: every component is drawn from a forked RNG seeded
with ``seed``, so building never disturbs the caller's random state.

The pipelines scale the condition image to about one megapixel whatever ``height``/``width`` say (see
``tvbench_adapters.editors``); run them through the editors with a small ``working_area`` (64x80 takes a
fraction of a second per step on a CPU core), or call Kontext with ``max_area=...`` and ``_auto_resize=False``.
Numbers made with these pipelines are timings and plumbing checks, never quality results.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

TEXT_DIM = 16  # hidden size of the tiny Qwen2.5-VL text encoder = the transformers' joint_attention_dim
CLIP_DIM = T5_DIM = 32  # FLUX's two text encoders
# Qwen2 special tokens the editing pipelines' prompt templates use (the first also pads and ends text).
QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                       "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
LORA_LAYOUTS = ("diffusers", "lightx2v", "peft", "bare")


# ----------------------------------------------------------------------------------------------- tokenizers

def _byte_symbols() -> list[str]:
    from tokenizers.pre_tokenizers import ByteLevel

    return sorted(ByteLevel.alphabet())  # one symbol per byte: any text tokenizes, one token per byte


def qwen2_tokenizer():
    """A byte-level Qwen2 tokenizer (no merges) with the special tokens of Qwen2.5-VL's chat template."""
    from transformers import Qwen2Tokenizer

    vocab = {symbol: i for i, symbol in enumerate(_byte_symbols())}
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    return tokenizer


def qwen2_vl_processor(tokenizer):
    """Qwen2-VL processor; the image side is capped at 4 merged patches of 28 px so the vision tower stays tiny."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    return Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56 * 4),
                            tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor())


def clip_tokenizer(max_length: int = 77):
    """A byte-level CLIP tokenizer (no merges); also the tokenizer of the tiny Stable Diffusion pipelines."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab = {token: i for i, token in enumerate(symbols + [symbol + "</w>" for symbol in symbols])}
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def t5_tokenizer():
    """A unigram T5 tokenizer over printable ASCII (ids 0, 1, 2 are pad, eos, unk as in T5)."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(chr(code), -2.0) for code in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


# -------------------------------------------------------------------------------------------- components

def qwen2_5_vl_text_encoder(tokenizer):
    """A two-layer Qwen2.5-VL whose config carries the in-memory tokenizer's vocabulary and special ids."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default"},  # 16-wide heads: 8 freqs
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=TEXT_DIM,
                           fullatt_block_indexes=[0], patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _flow_scheduler(**overrides):
    from diffusers import FlowMatchEulerDiscreteScheduler

    settings = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                    base_image_seq_len=256, max_image_seq_len=4096)
    settings.update(overrides)
    return FlowMatchEulerDiscreteScheduler(**settings)


def _flux_vae(latent_channels: int):
    """Four down blocks (scale factor 8), like FLUX's and LongCat's VAE."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent_channels,
                         block_out_channels=(8, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, norm_num_groups=4,
                         sample_size=32, use_quant_conv=False, use_post_quant_conv=False,
                         shift_factor=0.0609, scaling_factor=1.5035)


def _qwen_edit(plus: bool, zero_cond_t: bool):
    from diffusers import (AutoencoderKLQwenImage, QwenImageEditPipeline, QwenImageEditPlusPipeline,
                           QwenImageTransformer2DModel)

    tokenizer = qwen2_tokenizer()
    text_encoder = qwen2_5_vl_text_encoder(tokenizer)
    # Qwen-Image's real VAE has dim_mult [1, 2, 4, 4] and three temporal flags: spatial factor 8.
    vae = AutoencoderKLQwenImage(base_dim=8, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    extra = {"zero_cond_t": True} if zero_cond_t else {}
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                              attention_head_dim=16, num_attention_heads=2,
                                              joint_attention_dim=TEXT_DIM, guidance_embeds=False,
                                              axes_dims_rope=(8, 4, 4), **extra)
    # Resolution-dependent (dynamic) shifting with exponential time shift, as Qwen-Image's scheduler uses.
    scheduler = _flow_scheduler(shift=1.0, max_shift=0.9, max_image_seq_len=8192, time_shift_type="exponential")
    cls = QwenImageEditPlusPipeline if plus else QwenImageEditPipeline
    return cls(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
               processor=qwen2_vl_processor(tokenizer), transformer=transformer)


def _flux_kontext():
    from diffusers import FluxKontextPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    clip_tok, t5_tok = clip_tokenizer(), t5_tokenizer()
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=CLIP_DIM, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, vocab_size=len(clip_tok), max_position_embeddings=77,
                                        projection_dim=CLIP_DIM, bos_token_id=len(clip_tok) - 2,
                                        eos_token_id=len(clip_tok) - 1, pad_token_id=len(clip_tok) - 1)).eval()
    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tok), d_model=T5_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                 relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                 decoder_start_token_id=0)).eval()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=T5_DIM,
                                         pooled_projection_dim=CLIP_DIM, axes_dims_rope=[4, 4, 8], guidance_embeds=True)
    return FluxKontextPipeline(scheduler=_flow_scheduler(), vae=_flux_vae(4), text_encoder=clip, tokenizer=clip_tok,
                               text_encoder_2=t5, tokenizer_2=t5_tok, transformer=transformer)


def _longcat_edit():
    from diffusers import LongCatImageEditPipeline, LongCatImageTransformer2DModel

    tokenizer = qwen2_tokenizer()
    # The pipeline hard-codes 16 latent channels: the transformer sees 16 * 2 * 2 packed channels.
    transformer = LongCatImageTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
                                                 attention_head_dim=16, num_attention_heads=2,
                                                 joint_attention_dim=TEXT_DIM, pooled_projection_dim=TEXT_DIM,
                                                 axes_dims_rope=[4, 6, 6])
    return LongCatImageEditPipeline(scheduler=_flow_scheduler(), vae=_flux_vae(16),
                                    text_encoder=qwen2_5_vl_text_encoder(tokenizer), tokenizer=tokenizer,
                                    text_processor=qwen2_vl_processor(tokenizer), transformer=transformer)


_BUILDERS: dict[str, Callable[[], Any]] = {
    "qwen-image-edit": lambda: _qwen_edit(plus=False, zero_cond_t=False),
    "qwen-image-edit-2509": lambda: _qwen_edit(plus=True, zero_cond_t=False),
    "qwen-image-edit-2511": lambda: _qwen_edit(plus=True, zero_cond_t=True),
    "flux-kontext": _flux_kontext,
    "longcat-image-edit": _longcat_edit,
}
TINY_KINDS = tuple(_BUILDERS)


def _check_kind(kind: str) -> None:
    if kind not in _BUILDERS:
        raise ValueError(f"unknown tiny pipeline kind {kind!r}; choose one of {', '.join(TINY_KINDS)}")


# ------------------------------------------------------------------------------------------------ public

def tiny_pipeline(kind: str, *, seed: int = 0) -> "DiffusionPipeline":
    """The tiny pipeline of ``kind`` in memory (float32, CPU), deterministic in ``seed``."""
    import torch

    _check_kind(kind)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _BUILDERS[kind]()


def build_tiny_pipeline(kind: str, folder: str | os.PathLike, *, seed: int = 0) -> Path:
    """Build the tiny pipeline of ``kind`` and ``save_pretrained`` it into ``folder`` (created); return the folder."""
    from tvbench.progress import silence_library_progress

    silence_library_progress()
    folder = Path(folder)
    pipe = tiny_pipeline(kind, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder)
    return folder


_CACHE: dict[tuple[str, int], Path] = {}
_CACHE_ROOT: list[Path] = []


def tiny_pipeline_dir(kind: str, *, seed: int = 0) -> Path:
    """A folder holding the tiny pipeline of ``kind``, built on first use in this process and then reused.

    The folders live in one temporary directory removed when the process exits; treat them as read-only
    (copy one to change it).
    """
    _check_kind(kind)
    key = (kind, seed)
    if key not in _CACHE or not (_CACHE[key] / "model_index.json").is_file():
        if not _CACHE_ROOT:
            root = Path(tempfile.mkdtemp(prefix="tvbench-tiny-editors-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            _CACHE_ROOT.append(root)
        _CACHE[key] = build_tiny_pipeline(kind, _CACHE_ROOT[0] / f"{kind}-seed{seed}", seed=seed)
    return _CACHE[key]


def lora_targets(kind: str) -> dict[str, tuple[int, int]]:
    """The attention projections a tiny LoRA adapts: transformer module name -> (in_features, out_features)."""
    return dict(_lora_targets(kind))


@functools.lru_cache(maxsize=None)
def _lora_targets(kind: str) -> tuple[tuple[str, tuple[int, int]], ...]:
    import torch

    transformer = tiny_pipeline(kind).transformer
    return tuple((name, (module.in_features, module.out_features)) for name, module in transformer.named_modules()
                 if isinstance(module, torch.nn.Linear) and name.endswith(("attn.to_q", "attn.to_k", "attn.to_v")))


def write_tiny_lora(kind: str, path: str | os.PathLike, *, layout: str = "diffusers", rank: int = 2,
                    seed: int = 0, targets: dict[str, tuple[int, int]] | None = None) -> Path:
    """A LoRA safetensors file for the tiny transformer of ``kind``, with keys in one of :data:`LORA_LAYOUTS`.

    - ``diffusers``: ``transformer.<module>.lora_A.weight`` / ``lora_B.weight`` (what ``save_lora_weights`` writes);
    - ``lightx2v``: ``diffusion_model.<module>.lora_down.weight`` / ``lora_up.weight`` / ``alpha``
      (Qwen-Image-Lightning's files);
    - ``peft``: ``base_model.model.<module>.lora_A.weight`` (PEFT's ``save_pretrained``, MotionEdit before conversion);
    - ``bare``: ``<module>.lora_A.weight`` (no prefix at all).

    Both factors are random and non-zero, so a loaded adapter changes the transformer's output.
    """
    import torch
    from safetensors.torch import save_file

    if layout not in LORA_LAYOUTS:
        raise ValueError(f"unknown LoRA layout {layout!r}; choose one of {', '.join(LORA_LAYOUTS)}")
    targets = targets if targets is not None else lora_targets(kind)
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for module, (n_in, n_out) in sorted(targets.items()):
        down = torch.randn(rank, n_in, generator=generator) * 0.5
        up = torch.randn(n_out, rank, generator=generator) * 0.5
        if layout == "lightx2v":
            key = f"diffusion_model.{module}"
            tensors.update({f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up,
                            f"{key}.alpha": torch.tensor(float(rank))})
        else:
            key = {"diffusers": "transformer.", "peft": "base_model.model.", "bare": ""}[layout] + module
            tensors.update({f"{key}.lora_A.weight": down, f"{key}.lora_B.weight": up})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


__all__ = ["LORA_LAYOUTS", "TINY_KINDS", "build_tiny_pipeline", "lora_targets", "tiny_pipeline", "tiny_pipeline_dir",
           "write_tiny_lora"]
