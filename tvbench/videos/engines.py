"""Where ``tvbench data build`` runs its videos: worker processes on this machine, or actors on a Ray cluster.

Both engines do the same thing as the in-process loop: each worker holds one :class:`~tvbench.videos.build.Builder`
(its tracker, flow network and MLLM client loaded once), builds whole videos with
:meth:`~tvbench.videos.build.Builder.build_video`, and hands back the video's funnel counts and the lines it has to
say; the calling process prints them, fills the progress bar and assembles the benchmark. Clip outcomes are files
under ``OUT/.build``, so OUT must be a folder every worker can write (on a cluster: a shared file system), and a
killed build resumes from them whatever engine ran it.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

from tvbench.errors import TvbenchError, UnavailableError

ENGINES = ("local", "ray")
Done = Callable[[Counter, list[str]], None]

_builder = None  # the worker process's Builder (set by _start_worker)


def _start_worker(config, out: str, threads: int) -> None:
    """Worker start-up: share the cores (torch and OpenCV would each take every core), then build the Builder."""
    global _builder
    from tvbench.threads import apply_threads
    from tvbench.videos.build import Builder

    apply_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    _builder = Builder(config, Path(out), say=lambda line: None)


def _build_one(video) -> tuple[Counter, list[str]]:
    assert _builder is not None
    return _builder.build_video(video)


def run_processes(config, out: Path, videos: list, done: Done, *, workers: int) -> None:
    """Build ``videos`` in ``workers`` processes (spawned: no state inherited from this one), one video a task."""
    from tvbench.threads import available_cores

    threads = max(1, available_cores() // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                             initargs=(config, str(out), threads)) as pool:
        pending = {pool.submit(_build_one, video) for video in videos}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    done(*future.result())  # a worker's TvbenchError is raised here, as in one process
        except BaseException:
            for future in pending:
                future.cancel()
            raise


class _RayWorker:
    """One Ray actor: a Builder for the actor's lifetime (GPU models loaded once per actor)."""

    def __init__(self, config, out: str, threads: int):
        _start_worker(config, out, threads)

    def build(self, video) -> tuple[Counter, list[str]]:
        return _build_one(video)


def _ray():
    try:
        import ray
    except ImportError:
        raise UnavailableError("--engine ray needs Ray: pip install 'tvbench[ray]'") from None
    return ray


def run_ray(config, out: Path, videos: list, done: Done, *, address: str | None, workers: int | None,
            gpus_per_worker: float = 0.0) -> None:
    """Build ``videos`` on a pool of Ray actors.

    ``address``: an existing cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``); None uses ``RAY_ADDRESS``
    or starts a local instance, shut down again at the end. ``workers`` actors (None: one per CPU the cluster has),
    each asking for one CPU and ``gpus_per_worker`` GPUs, so GPU trackers and flow run as an actor pool.
    """
    ray = _ray()
    from ray.util import ActorPool

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local instance"
            raise TvbenchError(f"--engine ray: cannot connect to {where}: {str(exc).splitlines()[0]}") from None
    try:
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1, num_gpus=gpus_per_worker)(_RayWorker)
        pool = ActorPool([actor.remote(config, str(out), 1) for _ in range(count)])
        try:
            for delta, lines in pool.map_unordered(lambda a, video: a.build.remote(video), videos):
                done(delta, lines)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
            if isinstance(cause, TvbenchError):
                raise cause from None
            raise
    finally:
        if started:
            ray.shutdown()
