"""Which controller block feeds which head, and which head's residual goes into which backbone block.

Heads (paper eq. 4-5): K linear heads ``controller_blocks.{k}`` (controller width -> backbone width), each
multiplied by ``1 + controller_blocks_scale.{k}(e_t)``, a scalar from the timestep-only embedding.

- **Head k reads controller block** ``ceil((k + 1) * N / K) - 1``: contiguous, balanced groups, and the last
  head reads the last block. With K = 3N (the official code) this is block ``k // 3``; with the default
  K = 15 and N = 1, 3, 5, 15 it gives 15, 5, 3 and 1 heads per block.
- **Residual k goes after backbone block i** with ``k = i // ceil(N_main / K)``, the rule of the official code
  (and of diffusers' own ControlNet loops). Qwen-Image-Edit: N_main = 60, so with K = 15 each residual is
  added after four consecutive blocks.
- **FLUX.1 Kontext** runs 19 double-stream blocks, then 38 single-stream blocks; the residuals are added to
  the image tokens only (diffusers' single-stream blocks take and return the text tokens separately). We
  number the 57 blocks in execution order (double ``i`` -> ``i``, single ``j`` -> ``19 + j``) and apply the same
  rule with N_main = 57: with K = 15, ceil(57 / 15) = 4, so residual 4 covers double blocks 16-18 and single
  block 0, and residual 14 covers the last single block alone. Depth in the network decides, as on Qwen.

Every mapping is handed to diffusers as one residual per backbone block (the same tensor repeated, no copy),
so diffusers' own ``i // ceil(n / len(samples))`` indexing reduces to ``samples[i]`` and our rule is the only one.
"""

from __future__ import annotations

import math
from typing import Any, Sequence


def head_source_block(head: int, blocks: int, injections: int) -> int:
    """The controller block whose output head ``head`` projects."""
    return math.ceil((head + 1) * blocks / injections) - 1


def residual_for_block(block: int, main_blocks: int, injections: int) -> int:
    """The residual added after backbone block ``block`` (blocks counted in execution order)."""
    return block // math.ceil(main_blocks / injections)


def used_injections(main_blocks: int, injections: int) -> int:
    """How many of the K residuals the rule ever uses: fewer than K when ceil(N_main / K) overshoots."""
    return residual_for_block(main_blocks - 1, main_blocks, injections) + 1


def transformer_kwargs(residuals: Sequence[Any], main_double_blocks: int, main_single_blocks: int = 0) -> dict:
    """The ``controlnet_*block_samples`` arguments of the backbone's forward: one residual per backbone block."""
    total = main_double_blocks + main_single_blocks
    per_block = [residuals[residual_for_block(i, total, len(residuals))] for i in range(total)]
    kwargs = {"controlnet_block_samples": per_block[:main_double_blocks]}
    if main_single_blocks:
        kwargs["controlnet_single_block_samples"] = per_block[main_double_blocks:]
    return kwargs
