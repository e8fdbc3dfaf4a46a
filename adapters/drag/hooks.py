"""Forward hooks on the UNet: read an up block's output (the drag features), or replace the mid block's (DragNoise).

DragDiffusion reads ``up_blocks[2]``'s output (``unet_feature_idx = 3`` in its list ``[mid, up0, up1, up2, up3]``;
640 channels at the latent's resolution for SD 1.5) and resizes it bilinearly to half the image
(``drag_pipeline.py: forward_unet_features``). The official code rewrote the UNet's forward to return these;
a forward hook reads the same tensor from diffusers' own forward.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch


class BlockOutput:
    """Holds the last output of the hooked module (set during a UNet forward)."""

    def __init__(self) -> None:
        self.value: "torch.Tensor | None" = None

    def take(self) -> "torch.Tensor":
        if self.value is None:
            raise RuntimeError("the hooked UNet block did not run")
        value, self.value = self.value, None
        return value


@contextlib.contextmanager
def capture_up_block(unet, index: int) -> Iterator[BlockOutput]:
    """Within the block, every UNet forward stores ``up_blocks[index]``'s output in the yielded holder."""
    if not 0 <= index < len(unet.up_blocks):
        raise ValueError(f"feature_block={index}: the UNet has up blocks 0..{len(unet.up_blocks) - 1}")
    holder = BlockOutput()

    def store(_module, _inputs, output):
        holder.value = output

    handle = unet.up_blocks[index].register_forward_hook(store)
    try:
        yield holder
    finally:
        handle.remove()


class MidBlockOverride:
    """What the mid block outputs while :func:`override_mid_block` is active: its own output, or ``value``."""

    def __init__(self) -> None:
        self.value: "torch.Tensor | None" = None  # (1, C, h, w), broadcast over the batch
        self.last_output: "torch.Tensor | None" = None  # the block's own output in the last forward


@contextlib.contextmanager
def override_mid_block(unet) -> Iterator[MidBlockOverride]:
    """Within the block, the mid block's output is recorded and, when ``override.value`` is set, replaced."""
    override = MidBlockOverride()

    def replace(_module, _inputs, output):
        override.last_output = output
        if override.value is None:
            return None
        return override.value.to(output.dtype).expand_as(output)

    handle = unet.mid_block.register_forward_hook(replace)
    try:
        yield override
    finally:
        handle.remove()
