"""Judge throughput with real photographs: requests per second against a fake server with a fixed latency.

    python benchmarks/judge_bench.py [--latency 1.0] [--concurrency 1,2,4,8,16] [--repeats 3]
    python benchmarks/judge_bench.py --latency 0.05          # the client's own overhead, magnified

The requests are the ones `tvbench score --metrics pf_drag,cp_drag` sends for DragBench dev (found as
tests/conftest.py finds it): for each case, each method's edit (the source itself, and the source shifted by 8 px,
written as PNG files) is graded by both drag prompts, each request carrying three images at the photographs' own
size (source, source with arrows, edit; base64 PNG). They go through the real path: `JudgeSession.score` (item
building, image decoding, arrows, PNG encoding, the SQLite cache, the openai client, strict parsing) against
:class:`tvbench.judge.testing.FakeJudgeServer`, which answers after ``--latency`` seconds from a child process
(its threads then do not share the client's interpreter lock; it does share the machine's cores).

Each level sends ``--per-level`` x concurrency requests (at least 16) through a fresh cache; levels take turns
within each repeat. The ideal is ``concurrency / latency`` requests per second (target: at least 0.8 x up to 16);
the client's CPU time per request (this process: user + system) says where the client itself stops scaling: at
about ``cores / CPU per request`` requests per second (less when the server shares the cores, as here). Then the
last level is rerun on its warm cache: the target is 0 requests.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tvbench.testing.data import dragbench_dev_folder
from tvbench.testing.measure import load_average, machine, measured, spread
from tvbench.threads import available_cores

METRICS = ("pf_drag", "cp_drag")
METHODS = {"identity": lambda image: image, "shift-8": lambda image: Image.fromarray(np.roll(np.asarray(image), 8, 1))}


def _serve(latency: float, queue, stop) -> None:
    from tvbench.judge.testing import FakeJudgeServer

    with FakeJudgeServer(latency=latency) as server:
        queue.put(server.base_url)
        stop.wait()


def prepare(work: Path, source: Path):
    """DragBench dev as a folder benchmark, and the methods' edits as PNG files (made once)."""
    from tvbench.cases import load_benchmark
    from tvbench.cases.importers import import_benchmark

    bench_folder, results = work / "bench", work / "results"
    if not (bench_folder / "cases.jsonl").is_file():
        if not source.is_dir():
            raise SystemExit(f"{source}: no DragBench dev folder (set TVBENCH_DRAGBENCH_DEV or --dragbench-dev)")
        import_benchmark("dragbench", source, bench_folder)
    bench = load_benchmark(str(bench_folder))
    for name, transform in METHODS.items():
        (results / name).mkdir(parents=True, exist_ok=True)
        for case in bench.cases:
            if not (results / name / f"{case.id}.png").is_file():
                transform(case.source.open().convert("RGB")).save(results / name / f"{case.id}.png")
    return bench, results


