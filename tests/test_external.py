"""The command adapter: spec files, input layouts, process and worker modes, failures, config identity, the CLI.

Every external "method" here is a small Python script the test writes and runs with ``sys.executable``.
"""

from __future__ import annotations

import json
import os
import pickle
import pickletools
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DRAGBENCH_DEV, textured, write_bench
from PIL import Image

from tvbench.cases import Case, ImageRef, load_benchmark
from tvbench.cases.importers.drag100 import drag100_case
from tvbench.cases.importers.dragbench import dragbench_case, read_dragbench
from tvbench.errors import UnavailableError
from tvbench.io import config_hash, encode_png, read_jsonl
from tvbench.methods import METHODS
from tvbench.registry import Registry
from tvbench.runner import run_method
from tvbench_adapters.external import EXAMPLES_DIR, TEMPLATE_WORKER, SpecError, load_spec, register_specs
from tvbench_adapters.external.layouts import DRAGBENCH_CATEGORIES, write_layout
from tvbench_adapters.external.method import build_method_class

PY = sys.executable
TVBENCH = [PY, "-m", "tvbench"]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # JSON strings, numbers and arrays of them are valid TOML


def write_spec(folder: Path, name: str, env: dict | None = None, **fields) -> Path:
    lines = [f'name = "{name}"'] + [f"{key} = {toml_value(value)}" for key, value in fields.items()]
    if env:
        lines += ["[env]"] + [f"{key} = {toml_value(value)}" for key, value in env.items()]
    path = folder / f"{name}.toml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def method_from(path: Path, **options):
    return build_method_class(load_spec(path))(**options)


def make_bench(root: Path, ids: list[str], size=(40, 32)) -> Path:
    width, height = size
    records, images = [], {}
    for k, cid in enumerate(ids):
        mask = np.zeros((height, width), np.uint8)
        mask[8:24, 10:30] = 255
        images[f"img/{cid}.png"] = textured(width, height, seed=k)
        images[f"img/{cid}.mask.png"] = mask
        records.append({"id": cid, "source": f"img/{cid}.png", "mask_source": f"img/{cid}.mask.png",
                        "caption": f"a photo number {k}", "instruction": "move it right",
                        "points": [[12.4, 10, 20.6, 11], [30, 20, 25, 25]]})
    return write_bench(root, records, images)


def make_case(cid="case-a", size=(40, 32), points=((12.4, 10.0, 20.6, 11.0), (30.0, 20.0, 25.0, 25.0)),
              with_mask=True, meta=None) -> Case:
    width, height = size
    mask = np.zeros((height, width), np.uint8)
    mask[8:24, 10:30] = 255
    return Case(id=cid, source=ImageRef("src", data=encode_png(Image.fromarray(textured(width, height, 3)))),
                mask_source=ImageRef("mask", data=encode_png(Image.fromarray(mask, mode="L"))) if with_mask else None,
                caption="a cat on a sofa", instruction="move the cat", points=points, meta=meta or {})


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


ALL_INPUTS = frozenset({"image", "mask", "points", "caption", "instruction"})


# ----- layouts ------------------------------------------------------------------------------------------


def test_tvbench_layout_holds_exact_points_texts_and_mask(tmp_path):
    case = make_case()
    files, facts = write_layout("tvbench", case, tmp_path / "input", inputs=ALL_INPUTS, seed=5,
                                output=tmp_path / "out.png")
    folder = Path(files["input_dir"])
    assert folder == tmp_path / "input" / "case-a" and facts == {}
    record = json.loads(Path(files["case_json"]).read_text())
    assert record["points"] == [[12.4, 10.0, 20.6, 11.0], [30.0, 20.0, 25.0, 25.0]]
    assert (record["caption"], record["instruction"], record["prompt"]) == ("a cat on a sofa", "move the cat",
                                                                           "a cat on a sofa")
    assert record["seed"] == 5 and record["output"] == str(tmp_path / "out.png") and record["has_mask"]
    assert np.array_equal(np.asarray(Image.open(files["source"])), np.asarray(case.open_image("source")))
    assert set(np.unique(np.asarray(Image.open(files["mask"])))) == {0, 255}


