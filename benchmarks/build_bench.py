"""``tvbench data build`` on CPU: clips per minute for each stage, the builder against its unavoidable work, shards.

Encodes its own synthetic videos (a textured square moving over a textured background, libx264; the generator is
a copy of the one in tests/test_video_build.py, made larger), then measures, single-threaded (OpenCV and OpenMP at
one thread):

- each stage alone, in clips per minute: decode (PyAV, cutting clips), track (LK, dense grid, forward-backward),
  flow (DIS), filters (shot cut, exposure, quality, camera motion, motion, sparse sampling), write (the two PNGs
  and the clip's record);
- the whole builder (``build``, --no-instructions, a fresh OUT) against the sum of decode + track + flow
  (the work it cannot avoid): the ratio; the issue's target is 1.2x or less;
- two shards (``--shard 1/2`` and ``2/2``) as two processes pinned to two cores against one process on one core
  (each timed from its process's start, import included): the speed-up; the target is 1.7x or more;
- ``--workers 2`` (two worker processes, one build) against the in-process builder, worker start included.

    OMP_NUM_THREADS=1 python benchmarks/build_bench.py [--videos 8] [--frames 49] [--width 192 --height 128]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tvbench.testing.videos import encode_video as encode
from tvbench.testing.videos import texture


def moving_square_frames(width: int, height: int, n: int, seed: int) -> list[np.ndarray]:
    size = height // 3
    background, patch = texture(width, height, 2 * seed + 1), texture(size, size, 2 * seed + 2)
    frames = []
    for t in range(n):  # 1 px right per frame, back and forth, 1 px down every other frame
        x = 8 + (t % (width - size - 16))
        y = 8 + (t // 2) % (height - size - 16)
        frame = background.copy()
        frame[y:y + size, x:x + size] = patch
        frames.append(frame)
    return frames


def stage_times(videos: list[Path], strides: list[int], work: Path) -> tuple[dict, int]:
    from PIL import Image

    from tvbench.io import atomic_save_png, atomic_write_json
    from tvbench.videos import clips as clips_mod
    from tvbench.videos.filters import (FilterConfig, check_exposure, check_global_motion, check_motion,
                                        check_quality, check_shot_cut)
    from tvbench.videos.sampling import as_pairs, sample_sparse
    from tvbench.videos.tracking import create_flow, create_tracker

    tracker, flow_est, filters = create_tracker("lk"), create_flow("dis"), FilterConfig()
    seconds = dict.fromkeys(("decode", "track", "flow", "filters", "write"), 0.0)
    clips = []
    for video in videos:
        t = time.perf_counter()
        got = list(clips_mod.iter_clips(video, strides))
        seconds["decode"] += time.perf_counter() - t
        clips.extend(got)
    work.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(clips):
        first, last = clip.frames[0], clip.frames[-1]
        t = time.perf_counter()
        tracks = tracker.track(clip.frames).kept()
        seconds["track"] += time.perf_counter() - t
        t = time.perf_counter()
        flow = flow_est.flow(first, last)
        seconds["flow"] += time.perf_counter() - t
        t = time.perf_counter()
        check_shot_cut(clip.frames, filters, clip.start), check_exposure(first, last, filters)
        check_quality(first, last, filters), check_global_motion(flow, filters), check_motion(tracks, filters)
        picked = sample_sparse(tracks, np.linalg.norm(flow, axis=-1), n=5, seed=i)
        h, w = first.shape[:2]
        record = {"points": as_pairs(tracks, picked, w, h), "dense_points": as_pairs(tracks, None, w, h)}
        seconds["filters"] += time.perf_counter() - t
        t = time.perf_counter()
        atomic_save_png(work / f"{i}.source.png", Image.fromarray(first))
        atomic_save_png(work / f"{i}.target.png", Image.fromarray(last))
        atomic_write_json(work / f"{i}.json", record)
        seconds["write"] += time.perf_counter() - t
    return seconds, len(clips)


SHARD_CODE = """
import sys, time, cv2
cv2.setNumThreads(1)
from tvbench.videos.build import BuildConfig, build, parse_shard
build(sys.argv[1], sys.argv[2], BuildConfig(strides=[int(s) for s in sys.argv[3].split(',')], no_instructions=True,
      shard=parse_shard(sys.argv[4])), say=lambda line: None)
