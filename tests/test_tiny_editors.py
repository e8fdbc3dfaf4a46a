"""The tiny editing pipelines: saved like real checkpoints, loaded back through from_pretrained, deterministic."""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from tvbench.testing.tiny_editors import (LORA_LAYOUTS, TINY_KINDS, build_tiny_pipeline, lora_targets,  # noqa: E402
                                          tiny_pipeline, tiny_pipeline_dir, write_tiny_lora)

PIPELINE_CLASSES = {"qwen-image-edit": "QwenImageEditPipeline", "qwen-image-edit-2509": "QwenImageEditPlusPipeline",
                    "qwen-image-edit-2511": "QwenImageEditPlusPipeline", "flux-kontext": "FluxKontextPipeline",
                    "longcat-image-edit": "LongCatImageEditPipeline"}


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_each_kind_saves_and_loads_back_as_its_pipeline_with_an_8x_vae(kind, tmp_path):
    from diffusers import DiffusionPipeline

    folder = build_tiny_pipeline(kind, tmp_path / kind)
    assert (folder / "model_index.json").is_file()
    pipe = DiffusionPipeline.from_pretrained(folder)
    assert type(pipe).__name__ == PIPELINE_CLASSES[kind]
    assert pipe.vae_scale_factor == 8
    image = torch.zeros(1, 3, 64, 80)
    if kind.startswith("qwen"):
        latent = pipe.vae.encode(image[:, :, None]).latent_dist.mode()  # Qwen's VAE takes video-shaped input
    else:
        latent = pipe.vae.encode(image).latent_dist.mode()
    assert latent.shape[-2:] == (8, 10)
    if kind.startswith("qwen-image-edit-25"):
        assert pipe.transformer.config.zero_cond_t == (kind == "qwen-image-edit-2511")


def test_text_encoders_built_in_memory_are_in_eval_mode():
    for kind in ("qwen-image-edit", "flux-kontext"):
        pipe = tiny_pipeline(kind)
        encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if kind == "flux-kontext" else [])
        assert all(not encoder.training for encoder in encoders)


def test_same_seed_same_bytes_other_seed_other_weights_and_the_caller_rng_is_untouched(tmp_path):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = build_tiny_pipeline("flux-kontext", tmp_path / "a", seed=0)
    assert torch.equal(torch.rand(1), expected_next)  # building drew from a forked generator
    b = build_tiny_pipeline("flux-kontext", tmp_path / "b", seed=0)
    c = build_tiny_pipeline("flux-kontext", tmp_path / "c", seed=1)
    weights = "transformer/diffusion_pytorch_model.safetensors"
    assert (a / weights).read_bytes() == (b / weights).read_bytes()
    assert (a / weights).read_bytes() != (c / weights).read_bytes()


def test_the_process_cache_builds_once():
    first = tiny_pipeline_dir("flux-kontext")
    assert tiny_pipeline_dir("flux-kontext") == first and (first / "model_index.json").is_file()
    with pytest.raises(ValueError, match="unknown tiny pipeline kind"):
        tiny_pipeline_dir("sdxl")


def test_qwen_tokenizer_keeps_special_tokens_whole():
    from tvbench.testing.tiny_editors import qwen2_tokenizer

    tokenizer = qwen2_tokenizer()
    ids = tokenizer("<|im_start|>ab<|image_pad|>", add_special_tokens=False)["input_ids"]
    assert len(ids) == 4 and tokenizer.convert_ids_to_tokens(ids[-1]) == "<|image_pad|>"


def test_kontext_edits_at_a_small_working_area():
    from PIL import Image

    pipe = tiny_pipeline("flux-kontext")
    pipe.set_progress_bar_config(disable=True)
    image = Image.new("RGB", (80, 64), (120, 30, 200))
    out = pipe(image=image, prompt="add a hat", height=64, width=80, max_area=64 * 80, _auto_resize=False,
               num_inference_steps=1, generator=torch.Generator().manual_seed(0)).images[0]
    assert out.size == (80, 64)


@pytest.mark.parametrize("layout", LORA_LAYOUTS)
def test_lora_files_in_every_key_layout(layout, tmp_path):
    targets = lora_targets("qwen-image-edit")
    assert targets and all(name.startswith("transformer_blocks.") for name in targets)
    keys = set(load_file(write_tiny_lora("qwen-image-edit", tmp_path / "x.safetensors", layout=layout)))
    module = sorted(targets)[0]
    expected = {"diffusers": f"transformer.{module}.lora_A.weight", "peft": f"base_model.model.{module}.lora_B.weight",
                "bare": f"{module}.lora_A.weight", "lightx2v": f"diffusion_model.{module}.alpha"}[layout]
    assert expected in keys