def test_dragbench_layout_round_trips_through_the_importer_and_loads_on_numpy_1(tmp_path):
    case = make_case(points=((12.4, 10.0, 20.6, 11.0),), meta={"category": "animals"})
    files, facts = write_layout("dragbench", case, tmp_path / "input", inputs=ALL_INPUTS, seed=0,
                                output=tmp_path / "out.png")
    assert sorted(p.name for p in (tmp_path / "input").iterdir()) == sorted(DRAGBENCH_CATEGORIES)
    assert Path(files["input_dir"]) == tmp_path / "input" / "animals" / "case-a" and files["category"] == "animals"
    assert facts == {"points_rounded": True}
    data = Path(files["meta"]).read_bytes()
    globals_named = [arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"]
    assert "numpy.core.multiarray _reconstruct" in globals_named  # the name numpy 1.x environments can import
    assert not any("numpy._core" in name for name in globals_named)
    meta = pickle.loads(data)  # what DragBench's scripts do
    assert meta["prompt"] == "a cat on a sofa" and meta["points"] == [[12, 10], [21, 11]]
    assert all(type(v) is int for point in meta["points"] for v in point)
    assert meta["mask"].dtype == np.uint8 and meta["mask"].shape == (32, 40) and set(np.unique(meta["mask"])) == {0, 1}
    back = dragbench_case(Path(files["input_dir"]))  # tvbench's own importer reads the same format
    assert back.caption == case.caption and back.points == ((12.0, 10.0, 21.0, 11.0),)
    assert np.array_equal(back.open_mask("mask_source"), case.open_mask("mask_source"))
    assert np.array_equal(np.asarray(back.open_image("source")), np.asarray(case.open_image("source")))


@pytest.mark.skipif(not DRAGBENCH_DEV.is_dir(), reason="DragBench dev cases not available")
def test_dragbench_layout_reproduces_real_dragbench_files(tmp_path):
    real_dir = sorted(path.parent for path in DRAGBENCH_DEV.rglob("meta_data.pkl"))[0]
    case = read_dragbench(real_dir).cases[0]
    files, _ = write_layout("dragbench", case, tmp_path / "input", inputs=ALL_INPUTS, seed=0,
                            output=tmp_path / "out.png")
    ours, theirs = (pickle.loads(Path(p).read_bytes()) for p in (files["meta"], real_dir / "meta_data.pkl"))
    assert ours["prompt"] == theirs["prompt"] and ours["points"] == theirs["points"]
    assert ours["mask"].dtype == theirs["mask"].dtype and np.array_equal(ours["mask"], theirs["mask"])
    assert np.array_equal(np.asarray(Image.open(files["source"])), np.asarray(Image.open(real_dir /
                                                                                        "original_image.png")))


def test_gooddrag_layout_round_trips_through_the_drag100_importer(tmp_path):
    case = make_case()
    files, _ = write_layout("gooddrag", case, tmp_path / "input", inputs=ALL_INPUTS, seed=0,
                            output=tmp_path / "out.png")
    folder = Path(files["input_dir"])
    assert sorted(p.name for p in folder.iterdir()) == ["image_with_points.jpg", "mask.png", "original.jpg",
                                                        "points.json"]
    assert json.loads(Path(files["points_json"]).read_text()) == {"points": [[12, 10], [21, 11], [30, 20], [25, 25]]}
    mask = Image.open(files["mask"])
    assert mask.mode == "L" and set(np.unique(np.asarray(mask))) == {0, 255}
    back = drag100_case(folder, tmp_path / "input")  # GoodDrag's Drag100 has this very layout
    assert back.points == ((12.0, 10.0, 21.0, 11.0), (30.0, 20.0, 25.0, 25.0))
    assert np.array_equal(back.open_mask("mask_source"), case.open_mask("mask_source"))
    jpeg = np.asarray(back.open_image("source"), dtype=float)
    assert np.abs(jpeg - np.asarray(case.open_image("source"), dtype=float)).mean() < 4  # JPEG at quality 95
    assert Image.open(files["image_with_points"]).size == (40, 32)


# ----- process mode -------------------------------------------------------------------------------------

PER_CASE_SCRIPT = r'''
import json, os, subprocess, sys, time
case_json, output, seed, points = sys.argv[1:5]
case = json.load(open(case_json))
json.dump({"argv": sys.argv[1:], "case": case}, open(os.environ["PROBE"], "w"))
kind = case["id"].split("-")[0]
if kind == "crash":
    print("loading the model", file=sys.stderr)
    raise ValueError("boom in " + case["id"])
if kind == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open(os.environ["PIDFILE"], "w").write(str(child.pid))
    time.sleep(60)
if kind == "missing":
    print("all good, honestly")
    sys.exit(0)
if kind == "garbage":
    open(output, "wb").write(b"this is not an image")
    sys.exit(0)
from PIL import Image, ImageOps
image = Image.open(os.path.join(os.path.dirname(case_json), case["source"]))
if kind == "small":
    image = image.resize((image.width // 2, image.height // 2))
ImageOps.mirror(image).save(output)
'''


def test_process_mode_records_every_kind_of_failure_and_goes_on(tmp_path):
    script = tmp_path / "method" / "edit_one.py"
    script.parent.mkdir()
    script.write_text(PER_CASE_SCRIPT)
    spec = write_spec(tmp_path / "specs", "per-case", layout="tvbench", inputs=["image", "mask", "points", "caption"],
                      command=[PY, "edit_one.py", "{case_json}", "{output}", "{seed}", "{points}"],
                      cwd="../method", timeout_s=4,
                      env={"PROBE": str(tmp_path / "probe-{case_id}.json"), "PIDFILE": str(tmp_path / "pid")})
    ids = ["ok-0", "crash-1", "hang-2", "missing-3", "garbage-4", "small-5", "ok-6"]
    bench = load_benchmark(make_bench(tmp_path / "bench", ids))
    started = time.monotonic()
    report = run_method(method_from(spec), bench, tmp_path / "results", seed=3, progress=False)
    assert time.monotonic() - started < 40  # the hang cost its timeout, not 60 s
    failed = dict(report.failed)
    assert report.done == 3 and sorted(failed) == ["crash-1", "garbage-4", "hang-2", "missing-3"]
    assert "exited with code 1" in failed["crash-1"] and "ValueError: boom in crash-1" in failed["crash-1"]
    assert "timed out after 4 s" in failed["hang-2"]
    assert "wrote no output" in failed["missing-3"] and "stdout: all good, honestly" in failed["missing-3"]
    assert "not a readable image" in failed["garbage-4"]
    for message in failed.values():
        assert "\n" not in message and "work folder kept" in message
        kept = Path(message.rsplit("work folder kept: ", 1)[1])
        assert (kept / "stderr.log").is_file()
    assert not alive(int((tmp_path / "pid").read_text()))  # the hung command's child died with its process group

    run_dir = tmp_path / "results" / "per-case"
    source = bench["ok-0"].open_image("source")
    assert np.array_equal(np.asarray(Image.open(run_dir / "ok-0.png")), np.asarray(source)[:, ::-1])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["cases"]["small-5"]["facts"]["native_size"] == [20, 16]
    assert Image.open(run_dir / "small-5.png").size == source.size  # mapped back to the source's size
    assert set(manifest["cases"]["ok-0"]["facts"]["phases"]) == {"prepare", "command", "read"}
    assert manifest["cases"]["crash-1"]["status"] == "failed"
    probe = json.loads((tmp_path / "probe-ok-0.json").read_text())  # env placeholders filled per case
    from tvbench.methods import case_seed

    assert probe["argv"][2] == str(case_seed(3, "ok-0")) == str(probe["case"]["seed"])
    assert json.loads(probe["argv"][3]) == [[12.4, 10, 20.6, 11], [30, 20, 25, 25]]
    assert probe["case"]["caption"] == "a photo number 0" and probe["case"]["instruction"] is None  # undeclared


def test_an_output_left_by_an_earlier_run_is_not_taken_for_this_one(tmp_path):
    clone = tmp_path / "clone"
    (clone / "results").mkdir(parents=True)
    (clone / "noop.py").write_text("import sys\nprint('nothing to do', file=sys.stderr)\n")
    Image.new("RGB", (40, 32)).save(clone / "results" / "case-a.png")
    spec = write_spec(tmp_path, "stale", layout="tvbench", inputs=["image"], cwd="clone",
                      command=[PY, "noop.py"], output="results/{case_id}.png")
    method = method_from(spec)
    method.setup()
    with pytest.raises(Exception, match=r"did not write .*results/case-a.png \(the file there predates this case\); "
                                        r"stderr: nothing to do"):
        method.edit(make_case(), seed=0)
    method.teardown()


# ----- worker mode --------------------------------------------------------------------------------------

WORKER_SCRIPT = r'''
import json, os, pickle, shutil, sys, time
with open(sys.argv[1], "a") as log:
    log.write("load\n")
print("Loading pipeline components...: 100%")  # libraries print on stdout; not a protocol line
print(json.dumps({"tvbench": "ready", "protocol": 1}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    case_id = request["id"]
    kind = case_id.split("-")[0]
    print('{"progress": 0.5}', flush=True)
    if kind == "die":
        print("RuntimeError: CUDA error: an illegal memory access was encountered", file=sys.stderr, flush=True)
        os._exit(3)
    if kind == "hang":
        time.sleep(60)
    if kind == "error":
        print(json.dumps({"tvbench": "error", "id": case_id, "message": "cannot drag\nthis one"}), flush=True)
        continue
    meta = pickle.load(open(request["meta"], "rb"))
    shutil.copy(request["source"], request["output"])
    answer = {"tvbench": "done", "id": case_id, "facts": {"n_points": len(meta["points"]), "prompt": meta["prompt"],
                                                           "seed": request["seed"]}}
    print(json.dumps(answer), flush=True)
'''


def test_worker_mode_loads_once_and_survives_errors_deaths_and_hangs(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    loads = tmp_path / "loads.txt"
    spec = write_spec(tmp_path, "worker", mode="worker", layout="dragbench", timeout_s=4,
                      inputs=["image", "mask", "points", "caption"], command=[PY, str(script), str(loads)])
    ids = ["ok-0", "ok-1", "error-2", "die-3", "ok-4", "hang-5", "ok-6"]
    bench = load_benchmark(make_bench(tmp_path / "bench", ids))
    report = run_method(method_from(spec), bench, tmp_path / "results", progress=False)
    failed = dict(report.failed)
    assert report.done == 4 and sorted(failed) == ["die-3", "error-2", "hang-5"]
    assert "the worker reported an error: cannot drag this one" in failed["error-2"]
    assert "the worker exited with code 3" in failed["die-3"] and "illegal memory access" in failed["die-3"]
    assert "timed out after 4 s" in failed["hang-5"] and "illegal memory" not in failed["hang-5"]  # its own log
    assert loads.read_text().count("load") == 3  # started once, then again after the death and after the hang
    manifest = json.loads((tmp_path / "results" / "worker" / "manifest.json").read_text())
    facts = manifest["cases"]["ok-1"]["facts"]
    assert facts["n_points"] == 4 and facts["prompt"] == "a photo number 1" and "worker_start" not in facts["phases"]
    assert "worker_start" in manifest["cases"]["ok-0"]["facts"]["phases"]  # the model load is on the first case
    assert "worker_start" in manifest["cases"]["ok-4"]["facts"]["phases"]
    source = np.asarray(bench["ok-6"].open_image("source"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "results" / "worker" / "ok-6.png")), source)


def test_the_template_worker_speaks_the_protocol(tmp_path):
    script = tmp_path / "my_worker.py"
    script.write_text(
        "import shutil, sys\n"
        f"sys.path.insert(0, {str(TEMPLATE_WORKER.parent)!r})\n"
        "from worker_template import serve\n"
        "def load():\n"
        "    print('a library banner on stdout')\n"
        "    return {'model': 'loaded'}\n"
        "def edit(state, request):\n"
        "    print('working on', request['id'])\n"
        "    if request['id'] == 'bad':\n"
        "        raise RuntimeError('the method failed')\n"
        "    shutil.copy(request['source'], request['output'])\n"
        "    return {'model': state['model'], 'prompt': request['prompt'], 'device': request['device'],\n"
        "            'argv': sys.argv[1:]}\n"
        "serve(load, edit)\n")
    spec = write_spec(tmp_path, "templated", mode="worker", layout="tvbench", inputs=["image", "caption"],
                      command=[PY, "{spec_dir}/my_worker.py", "{device}"])
    method = method_from(spec)
    assert method.uses_device  # it asks for {device}, so --device auto looks for a GPU
    method.setup()
    try:
        result = method.edit(make_case("good"), seed=1)
        assert result.facts["model"] == "loaded" and result.facts["prompt"] == "a cat on a sofa"
        assert result.facts["device"] == "cpu" and result.facts["argv"] == ["cpu"]
        with pytest.raises(Exception, match="the worker reported an error: RuntimeError: the method failed"):
            method.edit(make_case("bad"), seed=1)
        assert method.edit(make_case("good-again"), seed=1).image.size == (40, 32)
    finally:
        method.teardown()


def test_a_worker_that_cannot_start_fails_cases_quickly(tmp_path):
    crashing = write_spec(tmp_path, "crashing", mode="worker", inputs=["image"], timeout_s=5,
                          command=[PY, "-c", "import sys; sys.exit('ImportError: No module named diffusers')"])
    method = method_from(crashing)
    method.setup()
    messages = []
    for k in range(4):
        with pytest.raises(Exception) as caught:
            method.edit(make_case(f"c{k}"), seed=0)
        messages.append(str(caught.value))
    method.teardown()
    assert all("did not start" in m and "No module named diffusers" in m for m in messages[:3])
    assert "failed to start 3 times in a row" in messages[3]

    silent = write_spec(tmp_path, "silent", mode="worker", inputs=["image"], startup_timeout_s=1,
                        command=[PY, "-c", "import time; print('loading...', flush=True); time.sleep(60)"])
    method = method_from(silent)
    method.setup()
    started = time.monotonic()
    with pytest.raises(Exception, match=r"timed out after 1 s waiting for its ready line; stdout: loading\.\.\."):
        method.edit(make_case(), seed=0)
    assert time.monotonic() - started < 15
    method.teardown()


# ----- specs --------------------------------------------------------------------------------------------

GOOD = {"inputs": ["image", "points"], "command": ["python", "run.py", "{source}"]}


@pytest.mark.parametrize("fields, where, problem", [
    ({"timeout_s": -1}, "timeout_s", "must be a positive number"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"command": "python run.py"}, "command", "not one string"),
    ({"command": []}, "command", "non-empty list"),
    ({"layout": "dragbench2"}, "layout", "must be one of tvbench, dragbench, gooddrag"),
    ({"mode": "daemon"}, "mode", "must be one of process, worker"),
    ({"inputs": ["image", "target"]}, "inputs", "never sees the ground truth"),
    ({"layout": "dragbench", "inputs": ["image"]}, "inputs", "must include 'points'"),
    ({"command": ["python", "{sorce}"]}, "command[1]", "unknown placeholder {sorce}"),
    ({"command": ["python", "{caption}"]}, "command[1]", "unknown placeholder {caption}"),
    ({"mode": "worker", "command": ["python", "{source}"]}, "command[1]", "per-case values come in its requests"),
    ({"startup_timeout_s": 10}, "startup_timeout_s", "only applies to mode = 'worker'"),
    ({"env": {"SEED": 3}}, "env.SEED", "must be a string"),
    ({"output": "{output}.png"}, "output", "unknown placeholder {output}"),
    ({"keep_work": "yes"}, "keep_work", "must be true or false"),
])
def test_bad_specs_are_one_line_naming_the_file_and_field(tmp_path, fields, where, problem):
    path = write_spec(tmp_path, "bad", **{**GOOD, **fields})
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}: ") and problem in message and "\n" not in message


