"""Issue 19, a new user's second contact: a method that cannot start leaves nothing behind and a folder of no edits
is no leaderboard row; everything cheap is checked before any backbone loads; every "can't load" error names the
option to use and the command that downloads the weights; typos get a did-you-mean and fail at once; ``--help``
speaks click, not Python. Through the installed ``tvbench`` where the behaviour only shows there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import tvbench_command

from tvbench.cases import load_benchmark
from tvbench.errors import ResultsError, TvbenchError, UnavailableError, WeightsUnavailable
from tvbench.features.weights import looks_like_path, resolve_weights
from tvbench.methods import Method, create_method
from tvbench.registry import close_matches
from tvbench.runner import run_method
from tvbench.scoring.edits import did_you_mean

API_KEYS = ("TVBENCH_OPENAI_API_KEY", "OPENAI_API_KEY")
FAST_S = 5.0  # a refused command takes ~0.25 s here; the bound leaves room for a loaded machine
TYPE_NAMES = re.compile(r"<(str|int|float|bool|path|list\[[^\]]*\])>", re.IGNORECASE)


def tvbench(*args: str, cwd: Path | None = None, env: dict | None = None, drop: tuple[str, ...] = (),
            timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    """Run the installed entry point; returns the result and its wall time."""
    environment = {key: value for key, value in os.environ.items() if key not in drop}
    environment.update(env or {})
    started = time.perf_counter()
    done = subprocess.run([*tvbench_command(), *args], capture_output=True, text=True, cwd=cwd, env=environment,
                          timeout=timeout)
    return done, time.perf_counter() - started


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@dataclass
class Fragile(Method):
    """Fails at set-up, on every case, or never, as its option says (so each choice is another run)."""

    name = "fragile"
    fails: str = "setup"  # setup | cases | never

    def setup(self) -> None:
        if self.fails == "setup":
            raise RuntimeError("weights missing")

    def edit(self, case, *, seed):
        if self.fails == "cases":
            raise RuntimeError("edit exploded")
        return case.open_image("source")


@pytest.fixture(scope="module")
def sample():
    return load_benchmark("sample")


@pytest.fixture
def qwen_folder(tmp_path) -> Path:
    """A pipeline folder that passes the cheap checks (its model_index.json names the pipeline) and holds nothing else:
    any attempt to load it is recorded by the loader the tests put in place."""
    folder = tmp_path / "qwen-pipeline"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "QwenImageEditPipeline"}))
    return folder


# ------------------------------------------------------------------ 1. a method that cannot start leaves nothing


def test_a_method_that_fails_at_setup_leaves_no_folder_and_a_run_of_no_edits_is_replaced_without_asking(
        sample, tmp_path):
    with pytest.raises(UnavailableError, match="method 'fragile': setup on cpu failed: RuntimeError: weights missing"):
        run_method(Fragile("setup"), sample, tmp_path, limit=2, progress=False)
    assert not (tmp_path / "fragile").exists()

    report = run_method(Fragile("cases"), sample, tmp_path, limit=2, progress=False)  # a run that made no edit
    assert len(report.failed) == 2 and not any((tmp_path / "fragile").glob("*.png"))
    report = run_method(Fragile("never"), sample, tmp_path, limit=2, progress=False)  # other options: no --overwrite
    assert report.done == 2
    with pytest.raises(ResultsError, match="holds a different run"):  # a run with edits is still protected
        run_method(Fragile("cases"), sample, tmp_path, limit=2, progress=False)

    run_method(Fragile("cases"), sample, tmp_path / "b", limit=1, progress=False)
    with pytest.raises(UnavailableError):  # replacing a run of no edits with one that cannot start: nothing left
        run_method(Fragile("setup"), sample, tmp_path / "b", limit=1, progress=False)
    assert not (tmp_path / "b" / "fragile").exists()


def test_cli_a_method_that_cannot_start_stops_the_run_before_any_method_runs(tmp_path):
    done, _ = tvbench("run", "-m", "identity,gpt-image", "--limit", "1", "--out", str(tmp_path / "r"), drop=API_KEYS)
    assert done.returncode == 2, done.stderr
    assert len(lines(done.stderr)) == 1 and "gpt-image" in done.stderr and "API key" in done.stderr
    assert not (tmp_path / "r").exists()  # checked before identity ran; no folder for either


def test_cli_a_folder_of_no_edits_is_named_not_scored_nor_ranked(sample, tmp_path):
    results = tmp_path / "results"
    done, _ = tvbench("run", "-m", "identity", "--limit", "2", "--out", str(results), "-q")
    assert done.returncode == 0, done.stderr
    run_method(Fragile("cases"), sample, results, limit=2, progress=False)
    done, _ = tvbench("score", str(results), "--smoke", "--metrics", "ds_local_src", "-q")
    assert done.returncode == 0, done.stderr
    notes = [line for line in lines(done.stderr) if "fragile" in line]
    assert notes == ["note: no edits, not scored or ranked: fragile (the run failed; its manifest.json says why)"]
    summary = json.loads((results / "summary.json").read_text())
    assert list(summary["methods"]) == ["identity"] and summary["without_edits"] == ["fragile"]
    done, _ = tvbench("report", str(results))
    assert done.returncode == 0 and "| identity" in done.stdout and "| fragile" not in done.stdout  # not a row
    assert [line for line in lines(done.stdout) if "fragile" in line] == [
        "Not ranked (no edits; the run failed, see its manifest.json): fragile."]  # named in one line under it

    only_failed = tmp_path / "only-failed"
    run_method(Fragile("cases"), sample, only_failed, limit=1, progress=False)
    done, _ = tvbench("score", str(only_failed), "--smoke", "-q")
    assert done.returncode == 2 and lines(done.stderr) == [
        f"error: {only_failed}: no method folders with edits here (no edit in fragile: the run failed; its "
        "manifest.json says why)"]


# ------------------------------------------------------------- 2. everything cheap is checked before any backbone


def _controller_file(path: Path, backbone: str) -> Path:
    from safetensors.numpy import save_file

    from tvbench_adapters.tvedit.layout import layout_spec

    tensors = {"point_encoder.w": np.zeros(1, np.float32), "casc.w": np.zeros(1, np.float32)}
    save_file(tensors, str(path), metadata={"spec": layout_spec(backbone, 1, 1).to_json()})
    return path


def test_nothing_cheap_waits_for_the_backbone(sample, tmp_path, qwen_folder, monkeypatch):
    """A tiny backbone whose loader records every load: each mistake below is reported and it never loads."""
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    from tvbench_adapters.editors.base import DiffusersEditor

    loads: list[str] = []

    def recording_load(self):
        loads.append(self.model)
        raise RuntimeError("the backbone was loaded")

    monkeypatch.setattr(DiffusersEditor, "load_pipeline", recording_load)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    save_file({"transformer.proj.weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "not-a-lora.safetensors"))
    model = str(qwen_folder)
    mistakes = [
        ({"controller": "./nope.pt", "model": model}, "TV-Edit controller ./nope.pt: no such file or folder"),
        ({"controller": "models/tvedit.pt", "model": model}, "models/tvedit.pt: no such file or folder"),
        ({"controller": str(_controller_file(tmp_path / "k.safetensors", "kontext")), "model": model},
         "a controller for the kontext backbone, not qwen"),
        ({"controller": "random", "model": "models/qwen-edit"}, "models/qwen-edit: no such file or folder"),
        ({"controller": "random", "model": model, "lora": "./missing.safetensors"}, "no such file or folder"),
        ({"controller": "random", "model": model, "lora": "not-a-lora.safetensors"}, "holds no LoRA matrices"),
    ]
    for options, expected in mistakes:
        with pytest.raises(TvbenchError) as info:
            run_method(create_method("tvedit-qwen", options), sample, tmp_path / "out", limit=1, progress=False)
        assert expected in str(info.value) and str(info.value).startswith("method 'tvedit-qwen'"), options
        assert loads == [] and not (tmp_path / "out").exists(), options
    good = {"controller": str(_controller_file(tmp_path / "q.safetensors", "qwen")), "model": model}
    with pytest.raises(UnavailableError, match="the backbone was loaded"):  # all checks pass: now it loads
        run_method(create_method("tvedit-qwen", good), sample, tmp_path / "out", limit=1, progress=False)
    assert loads == [model] and not (tmp_path / "out").exists()


def test_a_path_that_does_not_exist_is_not_looked_up_on_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert all(looks_like_path(spec) for spec in ("./x.pt", "/abs/x", "~/x", "models/qwen"))
    assert not looks_like_path("Qwen/Qwen-Image-Edit")
    with pytest.raises(UnavailableError, match="^model models/qwen: no such file or folder$"):
        resolve_weights("models/qwen")
    with pytest.raises(WeightsUnavailable, match="not in the Hugging Face cache"):
        resolve_weights("someone/qwen")


def test_cli_a_mistyped_controller_is_one_line_at_once(tmp_path):
    done, seconds = tvbench("run", "-m", "tvedit-qwen", "--set", "controller=./nope.pt", "--out", "r", cwd=tmp_path)
    assert done.returncode == 2 and lines(done.stderr) == [
        "error: method 'tvedit-qwen': TV-Edit controller ./nope.pt: no such file or folder"]
    assert seconds < FAST_S and not (tmp_path / "r").exists()


# --------------------------------------------- 4 and 5. every "can't load" error: one line, the option, the command


def test_cli_train_offline_is_one_line_at_once_with_what_to_do(tmp_path):
    done, seconds = tvbench("train", "tvedit", "--data", "sample", "--output", str(tmp_path / "run"), "-q",
                            env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2, done.stderr
    assert lines(done.stderr) == [
        "error: the qwen pipeline Qwen/Qwen-Image-Edit is not in the Hugging Face cache (HF_HOME) and HF_HUB_OFFLINE "
        "is set; download it once online, without HF_HUB_OFFLINE, with `hf download Qwen/Qwen-Image-Edit --include "
        "model_index.json --include '*/*.json' --include '*/*.safetensors' --include '*/*.txt' --include "
        "'*/*.model' --include '*/*.jinja'`, or pass a local folder with --model PATH"]
    assert seconds < FAST_S * 2 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("method, options, expected", [
    ("tvedit-qwen", ["controller=org/tvedit-not-cached"],
     ["TV-Edit controller org/tvedit-not-cached is not in the Hugging Face cache",
      "`hf download org/tvedit-not-cached --include '*.safetensors'",
      "or pass a local folder with --set controller=PATH"]),
    ("qwen-image-edit", ["lightning=true"],
     ["lightning LoRA lightx2v/Qwen-Image-Lightning/Qwen-Image-Edit-Lightning-4steps-V1.0-bf16.safetensors is not in",
      "`hf download lightx2v/Qwen-Image-Lightning Qwen-Image-Edit-Lightning-4steps-V1.0-bf16.safetensors`",
      "or pass a local file with --set lightning_lora=PATH"]),
])
def test_cli_uncached_weights_name_the_option_and_the_download(method, options, expected, qwen_folder, tmp_path):
    settings = [word for option in [*options, f"model={qwen_folder}"] for word in ("--set", option)]
    done, seconds = tvbench("run", "-m", method, *settings, "--out", str(tmp_path / "r"), env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2, done.stderr
    (line,) = lines(done.stderr)
    assert line.startswith(f"error: method '{method}': ") and all(part in line for part in expected), line
    assert seconds < FAST_S * 2 and not (tmp_path / "r").exists()


def test_cli_score_names_backbone_and_smoke(tmp_path):
    results = tmp_path / "results"
    assert tvbench("run", "-m", "identity", "--limit", "1", "--out", str(results), "-q")[0].returncode == 0
    done, _ = tvbench("score", str(results), "--backbone", "org/dino-not-cached", "--metrics", "ds_local_src", "-q",
                      env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2, done.stderr
    (line,) = lines(done.stderr)
    assert "`hf download org/dino-not-cached --include '*.json' --include '*.safetensors'`" in line
    assert line.endswith("or pass a local folder with --backbone PATH; or --smoke: random-weight networks, an offline "
                         "check of the pipeline, not paper numbers"), line


# ----------------------------------------------------------------------- 6. typos: a did-you-mean, at once


def test_did_you_mean_forgives_case_separators_spelling_and_abbreviations():
    assert close_matches("TPS-Warp", ["identity", "tps-warp"]) == ["tps-warp"]
    assert close_matches("sampel", ["sample"]) == ["sample"]
    assert close_matches("md", ["markdown", "latex", "csv", "json", "html"]) == ["markdown"]
    assert did_you_mean("Real_Move_Ball", ["real-move-ball"]) == "real-move-ball"
    assert did_you_mean("rmb", ["real-move-ball"]) is None  # file names are not abbreviations


@pytest.mark.parametrize("args, expected", [
    (["run", "-m", "TPS-Warp"], "error: unknown method 'TPS-Warp'; did you mean 'tps-warp'? (known: "),
    (["run", "-m", "identity", "--bench", "sampel"], "error: no benchmark at 'sampel'; did you mean 'sample'? "),
    (["report", "results", "--format", "md"],
     "error: --format 'md'; did you mean 'markdown'? (choose one of markdown, latex, csv, json, html)"),
])
def test_cli_typos_get_a_did_you_mean(args, expected, tmp_path):
    done, _ = tvbench(*args, cwd=tmp_path)
    assert done.returncode == 2 and len(lines(done.stderr)) == 1 and done.stderr.startswith(expected), done.stderr


HEAVY = ("torch", "diffusers", "transformers")
PROBE = ("import sys\nfrom tvbench.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
         f"print('heavy:', [name for name in {HEAVY!r} if name in sys.modules])")


@pytest.mark.parametrize("args, expected", [
    (["--limit", "-1"], "error: --limit -1: must be at least 1 (leave it out to run every case)"),
    (["--limit", "0"], "error: --limit 0: must be at least 1 (leave it out to run every case)"),
    (["--dtype", "fp8"], "error: --dtype 'fp8': choose float32, bfloat16 or float16"),
    (["--bench", "no-such-folder"], "error: no benchmark at 'no-such-folder' (expected one of sample, "),
    (["--batch-size", "0"], "error: --batch-size must be at least 1"),
])
def test_cli_bad_arguments_fail_at_once_before_any_heavy_import(args, expected, tmp_path):
    done, seconds = tvbench("run", "-m", "identity", *args, "--out", "r", cwd=tmp_path)
    assert done.returncode == 2 and len(lines(done.stderr)) == 1 and done.stderr.startswith(expected), done.stderr
    assert seconds < FAST_S and not (tmp_path / "r").exists()
    probe = subprocess.run([sys.executable, "-c", PROBE, "run", "-m", "identity", *args, "--out", "r"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "heavy: []" in probe.stdout, probe.stdout + probe.stderr


def test_cli_no_progress_bar_is_left_above_a_setup_error(tmp_path):
    done, _ = tvbench("run", "-m", "qwen-image-edit", "--set", "model=someone/not-cached", "--limit", "1",
                      "--device", "cpu", "--out", str(tmp_path / "r"), env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    shown = lines(done.stderr)
    assert shown[-1].startswith("error: method 'qwen-image-edit': ") and len(shown) <= 2, shown  # at most "validating"
    assert not any(line.startswith("qwen-image-edit") for line in shown), shown


@pytest.mark.parametrize("command", [[], ["run"], ["score"], ["report"], ["gate"], ["reproduce"], ["compare"], ["ls"],
                                     ["validate"], ["data", "export"], ["data", "import"], ["tvedit", "layout"],
                                     ["train", "tvedit"]])
def test_cli_help_names_values_as_click_does_not_as_python_types(command):
    done, _ = tvbench(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert not TYPE_NAMES.search(done.stdout), TYPE_NAMES.findall(done.stdout)
