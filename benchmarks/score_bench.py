"""How close `tvbench score` comes to the work it cannot avoid, measured so that a busy machine cannot fake it.

    python benchmarks/score_bench.py                                   # DragBench dev and sample, 3 repeats
    python benchmarks/score_bench.py --bench sample --limit 6 --repeats 1 --backbones random-tiny   # a quick look

For each benchmark it makes several methods' edits once (identity and tps-warp through `tvbench run`, plus edits
made "elsewhere": shifted, blurred, flipped and half-size copies; the last method is held back), then, for each
backbone (by default the `--smoke` model `random-tiny` and a ViT-S/16-sized `random-vits16`), repeats:

- **scoring**: every method but the last, every default image metric, a cold feature cache and no earlier rows,
  against **its forwards**: one backbone forward per unique image and resolution the metrics read, one image at a
  time. A half-size edit is read twice at the matching resolution (bicubic to the source's size for MD_s,
  bilinear for DragBench's MD, as DragDiffusion's script does): both count as unavoidable.
- **rescoring**: the last method added and everything scored again (earlier rows reused, cached features read
  from disk), against the added method's own new forwards.

Each phase runs in a fresh child process (imports done and, for the forwards, the network built and warmed up
before its clock starts; scoring's clock covers everything `score_results` does: benchmark loading and hashing,
network building, decoding, metrics, files), so its peak memory (`ru_maxrss`) is its own, not the harness's. Within
a repeat the phases alternate (forwards, scoring, forwards, rescoring; the next repeat in the opposite order), so a
burst of load from other jobs hits both sides of a ratio. The table gives median (min–max) over repeats of wall
seconds, CPU seconds (user + system of the child: what the work cost whatever else ran) and each repeat's ratio;
the load average is sampled at each phase's start and end. Targets: scoring <= 1.25 x, rescoring <= 1.3 x.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from tvbench.testing.data import dragbench_dev_folder
from tvbench.testing.measure import load_average, machine, measured, report_to_parent, run_child, spread

RESOLUTIONS = {"global": "resolution", "match": "match_resolution"}
RESIZE_METRICS = {"dragbench_md": Image.BILINEAR}  # metrics that read a resized edit with their own filter


def shift(pixels: int):
    return lambda image: Image.fromarray(np.roll(np.asarray(image), pixels, axis=1))


def half_size(image: Image.Image) -> Image.Image:
    """An edit at half the source's size (scoring resizes it back)."""
    return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.BICUBIC)


METHODS = {
    "identity": None, "tps-warp": None,
    "shift-8": shift(8), "shift-24": shift(24), "half-size": half_size,
    "blur-2": lambda image: image.filter(ImageFilter.GaussianBlur(2)),
    "flip": lambda image: image.transpose(Image.FLIP_LEFT_RIGHT),
}


# ---------------------------------------------------------------------------------------------- preparation (parent)

def prepare_benchmark(spec: str, work: Path, limit: int, dragbench_dev: Path) -> Path:
    """A folder benchmark under ``work`` holding the first ``limit`` cases (all when 0) of ``spec``."""
    from tvbench.cases import load_benchmark
    from tvbench.cases.folder import write_folder

    folder = work / "bench"
    if (folder / "cases.jsonl").is_file():
        return folder
    if spec == "dragbench-dev":
        from tvbench.cases.importers import import_benchmark

        if not dragbench_dev.is_dir():
            raise SystemExit(f"{dragbench_dev}: no DragBench dev folder (set TVBENCH_DRAGBENCH_DEV or --dragbench-dev)")
        bench = import_benchmark("dragbench", dragbench_dev, work / "full-bench")
    else:
        bench = load_benchmark(spec)
    if limit:
        bench.cases = bench.cases[:limit]
    write_folder(bench, folder)
    return folder


