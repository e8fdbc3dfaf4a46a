"""What the TV-Edit controller costs: a training step, a controller forward, its share of a transformer step.

    python benchmarks/tvedit_bench.py                    # tiny models, CPU, one thread
    python benchmarks/tvedit_bench.py --device cuda --grid 64 --threads 0

1. Training: ``tvbench train tvedit`` on tiny Qwen-Image-Edit and FLUX.1 Kontext pipelines (random weights,
   ``tvbench.testing.tiny_editors``), 6 cases of the bundled benchmark at 64 px, 1-block controller, effective
   batch 4; seconds per optimizer step after the features are cached (encoding excluded).
2. Inference: the tiny transformers of ``tvbench.testing.tvedit`` with a 2-block controller, one call on a
   ``grid x grid`` noised latent plus a condition image of the same size (the edit pipelines' layout):
   seconds per transformer call without the controller, per controller forward, and per call with the
   controller attached (pre-hook, point tokens cached), and the controller's share of the controlled call.

Prints one table. Numbers from random tiny models measure plumbing overhead, never quality; the controller's
share at real sizes depends on the widths (half), the block counts (5 against 60 or 57) and the token count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _timed(function, repeats: int) -> float:
    function()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _train_config(work: Path, bench: Path, backbone: str, kind: str, output: str, steps: int):
    from tvbench.testing.tiny_editors import tiny_pipeline_dir
    from tvbench_adapters.tvedit.training.loop import TrainConfig

    return TrainConfig(backbone=backbone, data=str(bench), output=work / output, model=str(tiny_pipeline_dir(kind)),
                       steps=steps, effective_batch=4, blocks=1, injections=2, resolution=64, log_with="none",
                       progress=False, cache_dir=work / f"cache-{backbone}", checkpoint_every=10_000)


def training_rows(work: Path, steps: int) -> list[tuple[str, str, float]]:
    from tvbench.cases import Benchmark, load_benchmark, write_folder
    from tvbench_adapters.tvedit.training.loop import Trainer

    cases = sorted(load_benchmark("sample"), key=lambda case: case.id)[:6]
    bench = work / "bench"
    write_folder(Benchmark(name="tvedit-bench", spec=str(bench), cases=cases), bench, overwrite=True)
    rows = []
    for backbone, kind in (("qwen", "qwen-image-edit"), ("kontext", "flux-kontext")):
        Trainer(_train_config(work, bench, backbone, kind, f"warm-{backbone}", 1)).run()  # fills the feature cache
        summary = Trainer(_train_config(work, bench, backbone, kind, f"run-{backbone}", steps)).run()
        rows.append((f"training step, tiny {backbone} (4 samples)", "s/step", summary["seconds"] / steps))
    return rows


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _inference_backbone(backbone: str, grid: int, device: str, repeats: int) -> list[tuple[str, str, float]]:
    import torch

    from tvbench.testing.tvedit import tiny_transformer, transformer_call
    from tvbench_adapters.tvedit.attach import attach
    from tvbench_adapters.tvedit.controller import build_controller
    from tvbench_adapters.tvedit.spec import ControllerSpec

    pairs = [(4.0, 4.0, 40.0, 30.0), (50.0, 20.0, 30.0, 40.0)]
    transformer = tiny_transformer(backbone).to(device)
    controller = build_controller(ControllerSpec.for_transformer(transformer, blocks=2, injections=3)).to(device)
    call = {k: (v.to(device) if hasattr(v, "to") else v)
            for k, v in transformer_call(transformer, [(grid, grid), (grid, grid)]).items()}
    rest = {k: v for k, v in call.items() if k != "hidden_states"}

    def plain():
        transformer(**call)
        _sync(device)

    with torch.no_grad():
        base = _timed(plain, repeats)
        with attach(transformer, controller, pairs, (grid * 16, grid * 16)) as handle:
            tokens = handle.point_tokens([(grid, grid), (grid, grid)], 1, torch.device(device), torch.float32)

            def controller_only():
                controller.casc(call["hidden_states"], tokens, **rest)
                _sync(device)

            def controlled():
                handle.reset()  # no reuse between repeats: every call runs the controller
                transformer(**call)
                _sync(device)

            alone = _timed(controller_only, repeats)
            with_controller = _timed(controlled, repeats)
    return [(f"transformer call, tiny {backbone}, {2 * grid * grid} image tokens", "s", base),
            (f"controller forward, tiny {backbone}", "s", alone),
            (f"controlled transformer call, tiny {backbone}", "s", with_controller),
            (f"controller share of the controlled call, tiny {backbone}", "%",
             100 * (with_controller - base) / with_controller)]


def inference_rows(grid: int, device: str, repeats: int) -> list[tuple[str, str, float]]:
    return [row for backbone in ("qwen", "kontext") for row in _inference_backbone(backbone, grid, device, repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grid", type=int, default=16, help="token rows and columns of each image part")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps timed per backbone")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="tvedit-bench-"))
    try:
        rows = inference_rows(args.grid, args.device, args.repeats) + training_rows(work, args.steps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[0]
    print(f"| measurement | unit | value |  (device {args.device}, threads {args.threads or 'default'}, load {load})")
    print("| --- | --- | --- |")
    for name, unit, value in rows:
        print(f"| {name} | {unit} | {value:.4f} |" if unit != "%" else f"| {name} | {unit} | {value:.1f} |")


if __name__ == "__main__":
    main()
