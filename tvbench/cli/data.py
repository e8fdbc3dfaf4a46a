"""``tvbench data export`` and ``tvbench data import``: benchmarks between formats."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tvbench.cli.app import _parse_settings, check_choice, data_app, say
from tvbench.errors import ConfigError, TvbenchError


@data_app.command("export", short_help="Write a benchmark as a folder or a Hugging Face dataset.")
def export(
    bench: str = typer.Argument(..., metavar="BENCH", help="'sample', a benchmark folder, or hf:ID[@split]."),
    out: Path = typer.Argument(..., metavar="OUT", help="Destination folder."),
    fmt: str = typer.Option("folder", "--format", "-f", help="folder (cases.jsonl + images) or hf (save_to_disk)."),
    overwrite: bool = typer.Option(False, help="Replace an existing benchmark at the destination."),
) -> None:
    """Write a benchmark in the folder format or as a Hugging Face dataset."""
    from tvbench.cases import load_benchmark, write_folder, write_hf

    check_choice("--format", fmt, ("folder", "hf"))
    benchmark = load_benchmark(bench)
    if fmt == "folder":
        write_folder(benchmark, out, overwrite=overwrite, progress=True)
    else:
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise TvbenchError(f"{out}: not empty; pass --overwrite to replace it")
        write_hf(benchmark, out, progress=True)
    say(f"wrote {len(benchmark)} cases to {out} ({fmt}), hash {benchmark.hash}")


# --- data import (importers subpackage) ---
@data_app.command("import", short_help="Import DragBench, Drag100 or a Hugging Face dataset.")
def import_(
    fmt: Optional[str] = typer.Argument(None, metavar="FORMAT", help="dragbench, drag100 or hf; omit to list them."),
    src: Optional[str] = typer.Argument(None, metavar="SRC", help="The folder (or hf:ID) to import."),
    out: Optional[Path] = typer.Argument(None, metavar="OUT", help="Destination folder benchmark."),
    overwrite: bool = typer.Option(False, help="Replace an existing benchmark at the destination."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Import another benchmark's layout (DragBench, Drag100, a HF dataset) as a folder benchmark."""
    from tvbench.cases.importers import DESCRIPTIONS, IMPORTERS, ImportFailed, import_benchmark

    if fmt is None:
        for name in IMPORTERS.names():
            typer.echo(f"{name}: {DESCRIPTIONS.get(name, '')}")
        return
    IMPORTERS.entry(fmt)  # an unknown format fails here, with a did-you-mean
    if src is None or out is None:
        raise ConfigError(f"tvbench data import {fmt} SRC OUT: give the source and the destination folder")
    try:
        benchmark = import_benchmark(fmt, src, out, overwrite=overwrite, progress=not quiet)
    except ImportFailed as exc:
        if len(exc.errors) == 1:
            raise
        for problem in exc.errors:
            say(f"{src}: {problem}")
        raise TvbenchError(f"{src}: {len(exc.errors)} case(s) cannot be imported; nothing was written") from None
    say(f"imported {len(benchmark)} cases to {out}, hash {benchmark.hash}")
# --- end data import ---


