"""Issue 19 item 3: ``tvbench ls`` says what each method needs (weights in the HF cache or a folder, a key, a required
option) and whether it is here, cheaply and without network, through the installed entry point."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import tvbench_command

from tvbench.features.weights import FILE, weights_here
from tvbench.methods import METHODS, list_methods
from tvbench.methods.needs import key_need, option_defaults

COMMIT = "0123456789abcdef0123456789abcdef01234567"
KEYS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "TVBENCH_OPENAI_API_KEY", "OPENAI_API_KEY")


def fake_hf_cache(hf_home: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A snapshot laid out the way huggingface_hub caches downloads (refs/main -> snapshots/COMMIT/...)."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    for name, data in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(data)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def listing(hf_home: Path, **env: str) -> tuple[dict[str, str], str]:
    """``tvbench ls methods`` in a fresh process with this HF_HOME and no keys: the row of each method, by name."""
    environment = {k: v for k, v in os.environ.items() if k not in KEYS and k != "HF_HUB_CACHE"}
    environment.update(HF_HOME=str(hf_home), COLUMNS="500", **env)
    done = subprocess.run([*tvbench_command(), "ls", "methods"], capture_output=True, text=True, env=environment,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        words = line.split()
        if len(words) > 3 and words[0] in METHODS.names():
            rows[words[0]] = " ".join(words[2:])  # "yes|no about..."
    return rows, done.stdout


def test_ls_with_an_empty_cache_marks_weight_and_key_methods_not_ready_and_says_why(tmp_path):
    rows, out = listing(tmp_path / "hf")
    for name in ("identity", "oracle", "tps-warp"):
        assert rows[name].startswith("yes"), rows[name]
    assert rows["qwen-image-edit"].startswith("no") and "needs: Qwen/Qwen-Image-Edit (not in the HF cache)" in \
        rows["qwen-image-edit"]
    assert "black-forest-labs/FLUX.1-Kontext-dev (not in the HF cache)" in rows["flux-kontext"]
    assert "elaine1wan/motionedit/adapter_model_converted.safetensors (not in the HF cache)" in rows["motionedit"]
    assert "controller (required: --set controller=...)" in rows["tvedit-qwen"]
    assert "stabilityai/sd-vae-ft-mse (not in the HF cache)" in rows["gooddrag"]
    assert "openai/clip-vit-base-patch16 (not in the HF cache)" in rows["clipdrag"]
    assert rows["nanobanana-pro"].startswith("no") and "key GOOGLE_API_KEY or GEMINI_API_KEY (not set)" in \
        rows["nanobanana-pro"]
    assert rows["gpt-image"].startswith("no") and "(not set)" in rows["gpt-image"]
    for name in ("qwen-image-edit", "qwen-image-edit-2509", "qwen-image-edit-2511", "longcat-image-edit",
                 "flux-kontext", "motionedit", "tvedit-qwen", "tvedit-kontext", "dragdiffusion", "gooddrag",
                 "clipdrag", "dragnoise", "gpt-image", "nanobanana-pro"):
        assert rows[name].startswith("no"), (name, rows[name])
    assert "not ready: fetch weights once with `hf download ID`" in out


def test_ls_marks_cached_weights_and_a_set_key_ready(tmp_path):
    hf_home = tmp_path / "hf"
    weights = {"model_index.json": b'{"_class_name": "QwenImageEditPipeline"}',
               "transformer/config.json": b"{}", "transformer/diffusion_pytorch_model.safetensors": b"x"}
    fake_hf_cache(hf_home, "Qwen/Qwen-Image-Edit", weights)
    fake_hf_cache(hf_home, "Qwen/Qwen-Image-Edit-2511", {"model_index.json": b"{}"})  # the index, no weights yet
    rows, _ = listing(hf_home, GEMINI_API_KEY="secret")
    assert rows["qwen-image-edit"].startswith("yes"), rows["qwen-image-edit"]
    assert "Qwen/Qwen-Image-Edit (in the HF cache)" in rows["qwen-image-edit"]
    assert rows["qwen-image-edit-2511"].startswith("no")
    assert "Qwen/Qwen-Image-Edit-2511 (in the HF cache without its weight files)" in rows["qwen-image-edit-2511"]
    # the backbone is here, the controller has no default: still not ready, and the row says which is missing
    assert rows["tvedit-qwen"].startswith("no") and "Qwen/Qwen-Image-Edit (in the HF cache)" in rows["tvedit-qwen"]
    assert rows["nanobanana-pro"].startswith("yes") and "key GEMINI_API_KEY (set)" in rows["nanobanana-pro"]
    assert "secret" not in rows["nanobanana-pro"]


def test_weights_here_for_folders_files_and_hub_ids(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = tmp_path / "pipe"
    (folder / "unet").mkdir(parents=True)
    assert weights_here(str(folder), "unet/config.json") == (False, "local folder without unet/config.json")
    (folder / "unet" / "config.json").write_text("{}")
    assert weights_here(str(folder), "unet/config.json") == (True, "local folder")
    assert weights_here(str(tmp_path / "typo"), "model_index.json") == (False, "no such folder")
    assert weights_here("org/absent", "model_index.json") == (False, "not in the HF cache")
    fake_hf_cache(tmp_path, "org/sd", {"unet/config.json": b"{}", "unet/model.safetensors": b"x"})
    assert weights_here("org/sd", "unet/config.json") == (True, "in the HF cache")
    assert weights_here("org/sd@main", "unet/config.json") == (True, "in the HF cache")
    fake_hf_cache(tmp_path, "org/lora", {"sub/a.safetensors": b"x"})
    assert weights_here("org/lora/sub/a.safetensors", FILE) == (True, "in the HF cache")
    assert weights_here("org/lora/sub/b.safetensors", FILE) == (False, "not in the HF cache")
    assert weights_here(str(folder / "unet" / "config.json"), FILE) == (True, "local file")


def test_needs_read_defaults_without_building_the_method(monkeypatch):
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert str(key_need(("GOOGLE_API_KEY", "GEMINI_API_KEY"))) == "key GEMINI_API_KEY (set)"
    tvedit = METHODS.load("tvedit-qwen")  # its __post_init__ refuses the empty default controller
    assert option_defaults(tvedit)["controller"] == "" and option_defaults(tvedit)["model"] == "Qwen/Qwen-Image-Edit"
    rows = {row.name: row for row in list_methods()}
    assert rows["identity"].ready and rows["identity"].needs == ()
    assert rows["tvedit-qwen"].available and not rows["tvedit-qwen"].ready
