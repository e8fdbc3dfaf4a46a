"""tvbench data build on synthetic videos encoded here with PyAV (tiny: 96x64, 20 frames)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from tvbench.videos import clips as clips_mod  # noqa: E402
from tvbench.videos.filters import FilterConfig, check_global_motion, check_motion, check_quality  # noqa: E402
from tvbench.videos.sampling import sample_sparse  # noqa: E402
from tvbench.testing.videos import encode_video, texture  # noqa: E402
from tvbench.videos.tracking import create_flow, create_tracker  # noqa: E402

W, H, N = 96, 64, 20
MOTION = (2, 1)  # px per frame of the square, exact (integer shifts)
SQUARE, ORIGIN = 24, (12, 12)


def moving_square_frames(n: int = N) -> list[np.ndarray]:
    background, patch = texture(W, H, 1), texture(SQUARE, SQUARE, 2)
    frames = []
    for t in range(n):
        frame = background.copy()
        x, y = ORIGIN[0] + MOTION[0] * t, ORIGIN[1] + MOTION[1] * t
        frame[y:y + SQUARE, x:x + SQUARE] = patch
        frames.append(frame)
    return frames


def pan_frames(n: int = N) -> list[np.ndarray]:
    wide = texture(W + 2 * n, H, 3)
    return [wide[:, 2 * t:2 * t + W].copy() for t in range(n)]


def blurred_frames(n: int = N) -> list[np.ndarray]:
    return [cv2.GaussianBlur(f, (0, 0), 3.0) for f in moving_square_frames(n)]


def static_frames(n: int = N) -> list[np.ndarray]:
    return [texture(W, H, 4)] * n


encode = encode_video  # (path, frames) -> path: the tests write with the shared encoder


@pytest.fixture
def videos(tmp_path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    encode(folder / "square.mp4", moving_square_frames())
    encode(folder / "pan.mp4", pan_frames())
    encode(folder / "blur.mp4", blurred_frames())
    encode(folder / "static.mp4", static_frames())
    return folder


def test_clips_decode_and_segment(videos):
    clips = clips_mod.clips_of(videos / "square.mp4", [8, 16])
    assert [(c.start, c.stride) for c in clips] == [(0, 8), (8, 8), (0, 16)]
    assert len(clips[0].frames) == 9 and clips[0].frames[0].shape == (H, W, 3)


def test_bad_videos_are_one_line_each(tmp_path, videos):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.webm"
    corrupt.write_bytes(b"not a video at all" * 100)
    short = encode(tmp_path / "short.mp4", moving_square_frames(5))
    missing = tmp_path / "missing.mov"
    for path, reason in ((empty, "zero-length"), (corrupt, "cannot decode"), (short, "shorter than the shortest"),
                         (missing, "no such file")):
        with pytest.raises(clips_mod.BadVideo) as info:
            clips_mod.clips_of(path, [8, 16])
        assert reason in info.value.line() and str(path) in info.value.line()


def _errors(tracks, stride):
    """Tracker error (px) against the exact motion, over tracks that start clear of the square's edges."""
    x0, y0 = ORIGIN
    inside = ((tracks.start[:, 0] >= x0 + 3) & (tracks.start[:, 0] <= x0 + SQUARE - 4)
              & (tracks.start[:, 1] >= y0 + 3) & (tracks.start[:, 1] <= y0 + SQUARE - 4))
    near = ((tracks.start[:, 0] >= x0 - 4) & (tracks.start[:, 0] <= x0 + SQUARE + 3 + MOTION[0] * stride)
            & (tracks.start[:, 1] >= y0 - 4) & (tracks.start[:, 1] <= y0 + SQUARE + 3 + MOTION[1] * stride))
    expected = tracks.start + np.where(inside[:, None], np.array(MOTION, np.float32) * stride, 0)
    clear = inside | ~near  # on the square, or on background the square never covers
    return np.linalg.norm(tracks.end - expected, axis=1)[clear], inside