def make_edits(bench_folder: Path, out: Path, methods: list[str]) -> None:
    from tvbench.cases import load_benchmark
    from tvbench.methods import create_method
    from tvbench.runner import run_method

    bench = load_benchmark(str(bench_folder))
    for name in methods:
        transform = METHODS[name]
        if transform is None:
            run_method(create_method(name), bench, out, progress=False)
            continue
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for case in bench.cases:
            if not (folder / f"{case.id}.png").is_file():
                transform(case.source.open().convert("RGB")).save(folder / f"{case.id}.png")


def unavoidable_images(bench_folder: Path, folders: list[Path], resolutions: dict[str, int]) -> dict[int, dict]:
    """Per resolution, each distinct image the default image metrics read for the cases they apply to (sources,
    targets, edits at the source's size; identical pixels count once), as their declarations say."""
    from tvbench.cases import load_benchmark
    from tvbench.cases.case import pixel_digest
    from tvbench.metrics import default_metrics, get_metric
    from tvbench.scoring.edits import fit_edit, open_edit

    bench = load_benchmark(str(bench_folder))
    metrics = [get_metric(name) for name in default_metrics()]
    needed: dict[int, dict[str, Image.Image]] = {resolution: {} for resolution in resolutions.values()}
    for case in bench.cases:
        source = case.open_image("source")
        edits = [open_edit(folder / f"{case.id}.png") for folder in folders if (folder / f"{case.id}.png").is_file()]
        for metric in (m for m in metrics if m.not_applicable_reason(case) is None):
            for role, scale in metric.features:
                images = [case.open_image(role)] if role != "edit" else [fit_edit(e, source.size)[0] for e in edits]
                if role == "edit" and metric.name in RESIZE_METRICS:
                    images = [e if e.size == source.size else e.resize(source.size, RESIZE_METRICS[metric.name])
                              for e in edits]
                for image in images:
                    needed[resolutions[scale]].setdefault(pixel_digest(image), image)
    return needed


def save_needed(needed: dict[int, dict], folder: Path) -> int:
    """Write the images as lossless PNGs, ``<folder>/<resolution>/<n>.png``, for a forwards child to read."""
    shutil.rmtree(folder, ignore_errors=True)
    for resolution, images in needed.items():
        (folder / str(resolution)).mkdir(parents=True, exist_ok=True)
        for n, image in enumerate(images.values()):
            image.save(folder / str(resolution) / f"{n:05d}.png")
    return sum(len(images) for images in needed.values())


# ------------------------------------------------------------------------------------------------- phases (children)

def child_forwards(spec: dict) -> None:
    """One forward per image of ``spec["images"]``, one at a time, after building and warming up the network."""
    from tvbench.features import DinoBackbone
    from tvbench.threads import apply_threads

    threads = apply_threads(spec["threads"])
    images = {int(folder.name): [Image.open(path).convert("RGB") for path in sorted(folder.glob("*.png"))]
              for folder in Path(spec["images"]).iterdir() if folder.is_dir()}
    backbone = DinoBackbone.from_pretrained(spec["backbone"], device=spec["device"])
    first = next(image for batch in images.values() for image in batch)
    backbone.encode([first], min(images))  # warm-up, outside the clock
    with measured() as timing:
        for resolution, batch in images.items():
            for image in batch:
                backbone.encode([image], resolution)
    report_to_parent(timing, forwards=sum(len(batch) for batch in images.values()), threads=threads.count)


def child_score(spec: dict) -> None:
    """``score_results`` on the results folder, imports done first (they are start-up costs, measured apart)."""
    import lpips  # noqa: F401
    import timm  # noqa: F401

    from tvbench.features import RANDOM_BACKBONES
    from tvbench.scoring import ScoringConfig, score_results

    config = ScoringConfig(backbone=spec["backbone"], resolution=spec["resolution"],
                           match_resolution=spec["match_resolution"], device=spec["device"],
                           feature_cache=spec["feature_cache"], smoke=spec["backbone"] in RANDOM_BACKBONES,
                           threads=spec["threads"])
    with measured() as timing:
        summary = score_results(Path(spec["results"]), config, bench_spec=spec["bench"], progress=False)
    report_to_parent(timing, forwards=summary["work"]["dino_forwards"], rows=summary["work"],
                     threads=summary["scorer"]["threads"]["count"])


