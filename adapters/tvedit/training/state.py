"""Training checkpoints: everything a resumed run needs to continue the same loss curve.

``<output>/checkpoints/step-<NNNNNNN>/`` holds

- ``controller.safetensors``: the trainable weights (our checkpoint format, spec in the metadata);
- ``optimizer.pt`` (one file; ``optimizer-rank<r>.pt`` per process when the optimizer is sharded by FSDP or
  DeepSpeed) and ``scheduler.pt``: their ``state_dict()``s, read back with ``weights_only=True``;
- ``rng-rank<r>.pt``: torch (CPU and CUDA), NumPy and Python RNG states of each process;
- ``state.json``: the step, samples seen, the run's settings hash and a digest of the pair list (the data
  order is a function of the seed and the position, see :mod:`.data`), written last: a folder without it is
  an interrupted save and is ignored.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tvbench.errors import ConfigError
from tvbench.io import atomic_write_json

STATE_FILE = "state.json"
_STEP_DIR = re.compile(r"step-(\d+)$")


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / "checkpoints" / f"step-{step:07d}"


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint folder under ``root/checkpoints``."""
    folder = Path(root) / "checkpoints"
    if not folder.is_dir():
        return None
    done = [p for p in folder.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(_STEP_DIR.match(p.name).group(1))) if done else None  # type: ignore[union-attr]


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, *, weights: dict | None, spec, optimizer, scheduler, state: dict[str, Any],
                    rank: int, is_main: bool, sharded_optimizer: bool, wait) -> None:
    """Every process calls this; ``weights`` (the controller's two state dicts) is needed on the main process
    only, ``wait`` is the barrier (``accelerator.wait_for_everyone``)."""
    from tvbench_adapters.tvedit.checkpoint import save_state_dicts

    folder = Path(folder)
    if is_main:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    wait()
    if is_main:
        save_state_dicts(weights, spec, folder / "controller.safetensors")
        torch.save(scheduler.state_dict(), folder / "scheduler.pt")
    if sharded_optimizer:
        torch.save(optimizer.state_dict(), folder / f"optimizer-rank{rank}.pt")
    elif is_main:
        torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    torch.save(rng_state(), folder / f"rng-rank{rank}.pt")
    wait()
    if is_main:
        atomic_write_json(folder / STATE_FILE, state)
    wait()


def load_weights(folder: Path, controller) -> None:
    """The controller's weights, into the plain module before ``accelerate.prepare`` wraps or shards it."""
    from tvbench_adapters.tvedit.checkpoint import load_state_dicts, read_safetensors

    dicts, _ = read_safetensors(Path(folder) / "controller.safetensors")
    load_state_dicts(controller, dicts, str(folder))


def load_training_state(folder: Path, *, optimizer, scheduler, rank: int, sharded_optimizer: bool) -> dict[str, Any]:
    """Optimizer, scheduler and this process's RNG (after ``prepare``); returns ``state.json``."""
    folder = Path(folder)
    name = f"optimizer-rank{rank}.pt" if sharded_optimizer else "optimizer.pt"
    if not (folder / name).is_file():
        raise ConfigError(f"{folder}: no {name}; resume with the same number of processes and sharding")
    optimizer.load_state_dict(torch.load(folder / name, map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu", weights_only=True))
    rng = folder / f"rng-rank{rank}.pt"
    if rng.is_file():
        set_rng_state(torch.load(rng, map_location="cpu", weights_only=True))
    return json.loads((folder / STATE_FILE).read_text())


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (0 keeps every one)."""
    if keep <= 0:
        return
    folder = Path(root) / "checkpoints"
    done = sorted((p for p in folder.iterdir() if _STEP_DIR.match(p.name)),
                  key=lambda p: int(_STEP_DIR.match(p.name).group(1)))  # type: ignore[union-attr]
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