def test_lk_tracker_error_against_known_motion(videos):
    clip = clips_mod.clips_of(videos / "square.mp4", [8])[0]
    tracks = create_tracker("lk").track(clip.frames).kept()
    errors, inside = _errors(tracks, 8)
    assert inside.sum() >= 4 and len(errors) >= 40
    median, p95 = float(np.median(errors)), float(np.percentile(errors, 95))
    print(f"LK tracker error over {len(errors)} tracks: median {median:.3f} px, p95 {p95:.3f} px")
    # measured: median 0.000 px, p95 0.204 px over 272 tracks (stride 8, motion 16 x 8 px)
    assert median < 0.05 and p95 < 0.3, (median, p95)


def test_sparse_points_land_on_the_moving_object(videos):
    clip = clips_mod.clips_of(videos / "square.mp4", [8])[0]
    tracks = create_tracker("lk").track(clip.frames).kept()
    magnitude = np.linalg.norm(create_flow("dis").flow(clip.frames[0], clip.frames[-1]), axis=-1)
    picked = sample_sparse(tracks, magnitude, n=5, seed=0)
    x0, y0 = ORIGIN
    on_square = ((tracks.start[:, 0] >= x0) & (tracks.start[:, 0] <= x0 + SQUARE - 1)
                 & (tracks.start[:, 1] >= y0) & (tracks.start[:, 1] <= y0 + SQUARE - 1))
    assert len(picked) == 5 and on_square[picked].all(), tracks.start[picked]
    shift = tracks.end[picked] - tracks.start[picked]
    assert np.abs(shift - np.array(MOTION) * 8).max() < 1.0


@pytest.mark.parametrize("name,stage", [("pan", "global_motion"), ("blur", "quality"), ("static", "motion"),
                                        ("square", None)])
def test_filters(videos, name, stage):
    clip = clips_mod.clips_of(videos / f"{name}.mp4", [8])[0]
    config = FilterConfig()
    flow = create_flow("dis").flow(clip.frames[0], clip.frames[-1])
    tracks = create_tracker("lk").track(clip.frames).kept()
    verdicts = {"quality": check_quality(clip.frames[0], clip.frames[-1], config),
                "global_motion": check_global_motion(flow, config), "motion": check_motion(tracks, config)}
    first = next((k for k in ("quality", "global_motion", "motion") if verdicts[k]), None)
    assert first == stage, verdicts


# --- the builder ---
def _cases(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines() if line.strip()]


def _stats(out: Path) -> dict:
    return json.loads((out / "build_stats.json").read_text())


def test_build_cli_no_instructions_validates_and_resumes(videos, tmp_path):
    from conftest import run_tvbench

    (videos / "empty.mkv").write_bytes(b"")
    out = tmp_path / "out"
    env = {"OMP_NUM_THREADS": "1"}
    done = run_tvbench("data", "build", str(videos), str(out), "--strides", "8,16", "--no-instructions", env=env)
    assert done.returncode == 0, done.stderr
    assert "empty.mkv: zero-length file" in done.stderr and "funnel: videos 5, bad_videos 1, clips 12" in done.stderr
    stats = _stats(out)
    assert stats["rejected_by_stage"] == {"quality": 3, "global_motion": 3, "motion": 3}
    by_video = {(r["id"].split("-")[0], r["stage"]) for r in stats["rejections"]}
    assert by_video == {("blur", "quality"), ("pan", "global_motion"), ("static", "motion")}
    cases = _cases(out)
    assert len(cases) == 3 and all(c["id"].startswith("square-") for c in cases)
    for case in cases:
        assert "instruction" not in case and case["meta"]["instructions"].startswith("none")
        assert 1 <= len(case["points"]) <= 5 and len(case["dense_points"]) >= 40  # stride 16: few moving tracks
        prov = case["meta"]["provenance"]
        assert prov["tracker"]["name"] == "lk" and prov["flow"]["name"] == "dis" and prov["mllm"] is None
        assert prov["frames"][1] - prov["frames"][0] == prov["stride"]
    checked = run_tvbench("validate", str(out), env=env)
    assert checked.returncode == 0 and "3 cases OK" in (checked.stdout + checked.stderr), checked.stderr
    before = (out / "cases.jsonl").read_text()
    again = run_tvbench("data", "build", str(videos), str(out), "--strides", "8,16", "--no-instructions", env=env)
    assert again.returncode == 0, again.stderr
    assert "done_before 12" in again.stderr and "decoded 0" in again.stderr and "written 0" in again.stderr
    assert (out / "cases.jsonl").read_text() == before


