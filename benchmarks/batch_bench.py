"""Does encoding same-size images as one batch beat encoding them one at a time? Per resolution and device.

    python benchmarks/batch_bench.py [--backbone random-vits16] [--resolutions 448,896] [--batch 4] [--repeats 3]

The scorer's feature store may send a case's images of one size through DINOv3 together (the source and every
method's edit). This measures, for ``--batch`` same-size DragBench-sized images (512 x 512, textured), the time
per image as one batch and as singles, alternating within each repeat; the scorer batches only where the batch
was faster (``tvbench.features.dino.BATCH_MAX_TOKENS``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image

from tvbench.testing.measure import load_average, machine, measured, spread


def images(n: int, size: int = 512) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray((rng.random((size // 8, size // 8, 3)) * 255).astype(np.uint8)).resize((size, size))
            for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="random-vits16")
    parser.add_argument("--resolutions", default="448,896")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    from tvbench.features import DinoBackbone
    from tvbench.threads import apply_threads

    threads = apply_threads(args.threads)
    backbone = DinoBackbone.from_pretrained(args.backbone, device=args.device)
    batch = images(args.batch)
    load_start = load_average()
    rows = []
    for resolution in (int(r) for r in args.resolutions.split(",")):
        backbone.encode(batch[:1], resolution)  # warm-up
        runs: dict[str, list] = {"batch": [], "singles": []}
        for repeat in range(args.repeats):
            for mode in (("batch", "singles") if repeat % 2 == 0 else ("singles", "batch")):
                with measured() as timing:
                    if mode == "batch":
                        backbone.encode(batch, resolution)  # force=True not needed: encode batches equal sizes
                    else:
                        for image in batch:
                            backbone.encode([image], resolution)
                runs[mode].append(timing)
                print(f"{resolution} px {mode}: {timing.wall:.2f} s wall, {timing.cpu:.2f} s CPU", file=sys.stderr)
        tokens = (resolution // backbone.patch_size) ** 2
        per = {mode: (spread([t.wall / args.batch for t in ts]), spread([t.cpu / args.batch for t in ts]))
               for mode, ts in runs.items()}
        ratio = spread([b.wall / s.wall for b, s in zip(runs["batch"], runs["singles"])])
        rows.append((resolution, tokens, per, ratio))
    print(f"batch_bench: {machine(args.device)}; {args.backbone}, device {args.device}, torch threads "
          f"{threads.count}, {args.batch} images of 512x512 per batch, {args.repeats} repeats alternating; load "
          f"average {load_start:.2f} at start, {load_average():.2f} at end\n")
    print("| resolution | tokens | batch s/image (wall) | singles s/image (wall) | **batch / singles** "
          "| batch CPU s/image | singles CPU s/image |")
    print("|---|---|---|---|---|---|---|")
    for resolution, tokens, per, ratio in rows:
        print(f"| {resolution} | {tokens} | {per['batch'][0].format(3)} | {per['singles'][0].format(3)} "
              f"| **{ratio.format(3)}** | {per['batch'][1].format(3)} | {per['singles'][1].format(3)} |")


if __name__ == "__main__":
    main()
