"""Which share of the cases this process runs when a launcher started several (torchrun, accelerate launch).

``torchrun --nproc_per_node 8 -m tvbench run ...`` and ``accelerate launch -m tvbench run ...`` start one
process per GPU with ``RANK`` (0..WORLD_SIZE-1, across nodes), ``WORLD_SIZE`` and ``LOCAL_RANK`` (the GPU on
this node, which :func:`tvbench.device.resolve_device` picks for ``--device auto``) in the environment. No
process group is needed: each process edits the cases whose id hashes to its rank, into the same folder, and
the folder ends up as one process would have left it. An explicit ``--shard K/N`` composes: the launched
processes split shard K/N among themselves (N machines each running a launcher cover the benchmark once).
"""

from __future__ import annotations

import os
from typing import Mapping

from tvbench.errors import ConfigError
from tvbench.runner import Shard


def launcher_process(environ: Mapping[str, str] | None = None) -> Shard | None:
    """This process's share (rank + 1 of the world size), or ``None`` outside a multi-process launch."""
    environ = os.environ if environ is None else environ
    world_text = environ.get("WORLD_SIZE", "").strip()
    if not world_text:
        return None
    world = _integer("WORLD_SIZE", world_text)
    if world < 1:
        raise ConfigError(f"WORLD_SIZE={world_text!r} in the environment: expected a positive integer")
    if world == 1:
        return None
    rank_text = environ.get("RANK", "").strip()
    if not rank_text:
        raise ConfigError(f"WORLD_SIZE={world} but RANK is not set: start tvbench through torchrun or accelerate "
                          "launch, or set RANK (0 to WORLD_SIZE-1) for each process")
    rank = _integer("RANK", rank_text)
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} in the environment is outside 0..{world - 1} (WORLD_SIZE={world})")
    return Shard(rank + 1, world)


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} in the environment: expected an integer") from None
