"""``tvbench data build``: videos -> clips -> tracks + flow -> filters -> sparse points -> instructions -> cases.

Resumable: each clip's outcome (a case, or a rejection with its reason) is written atomically under
``OUT/.build/clips/<video key>/<clip id>.json`` (its images first, under ``OUT/.build/images/<video key>/``), and a
video whose clips are all done gets ``OUT/.build/videos/<key>.json``; a rerun skips both. A video is the unit of
work: in this process, in worker processes (``workers``) or on Ray actors (:mod:`tvbench.videos.engines`), each
worker holding its own :class:`Builder`. The benchmark (``cases.jsonl`` + ``images/``) is then assembled from
every finished clip with the folder writer, under a lock, so shards (``--shard K/N``, videos split by index) can
share one OUT.
``OUT/build_stats.json`` holds the funnel and every rejection.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from tvbench.errors import ConfigError
from tvbench.io import atomic_save_png, atomic_write_json, file_lock, sha256_hex
from tvbench.videos import clips as clips_mod
from tvbench.videos.filters import (FilterConfig, check_exposure, check_global_motion, check_motion, check_quality,
                                    check_shot_cut)
from tvbench.videos.sampling import as_pairs, sample_sparse
from tvbench.videos.sources import VideoInput, list_inputs
from tvbench.videos.tracking import Tracks, check_flow, check_tracker, create_flow, create_tracker

BUILD_DIR = ".build"
STATS_FILE = "build_stats.json"
FUNNEL = ("videos", "bad_videos", "clips", "done_before", "decoded", "kept_shot_cut", "kept_exposure",
          "kept_quality", "kept_global_motion", "tracked", "kept_motion", "sampled", "annotated", "written",
          "vfr_videos")
NO_INSTRUCTIONS = "none: built with --no-instructions"


@dataclass
class BuildConfig:
    strides: list[int] = field(default_factory=lambda: [8, 16])
    max_clips: int | None = None  # per video
    points: int = 5  # sparse points per case
    tracker: str = "auto"  # cotracker3 where there is a CUDA GPU, lk elsewhere (tracking.AUTO)
    flow: str = "auto"  # raft where there is a CUDA GPU, dis elsewhere
    tracker_options: dict = field(default_factory=dict)  # key=value strings, checked by the tracker's entry
    flow_options: dict = field(default_factory=dict)
    filters: FilterConfig = field(default_factory=FilterConfig)
    shard: tuple[int, int] = (1, 1)  # K/N, K from 1
    mllm_base_url: str | None = None
    mllm_model: str | None = None
    no_instructions: bool = False
    magnitude_groups: bool = False  # clips at every stride from one start frame -> one magnitude group
    flow_batch: int = 8  # clips whose flows, then tracks, are computed in one call (one GPU batch for the learned)
    min_side: int = clips_mod.MIN_SIDE  # a video smaller than this is refused
    max_side: int = clips_mod.MAX_SIDE  # a larger one is scaled down to this on decoding
    video_column: str | None = None  # a Hugging Face dataset's video column (default: its one Video feature)


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (1, 1)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 1/4")
    return int(match.group(1)), int(match.group(2))


def shard_of(videos: list, shard: tuple[int, int]) -> list:
    """The videos of shard K/N: every N-th, starting at the K-th (K from 1), as ``tvbench run --shard``."""
    k, n = shard
    return [v for i, v in enumerate(videos) if i % n == k - 1]


def clip_id(key: str, clip: clips_mod.Clip) -> str:
    return f"{key}-s{clip.stride}-f{clip.start:06d}"


def check_config(config: BuildConfig) -> None:
    """Everything about a build's settings that can be refused without loading or writing anything."""
    if not config.no_instructions and not (config.mllm_base_url and config.mllm_model):
        raise ConfigError("tvbench data build: pass --mllm-base-url and --mllm-model for instructions, or "
                          "--no-instructions to write cases without them")
    if not config.strides or min(config.strides) < 1:
        raise ConfigError("--strides: give positive frame counts, e.g. 8,16")
    if config.flow_batch < 1:
        raise ConfigError(f"--flow-batch {config.flow_batch}: expected 1 or more")
    if not 1 <= config.min_side <= config.max_side:
        raise ConfigError(f"--min-side {config.min_side} --max-side {config.max_side}: expected 1 <= min <= max")
    check_tracker(config.tracker, config.tracker_options)
    check_flow(config.flow, config.flow_options)


