"""The native drag engine and its four methods, on a tiny random SD-1.5-shaped pipeline saved like a hub checkpoint.

Engine parts are checked against known answers in-process; each method runs end to end through the installed
``tvbench run`` in a subprocess, the way users run it (two at a time, so both cores work).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DRAGBENCH_DEV, textured
from PIL import Image

from tvbench.errors import ConfigError, UnavailableError

pytest.importorskip("diffusers")
pytest.importorskip("peft")

import torch  # noqa: E402

from tvbench_adapters.drag.attention import self_attention_names, source_kv_control  # noqa: E402
from tvbench_adapters.drag.geometry import DragGeometry, working_size  # noqa: E402
from tvbench_adapters.drag.motion import motion_supervision_loss, sample_patch, track_points  # noqa: E402

SAMPLE_CASES = ("real-move-ball", "real-rotate-card")  # 320x224 and 224x320: both orientations, not square
PORTRAIT_CASE = "JH_2023-09-14-1838-08"  # DragBench dev, animals, 512 x 768: 64 x 96 at resolution=64
FEW_STEPS = ["--set", "resolution=64", "--set", "n_steps=4", "--set", "inversion_strength=0.5", "--set",
             "lora_steps=2", "--set", "lora_batch_size=1"]
METHOD_STEPS = {"dragdiffusion": ["drag_steps=3", "kv_start_layer=4"], "dragnoise": ["drag_steps=3"],
                "gooddrag": ["vae=", "drag_end_step=2", "tracks_per_step=2", "drags_per_track=1", "kv_start_layer=4"],
                "clipdrag": ["drag_steps=3", "kv_start_layer=4"]}


# -- fixtures: a tiny pipeline and a small benchmark on disk ----------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tvbench.testing.tiny_sd import save_tiny_clip, save_tiny_sd

    root = tmp_path_factory.mktemp("drag-models")
    return save_tiny_sd(root / "sd15"), save_tiny_clip(root / "clip")


@pytest.fixture(scope="module")
def benches(tmp_path_factory):
    """Two sample cases; and one real portrait DragBench dev case (512 x 768) when the data is here (else a third
    sample case)."""
    from tvbench.cases import Benchmark, load_benchmark, write_folder
    from tvbench.cases.importers import import_benchmark

    root = tmp_path_factory.mktemp("drag-bench")
    sample = load_benchmark("sample")
    write_folder(Benchmark("drag-sample", "sample", [sample[c] for c in SAMPLE_CASES]), root / "sample")
    if DRAGBENCH_DEV.is_dir():
        case_dir = DRAGBENCH_DEV / "animals" / PORTRAIT_CASE
        shutil.copytree(case_dir, root / "raw" / "animals" / case_dir.name)
        import_benchmark("dragbench", root / "raw", root / "one")
    else:
        write_folder(Benchmark("drag-one", "sample", [sample["real-bend-lamp"]]), root / "one")
    return root / "sample", root / "one"


def tvbench_command(method: str, bench: Path, out: Path, models, *extra: str) -> list[str]:
    """The installed entry point, as a user types it (``python -m tvbench`` where the script is not on PATH)."""
    sd15, clip = models
    settings = [f"model={sd15}", *METHOD_STEPS[method]] + ([f"clip_model={clip}"] if method == "clipdrag" else [])
    program = [shutil.which("tvbench")] if shutil.which("tvbench") else [sys.executable, "-m", "tvbench"]
    return [*program, "run", "-m", method, "--bench", str(bench), "--out", str(out), "-q", *FEW_STEPS,
            *[arg for s in settings for arg in ("--set", s)], *extra]


@pytest.fixture(scope="module")
def run_env(tmp_path_factory):
    """Threads pinned, offline, and a LoRA cache of this module's own (so the first run trains)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "TVBENCH_CACHE": str(tmp_path_factory.mktemp("drag-cache"))}


def status_lines(run_dir: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in (run_dir / "status.jsonl").read_text().splitlines()]
    return {line["case"]: line for line in lines}  # the last record of each case


def images(run_dir: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.asarray(Image.open(p)) for p in sorted(run_dir.glob("*.png"))}


