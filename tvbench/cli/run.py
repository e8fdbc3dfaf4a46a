"""``tvbench run``: edit a benchmark's cases with one or more methods."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tvbench.cli.app import _parse_settings, _split, app, say
from tvbench.errors import ConfigError


@app.command()
def run(
    method: Optional[str] = typer.Option(None, "--method", "-m",
                                         help="Method name; several as a comma-separated list."),
    method_specs: list[Path] = typer.Option([], "--method-spec", help="A method spec file (TOML) for a method run "
                                            "from another repository; repeatable; runs it unless --method names "
                                            "the methods."),
    bench: str = typer.Option("sample", "--bench", "-b", help="'sample', a benchmark folder, or hf:ID[@split]."),
    out: Path = typer.Option(Path("results"), "--out", "-o", help="Results root; a run writes <out>/<run name>/."),
    limit: Optional[int] = typer.Option(None, help="Run only the first N selected cases."),
    cases: Optional[str] = typer.Option(None, help="Comma-separated case ids to run."),
    shard: Optional[str] = typer.Option(None, help="K/N: run the K-th of N shards (by a hash of the case id). Under "
                                                   "torchrun or accelerate launch, the processes share it."),
    seed: int = typer.Option(0, help="Seed passed to the method for every case."),
    settings: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Method option key=value (repeatable)."),
    run_name: Optional[str] = typer.Option(None, help="Folder name of the run (default: the method name)."),
    overwrite: bool = typer.Option(False, help="Replace an existing, different run in the same folder."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps (not part of the run's identity)."),
    dtype: Optional[str] = typer.Option(None, help="float32, bfloat16 or float16 for methods that use torch "
                                                   "(default: the drag methods float32, as their originals; others "
                                                   "bfloat16 on CUDA, else float32)."),
    batch_size: int = typer.Option(1, help="Cases per call for methods that batch (not part of the run's identity)."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: $TVBENCH_THREADS, "
                                                     "$OMP_NUM_THREADS, else the cores available)."),
    retry: str = typer.Option("failed", help="Statuses a rerun edits again: failed, or failed,refused."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Edit every case of a benchmark with a method. Resumable: a rerun skips finished cases."""
    from tvbench.cases.loaders import check_benchmark_spec
    from tvbench.device import dtype_name
    from tvbench.runner import Shard, check_limit, check_retry
    from tvbench.threads import resolve_threads

    # Every argument is checked before anything heavy is imported or loaded: a typo costs a fraction of a second.
    dtype = dtype_name(dtype) if dtype else None
    check_limit(limit)
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    statuses = sorted(check_retry(_split(retry)))
    shards = Shard.parse(shard) if shard else None
    threads_count = resolve_threads(threads).count
    check_benchmark_spec(bench)
    options = _parse_settings(settings)
    names = _split(method)
    if method_specs:
        from tvbench.methods import METHODS
        from tvbench_adapters.external import register_spec_file

        spec_names = [register_spec_file(METHODS, path) for path in method_specs]
        names = names or spec_names
    if not names:
        raise ConfigError("--method is required (or --method-spec FILE)")
    if run_name and len(names) > 1:
        raise ConfigError("--run-name needs a single --method")
    from tvbench.methods import Runtime, check_method, create_method

    methods = [create_method(name, options) for name in names]  # fail on bad options before any work
    for m in methods:
        check_method(m)  # the files their options name, before any backbone of any of them loads
    from tvbench.cases import load_benchmark
    from tvbench.device import resolve_device
    from tvbench.launch import launcher_process
    from tvbench.runner import run_method

    process = launcher_process()  # torchrun / accelerate launch: this process's share of the cases
    local = any(m.uses_device for m in methods) or device.strip().lower() != "auto"
    runtime = Runtime(device=resolve_device(device) if local else "cpu", dtype=dtype, batch_size=batch_size,
                      threads=threads_count)
    benchmark = load_benchmark(bench, progress=not quiet)
    failed = 0
    while methods:  # one method at a time: run it, tear it down, drop it, then load the next
        m = methods.pop(0)
        report = run_method(m, benchmark, out, run_name=run_name, seed=seed, case_ids=_split(cases) or None,
                            limit=limit, shard=shards, overwrite=overwrite, progress=not quiet, runtime=runtime,
                            retry=statuses, process=process)
        del m
        failed += len(report.failed)
        refused = len(report.refused) + report.refused_before
        refused_note = f", {refused} refused (--retry refused asks again)" if refused else ""
        who = f"process {process.index} of {process.count}: " if process else ""
        say(f"{who}{report.run_dir}: {report.done} edited, {report.skipped - report.refused_before} already done, "
            f"{len(report.failed)} failed{refused_note} (of {report.selected} selected)")
    if failed:
        raise typer.Exit(1)
