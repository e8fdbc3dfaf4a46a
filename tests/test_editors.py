"""The diffusers instruction editors on tiny random pipelines, through the paths users take.

The tiny pipelines are saved with save_pretrained and loaded back either from a folder (``--set model=FOLDER``)
or, under the real hub ids, from a Hugging Face cache laid out the way huggingface_hub writes it (offline).
Every run works at a 5120-pixel working area (64x80 for a 5:4 source) with one or two steps.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from PIL import Image  # noqa: E402
from test_features import _fake_hub_cache  # noqa: E402

from tvbench.cases import load_benchmark  # noqa: E402
from tvbench.errors import ConfigError, UnavailableError  # noqa: E402
from tvbench.methods import Runtime, case_seed, create_method, restrict_case, setup_method  # noqa: E402
from tvbench.runner import read_manifest, run_method  # noqa: E402
from tvbench.testing.tiny_editors import TINY_KINDS, build_tiny_pipeline, write_tiny_lora  # noqa: E402

EDITORS = ("qwen-image-edit", "qwen-image-edit-2509", "qwen-image-edit-2511", "motionedit", "flux-kontext",
           "longcat-image-edit")
HUB_IDS = {"qwen-image-edit": "Qwen/Qwen-Image-Edit", "qwen-image-edit-2509": "Qwen/Qwen-Image-Edit-2509",
           "qwen-image-edit-2511": "Qwen/Qwen-Image-Edit-2511", "flux-kontext": "black-forest-labs/FLUX.1-Kontext-dev",
           "longcat-image-edit": "meituan-longcat/LongCat-Image-Edit"}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SMALL = ["--set", "steps=2", "--set", "working_area=5120"]
FAST = {"steps": "1", "working_area": "5120"}


def tvbench_cmd() -> list[str]:
    exe = shutil.which("tvbench", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "tvbench"]


def run_cli(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(tvbench_cmd() + args, capture_output=True, text=True, env=full_env, timeout=600)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-editors")
    return {kind: build_tiny_pipeline(kind, root / kind) for kind in TINY_KINDS}


@pytest.fixture(scope="module")
def hub_home(tmp_path_factory, tiny_dirs) -> Path:
    """An HF_HOME whose cache holds the tiny pipelines under the real ids, and a MotionEdit LoRA."""
    home = tmp_path_factory.mktemp("hf-home")
    for kind, repo in HUB_IDS.items():
        _fake_hub_cache(home, repo, tiny_dirs[kind], COMMIT)
    lora_dir = tmp_path_factory.mktemp("motionedit-lora")
    write_tiny_lora("qwen-image-edit-2509", lora_dir / "adapter_model_converted.safetensors", layout="diffusers")
    _fake_hub_cache(home, "elaine1wan/motionedit", lora_dir, COMMIT)
    return home


@pytest.fixture
def hub_cache(hub_home, monkeypatch):
    """The fake cache for in-process runs (huggingface_hub reads HF_HOME once, at import)."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_home / "hub"))
    return hub_home


@pytest.fixture(scope="module")
def sample():
    return load_benchmark("sample", progress=False)


def edit_once(name: str, options: dict[str, str], case, *, seed: int = 0):
    """Set up ``name``, edit one case, tear down; return (method, result)."""
    method = create_method(name, {**FAST, **options})
    method.runtime = method.resolve_runtime(Runtime())
    setup_method(method)
    try:
        return method, method.edit(restrict_case(case, method.inputs), seed=case_seed(seed, case.id))
    finally:
        method.teardown()


# ------------------------------------------------------------------------------------------- the CLI

@pytest.fixture(scope="module")
def all_editors_run(hub_home, tmp_path_factory):
    """Every editor through the installed CLI, loading the real hub ids from the (fake) HF cache, offline."""
    out = tmp_path_factory.mktemp("editors-out")
    result = run_cli(["run", "-m", ",".join(EDITORS), "--bench", "sample", "--limit", "2", "--out", str(out),
                      "--device", "cpu", "-q", *SMALL], env={"HF_HOME": str(hub_home), "HF_HUB_OFFLINE": "1"})
    return out, result


