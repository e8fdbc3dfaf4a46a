"""Backbone and LPIPS loading through the same paths users take, on tiny models the tests build."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import textured
from PIL import Image

from tvbench.errors import UnavailableError
from tvbench.features import DinoBackbone, FeatureStore, LpipsModel
from tvbench.features import weights as weights_module
from tvbench.features.dino import materialize_random_backbone

TINY_ARGS = {"embed_dim": 64, "depth": 2, "num_heads": 2, "img_size": 256}


def images(n=2, size=(96, 64)):
    return [Image.fromarray(textured(*size, seed=k)) for k in range(n)]


@pytest.fixture(scope="module")
def timm_dir(tmp_path_factory):
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_dinov3", pretrained=False, **TINY_ARGS)
    folder = tmp_path_factory.mktemp("timm-dinov3")
    save_for_hf(model, str(folder), model_args=TINY_ARGS, safe_serialization=True)
    return folder, model.eval()


@pytest.fixture(scope="module")
def transformers_dir(tmp_path_factory):
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(0)
    config = DINOv3ViTConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                             num_register_tokens=4, patch_size=16, image_size=256)
    model = DINOv3ViTModel(config).eval()
    folder = tmp_path_factory.mktemp("hf-dinov3")
    model.save_pretrained(folder)
    return folder, model


def test_timm_folder_loads_and_matches_the_model(timm_dir):
    folder, model = timm_dir
    backbone = DinoBackbone.from_pretrained(str(folder), device="cpu")
    assert backbone.library == "timm" and backbone.num_prefix_tokens == 5 and backbone.patch_size == 16
    imgs = images()
    feats = backbone.encode(imgs, resolution=128)
    assert feats[0].cls.shape == (64,) and feats[0].patches.shape == (5, 8, 64)  # 96x64 -> 128x80 -> 8x5 patches
    with torch.no_grad():
        tokens = model.forward_features(backbone.preprocess(imgs, 128))
    assert torch.allclose(feats[1].cls, tokens[1, 0], atol=1e-5)
    assert torch.allclose(feats[1].patches.reshape(-1, 64), tokens[1, 5:], atol=1e-5)
    assert backbone.describe()["revision"].startswith("sha256:") and not backbone.random_init


def test_cpu_batches_only_small_inputs_and_batching_never_changes_features(timm_dir, monkeypatch):
    from tvbench.features import dino

    backbone = DinoBackbone.from_pretrained(str(timm_dir[0]), device="cpu")
    monkeypatch.setattr(dino, "CPU_BATCH_MAX_TOKENS", 40)  # 96x64 images: 128 px -> 8x5 = 40 tokens, 160 px -> 60
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert backbone.batches([0, 1, 2], (96, 64), 128) == [[0, 1, 2]]
    assert backbone.batches([0, 1, 2], (96, 64), 160) == [[0], [1], [2]]
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # one thread: singles at any size
    assert backbone.batches([0, 1, 2], (96, 64), 128) == [[0], [1], [2]]
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    imgs = images(3)
    together = backbone.encode(imgs, 128)
    monkeypatch.setattr(dino, "CPU_BATCH_MAX_TOKENS", 0)
    alone = backbone.encode(imgs, 128)
    for a, b in zip(together, alone):
        assert torch.allclose(a.cls, b.cls, atol=1e-5) and torch.allclose(a.patches, b.patches, atol=1e-5)


def test_transformers_folder_loads_and_matches_the_model(transformers_dir):
    folder, model = transformers_dir
    backbone = DinoBackbone.from_pretrained(str(folder), device="cpu")
    assert backbone.library == "transformers" and backbone.num_prefix_tokens == 5
    imgs = images()
    feats = backbone.encode(imgs, resolution=64)
    with torch.no_grad():
        tokens = model(pixel_values=backbone.preprocess(imgs, 64)).last_hidden_state
    assert torch.allclose(feats[0].cls, tokens[0, 0], atol=1e-5)
    assert feats[0].patches.shape == (3, 4, 64)  # 96x64 -> 64x48


def _fake_hub_cache(hf_home, repo_id, folder, commit="0123456789abcdef0123456789abcdef01234567"):
    """Lay out a snapshot the way huggingface_hub caches downloads."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return commit


def test_hub_id_resolves_from_the_hf_cache_offline(timm_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    folder, _ = timm_dir
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    commit = _fake_hub_cache(tmp_path, "timm/tiny-dinov3-test", folder)
    backbone = DinoBackbone.from_pretrained("timm/tiny-dinov3-test", device="cpu")
    assert backbone.spec == "timm/tiny-dinov3-test" and backbone.revision == commit
    assert backbone.encode(images(1), 64)[0].cls.shape == (64,)


def test_uncached_hub_id_offline_gives_the_fix():
    with pytest.raises(UnavailableError) as info:
        DinoBackbone.from_pretrained("timm/not-downloaded-anywhere", device="cpu")
    message = str(info.value)
    assert "not in the Hugging Face cache" in message and "HF_HUB_OFFLINE" in message and "\n" not in message


def test_gated_repo_names_licence_and_token(monkeypatch):
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

    def fake_download(repo_id, revision=None, allow_patterns=None, local_files_only=False):
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        error = GatedRepoError.__new__(GatedRepoError)
        Exception.__init__(error, "401")
        raise error

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_download)
    with pytest.raises(UnavailableError, match="accept its licence.*HF_TOKEN"):
        weights_module.resolve_weights("facebook/dinov3-vitb16-pretrain-lvd1689m")


