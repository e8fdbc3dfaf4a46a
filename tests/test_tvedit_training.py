"""``tvbench train tvedit`` on tiny Qwen-Image-Edit / FLUX.1 Kontext pipelines, on the CPU: the loss goes down,
a killed run resumes onto the same curve, two gloo processes equal one with twice the accumulation, the
Beta schedule, bidirectional pairs, the feature cache, a controlled edit through a real pipeline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from tvbench.cases import Benchmark, load_benchmark, write_folder  # noqa: E402
from tvbench.errors import ConfigError  # noqa: E402
from tvbench.testing.tiny_editors import tiny_pipeline_dir  # noqa: E402
from tvbench_adapters.tvedit.training.data import REVERSE_SUFFIX, training_pairs  # noqa: E402
from tvbench_adapters.tvedit.training.loop import Trainer, TrainConfig  # noqa: E402
from tvbench_adapters.tvedit.training.schedule import BetaSchedule  # noqa: E402

torch.set_num_threads(1)
TINY = dict(blocks=1, injections=2, resolution=64, log_with="none", progress=False, lr=3e-3)


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """Six cases of the bundled benchmark, as a folder (training reads every pair once into the cache)."""
    sample = load_benchmark("sample")
    cases = sorted(sample, key=lambda case: case.id)[:6]
    folder = tmp_path_factory.mktemp("bench")
    write_folder(Benchmark(name="tvedit-train", spec=str(folder), cases=cases), folder, overwrite=True)
    return folder


@pytest.fixture(scope="module")
def shared(tmp_path_factory, bench):
    """One tiny pipeline and one feature cache for every run of this module (the cache is content-keyed)."""
    return {"model": str(tiny_pipeline_dir("qwen-image-edit")), "cache": tmp_path_factory.mktemp("cache"),
            "data": str(bench)}


def _config(shared, output, **options) -> TrainConfig:
    return TrainConfig(backbone="qwen", data=shared["data"], output=output, model=shared["model"],
                       cache_dir=shared["cache"], **{**TINY, **options})


def _cli(shared, output, steps, *extra) -> list[str]:
    return ["train", "tvedit", "--backbone", "qwen", "--data", shared["data"], "--output", str(output),
            "--model", shared["model"], "--cache-dir", str(shared["cache"]), "--steps", str(steps),
            "--blocks", "1", "--injections", "2", "--resolution", "64", "--lr", "3e-3", "--log-with", "none", "-q",
            *extra]


def _losses(output: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (output / "loss.jsonl").read_text().splitlines()]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_beta_schedule_hits_its_endpoints():
    schedule = BetaSchedule()
    assert schedule.parameters(0) == (20.0, 2.0)
    assert schedule.alpha(20_000) == pytest.approx(12.5)  # linear in the step
    assert schedule.parameters(40_000) == (5.0, 2.0) and schedule.parameters(80_000) == (5.0, 2.0)
    import numpy as np

    rng = np.random.default_rng(0)
    early = [schedule.sample(0, rng) for _ in range(4000)]
    late = [schedule.sample(50_000, rng) for _ in range(4000)]
    assert abs(np.mean(early) - 20 / 22) < 0.01 and abs(np.mean(late) - 5 / 7) < 0.01


def test_bidirectional_pairs_and_refusals():
    sample = sorted(load_benchmark("sample"), key=lambda case: case.id)
    case = sample[0]
    with pytest.raises(ConfigError, match=f"case '{case.id}'.*reverse_instruction"):
        training_pairs([case], bidirectional=True)
    reverse = type(case)(**{**case.__dict__, "meta": {**case.meta, "reverse_instruction": "undo it"}})
    forward, backward = training_pairs([reverse], bidirectional=True)
    assert backward.id == case.id + REVERSE_SUFFIX and backward.instruction == "undo it"
    assert backward.source == case.target and backward.target == case.source
    assert backward.pairs[0] == (forward.pairs[0][2], forward.pairs[0][3], forward.pairs[0][0], forward.pairs[0][1])
    no_target = type(case)(**{**case.__dict__, "target": None})
    with pytest.raises(ConfigError, match="no target image"):
        training_pairs([no_target])


def test_training_lowers_the_held_out_loss_and_caches_features(shared, tmp_path):
    summary = Trainer(_config(shared, tmp_path / "run", steps=8, effective_batch=4, val_cases=2, val_every=8,
                              val_edits=False)).run()
    curve = [json.loads(line) for line in (tmp_path / "run" / "validation.jsonl").read_text().splitlines()]
    assert [record["step"] for record in curve] == [0, 8]
    assert curve[1]["loss"] < 0.95 * curve[0]["loss"]  # fixed noise and t on held-out pairs
    assert len(_losses(tmp_path / "run")) == 8 and (tmp_path / "run" / "controller.safetensors").is_file()
    again = Trainer(_config(shared, tmp_path / "again", steps=1, effective_batch=2)).run()
    assert again["cache_misses"] == 0 and again["cache_hits"] > 0  # content-keyed: nothing re-encoded
    assert summary["accumulation"] == 4


def test_killed_run_resumes_onto_the_same_curve(shared, tmp_path):
    steps = 6
    Trainer(_config(shared, tmp_path / "whole", steps=steps, effective_batch=2, checkpoint_every=2)).run()
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "tvbench", *_cli(shared, killed, steps, "--effective-batch", "2",
                                                         "--checkpoint-every", "2")]
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (killed / "checkpoints" / "step-0000002" / "state.json").is_file() and len(_losses(killed)) >= 3:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert len(_losses(killed)) < steps, "the run finished before it could be killed"
    resumed = Trainer(_config(shared, killed, steps=steps, effective_batch=2, checkpoint_every=2)).run()  # the rerun
    assert resumed["resumed_from"] >= 2
    assert _losses(killed) == _losses(tmp_path / "whole")  # bit for bit: same data, noise, t and optimizer state
    # the artefacts too, byte for byte (safetensors' metadata order, JSON key order), and nothing partial left
    for name in ("controller.safetensors", "checkpoints/step-0000006/controller.safetensors",
                 "checkpoints/step-0000006/state.json", "run.json"):
        assert (killed / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert not list(killed.rglob(".partial-*"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_train_like_one_with_twice_the_accumulation(shared, tmp_path):
    from safetensors.torch import load_file

    Trainer(_config(shared, tmp_path / "one", steps=2, effective_batch=4)).run()  # 1 process x 4 accumulation
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
               "-m", "tvbench", *_cli(shared, tmp_path / "two", 2, "--effective-batch", "4")]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 process(es) x 2 accumulation" in done.stderr
    assert _losses(tmp_path / "two") == pytest.approx(_losses(tmp_path / "one"), rel=1e-5)
    one = load_file(str(tmp_path / "one" / "controller.safetensors"))
    two = load_file(str(tmp_path / "two" / "controller.safetensors"))
    assert one.keys() == two.keys()
    for name in one:  # summation order differs; Adam can turn a rounding difference into up to lr per step
        assert torch.allclose(one[name], two[name], rtol=0, atol=1e-4), name  # (seen: at most 6e-6)


def test_rerun_with_other_settings_is_refused(shared, tmp_path, capsys):
    from tvbench.cli import main

    Trainer(_config(shared, tmp_path / "run", steps=1, effective_batch=2)).run()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(_cli(shared, tmp_path / "run", 2, "--effective-batch", "2", "--seed", "7"))
    stderr = capsys.readouterr().err
    assert exit_.value.code == 2 and "seed=0" in stderr and len(stderr.strip().splitlines()) == 1


def _tiny_pipeline_with_controller(name: str):
    """A tiny editor pipeline loaded from its folder, a seeded 1-block controller for it, and sample's first case."""
    from diffusers import DiffusionPipeline

    from tvbench_adapters.tvedit.controller import build_controller
    from tvbench_adapters.tvedit.spec import ControllerSpec

    pipe = DiffusionPipeline.from_pretrained(str(tiny_pipeline_dir(name)))
    pipe.set_progress_bar_config(disable=True)
    torch.manual_seed(0)
    controller = build_controller(ControllerSpec.for_transformer(pipe.transformer, blocks=1, injections=2))
    case = sorted(load_benchmark("sample"), key=lambda case: case.id)[0]
    return pipe, controller, case


