"""The ``tvbench`` command line: run -> score -> report, plus gate, ls, validate and data.

Every command is a thin layer over the library. Errors a user can fix print one line and exit 2; a run
or a gate that found failures exits 1; anything else is a bug and says how to get its traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console
from rich.table import Table

from tvbench.errors import ConfigError, TvbenchError, one_line

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark and evaluation harness for text-vision co-instructed image editing (TV-Edit-Bench).")
data_app = typer.Typer(no_args_is_help=True, help="Convert benchmarks between formats.")
app.add_typer(data_app, name="data")

console = Console()


def say(message: str) -> None:
    """A plain line on stderr: never wrapped, never styled (one error = one line, also in logs)."""
    typer.echo(message, err=True)


def _split(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _parse_settings(items: list[str]) -> dict[str, str]:
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value")
        settings[key.strip()] = value
    return settings


@app.command()
def run(
    method: str = typer.Option(..., "--method", "-m", help="Method name; several as a comma-separated list."),
    bench: str = typer.Option("sample", "--bench", "-b", help="'sample', a benchmark folder, or hf:ID[@split]."),
    out: Path = typer.Option(Path("results"), "--out", "-o", help="Results root; a run writes <out>/<run name>/."),
    limit: Optional[int] = typer.Option(None, help="Run only the first N selected cases."),
    cases: Optional[str] = typer.Option(None, help="Comma-separated case ids to run."),
    shard: Optional[str] = typer.Option(None, help="K/N: run the K-th of N shards (by a hash of the case id)."),
    seed: int = typer.Option(0, help="Seed passed to the method for every case."),
    settings: list[str] = typer.Option([], "--set", help="Method option key=value (repeatable)."),
    run_name: Optional[str] = typer.Option(None, help="Folder name of the run (default: the method name)."),
    overwrite: bool = typer.Option(False, help="Replace an existing, different run in the same folder."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps (not part of the run's identity)."),
    dtype: Optional[str] = typer.Option(None, help="float32, bfloat16 or float16 for methods that use torch "
                                                   "(default: bfloat16 on CUDA, else float32)."),
    batch_size: int = typer.Option(1, help="Cases per call for methods that batch (not part of the run's identity)."),
    retry: str = typer.Option("failed", help="Statuses a rerun edits again: failed, or failed,refused."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Edit every case of a benchmark with a method. Resumable: a rerun skips finished cases."""
    from tvbench.cases import load_benchmark
    from tvbench.device import dtype_name, resolve_device
    from tvbench.methods import Runtime, create_method
    from tvbench.runner import Shard, run_method

    names = _split(method)
    if run_name and len(names) > 1:
        raise ConfigError("--run-name needs a single --method")
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    options = _parse_settings(settings)
    methods = [create_method(name, options) for name in names]  # fail on bad options before any work
    runtime = Runtime(device=resolve_device(device), dtype=dtype_name(dtype) if dtype else None,
                      batch_size=batch_size)
    benchmark = load_benchmark(bench, progress=not quiet)
    failed = 0
    while methods:  # one method at a time: run it, tear it down, drop it, then load the next
        m = methods.pop(0)
        report = run_method(m, benchmark, out, run_name=run_name, seed=seed, case_ids=_split(cases) or None,
                            limit=limit, shard=Shard.parse(shard) if shard else None, overwrite=overwrite,
                            progress=not quiet, runtime=runtime, retry=_split(retry))
        del m
        failed += len(report.failed)
        refused = len(report.refused) + report.refused_before
        refused_note = f", {refused} refused (--retry refused asks again)" if refused else ""
        say(f"{report.run_dir}: {report.done} edited, {report.skipped - report.refused_before} already done, "
            f"{len(report.failed)} failed{refused_note} (of {report.selected} selected)")
    if failed:
        raise typer.Exit(1)


