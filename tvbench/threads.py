"""How many CPU threads torch uses: ``--threads N`` (``tvbench score`` and ``tvbench run``), else ``$TVBENCH_THREADS``.

Nothing else sets torch's intra-op thread count, and on a shared machine its own default (every core it can see)
makes threads fight: a scoring profile measured on 2 busy cores cost 83 CPU-s with two threads against 28 CPU-s
with one (issue 13). So every command that runs networks resolves one number here, applies it before the first
network is built, and records it (``summary.json``: ``scorer.threads``; a run's manifest: ``runtime.threads``).

Order of precedence: the option, then ``TVBENCH_THREADS``, then ``OMP_NUM_THREADS`` (the standard variable,
which torch itself reads at start-up), then 1 where only tiny networks run on the CPU (``--smoke``), then the cores
this process may run on (``os.sched_getaffinity``, which honours ``taskset`` and container CPU sets;
``os.cpu_count()`` where that call does not exist). On a machine shared with other jobs, pass a smaller number.

Applying the count never imports torch (a run of an API editor must not pay 3 s for it): before torch is imported
it goes into ``OMP_NUM_THREADS``, which torch reads when it starts its thread pool.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from tvbench.errors import ConfigError

ENV = "TVBENCH_THREADS"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Threads:
    count: int
    source: str  # where the number came from: "--threads", "TVBENCH_THREADS", "OMP_NUM_THREADS" or "cores"

    def describe(self) -> dict:
        return {"count": self.count, "source": self.source}


def _parse(text: str, where: str) -> int:
    try:
        count = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{where} {text!r}: expected a whole number of threads (at least 1)") from None
    if count < 1:
        raise ConfigError(f"{where} {count}: expected at least 1 thread")
    return count


def resolve_threads(option: int | str | None = None, *, small_models: bool = False) -> Threads:
    """The thread count to use and where it came from (see the module docstring for the order).

    ``small_models``: the CPU runs only tiny networks (``--smoke``), so when nobody chose a count it is 1: the work
    per kernel is too small to split, and spin-waiting threads multiplied the CPU time of the README's smoke
    scoring by about 4.5 (2 cores: 165 CPU-s with torch's default threads, 37 CPU-s with one; same numbers).
    """
    if option is not None:
        return Threads(_parse(option, "--threads"), "--threads")
    for variable in (ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value:
            return Threads(_parse(value, variable), variable)
    if small_models:
        return Threads(1, "small models")
    return Threads(available_cores(), "cores")


def apply_threads(option: int | str | None = None, *, small_models: bool = False) -> Threads:
    """Resolve the thread count and give it to torch; returns what was applied."""
    threads = resolve_threads(option, small_models=small_models)
    set_torch_threads(threads.count)
    return threads


def set_torch_threads(count: int) -> None:
    """torch's intra-op pool to ``count`` threads, without importing torch: if it is not imported yet,
    ``OMP_NUM_THREADS`` is set so that torch starts with that count (child processes inherit it too)."""
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = str(count)
    elif torch.get_num_threads() != count:
        torch.set_num_threads(count)
