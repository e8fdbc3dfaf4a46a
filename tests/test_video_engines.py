"""tvbench data build's inputs and engines: a Hugging Face dataset with a video column, worker processes, Ray.

Every engine must give the same benchmark as the in-process loop; the Ray test starts a local Ray instance."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from tvbench.testing.videos import encode_video  # noqa: E402
from test_video_build import moving_square_frames, pan_frames, static_frames  # noqa: E402

ENV = {"OMP_NUM_THREADS": "1"}


@pytest.fixture
def videos(tmp_path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    encode_video(folder / "square.mp4", moving_square_frames())
    encode_video(folder / "pan.mp4", pan_frames())
    encode_video(folder / "static.mp4", static_frames())
    encode_video(folder / "square2.mp4", moving_square_frames()[::-1])
    return folder


def _cases(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines()]


def test_a_dataset_with_a_video_column_builds_the_same_cases_as_the_files(videos, tmp_path):
    datasets = pytest.importorskip("datasets")
    from tvbench.videos.build import BuildConfig, build

    names = ["square.mp4", "square2.mp4"]
    table = datasets.Dataset.from_dict(
        {"clip": [{"bytes": (videos / n).read_bytes(), "path": n} for n in names], "caption": ["a", "b"]},
        features=datasets.Features({"clip": datasets.Video(decode=False), "caption": datasets.Value("string")}))
    table.save_to_disk(str(tmp_path / "dataset"))
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"videos/{n}\n" for n in names))
    config = BuildConfig(strides=[8], no_instructions=True)
    from_files, from_rows = tmp_path / "files", tmp_path / "rows"
    build(listing, from_files, config, say=lambda line: None)
    build(str(tmp_path / "dataset"), from_rows, config, say=lambda line: None)
    rows = _cases(from_rows)
    assert len(rows) == 4
    assert {c["meta"]["provenance"]["video"].split("] ")[-1] for c in rows} == set(names)
    assert all(c["meta"]["provenance"]["video"].startswith("hf:") for c in rows)
    dense = lambda cases: sorted(c["dense_points"] for c in cases)  # noqa: E731 (sparse draws are seeded by the id)
    assert dense(rows) == dense(_cases(from_files))
    assert not list((from_rows / ".build" / "inputs").iterdir())  # the rows' temporary files are gone

    from conftest import run_tvbench  # the built folder leaves as a Hugging Face dataset through the existing writer

    exported = run_tvbench("data", "export", str(from_rows), str(tmp_path / "as-hf"), "--format", "hf", env=ENV)
    assert exported.returncode == 0, exported.stderr
    checked = run_tvbench("validate", str(tmp_path / "as-hf"), env=ENV)
    assert checked.returncode == 0 and "4 cases OK" in checked.stdout + checked.stderr, checked.stderr

    from tvbench.errors import ConfigError

    with pytest.raises(ConfigError, match="no column 'movie'; it has clip, caption"):
        build(str(tmp_path / "dataset"), tmp_path / "x", BuildConfig(no_instructions=True, video_column="movie"))
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_a_dataset_row_naming_a_file_outside_it_is_refused_as_that_video(videos, tmp_path):
    datasets = pytest.importorskip("datasets")
    from tvbench.videos.build import BuildConfig, build

    table = datasets.Dataset.from_dict({"video": [str(videos / "square.mp4"), "square.mp4"]})
    (tmp_path / "dataset").mkdir()
    table.save_to_disk(str(tmp_path / "dataset"))
    encode_video(tmp_path / "dataset" / "square.mp4", moving_square_frames())  # inside the dataset: allowed
    lines: list[str] = []
    funnel = build(str(tmp_path / "dataset"), tmp_path / "out", BuildConfig(strides=[8], no_instructions=True),
                   say=lines.append)
    assert funnel["bad_videos"] == 1 and funnel["written"] == 2
    assert any("[0]" in line and "points outside" in line for line in lines), lines


def test_two_worker_processes_equal_one_process_with_the_funnel_summed(videos, tmp_path):
    from tvbench.videos.build import BuildConfig, build

    config = BuildConfig(strides=[8, 16], no_instructions=True)
    one, two = tmp_path / "one", tmp_path / "two"
    serial = build(videos, one, config, say=lambda line: None)
    parallel = build(videos, two, config, say=lambda line: None, workers=2)
    assert (one / "cases.jsonl").read_text() == (two / "cases.jsonl").read_text()
    assert serial == parallel and serial["videos"] == 4 and serial["written"] >= 4
    stats = json.loads((two / "build_stats.json").read_text())
    assert stats["funnel_last_run"]["clips"] == serial["clips"]
    # the funnel adds up: every clip was done before or decoded; every decoded clip was written or rejected once
    assert serial["clips"] == serial["done_before"] + serial["decoded"] and serial["done_before"] == 0
    rejected = len(stats["rejections"])
    assert serial["decoded"] == serial["written"] + rejected == stats["cases"] + rejected
    assert sum(stats["rejected_by_stage"].values()) == len(stats["rejections"]) and stats["rejected_by_stage"]


def test_ray_engine_on_a_local_instance_equals_one_process(videos, tmp_path):
    pytest.importorskip("ray")
    from conftest import run_tvbench

    args = ["data", "build", str(videos)]
    one, on_ray = tmp_path / "one", tmp_path / "ray"
    assert run_tvbench(*args, str(one), "--strides", "8", "--no-instructions", env=ENV).returncode == 0
    done = run_tvbench(*args, str(on_ray), "--strides", "8", "--no-instructions", "--engine", "ray",
                       "--workers", "2", env={**ENV, "RAY_ADDRESS": ""})
    assert done.returncode == 0, done.stderr
    assert (one / "cases.jsonl").read_text() == (on_ray / "cases.jsonl").read_text()
    assert "funnel: videos 4" in done.stderr
    assert re.search(r"clips 8 > shot_cut \d+ > exposure \d+ .* > written \d+", " ".join(done.stderr.split()))
    again = run_tvbench(*args, str(on_ray), "--strides", "8", "--no-instructions", "--engine", "ray",
                        "--workers", "2", env={**ENV, "RAY_ADDRESS": ""})
    assert again.returncode == 0 and "done_before 8" in again.stderr, again.stderr  # resumes: nothing recomputed


def test_engine_and_option_mistakes_are_one_line_before_any_work(videos, tmp_path):
    from conftest import run_tvbench

    out = tmp_path / "out"
    for extra, expected in ((["--engine", "rey"], "did you mean 'ray'"),
                            (["--tracker-option", "grid"], "--tracker-option 'grid': expected key=value"),
                            (["--workers", "0"], "--workers 0: expected 1 or more"),
                            (["--filter-option", "blur=3"], "--filter-option blur: unknown; accepted: border_frac"),
                            (["--filter-option", "blur_min=soft"], "blur_min=soft: expected a number"),
                            (["--tracker", "cotracker"], "did you mean 'cotracker3'"),
                            (["--flow", "raft", "--flow-option", "size=huge"], "size=huge: expected"),
                            (["--tracker", "cotracker3"], "--tracker-option repo=PATH"),
                            (["--flow", "raft", "--flow-option", "weights=./no/raft.pth"], "no such file")):
        done = run_tvbench("data", "build", str(videos), str(out), "--no-instructions", *extra,
                           env={**ENV, "TORCH_HOME": str(tmp_path / "torch-home")})
        assert done.returncode == 2 and expected in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()


def test_ray_engine_joins_an_existing_cluster(videos, tmp_path):
    """`ray start --head` (a one-node cluster, as a user's head node), then `--ray-address auto`: the build runs
    on its actors and leaves the cluster running (tvbench shuts down only an instance it started)."""
    pytest.importorskip("ray")
    import subprocess
    import sys

    from conftest import run_tvbench

    import shutil
    import tempfile

    ray_cli = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, **ENV, "RAY_ADDRESS": ""}
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths must fit AF_UNIX's 107
    started = subprocess.run([ray_cli, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false",
                              "--temp-dir", str(temp), "--disable-usage-stats"], env=env, capture_output=True,
                             text=True, timeout=120)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        one, on_cluster = tmp_path / "one", tmp_path / "cluster"
        assert run_tvbench("data", "build", str(videos), str(one), "--strides", "8", "--no-instructions",
                           env=ENV).returncode == 0
        done = run_tvbench("data", "build", str(videos), str(on_cluster), "--strides", "8", "--no-instructions",
                           "--engine", "ray", "--ray-address", "auto", env={**ENV, "RAY_ADDRESS": ""})
        assert done.returncode == 0, done.stderr
        assert (one / "cases.jsonl").read_text() == (on_cluster / "cases.jsonl").read_text()
        probe = "import ray; ray.init(address='auto', log_to_driver=False); print(ray.cluster_resources()['CPU'])"
        status = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, f"tvbench shut down a cluster it did not start: {status.stderr[-1500:]}"
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def test_worker_processes_annotate_through_one_mllm_server_and_reply_cache(videos, tmp_path):
    """Two worker processes ask the (fake) MLLM server through OUT's one reply cache: the same questions as one
    process (an instruction and its check per case), and the same cases."""
    from test_video_build import _mllm_script
    from tvbench.judge.testing import FakeJudgeServer
    from tvbench.videos.build import BuildConfig, build

    good = json.dumps({"forward": "Move the patterned square down and to the right",
                       "backward": "Move the patterned square up and to the left"})
    with FakeJudgeServer(_mllm_script(good)) as server:
        config = BuildConfig(strides=[8], mllm_base_url=server.base_url, mllm_model="fake-vl")
        one = build(videos, tmp_path / "one", config, say=lambda line: None)
        asked = len(server.requests)
        two = build(videos, tmp_path / "two", config, say=lambda line: None, workers=2)
        assert len(server.requests) == 2 * asked and asked == 2 * one["annotated"]  # instruction + check per case
    assert one == two and one["annotated"] == one["written"] >= 4
    assert (tmp_path / "one" / "cases.jsonl").read_text() == (tmp_path / "two" / "cases.jsonl").read_text()
    cases = [json.loads(line) for line in (tmp_path / "two" / "cases.jsonl").read_text().splitlines()]
    assert all(c["instruction"].startswith("Move the patterned square") for c in cases)


def test_ctrl_c_with_worker_processes_stops_all_of_them_and_a_rerun_finishes(videos, tmp_path):
    """SIGINT to the whole process group (what Ctrl-C does) once the workers have started: exit 130 with one line,
    no worker left running, and the rerun ends with the same cases as an uninterrupted build."""
    import signal
    import subprocess
    import time

    from conftest import run_tvbench, tvbench_command

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    args = ["--strides", "8,16", "--no-instructions", "--workers", "2"]
    assert run_tvbench("data", "build", str(videos), str(whole), *args, env=ENV).returncode == 0
    process = subprocess.Popen([*tvbench_command(), "data", "build", str(videos), str(stopped), *args],
                               env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and not (stopped / ".build" / "clips").exists():
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the build finished before Ctrl-C reached it")
    assert process.returncode == 130 and err.strip().splitlines()[-1].startswith("interrupted"), err[-2000:]
    group = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(process.pid)], capture_output=True, text=True)
    running = [line for line in group.stdout.splitlines() if not line.split()[1].startswith("Z")]  # Z: exited
    assert running == [], f"a worker outlived the build: {running}"
    rerun = run_tvbench("data", "build", str(videos), str(stopped), *args, env=ENV)
    assert rerun.returncode == 0, rerun.stderr
    assert (stopped / "cases.jsonl").read_text() == (whole / "cases.jsonl").read_text()


def test_the_funnel_under_the_bar_moves_within_a_video(videos, tmp_path, monkeypatch):
    """In one process the note is refreshed after every batch of clips, not only when a video ends."""
    from contextlib import contextmanager

    import tvbench.progress
    from tvbench.videos.build import BuildConfig, build

    notes: list[str] = []

    class Recorder:
        def advance(self, steps: int = 1) -> None:
            notes.append("advance")

        def note(self, text: str) -> None:
            notes.append(text)

    @contextmanager
    def recording_bar(description, total, *, enabled=True, notes=False):
        yield Recorder()

    monkeypatch.setattr(tvbench.progress, "progress_bar", recording_bar)
    listing = tmp_path / "one.txt"
    listing.write_text(f"{videos / 'square.mp4'}\n")
    build(listing, tmp_path / "out", BuildConfig(strides=[4], no_instructions=True, flow_batch=1),
          say=lambda line: None, progress=True)
    before_the_video_ends = notes[:notes.index("advance")]
    assert len(before_the_video_ends) == 4  # 20 frames at stride 4: four clips, one batch each
    assert before_the_video_ends[0].startswith("clips 1 >") and before_the_video_ends[-1].endswith("written 4")