@app.command()
def score(
    results: Path = typer.Argument(Path("results"), help="Results root (method folders) or one folder of edits."),
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
    rescore: bool = typer.Option(False, help="Recompute every row instead of reusing earlier ones."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
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
    # --- end judge ---
) -> None:
    """Score every method folder with the TV-Edit-Bench metrics; writes scores.jsonl and summary.json."""
    from tvbench.features import DEFAULT_BACKBONE, DEFAULT_RESOLUTION, RANDOM_BACKBONES
    from tvbench.report import build_leaderboard, render
    from tvbench.scoring import SCORES_FILE, SUMMARY_FILE, ScoringConfig, score_results

    if smoke and backbone and backbone not in RANDOM_BACKBONES:
        raise ConfigError(f"--smoke uses random weights; --backbone may only pick one of {', '.join(RANDOM_BACKBONES)}")
    config = ScoringConfig(metrics=_split(metrics) or None, backbone=backbone or DEFAULT_BACKBONE,
                           resolution=resolution or DEFAULT_RESOLUTION, match_resolution=match_resolution,
                           lpips_net=lpips_net, smoke=smoke, device=device, dtype=dtype, rescore=rescore,
                           feature_cache=None if feature_cache == "off" else feature_cache, dift_model=dift_model)
    from tvbench.judge.config import JudgeConfig  # judge metrics (tvbench/judge/)

    config.judge = JudgeConfig(
        base_url=judge_base_url, model=judge_model, concurrency=judge_concurrency, rpm=judge_rpm,
        repeats=judge_repeats, temperature=judge_temperature, top_p=judge_top_p, max_tokens=judge_max_tokens,
        seed=judge_seed, structured=judge_structured, timeout_s=judge_timeout, max_attempts=judge_max_attempts,
        price_in=judge_price_in, price_out=judge_price_out, cache_path=str(judge_cache) if judge_cache else None,
        coverage_threshold=judge_coverage_threshold)
    if judge_repeats > 1 and judge_temperature == 0:
        say("note: --judge-repeats at --judge-temperature 0 asks one deterministic question several times")
    summary = score_results(results, config, bench_spec=bench, progress=not quiet)
    typer.echo(render(build_leaderboard(summary), "markdown"), nl=False)
    say(f"wrote {results / SCORES_FILE} and {results / SUMMARY_FILE}")
    judge_run = (summary.get("judge") or {}).get("this_run")
    if judge_run:  # judge metrics: what the run cost, and whether a rerun has something to retry
        cost = f", ${judge_run['cost_usd']:.4f}" if judge_run.get("cost_usd") is not None else ""
        say(f"judge: {judge_run['requests']} requests ({judge_run['retries']} retries), {judge_run['cache_hits']} "
            f"cached, {judge_run['tokens']['prompt']}+{judge_run['tokens']['completion']} tokens{cost}; "
            f"{judge_run['failed_requests']} failed (rerun to retry them)")


@app.command()
def report(
    results: Path = typer.Argument(Path("results"), help="Results root holding summary.json, or the file itself."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="markdown, latex, csv, json or html."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Print the leaderboard (best in bold, second underlined, coverage where partial)."""
    from tvbench.io import atomic_write_text
    from tvbench.report import build_leaderboard, load_summary, render

    text = render(build_leaderboard(load_summary(results)), fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)
        say(f"wrote {output}")


@app.command()
def gate(
    scores: Path = typer.Argument(..., help="summary.json (or the results folder holding it) to check."),
    baseline: Path = typer.Option(..., "--baseline", help="The summary.json to compare against."),
    tolerance: list[str] = typer.Option([], help="METRIC=VALUE, or VALUE for every metric (default 1e-4)."),
    two_sided: bool = typer.Option(False, help="Also fail when a score got better (detects any drift)."),
) -> None:
    """Exit 1 when any method's metric is worse than the baseline beyond tolerance."""
    from tvbench.gate import run_gate
    from tvbench.report import load_summary

    findings = run_gate(load_summary(scores), load_summary(baseline), tolerance, two_sided)
    table = Table("method", "metric", "baseline", "current", "verdict", title="tvbench gate")
    for f in findings:
        fmt = lambda v: "–" if v is None else f"{v:.6f}"  # noqa: E731
        verdict = "[green]pass[/green]" if f.passed else f"[red]FAIL[/red] {f.message}"
        table.add_row(f.method, f.metric, fmt(f.baseline), fmt(f.current), verdict)
    console.print(table)
    failures = [f for f in findings if not f.passed]
    for f in failures:
        say(f"FAIL {f.method} {f.metric}: {f.message}")
    if failures:
        raise typer.Exit(1)
    say(f"gate passed: {len(findings)} comparisons")


@app.command("ls")
def list_components(what: str = typer.Argument("all", help="methods, metrics or all.")) -> None:
    """List methods (inputs as in Table 1, availability) and metrics (direction, range, needs)."""
    if what not in ("all", "methods", "metrics"):
        raise ConfigError(f"tvbench ls {what!r}: choose methods, metrics or all")
    if what in ("all", "methods"):
        from tvbench.methods import list_methods

        table = Table("method", "input", "available", "about", title="methods (input: M mask, P prompt, "
                      "T trajectory, I instruction, GT ground truth)")
        for info in list_methods():
            status = "[green]yes[/green]" if info.available else "[red]no[/red]"
            table.add_row(info.name, info.inputs, status, info.summary if info.available else info.reason)
        console.print(table)
    if what in ("all", "metrics"):
        from tvbench.metrics import METRICS

        table = Table("metric", "label", "better", "range", "needs", "paper", title="metrics")
        for name in METRICS.names():
            spec = METRICS.load(name)
            low, high = spec.range
            table.add_row(name, spec.label, "higher ↑" if spec.higher_is_better else "lower ↓", f"[{low:g}, {high:g}]",
                          ", ".join(sorted(spec.requires | spec.models)), spec.reference)
        console.print(table)


@app.command()
def validate(bench: str = typer.Argument(..., help="'sample', a benchmark folder, or hf:ID[@split].")) -> None:
    """Check every case of a benchmark; print one line per problem; exit 1 if any."""
    from tvbench.cases.loaders import read_benchmark

    benchmark = read_benchmark(bench)
    problems = benchmark.validate()
    for problem in problems:
        say(f"{bench}: {problem}")
    if problems:
        say(f"{len(problems)} problem(s) found")
        raise typer.Exit(1)
    typer.echo(f"{bench}: {len(benchmark)} cases OK, hash {benchmark.hash}")


@data_app.command("export")
def export(
    bench: str = typer.Argument(..., help="'sample', a benchmark folder, or hf:ID[@split]."),
    out: Path = typer.Argument(..., help="Destination folder."),
    fmt: str = typer.Option("folder", "--format", "-f", help="folder (cases.jsonl + images) or hf (save_to_disk)."),
    overwrite: bool = typer.Option(False, help="Replace an existing benchmark at the destination."),
) -> None:
    """Write a benchmark in the folder format or as a Hugging Face dataset."""
    from tvbench.cases import load_benchmark, write_folder, write_hf

    benchmark = load_benchmark(bench)
    if fmt == "folder":
        write_folder(benchmark, out, overwrite=overwrite, progress=True)
    elif fmt == "hf":
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise TvbenchError(f"{out}: not empty; pass --overwrite to replace it")
        write_hf(benchmark, out)
    else:
        raise ConfigError(f"--format {fmt!r}: choose folder or hf")
    say(f"wrote {len(benchmark)} cases to {out} ({fmt}), hash {benchmark.hash}")


# --- data import (importers subpackage) ---
@data_app.command("import")
def import_(
    fmt: Optional[str] = typer.Argument(None, metavar="FORMAT", help="dragbench, drag100 or hf; omit to list them."),
    src: Optional[str] = typer.Argument(None, metavar="SRC", help="The folder (or hf:ID) to import."),
    out: Optional[Path] = typer.Argument(None, metavar="OUT", help="Destination folder benchmark."),
    overwrite: bool = typer.Option(False, help="Replace an existing benchmark at the destination."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Import another benchmark's layout (DragBench, Drag100, a HF dataset) as a folder benchmark."""
    from tvbench.cases.importers import DESCRIPTIONS, IMPORTERS, ImportFailed, import_benchmark

    if fmt is None:
        for name in IMPORTERS.names():
            typer.echo(f"{name}: {DESCRIPTIONS.get(name, '')}")
        return
    IMPORTERS.entry(fmt)  # an unknown format fails here, with a did-you-mean
    if src is None or out is None:
        raise ConfigError(f"tvbench data import {fmt} SRC OUT: give the source and the destination folder")
    try:
        benchmark = import_benchmark(fmt, src, out, overwrite=overwrite, progress=not quiet)
    except ImportFailed as exc:
        if len(exc.errors) == 1:
            raise
        for problem in exc.errors:
            say(f"{src}: {problem}")
        raise TvbenchError(f"{src}: {len(exc.errors)} case(s) cannot be imported; nothing was written") from None
    say(f"imported {len(benchmark)} cases to {out}, hash {benchmark.hash}")
# --- end data import ---


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, meaningful exit codes."""
    try:
        code = app(args=argv, standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        say("interrupted; rerun the same command to continue where it stopped")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TvbenchError as exc:
        say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except OSError as exc:  # a file the user named cannot be read or written (permissions, disk full, ...)
        say(f"error: {one_line(exc)}")
        sys.exit(2)
    except Exception as exc:
        if os.environ.get("TVBENCH_DEBUG"):
            raise
        say(f"internal error: {one_line(exc)} (set TVBENCH_DEBUG=1 to see the traceback)")
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