def run_level(bench, results: Path, base_url: str, concurrency: int, n_cases: int, cache: Path) -> dict:
    """Grade the first ``n_cases`` cases' edits through the scoring path; time it and count its requests."""
    import copy

    from tvbench.judge.config import JudgeConfig
    from tvbench.judge.phase import JudgeSession
    from tvbench.metrics import get_metric
    from tvbench.scoring.rows import ScoreMemo
    from tvbench.scoring.runs import discover_runs

    subset = copy.copy(bench)
    subset.cases = bench.cases[:n_cases]
    config = JudgeConfig(base_url=base_url, model="bench-judge", concurrency=concurrency, max_attempts=1,
                         cache_path=str(cache))
    session = JudgeSession(config, [get_metric(name) for name in METRICS])
    memo = ScoreMemo(cache.with_suffix(".rows.jsonl"), enabled=False)
    runs = discover_runs(results)
    with measured() as timing:
        rows = session.score(subset, runs, memo, session.keys(), results, progress=False)
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        raise SystemExit(f"{len(failed)} judgments failed, e.g. {failed[0]['detail']}")
    stats = session.stats
    return {"wall": timing.wall, "cpu": timing.cpu, "requests": stats.requests, "load": timing.load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=1.0, help="server latency per request, seconds")
    parser.add_argument("--concurrency", default="1,2,4,8,16", help="comma-separated levels")
    parser.add_argument("--per-level", type=int, default=8, help="requests per level: this x concurrency (>= 16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dragbench-dev", type=Path, default=dragbench_dev_folder())
    parser.add_argument("--work", type=Path, default=None, help="keep the benchmark and edits here")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="judge-bench-"))
    bench, results = prepare(work, args.dragbench_dev)
    per_case = len(METHODS) * len(METRICS)
    cases = {level: min(len(bench.cases), math.ceil(max(16, args.per_level * level) / per_case)) for level in levels}
    sizes = sorted({case.source.open().size for case in bench.cases[:max(cases.values())]})
    ctx = multiprocessing.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=_serve, args=(args.latency, queue, stop), daemon=True)
    child.start()
    base_url = queue.get(timeout=120)
    import openai  # noqa: F401  (a start-up cost, paid once per process: kept out of every level's clock)

    caches = work / "caches"
    measured_levels: dict[int, list[dict]] = {level: [] for level in levels}
    load_start = load_average()
    try:
        for repeat in range(args.repeats):
            for level in (levels if repeat % 2 == 0 else list(reversed(levels))):
                shutil.rmtree(caches, ignore_errors=True)
                caches.mkdir(parents=True)
                run = run_level(bench, results, base_url, level, cases[level], caches / f"cache-{level}.sqlite")
                measured_levels[level].append(run)
                print(f"repeat {repeat + 1} concurrency {level}: {run['requests']} requests in {run['wall']:.2f} s, "
                      f"client CPU {run['cpu']:.2f} s, load {run['load'][0]:.1f}", file=sys.stderr, flush=True)
        last = levels[-1]
        rerun = run_level(bench, results, base_url, last, cases[last], caches / f"cache-{last}.sqlite")
    finally:
        stop.set()
        child.join(timeout=10)
    size_text = ", ".join(f"{w}x{h}" for w, h in sizes)
    print(f"judge_bench: {machine()}; fake server latency {args.latency * 1000:g} ms in a child process; "
          f"DragBench dev photographs ({size_text}), three base64 PNGs per request, {len(METHODS)} methods x "
          f"{len(METRICS)} prompts per case; {args.repeats} repeats, levels interleaved; load average "
          f"{load_start:.2f} at start, {load_average():.2f} at end\n")
    print("| in flight | requests | req/s | ideal req/s | **ratio** | client CPU ms / request | load |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for level in levels:
        runs = measured_levels[level]
        rate = spread([r["requests"] / r["wall"] for r in runs])
        ideal = level / args.latency
        ratio = spread([r["requests"] / r["wall"] / ideal for r in runs])
        cpu_ms = spread([1000 * r["cpu"] / r["requests"] for r in runs])
        ok &= ratio.median >= 0.8
        print(f"| {level} | {runs[0]['requests']} | {rate.format(1)} | {ideal:.1f} | **{ratio.format(2)}** "
              f"| {cpu_ms.format(0)} | {spread([x for r in runs for x in r['load']]).format(1)} |")
    cpu_per_request = spread([r["cpu"] / r["requests"] for runs in measured_levels.values() for r in runs]).median
    print(f"\nclient limit: about {available_cores() / cpu_per_request:.0f} requests/s on {available_cores()} cores "
          f"({1000 * cpu_per_request:.0f} ms CPU per request, median over all levels); cached rerun of the last level: "
          f"{rerun['requests']} requests (target 0) in {rerun['wall']:.2f} s")
    return 0 if ok and rerun["requests"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
