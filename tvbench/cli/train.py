"""``tvbench train tvedit``: train the TV-Edit controller on a benchmark folder (one case = one training pair).

Single process: ``tvbench train tvedit ...``. Several GPUs or nodes: ``accelerate launch [--config_file F]
-m tvbench train tvedit ...`` (the same options; the README's Training section has DDP, FSDP and DeepSpeed
notes). A rerun of the same command continues from the newest checkpoint in ``--output``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tvbench.cli.app import app, say

train_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="Train a method's trainable part on a benchmark folder.")
app.add_typer(train_app, name="train")


@train_app.command("tvedit")
def tvedit(
    data: str = typer.Option(..., "--data", help="Benchmark with targets: 'sample', a folder, or hf:ID."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: checkpoints, loss.jsonl, cache, weights."),
    backbone: str = typer.Option("qwen", "--backbone", help="qwen (Qwen-Image-Edit) or kontext (FLUX.1 Kontext)."),
    model: Optional[str] = typer.Option(None, "--model", help="Pipeline hub id or folder (default: the backbone's "
                                        "official weights)."),
    steps: int = typer.Option(80_000, help="Optimizer steps (paper: 80K)."),
    lr: float = typer.Option(1e-4, help="AdamW learning rate (paper: 1e-4)."),
    weight_decay: float = typer.Option(0.01, help="AdamW weight decay (torch default)."),
    effective_batch: int = typer.Option(64, help="Samples per optimizer step (paper: 64), reached by accumulation."),
    batch_size: int = typer.Option(1, help="Samples per process and micro-step."),
    blocks: int = typer.Option(5, help="Controller blocks N (paper: 5)."),
    injections: int = typer.Option(15, help="Injection heads K (default 15)."),
    resolution: int = typer.Option(1024, help="Working side (squash) or sqrt of the working area (keep), pixels."),
    resize: str = typer.Option("squash", help="squash (official: square) or keep (aspect kept)."),
    bidirectional: bool = typer.Option(False, help="Also train the backward pair of every case (needs "
                                       "meta['reverse_instruction'])."),
    reverse_key: str = typer.Option("reverse_instruction", help="Meta key of the backward instruction T2."),
    alpha_start: float = typer.Option(20.0, help="Beta(alpha, beta) for t at step 0."),
    alpha_end: float = typer.Option(5.0, help="alpha from --anneal-steps on."),
    beta: float = typer.Option(2.0, help="beta of the timestep distribution."),
    anneal_steps: int = typer.Option(40_000, help="Steps over which alpha moves linearly (paper: 40K)."),
    seed: int = typer.Option(0, help="Seed of the controller init, the data order, noise and timesteps."),
    mixed_precision: str = typer.Option("auto", help="auto (bf16 on CUDA), no, bf16 or fp16."),
    gradient_checkpointing: bool = typer.Option(False, help="Recompute activations in backward (saves memory)."),
    guidance: float = typer.Option(3.5, help="FLUX.1 Kontext's distilled guidance value during training."),
    max_grad_norm: float = typer.Option(0.0, help="Clip the gradient norm (0: off)."),
    lr_warmup: int = typer.Option(0, help="Linear learning-rate warm-up steps."),
    checkpoint_every: int = typer.Option(1000, help="Save a resumable checkpoint every N steps (and at the end)."),
    keep_checkpoints: int = typer.Option(3, help="Keep the newest N checkpoints (0: all)."),
    val_cases: int = typer.Option(0, help="Hold out the last N cases (by id) for validation edits."),
    val_every: int = typer.Option(1000, help="Validate every N steps (and at the end)."),
    val_steps: int = typer.Option(20, help="Denoising steps of a validation edit."),
    val_edits: bool = typer.Option(True, help="Validation edits scored with tvbench's metrics (the held-out loss "
                                   "always runs)."),
    val_smoke: bool = typer.Option(False, help="Score validation edits with small random networks (offline)."),
    val_area: int = typer.Option(0, help="Working area of validation edits in pixels (0: the pipeline's ~1 MP)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Feature cache folder (default OUTPUT/cache)."),
    log_with: str = typer.Option("auto", help="accelerate trackers: auto (tensorboard when installed), none, "
                                 "tensorboard, wandb, all."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train the point encoder and controller on a frozen backbone (paper Sec. 3.3, Appendix B, Sec. 4.1)."""
    from tvbench_adapters.tvedit.training.loop import Trainer, TrainConfig

    config = TrainConfig(
        backbone=backbone, data=data, output=output, model=model, steps=steps, lr=lr, weight_decay=weight_decay,
        effective_batch=effective_batch, batch_size=batch_size, blocks=blocks, injections=injections,
        resolution=resolution, resize=resize, bidirectional=bidirectional, reverse_key=reverse_key,
        alpha_start=alpha_start, alpha_end=alpha_end, beta=beta, anneal_steps=anneal_steps, seed=seed,
        mixed_precision=mixed_precision, gradient_checkpointing=gradient_checkpointing, guidance=guidance,
        max_grad_norm=max_grad_norm, lr_warmup=lr_warmup, checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints, val_cases=val_cases, val_every=val_every, val_steps=val_steps,
        val_edits=val_edits, val_smoke=val_smoke, val_area=val_area, cache_dir=cache_dir, log_with=log_with,
        progress=not quiet)
    summary = Trainer(config).run()
    if not summary["main"]:
        return  # one report per run, from the main process
    losses = summary["losses"]
    if losses:
        say(f"trained steps {summary['resumed_from'] + 1}-{summary['steps']} on {summary['pairs']} pairs "
            f"({summary['processes']} process(es) x {summary['accumulation']} accumulation): loss "
            f"{losses[0]:.6f} -> {losses[-1]:.6f}; weights in {output / 'controller.safetensors'}")
    else:
        say(f"{output}: already trained to step {summary['steps']}; weights in {output / 'controller.safetensors'}")
