"""Seconds per case and peak memory of each diffusers editor adapter, on its tiny random pipeline.

    python benchmarks/method_bench.py                                   # CPU, 64x80 working area, 2 steps
    python benchmarks/method_bench.py --device cuda --working-area 262144 --steps 4 --cases 8

Each adapter runs in its own process (so peak memory is its own) through ``run_method`` on the bundled
``sample`` benchmark, with the tiny pipeline of ``tvbench.testing.tiny_editors`` saved to a folder and loaded
back through ``from_pretrained``. It prints one table: load time, median seconds per case (the first case,
which pays lazy initialisation, is left out when there are more than two), the median encode / denoise /
decode split the adapters record, and peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak
resident set, and its growth over the imports). The load average is printed with it: on a shared machine
every number moves with it. These are plumbing costs of the adapters on toy weights, not model speeds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EDITORS = {"qwen-image-edit": "qwen-image-edit", "qwen-image-edit-2509": "qwen-image-edit-2509",
           "qwen-image-edit-2511": "qwen-image-edit-2511", "motionedit": "qwen-image-edit-2509",
           "flux-kontext": "flux-kontext", "longcat-image-edit": "longcat-image-edit"}  # method -> tiny kind


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_one(name: str, args: argparse.Namespace) -> dict:
    """Run one adapter in this process and return its numbers."""
    import torch

    from tvbench.cases import load_benchmark
    from tvbench.device import resolve_device
    from tvbench.methods import Runtime, create_method
    from tvbench.runner import read_manifest, run_method
    from tvbench.testing.tiny_editors import build_tiny_pipeline, write_tiny_lora

    torch.set_num_threads(args.threads)
    bench = load_benchmark("sample", progress=False)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        options = {"model": str(build_tiny_pipeline(EDITORS[name], Path(tmp) / "pipe")), "steps": str(args.steps),
                   "working_area": str(args.working_area)}
        if name == "motionedit":  # its LoRA, in the layout of the published file
            options["lora"] = str(write_tiny_lora(EDITORS[name], Path(tmp) / "lora.safetensors"))
        method = create_method(name, options)
        baseline = rss_mb()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        loaded = time.perf_counter()
        method.runtime = method.resolve_runtime(Runtime(device=device))
        method.setup()  # timed here; run_method sets it up again, from the OS file cache
        load_seconds = time.perf_counter() - loaded
        method.teardown()
        run_method(method, bench, Path(tmp) / "out", limit=args.cases, progress=False,
                   runtime=Runtime(device=device, batch_size=1))
        cases = read_manifest(Path(tmp) / "out" / name)["cases"]
    records = [entry for entry in cases.values() if entry["status"] == "done"]
    timed = records[1:] if len(records) > 2 else records
    row = {"method": name, "cases": len(records), "load_s": load_seconds,
           "s_per_case": statistics.median(entry["seconds"] for entry in timed)}
    for phase in ("encode", "denoise", "decode"):
        row[phase] = statistics.median(entry["facts"]["phases"][phase] for entry in timed)
    if device.startswith("cuda"):
        row["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        row["growth_mb"] = None
    else:
        row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        row["growth_mb"] = row["peak_mb"] - baseline
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--working-area", type=int, default=64 * 80)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default=",".join(EDITORS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure this method and print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "HF_HUB_OFFLINE": "1"}
    rows = []
    for name in args.methods.split(","):
        command = [sys.executable, __file__, "--one", name, "--device", args.device, "--steps", str(args.steps),
                   "--working-area", str(args.working_area), "--cases", str(args.cases),
                   "--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    load = open("/proc/loadavg").read().split()[:3]
    print(f"tiny pipelines, device {args.device}, {args.steps} steps, working area {args.working_area} px, "
          f"{args.threads} thread(s), load average {' '.join(load)}, {time.strftime('%Y-%m-%d')}")
    memory = "peak MB (CUDA allocated)" if args.device.startswith("cuda") else "peak RSS MB (growth)"
    print(f"| method | cases | load s | s / case | encode | denoise | decode | {memory} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        growth = f" (+{row['growth_mb']:.0f})" if row["growth_mb"] is not None else ""
        print(f"| `{row['method']}` | {row['cases']} | {row['load_s']:.2f} | {row['s_per_case']:.3f} | "
              f"{row['encode']:.3f} | {row['denoise']:.3f} | {row['decode']:.3f} | {row['peak_mb']:.0f}{growth} |")


if __name__ == "__main__":
    main()
