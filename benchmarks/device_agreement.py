"""Do scores agree across devices and dtypes? Scores the same edits on CPU and on an accelerator.

    python benchmarks/device_agreement.py --device cuda [--bench sample] [--dtypes float32,bfloat16]

Runs identity, oracle and tps-warp on the benchmark once, then scores them with the random ViT-S/16 DINOv3
("random-vits16") and the random-trunk LPIPS on the CPU (float32, the reference) and on ``--device`` for each
dtype, each with its own empty feature cache, and prints per metric the largest difference of a method's mean
and of a single row from the CPU reference, with the scoring time of each run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tvbench.cases import load_benchmark
from tvbench.io import read_jsonl
from tvbench.methods import create_method
from tvbench.runner import run_method
from tvbench.scoring import ScoringConfig, score_results


def score(results: Path, work: Path, device: str, dtype: str) -> tuple[dict, dict, float]:
    for leftover in ("scores.jsonl", "summary.json", "scores.cache.jsonl"):
        (results / leftover).unlink(missing_ok=True)
    config = ScoringConfig(smoke=True, backbone="random-vits16", device=device, dtype=dtype,
                           feature_cache=str(work / f"features-{device}-{dtype}"))
    started = time.perf_counter()
    summary = score_results(results, config, progress=False)
    seconds = time.perf_counter() - started
    rows = {(r["method"], r["case"], r["metric"]): r["value"] for r in read_jsonl(results / "scores.jsonl")}
    return summary, rows, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--bench", default="sample")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="device-agreement-"))
    bench = load_benchmark(args.bench)
    for name in ("identity", "oracle", "tps-warp"):
        run_method(create_method(name), bench, work / "results", progress=False)
    reference, reference_rows, cpu_seconds = score(work / "results", work, "cpu", "float32")
    print(f"reference: cpu float32, {cpu_seconds:.1f} s")
    print("| device | dtype | seconds | metric | max |mean diff| | max |row diff| |")
    print("|---|---|---|---|---|---|")
    for dtype in args.dtypes.split(","):
        summary, rows, seconds = score(work / "results", work, args.device, dtype)
        for metric in summary["metrics"]:
            mean_diff = max(abs((summary["methods"][m]["metrics"][metric]["mean"] or 0)
                                - (reference["methods"][m]["metrics"][metric]["mean"] or 0))
                            for m in summary["methods"])
            row_diff = max((abs(v - reference_rows[k]) for k, v in rows.items()
                            if k[2] == metric and v is not None and reference_rows.get(k) is not None), default=0.0)
            print(f"| {args.device} | {dtype} | {seconds:.1f} | {metric} | {mean_diff:.2e} | {row_diff:.2e} |")


if __name__ == "__main__":
    main()