class Builder:
    def __init__(self, config: BuildConfig, out: Path, say: Callable[[str], None] = print, *,
                 models: tuple | None = None):
        """``models``: the (tracker, flow) already made, else each is made on first use."""
        check_config(config)
        self.config, self.out, self.say = config, Path(out), say
        if (self.out / "cases.jsonl").exists() and not (self.out / BUILD_DIR).exists():
            raise ConfigError(f"{self.out}: holds a benchmark that tvbench data build did not write")
        self.work = self.out / BUILD_DIR
        for sub in ("clips", "videos", "images", "inputs"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        self.annotator = None
        if not config.no_instructions:
            from tvbench.videos.annotate import Annotator

            self.annotator = Annotator(config.mllm_base_url, config.mllm_model, self.work / "mllm.cache.sqlite")
        self.funnel: Counter = Counter()
        self.on_step: Callable[[], None] | None = None  # called after each batch of clips (the progress bar)
        self._writer, self._pending = None, []
        if models is not None:
            self.tracker, self.flow = models

    # Created on first use: a worker pool's parent process never loads a tracker or flow network.
    @cached_property
    def tracker(self):
        return create_tracker(self.config.tracker, self.config.tracker_options)

    @cached_property
    def flow(self):
        return create_flow(self.config.flow, self.config.flow_options)

    # --- one clip ---
    # Work files go in a folder per video: a folder of every clip of a large build would make each atomic write's
    # scan for a killed writer's leftovers slow (18 ms a write at 40,000 files, measured here).
    def _marker(self, cid: str) -> Path:
        return self.work / "clips" / self._key / f"{cid}.json"

    def _image(self, name: str) -> str:
        """Where a clip's image goes, relative to the work folder (and the record's path to it)."""
        return f"images/{self._key}/{name}.png"

    def _provenance(self, clip: clips_mod.Clip, seed: int, weights: str, **extra) -> dict:
        return {"video": str(clip.video), "frames": [clip.start, clip.end], "stride": clip.stride, "fps": clip.fps,
                "times_s": list(clip.times), "vfr": clip.vfr, "rotation": clip.rotation, "scale": clip.scale,
                "tracker": self.tracker.describe(), "flow": self.flow.describe(),
                "filters": self.config.filters.describe(),
                "sampling": {"points": self.config.points, "seed": seed, "weights": weights}, **extra,
                "mllm": self.annotator.describe() if self.annotator else None}

    def _is_done(self, cid: str) -> bool:
        path = self._marker(cid)
        if not path.exists():
            return False
        if self.annotator is not None:  # a clip built --no-instructions is annotated now
            record = json.loads(path.read_text())
            return not (record.get("status") == "written" and record.get("no_instructions"))
        return True

    # Images are encoded and written by one thread beside the tracker (Pillow's PNG encoder releases the GIL), each
    # clip's images before its marker, so a marker always names images on disk; a killed build loses only clips
    # whose marker was not written yet, and recomputes them.
    def _write(self, uid: str, frames: dict[str, np.ndarray], outcome: dict) -> None:
        def write(marker: Path = self._marker(uid)) -> None:
            for relative, frame in frames.items():
                atomic_save_png(self.work / relative, Image.fromarray(frame))
            atomic_write_json(marker, outcome)

        if self._writer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tvbench-writer")
        self._pending.append(self._writer.submit(write))
        if len(self._pending) > 8:  # a bound on the frames held in memory
            self._pending.pop(0).result()

    def flush(self) -> None:
        """Wait for every queued write; the first one that failed raises here."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def _reject(self, cid: str, clip: clips_mod.Clip, stage: str, reason: str) -> dict:
        outcome = {"status": "rejected", "id": cid, "video": str(clip.video), "stage": stage, "reason": reason}
        atomic_write_json(self._marker(cid), outcome)
        return outcome

    def screen(self, cid: str, clip: clips_mod.Clip) -> dict | None:
        """The filters that need no flow (shot cut, exposure, blur): the rejection, or None to go on."""
        cfg = self.config
        first, last = clip.frames[0], clip.frames[-1]
        self.funnel["decoded"] += 1
        reason = check_shot_cut(clip.frames, cfg.filters, clip.start)
        if reason:
            return self._reject(cid, clip, "shot_cut", reason)
        self.funnel["kept_shot_cut"] += 1
        reason = check_exposure(first, last, cfg.filters)
        if reason:
            return self._reject(cid, clip, "exposure", reason)
        self.funnel["kept_exposure"] += 1
        reason = check_quality(first, last, cfg.filters)
        if reason:
            return self._reject(cid, clip, "quality", reason)
        self.funnel["kept_quality"] += 1
        return None

    def still_camera(self, cid: str, clip: clips_mod.Clip, flow: np.ndarray) -> dict | None:
        """The camera-motion filter on the clip's flow (I1 -> I2): the rejection, or None to go on."""
        reason = check_global_motion(flow, self.config.filters)
        if reason:
            return self._reject(cid, clip, "global_motion", reason)
        self.funnel["kept_global_motion"] += 1
        return None

    def finish(self, cid: str, clip: clips_mod.Clip, flow: np.ndarray, tracked: Tracks) -> dict:
        """A clip past the camera filter, with its flow and tracks: motion, points, instruction, output."""
        cfg = self.config
        first, last = clip.frames[0], clip.frames[-1]
        height, width = first.shape[:2]
        tracks = tracked.kept()
        self.funnel["tracked"] += 1
        reason = check_motion(tracks, cfg.filters)
        if reason:
            return self._reject(cid, clip, "motion", reason)
        self.funnel["kept_motion"] += 1
        seed = int(sha256_hex(cid)[:8], 16)
        picked = sample_sparse(tracks, np.linalg.norm(flow, axis=-1), n=cfg.points, seed=seed)
        if len(picked) == 0:
            return self._reject(cid, clip, "sampling", "no moving track to sample")
        self.funnel["sampled"] += 1
        points = as_pairs(tracks, picked, width, height)
        dense = as_pairs(tracks, None, width, height)
        meta: dict = {"provenance": self._provenance(clip, seed, f"normalised {self.flow.name} flow magnitude")}
        instruction = None
        if self.annotator is None:
            meta["instructions"] = NO_INSTRUCTIONS
        else:
            from tvbench.videos.annotate import Rejected

            try:
                instruction, reverse = self.annotator.annotate(first, last, points)
            except Rejected as exc:
                return self._reject(cid, clip, "mllm", str(exc))
            meta["reverse_instruction"] = reverse
            self.funnel["annotated"] += 1
        images = {role: self._image(f"{cid}.{role}") for role in ("source", "target")}
        record = {"id": cid, **images, "points": points, "dense_points": dense, "subtask": "real", "meta": meta}
        if instruction is not None:
            record["instruction"] = instruction
        outcome = {"status": "written", "id": cid, "record": record, "no_instructions": self.annotator is None}
        self._write(cid, {images["source"]: first, images["target"]: last}, outcome)
        self.funnel["written"] += 1
        return outcome

    # --- one magnitude group (--magnitude-groups) ---
    def process_group(self, gid: str, group: list[clips_mod.Clip]) -> dict:
        """Clips sharing I1 at increasing strides -> one case per stride, ``subtask="magnitude"``, ``group=gid``:
        the same tracks (visible at every stride, sampled by the largest stride's flow) as points, so requested
        lengths grow with the stride; one instruction (asked on the largest stride's pair) for all of them.
        Rejected as a whole: any clip failing quality or camera motion, too little motion at the smallest stride,
        or requested lengths not strictly increasing."""
        cfg = self.config
        first = group[0].frames[0]
        height, width = first.shape[:2]
        self.funnel["decoded"] += 1
        longest = group[-1]  # holds every frame of the group
        reason = check_shot_cut(longest.frames, cfg.filters, longest.start)
        if reason:
            return self._reject(gid, longest, "shot_cut", f"stride {longest.stride}: {reason}")
        self.funnel["kept_shot_cut"] += 1
        for clip in group:
            reason = check_exposure(first, clip.frames[-1], cfg.filters)
            if reason:
                return self._reject(gid, clip, "exposure", f"stride {clip.stride}: {reason}")
        self.funnel["kept_exposure"] += 1
        for clip in group:
            reason = check_quality(first, clip.frames[-1], cfg.filters)
            if reason:
                return self._reject(gid, clip, "quality", f"stride {clip.stride}: {reason}")
        self.funnel["kept_quality"] += 1
        flows = self.flow.flow_many([(first, clip.frames[-1]) for clip in group])  # one batch: the same I1
        for clip, flow in zip(group, flows):
            reason = check_global_motion(flow, cfg.filters)
            if reason:
                return self._reject(gid, clip, "global_motion", f"stride {clip.stride}: {reason}")
        self.funnel["kept_global_motion"] += 1
        all_tracks = self.tracker.track_many([clip.frames for clip in group])  # same grid on the same I1: aligned
        common = np.logical_and.reduce([t.visible for t in all_tracks])
        per_stride = [Tracks(t.start[common], t.end[common], t.visible[common]) for t in all_tracks]
        self.funnel["tracked"] += 1
        reason = check_motion(per_stride[0], cfg.filters)
        if reason:
            return self._reject(gid, group[0], "motion", f"stride {group[0].stride}: {reason}")
        self.funnel["kept_motion"] += 1
        seed = int(sha256_hex(gid)[:8], 16)
        picked = sample_sparse(per_stride[-1], np.linalg.norm(flows[-1], axis=-1), n=cfg.points, seed=seed)
        if len(picked) == 0:
            return self._reject(gid, group[-1], "sampling", "no moving track to sample")
        points = [as_pairs(t, picked, width, height) for t in per_stride]
        lengths = [float(np.mean([np.hypot(p[2] - p[0], p[3] - p[1]) for p in pts])) for pts in points]
        if any(b <= a for a, b in zip(lengths, lengths[1:])):
            return self._reject(gid, group[-1], "magnitude",
                                "requested lengths do not grow with the stride: "
                                + ", ".join(f"{c.stride}: {n:.2f} px" for c, n in zip(group, lengths)))
        self.funnel["sampled"] += 1
        instruction, extra = None, {}
        if self.annotator is None:
            extra["instructions"] = NO_INSTRUCTIONS
        else:
            from tvbench.videos.annotate import Rejected

            try:
                instruction, reverse = self.annotator.annotate(first, group[-1].frames[-1], points[-1])
            except Rejected as exc:
                return self._reject(gid, group[-1], "mllm", str(exc))
            extra["reverse_instruction"] = reverse
            self.funnel["annotated"] += 1
        source = self._image(f"{gid}.source")
        frames = {source: first}
        records = []
        for clip, pts, tracks, length in zip(group, points, per_stride, lengths):
            cid = f"{gid}-s{clip.stride}"
            target = self._image(f"{cid}.target")
            frames[target] = clip.frames[-1]
            meta = {**extra, "requested_length_px": round(length, 2), "provenance": self._provenance(
                clip, seed, f"normalised {self.flow.name} flow magnitude of the largest stride; tracks visible at "
                "every stride of the group", magnitude_group={"strides": [c.stride for c in group]})}
            record = {"id": cid, "source": source, "target": target, "points": pts,
                      "dense_points": as_pairs(tracks, None, width, height), "subtask": "magnitude", "group": gid,
                      "meta": meta}
            if instruction is not None:
                record["instruction"] = instruction
            records.append(record)
        outcome = {"status": "written", "id": gid, "records": records, "no_instructions": self.annotator is None}
        self._write(gid, frames, outcome)
        self.funnel["written"] += 1
        return outcome

    def _units(self, path: Path, key: str, label: str):
        """(id, variable frame rate?, clip or magnitude group) for each unit of one video as decoding reaches it."""
        cfg = self.config
        named = (lambda clip: clip) if label == str(path) else (lambda clip: dataclasses.replace(clip, video=label))
        sizes = {"min_side": cfg.min_side, "max_side": cfg.max_side, "label": label}
        if cfg.magnitude_groups:
            for group in clips_mod.iter_groups(path, cfg.strides, cfg.max_clips, warn=self.say, **sizes):
                gid = f"{key}-g{group[0].start:06d}"
                yield gid, group[0].vfr, [named(c) for c in group]
        else:
            for clip in clips_mod.iter_clips(path, cfg.strides, cfg.max_clips, warn=self.say, **sizes):
                cid = clip_id(key, clip)
                yield cid, clip.vfr, named(clip)

    def _stepped(self) -> None:
        if self.on_step is not None:
            self.on_step()

    def _process_batch(self, batch: list[tuple[str, clips_mod.Clip]]) -> None:
        """Clips of one video (one frame size), stage by stage: screened one by one, the flows of those kept in one
        ``flow_many`` call, the camera filter, the tracks of those left in one ``track_many`` call (single forward
        passes for the learned models on the GPU), then each finished."""
        kept = [(cid, clip) for cid, clip in batch if self.screen(cid, clip) is None]
        if not kept:
            return
        flows = self.flow.flow_many([(clip.frames[0], clip.frames[-1]) for _, clip in kept])
        still = [(cid, clip, flow) for (cid, clip), flow in zip(kept, flows)
                 if self.still_camera(cid, clip, flow) is None]
        if not still:
            return
        tracked = self.tracker.track_many([clip.frames for _, clip, _ in still])
        for (cid, clip, flow), tracks in zip(still, tracked):
            self.finish(cid, clip, flow, tracks)

    # --- one video: the unit of work of every engine ---
    def build_video(self, video: VideoInput) -> tuple[Counter, list[str]]:
        """Build one video's clips (skipping finished ones); its funnel counts and the lines it has to say."""
        lines: list[str] = []
        self.funnel, self.say = Counter(), lines.append
        self._build_video(video)
        return self.funnel, lines

    def _build_video(self, video: VideoInput) -> None:
        self.funnel["videos"] += 1
        key = self._key = video.key
        done_marker = self.work / "videos" / f"{key}.json"
        done = json.loads(done_marker.read_text()) if done_marker.exists() else None
        windows = {"strides": self.config.strides, "max_clips": self.config.max_clips,
                   "magnitude_groups": self.config.magnitude_groups}
        if (done is not None and all(done.get(k) == v for k, v in windows.items())
                and (self.annotator is None or not done.get("no_instructions"))):
            self.funnel["clips"] += done.get("clips", 0)
            self.funnel["done_before"] += done.get("clips", 0)
            if done.get("bad"):
                self.say(f"{video.label}: {done['bad']} (recorded by an earlier run)")
                self.funnel["bad_videos"] += 1
            return
        made = 0
        try:
            with video.open(self.work / "inputs") as path:
                batch: list[tuple[str, clips_mod.Clip]] = []
                for uid, vfr, unit in self._units(path, key, video.label):
                    if made == 0 and vfr:  # once per video (the flag comes from the timestamps, before decoding)
                        self.funnel["vfr_videos"] += 1
                    made += 1
                    self.funnel["clips"] += 1
                    if self._is_done(uid):
                        self.funnel["done_before"] += 1
                    elif isinstance(unit, list):
                        self.process_group(uid, unit)
                        self._stepped()
                    else:
                        batch.append((uid, unit))
                        if len(batch) >= self.config.flow_batch:
                            self._process_batch(batch)
                            self._stepped()
                            batch = []
                self._process_batch(batch)
        except clips_mod.BadVideo as exc:
            self.flush()
            self.say(f"{video.label}: {exc.reason}")
            self.funnel["bad_videos"] += 1
            atomic_write_json(done_marker, {"video": video.label, "clips": made, "bad": exc.reason, **windows})
            return
        self.flush()  # the video is done only once its clips are on disk
        atomic_write_json(done_marker, {"video": video.label, "clips": made,
                                        "no_instructions": self.annotator is None, **windows})

    def assemble(self) -> None:
        """Write ``cases.jsonl`` + ``images/`` from every finished clip (all shards), and the stats file."""
        from tvbench.cases import Benchmark
        from tvbench.cases.case import ImageRef, parse_case
        from tvbench.cases.folder import write_folder

        with file_lock(self.work / "assemble.lock"):
            cases, rejections, bad = [], [], []
            for path in sorted((self.work / "clips").glob("*/*.json")):
                outcome = json.loads(path.read_text())
                if outcome.get("status") == "written":
                    for record in outcome.get("records") or [outcome["record"]]:
                        cases.append(parse_case(record, lambda cid, role, value: ImageRef(
                            value, path=self.work / value)))
                else:
                    rejections.append(outcome)
            for path in sorted((self.work / "videos").glob("*.json")):
                done = json.loads(path.read_text())
                if done.get("bad"):
                    bad.append({"video": done["video"], "reason": done["bad"]})
            bench = Benchmark(name=self.out.name, spec=str(self.out), cases=cases,
                              info={"built_by": "tvbench data build"})
            write_folder(bench, self.out, overwrite=True, link=True)
            atomic_write_json(self.out / STATS_FILE, {
                "funnel_last_run": {k: self.funnel.get(k, 0) for k in FUNNEL},
                "cases": len(cases), "rejections": rejections, "bad_videos": bad,
                "rejected_by_stage": dict(Counter(r.get("stage") for r in rejections))})

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self.annotator is not None:
            self.annotator.close()


def funnel_line(funnel: Counter) -> str:
    return ", ".join(f"{k} {funnel.get(k, 0)}" for k in FUNNEL)


def funnel_note(funnel: Counter) -> str:
    """The funnel in a line under the progress bar: clips, then what each filter kept, then cases written."""
    stages = [("clips", "clips")] + [(k, k[len("kept_"):]) for k in FUNNEL if k.startswith("kept_")]
    return " > ".join(f"{name} {funnel.get(key, 0)}" for key, name in stages + [("written", "written")])


def build(videos_source: str | Path, out: Path, config: BuildConfig, say: Callable[[str], None] = print, *,
          engine: str = "local", workers: int | None = None, ray_address: str | None = None,
          gpus_per_worker: float = 0.0, progress: bool = False) -> Counter:
    """Build ``out`` from the videos of ``videos_source`` (see :func:`~tvbench.videos.sources.list_inputs`).

    ``engine="local"`` builds in this process (``workers`` None or 1) or in ``workers`` processes; ``engine="ray"``
    on ``workers`` Ray actors (default one per CPU; ``ray_address``: an existing cluster, else ``RAY_ADDRESS``, else
    a local instance). Every engine runs :meth:`Builder.build_video` per video; this process assembles the benchmark.
    """
    from tvbench.progress import progress_bar
    from tvbench.videos import engines

    if engine not in engines.ENGINES:
        raise ConfigError(f"--engine {engine!r}: expected one of {', '.join(engines.ENGINES)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: expected 1 or more")
    check_config(config)
    videos = list_inputs(videos_source, config.video_column)
    in_process = engine == "local" and (workers or 1) == 1
    # In this process, the models are made (weights and code found, or a one-line error) before OUT is touched.
    models = (create_tracker(config.tracker, config.tracker_options),
              create_flow(config.flow, config.flow_options)) if in_process else None
    builder = Builder(config, out, say, models=models)
    mine = shard_of(videos, config.shard)
    funnel: Counter = Counter()
    try:
        with progress_bar("videos", len(mine), enabled=progress, notes=True) as bar:
            def done(delta: Counter, lines: list[str]) -> None:
                funnel.update(delta)
                for line in lines:
                    say(line)
                bar.advance()
                bar.note(funnel_note(funnel))

            if engine == "ray":
                engines.run_ray(config, out, mine, done, address=ray_address, workers=workers,
                                gpus_per_worker=gpus_per_worker)
            elif not in_process:
                engines.run_processes(config, out, mine, done, workers=workers)
            else:  # in this process the funnel also moves within a video, after each batch of clips
                builder.on_step = lambda: bar.note(funnel_note(funnel + builder.funnel))
                for video in mine:
                    done(*builder.build_video(video))
        builder.say, builder.funnel = say, funnel
        builder.assemble()
    finally:
        builder.close()
    say("funnel: " + funnel_line(funnel))
    return funnel