def test_unreadable_specs_and_names(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\ncommand = [\n')
    with pytest.raises(SpecError, match=r"broken.toml: not valid TOML"):
        load_spec(broken)
    with pytest.raises(SpecError, match=r"name: 'my method' is not a usable method name"):
        load_spec(write_spec(tmp_path, "my method", **GOOD))
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "absent.toml")


def test_a_spec_that_cannot_run_here_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv("MY_CLONE", raising=False)
    spec = load_spec(write_spec(tmp_path, "env-spec", **{**GOOD, "cwd": "${MY_CLONE}"}))
    with pytest.raises(SpecError, match=r"cwd: environment variable MY_CLONE is not set"):
        build_method_class(spec)
    monkeypatch.setenv("MY_CLONE", str(tmp_path / "nowhere"))
    with pytest.raises(SpecError, match=r"nowhere is not a folder"):
        build_method_class(spec)
    monkeypatch.setenv("MY_CLONE", str(tmp_path))
    spec = load_spec(write_spec(tmp_path, "no-exe", **{**GOOD, "command": ["no-such-program-xyz", "a"]}))
    with pytest.raises(SpecError, match=r"command\[0\]: 'no-such-program-xyz' is not on PATH"):
        build_method_class(spec)


def test_config_hash_follows_the_spec_content_and_the_checkout(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "run.py").write_text("print('v1')\n")

    def identity(text: str) -> str:
        path = tmp_path / "spec.toml"
        path.write_text(text)
        return config_hash(method_from(path).config())

    base = f'name = "m"\ninputs = ["image"]\ncwd = "clone"\ncommand = [{json.dumps(PY)}, "run.py", "{{output}}"]\n'
    first = identity(base)
    assert identity("# a comment changes nothing\n" + base) == first
    assert identity(base + "timeout_s = 99\n") != first  # the spec's content, as written
    assert identity(base.replace("run.py", "run2.py")) != first
    method = method_from(tmp_path / "spec.toml")
    assert method.config()["code"]["git_commit"] is None

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-C", str(clone), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "run.py"], check=True)
    subprocess.run(git + ["commit", "-qm", "v1"], check=True)
    committed = identity(base)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert committed != first and method_from(tmp_path / "spec.toml").config()["code"] == {"git_commit": head}
    (clone / "outputs.png").write_bytes(b"untracked outputs do not count")
    assert identity(base) == committed
    (clone / "run.py").write_text("print('v2')\n")
    assert method_from(tmp_path / "spec.toml").config()["code"] == {"git_commit": head + "+dirty"}
    assert identity(base) != committed


def test_specs_are_found_on_the_method_path(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    write_spec(first, "mine", **GOOD, summary="from a")
    write_spec(second, "mine", **GOOD, summary="from b")
    (second / "broken.toml").write_text("name = ")
    registry = Registry("method")
    registry.register("identity", "tvbench_adapters.reference:Identity")
    write_spec(second, "identity", **GOOD)  # a built-in name is not taken over
    monkeypatch.setenv("TVBENCH_METHOD_PATH", os.pathsep.join([str(first), str(second)]))
    monkeypatch.delenv("GEODRAG_DIR", raising=False)
    names = register_specs(registry)
    assert sorted(names) == ["broken", "geodrag", "gooddrag-official", "mine"]
    assert registry.entry("mine").origin == f"spec {first / 'mine.toml'}"
    assert registry.entry("identity").origin == "tvbench"
    broken = registry.availability("broken")
    assert not broken.available and "broken.toml: not valid TOML" in broken.reason
    geodrag = registry.availability("geodrag")
    assert not geodrag.available and "GEODRAG_DIR is not set" in geodrag.reason
    assert registry.entry("geodrag").origin == f"example spec {EXAMPLES_DIR / 'geodrag.toml'}"
    with pytest.raises(UnavailableError, match="GEODRAG_DIR"):
        registry.load("geodrag")


def test_the_gooddrag_example_finds_the_bench_scripts_output_in_the_clone(tmp_path, monkeypatch):
    clone = tmp_path / "GoodDrag"
    clone.mkdir()
    (clone / "bench_gooddrag.py").write_text(  # what the real script does with its files, minus the model
        "import json, os, sys\nfrom pathlib import Path\nfrom PIL import Image\n"
        "for folder in Path(sys.argv[1]).iterdir():\n"
        "    points = json.load(open(folder / 'points.json'))['points']\n"
        "    mask = Image.open(folder / 'mask.png'); Image.open(folder / 'image_with_points.jpg')\n"
        "    out = Path('./bench_result') / folder.name\n"
        "    os.makedirs(out, exist_ok=True)\n"
        "    Image.open(folder / 'original.jpg').save(out / 'output_image.png')\n")
    monkeypatch.setenv("GOODDRAG_DIR", str(clone))
    monkeypatch.setenv("GOODDRAG_PYTHON", PY)
    method = method_from(EXAMPLES_DIR / "gooddrag-official.toml")
    assert method.inputs == {"image", "mask", "points"} and not method.uses_device  # the script picks its GPU
    method.setup()
    result = method.edit(make_case(), seed=0)
    method.teardown()
    assert (clone / "bench_result" / "case-a" / "output_image.png").is_file() and result.image.size == (40, 32)


# ----- through the installed command --------------------------------------------------------------------

FAKE_GEODRAG = r'''
import argparse, os, pickle
from PIL import Image, ImageOps
parser = argparse.ArgumentParser()
parser.add_argument("-c"); parser.add_argument("-i"); parser.add_argument("-m"); parser.add_argument("-o")
args = parser.parse_args()
meta = pickle.load(open(args.m, "rb"))  # plain pickle.load, as GeoDrag's prepare_input does
assert set(meta) == {"prompt", "points", "mask"} and os.path.exists(args.c), meta
os.makedirs(args.o, exist_ok=True)
ImageOps.mirror(Image.open(args.i)).save(os.path.join(args.o, "dragged_image.png"))
'''


def _cli(args, env, timeout=120, **kwargs):
    return subprocess.run(TVBENCH + args, capture_output=True, text=True, env=env, timeout=timeout, **kwargs)


def test_geodrag_example_spec_runs_a_geodrag_style_clone_through_tvbench_run(tmp_path):
    clone = tmp_path / "GeoDrag"
    (clone / "configs").mkdir(parents=True)
    (clone / "configs" / "base_configs.yaml").write_text("inversion_strength: 0.7\n")
    (clone / "inference_drag.py").write_text(FAKE_GEODRAG)
    bench = make_bench(tmp_path / "bench", ["first", "second"])
    env = {**os.environ, "GEODRAG_DIR": str(clone), "GEODRAG_PYTHON": PY, "COLUMNS": "250",
           "TVBENCH_METHOD_PATH": str(tmp_path / "none")}
    listing = _cli(["ls", "methods"], env)
    assert listing.returncode == 0 and "geodrag" in listing.stdout and "example spec" in listing.stdout
    done = _cli(["run", "--method", "geodrag", "--bench", str(bench), "--out", str(tmp_path / "results"), "-q"], env)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "results" / "geodrag"
    source = np.asarray(Image.open(bench / "img" / "second.png"))
    assert np.array_equal(np.asarray(Image.open(run_dir / "second.png")), source[:, ::-1])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["spec"]["layout"] == "dragbench" and manifest["counts"]["done"] == 2
    assert manifest["inputs"] == "M+P+T"


def test_a_killed_run_resumes_and_a_bad_spec_is_one_line(tmp_path):
    (tmp_path / "slow.py").write_text("import shutil, sys, time\n"
                                      "time.sleep(0.5)\nshutil.copy(sys.argv[1], sys.argv[2])\n")
    spec = write_spec(tmp_path, "slow", inputs=["image"], command=[PY, "slow.py", "{source}", "{output}"])
    bench = make_bench(tmp_path / "bench", [f"c{k}" for k in range(4)])
    args = ["run", "--method-spec", str(spec), "--bench", str(bench), "--out", str(tmp_path / "results"), "-q"]
    log = tmp_path / "results" / "slow" / "status.jsonl"
    process = subprocess.Popen(TVBENCH + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(list(read_jsonl(log))) < 1:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    finished_before = len(list(read_jsonl(log)))
    assert 1 <= finished_before < 4
    rerun = _cli(args, dict(os.environ))
    assert rerun.returncode == 0, rerun.stderr
    assert f"{finished_before} already done" in rerun.stderr
    assert sorted(p.name for p in (tmp_path / "results" / "slow").glob("*.png")) == [f"c{k}.png" for k in range(4)]

    bad = write_spec(tmp_path, "bad", inputs=["image"], command=[PY, "{sauce}"])
    failed = _cli(["run", "--method-spec", str(bad), "--bench", str(bench), "--out", str(tmp_path / "r2")],
                  dict(os.environ))
    assert failed.returncode == 2
    assert failed.stderr.strip() == (f"error: {bad}: command[1]: unknown placeholder {{sauce}}; allowed here: "
                                     "{case_id}, {case_json}, {cwd}, {device}, {input_dir}, {input_root}, "
                                     "{output}, {seed}, {seed32}, {source}, {spec_dir}, {work_dir}, {work_root}")


def test_method_registry_lists_the_shipped_examples():
    assert {"geodrag", "gooddrag-official"} <= set(METHODS.names())


def readme_specs() -> list[str]:
    readme = (Path(__file__).resolve().parent.parent / "docs" / "external-methods.md").read_text()
    section = readme.split("## Bring an external drag method", 1)[1]
    return [block.split("```", 1)[0] for block in section.split("```toml\n")[1:]]


FAKE_DRAGLORA = {  # what DragLoRA's two benchmark scripts do with folders (commit 4276544), minus the models
    "run_lora_training.py": r'''
import argparse, os, pickle
parser = argparse.ArgumentParser(); parser.add_argument("--root_path"); args = parser.parse_args()
categories = ["art_work", "land_scape", "building_city_view", "building_countryside_view", "animals", "human_head",
              "human_upper_body", "human_full_body", "interior_design", "other_objects"]
if not os.path.isdir("drag_bench_lora"):
    os.mkdir("drag_bench_lora")
    for cat in categories:
        os.mkdir(os.path.join("drag_bench_lora", cat))
for cat in categories:
    for sample in os.listdir(os.path.join(args.root_path, cat)):
        pickle.load(open(os.path.join(args.root_path, cat, sample, "meta_data.pkl"), "rb"))["prompt"]
        path = os.path.join("drag_bench_lora", cat, sample)
        os.makedirs(path, exist_ok=True)
        open(os.path.join(path, "pytorch_lora_weights.safetensors"), "w").write("lora")
''',
    "run_dragbench_draglora.py": r'''
import argparse, os, pickle
from PIL import Image
parser = argparse.ArgumentParser()
for name, default in (("--root_dir", "drag_bench_data"), ("--lora_dir", "drag_bench_lora"), ("--save_dir", "x")):
    parser.add_argument(name, default=default)
args = parser.parse_args()
categories = ["animals", "art_work", "human_head", "building_city_view", "land_scape", "building_countryside_view",
              "human_upper_body", "human_full_body", "interior_design", "other_objects"]
if not os.path.isdir(args.save_dir):
    os.mkdir(args.save_dir)
    for cat in categories:
        os.mkdir(os.path.join(args.save_dir, cat))
for cat in categories:
    for sample in os.listdir(os.path.join(args.root_dir, cat)):
        assert os.path.isfile(os.path.join(args.lora_dir, cat, sample, "pytorch_lora_weights.safetensors"))
        meta = pickle.load(open(os.path.join(args.root_dir, cat, sample, "meta_data.pkl"), "rb"))
        image = Image.open(os.path.join(args.root_dir, cat, sample, "original_image.png"))
        os.mkdir(os.path.join(args.save_dir, cat, sample))
        image.transpose(Image.FLIP_TOP_BOTTOM).save(os.path.join(args.save_dir, cat, sample, "dragged_image.png"))
''',
}


def test_the_readmes_specs_are_valid_and_the_draglora_one_runs_its_scripts(tmp_path, monkeypatch):
    blocks = readme_specs()
    assert len(blocks) == 2
    for k, block in enumerate(blocks):
        (tmp_path / f"readme-{k}.toml").write_text(block)
    specs = [load_spec(tmp_path / f"readme-{k}.toml") for k in range(len(blocks))]
    assert [spec.name for spec in specs] == ["draglora", "dragdiffusion-official"]
    clone = tmp_path / "DragLoRA" / "drag_bench_evaluation"
    clone.mkdir(parents=True)
    for name, text in FAKE_DRAGLORA.items():
        (clone / name).write_text(text)
    monkeypatch.setenv("DRAGLORA_DIR", str(clone.parent))
    monkeypatch.setenv("DRAGLORA_PYTHON", PY)
    method = build_method_class(specs[0])()
    method.setup()
    case = make_case("animals__JH_1", meta={"category": "animals"})
    try:
        result = method.edit(case, seed=0)
    finally:
        method.teardown()
    assert np.array_equal(np.asarray(result.image), np.asarray(case.open_image("source"))[::-1])
    assert (clone / "drag_bench_lora" / "animals" / "animals__JH_1").is_dir()