def test_every_editor_runs_from_hub_ids_and_returns_the_source_size(all_editors_run, sample):
    out, result = all_editors_run
    assert result.returncode == 0, result.stderr
    for name in EDITORS:
        manifest = read_manifest(out / name)
        assert manifest["counts"]["done"] == 2 and manifest["runtime"]["dtype"] == "float32"
        for case_id, entry in manifest["cases"].items():
            if entry["status"] == "pending":
                continue
            source = sample[case_id].open_image("source")
            assert Image.open(out / name / f"{case_id}.png").size == source.size
            facts = entry["facts"]
            assert facts["steps"] == 2 and facts["weights"] == COMMIT
            assert facts["native_size"][0] * facts["native_size"][1] <= 2 * 5120  # the working area, not 1 MP
            assert set(facts["phases"]) == {"encode", "denoise", "decode"}


def test_library_progress_bars_stay_silent(all_editors_run):
    _, result = all_editors_run
    assert "Loading pipeline components" not in result.stderr and "Loading weights" not in result.stderr
    assert "it/s]" not in result.stderr


def run_in_process(args: list[str]) -> int:
    from tvbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_a_folder_in_another_process_with_batches_reproduces_the_hub_run(all_editors_run, tiny_dirs, tmp_path, sample):
    """Same weights from a folder, in this process, --batch-size 2 (star and gear share a call): same images."""
    first, _ = all_editors_run
    cases = "real-move-ball,real-move-star,real-rotate-gear"
    assert run_in_process(["run", "-m", "qwen-image-edit", "--set", f"model={tiny_dirs['qwen-image-edit']}",
                           "--cases", cases, "--batch-size", "2", "--out", str(tmp_path), "--device", "cpu", "-q",
                           *SMALL]) == 0
    for case_id in ("real-move-ball", "real-move-star"):
        assert np.array_equal(pixels(tmp_path / "qwen-image-edit" / f"{case_id}.png"),
                              pixels(first / "qwen-image-edit" / f"{case_id}.png")), case_id
    # Resuming on another batch size is the same run: the done cases are kept, the new one is edited.
    before = read_manifest(tmp_path / "qwen-image-edit")
    method = create_method("qwen-image-edit", {"model": str(tiny_dirs["qwen-image-edit"]), "steps": "2",
                                               "working_area": "5120"})
    report = run_method(method, sample, tmp_path, case_ids=cases.split(",") + ["real-rotate-card"], progress=False,
                        runtime=Runtime(batch_size=1))
    assert (report.done, report.skipped) == (1, 3)
    assert read_manifest(tmp_path / "qwen-image-edit")["config_hash"] == before["config_hash"]


def test_kontext_from_a_folder_batched_matches_single_edits(all_editors_run, tiny_dirs, tmp_path, sample):
    """Kontext batches too; its VAE decodes a batch with other conv kernels, so pixels may differ by 1/255."""
    first, _ = all_editors_run
    assert run_in_process(["run", "-m", "flux-kontext", "--set", f"model={tiny_dirs['flux-kontext']}", "--cases",
                           "real-move-star,real-rotate-gear", "--batch-size", "2", "--out", str(tmp_path),
                           "--device", "cpu", "-q", *SMALL]) == 0
    batched = pixels(tmp_path / "flux-kontext" / "real-move-star.png")
    single = pixels(first / "flux-kontext" / "real-move-star.png")
    assert np.abs(batched - single).max() <= 2 and (batched != single).mean() < 0.01