def test_bad_specs_are_explained(tmp_path):
    with pytest.raises(UnavailableError, match="no/such/thing/here: no such file or folder"):
        DinoBackbone.from_pretrained("./no/such/thing/here")  # a path, not "not in the Hugging Face cache"
    with pytest.raises(UnavailableError, match="neither a local folder nor"):
        DinoBackbone.from_pretrained("not a hub id")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnavailableError, match="no config.json"):
        DinoBackbone.from_pretrained(str(tmp_path / "empty"))


def test_random_backbone_is_deterministic(tmp_path, monkeypatch):
    first = DinoBackbone.from_pretrained("random-tiny", device="cpu")
    monkeypatch.setenv("TVBENCH_CACHE", str(tmp_path / "elsewhere"))
    second = DinoBackbone.from_pretrained("random-tiny", device="cpu")
    assert first.revision == second.revision and first.random_init and second.random_init
    marker = json.loads((materialize_random_backbone("random-tiny") / "tvbench.json").read_text())
    assert marker["random_init"] is True
    a, b = first.encode(images(1), 64)[0], second.encode(images(1), 64)[0]
    assert torch.equal(a.cls, b.cls)


def test_input_size_keeps_aspect_on_patch_multiples():
    backbone = DinoBackbone.from_pretrained("random-tiny", device="cpu")
    assert backbone.input_size(512, 384, 448) == (448, 336)
    assert backbone.input_size(320, 224, 448) == (448, 320)
    assert backbone.input_size(10, 1000, 448) == (16, 448)


def test_feature_store_computes_each_distinct_image_once():
    store = FeatureStore(DinoBackbone.from_pretrained("random-tiny", device="cpu"), resolution=64)
    a, b = images(2)
    same_as_a = Image.fromarray(np.asarray(a).copy())
    store.prefetch([a, b, same_as_a])
    assert store.forwards == 2
    assert store.get(same_as_a) is store.get(a)
    assert store.forwards == 2
    finer = store.get(a, resolution=128)  # another resolution is another forward pass, cached as well
    assert finer.patches.shape[:2] == (5, 8) and store.get(a).patches.shape[:2] == (3, 4)
    assert store.get(a, resolution=128) is finer and store.forwards == 3


def test_feature_store_memory_is_bounded():
    store = FeatureStore(DinoBackbone.from_pretrained("random-tiny", device="cpu"), resolution=32, max_items=2)
    a, b, c = images(3)
    store.get(a), store.get(b), store.get(a), store.get(c)  # c evicts b, the least recently used
    assert store.forwards == 3
    store.get(a)
    assert store.forwards == 3
    store.get(b)
    assert store.forwards == 4


def test_lpips_random_trunk_is_deterministic_and_zero_on_equal_images():
    a, b = images(2)
    first, second = LpipsModel("alex", random_trunk=True), LpipsModel("alex", random_trunk=True)
    assert first.distance(a, a) == 0.0
    assert first.distance(a, b) == second.distance(a, b) > 0
    assert first.describe()["trunk"].startswith("random")


def test_lpips_uses_minus_one_to_one_inputs():
    from tvbench.features.lpips import to_lpips_tensor

    tensor = to_lpips_tensor(Image.fromarray(np.array([[[0, 255, 127]]], dtype=np.uint8)))
    assert tensor.min() == -1.0 and tensor.max() == 1.0


def test_lpips_without_cached_trunk_explains(monkeypatch):
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torch.hub.load_state_dict_from_url", offline)
    with pytest.raises(UnavailableError, match=r"TORCH_HOME.*--smoke"):
        LpipsModel("alex", random_trunk=False)


@pytest.mark.parametrize("random_trunk", [True, False])
def test_lpips_built_without_random_fills_equals_the_library_build(monkeypatch, random_trunk):
    """LpipsModel skips torch's random fills while building (every weight is overwritten after): the result is
    the network lpips itself builds, bit for bit, and torch.nn.init is left as it was."""
    import warnings

    import lpips
    import torch
    import torchvision

    from tvbench.features.lpips import RANDOM_TRUNK_SEED
    from tvbench.features.random_init import deterministic_init_

    torch.manual_seed(0)
    trunk = torchvision.models.alexnet().state_dict()  # stands in for torchvision's ImageNet checkpoint
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", lambda *args, **kwargs: trunk)
    uniform = torch.nn.init.uniform_
    ours = LpipsModel("alex", random_trunk=random_trunk).model
    assert torch.nn.init.uniform_ is uniform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=random_trunk, verbose=False)
    if random_trunk:
        deterministic_init_(reference.net, RANDOM_TRUNK_SEED)
    expected = reference.state_dict()
    assert ours.state_dict().keys() == expected.keys()
    assert all(torch.equal(value, expected[name]) for name, value in ours.state_dict().items())


def test_lpips_equals_the_library_forward_and_reuses_a_reference_across_edits():
    import torch

    from tvbench.features.lpips import to_lpips_tensor

    model = LpipsModel("alex", random_trunk=True)
    target, *edits = images(4)
    for edit in edits:  # the same target object each time, as the scorer passes it for every method's edit
        expected = float(model.model(to_lpips_tensor(edit), to_lpips_tensor(target)).flatten()[0])
        assert model.distance(edit, target) == expected
        x, y = (torch.nn.functional.interpolate(to_lpips_tensor(img), (40, 56), mode="bilinear")
                for img in (target, edit))
        assert model.distance_at(target, edit, (56, 40)) == float(model.model(x, y).flatten()[0])
    assert sum(1 for image, _ in model._recent.values() if image is target) == 2  # full size and 56x40
