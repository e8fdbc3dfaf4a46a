"""``tvbench train tvedit``: the training loop (one CPU for tests, many GPUs through ``accelerate launch``).

Defaults follow the paper (Sec. 4.1): AdamW, learning rate 1e-4, effective batch 64 by gradient accumulation,
N = 5 controller blocks, 80K iterations, t ~ Beta annealed from (20, 2) to (5, 2) over 40K iterations.

One optimizer step consumes ``effective_batch`` samples, the global positions ``step * E ... step * E + E - 1``
of the run's sample order (:class:`.data.SampleOrder`). Process ``r`` of ``P`` with micro-batch ``b`` takes, at
accumulation step ``m``, positions ``step * E + (m * P + r) * b + [0, b)``; the noise and t of a sample are
drawn from generators seeded by ``(seed, position)``. The step's gradient is the mean over its E samples
however they are split, so two processes with accumulation A follow one process with accumulation 2A (up to
float summation order), and a resumed run draws exactly what the uninterrupted one would have.

A rerun of the same command continues from the newest checkpoint in ``--output`` (the settings that shape
the loss curve must match; ``run.json`` records them). ``loss.jsonl`` gets one line per optimizer step
(``step``, ``loss`` = mean over the step's samples, ``alpha``, ``lr``); on resume, lines after the
checkpoint are dropped, so the file always is one curve.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tvbench.errors import ConfigError, one_line
from tvbench_adapters.tvedit.training.data import REVERSE_KEY
from tvbench_adapters.tvedit.training.schedule import BetaSchedule

DEFAULT_MODELS = {"qwen": "Qwen/Qwen-Image-Edit", "kontext": "black-forest-labs/FLUX.1-Kontext-dev"}
CURVE_FIELDS = ("backbone", "model", "data", "lr", "weight_decay", "effective_batch", "blocks", "injections",
                "resolution", "resize", "bidirectional", "reverse_key", "alpha_start", "alpha_end", "beta",
                "anneal_steps", "seed", "mixed_precision", "guidance", "max_grad_norm", "lr_warmup", "val_cases")


@dataclass
class TrainConfig:
    backbone: str
    data: str
    output: Path
    model: str | None = None  # pipeline id or folder; default: the backbone's official weights
    steps: int = 80_000  # paper Sec. 4.1: 80K iterations
    lr: float = 1e-4  # paper Sec. 4.1
    weight_decay: float = 0.01  # torch.optim.AdamW's default (the paper names AdamW only)
    effective_batch: int = 64  # paper Sec. 4.1
    batch_size: int = 1  # per process and micro-step
    blocks: int = 5
    injections: int = 15
    resolution: int = 1024
    resize: str = "squash"
    bidirectional: bool = False
    reverse_key: str = REVERSE_KEY
    alpha_start: float = 20.0
    alpha_end: float = 5.0
    beta: float = 2.0
    anneal_steps: int = 40_000
    seed: int = 0
    mixed_precision: str = "auto"  # auto: bf16 on CUDA, none elsewhere
    gradient_checkpointing: bool = False
    guidance: float = 3.5  # FLUX.1 Kontext's distilled guidance during training (pipeline default)
    max_grad_norm: float = 0.0  # 0: no clipping (the paper names none)
    lr_warmup: int = 0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    val_cases: int = 0
    val_every: int = 1000
    val_steps: int = 20
    val_smoke: bool = False
    val_edits: bool = True  # validation edits scored with tvbench's metrics (the validation loss always runs)
    val_area: int = 0  # working area of validation edits in pixels (0: the pipeline's own ~1 MP)
    cache_dir: Path | None = None
    log_with: str = "auto"  # auto: tensorboard when installed; none; tensorboard; wandb; all
    progress: bool = True

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.model = self.model or DEFAULT_MODELS.get(self.backbone)
        if self.backbone not in DEFAULT_MODELS:
            raise ConfigError(f"--backbone {self.backbone!r}: choose qwen or kontext")
        for name in ("steps", "effective_batch", "batch_size", "checkpoint_every", "val_every", "val_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(f"--mixed-precision {self.mixed_precision!r}: choose auto, no, bf16 or fp16")

    def curve(self) -> dict[str, Any]:
        """The settings a resumed run must share with the interrupted one (and the image resize filter)."""
        from tvbench_adapters.tvedit.points import RESIZE_FILTER_NAME

        record = dataclasses.asdict(self)
        curve = {name: (str(record[name]) if isinstance(record[name], Path) else record[name]) for name in CURVE_FIELDS}
        return {**curve, "resize_filter": RESIZE_FILTER_NAME}

    def curve_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.curve(), sort_keys=True).encode()).hexdigest()[:16]


VAL_SIGMAS = (0.3, 0.6, 0.9)


def _sample_seed(seed: int, position: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, position, stream]).generate_state(1)[0])


def _pad_stack(tensors: list, value: float = 0.0):
    import torch

    length = max(t.shape[0] for t in tensors)
    padded = [torch.nn.functional.pad(t, (0, 0) * (t.ndim - 1) + (0, length - t.shape[0]), value=value)
              for t in tensors]
    return torch.stack(padded)


class Trainer:
    """Builds everything from a :class:`TrainConfig` and runs the loop; ``run()`` returns a summary dict."""

    def __init__(self, config: TrainConfig):
        self.config = config

    # --- setup -----------------------------------------------------------------------------------------

    def _accelerator(self):
        """DDP must tolerate unused parameters: the text MLP of the controller's last block feeds nothing (as in
        the official controller), and heads beyond ``used_injections`` are never added."""
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        config = self.config
        precision = config.mixed_precision
        if precision == "auto":
            precision = "bf16" if torch.cuda.is_available() else "no"
        trackers = config.log_with
        if trackers == "auto":
            from importlib.util import find_spec

            trackers = "tensorboard" if find_spec("tensorboard") or find_spec("tensorboardX") else "none"
        return Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available(),
                           log_with=None if trackers == "none" else trackers, project_dir=str(config.output),
                           kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])

    def _resolve_model(self) -> Path:
        """The pipeline folder ``--model`` names (the HF cache first, then the hub), found before anything heavy
        loads: weights that cannot be had are one line naming ``--model`` and the command that downloads them."""
        from tvbench.errors import WeightsUnavailable
        from tvbench.features.weights import resolve_weights
        from tvbench_adapters.editors.base import PIPELINE_PATTERNS

        try:
            return resolve_weights(self.config.model, what=f"the {self.config.backbone} pipeline",
                                   marker="model_index.json", patterns=PIPELINE_PATTERNS, fingerprint=False).path
        except WeightsUnavailable as exc:
            exc.option = "--model PATH"
            raise

    def _load_pipeline(self, accelerator):
        import torch
        from diffusers import DiffusionPipeline

        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision, torch.float32)
        if not self.config.progress:
            import diffusers
            import transformers

            diffusers.utils.logging.disable_progress_bar()
            transformers.utils.logging.disable_progress_bar()
        try:
            with warnings.catch_warnings():  # diffusers >= 0.40 calls torch_dtype dtype; 0.37 knows only torch_dtype
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = DiffusionPipeline.from_pretrained(str(self.model_path), torch_dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--model {self.config.model}: cannot load the pipeline ({one_line(exc)}); check that "
                              "the folder holds a complete diffusers pipeline") from None
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(accelerator.device)

    def _training_samples(self, pairs, order, positions: list[int], step: int) -> list[tuple[Any, int, float]]:
        """(pair, noise seed, t) of each global sample position: a function of the seed and position only."""
        seed = self.config.seed
        return [(pairs[order[p]], _sample_seed(seed, p, 0),
                 self.schedule.sample(step, np.random.default_rng(_sample_seed(seed, p, 1)))) for p in positions]

    def _batch(self, store, samples: list[tuple[Any, int, float]], backbone) -> dict[str, Any]:
        import torch

        from tvbench_adapters.tvedit.points import drag_maps

        feats, target_maps, handle_maps, noise = [], [], [], []
        for pair, noise_seed, _ in samples:
            item = store.features(pair)
            rows, cols = (int(v) for v in item["grid"])
            size = (cols * 16, rows * 16)
            handle, target = drag_maps(pair.pairs, tuple(int(v) for v in item["image_size"]), size, size)
            handle_maps.append(handle)
            target_maps.append(target)
            noise.append(torch.randn(item["z0"].shape, generator=torch.Generator().manual_seed(noise_seed)))
            feats.append(item)
        grids = {tuple(int(v) for v in item["grid"]) for item in feats}
        if len(grids) > 1:
            raise ConfigError("pairs of different working sizes in one micro-batch: use --batch-size 1 with "
                              "--resize keep")
        device = backbone.device
        text = {"prompt_embeds": _pad_stack([item["prompt_embeds"] for item in feats])}
        if "prompt_mask" in feats[0]:
            text["prompt_mask"] = _pad_stack([item["prompt_mask"] for item in feats])
        if "pooled" in feats[0]:
            text["pooled"] = torch.stack([item["pooled"] for item in feats])
        sigma = torch.tensor([t for _, _, t in samples], dtype=torch.float32)
        call = backbone.transformer_call(text, grids.pop(), sigma, guidance=self.config.guidance)
        return {"z0": torch.stack([item["z0"] for item in feats]).to(device),
                "cond": torch.stack([item["cond"] for item in feats]).to(device),
                "noise": torch.stack(noise).to(device), "sigma": sigma.to(device),
                "target_maps": torch.stack(target_maps).to(device), "handle_maps": torch.stack(handle_maps).to(device),
                "call": call}

    def validation_loss(self, model, store, pairs, backbone, accelerator) -> float:
        """Mean Z0 loss of the held-out pairs at t = 0.3, 0.6 and 0.9 with fixed noise: one comparable number."""
        import torch

        values = []
        with torch.no_grad(), accelerator.autocast():
            for index, pair in enumerate(pairs):
                samples = [(pair, _sample_seed(self.config.seed, index * len(VAL_SIGMAS) + j, 2), sigma)
                           for j, sigma in enumerate(VAL_SIGMAS)]
                values.extend(model(**self._batch(store, samples, backbone)).tolist())
        return sum(values) / len(values)

    # --- the run ---------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Data, backbone and controller, resume, the steps, the final weights; returns a summary."""
        config = self.config
        self.schedule = BetaSchedule(config.alpha_start, config.alpha_end, config.beta, config.anneal_steps)
        self.model_path = self._resolve_model()
        self._check_previous_run(config.output)
        self._setup()
        start = self._resume()
        self.validator = None
        if start == 0:
            self._validate(0)  # the untrained controller: the baseline of the validation curve
        losses: list[float] = []
        began = time.perf_counter()
        from tvbench.progress import progress_bar

        main = self.accelerator.is_main_process
        with progress_bar("training", config.steps - start, enabled=config.progress and main) as bar:
            for step in range(start, config.steps):
                losses.append(self._step(step))
                bar.advance()
                done = step + 1
                if done % config.checkpoint_every == 0 or done == config.steps:
                    self._checkpoint(done)
                if done % config.val_every == 0 or done == config.steps:
                    self._validate(done)

        from tvbench_adapters.tvedit.checkpoint import save_state_dicts

        final = self._weights()
        if main:
            save_state_dicts(final, self.spec, config.output / "controller.safetensors")
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        return {"main": main, "steps": config.steps, "resumed_from": start, "processes": self.world,
                "accumulation": self.accumulation, "pairs": len(self.pairs), "losses": losses,
                "seconds": time.perf_counter() - began, "cache_hits": self.store.hits,
                "cache_misses": self.store.misses}

    def _setup(self) -> None:
        """Pairs, processes and accumulation, the frozen backbone, the feature cache, controller and optimizer."""
        import torch

        from tvbench.cases import load_benchmark
        from tvbench_adapters.tvedit.controller import build_controller
        from tvbench_adapters.tvedit.spec import ControllerSpec
        from tvbench_adapters.tvedit.training.backbones import FrozenBackbone
        from tvbench_adapters.tvedit.training.data import SampleOrder, split_holdout, training_pairs
        from tvbench_adapters.tvedit.training.features import FeatureStore
        from tvbench_adapters.tvedit.training.objective import ControlledBackbone
        from tvbench_adapters.tvedit.training.state import latest_checkpoint, load_weights

        config = self.config
        train_cases, self.val_cases = split_holdout(list(load_benchmark(config.data)), config.val_cases)
        self.pairs = training_pairs(train_cases, bidirectional=config.bidirectional, reverse_key=config.reverse_key)
        self.val_pairs = training_pairs(self.val_cases)
        self.pairs_digest = hashlib.sha256("\n".join(p.id for p in self.pairs).encode()).hexdigest()[:16]
        self.order = SampleOrder(len(self.pairs), config.seed)

        accelerator = self.accelerator = self._accelerator()
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        per_step = config.batch_size * self.world
        if config.effective_batch % per_step:
            raise ConfigError(f"--effective-batch {config.effective_batch} is not a multiple of --batch-size "
                              f"{config.batch_size} x {self.world} process(es)")
        self.accumulation = config.effective_batch // per_step
        self.sharded = accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")
        if self.sharded and self.val_cases:
            raise ConfigError("--val-cases: validation needs the whole controller on one process; with FSDP or "
                              "DeepSpeed sharding, validate a saved checkpoint instead")

        self.pipe = self._load_pipeline(accelerator)
        backbone = self.backbone = FrozenBackbone(self.pipe)
        if backbone.kind != config.backbone:
            raise ConfigError(f"--model {config.model} is a {backbone.kind} pipeline, not --backbone {config.backbone}")
        config.output.mkdir(parents=True, exist_ok=True)  # only now: a refused run leaves no folder behind
        self.spec = ControllerSpec.for_transformer(backbone.transformer, blocks=config.blocks,
                                                   injections=config.injections)
        self.store = FeatureStore(backbone, config.cache_dir or config.output / "cache", resize=config.resize,
                                  resolution=config.resolution)
        self.store.prepare(self.pairs + self.val_pairs, self.rank, self.world,
                           progress=config.progress and accelerator.is_main_process)
        accelerator.wait_for_everyone()

        torch.manual_seed(config.seed)
        controller = build_controller(self.spec)  # float32 master weights; autocast runs it in bf16 when asked
        if config.gradient_checkpointing:
            controller.enable_gradient_checkpointing()
            backbone.transformer.enable_gradient_checkpointing()
        self.checkpoint = latest_checkpoint(config.output)
        if self.checkpoint is not None:
            load_weights(self.checkpoint, controller)  # before prepare() may shard it
        optimizer = torch.optim.AdamW(controller.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        warmup = config.lr_warmup
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)
        self.model, self.optimizer = accelerator.prepare(ControlledBackbone(backbone.transformer, controller),
                                                         optimizer)
        self.trainable = accelerator.unwrap_model(self.model).controller

    def _resume(self) -> int:
        """Optimizer, scheduler and RNG of the newest checkpoint; the run files; returns the first step."""
        from tvbench.io import atomic_write_json, atomic_write_text, jsonl_line, read_jsonl
        from tvbench_adapters.tvedit.training.state import load_training_state

        config, output, start = self.config, self.config.output, 0
        if self.checkpoint is not None:
            saved = load_training_state(self.checkpoint, optimizer=self.optimizer, scheduler=self.scheduler,
                                        rank=self.rank, sharded_optimizer=self.sharded)
            if saved.get("pairs_digest") != self.pairs_digest:
                raise ConfigError(f"{output}: the training pairs changed since {self.checkpoint.name}; "
                                  "use another --output")
            start = int(saved["step"])
        if self.accelerator.is_main_process:
            atomic_write_json(output / "run.json", {"curve": config.curve(), "curve_hash": config.curve_hash(),
                                                    "spec": self.spec.to_dict(), "processes": self.world,
                                                    "accumulation": self.accumulation, "pairs": len(self.pairs)})
            kept = [r for r in read_jsonl(output / "loss.jsonl") if int(r["step"]) <= start]
            atomic_write_text(output / "loss.jsonl", "".join(jsonl_line(r) for r in kept))  # one curve
            self.accelerator.init_trackers("tvedit", config={k: v for k, v in config.curve().items()
                                                             if isinstance(v, (int, float, str, bool))})
        self.model.train()
        return start

    def _step(self, step: int) -> float:
        """One optimizer step over ``effective_batch`` samples; returns their mean loss (all processes)."""
        import torch

        from tvbench.io import append_jsonl

        config, accelerator, model = self.config, self.accelerator, self.model
        total = torch.zeros((), device=accelerator.device)
        for micro in range(self.accumulation):
            first = step * config.effective_batch + (micro * self.world + self.rank) * config.batch_size
            positions = list(range(first, first + config.batch_size))
            batch = self._batch(self.store, self._training_samples(self.pairs, self.order, positions, step),
                                self.backbone)
            syncing = micro == self.accumulation - 1
            with contextlib.nullcontext() if syncing else accelerator.no_sync(model), accelerator.autocast():
                per_sample = model(**batch)
                accelerator.backward(per_sample.mean() / self.accumulation)
            total += per_sample.detach().sum()
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss = float(accelerator.reduce(total, reduction="sum")) / config.effective_batch
        record = {"step": step + 1, "loss": loss, "alpha": self.schedule.alpha(step),
                  "lr": self.scheduler.get_last_lr()[0]}
        if accelerator.is_main_process:
            append_jsonl(config.output / "loss.jsonl", record)
            accelerator.log({name: record[name] for name in ("loss", "alpha", "lr")}, step=step + 1)
        return loss

    def _weights(self) -> dict:
        """The controller's two state dicts (gathered from every shard under FSDP / DeepSpeed: a collective)."""
        if not self.sharded:
            return self.trainable.state_dicts()
        full = self.accelerator.get_state_dict(self.model)
        return {part: {name[len(f"controller.{part}."):]: tensor for name, tensor in full.items()
                       if name.startswith(f"controller.{part}.")} for part in ("point_encoder", "casc")}

    def _checkpoint(self, done: int) -> None:
        from tvbench_adapters.tvedit.training.state import prune_checkpoints, save_checkpoint, step_dir

        config = self.config
        state = {"step": done, "samples_seen": done * config.effective_batch, "seed": config.seed,
                 "pairs": len(self.pairs), "pairs_digest": self.pairs_digest, "curve_hash": config.curve_hash(),
                 "processes": self.world}
        save_checkpoint(step_dir(config.output, done), weights=self._weights(), spec=self.spec,
                        optimizer=self.optimizer, scheduler=self.scheduler, state=state, rank=self.rank,
                        is_main=self.accelerator.is_main_process, sharded_optimizer=self.sharded,
                        wait=self.accelerator.wait_for_everyone)
        if self.accelerator.is_main_process:
            prune_checkpoints(config.output, config.keep_checkpoints)

    def _validate(self, done: int) -> None:
        """Held-out loss (and edits) on the main process, into ``validation.jsonl`` and the trackers."""
        from tvbench.io import append_jsonl

        accelerator = self.accelerator
        if not (self.val_cases and accelerator.is_main_process):
            return
        record = {"step": done, "loss": self.validation_loss(accelerator.unwrap_model(self.model), self.store,
                                                             self.val_pairs, self.backbone, accelerator)}
        if self.config.val_edits:
            from tvbench_adapters.tvedit.training.validation import Validator

            self.validator = self.validator or Validator(self.pipe, self.val_cases, self.config)
            record.update(self.validator(self.trainable, done))
        append_jsonl(self.config.output / "validation.jsonl", record)
        accelerator.log({f"val/{k}": v for k, v in record.items() if isinstance(v, float)}, step=done)
        self.model.train()

    def _check_previous_run(self, output: Path) -> None:
        run_file = output / "run.json"
        if not run_file.is_file():
            return  # a new run: the folder is made once the data and the backbone have loaded (_setup)
        # A run.json without resize_filter predates the single filter: its images were resized with Lanczos.
        previous = {"resize_filter": "lanczos", **json.loads(run_file.read_text()).get("curve", {})}
        for name, value in self.config.curve().items():
            if previous.get(name, value) != value:
                raise ConfigError(f"{output}: holds a run with {name}={previous[name]!r}, not {value!r}; "
                                  "rerun with the same settings to resume, or choose another --output")