"""


def run_shards(videos_dir: Path, out: Path, strides: str, shards: list[tuple[str, int]]) -> float:
    """Wall seconds until every shard process (pinned to its core when taskset exists) has finished."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    start = time.perf_counter()
    procs = []
    for shard, core in shards:
        pin = ["taskset", "-c", str(cores[core % len(cores)])] if Path("/usr/bin/taskset").exists() else []
        procs.append(subprocess.Popen([*pin, sys.executable, "-c", SHARD_CODE, str(videos_dir), str(out), strides,
                                       shard], env=env))
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"shard process failed: {proc.args}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--strides", default="8,16")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
    from tvbench.videos.build import BuildConfig, build

    strides = [int(s) for s in args.strides.split(",")]
    load_before = open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "videos"
        folder.mkdir()
        videos = [encode(folder / f"square{i:02d}.mp4", moving_square_frames(args.width, args.height, args.frames, i))
                  for i in range(args.videos)]
        seconds, n_clips = stage_times(videos, strides, root / "stages")
        t = time.perf_counter()
        funnel = build(folder, root / "whole", BuildConfig(strides=strides, no_instructions=True), say=lambda s: None)
        whole = time.perf_counter() - t
        t = time.perf_counter()
        build(folder, root / "workers", BuildConfig(strides=strides, no_instructions=True), say=lambda s: None,
              workers=2)
        workers = time.perf_counter() - t
        same_workers = (root / "whole" / "cases.jsonl").read_text() == (root / "workers" / "cases.jsonl").read_text()
        one = run_shards(folder, root / "one", args.strides, [("1/1", 0)])
        two = run_shards(folder, root / "two", args.strides, [("1/2", 0), ("2/2", 1)])
        same = (root / "one" / "cases.jsonl").read_text() == (root / "two" / "cases.jsonl").read_text()
    load_after = open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    unavoidable = seconds["decode"] + seconds["track"] + seconds["flow"]
    print(f"{platform.node()} ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"affinity {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}), "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print(f"{args.videos} videos of {args.frames} frames at {args.width}x{args.height}, strides {args.strides}: "
          f"{n_clips} clips, {funnel.get('written', 0)} written; one thread each")
    print("| stage | seconds | clips per minute |")
    print("|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.2f} | {60 * n_clips / value:.0f} |" if value > 0 else f"| {name} | 0 | - |")
    print(f"| decode + track + flow (unavoidable) | {unavoidable:.2f} | {60 * n_clips / unavoidable:.0f} |")
    print(f"| whole builder, in process | {whole:.2f} | {60 * n_clips / whole:.0f} |")
    print(f"\nwhole builder / unavoidable work: {whole / unavoidable:.2f}x (target <= 1.2x)")
    print(f"one process {one:.2f} s, two shards on two cores {two:.2f} s (process start included): "
          f"speed-up {one / two:.2f}x (target >= 1.7x); shards' cases equal one run's: {same}")
    print(f"--workers 2 in one build {workers:.2f} s against in process {whole:.2f} s (worker start included): "
          f"speed-up {whole / workers:.2f}x; cases equal: {same_workers}")
    print(json.dumps({"stages_s": {k: round(v, 3) for k, v in seconds.items()}, "clips": n_clips,
                      "whole_s": round(whole, 3), "ratio": round(whole / unavoidable, 3), "one_s": round(one, 3),
                      "two_s": round(two, 3), "speedup": round(one / two, 3), "same": same,
                      "workers2_s": round(workers, 3), "workers_speedup": round(whole / workers, 3),
                      "same_workers": same_workers}))


if __name__ == "__main__":
    main()