def test_controlled_edit_through_the_kontext_pipeline_reproduces(tmp_path):
    from tvbench_adapters.tvedit.edit import controlled_edit

    pipe, controller, case = _tiny_pipeline_with_controller("flux-kontext")
    source = case.open_image("source")
    runs = [controlled_edit(pipe, controller, source, case.instruction, case.points, steps=2, seed=3, cfg=3.5,
                            resize="keep", area=64 * 64) for _ in range(2)]
    assert runs[0].size == (64, 64) and runs[0].tobytes() == runs[1].tobytes()
    assert not pipe.transformer._forward_pre_hooks  # detached after the call
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_qwen_edit_pipeline_runs_the_controller_once_per_cfg_step(monkeypatch):
    """Through QwenImageEditPipeline with true CFG: two transformer calls per step, one controller forward."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit

    from tvbench_adapters.tvedit.attach import attach

    original = pipeline_qwenimage_edit.calculate_dimensions  # the pipeline hard-codes a ~1 MP condition image
    monkeypatch.setattr(pipeline_qwenimage_edit, "calculate_dimensions",
                        lambda area, ratio: original(64 * 80, ratio))
    pipe, controller, case = _tiny_pipeline_with_controller("qwen-image-edit")
    source = case.open_image("source")
    with attach(pipe, controller, case.points, source.size) as handle:
        image = pipe(image=source, prompt=case.instruction, negative_prompt=" ", true_cfg_scale=3.0,
                     num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert (handle.controller_calls, handle.reused_calls) == (2, 2)
    assert image.size[0] * image.size[1] <= 64 * 80 * 1.2


def test_validation_edits_are_saved_and_scored(shared, tmp_path):
    Trainer(_config(shared, tmp_path / "run", steps=1, effective_batch=2, val_cases=1, val_every=1, val_steps=1,
                    val_smoke=True, val_area=64 * 64)).run()
    records = [json.loads(line) for line in (tmp_path / "run" / "validation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1]
    assert all(r["ds_global_tgt_n"] == 1 and r["md_s_n"] == 1 and r["loss"] > 0 for r in records)
    held_out = sorted(load_benchmark(shared["data"]), key=lambda case: case.id)[-1].id
    assert (tmp_path / "run" / "validation" / "step-0000001" / f"{held_out}.png").is_file()


def test_training_and_inference_resize_with_one_filter_the_official_bicubic(monkeypatch):
    """The authors' demo resizes with PIL's default (bicubic); training once used diffusers' Lanczos. Every resize
    of the source, in training (latents, target, Qwen's text condition) and in a controlled edit (both modes),
    is now bicubic, and training encodes exactly the pixels inference hands the pipeline."""
    from PIL import Image

    from tvbench_adapters.tvedit.edit import controlled_edit
    from tvbench_adapters.tvedit.points import prepare_source
    from tvbench_adapters.tvedit.training.backbones import FrozenBackbone

    pipe, controller, case = _tiny_pipeline_with_controller("qwen-image-edit")
    source = case.open_image("source").convert("RGB")
    filters = []
    resize = Image.Image.resize

    def spy(image, size, resample=None, *args, **kwargs):
        if image.size == source.size and tuple(size) != image.size:  # a resize of the source itself
            filters.append(resample)
        return resize(image, size, resample, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    backbone = FrozenBackbone(pipe)
    tokens, _ = backbone.encode_image(source, (64, 64))
    backbone.encode_text(case.instruction, source, (64, 64))
    training = len(filters)
    for mode in ("squash", "keep"):
        controlled_edit(pipe, controller, source, case.instruction, case.points, steps=1, seed=0, cfg=1.0,
                        resize=mode, area=64 * 64)
    assert training >= 2 and len(filters) > training and set(filters) == {Image.Resampling.BICUBIC}, filters
    assert torch.equal(tokens, backbone.encode_image(prepare_source(source, "squash", (64, 64)), (64, 64))[0])
    lanczos = resize(source, (64, 64), Image.Resampling.LANCZOS)
    assert not torch.equal(tokens, backbone.encode_image(lanczos, (64, 64))[0])  # the filter shows in the latents
