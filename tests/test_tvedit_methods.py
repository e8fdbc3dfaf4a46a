"""The methods ``tvedit-qwen`` and ``tvedit-kontext`` on tiny pipelines, through the paths users take: the installed
CLI with ``--set controller=FOLDER``, a rerun that reproduces, the authors' pickle from a (fake, offline) hub
cache, the refusal without weights, and ``controller=random`` only when asked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402
from test_features import _fake_hub_cache  # noqa: E402

from tvbench.cases import load_benchmark  # noqa: E402
from tvbench.errors import ConfigError  # noqa: E402
from tvbench.methods import Runtime, case_seed, create_method, restrict_case  # noqa: E402
from tvbench.testing.tiny_editors import tiny_pipeline_dir  # noqa: E402
from tvbench_adapters.tvedit.checkpoint import save_controller  # noqa: E402
from tvbench_adapters.tvedit.controller import build_controller  # noqa: E402
from tvbench_adapters.tvedit.spec import ControllerSpec  # noqa: E402

torch.set_num_threads(1)
SMALL = {"steps": "2", "working_area": "5120"}


def _tiny_controller(kind: str, seed: int = 0):
    from diffusers import FluxTransformer2DModel, QwenImageTransformer2DModel

    cls = QwenImageTransformer2DModel if kind.startswith("qwen") else FluxTransformer2DModel
    transformer = cls.from_pretrained(str(tiny_pipeline_dir(kind)), subfolder="transformer")
    torch.manual_seed(seed)
    controller = build_controller(ControllerSpec.for_transformer(transformer, blocks=1, injections=2))
    with torch.no_grad():  # trained-looking heads, so the controller visibly steers the edit
        for head in controller.casc.controller_blocks:
            head.weight.mul_(300)
    return controller


@pytest.fixture(scope="module")
def qwen_controller_dir(tmp_path_factory) -> Path:
    return save_controller(_tiny_controller("qwen-image-edit"), tmp_path_factory.mktemp("ctl")).parent


def _edit(name: str, options: dict, case):
    method = create_method(name, {**SMALL, **options})
    method.runtime = method.resolve_runtime(Runtime())
    method.setup()
    try:
        result = method.edit(restrict_case(case, method.inputs), seed=case_seed(0, case.id))
        return method, result
    finally:
        method.teardown()


def test_tvedit_qwen_runs_end_to_end_from_the_cli_and_reproduces(qwen_controller_dir, tmp_path):
    from tvbench.cli import main

    run = "tvedit-qwen-2steps"  # the run's folder (the report's method column) names the steps that differ
    args = ["run", "--method", "tvedit-qwen", "--bench", "sample", "--cases", "real-move-star,sem-lamp-move",
            "--set", f"controller={qwen_controller_dir}", "--set", f"model={tiny_pipeline_dir('qwen-image-edit')}",
            "--set", "steps=2", "--set", "working_area=5120"]
    exe = shutil.which("tvbench", path=str(Path(sys.executable).parent))
    command = ([exe] if exe else [sys.executable, "-m", "tvbench"]) + args + ["--out", str(tmp_path / "a")]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    with pytest.raises(SystemExit) as exit_:  # the rerun, in-process this time, into another folder
        main(args + ["--out", str(tmp_path / "b")])
    assert exit_.value.code == 0
    for case in ("real-move-star", "sem-lamp-move"):
        first = np.asarray(Image.open(tmp_path / "a" / run / f"{case}.png"))
        second = np.asarray(Image.open(tmp_path / "b" / run / f"{case}.png"))
        assert first.shape == (256, 256, 3) and np.array_equal(first, second)
    status = (tmp_path / "a" / run / "status.jsonl").read_text()
    assert '"controller":"ours"' in status and '"resize":"squash"' in status
    manifest = json.loads((tmp_path / "a" / run / "manifest.json").read_text())
    facts = manifest["cases"]["real-move-star"]["facts"]  # what ran, in the run's manifest
    assert facts["guidance"]["true_cfg"] is True
    assert facts["setting"] == "true CFG 3, 2 steps, FlowMatchEuler dynamic shift"


def test_without_weights_the_method_refuses_and_random_is_explicit():
    with pytest.raises(ConfigError) as error:
        create_method("tvedit-qwen", {})
    assert "controller is required" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="resize"):
        create_method("tvedit-kontext", {"controller": "random", "resize": "stretch"})
    method = create_method("tvedit-qwen", {"controller": "random"})
    assert (method.inference_steps(), method.cfg_scale(), method.negative_prompt) == (50, 3.0, " ")  # authors
    lightning = create_method("tvedit-qwen", {"controller": "random", "lightning": "true"})
    assert (lightning.inference_steps(), lightning.cfg_scale()) == (4, 1.0)  # "CFG 1 with 4 steps"


def test_tvedit_kontext_loads_the_authors_pickle_from_the_hub_cache_and_steers(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    controller = _tiny_controller("flux-kontext", seed=2)
    release = tmp_path / "release"
    release.mkdir()
    # the official two-dict layout, plus a top-level key the official loader ignores
    torch.save({**controller.state_dicts(), "step": 1000}, release / "tvedit_kontext.pt")
    _fake_hub_cache(tmp_path, "VCLab-PolyU/TVEdit-test", release)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    case = load_benchmark("sample")["real-move-star"]
    model = str(tiny_pipeline_dir("flux-kontext"))
    method, controlled = _edit("tvedit-kontext", {"controller": "VCLab-PolyU/TVEdit-test", "model": model}, case)
    assert controlled.facts["controller"] == "official" and controlled.image.size == (256, 256)
    assert controlled.facts["controller_extra_keys"] == ["step"]
    guidance = controlled.facts["guidance"]  # distilled guidance, no true CFG
    assert (guidance["true_cfg"], guidance["guidance_scale"], guidance["steps"]) == (False, 2.5, 2)
    assert controlled.facts["setting"] == "guidance 2.5 (distilled), 2 steps, FlowMatchEuler dynamic shift"
    assert method.pipe is None  # torn down
    _, again = _edit("tvedit-kontext", {"controller": "VCLab-PolyU/TVEdit-test", "model": model}, case)
    _, plain = _edit("flux-kontext", {"model": model}, case)
    first, second = np.asarray(controlled.image), np.asarray(again.image)
    assert np.array_equal(first, second)
    assert np.abs(first.astype(int) - np.asarray(plain.image).astype(int)).max() > 0  # the controller acts


def test_keep_mode_follows_the_editor_and_points_reach_the_hook():
    case = load_benchmark("sample")["real-move-star"]
    model = str(tiny_pipeline_dir("qwen-image-edit"))
    method = create_method("tvedit-qwen", {**SMALL, "controller": "random", "model": model, "resize": "keep",
                                           "blocks": "1", "injections": "2"})
    method.runtime = method.resolve_runtime(Runtime())
    method.setup()
    try:
        hook = method.hook
        result = method.edit(restrict_case(case, method.inputs), seed=1)
        assert hook.controller_calls == 2 and hook.reused_calls == 2  # 2 steps of true CFG: once per step
        assert hook.cases is None  # cleared after the call
        assert result.facts["controller"] == "random" and result.facts["resize"] == "keep"
        transformer = method.pipe.transformer
    finally:
        method.teardown()
    assert not transformer._forward_pre_hooks


def _run_qwen(options: dict, case, arguments: bool = True):
    """One tiny tvedit-qwen edit: (pipeline kwargs if asked, result, transformer calls with and without fresh
    residuals)."""
    model = str(tiny_pipeline_dir("qwen-image-edit"))
    method = create_method("tvedit-qwen", {**SMALL, "controller": "random", "model": model, "blocks": "1",
                                           "injections": "2", **options})
    method.runtime = method.resolve_runtime(Runtime())
    method.setup()
    try:
        seed = case_seed(0, case.id)
        kwargs = method.call_arguments(method.make_request([restrict_case(case, method.inputs)], [seed])) \
            if arguments else None
        result = method.edit(restrict_case(case, method.inputs), seed=seed)
        return kwargs, result, (method.hook.controller_calls, method.hook.reused_calls)
    finally:
        method.teardown()


def test_guidance_is_recorded_and_preset_demo_makes_the_demos_call():
    case = load_benchmark("sample")["real-move-star"]
    kwargs, readme, calls = _run_qwen({}, case)
    assert (kwargs["true_cfg_scale"], kwargs["negative_prompt"], kwargs["num_inference_steps"]) == (3.0, [" "], 2)
    assert calls == (2, 2)  # true CFG: a negative call per step, on the positive call's residuals
    guidance = readme.facts["guidance"]
    assert {k: guidance[k] for k in ("preset", "true_cfg", "true_cfg_scale", "negative_prompt", "steps")} == \
        {"preset": "readme", "true_cfg": True, "true_cfg_scale": 3.0, "negative_prompt": " ", "steps": 2}
    assert guidance["scheduler"]["class"] == "FlowMatchEulerDiscreteScheduler"
    assert guidance["scheduler"]["use_dynamic_shifting"] is True

    # gradio_demo.py on_run: true_cfg_scale = the slider (3.0), no negative_prompt without Lightning
    kwargs, demo, calls = _run_qwen({"preset": "demo"}, case)
    assert kwargs["true_cfg_scale"] == 3.0 and "negative_prompt" not in kwargs
    assert calls == (2, 0)  # one transformer call per step: no true CFG, whatever the slider says
    guidance = demo.facts["guidance"]
    assert (guidance["true_cfg"], guidance["true_cfg_scale"], guidance["negative_prompt"]) == (False, 3.0, None)
    assert demo.facts["setting"] == "demo: no CFG (3 set, no negative prompt), 2 steps, FlowMatchEuler dynamic shift"
    _, off, _ = _run_qwen({"true_cfg_scale": "1"}, case)
    assert np.array_equal(np.asarray(demo.image), np.asarray(off.image))  # = the images of CFG off
    assert not np.array_equal(np.asarray(demo.image), np.asarray(readme.image))


def test_preset_demo_with_lightning_and_its_refusals():
    lightning = create_method("tvedit-qwen", {"controller": "random", "preset": "demo", "lightning": "true"})
    assert (lightning.inference_steps(), lightning.cfg_scale(), lightning.negative_prompt_passed()) == (4, 1.0, " ")
    plain = create_method("tvedit-qwen", {"controller": "random", "true_cfg_scale": "1"})
    assert plain.negative_prompt_passed() is None  # the editor passes none where true CFG cannot use it
    # the run's folder, i.e. the report's method column: the name alone for the documented default
    names = {create_method("tvedit-qwen", {"controller": "random", **options}).default_run_name()
             for options in ({}, {"preset": "readme", "steps": "50", "true_cfg_scale": "3"})}
    assert names == {"tvedit-qwen"} and lightning.default_run_name() == "tvedit-qwen-demo-lightning"
    assert plain.default_run_name() == "tvedit-qwen-cfg1"
    assert create_method("tvedit-qwen", {"controller": "random", "preset": "demo", "steps": "30"}) \
        .default_run_name() == "tvedit-qwen-demo-30steps"
    assert create_method("tvedit-kontext", {"controller": "random", "guidance_scale": "3.5", "resize": "keep"}) \
        .default_run_name() == "tvedit-kontext-g3.5-keep"
    for options in ({"resize": "keep"}, {"negative_prompt": "blurry"}, {"conditioning_scale": "0.5"}):
        with pytest.raises(ConfigError, match="preset=demo") as error:
            create_method("tvedit-qwen", {"controller": "random", "preset": "demo", **options})
        assert next(iter(options)) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="readme .* or demo"):
        create_method("tvedit-qwen", {"controller": "random", "preset": "paper"})


def test_the_methods_resize_the_source_once_with_the_official_filter_in_both_modes(monkeypatch):
    """Squash: resized by the method; keep: by Qwen's pipeline, whose own filter (Lanczos) is bicubic for the call."""
    from diffusers.image_processor import VaeImageProcessor

    case = load_benchmark("sample")["real-move-ball"]  # 320 x 224: keep mode's working size has another aspect
    source_size = case.open_image("source").size
    filters = []
    resize = Image.Image.resize

    def spy(image, size, resample=None, *args, **kwargs):
        if image.size != tuple(size):
            filters.append((image.size == source_size, resample))
        return resize(image, size, resample, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    for mode in ("squash", "keep"):
        filters.clear()
        _, result, _ = _run_qwen({"resize": mode}, case, arguments=False)
        inputs = [resample for of_source, resample in filters if of_source]
        assert inputs == [Image.Resampling.BICUBIC], (mode, filters)  # once, bicubic; then the edit goes back
        assert result.image.size == source_size
    assert VaeImageProcessor(vae_scale_factor=16).config.resample == "lanczos"  # diffusers' default, left alone
