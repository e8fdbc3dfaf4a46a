"""Judge throughput: requests per second against a fake server with a fixed latency, by concurrency.

    python benchmarks/judge_bench.py [--latency 0.05] [--requests 192] [--concurrency 1,2,4,8,16]

Each level grades ``--requests`` fresh items (own cache) through the real client stack (images PNG-encoded,
base64 data URLs, openai client, SQLite cache, strict parsing) against :class:`tvbench.judge.testing.FakeJudgeServer`
answering after ``--latency`` seconds. The ideal is ``concurrency / latency`` requests per second; the target is
at least 0.8 x ideal up to 16. Then the last level is rerun on its warm cache: the target is 0 requests.
The server runs in a child process (``--server-process``, the default) so that its threads do not share the
client's interpreter lock; ``--in-process`` measures both in one process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from tvbench.judge import Evaluator, JudgeCache, JudgeConfig, JudgeItem, load_prompt
from tvbench.judge.testing import FakeJudgeServer


def _serve(latency: float, queue, stop) -> None:
    with FakeJudgeServer(latency=latency) as server:
        queue.put(server.base_url)
        stop.wait()


def items(n: int, size: int) -> list[JudgeItem]:
    prompt = load_prompt("pf-v1")

    def images(k: int):
        return lambda: [Image.new("RGB", (size, size), (k % 256, (k * 7) % 256, role * 80)) for role in range(3)]

    return [JudgeItem(f"item-{k}", prompt, f"move object {k} to the right", images(k)) for k in range(n)]


def run_level(base_url: str, concurrency: int, work: list[JudgeItem], cache_path: Path) -> tuple[float, int]:
    config = JudgeConfig(base_url=base_url, model="bench-judge", concurrency=concurrency, max_attempts=1).resolved()
    cache = JudgeCache(cache_path)
    evaluator = Evaluator(config, cache)
    try:
        evaluator.client  # connect outside the timed region  # noqa: B018
        start = time.perf_counter()
        results, stats = evaluator.evaluate(work)
        seconds = time.perf_counter() - start
    finally:
        evaluator.close()
        cache.close()
    failed = [r for r in results if r.status != "ok"]
    if failed:
        raise SystemExit(f"{len(failed)} judgments failed, e.g. {failed[0].detail}")
    return seconds, stats.requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request, seconds")
    parser.add_argument("--requests", type=int, default=192, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,2,4,8,16", help="comma-separated levels")
    parser.add_argument("--image-size", type=int, default=64, help="side of the (three) images per request, px")
    parser.add_argument("--in-process", action="store_true", help="run the server in this process")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",")]
    stop = None
    if args.in_process:
        server = FakeJudgeServer(latency=args.latency).start()
        base_url = server.base_url
    else:
        ctx = multiprocessing.get_context("spawn")
        queue, stop = ctx.Queue(), ctx.Event()
        child = ctx.Process(target=_serve, args=(args.latency, queue, stop), daemon=True)
        child.start()
        base_url = queue.get(timeout=60)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for level in levels:
            cache_path = Path(tmp) / f"cache-{level}.sqlite"
            work = items(args.requests, args.image_size)
            seconds, sent = run_level(base_url, level, work, cache_path)
            rate = sent / seconds
            ideal = level / args.latency
            rows.append((level, sent, seconds, rate, ideal, rate / ideal))
        _, rerun_requests = run_level(base_url, levels[-1], items(args.requests, args.image_size), cache_path)
    if stop is not None:
        stop.set()
    else:
        server.stop()
    print(f"judge throughput, fake server latency {args.latency * 1000:g} ms, {args.requests} requests per level, "
          f"three {args.image_size}x{args.image_size} PNGs per request, server "
          f"{'in process' if args.in_process else 'in a child process'}")
    print(f"{'concurrency':>11} {'requests':>8} {'seconds':>8} {'req/s':>8} {'ideal':>8} {'ratio':>6}")
    for level, sent, seconds, rate, ideal, ratio in rows:
        mark = "" if ratio >= 0.8 else "  < 0.8 target"
        print(f"{level:>11} {sent:>8} {seconds:>8.3f} {rate:>8.1f} {ideal:>8.1f} {ratio:>6.2f}{mark}")
    print(f"cached rerun of the last level: {rerun_requests} requests (target 0)")
    ok = all(ratio >= 0.8 for *_, ratio in rows) and rerun_requests == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
