"""Awkward input for tvbench data build: rotation metadata, variable frame rate, tiny and huge frames, an unknown
codec, shot cuts and bad exposure, on synthetic videos encoded here with PyAV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from test_video_build import (H, N, W, blurred_frames, moving_square_frames, pan_frames,  # noqa: E402
                              static_frames)
from tvbench.testing.videos import encode_video, texture, unknown_codec_copy  # noqa: E402
from tvbench.videos import clips as clips_mod  # noqa: E402
from tvbench.videos.filters import (FilterConfig, check_exposure, check_quality, check_shot_cut,  # noqa: E402
                                    frame_changes)

VFR_TIMES = [0.1 * t for t in range(10)] + [0.9 + 0.05 * t for t in range(1, N - 9)]  # 10 fps, then 20 fps


def cut_frames() -> list[np.ndarray]:
    """The moving square for 10 frames, then another scene (a different texture) for the rest."""
    return moving_square_frames()[:10] + [texture(W, H, 9)] * (N - 10)


def dark_frames() -> list[np.ndarray]:
    return [(frame * 0.1).astype(np.uint8) for frame in moving_square_frames()]


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey difference (H.264 keeps grey; 4:2:0 chroma blurs the textures' colour noise)."""
    if a.shape != b.shape:
        return np.inf
    grey = [cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (a, b)]
    return float(np.abs(grey[0] - grey[1]).mean())


