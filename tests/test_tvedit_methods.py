"""The methods ``tvedit-qwen`` and ``tvedit-kontext`` on tiny pipelines, through the paths users take: the installed
CLI with ``--set controller=FOLDER``, a rerun that reproduces, the authors' pickle from a (fake, offline) hub
cache, the refusal without weights, and ``controller=random`` only when asked."""

from __future__ import annotations

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
        first = np.asarray(Image.open(tmp_path / "a" / "tvedit-qwen" / f"{case}.png"))
        second = np.asarray(Image.open(tmp_path / "b" / "tvedit-qwen" / f"{case}.png"))
        assert first.shape == (256, 256, 3) and np.array_equal(first, second)
    status = (tmp_path / "a" / "tvedit-qwen" / "status.jsonl").read_text()
    assert '"controller":"ours"' in status and '"resize":"squash"' in status


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
    torch.save(controller.state_dicts(), release / "tvedit_kontext.pt")  # the official two-dict layout
    _fake_hub_cache(tmp_path, "VCLab-PolyU/TVEdit-test", release)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    case = load_benchmark("sample")["real-move-star"]
    model = str(tiny_pipeline_dir("flux-kontext"))
    method, controlled = _edit("tvedit-kontext", {"controller": "VCLab-PolyU/TVEdit-test", "model": model}, case)
    assert controlled.facts["controller"] == "official" and controlled.image.size == (256, 256)
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