@pytest.mark.parametrize("model, expected", [
    ("/nonexistent/qwen-edit", ["/nonexistent/qwen-edit: no such file or folder"]),
    ("someone/not-cached-anywhere", ["not in the Hugging Face cache", "`hf download someone/not-cached-anywhere ",
                                     "or pass a local folder with --set model=PATH"]),
])
def test_missing_weights_are_one_line_and_exit_2(model, expected, tmp_path):
    result = run_cli(["run", "-m", "qwen-image-edit", "--set", f"model={model}", "--limit", "1", "--out",
                      str(tmp_path), "--device", "cpu", "-q"], env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "qwen-image-edit" in lines[0] and all(part in lines[0] for part in expected), lines
    assert not any(tmp_path.iterdir())  # a method that cannot start leaves no run folder behind


# ---------------------------------------------------------------------------------- one method at a time

def test_methods_in_sequence_free_the_previous_pipeline_before_loading_the_next(hub_cache, tmp_path, monkeypatch):
    from tvbench_adapters.editors.base import DiffusersEditor

    loaded: list[tuple[str, weakref.ref]] = []
    alive_at_setup: list[list[str]] = []
    original = DiffusersEditor.setup

    def recording_setup(self):
        alive_at_setup.append([name for name, ref in loaded if ref() is not None])
        original(self)
        loaded.append((self.name, weakref.ref(self.pipe)))

    monkeypatch.setattr(DiffusersEditor, "setup", recording_setup)
    assert run_in_process(["run", "-m", "qwen-image-edit,longcat-image-edit", "--limit", "1", "--out", str(tmp_path),
                           "--device", "cpu", "-q", "--set", "steps=1", "--set", "working_area=5120"]) == 0
    assert [name for name, _ in loaded] == ["qwen-image-edit", "longcat-image-edit"]
    assert alive_at_setup == [[], []]  # qwen's pipeline was gone before longcat's loaded
    gc.collect()
    assert all(ref() is None for _, ref in loaded)


# ------------------------------------------------------------------------------------------------ LoRA

@pytest.fixture(scope="module")
def base_qwen_edit(tiny_dirs, sample):
    return edit_once("qwen-image-edit", {"model": str(tiny_dirs["qwen-image-edit"])}, sample["real-move-star"])[1]


@pytest.mark.parametrize("layout", ["diffusers", "lightx2v", "peft", "bare"])
def test_lora_files_in_every_key_layout_load_and_change_the_edit(layout, tiny_dirs, sample, base_qwen_edit, tmp_path):
    lora = write_tiny_lora("qwen-image-edit", tmp_path / f"{layout}.safetensors", layout=layout)
    method, result = edit_once("qwen-image-edit", {"model": str(tiny_dirs["qwen-image-edit"]), "lora": str(lora),
                                                   "lora_scale": "0.8"}, sample["real-move-star"])
    assert not np.array_equal(np.asarray(result.image), np.asarray(base_qwen_edit.image))


def test_a_lora_for_another_model_is_refused_in_one_line(tiny_dirs, sample, tmp_path):
    foreign = write_tiny_lora("flux-kontext", tmp_path / "kontext.safetensors", layout="bare")
    with pytest.raises(ConfigError) as info:
        edit_once("qwen-image-edit", {"model": str(tiny_dirs["qwen-image-edit"]), "lora": str(foreign)},
                  sample["real-move-star"])
    message = str(info.value)
    assert message.startswith("method 'qwen-image-edit': option lora: kontext.safetensors") and "\n" not in message


def test_kontext_takes_a_lora_too(tiny_dirs, sample, tmp_path):
    lora = write_tiny_lora("flux-kontext", tmp_path / "k.safetensors", layout="peft")
    method, result = edit_once("flux-kontext", {"model": str(tiny_dirs["flux-kontext"]), "lora": str(lora)},
                               sample["real-move-star"])
    assert result.image.size == (256, 256)


def test_motionedit_normalises_a_bare_peft_file_and_refuses_one_that_changes_nothing(tiny_dirs, sample, tmp_path):
    bare = write_tiny_lora("qwen-image-edit-2509", tmp_path / "bare.safetensors", layout="bare")
    _, result = edit_once("motionedit", {"model": str(tiny_dirs["qwen-image-edit-2509"]), "lora": str(bare)},
                          sample["real-move-star"])
    assert result.facts["steps"] == 1
    targets = {"single_transformer_blocks.0.attn.to_q": (32, 32)}  # a module Qwen's transformer does not have
    stray = write_tiny_lora("qwen-image-edit-2509", tmp_path / "stray.safetensors", layout="diffusers",
                            targets=targets)
    with pytest.raises(ConfigError, match="motionedit.*stray.safetensors"):
        edit_once("motionedit", {"model": str(tiny_dirs["qwen-image-edit-2509"]), "lora": str(stray)},
                  sample["real-move-star"])
    with pytest.raises(ConfigError, match="lora cannot be empty"):
        create_method("motionedit", {"lora": ""})


def test_lightning_sets_its_scheduler_steps_and_cfg(tiny_dirs, tmp_path):
    from tvbench_adapters.editors.qwen import LIGHTNING_SCHEDULER

    lora = write_tiny_lora("qwen-image-edit-2509", tmp_path / "lightning.safetensors", layout="lightx2v")
    method = create_method("qwen-image-edit-2509", {"model": str(tiny_dirs["qwen-image-edit-2509"]),
                                                    "lightning": "true", "lightning_lora": str(lora)})
    assert (method.inference_steps(), method.cfg_scale()) == (4, 1.0)
    method.runtime = method.resolve_runtime(Runtime())
    setup_method(method)
    try:
        config = method.pipe.scheduler.config
        assert config["base_shift"] == LIGHTNING_SCHEDULER["base_shift"] and config["time_shift_type"] == "exponential"
        assert method.pipe.get_list_adapters()["transformer"] == ["lightning"]
    finally:
        method.teardown()
    assert method.pipe is None
    assert create_method("qwen-image-edit", {}).inference_steps() == 50
    with pytest.raises(ConfigError, match="lightning is off"):
        create_method("qwen-image-edit", {"lightning_lora": str(lora)})


def test_uncached_lightning_lora_offline_is_one_line(tiny_dirs, hub_cache):
    method = create_method("qwen-image-edit", {"model": str(tiny_dirs["qwen-image-edit"]), "lightning": "true"})
    method.runtime = method.resolve_runtime(Runtime())
    with pytest.raises(UnavailableError) as info:
        setup_method(method)
    message = str(info.value)
    assert "lightx2v/Qwen-Image-Lightning/Qwen-Image-Edit-Lightning-4steps-V1.0-bf16.safetensors" in message
    assert "HF_HUB_OFFLINE" in message and "\n" not in message


# ------------------------------------------------------------------------------- weights and options

def test_weights_of_another_model_are_refused(tiny_dirs):
    for name, folder, expected in [("qwen-image-edit-2511", "qwen-image-edit-2509", "lacks zero_cond_t"),
                                   ("qwen-image-edit", "flux-kontext", "holds a FluxKontextPipeline")]:
        method = create_method(name, {"model": str(tiny_dirs[folder])})
        method.runtime = method.resolve_runtime(Runtime())
        with pytest.raises(ConfigError, match=expected):
            setup_method(method)
        method.teardown()


def test_options_are_checked_when_the_method_is_made():
    with pytest.raises(ConfigError, match="offload"):
        create_method("flux-kontext", {"offload": "disk"})
    with pytest.raises(ConfigError, match="working_area"):
        create_method("longcat-image-edit", {"working_area": "100"})
    method = create_method("qwen-image-edit", {"offload": "model"})
    assert "offload" not in method.config()["options"] and method.runtime_options() == {"offload": "model"}


def test_a_case_without_instruction_fails_alone(tiny_dirs, sample):
    import dataclasses

    case = dataclasses.replace(sample["real-move-star"], instruction=None)
    with pytest.raises(Exception, match="real-move-star.*instruction"):
        edit_once("longcat-image-edit", {"model": str(tiny_dirs["longcat-image-edit"])}, case)


def test_batch_limits_follow_the_pipelines():
    sizes = {name: create_method(name, {}).max_batch_size for name in EDITORS}
    assert sizes["qwen-image-edit"] > 1 and sizes["flux-kontext"] > 1
    assert sizes["qwen-image-edit-2509"] == sizes["qwen-image-edit-2511"] == sizes["motionedit"] == 1
    assert sizes["longcat-image-edit"] == 1


# --------------------------------------------------------------------------------------- working area

def test_working_area_applies_only_inside_its_block_and_thread():
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as plus

    from tvbench_adapters.editors.sizing import NATIVE_AREA, area_dimensions, working_area

    assert area_dimensions(plus, 5120, 80, 64) == (64, 64) and area_dimensions(plus, 6144, 96, 64) == (96, 64)
    seen: dict[str, tuple] = {}
    entered, release = threading.Event(), threading.Event()

    def inside():
        with working_area(5120, plus):
            entered.set()
            release.wait(5)
            seen["inside"] = plus.calculate_dimensions(NATIVE_AREA, 1.0)

    worker = threading.Thread(target=inside)
    worker.start()
    entered.wait(5)
    seen["other thread"] = plus.calculate_dimensions(NATIVE_AREA, 1.0)
    release.set()
    worker.join()
    assert seen == {"inside": (64, 64), "other thread": (1024, 1024)}
    assert plus.calculate_dimensions(384 * 384, 1.0) == (384, 384)  # the VL condition size is never changed


def test_points_map_to_working_pixels():
    from tvbench_adapters.editors.base import EditRequest

    request = EditRequest(cases=[], seeds=[], sources=[], source_size=(320, 224), working_size=(96, 64), images=[],
                          generators=[])
    assert request.to_working(-0.5, -0.5) == (-0.5, -0.5)
    assert request.to_working(319.5, 223.5) == pytest.approx((95.5, 63.5))


def test_listing_names_the_non_commercial_licence():
    result = run_cli(["ls", "methods"])
    assert result.returncode == 0
    assert "Non-Commercial" in result.stdout and "[dev]" in result.stdout
    assert all(name in result.stdout for name in EDITORS)


def test_facts_are_json(all_editors_run):
    out, _ = all_editors_run
    for line in (out / "motionedit" / "status.jsonl").read_text().splitlines():
        json.dumps(json.loads(line)["facts"], allow_nan=False)


@pytest.mark.parametrize("kind", ["qwen-image-edit", "flux-kontext"])
def test_a_subclass_hooks_the_transformer_sees_the_points_and_adds_options(kind, tiny_dirs, sample):
    """The shape the TV-Edit controller takes: more inputs, a forward pre-hook, per-call state, own options."""
    import contextlib
    from dataclasses import dataclass

    from tvbench.methods import METHODS

    base = METHODS.load(kind)

    @dataclass
    class Controlled(base):
        name = f"controlled-{kind}"
        inputs = base.inputs | {"points"}
        strength: float = 0.5

        def configure_pipeline(self, pipe):
            super().configure_pipeline(pipe)
            self.seen, self.points = [], None
            self.add_transformer_hook(self.before_transformer)

        def before_transformer(self, module, args, kwargs):
            self.seen.append((tuple(kwargs["hidden_states"].shape), self.points))
            return args, kwargs

        @contextlib.contextmanager
        def calling(self, request):
            self.points = [request.to_working(x, y) for x, y, _, _ in request.cases[0].points]
            yield
            self.points = None

    method = Controlled(model=str(tiny_dirs[kind]), steps=1, working_area=5120)
    assert method.config()["options"]["strength"] == 0.5
    method.runtime = method.resolve_runtime(Runtime())
    setup_method(method)
    transformer = method.pipe.transformer
    case = sample["real-move-star"]
    result = method.edit(restrict_case(case, method.inputs), seed=1)
    method.teardown()
    assert result.image.size == (256, 256) and method.seen
    shape, points = method.seen[0]
    working = result.facts["native_size"]
    assert points and len(points) == len(case.points)
    x, y = points[0]
    assert x == pytest.approx((case.points[0][0] + 0.5) * working[0] / 256 - 0.5)
    assert not transformer._forward_pre_hooks  # teardown removed the hook (and the phase clock's)


def test_gated_weights_and_out_of_memory_are_one_line_with_the_fix(tiny_dirs, monkeypatch):
    import diffusers
    import torch
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

    def gated(repo_id, revision=None, allow_patterns=None, local_files_only=False):
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        error = GatedRepoError.__new__(GatedRepoError)
        Exception.__init__(error, "401 Client Error")
        raise error

    monkeypatch.setattr("huggingface_hub.snapshot_download", gated)
    method = create_method("flux-kontext", {})
    method.runtime = method.resolve_runtime(Runtime())
    with pytest.raises(UnavailableError) as info:
        setup_method(method)
    assert str(info.value).startswith("method 'flux-kontext': ") and "accept its licence" in str(info.value)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB\nmore details")

    monkeypatch.setattr(diffusers.QwenImageEditPipeline, "from_pretrained", out_of_memory)
    method = create_method("qwen-image-edit", {"model": str(tiny_dirs["qwen-image-edit"])})
    method.runtime = method.resolve_runtime(Runtime())
    with pytest.raises(UnavailableError) as info:
        setup_method(method)
    message = str(info.value)
    assert message.startswith("method 'qwen-image-edit'") and "offload=model" in message and "\n" not in message
