"""Seconds per phase (LoRA, inversion, drag, denoise) per case of each native drag method, and the load.

    python benchmarks/drag_bench.py                                  # tiny random SD 1.5, 2 sample cases, CPU
    python benchmarks/drag_bench.py --cases 5 --resolution 512 --model stable-diffusion-v1-5/stable-diffusion-v1-5 \\
        --clip-model openai/clip-vit-base-patch16 --bench DRAGBENCH_FOLDER --device cuda   # real weights on a GPU

Methods run one after the other in this order: dragdiffusion, clipdrag, gooddrag, dragnoise, on the same cases,
with a LoRA cache that starts empty. clipdrag uses DragDiffusion's LoRA recipe, so its LoRA phase must be absent
(the table's LoRA column counts trained / cached adapters). Every option is the method's default (the official
step counts: LoRA 70-200 steps, up to 80 drag steps, 50 DDIM steps) except the working ``--resolution`` (128 by
default on the tiny model, so that a CPU run takes minutes) and any ``--set key=value`` (applied to each method
that has the option). On the tiny model gooddrag keeps the model's own VAE and the key/value control starts at
layer 6, where its ``up_blocks[2]`` begins (layer 10 in SD 1.5). ``load`` is the run's time outside its cases
(loading the weights, writing the manifest).
CPU runs pin torch to one thread unless ``--threads`` says otherwise (see ENVIRONMENT.md: small models run
faster on one thread). With the tiny model the numbers measure the engine's overhead and its phases'
proportions, not any image quality.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("dragdiffusion", "clipdrag", "gooddrag", "dragnoise")


def sample_bench(root: Path, count: int) -> Path:
    from tvbench.cases import Benchmark, load_benchmark, write_folder

    sample = load_benchmark("sample")
    folder = root / "bench"
    write_folder(Benchmark("drag-bench", "sample", sample.cases[:count]), folder)
    return folder


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def run_one(method_name: str, options: dict[str, str], bench, out: Path, runtime, count: int) -> dict:
    import torch

    from tvbench.methods import METHODS as REGISTRY
    from tvbench.methods import create_method
    from tvbench.runner import run_method

    known = REGISTRY.load(method_name).options()
    method = create_method(method_name, {k: v for k, v in options.items() if k in known})
    if runtime.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    report = run_method(method, bench, out, runtime=runtime, limit=count, progress=False)
    wall = time.perf_counter() - started
    lines = [json.loads(line) for line in (report.run_dir / "status.jsonl").read_text().splitlines()]
    done = [line for line in lines if line["status"] == "done"]
    if len(done) != len(lines) or report.failed:
        failures = [line.get("error", "") for line in lines if line["status"] != "done"]
        raise SystemExit(f"{method_name}: {len(failures)} case(s) failed: {failures[:1]}")
    phases = {name: mean([line["facts"]["phases"].get(name, 0.0) for line in done])
              for name in ("lora", "inversion", "drag", "denoise")}
    peak = (torch.cuda.max_memory_allocated() / 2**30 if runtime.device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return {"method": method_name, "cases": len(done), **phases,
            "per_case": mean([line["seconds"] for line in done]),
            "load": wall - sum(line["seconds"] for line in done),
            "lora_status": "/".join(str(sum(line["facts"]["lora"] == status for line in done))
                                    for status in ("trained", "cached")),
            "iterations": mean([line["facts"]["drag_iterations"] for line in done]),
            "reached": sum(line["facts"]["handles_reached"] for line in done), "peak_gb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="", help="benchmark folder (default: the first sample cases)")
    parser.add_argument("--cases", type=int, default=2)
    parser.add_argument("--model", default="", help="base model (default: a tiny random SD 1.5 built here)")
    parser.add_argument("--clip-model", default="", help="CLIP for clipdrag (default: a tiny random one)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--set", action="append", default=[], dest="settings", help="key=value for every method")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from tvbench.cases import load_benchmark
    from tvbench.device import resolve_device
    from tvbench.methods import Runtime
    from tvbench.testing.tiny_sd import save_tiny_clip, save_tiny_sd

    if not args.device.startswith("cuda"):
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["TVBENCH_CACHE"] = str(root / "cache")  # an empty LoRA cache: the first method trains
        model = args.model or str(save_tiny_sd(root / "tiny-sd15"))
        clip = args.clip_model or str(save_tiny_clip(root / "tiny-clip"))
        bench = load_benchmark(args.bench or str(sample_bench(root, args.cases)))
        options = {"model": model, "clip_model": clip, "resolution": str(args.resolution)}
        if not args.model:  # the tiny pipeline has its own VAE and 10 self-attention layers (SD 1.5: 16);
            options.update(vae="", kv_start_layer="6")  # layer 6 opens up_blocks[2] there, as 10 does in SD 1.5
        options.update(dict(setting.split("=", 1) for setting in args.settings))
        device = resolve_device(args.device)
        rows = [run_one(name, options, bench, root / "out", Runtime(device=device, dtype=args.dtype), args.cases)
                for name in args.methods.split(",")]
    load = open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    memory = "peak GPU GiB" if device.startswith("cuda") else "peak RSS GiB"
    print(f"model {'tiny random SD 1.5' if not args.model else args.model}, {len(bench)} cases of "
          f"{bench.name}, working width {args.resolution}, device {device}, threads {torch.get_num_threads()}, "
          f"load average {' '.join(load)}, {time.strftime('%Y-%m-%d')}; seconds are means per case")
    print(f"| method | cases | LoRA trained/cached | lora | inversion | drag | denoise | total per case | load | "
          f"drag iterations | handles reached | {memory} |")
    print("| --- | ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['method']} | {row['cases']} | {row['lora_status']} | {row['lora']:.2f} | "
              f"{row['inversion']:.2f} | {row['drag']:.2f} | {row['denoise']:.2f} | {row['per_case']:.2f} | "
              f"{row['load']:.1f} | "
              f"{row['iterations']:.0f} | {row['reached']}/{row['cases']} | {row['peak_gb']:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
