"""How close `tvbench score` comes to the work it cannot avoid: one backbone forward per unique image and resolution.

    python benchmarks/score_bench.py                      # DragBench dev (50 cases) and sample, CPU
    python benchmarks/score_bench.py --bench sample --device cuda

For each benchmark it makes several methods' edits (identity and tps-warp through `tvbench run`, plus edits made
"elsewhere": shifted, blurred and flipped copies), then, with a ViT-S/16-sized randomly initialised DINOv3
("random-vits16") and a cold feature cache:

1. scores all methods but one with every default image metric, and times it (total);
2. times the unavoidable work alone: one forward per unique image and resolution that scoring needed;
3. adds the last method and rescores (earlier rows reused, cached features read from disk), and times that
   against that method's own forwards.

It prints total / unavoidable (target <= 1.25), rescoring / the new method's forwards (target <= 1.3) and the
peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from tvbench.cases import load_benchmark
from tvbench.cases.case import pixel_digest
from tvbench.features import DinoBackbone
from tvbench.methods import create_method
from tvbench.metrics import default_metrics, get_metric
from tvbench.runner import run_method
from tvbench.scoring import ScoringConfig, score_results

DEV = Path(os.environ.get("TVBENCH_DRAGBENCH_DEV", Path(__file__).resolve().parents[2] / "shared/data/dragbench-dev"))
RESOLUTIONS = ("resolution", "match_resolution")


def outside_edits(bench, out: Path, name: str, transform) -> None:
    """A folder of `<case>.png` edits made without tvbench (scored with the benchmark given explicitly)."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for case in bench.cases:
        if not (folder / f"{case.id}.png").is_file():
            transform(case.source.open()).save(folder / f"{case.id}.png")


def shift(pixels: int):
    return lambda image: Image.fromarray(np.roll(np.asarray(image), pixels, axis=1))


METHODS = {
    "identity": None, "tps-warp": None,
    "shift-8": shift(8), "blur-2": lambda image: image.filter(ImageFilter.GaussianBlur(2)),
    "flip": lambda image: image.transpose(Image.FLIP_LEFT_RIGHT), "shift-24": shift(24),
}


def make_edits(bench, out: Path, methods: list[str]) -> None:
    for name in methods:
        if METHODS[name] is None:
            run_method(create_method(name), bench, out, progress=False)
        else:
            outside_edits(bench, out, name, METHODS[name])


def unavoidable_images(bench, folders: list[Path], config: ScoringConfig) -> dict[int, dict[str, Image.Image]]:
    """Per resolution, each distinct image the metrics read (as their declarations say) for the cases they apply
    to: sources, targets and edits; identical pixels count once."""
    resolutions = {"global": config.resolution, "match": config.match_resolution}
    metrics = [get_metric(name) for name in default_metrics()]
    needed: dict[int, dict[str, Image.Image]] = {resolution: {} for resolution in resolutions.values()}
    for case in bench.cases:
        wants = set().union(*(m.features for m in metrics if m.not_applicable_reason(case) is None))
        for role, scale in wants:
            if role == "edit":
                images = [Image.open(folder / f"{case.id}.png").convert("RGB") for folder in folders
                          if (folder / f"{case.id}.png").is_file()]
            else:
                images = [case.open_image(role)]
            for image in images:
                needed[resolutions[scale]].setdefault(pixel_digest(image), image)
    return needed