@pytest.fixture(scope="module")
def cli_runs(models, benches, run_env, tmp_path_factory):
    """Every method through ``tvbench run``, in two lanes so both cores work (and at most two processes live).

    Lane 1: dragdiffusion on the two sample cases, killed once its first image is written, then the same command
    again (it must resume), then clipdrag on the first case (DragDiffusion trained its LoRA). Lane 2: gooddrag,
    then dragnoise twice (the second into another folder, to compare bytes), on the real portrait case.
    """
    from concurrent.futures import ThreadPoolExecutor

    out = tmp_path_factory.mktemp("drag-runs")

    def run(method: str, bench: Path, *extra: str) -> tuple[str, int]:
        result = subprocess.run(tvbench_command(method, bench, out, models, *extra), env=run_env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        return result.stdout, result.returncode

    with ThreadPoolExecutor(max_workers=1) as lane_2:
        background = lane_2.submit(lambda: {**{method: run(method, benches[1]) for method in ("gooddrag", "dragnoise")},
                                            "dragnoise-again": run("dragnoise", benches[1], "--run-name",
                                                                   "dragnoise-again")})
        killed = subprocess.Popen(tvbench_command("dragdiffusion", benches[0], out, models), env=run_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first_image = out / "dragdiffusion" / f"{SAMPLE_CASES[0]}.png"
        deadline = time.monotonic() + 600
        while not first_image.exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        killed.kill()
        killed.wait()
        killed_with = sorted(p.stem for p in (out / "dragdiffusion").glob("*.png"))
        results = {"dragdiffusion": run("dragdiffusion", benches[0]),
                   "clipdrag": run("clipdrag", benches[0], "--cases", SAMPLE_CASES[0])}
        results.update(background.result())
    return {"out": out, "killed_with": killed_with, "results": results}


# -- end to end through the CLI ---------------------------------------------------------------------------------

def test_a_killed_run_resumes_and_returns_the_sources_size(cli_runs):
    output, code = cli_runs["results"]["dragdiffusion"]
    assert cli_runs["killed_with"] == [SAMPLE_CASES[0]], "the run was not killed between its two cases"
    assert code == 0 and "1 edited, 1 already done, 0 failed" in output, output
    run_dir = cli_runs["out"] / "dragdiffusion"
    statuses = status_lines(run_dir)
    for case_id, size in zip(SAMPLE_CASES, ((320, 224), (224, 320))):
        assert Image.open(run_dir / f"{case_id}.png").size == size
        facts = statuses[case_id]["facts"]
        # width 64, height by the aspect (truncated); the VAE decodes 8 * (h // 8) rows
        assert facts["work_size"] == ([64, 44] if size[0] > size[1] else [64, 91])
        assert facts["native_size"] == ([64, 40] if size[0] > size[1] else [64, 88])
        assert facts["precision"] == {"weights": "float32", "drag_autocast": None, "grad_scaler": False}
        assert 0 <= facts["drag_iterations"] <= 3 and isinstance(facts["handles_reached"], bool)
        assert set(facts["phases"]) >= {"inversion", "drag", "denoise"} and len(facts["final_handles"]) == 2
        assert facts["kv_layers"] == 6  # the tiny UNet's 10 self-attention layers, controlled from layer 4
    assert statuses[SAMPLE_CASES[0]]["facts"]["lora"] == "trained"
    assert "lora" in statuses[SAMPLE_CASES[0]]["facts"]["phases"]


def test_a_second_run_reuses_the_lora_and_reproduces_the_images(cli_runs, models, benches, run_env, tmp_path,
                                                                monkeypatch):
    """The same options in a fresh folder (in this process): no LoRA phase, and the CLI run's exact pixels."""
    from tvbench.cases import load_benchmark
    from tvbench.methods import create_method
    from tvbench.runner import run_method

    monkeypatch.setenv("TVBENCH_CACHE", run_env["TVBENCH_CACHE"])
    options = dict(s.split("=", 1) for s in FEW_STEPS[1::2] + METHOD_STEPS["dragdiffusion"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CLI runs had one thread; float sums must add up in the same order
    try:
        method = create_method("dragdiffusion", {**options, "model": str(models[0])})
        run_method(method, load_benchmark(str(benches[0])), tmp_path, progress=False)
    finally:
        torch.set_num_threads(threads)
    for case_id, line in status_lines(tmp_path / "dragdiffusion").items():
        assert line["facts"]["lora"] == "cached" and "lora" not in line["facts"]["phases"], case_id
    first, second = images(cli_runs["out"] / "dragdiffusion"), images(tmp_path / "dragdiffusion")
    assert first.keys() == second.keys() == set(SAMPLE_CASES)
    for case_id in SAMPLE_CASES:
        assert np.array_equal(first[case_id], second[case_id]), case_id


def test_clipdrag_reads_the_instruction_and_shares_dragdiffusions_lora(cli_runs):
    output, code = cli_runs["results"]["clipdrag"]
    assert code == 0, output
    facts = status_lines(cli_runs["out"] / "clipdrag")[SAMPLE_CASES[0]]["facts"]
    assert facts["clip_guidance"] is True
    assert facts["lora"] == "cached" and "lora" not in facts["phases"]  # DragDiffusion's recipe, trained already
    assert Image.open(cli_runs["out"] / "clipdrag" / f"{SAMPLE_CASES[0]}.png").size == (320, 224)


@pytest.mark.parametrize("method", ["gooddrag", "dragnoise"])
def test_gooddrag_and_dragnoise_end_to_end(method, cli_runs, benches):
    output, code = cli_runs["results"][method]
    assert code == 0, output
    (case_id, line), = status_lines(cli_runs["out"] / method).items()
    source = Image.open(next((benches[1] / "images").glob("*.source.png")))
    assert Image.open(cli_runs["out"] / method / f"{case_id}.png").size == source.size
    assert line["facts"]["lora"] == "trained" and line["facts"]["drag_iterations"] >= 0
    if method == "gooddrag":
        assert line["facts"]["drag_stop"] in {"reached", "no_change", "drag_end_step"}
    if DRAGBENCH_DEV.is_dir():  # the portrait case runs 64 wide and 96 high, as the originals size it
        assert source.size == (512, 768) and line["facts"]["work_size"] == line["facts"]["native_size"] == [64, 96]
    manifest = json.loads((cli_runs["out"] / method / "manifest.json").read_text())
    assert manifest["config"]["dtype"] == "float32"  # the originals' precision by default


def test_a_portrait_dragbench_case_reproduces_byte_for_byte(cli_runs):
    output, code = cli_runs["results"]["dragnoise-again"]
    assert code == 0, output
    first, again = cli_runs["out"] / "dragnoise", cli_runs["out"] / "dragnoise-again"
    (case_id,) = images(first)
    assert (first / f"{case_id}.png").read_bytes() == (again / f"{case_id}.png").read_bytes()


def test_listing_shows_table_1s_inputs_without_importing_torch():
    code = ("import sys; from tvbench.methods import METHODS; "
            "classes = {n: METHODS.load(n) for n in ('dragdiffusion', 'gooddrag', 'clipdrag', 'dragnoise')}; "
            "assert not {'torch', 'diffusers', 'peft'} & set(sys.modules), 'heavy import'; "
            "from tvbench.methods import list_methods; rows = {r.name: r for r in list_methods()}; "
            "print({n: (rows[n].available, rows[n].inputs) for n in classes})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str({"dragdiffusion": (True, "M+P+T"), "gooddrag": (True, "M+P+T"),
                                         "clipdrag": (True, "M+P+T+I"), "dragnoise": (True, "M+P+T")})


# -- the engine against known answers ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(models):
    from tvbench_adapters.drag.engine import DragEngine

    return DragEngine.load(str(models[0]), device="cpu", dtype="float32")


def test_inversion_then_denoising_with_source_kv_control_reconstructs_the_latent(engine):
    """With a smooth denoiser (the tiny UNet's output layer damped) DDIM inversion is nearly exact, so denoising
    back lands on the source latent; a schedule off by one step misses it by several times more."""
    from tvbench_adapters.drag.schedule import DdimSchedule

    conv_out = engine.unet.conv_out
    saved = conv_out.weight.clone(), conv_out.bias.clone()
    try:
        with torch.no_grad():
            conv_out.weight.mul_(0.02)
            conv_out.bias.zero_()
        latent = engine.encode(Image.fromarray(textured(64, 64, 0)))
        text = engine.text_embedding("a textured square")
        schedule = DdimSchedule(engine.scheduler, 20)
        inverted = engine.invert(latent, text, schedule, 0.5)
        start = schedule.start_index(0.5)
        pair = engine.denoise(torch.cat([inverted, inverted]), text, schedule, range(start, 20), kv_start_layer=4)
        off_by_one = engine.denoise(inverted, text, schedule, range(start + 1, 20))
    finally:
        with torch.no_grad():
            conv_out.weight.copy_(saved[0])
            conv_out.bias.copy_(saved[1])
    error = float((pair[1] - latent[0]).norm() / latent.norm())
    moved = float((inverted - latent).norm() / latent.norm())
    assert torch.equal(pair[0], pair[1])  # identical latents: the edited row reads its own keys and values
    assert error < 0.03 and error < moved / 10
    assert float((off_by_one[0] - latent[0]).norm() / latent.norm()) > 3 * error


def test_ddim_step_matches_diffusers_scheduler(engine):
    from tvbench_adapters.drag.schedule import DdimSchedule

    schedule = DdimSchedule(engine.scheduler, 10)
    generator = torch.Generator().manual_seed(0)
    x, eps = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 4, 8, 8, generator=generator)
    for t in schedule.timesteps[:3] + schedule.timesteps[-1:]:
        expected = engine.scheduler.step(eps, t, x).prev_sample
        assert torch.allclose(schedule.step(eps, t, x)[0].float(), expected, atol=1e-5), t


def test_source_kv_control_changes_only_the_edited_row(engine):
    generator = torch.Generator().manual_seed(1)
    pair = torch.randn(2, 4, 8, 8, generator=generator)
    text = engine.text_embedding("a cat")
    with torch.no_grad():
        free = engine.eps(pair, 500, text)
        with source_kv_control(engine.unet, 4) as controlled:
            tied = engine.eps(pair, 500, text)
        again = engine.eps(pair, 500, text)
    assert controlled and all("up_blocks" in name for name in controlled)
    assert torch.allclose(tied[0], free[0], atol=1e-5) and not torch.allclose(tied[1], free[1], atol=1e-3)
    assert torch.equal(again, free)  # processors restored


def test_self_attention_layers_are_numbered_as_the_original():
    """Stable Diffusion 1.5's layout (2 layers per block): 16 self-attentions, layer 10 opens up_blocks[2]."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(block_out_channels=(8, 8, 16, 16), layers_per_block=2, norm_num_groups=4,
                                cross_attention_dim=8, attention_head_dim=2)
    names = self_attention_names(unet)
    assert len(names) == 16 and names[6].startswith("mid_block")
    assert names[10] == "up_blocks.2.attentions.0.transformer_blocks.0.attn1.processor"
    assert names[0].startswith("down_blocks.0") and names[-1].startswith("up_blocks.3.attentions.2")


def test_motion_supervision_loss_falls_over_iterations(engine):
    """A fixed reference (the original handle features, no tracking) makes the objective stationary: Adam lowers it."""
    from tvbench_adapters.drag.dragdiffusion import latent_forward
    from tvbench_adapters.drag.method import DragContext
    from tvbench_adapters.drag.optimise import DragRule, optimise_drag
    from tvbench_adapters.drag.schedule import DdimSchedule
    from tvbench_adapters.drag.timing import PhaseTimer

    text = engine.text_embedding("a photo")
    schedule = DdimSchedule(engine.scheduler, 10)
    latent = engine.invert(engine.encode(Image.fromarray(textured(64, 64, 0))), text, schedule, 0.5)
    geometry = DragGeometry.of(64, 64, 64)
    handles, targets = geometry.handles_and_targets(((20.0, 30.0, 44.0, 30.0),))
    ctx = DragContext(engine=engine, schedule=schedule, geometry=geometry, text=text, latent=latent,
                      start=schedule.start_index(0.5), handles=handles, targets=targets, mask=None,
                      timer=PhaseTimer(), case=None, feature_block=2)
    rule = DragRule(steps=10, lr=0.01, lam=0.1, r_m=1, r_p=0, reference_is_original=True)
    result = optimise_drag(ctx, latent.clone(), latent_forward(ctx), rule)
    assert result.iterations == 10 and result.handles == handles  # r_p = 0: the handle cannot move
    assert result.losses[-1] < 0.7 * result.losses[0] and min(result.losses[5:]) < min(result.losses[:3])
    assert not torch.equal(result.parameter, latent)


def test_point_tracking_finds_a_feature_moved_by_a_known_offset():
    generator = torch.Generator().manual_seed(0)
    before = torch.randn(1, 16, 24, 32, generator=generator)
    after = torch.roll(before, shifts=(2, -3), dims=(2, 3))  # every feature moved 2 rows down, 3 columns left
    handles = [(10.0, 12.0), (5.0, 20.0)]
    assert track_points(before, after, handles, handles, radius=3) == [(12.0, 9.0), (7.0, 17.0)]
    assert track_points(before, after, handles, handles, radius=1) != [(12.0, 9.0), (7.0, 17.0)]  # out of reach
    # fast tracking: only cells nearer the target qualify; the true match (farther from the target) is refused
    assert track_points(before, after, [(10.0, 12.0)], [(10.0, 12.0)], 3, targets=[(10.0, 20.0)])[0][1] > 12.0


def test_patches_are_bilinear_and_clamped_at_the_border():
    grid = torch.arange(20.0).reshape(1, 1, 4, 5)  # value = 5 * row + col
    assert torch.allclose(sample_patch(grid, 1.5, 2.25, 1)[0, 0],
                          torch.tensor([[3.75, 4.75, 5.75], [8.75, 9.75, 10.75], [13.75, 14.75, 15.75]]))
    corner = sample_patch(grid, 0.0, 0.0, 1)[0, 0]
    assert torch.equal(corner, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [5.0, 5.0, 6.0]]))
    features = torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(3))
    arrived = motion_supervision_loss(features, [(5.0, 5.0)], [(6.0, 6.0)], radius=1, weight=9.0)
    assert float(arrived) == 0.0  # within 2 cells of its target: no term
    assert float(motion_supervision_loss(features, [(5.0, 5.0)], [(5.0, 12.0)], radius=1, weight=9.0)) > 0


def test_working_size_and_point_mapping():
    """Width ``resolution``, height by the aspect, truncated (``store_img``); DragBench's 512-wide images as they are."""
    assert working_size(512, 534, 512) == (512, 534) and working_size(512, 768, 64) == (64, 96)
    assert working_size(320, 224, 64) == (64, 44) and working_size(224, 320, 512) == (512, 731)
    assert working_size(1000, 10, 512) == (512, 5)
    geometry = DragGeometry.of(512, 534, 512)
    assert geometry.work_size == (512, 534) and geometry.supervision_size == (267, 256)  # int(0.5 * full)
    assert geometry.to_supervision(160.0, 112.0) == (56.0, 80.0)  # DragDiffusion: round(p / full * sup_res)
    assert geometry.to_source(56.0, 80.0) == (160.0, 56.0 / 267 * 534)


def test_the_vae_encodes_a_height_that_is_no_multiple_of_8_as_the_originals_do(engine):
    """534 rows enter the VAE as they are: h // 8 latent rows (one-sided padding), 8 * (h // 8) decoded rows."""
    latent = engine.encode(Image.fromarray(textured(64, 67, 0)))
    assert latent.shape[-2:] == (67 // 8, 64 // 8)
    assert engine.decode(latent).shape[-2:] == (8 * (67 // 8), 64)


def test_lora_key_names_everything_that_changes_the_weights():
    from tvbench_adapters.drag.lora import LoraRecipe, lora_key

    image = Image.fromarray(textured(64, 48, 1))
    base = {"model": "tiny", "revision": "sha256:abc"}
    recipe = LoraRecipe(steps=80, lr=5e-4, rank=16, batch_size=4, resolution=512)
    key = lora_key(image, "a dog", base, recipe, "float32")
    assert key == lora_key(image.copy(), "a dog", dict(base), LoraRecipe(80, 5e-4, 16, 4, 512), "float32")
    assert len({key, lora_key(image, "a cat", base, recipe, "float32"),
                lora_key(image.transpose(Image.FLIP_LEFT_RIGHT), "a dog", base, recipe, "float32"),
                lora_key(image, "a dog", {**base, "revision": "sha256:def"}, recipe, "float32"),
                lora_key(image, "a dog", base, LoraRecipe(70, 5e-4, 16, 4, 512), "float32"),
                lora_key(image, "a dog", base, recipe, "bfloat16")}) == 6


def test_hub_id_loads_from_the_hf_cache_offline(models, tmp_path, monkeypatch):
    import huggingface_hub.constants as constants
    from test_features import _fake_hub_cache

    from tvbench_adapters.drag.engine import DragEngine

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    commit = _fake_hub_cache(tmp_path, "tiny/sd15-drag-test", models[0])
    loaded = DragEngine.load("tiny/sd15-drag-test", device="cpu")
    assert loaded.identity() == {"model": "tiny/sd15-drag-test", "revision": commit}


def test_missing_weights_are_one_line():
    from tvbench_adapters.drag.engine import DragEngine

    with pytest.raises(UnavailableError) as info:
        DragEngine.load("someone/sd15-not-downloaded", device="cpu")
    assert "not in the Hugging Face cache" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UnavailableError, match="has no unet/config.json"):
        DragEngine.load(str(Path(__file__).parent), device="cpu")


def test_bad_options_are_refused_before_any_case(models):
    from tvbench.errors import ConfigError
    from tvbench.methods import create_method

    with pytest.raises(ConfigError, match="resolution"):
        create_method("dragdiffusion", {"resolution": "100"})
    with pytest.raises(ConfigError, match="drag_steps"):
        create_method("dragnoise", {"drag_steps": "-1"})
    assert math.isclose(create_method("gooddrag").inversion_strength, 0.75)
    method = create_method("dragdiffusion", {"model": str(models[0]), "feature_block": "4"})
    with pytest.raises(ConfigError, match="feature_block=4, but the UNet has 4 up blocks"):
        method.setup()


# -- fidelity to the originals: precision and CLIPDrag's CLIP input ------------------------------------------------

def test_the_drag_methods_default_to_the_originals_precision_on_cpu_and_cuda():
    """float32 weights on every device; float16 autocast in the drag loop on CUDA only (with the originals' scaler
    rule: CLIPDrag steps without one); --dtype bfloat16 is a departure that autocasts nothing."""
    from types import SimpleNamespace

    from tvbench.methods import create_method
    from tvbench.methods.base import Runtime

    for name in ("dragdiffusion", "gooddrag", "clipdrag", "dragnoise"):
        method = create_method(name, {})
        for device in ("cpu", "cuda:0"):
            assert method.resolve_runtime(Runtime(device=device)).dtype == "float32", (name, device)
        assert method.resolve_runtime(Runtime(device="cuda:0", dtype="bfloat16")).dtype == "bfloat16"
        cuda = SimpleNamespace(device=torch.device("cuda", 0), dtype=torch.float32, dtype_name="float32")
        cpu = SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32, dtype_name="float32")
        half = SimpleNamespace(device=torch.device("cuda", 0), dtype=torch.bfloat16, dtype_name="bfloat16")
        scaled = name != "clipdrag"
        assert method.precision().describe(cuda) == {"weights": "float32", "drag_autocast": "float16",
                                                     "grad_scaler": scaled}, name
        assert method.precision().describe(cpu) == {"weights": "float32", "drag_autocast": None, "grad_scaler": False}
        assert method.precision().describe(half)["drag_autocast"] is None
    assert create_method("qwen-image-edit", {}).resolve_runtime(Runtime(device="cuda:0")).dtype == "bfloat16"
    with pytest.raises(ConfigError, match="drag_autocast"):
        create_method("dragdiffusion", {"drag_autocast": "fp8"})


def test_clipdrags_clip_input_is_the_originals_by_default():
    """``normalize(avgpool(image).add(1).div(2))`` as in CLIPDrag's ``utils/drag_utils.py``; ``unit`` is a named
    variant that runs under its own name."""
    from torchvision import transforms

    from tvbench.methods import create_method
    from tvbench_adapters.drag.clipdrag import CLIP_MEAN, CLIP_STD, clip_pixels

    image = torch.rand(1, 3, 96, 64, generator=torch.Generator().manual_seed(0))
    normalize = transforms.Normalize(mean=list(CLIP_MEAN), std=list(CLIP_STD))
    original = normalize(torch.nn.AdaptiveAvgPool2d((32, 32))(image).add(1).div(2))
    assert torch.allclose(clip_pixels(image, 32), original, atol=1e-6)
    assert torch.allclose(clip_pixels(image, 32, "unit"), normalize(torch.nn.AdaptiveAvgPool2d((32, 32))(image)),
                          atol=1e-6)
    assert create_method("clipdrag", {}).default_run_name() == "clipdrag"
    assert create_method("clipdrag", {"clip_input": "unit"}).default_run_name() == "clipdrag-unit"
    with pytest.raises(ConfigError, match="clip_input"):
        create_method("clipdrag", {"clip_input": "half"})


def test_fast_tracking_keeps_the_originals_edge_rule():
    """Within one cell of its target the handle's own cell scores its squared distance (``fast_point_tracking``)."""
    features = torch.randn(1, 16, 24, 24, generator=torch.Generator().manual_seed(5)) * 10
    handle, target = (12.0, 12.0), (12.0, 13.0)  # the target is the only cell closer; its feature is far
    assert track_points(features, features, [handle], [handle], 3, targets=[target]) == [handle]
