"""Measuring on a shared machine, for the scripts in ``benchmarks/``: repeats summarised as median and spread,
CPU time and load average next to wall time, a measured region's own peak memory, and a one-line description
of the machine.

Wall time on a machine that other jobs share says as much about them as about the code; CPU time (user +
system) of the measured process says what the code itself cost, and the 1-minute load average says how busy
the machine was. So every figure is reported with all three, and a phase runs several times, interleaved with
the phase it is compared with, so that a burst of load hits both.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tvbench.threads import available_cores

RESULT_PREFIX = "TVBENCH-MEASURE "


def load_average() -> float:
    """The 1-minute load average (runnable processes, averaged), or NaN where the system has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's own peak resident memory so far, in MB.

    On Linux, ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` survives ``exec``, so a child started by a large
    parent would report the parent's size. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class Timing:
    """One measured region: wall and CPU seconds, the load average at its start and end, and extra facts."""

    wall: float = 0.0
    cpu: float = 0.0
    load: tuple[float, float] = (float("nan"), float("nan"))
    facts: dict = field(default_factory=dict)


class measured:
    """``with measured() as timing: ...`` fills ``timing`` with the region's wall and CPU time and load."""

    def __enter__(self) -> Timing:
        self.timing = Timing()
        self._load, self._wall, self._cpu = load_average(), time.perf_counter(), cpu_seconds()
        return self.timing

    def __exit__(self, *exc) -> None:
        self.timing.wall = time.perf_counter() - self._wall
        self.timing.cpu = cpu_seconds() - self._cpu
        self.timing.load = (self._load, load_average())


def report_to_parent(timing: Timing, **facts) -> None:
    """Print a child's result (with its own peak memory) as the last line of its stdout, for :func:`run_child`."""
    record = {"wall": timing.wall, "cpu": timing.cpu, "load": list(timing.load), "peak_rss_mb": peak_rss_mb(),
              **timing.facts, **facts}
    print(RESULT_PREFIX + json.dumps(record), flush=True)


def run_child(argv: Sequence[str], env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run ``python argv...`` in a fresh process and return what it reported with :func:`report_to_parent`.

    A child process has its own peak memory (``ru_maxrss``), so what a phase holds is measured apart from what
    the harness holds; torch allocations that ``tracemalloc`` cannot see are included.
    """
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, cwd=cwd)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"child {' '.join(argv[:3])} ... failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


@dataclass(frozen=True)
class Spread:
    """Repeated measurements: median, min and max (and how many)."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def format(self, digits: int = 1) -> str:
        """``median (min–max)``, or the one value when there is one."""
        if len(self.values) == 1:
            return f"{self.values[0]:.{digits}f}"
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def spread(values: Sequence[float]) -> Spread:
    return Spread(tuple(float(v) for v in values))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 ** 2
    except OSError:
        pass
    return None


def machine(device: str = "cpu") -> str:
    """One line: date, CPU model, cores this process may use, memory, the GPU if one is used, torch's version."""
    parts = [time.strftime("%Y-%m-%d %H:%M"), _cpu_model(), f"{available_cores()} cores available"]
    memory = _memory_gb()
    if memory:
        parts.append(f"{memory:.0f} GB RAM")
    if device.startswith("cuda"):
        import torch

        parts.append(torch.cuda.get_device_name(torch.device(device)))
    try:
        from importlib.metadata import version

        parts.append(f"torch {version('torch')}")
    except Exception:  # torch not installed: the judge benchmark does not need it
        pass
    parts.append(f"Python {platform.python_version()}")
    return ", ".join(parts)