def _mllm_script(instruct_reply: str, agrees: bool = True):
    from tvbench.judge.testing import Scripted

    def reply(request: dict, index: int) -> Scripted:
        text = request["messages"][0]["content"][-1]["text"]
        if "Instruction:" in text:
            return Scripted(content=json.dumps({"agrees": agrees, "reason": "checked"}))
        return Scripted(content=instruct_reply)
    return reply


def _build_square(videos: Path, out: Path, base_url: str):
    from tvbench.videos.build import BuildConfig, build

    config = BuildConfig(strides=[8], mllm_base_url=base_url, mllm_model="fake-vl")
    lines: list[str] = []
    square_only = videos / "list.txt"
    square_only.write_text("square.mp4\n")
    return build(square_only, out, config, say=lines.append), lines


def test_build_with_fake_mllm_writes_verified_instructions(videos, tmp_path):
    from tvbench.judge.testing import FakeJudgeServer

    good = json.dumps({"forward": "Move the patterned square down and to the right",
                       "backward": "Move the patterned square up and to the left"})
    with FakeJudgeServer(_mllm_script(good)) as server:
        funnel, _ = _build_square(videos, tmp_path / "out", server.base_url)
        assert len(server.requests) == 4  # two clips, instruct + verify each
        assert len(server.requests[0]["messages"][0]["content"]) == 3  # I1 and I2 with points, then the text
    assert funnel["annotated"] == 2 and funnel["written"] == 2
    for case in _cases(tmp_path / "out"):
        assert case["instruction"] == "Move the patterned square down and to the right"
        assert case["meta"]["reverse_instruction"] == "Move the patterned square up and to the left"
        mllm = case["meta"]["provenance"]["mllm"]
        assert mllm["model"] == "fake-vl" and len(mllm["prompts"]["instruct-v1"]) == 64
    for marker in (tmp_path / "out" / ".build").rglob("*.json"):
        marker.unlink()  # every clip to do again: the replies come from the cache
    with FakeJudgeServer(_mllm_script(good)) as server:
        funnel, _ = _build_square(videos, tmp_path / "out", server.base_url)
        assert funnel["written"] == 2 and server.requests == []


@pytest.mark.parametrize("reply,agrees,reason", [
    ("Sure! The square moves.", True, "not a JSON object"),
    (json.dumps({"forward": "%%%% ### 1234", "backward": "ok"}), True, "not a plausible instruction"),
    (json.dumps({"forward": None, "backward": None}), True, "no describable motion"),
    (json.dumps({"forward": "Move the square down", "backward": "Move the square up"}), False, "disagrees")])
def test_mllm_garbage_and_disagreement_are_recorded_rejections(videos, tmp_path, reply, agrees, reason):
    from tvbench.judge.testing import FakeJudgeServer

    with FakeJudgeServer(_mllm_script(reply, agrees)) as server:
        funnel, _ = _build_square(videos, tmp_path / "out", server.base_url)
    assert funnel["written"] == 0 and _cases(tmp_path / "out") == []
    rejections = _stats(tmp_path / "out")["rejections"]
    assert len(rejections) == 2 and all(r["stage"] == "mllm" and reason in r["reason"] for r in rejections)


