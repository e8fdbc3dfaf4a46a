"""Cost of the uncertainty analysis at the paper's scale: intervals and leader ties for a summary, and
``tvbench compare``, on synthetic rows (no network runs).

    python benchmarks/analysis_bench.py [--cases 120] [--methods 5] [--metrics 8] [--resamples 10000]

Prints one table: seconds for the intervals of every method and metric plus the leaders' paired tests (what
``tvbench score`` adds to a run), for one paired comparison over every metric (``tvbench compare``), and the same
with BCa intervals.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

from tvbench.analysis.frames import scores_frame
from tvbench.analysis.paired import Settings, compare_methods
from tvbench.analysis.uncertainty import annotate
from tvbench.scoring.aggregation import aggregate
from tvbench.scoring.runs import MethodRun
from tvbench.testing.results import declaration


def synthetic(cases: int, methods: int, metrics: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    declared = {f"m{j}": declaration(f"M{j}", higher_is_better=bool(j % 2)) for j in range(metrics)}
    rows = [{"case": f"c{k}", "method": f"method{i}", "metric": name, "value": float(rng.normal(0.5 + 0.01 * i, 0.1)),
             "status": "ok"} for i in range(methods) for name in declared for k in range(cases)]
    runs = [MethodRun(f"method{i}", Path(f"method{i}"), {"inputs": "I+T"}) for i in range(methods)]
    summary = {"metrics": declared, "methods": aggregate(rows, runs, declared, cases)}
    return summary, scores_frame(rows)


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--methods", type=int, default=5)
    parser.add_argument("--metrics", type=int, default=8)
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args()
    summary, frame = synthetic(args.cases, args.methods, args.metrics)
    table = []
    for method in ("percentile", "bca"):
        settings = Settings(resamples=args.resamples, method=method)
        seconds = timed(lambda s=settings: annotate(summary, frame, s))
        table.append([f"summary intervals + leader ties ({method})", f"{seconds:.2f}"])
        seconds = timed(lambda s=settings: compare_methods(frame, summary["metrics"], "method0", "method1", s))
        table.append([f"compare two methods, every metric ({method})", f"{seconds:.2f}"])
    print(f"{args.cases} cases x {args.methods} methods x {args.metrics} metrics, {args.resamples} resamples; "
          f"load {os.getloadavg()[0]:.2f}")
    print(tabulate(table, headers=["work", "seconds"], tablefmt="pipe"))


if __name__ == "__main__":
    main()
