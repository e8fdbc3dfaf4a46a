"""Coverage of tvbench's bootstrap intervals at small numbers of units: how often a nominal 95% interval holds the
true mean, by interval method (percentile, BCa), number of units and the shape of the data.

    python benchmarks/coverage_bench.py                      # n = 2..30, 400 trials each, 2,000 resamples
    python benchmarks/coverage_bench.py --trials 1000 --json coverage.json

Every trial draws ``n`` units from a distribution with a known mean and asks ``tvbench.analysis.bootstrap.
confidence_interval`` (the function the summary's intervals come from) for its interval. The shapes stand for
tvbench's metrics: ``normal`` (DS and LPIPS averages over many pixels), ``skewed`` (lognormal, sigma 1: matching
distances, a few large misses), ``bounded`` (beta(8, 2): similarities near their ceiling), ``binary`` (0/1 with
p = 0.7: semantic accuracy's cases) and ``group_fraction`` (the mean of 3 binary cases: a semantic group). The
smallest ``n`` at which every shape reaches the coverage floor is what ``tvbench.analysis.bootstrap.MIN_UNITS``
must be at least; below it tvbench prints the value with its ``n`` and no interval.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

SHAPES = {
    "normal": (lambda rng, n: rng.normal(0.5, 0.1, n), 0.5),
    "skewed": (lambda rng, n: rng.lognormal(0.0, 1.0, n), float(np.exp(0.5))),
    "bounded": (lambda rng, n: rng.beta(8, 2, n), 0.8),
    "binary": (lambda rng, n: (rng.random(n) < 0.7).astype(float), 0.7),
    "group_fraction": (lambda rng, n: (rng.random((n, 3)) < 0.7).mean(axis=1), 0.7),
}


def coverage(shape: str, n: int, method: str, trials: int, resamples: int, seed: int) -> float:
    from tvbench.analysis.bootstrap import Units, confidence_interval

    draw, truth = SHAPES[shape]
    rng = np.random.default_rng(seed)
    hits = 0
    for trial in range(trials):
        interval = confidence_interval(Units.of(draw(rng, n)), 0.95, resamples, method, seed + trial, min_units=2)
        hits += interval is not None and interval.low <= truth <= interval.high
    return hits / trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,3,4,5,6,8,10,12,15,20,23,30")
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--floor", type=float, default=0.85, help="coverage an interval must reach to be shown")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    began = time.time()
    table: dict[str, dict[str, dict[int, float]]] = {}
    for method in ("percentile", "bca"):
        table[method] = {shape: {n: coverage(shape, n, method, args.trials, args.resamples, 1000 * n)
                                 for n in sizes} for shape in SHAPES}
    print(f"coverage of nominal 95% intervals ({args.trials} trials, {args.resamples} resamples each)")
    for method, shapes in table.items():
        print(f"\n{method}: " + " ".join(f"n={n:<4}" for n in sizes))
        for shape, row in shapes.items():
            print(f"  {shape:<15}" + " ".join(f"{row[n]:.3f} " for n in sizes))
        reached = [n for n in sizes if all(shapes[shape][n] >= args.floor for shape in SHAPES)]
        smallest = next((n for n in sizes if all(m in reached for m in sizes if m >= n)), None)
        print(f"  smallest n with every shape >= {args.floor:.2f} from there on: {smallest}")
    print(f"\n{time.time() - began:.0f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"trials": args.trials, "resamples": args.resamples, "floor": args.floor, "coverage": table},
                      handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