# --- data build (tvbench/videos) ---
@data_app.command("build", short_help="Build cases from videos: clips, tracks, flow, filters, points, instructions.")
def build_(
    videos: str = typer.Argument(..., metavar="VIDEOS", help="A folder of videos (mp4, webm, mov, mkv), a text file "
                                 "of paths (one a line), or a Hugging Face dataset with a video column (hf:ID[@split] "
                                 "or a save_to_disk folder)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Destination folder benchmark (resumable: rerun to go on)."),
    strides: str = typer.Option("8,16", help="Clip lengths in frames, comma-separated: I1 = frame t, I2 = t + stride."),
    max_clips: Optional[int] = typer.Option(None, "--max-clips", help="At most N clips per video."),
    points: int = typer.Option(5, help="Sparse drag points per case."),
    tracker: str = typer.Option("auto", help="Tracker: lk (CPU, no weights), cotracker3 (the paper's; torch.hub "
                                "code, weights cached once), or auto: cotracker3 on a CUDA GPU, lk without."),
    flow: str = typer.Option("auto", help="Flow estimator: dis (CPU, no weights), raft (torchvision's RAFT, "
                             "weights cached once), sea-raft (the paper's; a checkout of its code: --flow-option "
                             "repo=PATH), or auto: raft on a CUDA GPU, dis without."),
    tracker_options: list[str] = typer.Option([], "--tracker-option", metavar="KEY=VALUE",
                                              help="Tracker option (repeatable), e.g. repo=PATH, device=cuda."),
    flow_options: list[str] = typer.Option([], "--flow-option", metavar="KEY=VALUE",
                                           help="Flow option (repeatable), e.g. size=small, weights=PATH."),
    filter_options: list[str] = typer.Option([], "--filter-option", metavar="KEY=VALUE",
                                             help="A filter threshold (repeatable), e.g. border_max_px=2, blur_min=30 "
                                             "(see docs/videos.md)."),
    flow_batch: int = typer.Option(8, "--flow-batch", help="Clips of a video taken through the stages together: "
                                   "their flows in one call (one GPU batch for raft and sea-raft)."),
    min_side: int = typer.Option(64, "--min-side", help="Refuse a video whose shorter side is below this (px)."),
    max_side: int = typer.Option(2048, "--max-side", help="Scale a video whose longer side is above this down to it "
                                 "on decoding (px); points and images are in the scaled pixels."),
    video_column: Optional[str] = typer.Option(None, "--video-column", help="A dataset's video column (default: "
                                               "its one Video feature, else 'video')."),
    mllm_base_url: Optional[str] = typer.Option(None, "--mllm-base-url", help="OpenAI-compatible server, e.g. "
                                                "http://localhost:8000/v1 (vllm serve Qwen/Qwen3-VL-...)."),
    mllm_model: Optional[str] = typer.Option(None, "--mllm-model", help="The model the server serves."),
    no_instructions: bool = typer.Option(False, "--no-instructions", help="Write cases without instructions "
                                         "(recorded in each case's meta)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: only every N-th video, starting at the K-th."),
    magnitude_groups: bool = typer.Option(False, "--magnitude-groups", help="Instead of single clips, one magnitude "
                                          "group per start frame t = 0, S, 2S, ... (S the largest stride): the clips "
                                          "t -> t + s for every stride s, same points, one instruction "
                                          "(subtask magnitude; --max-clips then counts groups)."),
    engine: str = typer.Option("local", help="local (this machine) or ray (a Ray cluster: pip install "
                               "'tvbench[ray]')."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (local; default 1) or Ray actors "
                                          "(default: one per CPU of the cluster), each building whole videos."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="An existing Ray cluster (auto, "
                                              "HOST:PORT); default RAY_ADDRESS, else a local instance."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", help="GPUs each Ray actor asks for "
                                          "(GPU trackers and flow), e.g. 1 or 0.5."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build a benchmark folder from videos (the paper's Sec. 3.2 pipeline), resumably."""
    from tvbench.videos.build import BuildConfig, build, parse_shard
    from tvbench.videos.filters import FilterConfig

    try:
        stride_list = sorted({int(s) for s in strides.split(",") if s.strip()})
    except ValueError:
        raise ConfigError(f"--strides {strides!r}: expected comma-separated frame counts, e.g. 8,16") from None
    check_choice("--engine", engine, ("local", "ray"))
    config = BuildConfig(strides=stride_list, max_clips=max_clips, points=points, tracker=tracker, flow=flow,
                         tracker_options=_parse_settings(tracker_options, "--tracker-option"),
                         flow_options=_parse_settings(flow_options, "--flow-option"),
                         shard=parse_shard(shard), mllm_base_url=mllm_base_url, mllm_model=mllm_model,
                         no_instructions=no_instructions, magnitude_groups=magnitude_groups, video_column=video_column,
                         min_side=min_side, max_side=max_side, flow_batch=flow_batch,
                         filters=FilterConfig.from_options(_parse_settings(filter_options, "--filter-option")))
    funnel = build(videos, out, config, say=say, engine=engine, workers=workers, ray_address=ray_address,
                   gpus_per_worker=gpus_per_worker, progress=not quiet)
    say(f"wrote {funnel.get('written', 0)} new case(s) to {out}; see {out}/build_stats.json for every rejection")
# --- end data build ---