# ------------------------------------------------------------------------------------------------- the harness

def phase(kind: str, spec: dict) -> dict:
    result = run_child([__file__, "--child", kind, json.dumps(spec)])
    print(f"  {kind:<9} {spec.get('label', '')}: {result['wall']:.1f} s wall, {result['cpu']:.1f} s CPU, "
          f"{result['forwards']} forwards, load {result['load'][0]:.1f}-{result['load'][1]:.1f}, "
          f"peak {result['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    return result


def reset_scoring(results: Path, features: Path) -> None:
    """A cold start: no feature cache, no earlier rows."""
    shutil.rmtree(features, ignore_errors=True)
    for name in ("scores.jsonl", "summary.json", "scores.cache.jsonl"):
        (results / name).unlink(missing_ok=True)


def bench_one(spec: str, work: Path, args) -> list[dict]:
    from tvbench.features.dino import RANDOM_BACKBONES, materialize_random_backbone
    from tvbench.scoring.config import SMOKE_BACKBONE
    from tvbench.threads import resolve_threads

    methods = args.methods.split(",")
    added = methods[-1]
    bench_folder = prepare_benchmark(spec, work, args.limit, args.dragbench_dev)
    results, held = work / "results", work / f"held-{added}"
    if (results / added).exists():  # a kept --work folder: put the held method back aside
        shutil.rmtree(held, ignore_errors=True)
        shutil.move(str(results / added), str(held))
    make_edits(bench_folder, results, methods[:-1])
    if not held.exists():
        make_edits(bench_folder, work / "held", [added])
        shutil.move(str(work / "held" / added), str(held))
    resolutions = {"global": args.resolution, "match": args.match_resolution}
    before = unavoidable_images(bench_folder, [results / m for m in methods[:-1]], resolutions)
    after = unavoidable_images(bench_folder, [results / m for m in methods[:-1]] + [held], resolutions)
    new = {res: {d: im for d, im in images.items() if d not in before[res]} for res, images in after.items()}
    n_before, n_new = save_needed(before, work / "needed-scoring"), save_needed(new, work / "needed-added")
    del before, after, new
    n_cases = sum(1 for _ in open(bench_folder / "cases.jsonl"))
    rows = []
    for backbone in args.backbones.split(","):
        if backbone in RANDOM_BACKBONES:
            materialize_random_backbone(backbone)  # built once, outside every clock
        # one thread count for both sides of every ratio: the scorer's own rule (one thread for the smoke model)
        threads = resolve_threads(args.threads, small_models=backbone == SMOKE_BACKBONE and args.device == "cpu")
        common = {"backbone": backbone, "device": args.device, "threads": threads.count, "resolution": args.resolution,
                  "match_resolution": args.match_resolution}
        score_spec = {**common, "results": str(results), "bench": str(bench_folder),
                      "feature_cache": str(work / "features")}
        runs: dict[str, list[dict]] = {"forwards": [], "scoring": [], "added": [], "rescoring": []}
        for repeat in range(args.repeats):
            print(f"{spec} {backbone}: repeat {repeat + 1}/{args.repeats}", file=sys.stderr, flush=True)
            if (results / added).exists():
                shutil.move(str(results / added), str(held))
            reset_scoring(results, work / "features")
            steps = ["forwards", "scoring", "added", "rescoring"] if repeat % 2 == 0 else \
                ["scoring", "forwards", "rescoring", "added"]
            for step in steps:
                if step == "forwards":
                    runs[step].append(phase("forwards", {**common, "images": str(work / "needed-scoring"),
                                                         "label": "(scoring's)"}))
                elif step == "added":
                    runs[step].append(phase("forwards", {**common, "images": str(work / "needed-added"),
                                                         "label": f"({added}'s)"}))
                elif step == "scoring":
                    runs[step].append(phase("score", {**score_spec, "label": f"{len(methods) - 1} methods"}))
                else:
                    shutil.move(str(held), str(results / added))
                    runs[step].append(phase("score", {**score_spec, "label": f"+ {added}"}))
        if (results / added).exists():
            shutil.move(str(results / added), str(held))
        for name, baseline, forwards in (("scoring", "forwards", n_before), ("rescoring", "added", n_new)):
            mine, theirs = runs[name], runs[baseline]
            rows.append({
                "benchmark": f"{Path(spec).name} ({n_cases})", "backbone": backbone,
                "phase": f"{name}" + (f" + {added}" if name == "rescoring" else f" ({len(methods) - 1} methods)"),
                "wall": spread([r["wall"] for r in mine]), "cpu": spread([r["cpu"] for r in mine]),
                "base_wall": spread([r["wall"] for r in theirs]), "base_cpu": spread([r["cpu"] for r in theirs]),
                "ratio": spread([a["wall"] / b["wall"] for a, b in zip(mine, theirs)]),
                "cpu_ratio": spread([a["cpu"] / b["cpu"] for a, b in zip(mine, theirs)]),
                "forwards": f"{mine[0]['forwards']}/{forwards}",
                "rss": max(r["peak_rss_mb"] for r in mine), "base_rss": max(r["peak_rss_mb"] for r in theirs),
                "load": spread([x for r in mine + theirs for x in r["load"]]),
                "threads": mine[0]["threads"],
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="dragbench-dev,sample", help="dragbench-dev, sample or folders, by commas")
    parser.add_argument("--methods", default="identity,tps-warp,shift-8,half-size,flip",
                        help=f"from {', '.join(METHODS)}; the last one is the method added before rescoring")
    parser.add_argument("--backbones", default="random-tiny,random-vits16",
                        help="random-tiny (the --smoke model), random-vits16 (ViT-S/16 sized), or any backbone spec")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=448)
    parser.add_argument("--match-resolution", type=int, default=896)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in every phase (default: tvbench's, see tvbench/threads.py)")
    parser.add_argument("--limit", type=int, default=0, help="first N cases only")
    parser.add_argument("--work", type=Path, default=None, help="keep edits here between runs (default: a temp dir)")
    parser.add_argument("--dragbench-dev", type=Path, default=dragbench_dev_folder(),
                        help="the DragBench dev cases to import")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, spec = args.child
        (child_forwards if kind == "forwards" else child_score)(json.loads(spec))
        return
    work_root = args.work or Path(tempfile.mkdtemp(prefix="score-bench-"))
    os.environ.setdefault("TVBENCH_CACHE", str(work_root / "cache"))  # the children inherit it
    load_start = load_average()
    rows = []
    for spec in args.bench.split(","):
        rows += bench_one(spec, work_root / Path(spec).name, args)
    threads = ", ".join(sorted({f"{r['backbone']} {r['threads']}" for r in rows}))
    print(f"\nscore_bench: {machine(args.device)}; device {args.device}, torch threads {threads}, "
          f"resolutions {args.resolution}/{args.match_resolution}, {args.repeats} repeat(s), cold feature cache; "
          f"load average {load_start:.2f} at start, {load_average():.2f} at end")
    print("median (min–max) over repeats; ratio = this phase / its forwards in the same repeat; CPU = user + system "
          "of the phase's own process; peak RSS of that process\n")
    print("| benchmark | backbone | phase | forwards (scorer/unavoidable) | wall s | its forwards wall s "
          "| **ratio (wall)** | CPU s | its forwards CPU s | ratio (CPU) | peak RSS MB (its forwards) | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['benchmark']} | {r['backbone']} | {r['phase']} | {r['forwards']} | {r['wall'].format()} "
              f"| {r['base_wall'].format()} | **{r['ratio'].format(3)}** | {r['cpu'].format()} "
              f"| {r['base_cpu'].format()} | {r['cpu_ratio'].format(3)} | {r['rss']:.0f} ({r['base_rss']:.0f}) "
              f"| {r['load'].format(1)} |")


if __name__ == "__main__":
    main()
