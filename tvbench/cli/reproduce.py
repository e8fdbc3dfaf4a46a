"""``tvbench reproduce``: run every method of a published table that tvbench has, score, compare with the paper."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tvbench.cli.app import _split, app, say
from tvbench.errors import ConfigError, TvbenchError, one_line

PLAN_FILE = "reproduce-{table}.json"  # in OUT: the reference, the plan (settings recorded) and the comparison


def _reference_spec(table: str) -> str:
    """``f5`` -> ``paper:f5``; ``paper:ID`` and file paths (``FILE`` or ``FILE#ID``) as they are."""
    from tvbench.reference import PAPER_PREFIX, paper_tables

    text = table.strip()
    if text in paper_tables() or not (text.startswith(PAPER_PREFIX) or Path(text.partition("#")[0]).suffix
                                      or Path(text).exists()):
        return PAPER_PREFIX + text  # a bare name: a table of the paper (an unknown one lists the ids)
    return text


def format_comparison(rows: list[dict]) -> str:
    """The comparison as a plain table (tabulate's 'simple')."""
    from tabulate import tabulate

    def number(value: float | None, digits: int = 4) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    body = []
    for row in rows:
        interval = "–" if row["ci_low"] is None else f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
        arrow = {True: " ↑", False: " ↓"}.get(row["higher_is_better"], "")
        coverage = "–" if row["n"] is None else f"{row['n']}/{row['applicable']}"
        body.append([row["method"], row["metric"] + arrow, row["published_printed"], number(row["tvbench"]),
                     number(row["difference"]), interval, coverage, row["verdict"]])
    return tabulate(body, headers=["method", "metric", "published", "tvbench", "difference", "interval", "cases",
                                   "verdict"],
                    tablefmt="simple", disable_numparse=True)


@app.command(short_help="Run, score and compare a published table.")
def reproduce(
    table: str = typer.Argument(..., metavar="TABLE", help="A table of the paper (table1, f5, e-architecture, "
                                                           "e-timestep, e-blocks; or paper:ID), or a reference "
                                                           "file (FILE or FILE#ID)."),
    bench: str = typer.Option(..., "--bench", "-b", help="'sample', a benchmark folder, or hf:ID[@split]."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated subset of the table's methods "
                                                                  "(tvbench or published names)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (methods, needs, settings, estimated GPU "
                                                          "hours) and stop."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Results root (default results/reproduce-TABLE); "
                                                                 "a rerun resumes there."),
    method_specs: list[Path] = typer.Option([], "--method-spec", help="A method spec file (TOML) for an external "
                                                                      "method of the table; repeatable."),
    settings: list[str] = typer.Option([], "--set", metavar="METHOD:KEY=VALUE",
                                       help="An option for one method, over the paper's settings (repeatable)."),
    limit: Optional[int] = typer.Option(None, help="Run only the first N cases (a quick check, not the paper's "
                                                   "numbers)."),
    shard: Optional[str] = typer.Option(None, help="K/N: this process's shard of the cases (as `tvbench run`); "
                                                   "score by rerunning without --shard once every shard is done."),
    seed: int = typer.Option(0, help="Seed passed to every method."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    dtype: Optional[str] = typer.Option(None, help="float32, bfloat16 or float16 (default: each method's own)."),
    batch_size: int = typer.Option(1, help="Cases per call for methods that batch."),
    smoke: bool = typer.Option(False, help="Score with random-weight networks (an offline pipeline check, never "
                                           "the paper's numbers)."),
    dift_model: str = typer.Option("stabilityai/stable-diffusion-2-1", help="SD 2.1 weights for dragbench_md_dift."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run every method of a published table that tvbench has (resumable), score, and compare with the paper.

    Each method runs with the paper's settings where the paper states them, else its defaults; a method that
    cannot run here (no weights, no key, an external method without its spec) is one line and the rest goes on.
    Writes OUT/reproduce-TABLE.json (the reference, the plan with every setting, the comparison).
    """
    from tvbench.cases import load_benchmark
    from tvbench.reference import load_reference
    from tvbench.reference.plan import READY, build_plan, format_plan, parse_overrides

    reference = load_reference(_reference_spec(table))
    if method_specs:
        from tvbench.methods import METHODS
        from tvbench_adapters.external import register_spec_file

        for path in method_specs:
            register_spec_file(METHODS, path)
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1")
    overrides = parse_overrides(settings, reference)
    benchmark = load_benchmark(bench, progress=not quiet)
    cases = list(benchmark.cases)[:limit] if limit else list(benchmark.cases)
    plan = build_plan(reference, _split(methods) or None, overrides, cases)
    ready = [item for item in plan if item.status == READY]
    typer.echo(f"{reference.table}: {reference.title} ({reference.id})")
    typer.echo(f"  {reference.citation}")
    typer.echo(f"benchmark: {bench} ({len(cases)} cases{', first ' + str(limit) if limit else ''}); "
               f"{len(ready)} of {len(plan)} methods registered here (weights and keys are found, or reported "
               "missing in one line, when each one starts)")
    if dry_run:
        for line in format_plan(plan):
            typer.echo(line)
        return

    out = out or Path("results") / f"reproduce-{reference.id.replace(':', '-').replace('#', '-').replace('/', '-')}"
    failed, ran = _run_methods(plan, benchmark, out, limit=limit, shard=shard, seed=seed, device=device, dtype=dtype,
                               batch_size=batch_size, quiet=quiet)
    from tvbench.launch import launcher_process

    process = launcher_process()
    if shard or (process is not None and process.count > 1):
        say(f"this process's share is done; once every shard is, rerun without --shard (and without a launcher) to "
            f"score and compare: tvbench reproduce {table} --bench {bench} --out {out}")
        raise typer.Exit(1 if failed else 0)
    if not ran:
        say("nothing to score: no method of the table could run here")
        _write_record(out, reference, plan, [])
        raise typer.Exit(1)
    summary = _score(out, reference, bench, smoke=smoke, dift_model=dift_model, device=device, quiet=quiet)
    from tvbench.reference import compare_to_reference, uncompared

    rows = compare_to_reference(summary, reference)
    typer.echo("")
    typer.echo(f"against {reference.table} ({reference.benchmark}); difference = tvbench - published; "
               "reproduced = the published value lies inside tvbench's interval:")
    typer.echo(format_comparison(rows) if rows else "(no cell in common)")
    for line in uncompared(summary, reference):
        say(f"not compared: {line}")
    record = _write_record(out, reference, plan, rows)
    say(f"wrote {record}")
    if failed:
        raise typer.Exit(1)


def _run_methods(plan: list, benchmark, out: Path, *, limit, shard, seed, device, dtype, batch_size,
                 quiet) -> tuple[int, int]:
    """Run each ready method (resumable); skip the others with one line each. Returns (failed edits, runs made)."""
    from tvbench.device import dtype_name, resolve_device
    from tvbench.launch import launcher_process
    from tvbench.methods import Runtime, create_method
    from tvbench.reference.plan import READY
    from tvbench.runner import Shard, run_method
    from tvbench.threads import resolve_threads

    process = launcher_process()
    parsed_shard = Shard.parse(shard) if shard else None
    dtype_value = dtype_name(dtype) if dtype else None
    threads = resolve_threads(None).count
    failed = ran = 0
    for item in plan:
        if item.status != READY:
            say(f"skip {item.method or item.published_name}: {item.status}: {item.reason}")
            continue
        try:
            method = create_method(item.method, item.settings)
            local = method.uses_device or device.strip().lower() != "auto"
            runtime = Runtime(device=resolve_device(device) if local else "cpu", dtype=dtype_value,
                              batch_size=batch_size, threads=threads)
            report = run_method(method, benchmark, out, seed=seed, limit=limit, shard=parsed_shard,
                                progress=not quiet, runtime=runtime, process=process)
        except TvbenchError as exc:  # weights missing, a gated repository, out of memory: this method only
            say(f"skip {item.method}: {one_line(exc)}")
            continue
        finally:
            method = None  # drop the model before the next one loads
        ran += 1
        failed += len(report.failed)
        say(f"{report.run_dir}: {report.done} edited, {report.skipped} already done, {len(report.failed)} failed "
            f"(of {report.selected} selected)")
    return failed, ran


def _score(out: Path, reference, bench: str, *, smoke: bool, dift_model: str, device: str, quiet: bool) -> dict:
    """Score the table's metrics that can be computed here (the others are named, one line)."""
    import os

    from tvbench.device import resolve_device
    from tvbench.judge.config import ENV_BASE_URL, JudgeConfig
    from tvbench.metrics import METRICS
    from tvbench.scoring import ScoringConfig, score_results

    metrics, dropped = [], []
    for metric in reference.metric_ids():
        spec = METRICS.load(metric)
        if "judge" in spec.models and not (os.environ.get(ENV_BASE_URL) or os.environ.get("OPENAI_BASE_URL")):
            dropped.append(f"{metric} (a judge metric: set {ENV_BASE_URL}, or run `tvbench score` with --judge-*)")
        elif smoke and "dift" in spec.models:
            dropped.append(f"{metric} (--smoke has no random DIFT model)")
        else:
            metrics.append(metric)
    for line in dropped:
        say(f"not scored: {line}")
    if not metrics:
        raise ConfigError(f"none of {reference.table}'s metrics can be scored here")
    config = ScoringConfig(metrics=metrics, smoke=smoke, device=resolve_device(device), dift_model=dift_model,
                           judge=JudgeConfig())
    return score_results(out, config, bench_spec=bench, progress=not quiet)


def _write_record(out: Path, reference, plan: list, rows: list) -> Path:
    from tvbench.io import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    path = out / PLAN_FILE.format(table=reference.id.split("#")[-1].replace(":", "-").replace("/", "-"))
    atomic_write_json(path, {"kind": "tvbench.reproduce", "reference": reference.to_dict(),
                             "plan": [item.to_dict() for item in plan], "comparison": rows})
    return path