# --- rotation ---
def test_quarter_turns_on_arrays():
    image = np.arange(6).reshape(2, 3)
    assert np.array_equal(clips_mod.upright(image, -90), np.rot90(image, -1))  # a phone's -90: turn clockwise
    assert np.array_equal(clips_mod.upright(image, 90), np.rot90(image, 1))
    assert np.array_equal(clips_mod.upright(image, 180), image[::-1, ::-1])
    assert clips_mod.upright(image, 0) is image
    assert [clips_mod.right_angle(a) for a in (-180, 270, 88, -91, 0, 360)] == [180, -90, 90, -90, 0, 0]


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_rotation_metadata_gives_upright_frames(tmp_path, rotation):
    upright = moving_square_frames()
    stored = [np.ascontiguousarray(np.rot90(f, -rotation // 90)) for f in upright]  # what a turned camera records
    path = encode_video(tmp_path / "phone.mp4", stored, rotation=rotation)
    clip = clips_mod.clips_of(path, [8])[0]
    assert clip.rotation == rotation
    assert clip.frames[0].shape == upright[0].shape and clip.frames[0].flags.c_contiguous
    assert _difference(clip.frames[0], upright[0]) < 2.0
    assert _difference(clip.frames[-1], upright[8]) < 2.0
    assert _difference(clip.frames[0], upright[0][::-1, ::-1]) > 20  # not merely the right shape
    # OpenCV's FFmpeg backend applies the display matrix itself: an independent check of the direction
    capture = cv2.VideoCapture(str(path))
    ok, bgr = capture.read()
    capture.release()
    if ok and bgr.shape == upright[0].shape:
        theirs = bgr[..., ::-1]
        turns = [_difference(np.rot90(clip.frames[0], k), theirs) for k in range(4)]
        assert int(np.argmin(turns)) == 0, turns


def test_unrotated_video_reports_no_rotation(tmp_path):
    clip = clips_mod.clips_of(encode_video(tmp_path / "plain.mp4", moving_square_frames()), [8])[0]
    assert clip.rotation == 0 and clip.scale == 1.0 and not clip.vfr


# --- variable frame rate ---
def test_variable_frame_rate_is_said_once_and_clips_keep_their_times(tmp_path):
    path = encode_video(tmp_path / "vfr.mp4", moving_square_frames(), times=VFR_TIMES)
    lines: list[str] = []
    clips = clips_mod.clips_of(path, [4, 8], warn=lines.append)
    assert len(lines) == 1 and lines[0].startswith(f"{path}: variable frame rate") and "50.0-100.0 ms" in lines[0]
    assert all(c.vfr for c in clips) and len(clips) == 6
    by_window = {(c.start, c.stride): c.times for c in clips}
    assert by_window[(0, 8)] == pytest.approx((0.0, 0.8)) and by_window[(8, 8)] == pytest.approx((0.8, 1.25))
    assert [c.index for c in clips] == list(range(6))
    steady_lines: list[str] = []
    steady = clips_mod.clips_of(encode_video(tmp_path / "cfr.mp4", moving_square_frames()), [8],
                                warn=steady_lines.append)
    assert steady_lines == [] and not any(c.vfr for c in steady)
    assert steady[1].times == pytest.approx((0.8, 1.6))


# --- resolution ---
def test_too_small_is_one_line_naming_the_file(tmp_path):
    path = encode_video(tmp_path / "tiny.mp4", [texture(48, 40, 1)] * 10)
    with pytest.raises(clips_mod.BadVideo) as info:
        clips_mod.clips_of(path, [4])
    assert info.value.line() == f"{path}: too small: 48x40, the shorter side must be at least 64 px"
    assert len(clips_mod.clips_of(path, [4], min_side=32)) == 2


def test_huge_frames_are_downscaled_and_said_once(tmp_path):
    path = encode_video(tmp_path / "square.mp4", moving_square_frames())
    lines: list[str] = []
    clip = clips_mod.clips_of(path, [8], warn=lines.append, max_side=48, min_side=16)[0]
    assert clip.frames[0].shape == (H // 2, W // 2, 3) and clip.scale == 0.5
    assert lines == [f"{path}: {W}x{H} is larger than 48 px: frames downscaled to 48x32 (scale 0.5); points are in "
                     "the downscaled pixels"]
    source = cv2.resize(moving_square_frames()[0], (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    assert _difference(clip.frames[0], source) < 2.0
    with pytest.raises(clips_mod.BadVideo, match="downscaled to 48x32 to fit 48 px"):
        clips_mod.clips_of(path, [8], max_side=48, min_side=40)


# --- codec ---
def test_unsupported_codec_is_one_line(tmp_path, monkeypatch):
    mkv = encode_video(tmp_path / "square.mkv", moving_square_frames())
    unknown = unknown_codec_copy(mkv, tmp_path / "unknown.mkv")
    with pytest.raises(clips_mod.BadVideo) as info:
        clips_mod.clips_of(unknown, [8])
    assert info.value.line().startswith(f"{unknown}: unsupported codec")
    # had the stream been taken anyway, decoding says the same
    monkeypatch.setattr(clips_mod.VideoReader, "_stream", lambda self, container: container.streams.video[0])
    with pytest.raises(clips_mod.BadVideo, match="unsupported codec"):
        clips_mod.clips_of(unknown, [8])


# --- filters ---
@pytest.mark.parametrize("frames", [moving_square_frames, pan_frames, blurred_frames, static_frames])
def test_shot_cut_does_not_fire_on_one_shot(tmp_path, frames):
    for clip in clips_mod.clips_of(encode_video(tmp_path / "one.mp4", frames()), [1, 8, 16]):
        assert check_shot_cut(clip.frames, FilterConfig(), clip.start) is None, frame_changes(clip.frames)


def test_shot_cut_is_rejected_with_its_frames(tmp_path):
    clips = clips_mod.clips_of(encode_video(tmp_path / "cut.mp4", cut_frames()), [8])
    assert check_shot_cut(clips[0].frames, FilterConfig(), clips[0].start) is None  # frames 0-8: before the cut
    reason = check_shot_cut(clips[1].frames, FilterConfig(), clips[1].start)
    assert reason is not None and reason.startswith("shot cut between frames 9 and 10: mean grey change ")


def test_exposure(tmp_path):
    config, good = FilterConfig(), moving_square_frames()[0]
    dark = clips_mod.clips_of(encode_video(tmp_path / "dark.mp4", dark_frames()), [8])[0]
    assert check_exposure(dark.frames[0], dark.frames[-1], config).startswith("too dark: I1 mean grey 1")
    bright = np.clip(good.astype(int) + 150, 0, 255).astype(np.uint8)
    assert check_exposure(good, bright, config).startswith("too bright: I2 mean grey")
    half_black = good.copy()
    half_black[:, : W // 2] = 0
    assert check_exposure(half_black, half_black, config).startswith("clipped: 50% of I1 is black or white")
    brighter = np.clip(good.astype(int) + 50, 0, 255).astype(np.uint8)
    assert check_exposure(good, brighter, config).startswith("exposure changed: mean grey 126.3 in I1, 176.2 in I2")


def test_a_clean_clip_passes_every_new_filter(tmp_path):
    for clip in clips_mod.clips_of(encode_video(tmp_path / "square.mp4", moving_square_frames()), [8, 16]):
        first, last = clip.frames[0], clip.frames[-1]
        assert check_shot_cut(clip.frames, FilterConfig(), clip.start) is None
        assert check_exposure(first, last, FilterConfig()) is None
        assert check_quality(first, last, FilterConfig()) is None


# --- through the builder ---
def _stats(out: Path) -> dict:
    return json.loads((out / "build_stats.json").read_text())


def _cases(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines() if line.strip()]


CHAIN = ("decoded", "kept_shot_cut", "kept_exposure", "kept_quality", "kept_global_motion", "tracked", "kept_motion",
         "sampled", "written")


def test_build_records_awkward_input_in_the_stats(tmp_path):
    from tvbench.videos.build import BuildConfig, build

    videos = tmp_path / "videos"
    videos.mkdir()
    encode_video(videos / "square.mp4", moving_square_frames())
    encode_video(videos / "cut.mp4", cut_frames())
    encode_video(videos / "dark.mp4", dark_frames())
    encode_video(videos / "tiny.mp4", [texture(48, 40, 1)] * 10)
    encode_video(videos / "vfr.mp4", moving_square_frames(), times=VFR_TIMES)
    encode_video(videos / "phone.mp4", [np.ascontiguousarray(np.rot90(f, 1)) for f in moving_square_frames()],
                 rotation=-90)
    unknown_codec_copy(encode_video(tmp_path / "square.mkv", moving_square_frames()), videos / "unknown.mkv")
    lines: list[str] = []
    out = tmp_path / "out"
    funnel = build(videos, out, BuildConfig(strides=[8], no_instructions=True), say=lines.append)

    assert funnel["videos"] == 7 and funnel["bad_videos"] == 2 and funnel["vfr_videos"] == 1
    counts = [funnel[k] for k in CHAIN]
    assert counts == sorted(counts, reverse=True), dict(zip(CHAIN, counts))  # the funnel only narrows
    assert sum("vfr.mp4: variable frame rate: frame intervals 50.0-100.0 ms" in line for line in lines) == 1
    stats = _stats(out)
    bad = {Path(b["video"]).name: b["reason"] for b in stats["bad_videos"]}
    assert bad["tiny.mp4"] == "too small: 48x40, the shorter side must be at least 64 px"
    assert bad["unknown.mkv"].startswith("unsupported codec")
    by_video = {(Path(r["video"]).name, r["stage"], r["reason"].split(":")[0]) for r in stats["rejections"]}
    assert by_video == {("cut.mp4", "shot_cut", "shot cut between frames 9 and 10"),
                        ("dark.mp4", "exposure", "too dark")}
    assert stats["rejected_by_stage"] == {"shot_cut": 1, "exposure": 2}
    cases = {c["id"].split("-")[0]: c for c in _cases(out) if c["meta"]["provenance"]["frames"][0] == 0}
    assert set(cases) == {"square", "cut", "vfr", "phone"}
    phone = np.asarray(cv2.cvtColor(cv2.imread(str(out / cases["phone"]["source"])), cv2.COLOR_BGR2RGB))
    assert _difference(phone, moving_square_frames()[0]) < 2.0  # written upright


def test_build_magnitude_groups_reject_cuts_and_dark_groups(tmp_path):
    from tvbench.videos.build import BuildConfig, build

    videos = tmp_path / "videos"
    videos.mkdir()
    encode_video(videos / "cut.mp4", cut_frames())
    encode_video(videos / "dark.mp4", dark_frames())
    build(videos, tmp_path / "out", BuildConfig(strides=[8, 16], magnitude_groups=True, no_instructions=True),
          say=lambda line: None)
    reasons = sorted((r["stage"], r["reason"]) for r in _stats(tmp_path / "out")["rejections"])
    assert [stage for stage, _ in reasons] == ["exposure", "shot_cut"]
    assert reasons[0][1].startswith("stride 8: too dark") and reasons[1][1].startswith("stride 16: shot cut betw")


def test_build_downscales_huge_videos_and_points_stay_in_the_image(tmp_path):
    from tvbench.videos.build import BuildConfig, build

    width, height, side = 2304, 256, 96
    background, patch = texture(width, height, 5), texture(side, side, 6)
    frames = []
    for t in range(9):
        frame = background.copy()
        x, y = 600 + 3 * t, 60 + 2 * t
        frame[y:y + side, x:x + side] = patch
        frames.append(frame)
    videos = tmp_path / "videos"
    videos.mkdir()
    encode_video(videos / "huge.mp4", frames)
    lines: list[str] = []
    out = tmp_path / "out"
    funnel = build(videos, out, BuildConfig(strides=[8], no_instructions=True), say=lines.append)
    assert sum("huge.mp4: 2304x256 is larger than 2048 px: frames downscaled to 2048x228" in x for x in lines) == 1
    assert funnel["written"] == 1, _stats(out)["rejections"]
    case = _cases(out)[0]
    image_height, image_width = cv2.imread(str(out / case["source"])).shape[:2]
    assert (image_width, image_height) == (2048, 228)
    points = np.array(case["points"] + case["dense_points"], float)
    assert (points[:, [0, 2]] >= 0).all() and (points[:, [0, 2]] <= image_width).all()
    assert (points[:, [1, 3]] >= 0).all() and (points[:, [1, 3]] <= image_height).all()
