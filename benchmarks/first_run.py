"""What a new user waits for: the README's first command (run, score --smoke, report) and the README's test command.

    python benchmarks/first_run.py            # the README's tvbench steps, fresh caches, in a temp folder
    python benchmarks/first_run.py --suite    # ... and then `pytest -q` on this checkout

Prints one table: per step the wall seconds, the CPU seconds it used (user + system, children included) and the
load average before it ran, so a figure taken on a shared machine says how shared it was. The environment is the
user's: no thread pinning beyond what tvbench does itself, and a fresh ``TVBENCH_CACHE`` (the bundled benchmark is
generated and every feature is computed, as on a first run). The commands are read from README.md, so the
figures are those of the commands the README shows.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def readme_steps() -> list[str]:
    """The tvbench steps of the README's first command (the install steps are what this runs in)."""
    block = re.search(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S).group(1)
    return [step.strip() for step in block.split("&&") if step.strip().startswith("tvbench ")]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds of the child, the 1-minute load average before, and the exit code."""
    load = os.getloadavg()[0]
    before, started = os.times(), time.perf_counter()
    code = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    wall, after = time.perf_counter() - started, os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, load, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="store_true", help="also time the README's test command")
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    rows = []
    with tempfile.TemporaryDirectory(prefix="tvbench-first-run-") as work:
        env = {**os.environ, "TVBENCH_CACHE": str(Path(work) / "cache"),
               "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
        for step in readme_steps():
            rows.append((step, *timed(shlex.split(step), Path(work), env)))
    if args.suite:
        rows.append(("pytest -q", *timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], REPO,
                                         dict(os.environ))))
    print(f"{platform.node()} · {os.cpu_count()} CPUs · {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"| {'step':<60} | wall s | CPU s | load before | exit |")
    print(f"| {'-' * 60} | ------ | ----- | ----------- | ---- |")
    for step, wall, cpu, load, code in rows:
        print(f"| {step[:60]:<60} | {wall:6.1f} | {cpu:5.1f} | {load:11.2f} | {code:4d} |")
    steps = [row for row in rows if row[0].startswith("tvbench ")]
    print(f"| {'README first command (tvbench steps)':<60} | {sum(r[1] for r in steps):6.1f} | "
          f"{sum(r[2] for r in steps):5.1f} | {steps[0][3]:11.2f} | {max(r[4] for r in steps):4d} |")


if __name__ == "__main__":
    main()