def time_forwards(backbone: DinoBackbone, needed: dict[int, dict[str, Image.Image]]) -> tuple[float, int]:
    """One forward per image and resolution, one image at a time."""
    started = time.perf_counter()
    for resolution, images in needed.items():
        for image in images.values():
            backbone.encode([image], resolution)
    return time.perf_counter() - started, sum(len(images) for images in needed.values())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_one(spec: str, work: Path, args) -> dict:
    bench = load_benchmark(spec)
    if args.limit:
        bench.cases = bench.cases[:args.limit]
    methods = [m for m in args.methods.split(",") if not (m == "tps-warp" and args.skip_tps)]
    out = work / "results"
    make_edits(bench, out, methods)
    added = methods[-1]
    held = out.parent / f"held-{added}"
    if (out / added).exists():
        shutil.rmtree(held, ignore_errors=True)
        shutil.move(str(out / added), str(held))
    config = ScoringConfig(backbone=args.backbone, resolution=args.resolution, match_resolution=args.match_resolution,
                           device=args.device, feature_cache=str(work / "features"), smoke=True)
    backbone = DinoBackbone.from_pretrained(args.backbone, device=args.device)
    backbone.encode([bench.cases[0].source.open()], args.resolution)  # warm-up, outside every timing

    started = time.perf_counter()
    first = score_results(out, config, bench_spec=spec, progress=False)
    total = time.perf_counter() - started
    folders = [p for p in out.iterdir() if p.is_dir()]
    before = unavoidable_images(bench, folders, config)
    unavoidable, forwards = time_forwards(backbone, before)

    shutil.move(str(held), str(out / added))
    started = time.perf_counter()
    second = score_results(out, config, bench_spec=spec, progress=False)
    rescore = time.perf_counter() - started
    after = unavoidable_images(bench, folders + [out / added], config)
    new = {resolution: {d: img for d, img in images.items() if d not in before[resolution]}
           for resolution, images in after.items()}
    own, own_forwards = time_forwards(backbone, new)
    return {
        "benchmark": f"{bench.name} ({len(bench)} cases)", "methods": len(methods) - 1, "added": added,
        "total_s": total, "scorer_forwards": first["work"]["dino_forwards"], "unavoidable_s": unavoidable,
        "unavoidable_forwards": forwards, "ratio": total / unavoidable,
        "rescore_s": rescore, "rescore_forwards": second["work"]["dino_forwards"],
        "method_forwards_s": own, "method_forwards": own_forwards, "rescore_ratio": rescore / own,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="dragbench-dev,sample", help="dragbench-dev, sample or folders, by commas")
    parser.add_argument("--methods", default="identity,tps-warp,shift-8,blur-2,flip",
                        help=f"from {', '.join(METHODS)}; the last one is the method added before rescoring")
    parser.add_argument("--backbone", default="random-vits16")
    parser.add_argument("--resolution", type=int, default=448)
    parser.add_argument("--match-resolution", type=int, default=896)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=0, help="first N cases only")
    parser.add_argument("--skip-tps", action="store_true", help="leave tps-warp out (slow to run on CPU)")
    parser.add_argument("--work", type=Path, default=None, help="keep edits and caches here (default: a temp dir)")
    parser.add_argument("--dragbench-dev", type=Path, default=DEV, help="the DragBench dev cases to import")
    args = parser.parse_args()
    work_root = args.work or Path(tempfile.mkdtemp(prefix="score-bench-"))
    os.environ.setdefault("TVBENCH_CACHE", str(work_root / "cache"))
    rows = []
    for spec in args.bench.split(","):
        work = work_root / spec.replace("/", "_")
        if spec == "dragbench-dev":
            from tvbench.cases.importers import import_benchmark

            if not (work / "bench" / "cases.jsonl").is_file():
                import_benchmark("dragbench", args.dragbench_dev, work / "bench")
            spec = str(work / "bench")
        shutil.rmtree(work / "features", ignore_errors=True)  # a cold cache: the first scoring pays every forward
        for leftover in ("scores.jsonl", "summary.json", "scores.cache.jsonl"):
            (work / "results" / leftover).unlink(missing_ok=True)
        rows.append(bench_one(spec, work, args))
        print(rows[-1], file=sys.stderr, flush=True)
    print(f"\nbackbone {args.backbone}, resolutions {args.resolution}/{args.match_resolution}, device {args.device}, "
          f"torch threads {__import__('torch').get_num_threads()}\n")
    print("| benchmark | methods | total s | unavoidable s (forwards) | total/unavoidable | + method | rescore s "
          "| its forwards s (n) | rescore/forwards | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['benchmark']} | {r['methods']} | {r['total_s']:.1f} | {r['unavoidable_s']:.1f} "
              f"({r['unavoidable_forwards']}) | **{r['ratio']:.3f}** | {r['added']} | {r['rescore_s']:.1f} | "
              f"{r['method_forwards_s']:.1f} ({r['method_forwards']}) | **{r['rescore_ratio']:.3f}** | "
              f"{r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
