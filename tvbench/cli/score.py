"""``tvbench score``: the TV-Edit-Bench metrics over a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from tvbench.cli.app import _split, app, say
from tvbench.errors import ConfigError, WeightsUnavailable

if TYPE_CHECKING:
    from tvbench.scoring import ScoringConfig


@app.command(short_help="Score edits with the TV-Edit-Bench metrics.")
def score(
    results: Path = typer.Argument(Path("results"), metavar="RESULTS",
                                    help="Results root (method folders) or one folder of edits."),
    bench: Optional[str] = typer.Option(None, "--bench", "-b", help="Benchmark, needed for edits made elsewhere."),
    metrics: Optional[str] = typer.Option(None, help="Comma-separated metric names (default: all image metrics)."),
    backbone: Optional[str] = typer.Option(None, help="DINOv3: hub id (timm or transformers) or local folder."),
    resolution: Optional[int] = typer.Option(None, help="Long side in pixels of the images fed to DINOv3."),
    match_resolution: int = typer.Option(896, help="Long side in pixels for the DINOv3 features of point matching."),
    feature_cache: str = typer.Option("auto", help="Folder of the on-disk feature cache; 'auto' (tvbench cache) or "
                                                   "'off'."),
    dift_model: str = typer.Option("stabilityai/stable-diffusion-2-1",
                                   help="SD 2.1 weights (hub id or folder) for the dragbench_md_dift metric."),
    lpips_net: str = typer.Option("alex", help="LPIPS network: alex, vgg or squeeze."),
    smoke: bool = typer.Option(False, help="Random-weight networks: an offline pipeline check, not paper numbers."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps."),
    dtype: str = typer.Option("float32", help="DINOv3 precision: float32, bfloat16 or float16."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: $TVBENCH_THREADS, "
                                                     "$OMP_NUM_THREADS, else the cores available)."),
    rescore: bool = typer.Option(False, help="Recompute every row instead of reusing earlier ones."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    wait: bool = typer.Option(False, "--wait", help="If another tvbench score is writing RESULTS, start when it is "
                                                    "done instead of failing."),
    ci: float = typer.Option(0.95, "--ci", help="Level of the bootstrap confidence intervals in the summary."),
    bootstrap: int = typer.Option(10_000, "--bootstrap", help="Bootstrap resamples for the intervals."),
    ci_method: str = typer.Option("bca", "--ci-method", help="Intervals: bca (default) or percentile."),
    ci_seed: int = typer.Option(0, "--ci-seed", help="Seed of the bootstrap (intervals are reproducible)."),
    # --- judge metrics (pf, cp, pf_drag, cp_drag; tvbench/judge/). API key: $TVBENCH_JUDGE_API_KEY or $OPENAI_API_KEY
    judge_base_url: Optional[str] = typer.Option(None, envvar="TVBENCH_JUDGE_BASE_URL",
                                                 help="Judge: OpenAI-compatible base URL, e.g. http://localhost:8000/v1."),
    judge_model: Optional[str] = typer.Option(None, envvar="TVBENCH_JUDGE_MODEL",
                                              help="Judge: model id (default Qwen/Qwen3-VL-8B-Instruct)."),
    judge_concurrency: int = typer.Option(8, help="Judge: requests in flight at once."),
    judge_rpm: Optional[float] = typer.Option(None, help="Judge: at most this many requests per minute."),
    judge_repeats: int = typer.Option(1, help="Judge: grade each edit K times (mean ± std over repeats)."),
    judge_temperature: float = typer.Option(0.0, help="Judge: sampling temperature (use > 0 with repeats)."),
    judge_top_p: Optional[float] = typer.Option(None, help="Judge: nucleus sampling top_p."),
    judge_max_tokens: int = typer.Option(1024, help="Judge: max tokens of a reply."),
    judge_seed: Optional[int] = typer.Option(0, help="Judge: seed; repeat k sends seed + k."),
    judge_structured: bool = typer.Option(True, help="Judge: ask for JSON-schema structured output."),
    judge_timeout: float = typer.Option(120.0, help="Judge: seconds per request before it is retried."),
    judge_max_attempts: int = typer.Option(5, help="Judge: attempts per request (timeouts, 429, 5xx retried)."),
    judge_price_in: Optional[float] = typer.Option(None, help="Judge: USD per million prompt tokens (for the cost)."),
    judge_price_out: Optional[float] = typer.Option(None, help="Judge: USD per million completion tokens."),
    judge_cache: Optional[Path] = typer.Option(None, help="Judge: reply cache (default RESULTS/judge.cache.sqlite)."),
    judge_coverage_threshold: float = typer.Option(0.95, help="Judge: flag aggregates below this coverage."),
    judge_preflight: bool = typer.Option(True, "--judge-preflight/--no-judge-preflight",
                                         help="Judge: one check request (server, model, structured output) before "
                                              "the first real one."),
    judge_max_errors: Optional[str] = typer.Option(None, metavar="N|FRACTION",
                                                   help="Judge: stop the phase after more than N failed judgments, "
                                                        "or a fraction (0.1) of its judgments (default: no limit)."),
    judge_allow_paid: bool = typer.Option(False, "--judge-allow-paid", envvar="TVBENCH_JUDGE_ALLOW_PAID",
                                          help="Judge: allow a server that is not local (localhost, 127.0.0.1, "
                                               "::1); it may bill every request."),
    # --- end judge ---
) -> None:
    """Score every method folder with the TV-Edit-Bench metrics; writes scores.jsonl and summary.json.

    The leaderboard is `tvbench report RESULTS`. Exits 1 when an edit could not be scored (each is named on
    stderr; the rows say why).
    """
    from tvbench.device import dtype_name, resolve_device

    device, dtype = resolve_device(device), dtype_name(dtype)  # a missing GPU is one line before anything loads
    from tvbench.features.defaults import DEFAULT_BACKBONE, DEFAULT_RESOLUTION, RANDOM_BACKBONES
    from tvbench.scoring import SCORES_FILE, SUMMARY_FILE, ScoringConfig, score_results
    from tvbench.threads import resolve_threads

    resolve_threads(threads)  # a bad --threads or $TVBENCH_THREADS fails before any work
    if smoke and backbone and backbone not in RANDOM_BACKBONES:
        raise ConfigError(f"--smoke uses random weights; --backbone may only pick one of {', '.join(RANDOM_BACKBONES)}")
    config = ScoringConfig(metrics=_split(metrics) or None, backbone=backbone or DEFAULT_BACKBONE,
                           resolution=resolution or DEFAULT_RESOLUTION, match_resolution=match_resolution,
                           lpips_net=lpips_net, smoke=smoke, device=device, dtype=dtype, rescore=rescore,
                           feature_cache=None if feature_cache == "off" else feature_cache, dift_model=dift_model,
                           ci_level=ci, bootstrap=bootstrap, ci_method=ci_method, ci_seed=ci_seed, threads=threads)
    from tvbench.analysis.bootstrap import check_settings

    check_settings(ci, bootstrap, ci_method)  # before any network loads
    from tvbench.judge.config import JudgeConfig, parse_max_errors  # judge metrics (tvbench/judge/)

    config.judge = JudgeConfig(
        base_url=judge_base_url, model=judge_model, concurrency=judge_concurrency, rpm=judge_rpm,
        repeats=judge_repeats, temperature=judge_temperature, top_p=judge_top_p, max_tokens=judge_max_tokens,
        seed=judge_seed, structured=judge_structured, timeout_s=judge_timeout, max_attempts=judge_max_attempts,
        price_in=judge_price_in, price_out=judge_price_out, cache_path=str(judge_cache) if judge_cache else None,
        coverage_threshold=judge_coverage_threshold, preflight=judge_preflight,
        max_errors=parse_max_errors(judge_max_errors), allow_paid=judge_allow_paid)
    if _judged(config.metrics):  # a paid server is refused now, not after the image metrics
        config.judge.resolved().check_paid()
    if judge_repeats > 1 and judge_temperature == 0:
        say("note: --judge-repeats at --judge-temperature 0 asks one deterministic question several times")
    try:
        summary = score_results(results, config, bench_spec=bench, progress=not quiet, wait=wait, on_wait=say)
    except WeightsUnavailable as exc:
        raise _with_weights_option(exc, config) from None
    for method, info in summary["methods"].items():
        for name in info.get("unmatched_files", []):
            say(f"warning: {method}: not named after a case of the benchmark, not scored: {name}")
    if summary.get("without_edits"):
        say(f"note: no edits, not scored or ranked: {', '.join(summary['without_edits'])} (the run failed; its "
            "manifest.json says why)")
    errors = _error_rows(results / SCORES_FILE)
    say(f"wrote {results / SCORES_FILE} and {results / SUMMARY_FILE}; `tvbench report {results}` shows the "
        "leaderboard")
    judge_run = (summary.get("judge") or {}).get("this_run")
    if judge_run:  # judge metrics: what the run cost, and whether a rerun has something to retry
        cost = f", ${judge_run['cost_usd']:.4f}" if judge_run.get("cost_usd") is not None else ""
        say(f"judge: {judge_run['requests']} requests ({judge_run['retries']} retries), {judge_run['cache_hits']} "
            f"cached, {judge_run['tokens']['prompt']}+{judge_run['tokens']['completion']} tokens{cost}; "
            f"{judge_run['failed_requests']} failed (rerun to retry them)")
    if errors:
        raise typer.Exit(1)


def _with_weights_option(exc: WeightsUnavailable, config: ScoringConfig) -> WeightsUnavailable:
    """Name the option that takes a local copy of the network that could not be had, and --smoke."""
    options = {config.backbone: "--backbone PATH", config.dift_model: "--dift-model PATH"}
    exc.option = exc.option or options.get(exc.spec)
    exc.note = "; ".join(filter(None, [exc.note, "or --smoke: random-weight networks, an offline check of the "
                                                 "pipeline, not paper numbers"]))
    return exc


def _judged(names: list[str] | None) -> bool:
    """Whether any of the metrics named is a judge metric (an unknown name is left to the scorer to report)."""
    from tvbench.errors import TvbenchError
    from tvbench.metrics import get_metric

    for name in names or []:
        try:
            if "judge" in get_metric(name).models:
                return True
        except TvbenchError:
            continue
    return False


def _error_rows(scores: Path, shown: int = 10) -> int:
    """Say which edits could not be scored (one line per method and case), and return how many rows errored."""
    from tvbench.io import read_jsonl
    from tvbench.metrics import ERROR

    failed: dict[tuple[str, str], str] = {}
    count = 0
    for row in read_jsonl(scores):
        if row.get("status") == ERROR:
            count += 1
            failed.setdefault((row["method"], row["case"]), str(row.get("detail") or "error"))
    for (method, case), detail in list(failed.items())[:shown]:
        say(f"error: {method}: case {case!r}: {detail}")
    if len(failed) > shown:
        say(f"error: ... and {len(failed) - shown} more edit(s) with errors; see {scores}")
    return count
