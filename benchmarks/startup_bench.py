"""Start-up cost of the `tvbench` commands: what a user waits for before any work, and what it costs the machine.

    python benchmarks/startup_bench.py [--repeats 5]

Each command runs as a fresh process, the way a user runs it; the commands take turns within each repeat (so a
burst of load from other jobs hits them all). For each: wall seconds, CPU seconds (user + system of the process
and its children, from `wait4`) and peak resident memory, as median (min–max) over repeats, and the wall time
above `python -c "import tvbench"` (the floor of any command).

`score (no such folder)` is the cost of a mistake (one line, exit 2). `score (nothing to do)` rescores a results
folder whose rows are all reused (the bundled sample, identity, with `--smoke`): everything `tvbench score` does
besides computing, i.e. imports, reading and hashing the benchmark, building the networks, reading the row memo,
writing the files. `import torch` and `import timm, lpips` are there for reference: they bound what any command
that touches a network can reach.

Python's bytecode cache is on, as on a user's machine: ``PYTHONDONTWRITEBYTECODE`` (set on some CI and sandbox
machines) is dropped for the commands, and the untimed first runs write the ``.pyc`` files. Without them every
start-up recompiles tvbench's modules (about 0.2 s more for ``tvbench ls`` on a 2-core VM).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tvbench.testing.measure import load_average, machine, spread


def tvbench_command() -> list[str]:
    """The installed entry point beside this interpreter, else ``python -m tvbench``."""
    script = Path(sys.executable).with_name("tvbench")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tvbench"]


def run_once(argv: list[str], env: dict, expect: int = 0) -> tuple[float, float, float]:
    """Wall s, CPU s (the process and its waited-for children) and peak RSS MB of one run; fails loudly when the
    exit code is not ``expect``."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != expect:
        message = process.stderr.read().decode()[-500:]
        raise SystemExit(f"{' '.join(argv)} failed (exit {process.returncode}): {message}")
    process.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="folder for the scored results (default: temp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="startup-bench-"))
    env = {**os.environ, "TVBENCH_CACHE": os.environ.get("TVBENCH_CACHE", str(work / "cache"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps its bytecode cache
    tvbench = tvbench_command()
    results = work / "results"
    shutil.rmtree(results, ignore_errors=True)
    prepare = [tvbench + ["run", "-m", "identity", "--bench", "sample", "--out", str(results), "-q"],
               tvbench + ["score", str(results), "--smoke", "-q"], tvbench + ["ls"]]
    for argv in prepare:  # untimed: the sample is generated, the random backbone built, every row computed once
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    commands = {
        'python -c "import tvbench"': [sys.executable, "-c", "import tvbench"],
        "tvbench --help": tvbench + ["--help"],
        "tvbench ls": tvbench + ["ls"],
        "tvbench ls methods": tvbench + ["ls", "methods"],
        "tvbench ls metrics": tvbench + ["ls", "metrics"],
        "tvbench score (nothing to do)": tvbench + ["score", str(results), "--smoke", "-q"],
        "tvbench score (no such folder)": tvbench + ["score", str(work / "missing"), "--smoke"],
        "tvbench score --device cpu (no such folder)": tvbench + ["score", str(work / "missing"), "--smoke",
                                                                  "--device", "cpu"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        'python -c "import timm, lpips"': [sys.executable, "-c", "import timm, lpips"],
    }
    measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    loads = [load_average()]
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}", file=sys.stderr, flush=True)
        order = list(commands) if repeat % 2 == 0 else list(reversed(commands))
        for name in order:
            measured[name].append(run_once(commands[name], env, expect=2 if "no such folder" in name else 0))
            loads.append(load_average())
    floor = spread([wall for wall, _, _ in measured['python -c "import tvbench"']]).median
    print(f"startup_bench: {machine()}; {args.repeats} repeats, commands interleaved; load average "
          f"{spread(loads).format(2)} (median, min–max over the run)\n")
    print("| command | wall s | above `import tvbench` s | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, runs in measured.items():
        wall, cpu, rss = (spread([run[k] for run in runs]) for k in range(3))
        print(f"| {name} | {wall.format(2)} | {wall.median - floor:+.2f} | {cpu.format(2)} | {rss.median:.0f} |")


if __name__ == "__main__":
    main()