def test_truncated_videos(videos, tmp_path):
    """An mp4 cut short loses its index (moov at the end): one line. A Matroska file cut short keeps the clips
    before the cut."""
    data = (videos / "square.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(clips_mod.BadVideo, match="cannot decode"):
        clips_mod.clips_of(truncated, [8])
    mkv = encode(tmp_path / "square.mkv", moving_square_frames())
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(mkv.read_bytes()[: mkv.stat().st_size * 2 // 3])
    assert 0 < len(clips_mod.decode(cut)[0]) < N
    assert [(c.start, c.stride) for c in clips_mod.clips_of(cut, [8])] == [(0, 8)]


def test_shards_together_equal_one_run_and_rerun_with_new_strides(videos, tmp_path):
    from tvbench.videos.build import BuildConfig, build

    lines: list[str] = []
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    build(videos, whole, BuildConfig(strides=[8], no_instructions=True), say=lines.append)
    for k in (1, 2):
        build(videos, sharded, BuildConfig(strides=[8], no_instructions=True, shard=(k, 2)), say=lines.append)
    assert _cases(whole) == _cases(sharded) and len(_cases(whole)) == 2
    funnel = build(videos, whole, BuildConfig(strides=[8, 16], no_instructions=True), say=lines.append)
    assert funnel["done_before"] == 8 and funnel["decoded"] == 4 and len(_cases(whole)) == 3


def test_cli_needs_an_mllm_or_no_instructions_and_gpu_models_say_what_they_need(videos, tmp_path):
    from tvbench.errors import ConfigError, UnavailableError
    from tvbench.videos.build import BuildConfig, Builder, parse_shard
    from tvbench.videos.tracking import create_flow, create_tracker

    with pytest.raises(ConfigError, match="--no-instructions"):
        Builder(BuildConfig(), tmp_path / "out")
    with pytest.raises(UnavailableError, match="weights"):
        create_tracker("cotracker3")
    with pytest.raises(UnavailableError, match="git clone .*--flow-option repo=PATH"):
        create_flow("sea-raft")
    with pytest.raises(ConfigError, match="K/N"):
        parse_shard("3/2")
    from tvbench.videos.build import build

    with pytest.raises(ConfigError, match="no-such-folder"):
        build(tmp_path / "no-such-folder", tmp_path / "out2", BuildConfig(no_instructions=True))


def test_a_build_killed_midway_resumes_to_the_same_output_and_leaves_nothing_partial(videos, tmp_path):
    """SIGKILL once the first clip is recorded, rerun: the same cases as an uninterrupted build, no partial file."""
    import signal
    import subprocess
    import time

    from conftest import run_tvbench, tvbench_command

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = ["data", "build", str(videos), "--strides", "8,16", "--no-instructions"]
    assert run_tvbench(*args[:3], str(whole), *args[3:], env=env).returncode == 0
    process = subprocess.Popen([*tvbench_command(), *args[:3], str(killed), *args[3:]], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and not list(killed.rglob("*.json")):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    rerun = run_tvbench(*args[:3], str(killed), *args[3:], env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert (killed / "cases.jsonl").read_text() == (whole / "cases.jsonl").read_text()
    assert not list(killed.rglob(".partial-*"))


def test_magnitude_groups_from_strides(videos, tmp_path):
    from conftest import run_tvbench
    from tvbench.judge.testing import FakeJudgeServer

    env = {"OMP_NUM_THREADS": "1"}
    square_only = videos / "list.txt"
    square_only.write_text("square.mp4\n")
    out = tmp_path / "out"
    done = run_tvbench("data", "build", str(square_only), str(out), "--strides", "4,8,16", "--magnitude-groups",
                       "--no-instructions", env=env)
    assert done.returncode == 0, done.stderr
    cases = _cases(out)
    assert len(cases) == 3 and {c["group"] for c in cases} == {cases[0]["group"]}  # one group: t = 0, 20 frames
    assert all(c["subtask"] == "magnitude" and "instruction" not in c for c in cases)
    assert len({(out / c["source"]).read_bytes() for c in cases}) == 1  # one I1 (the writer names a file per case)
    by_stride = sorted(cases, key=lambda c: c["meta"]["provenance"]["stride"])
    assert [c["meta"]["provenance"]["frames"] for c in by_stride] == [[0, 4], [0, 8], [0, 16]]
    starts = [[p[:2] for p in c["points"]] for c in by_stride]
    assert starts[0] == starts[1] == starts[2]  # the same tracks at each stride
    lengths = [np.mean([np.hypot(p[2] - p[0], p[3] - p[1]) for p in c["points"]]) for c in by_stride]
    assert lengths[0] < lengths[1] < lengths[2]
    expected = [s * np.hypot(*MOTION) for s in (4, 8, 16)]  # the square's exact motion
    assert np.allclose(lengths, expected, atol=0.5), lengths
    checked = run_tvbench("validate", str(out), env=env)
    assert checked.returncode == 0 and "3 cases OK" in (checked.stdout + checked.stderr), checked.stderr

    good = json.dumps({"forward": "Move the patterned square down and to the right",
                       "backward": "Move the patterned square up and to the left"})
    from tvbench.videos.build import BuildConfig, build

    config = BuildConfig(strides=[4, 8, 16], magnitude_groups=True, mllm_base_url="", mllm_model="fake-vl")
    with FakeJudgeServer(_mllm_script(good)) as server:
        config.mllm_base_url = server.base_url
        funnel = build(square_only, tmp_path / "out2", config, say=lambda line: None)
        assert len(server.requests) == 2  # one instruction (and its check) for the whole group
    assert funnel["written"] == 1
    cases = _cases(tmp_path / "out2")
    assert len(cases) == 3 and {c["instruction"] for c in cases} == {"Move the patterned square down and to the right"}
    assert {c["meta"]["reverse_instruction"] for c in cases} == {"Move the patterned square up and to the left"}


def test_built_cases_with_instructions_train_tvedit_bidirectionally(videos, tmp_path):
    """The builder's output trains unchanged: 2 steps of the tiny Qwen controller with --bidirectional."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    pytest.importorskip("accelerate")
    from conftest import run_tvbench
    from tvbench.judge.testing import FakeJudgeServer
    from tvbench.testing.tiny_editors import tiny_pipeline_dir

    good = json.dumps({"forward": "Move the patterned square down and to the right",
                       "backward": "Move the patterned square up and to the left"})
    with FakeJudgeServer(_mllm_script(good)) as server:
        funnel, _ = _build_square(videos, tmp_path / "built", server.base_url)
    assert funnel["written"] == 2
    output = tmp_path / "run"
    done = run_tvbench("train", "tvedit", "--backbone", "qwen", "--data", str(tmp_path / "built"),
                       "--output", str(output), "--model", str(tiny_pipeline_dir("qwen-image-edit")),
                       "--cache-dir", str(tmp_path / "cache"), "--steps", "2", "--blocks", "1", "--injections", "2",
                       "--resolution", "64", "--lr", "3e-3", "--log-with", "none", "-q", "--bidirectional",
                       "--effective-batch", "2", env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = [json.loads(line)["loss"] for line in (output / "loss.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert (output / "controller.safetensors").is_file()
    run = json.loads((output / "run.json").read_text())
    assert run["pairs"] == 4  # two cases, each forward and backward (meta.reverse_instruction)


def test_magnitude_groups_reject_whole_groups_and_motion_that_turns_back(videos, tmp_path):
    from tvbench.videos.build import BuildConfig, build

    background, patch = texture(W, H, 1), texture(SQUARE, SQUARE, 2)
    frames = []
    for t in range(N):  # right 2 px a frame for 8 frames, then back 1 px a frame: at 16 only 8 px from the start
        x = ORIGIN[0] + (2 * t if t <= 8 else 16 - (t - 8))
        frame = background.copy()
        frame[ORIGIN[1]:ORIGIN[1] + SQUARE, x:x + SQUARE] = patch
        frames.append(frame)
    encode(videos / "back.mp4", frames)
    funnel = build(videos, tmp_path / "out", BuildConfig(strides=[8, 16], magnitude_groups=True,
                                                         no_instructions=True), say=lambda line: None)
    assert funnel["clips"] == 5 and funnel["written"] == 1  # one group per video; only the square's is kept
    stats = _stats(tmp_path / "out")
    assert stats["cases"] == 2 and stats["rejected_by_stage"] == {
        "quality": 1, "global_motion": 1, "motion": 1, "magnitude": 1}
    back = [r for r in stats["rejections"] if r["stage"] == "magnitude"][0]
    assert back["id"].startswith("back-") and "do not grow" in back["reason"]
